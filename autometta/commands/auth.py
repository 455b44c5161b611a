"""Billing routes per agent family: which bill each agent runs on, and whether that route works.

``autometta auth status [--repo REPO] [--json]``: per family the mode and where it
came from (env, manifest, default), the reference in force and where it was
read, whether its CLI is on PATH, the refs file loaded, whether ``op-fetch``
and ``op`` are on PATH, the codex api home's login, and a warning for every
API key sitting in this environment (autometta never passes one on). A
family is ``ready`` only when its route works and its CLI is installed;
exit 0 when both are ready, else 1.

``autometta auth check [FAMILY] [--repo REPO] [--json]``: resolve the route's
secret without spending a token; ``PASS`` with the secret shown as its last
four characters, or ``FAIL`` with the reason. Both families without FAMILY.
Exit 0 when every route checked passes, else 1.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from .. import auth, files, secrets
from ..agents import privilege, sandbox
from ..errors import UsageError, UserError
from .common import find_repo, repo_manifest

FAMILIES = tuple(auth.routes())


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("status", "check"), metavar="{status,check}",
                        help="status: show every route; check: resolve a route's secret")
    parser.add_argument("family", nargs="?", metavar="FAMILY",
                        help=f"for check: {' or '.join(FAMILIES)} (default: both)")
    parser.add_argument("--repo", default=None, metavar="REPO",
                        help="the repo whose .autometta.local.yaml applies (default: the one around .)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def _route_row(route: auth.Route, path: str) -> Dict[str, Any]:
    from .. import families

    env = {name: {"var": ref.var, "ref": ref.shown(), "source": ref.source} for name, ref in route.inject.items()}
    exe = families.get(route.family).executable
    cli = shutil.which(exe, path=path) if exe else None
    return {"family": route.family, "mode": route.mode.mode, "provenance": route.mode.provenance,
            "source": route.mode.source, "env": env, "ok": route.ok, "problem": route.problem,
            "codex_home": route.env.get("CODEX_HOME"),
            "cli": cli, "cli_problem": None if cli or not exe else
            f"{exe} is not on PATH ({path}); install it, or run 'autometta check-deps' for what is missing",
            "ready": bool(route.ok and (cli or not exe))}


def permission_rows(doc: Dict[str, Any], manifest_path: Optional[Path],
                    path: Optional[str] = None) -> Tuple[List[Dict[str, Any]], Dict[str, Any]]:
    """Each family's permission mode and the sandbox, for ``auth status`` and ``check-deps``."""
    box = sandbox.status(doc, manifest_path, path)
    kind = box.kind if box.kind in sandbox.KINDS else "none"
    rows = [privilege.report(f, doc, kind, manifest_path).__dict__ for f in privilege.with_modes()]
    return rows, dict(box.__dict__, line=box.line())


def status(environ: Dict[str, str], repo: Optional[Path]) -> Dict[str, Any]:
    doc, manifest_path = repo_manifest(repo)
    permissions, box = permission_rows(doc, manifest_path, environ.get("PATH", os.defpath))
    refs = secrets.load_refs_file(environ)
    path = environ.get("PATH", os.defpath)
    from ..families.codex import codex_api_home, codex_home_state

    codex_home = codex_api_home(environ)
    state, detail = codex_home_state(codex_home)
    routes = [auth.plan(f, environ, doc, manifest_path, refs) for f in FAMILIES]
    return {
        "repo": str(repo) if repo else None,
        "manifest": str(manifest_path) if manifest_path else None,
        "refs_file": {"path": str(refs.path) if refs.path else None, "origin": refs.origin or None,
                      "looked_in": [str(p) for p, _ in refs.candidates], "lines_not_understood": refs.skipped},
        "tools": {"op-fetch": shutil.which("op-fetch", path=path), "op": shutil.which("op", path=path)},
        "codex_api_home": {"path": str(codex_home), "state": state, "detail": detail},
        "routes": [_route_row(r, path) for r in routes],
        "stray_keys": auth.stray_keys(environ),
        "permissions": permissions,
        "sandbox": box,
    }


def _table(rows: List[List[str]]) -> List[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]


def print_status(report: Dict[str, Any]) -> None:
    refs = report["refs_file"]
    tools = report["tools"]
    cx = report["codex_api_home"]
    print(f"repo:            {report['repo'] or '(none: not inside a git repository)'}")
    print(f"manifest:        {report['manifest'] or '(none)'}")
    if refs["path"]:
        print(f"refs file:       {refs['path']} ({refs['origin']})")
        if refs["lines_not_understood"]:
            numbers = refs["lines_not_understood"]
            which = (f"line {numbers[0]} mentions" if len(numbers) == 1
                     else f"lines {', '.join(str(n) for n in numbers)} mention")
            print(f"                 {which} OP_REF_ but not as NAME=value; ignored (the file is read, never run)")
    else:
        print(f"refs file:       (none; placeholders only) looked in: {', '.join(refs['looked_in'])}")
    print(f"op-fetch:        {tools['op-fetch'] or 'not found'}")
    print(f"op:              {tools['op'] or 'not found'}"
          + ("" if tools["op"] or tools["op-fetch"] else " (op:// references cannot be resolved)"))
    login = {"apikey": f"logged in ({cx['detail']})", "missing": "not set up (codex api mode will refuse to run)",
             "wrong_mode": f"not an API-key login ({cx['detail']})", "unreadable": cx["detail"]}[cx["state"]]
    print(f"codex api home:  {cx['path']} {login}")
    print()
    rows = [["FAMILY", "MODE", "FROM", "ENV", "REFERENCE", "STATE"]]
    for row in report["routes"]:
        if row["env"]:
            for name, ref in row["env"].items():
                rows.append([row["family"], row["mode"], row["provenance"], name,
                             f"{ref['ref']} ({_source(ref['source'])})", _state(row)])
        else:
            rows.append([row["family"], row["mode"], row["provenance"], "-", "-",
                         _state(row, " (the CLI's own login)")])
    for line in _table(rows):
        print(line)
    for row in report["routes"]:
        if row["problem"]:
            print(f"{row['family']}: {row['problem']}")
        if row["cli_problem"]:
            print(f"{row['family']}: {row['cli_problem']}")
    print()
    print_permissions(report["permissions"], report["sandbox"])
    for name in report["stray_keys"]:
        print(f"warning: {name} is set in this environment; autometta never passes it to an agent "
              "(subscription mode strips it, api mode injects the key from its reference)", file=sys.stderr)


def _state(row: Dict[str, Any], login: str = "") -> str:
    """``ready`` only when the route works and the CLI is installed; else what is wrong."""
    if row["ready"]:
        return "ready" + login
    wrong = ([] if row["ok"] else ["BLOCKED"]) + ([] if not row["cli_problem"] else ["NOT INSTALLED"])
    return ", ".join(wrong)


def print_permissions(rows: List[Dict[str, Any]], box: Dict[str, Any]) -> None:
    """The permission table: each family's mode, where it came from, and the sandbox it runs in."""
    inside = box["kind"] if box["kind"] in ("bwrap", "seatbelt") and box["available"] else "none"
    table = [["FAMILY", "PERMISSION", "FROM", "SANDBOX"]]
    for row in rows:
        table.append([row["family"], row["mode"], row["source"], inside if not row["problem"] else "-"])
    for line in _table(table):
        print(line)
    for row in rows:
        if row["problem"]:
            print(f"{row['family']}: {row['problem']}")
    allow = next((row["allow"] for row in rows if row["allow"]), [])
    if allow:
        print(f"allowed commands: {', '.join(allow)} (and each card's acceptance command and Allowed commands)")
    print(f"sandbox:         {box['line']}")
    print("                 (a card's '- **Permission mode:**' overrides a family's mode for its stage)")


def _source(source: str) -> str:
    return {"environment": "environment", "default": "placeholder default"}.get(source, "refs file")


def check(environ: Dict[str, str], repo: Optional[Path], family: str) -> Dict[str, Any]:
    """One route's check: resolve its secrets now, spending no token."""
    doc, manifest_path = repo_manifest(repo)
    route = auth.plan(family, environ, doc, manifest_path)
    out: Dict[str, Any] = {"family": family, "mode": route.mode.mode, "provenance": route.mode.provenance,
                           "result": "FAIL", "detail": route.problem, "secrets": {}}
    if route.problem:
        return out
    try:
        values = auth.resolve_route(route, environ, fresh=True)
    except auth.RouteError as exc:
        out["detail"] = exc.message
        return out
    parts = []
    for name, value in values.items():
        ref = route.inject[name]
        out["secrets"][name] = {"var": ref.var, "ref": ref.shown(), "redacted": secrets.mask(value)}
        parts.append(f"{ref.var} -> {secrets.mask(value)} (env {name})")
    codex_home = route.env.get("CODEX_HOME")
    if codex_home is not None:
        from ..families.codex import setup_command

        parts.append(f"CODEX_HOME {codex_home} logged in with an API key")
        stored = _codex_key(Path(codex_home))
        api_env = auth.routes()[route.family].api_env
        key = values.get(api_env)
        if stored and key and stored != key:
            parts.append(f"note: its auth.json holds another key ({secrets.mask(stored)}), and codex bills "
                         f"that one; to use this one run: {setup_command(Path(codex_home), route.inject[api_env])}")
    if not parts:
        parts.append("no key to fetch: the CLI's own login is used and API keys are stripped")
    out.update(result="PASS", detail="; ".join(parts))
    return out


def _codex_key(codex_home: Path) -> Optional[str]:
    try:
        doc = files.read_json(codex_home / "auth.json")
    except UserError:
        return None
    key = doc.get("OPENAI_API_KEY") if isinstance(doc, dict) else None
    if isinstance(key, str) and key:
        secrets.register(key)
        return key
    return None


def run(args: argparse.Namespace) -> int:
    environ = dict(os.environ)
    repo = find_repo(args.repo)
    if args.action == "status":
        if args.family:
            raise UsageError(f"auth status takes no family (got {args.family!r}); it shows them all")
        report = status(environ, repo)
        if args.json:
            print(json.dumps(report, indent=2))
        else:
            print_status(report)
        return 0 if all(row["ready"] for row in report["routes"]) else 1
    if args.family and args.family not in FAMILIES:
        raise UsageError(f"unknown family {args.family!r}; choose {' or '.join(FAMILIES)}")
    results = [check(environ, repo, f) for f in ([args.family] if args.family else FAMILIES)]
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            line = f"{r['result']:<6}{r['family']:<8}{r['mode']:<14}{r['detail']}"
            print(line, file=sys.stdout if r["result"] == "PASS" else sys.stderr)
    return 0 if all(r["result"] == "PASS" for r in results) else 1

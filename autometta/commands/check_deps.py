"""Check the tools autometta uses; exit 1 if a required one is missing.

Then say which permission mode each agent family runs in and which sandbox
(for the repo around ``.``, else the defaults), whether the sandbox can run
here (exit 1 when the repo asks for one that cannot), what runs the tick
(cron block, systemd timer, LaunchAgents), and warn when it, or the pyz on
PATH, points at a pyz that no longer exists or is older than the checkout it
was built from.
"""

from __future__ import annotations

import argparse
import json

import os
import platform
from typing import List

from .. import deps
from ..agents import sandbox
from .auth import permission_rows
from .common import find_repo, repo_manifest


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    found = deps.check()
    found += privilege_deps()
    from ..observe import schedulewarnings

    found += schedulewarnings.check()  # afresh; status shows its warnings until something it read changes
    if args.json:
        print(json.dumps([d._asdict() for d in found], indent=2))
    else:
        for dep in found:
            print(dep.line())
    return 0 if deps.ok(found) else 1


def privilege_deps() -> List[deps.Dep]:
    """The sandbox tool of this system, then the ``sandbox`` and ``permissions`` of the repo around ``.``
    (its manifest; the defaults without one)."""
    repo = find_repo(None)
    doc, manifest_path = repo_manifest(repo)
    rows, box = permission_rows(doc, manifest_path, os.environ.get("PATH"))
    where = f"from {manifest_path}" if manifest_path else "the default: no repo manifest here"
    kind = "seatbelt" if platform.system() == "Darwin" else "bwrap"
    ok, detail = sandbox.available(kind)
    if ok:
        nest = ""
        if kind == "bwrap":
            nested, said = sandbox.nesting_works(detail)
            from ..families import FAMILIES

            own = " and ".join(f"{f.name}'s" for f in FAMILIES.values() if f.own_sandbox) or "an agent's"
            nest = f"; {own} own sandbox nests inside it" if nested else f"; a sandbox cannot nest inside it ({said})"
        tool = deps.Dep(sandbox.tool_name(kind), "PASS", f"{detail} (for 'sandbox: {kind}'{nest})", detail)
    else:
        tool = deps.Dep(sandbox.tool_name(kind), "WARN", f"not available: {detail} (optional: 'sandbox: {kind}')")
    if box["kind"] == "none":
        line = deps.Dep("sandbox", "PASS", f"none ({where})")
    else:
        good = box["available"] and not box["problem"]
        line = deps.Dep("sandbox", "PASS" if good else "MISSING", f"{box['line']} ({where})")
    modes = "; ".join(f"{r['family']} {r['mode']} ({r['source']})" if not r["problem"] else
                      f"{r['family']}: {r['problem']}" for r in rows)
    bad = any(r["problem"] for r in rows)
    return [tool, line, deps.Dep("permissions", "MISSING" if bad else "PASS", modes)]

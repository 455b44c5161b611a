"""What resuming a sent-back worker saves (issue 19): the scripted re-brief's second attempt, resumed vs cold.

Usage: python3 bench/resume.py [--kb 24] [--only claude|codex]

A stage with ``Max loops: 2`` runs through whole ticks with the real ``claude`` and ``codex`` CLIs (npm, as the
e2e tests install them) against a scripted model server on 127.0.0.1. The worker's first round reads the
card's three input files (``cat``, ``--kb`` KB in all: the context it builds), writes the deliverable and
its handoff; the verifier FAILs it; the second round fixes the file. Resumed, the second round continues
the first session: the earlier conversation comes along, and a real API serves it from its prompt cache.
Cold (``resume: false``), it starts a new session that must read the inputs again.

The server plays a prompt cache: each request's input tokens (its JSON, 4 characters a token) are cache
reads up to the longest prefix an earlier request of the same API shared, and fresh input (for Anthropic
also a cache write) after it. The CLIs report those counts as they would a real API's, and autometta books
what the second round spent (the stage's session record; a resumed run's session-wide figures taken apart).
USD: claude's own ``total_cost_usd`` (its price table: cache reads at a tenth of input, cache writes at
1.25 x); codex prints no cost, so its counts are priced at the list prices autometta's API verifier uses
(``autometta.verify.request.PRICES``, cached input at a tenth).

It prints one line per worker family and mode, then the saving. Skips (exit 0, a message) without the CLIs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autometta import families, yamlsub  # noqa: E402
from autometta.agents.logwriter import read_log  # noqa: E402
from autometta.families.usage import Usage  # noqa: E402
from autometta.paths import HomePaths, RepoPaths  # noqa: E402
from autometta.tick import loop as tick  # noqa: E402
from autometta.verify.request import price_of  # noqa: E402

STAGE = {"claude": "01-claude-works", "codex": "01-codex-works"}
REBRIEF_MARK = "Re-brief: loop 2 of 2"
FIRST, SECOND = "First draft.\n", "Hello, reviewed and fixed.\n"
_VERDICT_PATH_RE = re.compile(r"/state/verifiers/[0-9a-z-]+\.[0-9a-f]{32}\.json")
INPUTS = ("docs/input-1.md", "docs/input-2.md", "docs/input-3.md")


def _tokens_of(text: str) -> int:
    return max(1, len(text) // 4)


class Cache:
    """A prompt cache per API: the longest prefix any earlier request shared is read from it."""

    def __init__(self) -> None:
        self.seen: Dict[str, List[str]] = {"claude": [], "codex": []}

    def usage(self, api: str, body: Dict[str, Any]) -> Dict[str, int]:
        if api == "claude":
            parts = [json.dumps(body.get("tools")), json.dumps(body.get("system"))]
            parts += [json.dumps(m) for m in body.get("messages") or []]
        else:
            parts = [json.dumps(body.get("tools")), json.dumps(body.get("instructions"))]
            parts += [json.dumps(i) for i in body.get("input") or []]
        text = "\n".join(parts)
        shared = max((len(os.path.commonprefix([text, before])) for before in self.seen[api]), default=0)
        self.seen[api].append(text)
        cached, total = _tokens_of(text[:shared]) if shared else 0, _tokens_of(text)
        return {"cache_read": cached, "fresh": max(total - cached, 0)}


def run_case(clis: Dict[str, str], work: Path, family: str, resume: bool, kb: int) -> Dict[str, Any]:
    from tests.testing.env import isolate_env
    from tests.testing.repos import CARD, make_repo
    from tests.e2e.test_tick_real_clis import (CLAUDE, CODEX, FAMILY, agent_environment, agent_key, await_agents,
                                               envelope, pass_env, user_text)
    from tests.testing.model_server import ModelServer, Request, Tokens, Turn, shell, text, verdict_path, write_file
    from tests.testing.ticks import commit_all, read_state
    import pytest

    monkeypatch = pytest.MonkeyPatch()
    try:
        isolate_env(monkeypatch, work)
        home_dir = HomePaths.from_env().root
        repo = make_repo(work / "proj")
        worker, verifier = (CLAUDE, CODEX) if family == "claude" else (CODEX, CLAUDE)
        stage_id = STAGE[family]
        for n, name in enumerate(INPUTS):
            path = repo / name
            path.parent.mkdir(parents=True, exist_ok=True)
            line = f"Input {n + 1}: a paragraph of background the worker must read before it writes. "
            path.write_text((line * (kb * 1024 // len(INPUTS) // len(line) + 1))[: kb * 1024 // len(INPUTS)])
        body = CARD.format(stage_id=stage_id, title=f"Stage {stage_id}", worker=worker, verifier=verifier)
        body = body.replace("10 minutes", "2 minutes").replace("5 minutes", "2 minutes")
        body = body.replace("- **Verifier panel:** false", "- **Verifier panel:** false\n- **Max loops:** 2\n"
                            "- **Allowed commands:** `cat`")
        body = body.replace("- `README.md`", "\n".join(f"- `{name}`" for name in INPUTS))
        card = repo / "docs" / "stages" / f"{stage_id}.md"
        card.parent.mkdir(parents=True, exist_ok=True)
        card.write_text(body)
        paths = RepoPaths(repo)
        tree = repo / ".autometta" / "worktrees" / stage_id
        deliverable = str(tree / f"out/{stage_id}.txt") if family == "claude" else f"out/{stage_id}.txt"
        handoff = (write_file(str(paths.handoff(stage_id)), envelope(stage_id, worker)) if family == "claude"
                   else shell("printf '%s' '" + envelope(stage_id, worker).replace("'", "'\\''")
                              + "' > \"$AUTOMETTA_HANDOFF\""))
        reads = [shell(f"cat {name}") for name in INPUTS]

        def rounds(content: str, read: bool) -> List[Turn]:
            return (list(map(_copy, reads)) if read else []) + [
                write_file(deliverable, content), _copy(handoff), text("Wrote the file and the handoff envelope.")]

        def verdict(overall: str) -> str:
            return json.dumps({"stage_id": stage_id, "verifier_identity": verifier,
                               "verifier_invocation": f"autometta tick ({FAMILY[verifier]} cli)",
                               "ran_at": "2026-12-05T00:00:00Z",
                               "criteria": [{"id": 1, "name": "The file exists", "verdict": overall,
                                             "evidence": f"out/{stage_id}.txt:1"}],
                               "additional_findings": "", "overall": overall, "headline": "hello"})

        vf = FAMILY[verifier]
        script: Dict[str, List[Turn]] = {
            f"{family}:worker:{stage_id}": rounds(FIRST, True),
            f"{vf}:verifier:{stage_id}": [write_file(verdict_path(stage_id), verdict("FAIL")), text("FAIL.")],
        }
        later = {f"{family}:worker:{stage_id}#2": rounds(SECOND, not resume),
                 f"{vf}:verifier:{stage_id}#2": [write_file(verdict_path(stage_id), verdict("PASS")), text("PASS.")]}
        cache, verdicts, offsets = Cache(), {}, {}

        def key(request: Request) -> str:
            name = agent_key(request)
            if ":verifier:" in name:
                found = _VERDICT_PATH_RE.search(json.dumps(request.body))
                path = found.group(0) if found else ""
                verdicts.setdefault(path, len(verdicts) + 1)
                name += "#2" if verdicts[path] == 2 else ""
            elif REBRIEF_MARK in user_text(request):
                name += "#2"
            if name in later and name not in offsets:
                offsets[name] = request.turn_index()
                script[name] = [text("(padding)")] * offsets[name] + later[name]
            turns = script.get(name) or []
            index = request.turn_index()
            if 0 <= index < len(turns):
                counted = cache.usage(request.api, request.body)
                fresh = counted["fresh"]
                turns[index].tokens = Tokens(input=fresh if request.api == "codex" else 0,
                                             cache_write=fresh if request.api == "claude" else 0,
                                             cache_read=counted["cache_read"], output=40)
            return name

        with ModelServer(script, key=key) as server:
            agent_environment(monkeypatch, clis, server.url, work)
            for command in (["init-host"], ["subscribe", str(repo)]):
                _cli(command)
            pass_env(repo, ["ANTHROPIC_BASE_URL", "CLAUDE_CODE_OAUTH_TOKEN"])
            if not resume:
                doc = yamlsub.loads(paths.manifest.read_text())
                doc["resume"] = False
                paths.manifest.write_text(yamlsub.dumps(doc))
            commit_all(repo, "one stage that goes round twice")
            _cli(["add-stage", str(repo), str(card)])
            deadline = time.monotonic() + 300
            for _ in range(20):
                (outcome,) = tick.run_tick(HomePaths(home_dir), echo=False)
                await_agents(repo, deadline)
                if outcome.kind in ("wait", "noop", "halt", "halted", "error"):
                    break
            problems = list(server.problems)
        stage = read_state(repo)["stages"][0]
        if stage["status"] != "completed" or problems:
            raise SystemExit(f"{family} {'resumed' if resume else 'cold'}: the stage did not finish: "
                             f"{stage.get('status')} {stage.get('stall_marker')} {problems}")
        w1, w2 = [r for r in stage["sessions"] if r["role"] == "worker"]
        assert w2["resumed"] is resume, w2
        fam = families.get(family)
        reported = fam.parse_usage(read_log(paths.log(stage_id, "worker")))  # the second round's log
        before = Usage(**{k: v for k, v in (w1.get("reported") or {}).items() if v is not None}) if resume else None
        own = fam.run_usage(reported, before) if before is not None else reported
        usd = w2.get("cost_usd") if family == "claude" else _priced("gpt-5.5", own)
        return {"family": family, "mode": "resumed" if resume else "cold", "tokens": w2["tokens"],
                "cache_read": w2["cache_read_tokens"], "usd": usd, "requests": len(later[
                    f"{family}:worker:{stage_id}#2"])}
    finally:
        monkeypatch.undo()


def _copy(turn: Any) -> Any:
    import dataclasses

    return dataclasses.replace(turn)


def _priced(model: str, usage: Usage) -> Optional[float]:
    price = price_of(model)
    if price is None:
        return None
    pin, pwrite, pread, pout = price
    return (usage.input_tokens * pin + usage.cache_write_tokens * pwrite + usage.cache_read_tokens * pread
            + usage.output_tokens * pout) / 1e6


def _cli(args: List[str]) -> None:
    from autometta.cli import main as cli_main
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = cli_main(args)
    if code != 0:
        raise SystemExit(f"autometta {' '.join(args)} exited {code}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kb", type=int, default=24, help="size of the card's input files, in all")
    parser.add_argument("--only", choices=("claude", "codex"), help="one worker family")
    args = parser.parse_args()
    from tests.testing.agent_clis import ensure_clis, unavailable_reason

    clis = ensure_clis()
    if clis is None:
        print(f"skipped: the real CLIs are unavailable ({unavailable_reason()})")
        return 0
    print("the re-brief's second round of the worker, as booked "
          f"(inputs {args.kb} KB; tokens = fresh input + cache writes + output):")
    for family in (args.only,) if args.only else ("claude", "codex"):
        rows = {}
        for resume in (True, False):
            with tempfile.TemporaryDirectory() as tmp:
                work = Path(tmp)
                (work / "tmp").mkdir()
                os.environ["TMPDIR"] = str(work / "tmp")  # codex's sandbox helper refuses a home under it
                row = run_case(clis, work, family, resume, args.kb)
            rows[row["mode"]] = row
            usd = "n/a" if row["usd"] is None else f"${row['usd']:.4f}"
            print(f"  {family} worker, {row['mode']:<7}: {row['requests']} model requests, {row['tokens']:>7} tokens "
                  f"+ {row['cache_read']:>7} cache reads, {usd}")
        cold, warm = rows["cold"], rows["resumed"]
        if cold["usd"] and warm["usd"] is not None:
            print(f"  {family}: resuming saves {1 - warm['tokens'] / max(cold['tokens'], 1):.0%} of the tokens and "
                  f"{1 - warm['usd'] / cold['usd']:.0%} of the USD of the second round")
    return 0


if __name__ == "__main__":
    sys.exit(main())

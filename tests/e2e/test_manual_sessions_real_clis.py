"""A stage run by hand records the sessions the real CLIs used (issue 19): ``dispatch``, ``verify`` and
``accept`` with a claude worker and a codex verifier against the scripted model server; ``show --json`` lists
the worker's session under the id claude was given (``--session-id``) and the verifier's under the one codex
named (``thread.started``), both cold (``fallback: by_hand``).

Skips like the other e2e tests when the CLIs cannot be installed or AUTOMETTA_SKIP_E2E=1.
"""

from __future__ import annotations

import json

from autometta import families
from autometta.agents.logwriter import read_log
from autometta.paths import RepoPaths
from tests.e2e.test_resume_real_clis import _card, _verdict, _worker_turns
from tests.e2e.test_tick_real_clis import CLAUDE, CODEX, agent_key, subscribed
from tests.testing.model_server import ModelServer, text, verdict_path, write_file
from tests.testing.repos import make_repo
from tests.testing.ticks import commit_all

SID = "01-claude-works"


def test_a_stage_run_by_hand_records_the_sessions_the_clis_used(clis, run, tmp_path, home_dir, monkeypatch):
    repo = make_repo(tmp_path / "proj")
    script = {f"claude:worker:{SID}": _worker_turns(repo, SID, "Hello.\n", "claude", 0),
              f"codex:verifier:{SID}": [write_file(verdict_path(SID), _verdict(SID, CODEX, "PASS", f"out/{SID}.txt:1")),
                                         text("PASS.")]}
    with ModelServer(script, key=agent_key) as server:
        subscribed(run, repo, monkeypatch, clis, server.url, tmp_path)
        card = _card(repo, SID, CLAUDE, CODEX)
        commit_all(repo, "a stage run by hand")
        paths = RepoPaths(repo)
        for cmd in (("dispatch", str(card), "--wait"), ("verify", str(card), "--wait"), ("accept", str(card))):
            res = run(*cmd)
            assert res.code == 0, (cmd, res.out, res.err, read_log(paths.log(SID, "worker"))[-1500:],
                                   read_log(paths.log(SID, "verifier"))[-1500:], server.problems)
    shown = json.loads(run("show", str(repo), SID, "--json").out)["sessions"]
    worker = families.get("claude").session_id(read_log(paths.log(SID, "worker")))
    verifier = families.get("codex").session_id(read_log(paths.log(SID, "verifier")))
    assert worker and verifier
    assert [(s["role"], s["id"], s["family"], s["resumed"], s["fallback"]) for s in shown] == [
        ("worker", worker, "claude", False, "by_hand"), ("verifier", verifier, "codex", False, "by_hand")]
    assert all(s["tokens"] for s in shown)

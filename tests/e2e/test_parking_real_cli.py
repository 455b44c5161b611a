"""Usage-limit parking with the real ``claude`` CLI: a scripted usage limit parks claude's billing route
(for every repo on this host) until its reset.

The scripted model server answers the worker's first conversation with a
subscription usage limit (HTTP 429 with the ``anthropic-ratelimit-unified-*``
headers, reset in two hours). The tick must park the route (not fail the
stage), do nothing on ticks before the reset, and on the first tick after it
resume the worker's session, which then finishes the stage. Skips like the other e2e
tests when the CLIs cannot be installed or AUTOMETTA_SKIP_E2E=1.
"""

from __future__ import annotations

import json
import time

from autometta.tick import loop as tick
from autometta.paths import HomePaths
from tests.testing.repos import make_repo
from tests.e2e.test_tick_real_clis import (CLAUDE, CODEX, DEADLINE, _stop_group, agent_key,
                                           agent_pids, await_agents, envelope, subscribed, user_text,
                                           verdict, write_cards)
from tests.testing.model_server import ModelServer, Request, error, from_turn, text, verdict_path, write_file
from tests.testing.ticks import commit_all, git, read_budget, read_state


SID = "01-claude-works"


def test_a_real_usage_limit_parks_the_repo_until_the_reset(clis, run, tmp_path, home_dir, monkeypatch):
    deadline = time.monotonic() + DEADLINE
    repo = make_repo(tmp_path / "proj")
    reset = int(time.time()) + 2 * 3600
    out = str(repo / ".autometta" / "worktrees" / SID / f"out/{SID}.txt")  # the stage runs in its worktree
    script = {
        f"claude:worker:{SID}#limited": [error(429, resets_at=reset)],
        f"claude:worker:{SID}": [write_file(out, "Hello from Claude.\n"),
                                 write_file(str(repo / f"state/handoffs/{SID}.json"), envelope(SID, CLAUDE)),
                                 text("Done.")],
        f"codex:verifier:{SID}": [write_file(verdict_path(SID), verdict(SID, CODEX, "Greeting")),
                                  text("PASS.")],
    }
    first = []
    work = script[f"claude:worker:{SID}"]

    def key(request: Request) -> str:
        name = agent_key(request)
        if name == f"claude:worker:{SID}" and request.turn_index() == 0 and not first:
            first.append(request)
            return name + "#limited"
        if name == f"claude:worker:{SID}" and "continuing your own session" in user_text(request):
            # the resumed session: its first request already holds what the first run's conversation
            # kept (claude 2.1.197 keeps the limit's message as a reply, 2.1.332 does not)
            name += "#resumed"
            if name not in script:
                script[name] = from_turn(request.turn_index(), work)
        return name

    def tick_once(now=None):
        (outcome,) = tick.run_tick(HomePaths(home_dir), echo=False, now=now)
        await_agents(repo, deadline)
        return outcome

    with ModelServer(script, key=key) as server:
        subscribed(run, repo, monkeypatch, clis, server.url, tmp_path)
        card = write_cards(repo)[0]
        (repo / "docs" / "stages" / "02-codex-works.md").unlink()
        commit_all(repo, "one stage")
        assert run("add-stage", str(repo), str(card)).code == 0
        try:
            outcomes = [tick_once()]  # claim, worker
            outcomes.append(tick_once())  # the worker hit the limit: parked
            doc = read_state(repo)
            until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(reset + 60))
            context = f"{[(o.kind, o.message) for o in outcomes]}\n{server.problems}"
            assert doc["stages"][0]["parked_until"] == until, context
            park = json.loads((home_dir / "parked.json").read_text())["routes"]["claude subscription"]
            assert park["until"] == until and "worker hit a usage limit" in park["reason"]
            assert doc["stages"][0]["status"] == "in_progress"
            assert read_budget(repo)["consecutive_failures"] == 0
            assert f"parked until {until}" in run("status").out

            posts, pids = len(server.model_requests("claude")), agent_pids(repo)
            for _ in range(3):  # ticks before the reset do nothing
                outcome = tick_once()
                assert outcome.kind == "wait" and outcome.message.startswith(f"stage {SID} worker waits"), \
                    outcome.message
            assert len(server.model_requests("claude")) == posts and agent_pids(repo) == pids  # nothing started

            outcome = tick_once(now=reset + 61)  # the first tick after the reset resumes
            assert "dispatching the worker again" in outcome.message, outcome.message
            for _ in range(6):
                outcome = tick_once()
                if outcome.kind in ("wait", "noop", "halt", "halted", "error"):
                    break
        finally:
            for pid in agent_pids(repo):
                _stop_group(pid)
        problems = list(server.problems)

    doc = read_state(repo)
    assert doc["stages"][0]["status"] == "completed", (doc, problems)
    assert doc["stages"][0]["parked_until"] is None
    assert git(repo, "log", "-1", "--format=%s").startswith(SID)
    assert (repo / f"out/{SID}.txt").read_text() == "Hello from Claude.\n"  # landed from the worktree

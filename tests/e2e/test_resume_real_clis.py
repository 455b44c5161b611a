"""Resume, don't restart (issue 19) with the real ``claude`` and ``codex`` CLIs against the scripted model server.

Two directions, each a stage of its own: claude works and codex verifies, and the reverse. The verifier FAILs
the worker's first round (``Max loops: 2``) and passes the second; the worker's second run must be its first
session resumed: the model server sees the first round's conversation (its tool calls and results) in the
second run's first request, with the re-brief as a new user message, and the session id the stage records
is the one the CLI used (claude's ``--session-id``, codex's ``thread.started``). The stage lands with one
commit, and the tokens and cost booked count each model reply once (claude 2.1.332's session-wide
``total_cost_usd`` and codex's session-wide ``turn.completed`` usage are not counted twice).

Then the same for a usage limit hit mid-run: the worker's first run writes its file and hits a subscription
usage limit; after the reset the worker resumes that session, the server sees the first run's tool call in
the resumed request, and the stage lands.

Skips like the other e2e tests when the CLIs cannot be installed or AUTOMETTA_SKIP_E2E=1.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Dict, List, Optional

import pytest

from autometta import families
from autometta.agents.logwriter import read_log
from autometta.paths import HomePaths, RepoPaths
from autometta.tick import loop as tick
from tests.testing.repos import CARD, make_repo
from tests.e2e.test_tick_real_clis import (CLAUDE, CODEX, DEADLINE, FAMILY, SONNET_PRICES, _stop_group,
                                           agent_key, agent_pids, await_agents, envelope,
                                           subscribed, tick_until_quiet, user_text)
from tests.testing.model_server import (ModelServer, Request, Tokens, Turn, error, from_turn, shell, text,
                                        verdict_path, write_file)
from tests.testing.ticks import commit_all, git, read_budget, read_state

#: stage id -> (worker, verifier)
STAGES = {"01-claude-works": (CLAUDE, CODEX), "02-codex-works": (CODEX, CLAUDE)}
FIRST, SECOND = "First draft.\n", "Hello, reviewed and fixed.\n"
REBRIEF_MARK = "Re-brief: loop 2 of 2"
_VERDICT_PATH_RE = re.compile(r"/state/verifiers/[0-9a-z-]+\.[0-9a-f]{32}\.json")


def _verdict(stage_id: str, verifier: str, overall: str, evidence: str) -> str:
    return json.dumps({
        "stage_id": stage_id, "verifier_identity": verifier,
        "verifier_invocation": f"autometta tick ({FAMILY[verifier]} cli)", "ran_at": "2026-12-05T00:00:00Z",
        "criteria": [{"id": 1, "name": "The file exists", "verdict": overall, "evidence": evidence}],
        "additional_findings": "", "overall": overall, "headline": f"{stage_id} says hello",
    })


def _card(repo: Path, stage_id: str, worker: str, verifier: str) -> Path:
    body = CARD.format(stage_id=stage_id, title=f"Stage {stage_id}", worker=worker, verifier=verifier)
    body = body.replace("10 minutes", "1 minute").replace("5 minutes", "1 minute")
    body = body.replace("- **Verifier panel:** false", "- **Verifier panel:** false\n- **Max loops:** 2")
    card = repo / "docs" / "stages" / f"{stage_id}.md"
    card.parent.mkdir(parents=True, exist_ok=True)
    card.write_text(body)
    return card


def _worker_turns(repo: Path, stage_id: str, content: str, family: str, n: int) -> List[Turn]:
    """Write the deliverable (in the stage's worktree), the handoff, say done; distinct token counts."""
    paths = RepoPaths(repo)
    work = repo / ".autometta" / "worktrees" / stage_id
    deliverable = str(work / f"out/{stage_id}.txt") if family == "claude" else f"out/{stage_id}.txt"
    worker = STAGES.get(stage_id, (CLAUDE if family == "claude" else CODEX,))[0]
    handoff = (write_file(str(paths.handoff(stage_id)), envelope(stage_id, worker)) if family == "claude"
               else shell("printf '%s' '" + envelope(stage_id, worker).replace("'", "'\\''")
                          + "' > \"$AUTOMETTA_HANDOFF\""))
    turns = [write_file(deliverable, content), handoff, text("Wrote the file and the handoff envelope.")]
    for index, turn in enumerate(turns):
        turn.tokens = _tokens(family, n, index)
    return turns


def _tokens(family: str, n: int, turn: int) -> Tokens:
    base = 1000 * (n + 1) + 10 * turn
    if family == "claude":
        return Tokens(input=base, output=20 + turn, cache_read=100 * (turn + 1), cache_write=40 if turn == 0 else 0)
    return Tokens(input=base, output=30 + turn, cache_read=150 * turn, reasoning=turn)


class Keys:
    """The model server's conversation keys: ``<api>:<role>:<stage>`` plus ``#2`` for a stage's second round.

    A resumed conversation starts at the turn its first round ended on, so the second round's turns are put
    at that offset when its first request arrives (the request tells how many replies it already holds).
    """

    def __init__(self, script: Dict[str, List[Turn]], later: Dict[str, List[Turn]]) -> None:
        self.script, self.later = script, later
        self.verdicts: Dict[str, Dict[str, int]] = {}  # key -> verdict path -> round
        self.offsets: Dict[str, int] = {}

    def __call__(self, request: Request) -> str:
        key = agent_key(request)
        if ":verifier:" in key:
            found = _VERDICT_PATH_RE.search(json.dumps(request.body))
            seen = self.verdicts.setdefault(key, {})
            if found and found.group(0) not in seen:
                seen[found.group(0)] = len(seen) + 1
            if found and seen[found.group(0)] == 2:
                key += "#2"
        elif ":worker:" in key and REBRIEF_MARK in user_text(request):
            key += "#2"
        if key in self.later and key not in self.offsets:
            self.offsets[key] = request.turn_index()
            self.script[key] = from_turn(self.offsets[key], self.later[key])
        return key


def _first_of(requests: List[Request], key: str, keys: Keys) -> Request:
    return next(r for r in requests if r.method == "POST" and r.api and keys(r) == key)


def _expected(family: str, turns: List[Turn]) -> tuple:
    if family == "claude":
        pin, pout, pwrite, pread = SONNET_PRICES
        return (sum(t.tokens.input + t.tokens.cache_write + t.tokens.output for t in turns),
                sum(t.tokens.input * pin + t.tokens.output * pout + t.tokens.cache_write * pwrite
                    + t.tokens.cache_read * pread for t in turns) / 1e6)
    return sum(t.tokens.input + t.tokens.output for t in turns), None


def test_a_failed_verdict_resumes_the_workers_session_in_both_directions(clis, run, tmp_path, home_dir,
                                                                          monkeypatch):
    deadline = time.monotonic() + DEADLINE
    repo = make_repo(tmp_path / "proj")
    script: Dict[str, List[Turn]] = {}
    later: Dict[str, List[Turn]] = {}
    for n, (stage_id, (worker, verifier)) in enumerate(STAGES.items()):
        wf, vf = FAMILY[worker], FAMILY[verifier]
        script[f"{wf}:worker:{stage_id}"] = _worker_turns(repo, stage_id, FIRST, wf, 2 * n)
        later[f"{wf}:worker:{stage_id}#2"] = _worker_turns(repo, stage_id, SECOND, wf, 2 * n + 1)
        script[f"{vf}:verifier:{stage_id}"] = [
            write_file(verdict_path(stage_id), _verdict(stage_id, verifier, "FAIL", "it says 'First draft'")),
            text("FAIL.")]
        later[f"{vf}:verifier:{stage_id}#2"] = [
            write_file(verdict_path(stage_id), _verdict(stage_id, verifier, "PASS", f"out/{stage_id}.txt:1")),
            text("PASS.")]
    keys = Keys(script, later)

    with ModelServer(script, key=keys) as server:
        subscribed(run, repo, monkeypatch, clis, server.url, tmp_path)
        cards = [_card(repo, stage_id, *pair) for stage_id, pair in STAGES.items()]
        commit_all(repo, "two stages that go round twice")
        base = git(repo, "rev-parse", "HEAD").strip()
        for card in cards:
            assert run("add-stage", str(repo), str(card)).code == 0
        try:
            outcomes = tick_until_quiet(home_dir, repo, deadline, limit=30)
        finally:
            for pid in agent_pids(repo):
                _stop_group(pid)
        requests = list(server.requests)
        problems = list(server.problems)

    paths = RepoPaths(repo)
    state = read_state(repo)
    context = (f"{[(o.kind, o.message) for o in outcomes]}\n{problems}\n"
               + "".join(f"--- {s} {r}\n{read_log(paths.log(s, r))[-1500:]}\n" for s in STAGES
                         for r in ("worker", "verifier")))
    assert {s["id"]: (s["status"], s["loops"]) for s in state["stages"]} == dict.fromkeys(
        STAGES, ("completed", 2)), context
    assert problems == [], context
    commits = git(repo, "log", "--format=%s", f"{base}..HEAD").splitlines()
    assert len(commits) == 2, commits  # one commit a stage
    budget = read_budget(repo)
    want_tokens = 0
    want_cost = 0.0

    for stage_id, (worker, verifier) in STAGES.items():
        wf = FAMILY[worker]
        stage = next(s for s in state["stages"] if s["id"] == stage_id)
        assert git(repo, "show", f"HEAD:out/{stage_id}.txt") == SECOND  # the resumed round's work landed
        w1, w2 = [r for r in stage["sessions"] if r["role"] == "worker"]
        v1, v2 = [r for r in stage["sessions"] if r["role"] == "verifier"]
        assert (w1["resumed"], w2["resumed"], w2["of"], w2["fallback"]) == (False, True, "rebrief", None), stage
        assert w1["id"] and w2["id"] == w1["id"]
        assert not v1["resumed"] and not v2["resumed"] and len({v1["id"], v2["id"], w1["id"]}) == 3
        # the id the stage records is the one the CLI used
        log = read_log(paths.log(stage_id, "worker"))  # the second run's
        assert families.get(wf).session_id(log) == w1["id"], log[-2000:]
        # the second run's first request holds the first round's conversation, then the re-brief
        first = _first_of(requests, f"{wf}:worker:{stage_id}#2", keys)
        body = json.dumps(first.body)
        assert FIRST.strip() in body and "Wrote the file and the handoff envelope." in body, body[:3000]
        said = user_text(first)
        assert f"the worker for stage {stage_id} of" in said and REBRIEF_MARK in said
        assert said.index(f"the worker for stage {stage_id} of") < said.index(REBRIEF_MARK)
        assert first.turn_index() == keys.offsets[f"{wf}:worker:{stage_id}#2"] > 0
        # each model reply counted once: the resumed run's own tokens (and cost)
        turns = script[f"{wf}:worker:{stage_id}"] + later[f"{wf}:worker:{stage_id}#2"]
        tokens, cost = _expected(wf, turns)
        assert stage["worker_tokens"] == tokens == w1["tokens"] + w2["tokens"], (stage, tokens)
        assert w2["cache_read_tokens"] == sum(t.tokens.cache_read for t in later[f"{wf}:worker:{stage_id}#2"])
        if cost is not None:
            assert stage["worker_cost_usd"] == pytest.approx(cost, abs=2e-6)
            assert w1["cost_usd"] + w2["cost_usd"] == pytest.approx(cost, abs=2e-6)
        verifier_turns = script[f"{FAMILY[verifier]}:verifier:{stage_id}"] + later[
            f"{FAMILY[verifier]}:verifier:{stage_id}#2"]
        v_tokens, v_cost = _expected(FAMILY[verifier], verifier_turns)
        assert stage["verifier_tokens"] == v_tokens
        want_tokens += tokens + v_tokens
        want_cost += (cost or 0) + (v_cost or 0)
    assert budget["tokens_spent"] == want_tokens
    assert budget["cost_usd_spent"] == pytest.approx(want_cost, abs=5e-6)


@pytest.mark.parametrize("worker", [CLAUDE, CODEX], ids=["claude", "codex"])
def test_a_usage_limit_mid_run_resumes_the_session_after_the_reset(clis, run, tmp_path, home_dir, monkeypatch,
                                                                    worker):
    deadline = time.monotonic() + DEADLINE
    repo = make_repo(tmp_path / "proj")
    wf = FAMILY[worker]
    verifier = CODEX if worker == CLAUDE else CLAUDE
    stage_id = f"01-{wf}-works"
    reset = int(time.time()) + 2 * 3600
    first = _worker_turns(repo, stage_id, SECOND, wf, 0)
    script: Dict[str, List[Turn]] = {
        f"{wf}:worker:{stage_id}": [first[0], error(429, resets_at=reset)],
        f"{FAMILY[verifier]}:verifier:{stage_id}": [
            write_file(verdict_path(stage_id), _verdict(stage_id, verifier, "PASS", f"out/{stage_id}.txt:1")),
            text("PASS.")],
    }
    rest = first[1:]
    after: Dict[str, int] = {}
    limited: List[Request] = []

    def key(request: Request) -> str:
        name = agent_key(request)
        if name == f"{wf}:worker:{stage_id}" and "continuing your own session" in user_text(request):
            name += "#after"
            if name not in after:
                after[name] = request.turn_index()
                script[name] = from_turn(after[name], rest)
        elif name == f"{wf}:worker:{stage_id}" and request.turn_index() == 1:
            limited.append(request)
        return name

    def tick_once(now: Optional[float] = None) -> tick.Outcome:
        (outcome,) = tick.run_tick(HomePaths(home_dir), echo=False, now=now)
        await_agents(repo, deadline)
        return outcome

    with ModelServer(script, key=key) as server:
        subscribed(run, repo, monkeypatch, clis, server.url, tmp_path)
        card = _card(repo, stage_id, worker, verifier)
        commit_all(repo, "one stage")
        base = git(repo, "rev-parse", "HEAD").strip()
        assert run("add-stage", str(repo), str(card)).code == 0
        outcomes = []
        try:
            outcomes.append(tick_once())  # claim, worker: writes its file, then hits the limit
            outcomes.append(tick_once())  # parked
            stage = read_state(repo)["stages"][0]
            assert stage["parked_until"], ([(o.kind, o.message) for o in outcomes], server.problems,
                                           read_log(RepoPaths(repo).log(stage_id, "worker"))[-2000:])
            outcome = tick_once(now=reset + 61)  # the first tick after the reset resumes the session
            assert "dispatching the worker again" in outcome.message, outcome.message
            for _ in range(8):
                outcome = tick_once()
                outcomes.append(outcome)
                if outcome.kind in ("wait", "noop", "halt", "halted", "error"):
                    break
        finally:
            for pid in agent_pids(repo):
                _stop_group(pid)
        requests = list(server.requests)
        problems = list(server.problems)

    state = read_state(repo)
    stage = state["stages"][0]
    context = f"{[(o.kind, o.message) for o in outcomes]}\n{problems}\n{stage}"
    assert stage["status"] == "completed", context
    assert len(git(repo, "log", "--format=%s", f"{base}..HEAD").splitlines()) == 1
    assert git(repo, "show", f"HEAD:out/{stage_id}.txt") == SECOND
    w1, w2 = [r for r in stage["sessions"] if r["role"] == "worker"]
    assert (w2["resumed"], w2["of"], w2["id"]) == (True, "interrupted", w1["id"]), stage["sessions"]
    assert w1["id"]
    assert families.get(wf).session_id(read_log(RepoPaths(repo).log(stage_id, "worker"))) == w1["id"]
    resumed = next(r for r in requests if r.method == "POST" and r.api == wf
                   and "continuing your own session" in user_text(r))
    assert f"out/{stage_id}.txt" in json.dumps(resumed.body) and SECOND.strip() in json.dumps(resumed.body)
    assert resumed.turn_index() >= 1  # the first run's tool call and its result came along

"""An idle repo, told from its files alone (autometta/tick/idle.py), is told as the full tick tells it.

The full tick is one loop (``tick._process``): a stage in the repo's own tree
(``current_stage``, ``isolation: tree``) first, then every lane in flight (each
stage in a worktree of its own, at ``max_parallel`` 1 too), then claims. The
quick path may answer only where that loop would claim nothing and change
nothing; these tests hold it to that, in worktree and tree mode, at
``max_parallel`` 1 and above, and in every state a real run passes through.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Tuple

import pytest

from autometta import ticklog
from autometta.books import budget as budgets, state
from autometta.tick import idle
from tests.testing.ticks import await_agents, read_budget, read_state, tick_once

REPO = "/r"
REAL = idle.message
IDLE = "idle /r: no pending stage"


def done(stage_id: str, status: str = "completed", **fields) -> dict:
    return dict(state.new_stage(stage_id, "w", "v"), status=status, **fields)


LANE = {"worktree": "/r/.autometta/worktrees/01-a", "branch": "autometta/01-a", "base": "main"}


@pytest.mark.parametrize("changes,budget_changes,expected", [
    ({}, {}, IDLE),  # at any max_parallel and in either isolation mode: no lane is busy, so "idle"
    ({"stages": [done("01-a"), done("02-b", "failed"), done("03-c", "stalled")]}, {}, IDLE),
    ({"stages": [done("01-a"), done("02-b", "pending")]}, {}, None),  # something to claim
    ({"stages": [done("01-a", "in_progress", **LANE)]}, {}, None),  # a lane (max_parallel 1 too)
    ({"stages": [done("01-a", "in_progress", merge="queued", **LANE)]}, {}, None),  # accepted, to land
    ({"stages": [done("01-a", "in_progress")]}, {}, None),  # in the tree without current_stage: the bash version's
    ({"stages": ["not a stage"]}, {}, None),
    ({"stages": [done("01-a", tick_error={"error": "x", "count": 1, "since": "2026-01-01T00:00:00Z"})]}, {},
     None),  # the full path clears a noted tick error (autometta.tick.failures)
    ({"current_stage": "01-a", "stages": [done("01-a", "in_progress")]}, {}, None),  # isolation: tree
    ({"current_stage": "01-a", "stages": []}, {}, None),  # no record: the full path clears it
    ({"parked_until": "2999-01-01T00:00:00Z", "park_reason": "limit"}, {}, None),
    ({"parked_until": "2000-01-01T00:00:00Z"}, {}, None),
    ({"pending_kills": [{"pid": 1, "started": 1.0}]}, {}, None),
    ({}, {"halted": True, "halt_reason": "x"}, None),
    ({}, {"clock_ticks_used": 100, "clock_tick_cap": 100}, None),  # a cap reached halts
    ({}, {"clock_tick_cap": None}, None),  # a required cap missing counts as reached
])
def test_message(changes, budget_changes, expected):
    doc = dict(state.initial_state(), **changes)
    b = dict(budgets.initial_budget(), **budget_changes)
    assert idle.message(REPO, doc, b) == expected


def _tick(home: Path) -> Tuple[List[tuple], List[str]]:
    """One tick: its outcomes, and the messages it logged (without their timestamps)."""
    log_dir = home / "log"
    before = {p: p.read_text() for p in log_dir.glob("tick-*.log")} if log_dir.is_dir() else {}
    outcomes = [(o.repo, o.message, o.kind, o.error) for o in tick_once(home)]
    lines = []
    for path in sorted(log_dir.glob("tick-*.log")):
        lines += path.read_text()[len(before.get(path, "")):].splitlines()
    return outcomes, [line.split(" ", 1)[1] for line in lines]


def _files(repo: Path) -> dict:
    """The repo's state files, but the heartbeat's report (rewritten at every tick once an agent ran)."""
    return {p.name: p.read_bytes() for p in (repo / "state").iterdir() if p.is_file() and p.name != "heartbeat.json"}


def _configure(repo: Path, text: str) -> None:
    with open(repo / ".autometta.local.yaml", "a") as handle:
        handle.write(text)


class Spy:
    """idle.message, recording what it said; ``off`` sends every repo down the full path."""

    def __init__(self, monkeypatch) -> None:
        self.said: List[Optional[str]] = []
        self.off = False
        monkeypatch.setattr(idle, "message", self)

    def __call__(self, *args) -> Optional[str]:
        said = REAL(*args)
        self.said.append(said)
        return None if self.off else said


def _quick_then_full(home: Path, repo: Path, spy: Spy) -> None:
    """An idle repo: the quick path answers, and says and leaves exactly what the full path does."""
    tick_once(home)  # whatever a first idle tick settles (the dashboard page)
    before = _files(repo)
    spy.said.clear()
    quick = _tick(home)
    assert spy.said and all(spy.said), spy.said  # the quick path answered
    assert [kind for _, _, kind, _ in quick[0]] == ["wait"]
    spy.off = True
    full = _tick(home)
    spy.off = False
    assert quick == full
    assert _files(repo) == before


@pytest.mark.parametrize("world", ["new", "lanes", "tree"])
def test_the_quick_path_says_what_the_full_tick_says(setup, monkeypatch, world):
    repo, home, _ = setup
    if world == "lanes":
        _configure(repo, "max_parallel: 3\n")
    if world == "tree":
        _configure(repo, "isolation: tree\n")
    _quick_then_full(home, repo, Spy(monkeypatch))


def test_tree_mode_with_parallel_stages_is_the_same_error_either_way(setup, monkeypatch):
    repo, home, _ = setup
    _configure(repo, "isolation: tree\nmax_parallel: 2\n")
    spy = Spy(monkeypatch)
    quick = _tick(home)
    spy.off = True
    assert _tick(home) == quick
    assert quick[0][0][3] and "isolation: tree" in quick[0][0][1]
    assert spy.said == []  # the repo's settings are refused before either path looks at its state


@pytest.mark.parametrize("mode,parallel", [("worktree", 1), ("worktree", 2), ("tree", 1)])
def test_in_every_state_of_a_run_the_quick_path_answers_only_where_the_full_tick_is_idle(
        setup, monkeypatch, mode, parallel):
    """A real run through claims, lanes (or the stage in the tree), verdicts and landings: before each tick
    idle.message is asked; wherever it says idle, the full tick (which then runs) says the same and changes
    nothing. It must say so once the queue is drained."""
    repo, home, add = setup
    if mode == "tree":
        _configure(repo, "isolation: tree\n")
    if parallel > 1:
        _configure(repo, f"max_parallel: {parallel}\n")
    add("01-hello")
    add("02-again", depends_on="01-hello")  # at max_parallel 2, a claim that waits beside a lane
    spy = Spy(monkeypatch)
    spy.off = True  # every tick below is the full one
    answered, seen = [], set()
    for _ in range(20):
        doc, b = read_state(repo), read_budget(repo)
        quiet = REAL(str(repo), doc, b)
        seen.add((doc.get("current_stage") is not None, len(state.lane_stages(doc)),
                  tuple(s.get("status") for s in doc.get("stages") or [])))
        before = _files(repo)
        outcomes, logged = _tick(home)
        await_agents(repo)
        if quiet is not None:
            answered.append(quiet)
            assert outcomes == [(str(repo), quiet, "wait", False)] and logged == [f"{ticklog.tag(repo)} {quiet}"]
            assert _files(repo) == before
            break
    assert answered == [f"idle {repo}: no pending stage"]
    assert [s["status"] for s in read_state(repo)["stages"]] == ["completed", "completed"]
    in_tree = {current for current, _, _ in seen}
    lanes = {count for _, count, _ in seen}
    assert in_tree == {False, mode == "tree"} and lanes == ({0} if mode == "tree" else {0, 1})
    assert (repo / "state" / "active-agents").is_dir()  # the heartbeat runs on the quick path too
    _quick_then_full(home, repo, Spy(monkeypatch))


def test_runs_booked_by_hand_since_take_an_idle_repo_down_the_full_path(setup, monkeypatch):
    """The full path folds the spend ledger into budget.json (and a cap it reaches halts the repo): an idle repo
    with entries past its offset is not answered by the quick path."""
    import json
    import os

    from autometta.books import ledger
    from autometta.families.usage import Usage
    from autometta.paths import HomePaths

    repo, home, _ = setup
    tick_once(home)
    b = read_budget(repo)
    b["token_cap_total"] = 50
    (repo / "state" / "budget.json").write_text(json.dumps(b))
    tick_once(home)  # a person's edit, accepted by the books
    assert ledger.book(HomePaths(home), ledger.make_entry(
        key="k1", repo=os.path.realpath(repo), stage_id="01-x", role="worker", info={"family": "script"},
        by="hand", started_at="2026-12-04T10:00:00Z", ended_at="2026-12-04T10:01:00Z", seconds=60,
        usage=Usage(input_tokens=70)))
    spy = Spy(monkeypatch)
    [outcome] = tick_once(home)
    assert spy.said == []  # not asked: the ledger sent it the full way
    b = read_budget(repo)
    assert b["tokens_spent"] == 70 and b["halted"] and b["halt_reason"] == "token-cap" and outcome.kind == "halt"

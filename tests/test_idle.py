"""An idle repo, told from its files alone (autometta/idle.py), is told as the full tick tells it."""

from __future__ import annotations

from pathlib import Path
from typing import List, Tuple

import pytest

from autometta import budget as budgets
from autometta import idle, state
from tests.tickkit import run_until_quiet, tick_once

REPO = "/r"
IDLE = "idle /r: no pending stage"


def done(stage_id: str, status: str = "completed") -> dict:
    return dict(state.new_stage(stage_id, "w", "v"), status=status)


@pytest.mark.parametrize("changes,budget_changes,parallel,expected", [
    ({}, {}, 1, IDLE),
    ({}, {}, 3, IDLE),  # no lane busy: the claim says idle at any max_parallel
    ({"stages": [done("01-a"), done("02-b", "failed"), done("03-c", "stalled")]}, {}, 1, IDLE),
    ({"stages": [done("01-a"), done("02-b", "pending")]}, {}, 1, None),  # something to claim
    ({"stages": [done("01-a", "in_progress")]}, {}, 1, None),  # a lane, or a stage without its record
    ({"stages": ["not a stage"]}, {}, 1, None),
    ({"current_stage": "01-a", "stages": [done("01-a", "in_progress")]}, {}, 1, None),
    ({"parked_until": "2000-01-01T00:00:00Z"}, {}, 1, None),  # the full path clears a park that ran out
    ({"pending_kills": [{"pid": 1, "started": 1.0}]}, {}, 1, None),
    ({}, {"halted": True, "halt_reason": "x"}, 1, None),
    ({}, {"clock_ticks_used": 100, "clock_tick_cap": 100}, 1, None),  # a cap reached halts
    ({}, {"clock_tick_cap": None}, 1, None),  # a required cap missing counts as reached
])
def test_message(changes, budget_changes, parallel, expected):
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


@pytest.mark.parametrize("world", ["new", "after-a-stage", "lanes"])
def test_the_quick_path_says_what_the_full_tick_says(setup, monkeypatch, world):
    repo, home, add = setup
    if world == "after-a-stage":
        add("01-hello")
        run_until_quiet(home, repo)
        assert (repo / "state" / "active-agents").is_dir()  # the heartbeat runs on the quick path too
    if world == "lanes":
        with open(repo / ".autometta.local.yaml", "a") as handle:
            handle.write("max_parallel: 3\n")
    tick_once(home)  # whatever a first idle tick settles (the dashboard page)
    before = _files(repo)
    quick = _tick(home)
    assert quick[0] and [kind for _, _, kind, _ in quick[0]] == ["wait"]
    monkeypatch.setattr(idle, "message", lambda *args: None)  # every repo takes the full path
    full = _tick(home)
    assert quick == full
    assert _files(repo) == before

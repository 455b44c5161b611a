"""Fair scheduling: under max_per_fire repos with work take turns (a weighted round robin carried across ticks),
none starves, and a repo with nothing to do costs nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List

import pytest

from autometta import yamlsub
from autometta.tick import turns
from tests.testing.repos import make_repo
from tests.testing.ticks import await_agents, commit_all, read_state, script_card, tick_once


# ------------------------------------------------------------------ the decision, as a table

def simulate(weights: Dict[str, int], limit: int, ticks: int, busy=lambda key, tick: True) -> Dict[str, int]:
    state: Dict = {"clock": 0, "passes": {}}
    served = {key: 0 for key in weights}
    for n in range(ticks):
        order = turns.order([(key, weight, key) for key, weight in weights.items()], state)
        taken = [(key, weights[key]) for key in order if busy(key, n)][:limit]
        for key, _ in taken:
            served[key] += 1
        state = turns.take(state, taken)
    return served


@pytest.mark.parametrize("weights,limit,ticks,expected", [
    ({"a": 100, "b": 100, "c": 100}, 1, 300, {"a": 100, "b": 100, "c": 100}),  # equal weights: plain round robin
    ({"a": 50, "b": 100}, 1, 300, {"a": 200, "b": 100}),  # lower weight fires first: twice the turns
    ({"a": 1, "b": 100, "c": 100}, 1, 1000, {"a": 980, "b": 10, "c": 10}),  # a far busier weight starves nobody
    ({"a": 50, "b": 100, "c": 100}, 2, 300, {"a": 300, "b": 150, "c": 150}),
    ({"a": 100, "b": 100}, 5, 10, {"a": 10, "b": 10}),  # room for all: everyone works every tick
])
def test_weighted_round_robin(weights, limit, ticks, expected):
    assert simulate(weights, limit, ticks) == expected


def test_a_repo_idle_for_long_banks_no_turns():
    served = simulate({"a": 100, "b": 100, "c": 100}, 1, 900, busy=lambda key, n: key != "c" or n >= 600)
    assert served == {"a": 400, "b": 400, "c": 100}  # from tick 600 on, a third each; c did not take 300 in a row


@pytest.mark.parametrize("state,expected", [
    ({"clock": 0, "passes": {}}, ["a", "b", "c"]),  # a fresh start is the tick order: weight, then path
    ({"clock": 0, "passes": {"a": 50}}, ["b", "c", "a"]),
    ({"clock": 10, "passes": {"a": 3, "b": 12}}, ["a", "c", "b"]),  # behind the clock counts as at the clock
    ({"clock": 0, "passes": {"a": "x", "b": None}}, ["a", "b", "c"]),  # a hand-edited file is no crash
])
def test_order(state, expected):
    assert turns.order([("a", 50, "/a"), ("b", 100, "/b"), ("c", None, "/c")], state) == expected


def test_take_moves_each_pass_by_its_weight_and_the_clock_to_the_lowest():
    state = turns.take({"clock": 5, "passes": {"a": 2, "b": 40}}, [("a", 50), ("b", 100)])
    assert state["passes"] == {"a": 55, "b": 140} and state["clock"] == 5
    assert turns.take(state, [("b", None)])["passes"]["b"] == 140 + turns.MISSING_WEIGHT


# ------------------------------------------------------------------ whole ticks

@pytest.fixture
def repos(run, tmp_path, home_dir):
    assert run("init-host").code == 0

    def make(name: str, weight: int, stages: List[str]) -> Path:
        repo = make_repo(tmp_path / name)
        assert run("subscribe", str(repo), "--weight", str(weight)).code == 0
        commit_all(repo, "subscribe")
        for stage_id in stages:
            card = script_card(repo, stage_id)
            commit_all(repo, f"card {stage_id}")
            assert run("add-stage", str(repo), str(card)).code == 0
        return repo

    def limit(n: int) -> None:
        path = home_dir / "config.yaml"
        config = yamlsub.loads(path.read_text())
        config["max_per_fire"] = n
        path.write_text(yamlsub.dumps(config))

    return make, limit


def statuses(repo: Path) -> List[str]:
    return [s["status"] for s in read_state(repo)["stages"]]


def test_a_busy_repo_of_lower_weight_starves_nobody(repos, home_dir):
    make, limit = repos
    busy = make("busy", 50, ["01-a", "02-a", "03-a"])
    b, c = make("b", 100, ["01-b"]), make("c", 100, ["01-c"])
    limit(1)
    worked: List[str] = []
    for _ in range(12):
        outcomes = tick_once(home_dir)
        for repo in (busy, b, c):
            await_agents(repo)
        [who] = [Path(o.repo).name for o in outcomes if o.worked]  # one repo works per tick
        worked.append(who)
    # busy (weight 50) gets two turns for each of b's and c's (weight 100); on a fresh start all stand level
    assert worked[:8] == ["busy", "b", "c", "busy", "busy", "b", "c", "busy"]
    assert statuses(b) == ["completed"] and statuses(c) == ["completed"]
    doc = json.loads((home_dir / "turns.json").read_text())
    assert set(doc["passes"]) == {str(busy), str(b), str(c)}  # carried to the next tick, in the home


def test_idle_repos_cost_nothing(repos, home_dir, tmp_path):
    make, limit = repos
    make("idle", 1, [])  # first in the tick order, nothing to do
    busy = make("busy", 100, ["01-a"])
    limit(1)
    for _ in range(4):  # claim, verifier, commit and land
        tick_once(home_dir)
        await_agents(busy)
    assert statuses(busy) == ["completed"]
    log = "".join(p.read_text() for p in (home_dir / "log").glob("tick-*.log"))
    assert "max_per_fire (1) reached" not in log

"""Concurrency: 8 ticks at once on one repo, racing add-stage, --reset-halt and --repair.

A bounded number of transitions per held lock (the two counters every
transition bumps stay equal), nothing lost, no stage duplicated, never two
workers for one stage.
AUTOMETTA_RELIABILITY_REPEAT sets the rounds (bench/faults.py runs 50).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.testing.env import ROOT
from tests.testing.tick_processes import (assert_documents_valid, assert_one_runner_per_stage,
                                          await_all_runners, repeats)
from tests.testing.ticks import commit_all, read_budget, read_state, script_card

TICKS = 8


def _spawn(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("AUTOMETTA_FAULT", None)
    return subprocess.Popen([sys.executable, "-m", "autometta", *args], cwd=str(ROOT), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_ticks_racing_each_other_and_the_queue_commands(setup):
    repo, home, add = setup
    rounds = repeats(8)
    # 50 rounds (bench/faults.py) pass the default clock_tick_cap of 100, and a --reset-halt of that halt
    # zeroes clock_ticks_used (as it should), which then no longer equals tick_count
    budget = repo / "state" / "budget.json"
    caps = json.loads(budget.read_text())
    caps["clock_tick_cap"] = 100 * (rounds + 1)
    budget.write_text(json.dumps(caps, indent=2))
    for i in range(3):
        add(f"{i:02d}-first")
    cards = [script_card(repo, f"{50 + i:02d}-late") for i in range(rounds)]
    commit_all(repo, "late cards")
    seen_ids = set(s["id"] for s in read_state(repo)["stages"])
    for n in range(rounds):
        before = read_state(repo)["tick_count"]
        procs = [_spawn("tick") for _ in range(TICKS)]
        procs.append(_spawn("add-stage", str(repo), str(cards[n])))
        procs.append(_spawn("tick", "--repair" if n % 2 else "--reset-halt"))
        results = [(p.args, p.wait(timeout=120), p.communicate()) for p in procs]
        for args, code, (_out, err) in results:
            assert "Traceback" not in err, (args, err)
        add_code, (_o, add_err) = results[TICKS][1], results[TICKS][2]
        assert add_code == 0, add_err
        seen_ids.add(f"{50 + n:02d}-late")
        doc = assert_documents_valid(repo)
        assert set(s["id"] for s in doc["stages"]) == seen_ids, "a stage was lost"
        transitions = sum(1 for _a, code, (_o, err) in results[:TICKS] if "already in progress" not in err)
        # a tick holding the lock makes at most: the stage's transition, its merge right after its
        # commit, and the next claim
        assert doc["tick_count"] - before <= 3 * transitions
        assert read_budget(repo)["clock_ticks_used"] == doc["tick_count"], "a transition was lost or doubled"
        assert_one_runner_per_stage(repo)
        await_all_runners(repo)
    assert any(s["status"] == "completed" for s in read_state(repo)["stages"])


def test_ticks_racing_each_other_with_parallel_lanes(setup):
    from autometta.git import worktrees
    from tests.testing.ticks import git

    repo, home, add = setup
    manifest = repo / ".autometta.local.yaml"
    manifest.write_text(manifest.read_text() + "max_parallel: 3\n")
    ids = [f"{i:02d}-lane" for i in range(5)]
    for sid in ids:
        add(sid, "printf '%s\\n' " + sid + " > " + sid + ".txt && printf '%s' '{\"stage_id\":\"" + sid
            + "\",\"status\":\"pass\",\"deliverables\":[\"" + sid + ".txt\"],\"notes\":\"ok\"}' > \"$AUTOMETTA_HANDOFF\"")
    start = git(repo, "rev-parse", "HEAD").strip()
    for n in range(repeats(8) + 6):
        procs = [_spawn("tick") for _ in range(TICKS)]
        if n % 3 == 2:
            procs.append(_spawn("tick", "--repair"))
        for p in procs:
            _out, err = p.communicate(timeout=120)
            assert "Traceback" not in err, (p.args, err)
        doc = assert_documents_valid(repo)
        assert [s["id"] for s in doc["stages"]] == ids, "a stage was lost or doubled"
        assert read_budget(repo)["clock_ticks_used"] == doc["tick_count"], "a transition was lost or doubled"
        running = [s["id"] for s in doc["stages"] if s["status"] == "in_progress"]
        assert len(running) <= 3, running
        assert_one_runner_per_stage(repo)
        await_all_runners(repo)
        if all(s["status"] == "completed" for s in doc["stages"]):
            break
    assert [s["status"] for s in read_state(repo)["stages"]] == ["completed"] * len(ids)
    subjects = git(repo, "log", "--format=%s", f"{start}..HEAD").split("\n")
    assert sorted(s.split(":")[0] for s in subjects if s) == ids  # one commit each, none twice
    assert git(repo, "rev-list", "--merges", f"{start}..HEAD") == "" and worktrees.lane_branches(repo) == []

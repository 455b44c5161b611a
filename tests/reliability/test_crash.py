"""Crash at every step: SIGKILL the tick at each fault point of each kind of transition.

After the kill the state files are valid and show the transition either not
begun or done; the next ticks recover with no operator edit; the stage is
neither lost nor duplicated, is committed at most once, and never has two
live workers.
"""

from __future__ import annotations

import json

import pytest

from tests.testing.tick_processes import (assert_documents_valid, assert_one_runner_per_stage, await_all_runners,
                                          tick_process, tick_until_settled)
from tests.testing.ticks import git, read_budget, stage, tick_once

WRITES = [f"atomic_write.{when}@{name}" for name in ("state.yaml", "budget.json")
          for when in ("before", "during", "after")] + ["atomic_write.before@state.yaml.bak"]
SNAPSHOT = ["snapshot.before", "snapshot.after"]
SPAWN = ["spawn.before", "spawn.after"]
COMMIT = ["commit.before", "commit.after"]

#: transition -> (fault points it meets, status before, status after)
TRANSITIONS = {
    "claim+spawn": (SPAWN + WRITES + SNAPSHOT, "pending", "in_progress"),
    "reap+verifier": (SPAWN + WRITES + SNAPSHOT, "in_progress", "in_progress"),
    "verdict+commit": (COMMIT + WRITES + SNAPSHOT, "in_progress", "completed"),
    "stall": (WRITES + SNAPSHOT, "in_progress", "stalled"),
    "halt": ([p for p in WRITES if "budget" in p] + ["atomic_write.before@state.yaml"], "pending", "pending"),
}
SID = "01-hello"

CASES = [pytest.param(t, p, id=f"{t}-{p}")
         for t, (points, _b, _a) in TRANSITIONS.items() for p in points]


def _prepare(transition, setup):
    repo, home, add = setup
    if transition == "stall":
        add(SID, "true")  # exits without an envelope
    else:
        add(SID)
    if transition == "halt":
        path = repo / "state" / "budget.json"
        b = json.loads(path.read_text())
        b["clock_ticks_used"] = b["clock_tick_cap"]
        path.write_text(json.dumps(b))
        return
    steps = {"claim+spawn": 0, "reap+verifier": 1, "stall": 1, "verdict+commit": 2}[transition]
    for _ in range(steps):
        tick_once(home)
        await_all_runners(repo)


@pytest.mark.parametrize("transition,point", CASES)
def test_sigkill_inside_a_transition_recovers(setup, transition, point):
    repo, home, _ = setup
    _prepare(transition, setup)
    points, before, after = TRANSITIONS[transition]
    head_before = git(repo, "rev-parse", "HEAD").strip()

    killed = tick_process(fault=point)
    assert killed.returncode == -9, f"fault {point} never fired in {transition}: {killed.stderr[-2000:]}"

    doc = assert_documents_valid(repo)
    assert [s["id"] for s in doc["stages"]] == [SID]
    assert stage(repo, SID)["status"] in (before, after)
    assert_one_runner_per_stage(repo)
    await_all_runners(repo)
    repaired = tick_process("--repair")  # what an operator would run: it must not fail on what the kill left
    assert repaired.returncode == 0 and "Traceback" not in repaired.stderr, repaired.stderr
    assert_documents_valid(repo)
    assert not list((repo / "state").glob(".*.tmp")), "--repair left an interrupted write's temp file"
    if point.startswith("atomic_write.during"):
        assert "left by a write that was interrupted" in repaired.stdout

    if transition == "halt":
        tick_once(home)
        b = read_budget(repo)
        assert b["halted"] and b["halt_reason"] == "tick-cap"
        assert stage(repo, SID)["status"] == "pending"
        return
    tick_until_settled(home, repo)
    assert_documents_valid(repo)
    final = stage(repo, SID)
    if transition == "stall":
        assert (final["status"], final["stall_marker"]) == ("stalled", "worker_envelope_missing_after_exit")
        return
    assert final["status"] == "completed", final
    subjects = git(repo, "log", "--format=%s", f"{head_before}..HEAD").splitlines()
    assert len([s for s in subjects if s.startswith(SID)]) == 1, subjects
    assert "hello.txt" in git(repo, "ls-files")
    assert git(repo, "status", "--porcelain", "--", ".", ":(exclude)state") == ""


def test_a_tick_killed_after_the_spawn_leaves_the_runner_on_record(setup):
    """What the lead's fix adopts: the orphan runner is named on disk before the tick can die."""
    from autometta.agents.spawn import read_runner, runner_record
    from autometta.paths import RepoPaths

    repo, home, add = setup
    add(SID)
    killed = tick_process(fault="spawn.after")
    assert killed.returncode == -9
    exit_path = RepoPaths(repo).exit_record(SID, "worker")
    record = read_runner(exit_path)
    assert record is not None and record.pid > 0
    assert oct(runner_record(exit_path).stat().st_mode & 0o777) == "0o600"
    assert stage(repo, SID)["status"] == "in_progress"  # the claim was saved before the spawn
    tick_process()  # the next tick adopts the orphan rather than starting a twin
    s = stage(repo, SID)
    assert s["worker_pid"] == record.pid and s["worker_started"] == record.started
    await_all_runners(repo)

"""Crash inside a parallel lane's transitions: SIGKILL the tick and check the next ticks recover.

Two lanes run at once; the tick is killed at one fault point of the claim,
the commit on the branch, the rebase, the recheck's spawn or the landing.
Afterwards both stages land exactly once, the base branch stays linear, and
no worktree or ``autometta/*`` branch is left behind.
"""

from __future__ import annotations

import pytest

from autometta.git import worktrees
from tests.testing.tick_processes import (assert_documents_valid, assert_one_runner_per_stage,
                                          await_all_runners, tick_process, tick_until_settled)
from tests.testing.ticks import git, read_state, stage, tick_once

IDS = ("01-a", "02-b")

#: fault point -> how many settled ticks to run before the killed one
POINTS = {
    "lane.created": 0,
    "spawn.after@01-a-worker.exit.json": 0,
    "commit.after": 3,
    "lane.rebased": 3,
    "spawn.after@02-b-postmerge.exit.json": 3,  # 01-a landed first: 02-b's base moved, it is rechecked
    "lane.landed": 3,
    "atomic_write.before@state.yaml": 3,
}


def _writes(stage_id: str) -> str:
    return (f"printf '%s\\n' {stage_id} > {stage_id}.txt && printf '%s' "
            f"'{{\"stage_id\":\"{stage_id}\",\"status\":\"pass\",\"deliverables\":[\"{stage_id}.txt\"],"
            f"\"notes\":\"done\"}}' > \"$AUTOMETTA_HANDOFF\"")


@pytest.mark.parametrize("point", list(POINTS))
def test_sigkill_inside_a_lane_recovers(setup, point):
    repo, home, add = setup
    manifest = repo / ".autometta.local.yaml"
    manifest.write_text(manifest.read_text() + "max_parallel: 2\n")
    for sid in IDS:
        add(sid, _writes(sid), acceptance=f"test -f {sid}.txt")
    start = git(repo, "rev-parse", "HEAD").strip()
    for _ in range(POINTS[point]):
        tick_once(home)
        await_all_runners(repo)

    killed = tick_process(fault=point)
    for _ in range(3):  # the fault may sit a tick or two later (a merge waits for its turn)
        if killed.returncode == -9:
            break
        await_all_runners(repo)
        killed = tick_process(fault=point)
    assert killed.returncode == -9, f"fault {point} never fired: {killed.stderr[-2000:]}"

    assert_documents_valid(repo)
    assert_one_runner_per_stage(repo)
    await_all_runners(repo)
    repaired = tick_process("--repair")
    assert repaired.returncode == 0 and "Traceback" not in repaired.stderr, repaired.stderr
    tick_until_settled(home, repo, limit=40)

    doc = read_state(repo)
    assert [s["status"] for s in doc["stages"]] == ["completed", "completed"], doc["stages"]
    subjects = git(repo, "log", "--format=%s", f"{start}..master").splitlines()
    assert sorted(s.split(":")[0] for s in subjects) == list(IDS), subjects
    assert git(repo, "rev-list", "--merges", f"{start}..master") == ""
    for sid in IDS:
        assert stage(repo, sid)["commit"] == git(repo, "log", "-1", "--format=%H", f"--grep=^{sid}:", "master").strip()
    listed = [line for line in git(repo, "worktree", "list", "--porcelain").splitlines() if line.startswith("worktree ")]
    assert len(listed) == 1 and worktrees.lane_branches(repo) == []

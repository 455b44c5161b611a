"""Where stages run: a worktree each by default, the repo's tree by opt-in, and the bash version's stage in flight."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from autometta.books import state
from autometta.errors import UserError
from autometta.git import isolation
from autometta.paths import RepoPaths
from autometta.timeutil import now_iso
from tests.testing.ticks import git, read_state, run_until_quiet, stage, tick_once

PASS_HANDOFF = '{"stage_id":"01-hello","status":"pass","deliverables":["hello.txt"],"notes":"bash worker"}'


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize("manifest,parallel,expected", [
    ({}, 1, "worktree"),
    ({}, 4, "worktree"),
    ({"isolation": "worktree"}, 2, "worktree"),
    ({"isolation": "tree"}, 1, "tree"),
    ({"isolation": "tree"}, 2, "isolation: tree runs one stage at a time"),
    ({"isolation": "chroot"}, 1, "use 'worktree' (the default) or 'tree'"),
])
def test_the_isolation_setting(manifest, parallel, expected):
    if expected in isolation.MODES:
        assert isolation.mode(manifest, parallel) == expected
        return
    with pytest.raises(UserError) as caught:
        isolation.mode(manifest, parallel, Path("/r/.autometta.local.yaml"))
    assert expected in caught.value.message and "/r/.autometta.local.yaml" in caught.value.message


def test_a_stage_the_bash_version_left_in_flight_in_the_tree_finishes_there_and_the_next_gets_a_worktree(setup):
    repo, home, add = setup
    add("01-hello")
    add("02-next", "printf 'next\\n' > next.txt && printf '%s' '{\"stage_id\":\"02-next\",\"status\":\"pass\","
        "\"deliverables\":[\"next.txt\"],\"notes\":\"ok\"}' > \"$AUTOMETTA_HANDOFF\"")
    # the bash version claimed 01-hello in the repo's tree; its worker wrote its file and handed off, then exited
    (repo / "hello.txt").write_text("hello\n")
    (repo / "state" / "handoffs").mkdir(parents=True, exist_ok=True)
    (repo / "state" / "handoffs" / "01-hello.json").write_text(PASS_HANDOFF)
    paths = RepoPaths(repo)
    doc = state.load_state(paths)
    doc["current_stage"] = "01-hello"
    doc["stages"][0].update(status="in_progress", started_at="2026-11-26T10:00:00Z", worker_pid=_dead_pid())
    state.save_state(paths, doc)

    run_until_quiet(home, repo)
    first, second = stage(repo, "01-hello"), stage(repo, "02-next")
    assert first["status"] == "completed" and not first.get("worktree") and not first.get("branch")
    assert git(repo, "show", "--name-only", "--format=", first["commit"]).split() == ["hello.txt"]
    assert second["status"] == "completed" and second["branch"] == "autometta/02-next"
    assert git(repo, "log", "--format=%s", "-2").splitlines() == ["02-next: Say hello", "01-hello: Say hello"]
    assert read_state(repo)["current_stage"] is None
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1


def test_while_a_bash_stage_is_in_the_tree_nothing_is_claimed_beside_it(setup):
    repo, home, add = setup
    (repo / ".autometta.local.yaml").write_text((repo / ".autometta.local.yaml").read_text() + "max_parallel: 3\n")
    add("01-hello")
    add("02-next")
    worker = subprocess.Popen(["sleep", "60"])  # the bash version's worker, still running in the tree
    try:
        paths = RepoPaths(repo)
        doc = state.load_state(paths)
        doc["current_stage"] = "01-hello"
        doc["stages"][0].update(status="in_progress", started_at=now_iso(), worker_pid=worker.pid)
        state.save_state(paths, doc)
        [outcome] = tick_once(home)
        assert outcome.kind == "wait" and "still running" in outcome.message
        assert stage(repo, "02-next")["status"] == "pending" and not (repo / ".autometta").exists()
    finally:
        worker.kill()
        worker.wait()

"""Nothing lands where it should not: never on a detached HEAD, never a rewritten branch unjudged (real git)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.testing.ticks import (await_agents, git, read_budget, read_state, run_until_quiet, stage, tick_once,
                                 verifier_writes)

MODES = ["serial", "lanes", "tree"]


def _mode(repo: Path, mode: str) -> None:
    manifest = repo / ".autometta.local.yaml"
    extra = {"serial": "", "lanes": "max_parallel: 2\n", "tree": "isolation: tree\n"}[mode]
    manifest.write_text(manifest.read_text() + extra)


def _writes(stage_id: str, name: str, text: str = "") -> str:
    return (f"printf '%s\\n' '{text or stage_id}' > {name} && printf '%s' '{{\"stage_id\":\"{stage_id}\","
            f"\"status\":\"pass\",\"deliverables\":[\"{name}\"],\"notes\":\"done\"}}' > \"$AUTOMETTA_HANDOFF\"")


def _subjects(repo: Path) -> list:
    return git(repo, "log", "--all", "--format=%s").splitlines()


@pytest.mark.parametrize("mode", MODES)
def test_a_detached_head_is_refused_with_a_marker_and_nothing_is_committed(setup, mode):
    repo, home, add = setup
    _mode(repo, mode)
    add("01-a", _writes("01-a", "a.txt"))
    git(repo, "checkout", "-q", "--detach")
    head = git(repo, "rev-parse", "HEAD").strip()
    run_until_quiet(home, repo, limit=8)
    s = stage(repo, "01-a")
    assert s["status"] == "stalled" and s["stall_marker"].startswith("detached_head: "), s
    assert "HEAD is detached" in s["stall_marker"] and "git switch" in s["stall_marker"]
    assert git(repo, "rev-parse", "HEAD").strip() == head
    assert not any(line.startswith("01-a:") for line in _subjects(repo))
    assert not (repo / "a.txt").exists() and s.get("worker_pid") is None  # no agent ever ran
    assert read_budget(repo)["consecutive_failures"] == 1


# ------------------------------------------------------------------ --retry-merge


def _conflict(setup, run, verifier_cmd: str):
    """01-a and 02-b both add shared.txt; 02-b stops as merge_conflict. Returns (repo, home, 02-b's worktree)."""
    repo, home, add = setup
    _mode(repo, "lanes")
    add("01-a", _writes("01-a", "shared.txt", "from a"))
    add("02-b", _writes("02-b", "shared.txt", "from b"), verifier_cmd)
    run_until_quiet(home, repo, limit=20)
    b = stage(repo, "02-b")
    assert b["status"] == "merge_conflict"
    return repo, home, Path(b["worktree"])


def _resolve(work: Path, text: str) -> None:
    """What a person does in the kept worktree: rebase onto master, settle the conflict their way, continue."""
    assert subprocess.run(["git", "-C", str(work), "rebase", "master"], capture_output=True).returncode != 0
    (work / "shared.txt").write_text(text)
    git(work, "add", "shared.txt")
    subprocess.run(["git", "-C", str(work), "-c", "core.editor=true", "rebase", "--continue"], check=True,
                   capture_output=True)


#: A verifier that passes only a shared.txt holding b's line (the stage's deliverable).
JUDGES_B = ("if grep -q 'from b' shared.txt; then " + verifier_writes("02-b", "PASS") + "; else "
            + verifier_writes("02-b", "FAIL") + "; fi")


def test_retry_merge_of_a_branch_a_person_rewrote_is_verified_again_and_a_fail_lands_nothing(setup, run):
    repo, home, work = _conflict(setup, run, JUDGES_B)
    master = git(repo, "rev-parse", "master").strip()
    _resolve(work, "from a\n")  # the person "resolved" by dropping the stage's line
    res = run("requeue", str(repo), "02-b", "--retry-merge")
    assert res.code == 0, res.err
    assert "checked again" in res.err
    assert not (repo / "state" / "verifiers" / "02-b.json").exists()  # the old PASS is archived, never reused
    run_until_quiet(home, repo, limit=10)
    b = stage(repo, "02-b")
    assert (b["status"], b["stall_marker"]) == ("verifier_failed", "verifier_fail")
    assert b["verifier_attempts"] == 1
    assert git(repo, "rev-parse", "master").strip() == master  # nothing landed
    assert (repo / "shared.txt").read_text() == "from a\n"


def test_retry_merge_of_a_rewritten_branch_lands_after_a_new_pass(setup, run):
    repo, home, work = _conflict(setup, run, JUDGES_B)
    master = git(repo, "rev-parse", "master").strip()
    verifier_log = repo / "state" / "logs" / "02-b-verifier.log"
    _resolve(work, "from a\nfrom b\n")
    assert run("requeue", str(repo), "02-b", "--retry-merge").code == 0
    outcomes = tick_once(home)
    assert stage(repo, "02-b")["verifier_pid"], outcomes  # the verifier runs again, on the branch as the person left it
    await_agents(repo)  # else a tick that still sees it run is quiet, and run_until_quiet stops there
    run_until_quiet(home, repo, limit=10)
    b = stage(repo, "02-b")
    assert b["status"] == "completed", b
    assert git(repo, "rev-parse", "master^").strip() == master
    assert (repo / "shared.txt").read_text() == "from a\nfrom b\n"
    assert git(repo, "log", "-1", "--format=%an|%s", "master").startswith("Script Worker|02-b: ")
    assert verifier_log.exists()


def test_retry_merge_of_an_unchanged_branch_keeps_the_merge_path(setup, run):
    """post_merge_acceptance_failed, retried as it is: the branch brings the judged change, rebased by autometta
    itself; no verifier runs again, the acceptance command is rerun on the merged result as before."""
    repo, home, add = setup
    _mode(repo, "lanes")
    add("01-b", _writes("01-b", "b.txt"))
    add("02-a", _writes("02-a", "a.txt"), acceptance="test ! -f b.txt")
    run_until_quiet(home, repo, limit=20)
    a = stage(repo, "02-a")
    assert a["stall_marker"] == "post_merge_acceptance_failed"
    attempts = a["verifier_attempts"]
    res = run("requeue", str(repo), "02-a", "--retry-merge")
    assert res.code == 0 and "checked again" not in res.err
    assert stage(repo, "02-a")["merge"] == "queued"
    run_until_quiet(home, repo, limit=10)
    a = stage(repo, "02-a")
    assert (a["status"], a["stall_marker"]) == ("failed", "post_merge_acceptance_failed")
    assert a["verifier_attempts"] == attempts

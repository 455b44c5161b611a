"""A gitignored state/ works, and a step that fails the same way tick after tick stops its stage (real git)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import List

import pytest

from autometta.git import gitops
from autometta.tick import failures
from tests.testing.ticks import (await_agents, commit_all, git, read_budget, read_state, run_until_quiet,
                                 stage, tick_once)

MODES = ["serial", "lanes", "tree"]


def _mode(repo: Path, mode: str) -> None:
    manifest = repo / ".autometta.local.yaml"
    extra = {"serial": "", "lanes": "max_parallel: 2\n", "tree": "isolation: tree\n"}[mode]
    manifest.write_text(manifest.read_text() + extra)


def _writes(stage_id: str, name: str) -> str:
    return (f"printf '%s\\n' '{stage_id}' > {name} && printf '%s' '{{\"stage_id\":\"{stage_id}\",\"status\":\"pass\","
            f"\"deliverables\":[\"{name}\"],\"notes\":\"done\"}}' > \"$AUTOMETTA_HANDOFF\"")


def _tick_log(home: Path) -> str:
    return "".join(p.read_text() for p in sorted((home / "log").glob("tick-*.log")))


def _ticks(home: Path, repo: Path, n: int) -> List[str]:
    kinds = []
    for _ in range(n):
        outcomes = tick_once(home)
        kinds.append(outcomes[0].kind)
        await_agents(repo)
    return kinds


@pytest.mark.parametrize("mode", MODES)
def test_a_gitignored_state_folder_works(setup, mode):
    repo, home, add = setup
    _mode(repo, mode)
    with open(repo / ".gitignore", "a") as handle:
        handle.write("state/\n")  # the line docs/dispatch-contract.md suggests: the folder itself ignored
    commit_all(repo, "ignore state/")
    add("01-a", _writes("01-a", "a.txt"))
    add("02-b", _writes("02-b", "b.txt"))
    kinds = run_until_quiet(home, repo, limit=12)
    assert "error" not in kinds, _tick_log(home)
    assert [(s["status"], s["stall_marker"]) for s in read_state(repo)["stages"]] == [("completed", None)] * 2
    assert git(repo, "log", "--format=%s", "-2").splitlines() == ["02-b: Say hello", "01-a: Say hello"]
    for sid, name in (("01-a", "a.txt"), ("02-b", "b.txt")):
        assert git(repo, "show", "--name-only", "--format=", stage(repo, sid)["commit"]).split() == [name]
    # the snapshot ref still keeps the state files' history, read from disk past the ignore rule
    snapshot = git(repo, "show", f"{gitops.STATE_REF}:state/state.yaml")
    assert "02-b" in snapshot and "completed" in snapshot
    assert gitops.dirty_paths(repo) == []


def test_a_state_folder_never_tracked_and_ignored_works_in_the_tree(setup):
    repo, home, add = setup
    _mode(repo, "tree")
    git(repo, "rm", "-rq", "--cached", "state")
    with open(repo / ".gitignore", "a") as handle:
        handle.write("state/\n")
    commit_all(repo, "state/ is not tracked")
    add("01-a", _writes("01-a", "a.txt"))
    kinds = run_until_quiet(home, repo, limit=8)
    assert "error" not in kinds, _tick_log(home)
    assert stage(repo, "01-a")["status"] == "completed"
    assert git(repo, "show", "--name-only", "--format=", "HEAD").split() == ["a.txt"]
    assert git(repo, "ls-files", "state") == ""  # still untracked: autometta never adds state/
    assert "01-a" in git(repo, "show", f"{gitops.STATE_REF}:state/state.yaml")


def _broken_filter(repo: Path, clean: str = "false") -> None:
    """A clean filter git must run on the stage's file, which fails: every `git add` of that file fails."""
    git(repo, "config", "filter.broken.clean", clean)
    git(repo, "config", "filter.broken.smudge", "cat")
    git(repo, "config", "filter.broken.required", "true")


#: A worker whose output git cannot take in: its file goes through the broken filter.
FILTERED = ("printf 'hello.txt filter=broken\\n' > .gitattributes && printf 'hi\\n' > hello.txt && "
            "printf '%s' '{\"stage_id\":\"01-stuck\",\"status\":\"pass\",\"deliverables\":[\"hello.txt\"],"
            "\"notes\":\"done\"}' > \"$AUTOMETTA_HANDOFF\"")


@pytest.mark.parametrize("mode", MODES)
def test_a_step_failing_the_same_way_three_ticks_in_a_row_stops_its_stage(setup, mode):
    repo, home, add = setup
    _mode(repo, mode)
    _broken_filter(repo)
    add("01-stuck", FILTERED, may_also_change=("*.txt", ".gitattributes"))
    if mode == "lanes":
        add("02-fine", _writes("02-fine", "fine.txt"))
    kinds = _ticks(home, repo, 1)  # claims (both lanes): the worker(s) run and hand off
    notes = []
    for _ in range(failures.THRESHOLD):
        kinds += _ticks(home, repo, 1)
        notes.append((stage(repo, "01-stuck")["status"], (stage(repo, "01-stuck").get("tick_error") or {}).get("count")))
    assert kinds[1:] == ["error"] * failures.THRESHOLD, _tick_log(home)
    assert notes == [("in_progress", 1), ("in_progress", 2), ("stalled", None)]
    s = stage(repo, "01-stuck")
    assert s["stall_marker"].startswith("transition_failed: `git add -A"), s["stall_marker"]
    assert "clean filter 'broken' failed" in s["stall_marker"]
    assert read_budget(repo)["consecutive_failures"] == 1
    log = _tick_log(home)
    assert "1 tick(s) in a row, the stage stops at 3" in log and "2 tick(s) in a row" in log
    assert "01-stuck stopped: its next step failed the same way 3 ticks in a row" in log
    # the loop is over: the repo moves on (the other lane lands), nothing errors any more
    kinds = run_until_quiet(home, repo, limit=10)
    assert "error" not in kinds
    if mode == "lanes":
        assert stage(repo, "02-fine")["status"] == "completed"
    assert stage(repo, "01-stuck")["status"] == "stalled"
    if mode != "tree":
        assert Path(s["worktree"], "hello.txt").is_file()  # kept for review
    events = (home / "events.jsonl")
    if events.exists():
        assert "transition_failed" in events.read_text()


def test_a_step_that_fails_once_is_forgotten_when_the_next_tick_gets_through(setup, tmp_path):
    repo, home, add = setup
    broken = tmp_path / "broken-now"
    broken.touch()
    _broken_filter(repo, f"sh -c 'if [ -f {broken} ]; then exit 1; else cat; fi'")
    add("01-stuck", FILTERED, may_also_change=("*.txt", ".gitattributes"))
    kinds = _ticks(home, repo, 2)
    assert kinds == ["launch", "error"]
    assert stage(repo, "01-stuck")["tick_error"]["count"] == 1
    broken.unlink()  # fixed before the next tick
    run_until_quiet(home, repo, limit=10)
    s = stage(repo, "01-stuck")
    assert (s["status"], s["stall_marker"], s.get("tick_error")) == ("completed", None, None), (s, _tick_log(home))
    assert read_budget(repo)["consecutive_failures"] == 0


def test_the_same_error_is_the_same_numbers_aside():
    assert failures.same("`git add` failed in /r/.autometta/worktrees/01-a (exit 128): pid 41",
                         "`git add` failed in /r/.autometta/worktrees/01-a (exit 128): pid 977")
    assert not failures.same("git add failed: clean filter", "git add failed: index.lock exists")
    assert not failures.same(None, "x")


def test_an_unknown_error_is_named_with_its_type():
    assert failures.describe(KeyError("stages")) == "KeyError: 'stages'"
    assert failures.describe(subprocess.SubprocessError("a\n  b")) == "SubprocessError: a b"

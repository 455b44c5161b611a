"""Nothing lands where it should not: never on a detached HEAD (real git)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tickkit import git, read_budget, run_until_quiet, stage

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


def test_an_agent_that_detaches_head_in_the_tree_gets_no_commit(setup):
    repo, home, add = setup
    _mode(repo, "tree")
    add("01-a", "git checkout -q --detach && " + _writes("01-a", "a.txt"))
    run_until_quiet(home, repo, limit=8)
    s = stage(repo, "01-a")
    assert s["status"] == "verifier_failed" and s["stall_marker"].startswith("detached_head: "), s
    assert not any(line.startswith("01-a:") for line in _subjects(repo))
    assert (repo / "a.txt").read_text() == "01-a\n"  # left for review

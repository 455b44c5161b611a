"""Nothing an agent does after, or around, its verdict lands unjudged.

* An agent that detaches ``HEAD`` in the repo's tree (``isolation: tree``)
  so that its stage's commit would belong to no branch: the commit is refused
  (``detached_head``), the changes stay in the tree for review.
* Something that adds a commit to a stopped stage's branch after its verdict
  (a process the worker left behind, anything with write access to the
  worktree): when the operator then resolves the stage's merge conflict and
  runs ``requeue --retry-merge``, the branch no longer brings the change the
  verifier passed, so it is judged again and a FAIL lands nothing. Tried with
  a stage run serially (``max_parallel: 1``) and in lanes (``max_parallel: 2``).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.testing.ticks import await_agents, git, run_until_quiet, stage, tick_once, verifier_writes

MODES = {"serial": 1, "lanes": 2}


def _writes(stage_id: str, name: str, text: str) -> str:
    return (f"printf '%s\\n' '{text}' > {name} && printf '%s' '{{\"stage_id\":\"{stage_id}\","
            f"\"status\":\"pass\",\"deliverables\":[\"{name}\"],\"notes\":\"done\"}}' > \"$AUTOMETTA_HANDOFF\"")


def test_an_agent_that_detaches_head_in_the_tree_gets_no_commit(setup):
    repo, home, add = setup
    manifest = repo / ".autometta.local.yaml"
    manifest.write_text(manifest.read_text() + "isolation: tree\n")
    add("01-a", "git checkout -q --detach && " + _writes("01-a", "a.txt", "01-a"))
    run_until_quiet(home, repo, limit=8)
    s = stage(repo, "01-a")
    assert s["status"] == "verifier_failed" and s["stall_marker"].startswith("detached_head: "), s
    assert not any(line.startswith("01-a:") for line in git(repo, "log", "--all", "--format=%s").splitlines())
    assert (repo / "a.txt").read_text() == "01-a\n"  # left for review


#: The verifier passes shared.txt and fails anything that brings evil.txt.
JUDGE = ("if [ -e evil.txt ]; then " + verifier_writes("01-x", "FAIL") + "; else "
         + verifier_writes("01-x", "PASS") + "; fi")


@pytest.mark.parametrize("mode", MODES)
def test_a_commit_added_to_a_stopped_branch_never_lands_unjudged(setup, run, mode):
    repo, home, add = setup
    manifest = repo / ".autometta.local.yaml"
    manifest.write_text(manifest.read_text() + f"max_parallel: {MODES[mode]}\n")
    add("01-x", _writes("01-x", "shared.txt", "from the stage"), JUDGE)
    tick_once(home)  # claimed; the worker runs in the stage's worktree
    await_agents(repo)
    (repo / "shared.txt").write_text("from the user\n")  # meanwhile the user commits the same file
    git(repo, "add", "shared.txt")
    git(repo, "commit", "-qm", "user: shared.txt")
    run_until_quiet(home, repo, limit=10)
    s = stage(repo, "01-x")
    assert s["status"] == "merge_conflict", s
    work = Path(s["worktree"])

    # something with write access to the worktree adds a commit to the stopped stage's branch
    subprocess.run(["sh", "-c", "printf 'evil\\n' > evil.txt && git add evil.txt && "
                    "git -c user.name=left -c user.email=left@local commit -qm 'more work'"], cwd=str(work), check=True)
    # the operator resolves the conflict as the docs say, and asks autometta to land it
    assert subprocess.run(["git", "-C", str(work), "rebase", "master"], capture_output=True).returncode != 0
    (work / "shared.txt").write_text("from the user\nfrom the stage\n")
    git(work, "add", "shared.txt")
    subprocess.run(["git", "-C", str(work), "-c", "core.editor=true", "rebase", "--continue"], check=True,
                   capture_output=True)
    master = git(repo, "rev-parse", "master").strip()
    assert run("requeue", str(repo), "01-x", "--retry-merge").code == 0
    run_until_quiet(home, repo, limit=10)
    s = stage(repo, "01-x")
    assert (s["status"], s["stall_marker"]) == ("verifier_failed", "verifier_fail"), s
    assert git(repo, "rev-parse", "master").strip() == master
    assert not (repo / "evil.txt").exists()
    assert "evil.txt" not in git(repo, "log", "--name-only", "--format=", "master")

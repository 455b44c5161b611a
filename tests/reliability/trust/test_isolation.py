"""The user's checkout is no agent's working directory; the user's branch carries no agent's commit.

Issue 14, "Every stage in its own worktree, by default". Each way is tried
with a stage run serially (``max_parallel: 1``, the default) and in lanes
(``max_parallel: 2``), with real git and script-family agents:

* a worker's own ``git commit`` must not stay on the user's branch when the
  verifier says FAIL, and on a PASS it is folded into the stage's one commit;
* what the user stages, edits or creates in the checkout while the worker
  runs is neither committed as the agents' work nor blocks the landing;
* an edit the user makes while the verifier runs is not blamed on the
  verifier (``verifier_modified_tree``).

Then the two protections of the opt-in ``isolation: tree``, where the agents
do work in the checkout: only paths changed since the claim are committed,
and no commit an agent made stays on the branch after a finish that did not
land (the branch moves back to the claim-time head, the changes stay in the
tree for review).
"""

from __future__ import annotations

from pathlib import Path
from typing import List

import pytest

from autometta.git import gitops
from tests.testing.ticks import (CHECKER, WORKER, await_agents, git, read_budget, read_state, run_until_quiet,
                                 stage, tick_once, verifier_writes)

SID = "01-hello"
ENVELOPE = ("printf '%s' '{\"stage_id\":\"01-hello\",\"status\":\"pass\",\"deliverables\":[\"hello.txt\"],"
            "\"notes\":\"done\"}' > \"$AUTOMETTA_HANDOFF\"")
WRITE = "printf 'hello\\n' > hello.txt"
COMMITS = ("git add -A && git -c user.name=sneaky -c user.email=sneaky@local commit -qm 'worker commits itself'")

MODES = {"serial": 1, "lanes": 2}


def configure(repo: Path, *lines: str) -> None:
    with open(repo / ".autometta.local.yaml", "a") as handle:
        handle.write("".join(line + "\n" for line in lines))


@pytest.fixture(params=list(MODES))
def mode(request, setup):
    """(repo, home, add) with max_parallel 1 (serial) or 2 (lanes)."""
    repo, home, add = setup
    if MODES[request.param] > 1:
        configure(repo, f"max_parallel: {MODES[request.param]}")
    return setup


def head(repo: Path, ref: str = "HEAD") -> str:
    return git(repo, "rev-parse", ref).strip()


def subjects(repo: Path, since: str) -> List[str]:
    return git(repo, "log", "--format=%s", f"{since}..HEAD").splitlines()


def files_of(repo: Path, ref: str = "HEAD") -> List[str]:
    return git(repo, "show", "--name-only", "--format=", ref).split()


def wait_for(go: Path) -> str:
    """Shell: block until the test creates ``go`` (so what it does meanwhile happens while the agent runs)."""
    return f"while [ ! -e '{go}' ]; do sleep 0.02; done"


def tick_until(home: Path, repo: Path, field: str) -> None:
    """Tick until the stage records ``field`` (an agent's pid: it runs now), awaiting the agents before it.

    Not awaiting them, ten ticks could all come before the worker was done (its runner is an interpreter
    to start: on a loaded machine that outlasts ten in-process ticks), and the verifier was never reached.
    """
    for _ in range(10):
        tick_once(home)
        if stage(repo, SID).get(field):
            return
        await_agents(repo)
    raise AssertionError(f"{SID} never got {field}: {stage(repo, SID)}")


# ------------------------------------------------------------------ a worker's own commit

def test_a_workers_own_commit_does_not_land_when_the_verifier_says_fail(mode):
    repo, home, add = mode
    add(SID, f"{WRITE} && {COMMITS} && {ENVELOPE}", verifier_writes(SID, "FAIL"))
    start = head(repo)
    run_until_quiet(home, repo)
    s = stage(repo, SID)
    assert (s["status"], s["stall_marker"]) == ("verifier_failed", "verifier_fail")
    assert head(repo) == start and head(repo, "master") == start  # the user's branch is as it was
    assert not (repo / "hello.txt").exists() and gitops.dirty_paths(repo) == []
    kept = Path(s["worktree"])  # the worker's commit is kept for review on the stage's own branch
    assert git(kept, "log", "-1", "--format=%s").strip() == "worker commits itself"
    assert head(repo, f"autometta/{SID}") == head(kept)


def test_a_workers_own_commit_lands_only_as_the_stages_one_commit(mode):
    repo, home, add = mode
    add(SID, f"{WRITE} && {COMMITS} && {ENVELOPE}")
    start = head(repo)
    run_until_quiet(home, repo)
    s = stage(repo, SID)
    assert s["status"] == "completed" and s["commit"] == head(repo)
    assert subjects(repo, start) == [f"{SID}: Say hello"]  # folded: no commit of its own on the branch
    log = git(repo, "log", "-1", "--format=%an <%ae>%n%(trailers:key=Co-Authored-By,valueonly)").split("\n")
    assert log[:2] == [WORKER, CHECKER]
    assert files_of(repo) == ["hello.txt"]


# ------------------------------------------------------------------ the user's own changes

def test_the_users_changes_made_while_the_worker_runs_are_not_committed_as_its_work(mode, tmp_path):
    repo, home, add = mode
    go = tmp_path / "go"
    add(SID, f"{wait_for(go)} && {WRITE} && {ENVELOPE}")
    start = head(repo)
    tick_until(home, repo, "worker_pid")
    # meanwhile, in the checkout: a staged README edit and an untracked note
    (repo / "README.md").write_text("hello\nthe user's own line\n")
    git(repo, "add", "README.md")
    (repo / "note.txt").write_text("the user's note\n")
    go.touch()
    await_agents(repo)
    run_until_quiet(home, repo)

    assert not read_budget(repo)["halted"]  # unrelated changes do not block the landing
    s = stage(repo, SID)
    assert s["status"] == "completed" and s["commit"] == head(repo)
    assert subjects(repo, start) == [f"{SID}: Say hello"]
    assert files_of(repo) == ["hello.txt"]
    assert git(repo, "show", "HEAD:README.md") == "hello\n"
    # the user's changes are where the user left them: README staged, the note untracked
    assert git(repo, "diff", "--cached", "--name-only").split() == ["README.md"]
    assert (repo / "note.txt").read_text() == "the user's note\n"
    assert git(repo, "status", "--porcelain", "--", "note.txt").startswith("??")
    assert (repo / "hello.txt").read_text() == "hello\n"  # the landing brought the stage's file


def test_an_edit_made_while_the_verifier_runs_is_not_blamed_on_the_verifier(mode, tmp_path):
    repo, home, add = mode
    go = tmp_path / "go"
    add(SID, verifier_cmd=f"{wait_for(go)} && " + verifier_writes(SID))
    start = head(repo)
    tick_until(home, repo, "verifier_pid")
    (repo / "README.md").write_text("hello\nedited while the verifier ran\n")
    go.touch()
    await_agents(repo)
    run_until_quiet(home, repo)

    s = stage(repo, SID)
    assert (s["status"], s["stall_marker"]) == ("completed", None)
    assert subjects(repo, start) == [f"{SID}: Say hello"] and files_of(repo) == ["hello.txt"]
    assert (repo / "README.md").read_text() == "hello\nedited while the verifier ran\n"
    assert gitops.dirty_paths(repo) == ["README.md"]


def test_a_users_change_to_the_stages_own_file_halts_the_landing_naming_it(mode, tmp_path):
    repo, home, add = mode
    go = tmp_path / "go"
    add(SID, f"{wait_for(go)} && {WRITE} && {ENVELOPE}")
    tick_until(home, repo, "worker_pid")
    (repo / "hello.txt").write_text("the user's hello\n")
    (repo / "other.txt").write_text("unrelated\n")
    go.touch()
    await_agents(repo)
    run_until_quiet(home, repo)

    b = read_budget(repo)
    assert b["halted"] and b["halt_reason"] == "dirty-working-tree"
    said = "".join(p.read_text() for p in (home / "log").glob("tick-*.log"))
    assert "(hello.txt)" in said and "other.txt" not in said.split("dirty-working-tree")[-1]
    assert stage(repo, SID)["merge"] == "queued"
    assert (repo / "hello.txt").read_text() == "the user's hello\n"  # never overwritten


# ------------------------------------------------------------------ isolation: tree

@pytest.fixture
def tree(setup):
    repo, home, add = setup
    configure(repo, "isolation: tree")
    return setup


def test_tree_mode_commits_only_what_changed_since_the_claim(tree):
    repo, home, add = tree
    # the worker also rewrites a file that was already changed at the claim: that one is its change too
    add(SID, f"{WRITE} && printf 'reworked\\n' > draft.txt && {ENVELOPE}")
    (repo / "README.md").write_text("hello\nthe user's staged line\n")
    git(repo, "add", "README.md")
    (repo / "README.md").write_text("hello\nthe user's staged line\nand an unstaged one\n")
    (repo / "note.txt").write_text("the user's note\n")
    (repo / "draft.txt").write_text("the user's draft\n")
    start = head(repo)
    run_until_quiet(home, repo)

    s = stage(repo, SID)
    assert s["status"] == "completed" and s["commit"] == head(repo)
    assert subjects(repo, start) == [f"{SID}: Say hello"]
    assert sorted(files_of(repo)) == ["draft.txt", "hello.txt"]
    assert git(repo, "show", "HEAD:README.md") == "hello\n"
    assert git(repo, "diff", "--cached", "--name-only").split() == ["README.md"]  # still staged, as it was
    assert git(repo, "show", ":README.md") == "hello\nthe user's staged line\n"
    assert (repo / "README.md").read_text() == "hello\nthe user's staged line\nand an unstaged one\n"
    assert git(repo, "status", "--porcelain", "--", "note.txt").startswith("??")
    said = "".join(p.read_text() for p in (home / "log").glob("tick-*.log"))
    assert "left out of 01-hello's commit" in said and "README.md, note.txt" in said


@pytest.mark.parametrize("worker,verifier,status", [
    (f"{WRITE} && {COMMITS} && {ENVELOPE}", verifier_writes(SID, "FAIL"), "verifier_failed"),
    (f"{WRITE} && {COMMITS} && printf '%s' '{{\"stage_id\":\"01-hello\",\"status\":\"fail\","
     f"\"deliverables\":[],\"notes\":\"gave up\"}}' > \"$AUTOMETTA_HANDOFF\"", verifier_writes(SID), "failed"),
    (f"{WRITE} && {ENVELOPE}", f"{COMMITS} && " + verifier_writes(SID, "FAIL"), "verifier_failed"),
], ids=["worker-commits-verifier-fails", "worker-commits-and-gives-up", "verifier-commits-and-fails"])
def test_tree_mode_takes_an_agents_commit_off_the_branch_when_the_stage_does_not_land(tree, worker, verifier,
                                                                                     status):
    repo, home, add = tree
    add(SID, worker, verifier)
    start = head(repo)
    run_until_quiet(home, repo)
    s = stage(repo, SID)
    assert s["status"] == status
    assert head(repo) == start and git(repo, "symbolic-ref", "--short", "HEAD").strip() == "master"
    assert (repo / "hello.txt").read_text() == "hello\n"  # kept in the tree for review
    assert "hello.txt" in gitops.dirty_paths(repo)
    said = "".join(p.read_text() for p in (home / "log").glob("tick-*.log"))
    assert f"master moved back from" in said and f"to {start[:12]}: 1 commit(s)" in said
    assert git(repo, "reflog", "-1", "--format=%s", "master")  # the commit stays reachable in the reflog


def test_tree_mode_folds_an_agents_commit_into_the_stages_commit(tree):
    repo, home, add = tree
    add(SID, f"{WRITE} && {COMMITS} && {ENVELOPE}")
    start = head(repo)
    run_until_quiet(home, repo)
    assert stage(repo, SID)["status"] == "completed"
    assert subjects(repo, start) == [f"{SID}: Say hello"] and files_of(repo) == ["hello.txt"]
    assert git(repo, "log", "-1", "--format=%an <%ae>").strip() == WORKER


@pytest.mark.parametrize("books", ["books", "books-lost"])
def test_tree_mode_refuses_a_claim_record_changed_after_the_claim(tree, tmp_path, run, books):
    """The controller's books put the record back and halt; without them, the digest on the stage refuses it."""
    repo, home, add = tree
    go = tmp_path / "go"
    add(SID, f"{wait_for(go)} && {WRITE} && {ENVELOPE}")
    (repo / "note.txt").write_text("the user's note\n")
    start = head(repo)
    tick_until(home, repo, "worker_pid")
    record = repo / "state" / "logs" / f"{SID}-claim.json"
    claimed = record.read_text()
    record.write_text(claimed.replace("note.txt", "other.txt"))  # an agent would sweep note.txt in
    go.touch()
    await_agents(repo)
    if books == "books":
        outcomes = tick_once(home)
        assert outcomes[0].kind == "halt", outcomes
        assert read_budget(repo)["halt_reason"] == f"state_tampered: state/logs/{SID}-claim.json"
        assert record.read_text() == claimed  # put back; the changed one is kept beside it
        assert list(record.parent.glob(f"{SID}-claim.json.tampered-*"))
        assert run("tick", "--reset-halt").code == 0
        run_until_quiet(home, repo)
        assert stage(repo, SID)["status"] == "completed"
        assert files_of(repo) == ["hello.txt"]  # the user's note stays theirs
        return
    for kept in (home / "books").glob("*.json"):  # a home without books: what the stage holds still counts
        kept.unlink()
    run_until_quiet(home, repo)
    s = stage(repo, SID)
    assert s["status"] == "verifier_failed" and s["stall_marker"].startswith("commit_failed: ")
    assert "was altered after the claim" in s["stall_marker"]
    assert head(repo) == start


def test_tree_mode_keeps_one_stage_in_the_tree_and_no_worktree(tree):
    repo, home, add = tree
    add(SID)
    tick_once(home)
    doc = read_state(repo)
    assert doc["current_stage"] == SID and not stage(repo, SID).get("worktree")
    assert stage(repo, SID)["claim_branch"] == "master" and stage(repo, SID)["claim_head"] == head(repo)
    await_agents(repo)
    run_until_quiet(home, repo)
    assert stage(repo, SID)["status"] == "completed" and not (repo / ".autometta").exists()

"""Widened scope: a worker changes files its card does not deliver or allow.

An undeclared file stops the stage ``out_of_scope_change: <files>``; its own
card, the acceptance command's files, CI configuration and a test file the
card does not name stop it ``protected_path_changed: <files>``. Checked when
the worker hands off, before the acceptance command or the verifier spend
anything, and again just before the commit. Serial and lanes (``max_parallel: 2``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from autometta.git import gitops, stagecommit
from autometta.paths import HomePaths, RepoPaths
from autometta.repo import RepoContext
from tests.testing.repos import make_repo
from tests.testing.ticks import (PASS_WORKER, await_agents, commit_all, git, run_until_quiet, script_card,
                                 stage, tick_once)

MODES = ["serial", "lanes"]


def lanes(repo: Path, mode: str) -> None:
    """serial: a stage in its worktree at max_parallel 1; lanes: max_parallel 2; tree: isolation: tree."""
    extra = {"lanes": "max_parallel: 2\n", "tree": "isolation: tree\n"}.get(mode)
    if extra:
        manifest = repo / ".autometta.local.yaml"
        manifest.write_text(manifest.read_text() + extra)


def worker(stage_id: str, extra: str) -> str:
    """The default worker (writes hello.txt, its deliverable), plus ``extra``."""
    return f"{extra} && " + PASS_WORKER.replace("{id}", stage_id)


def strict(add, stage_id: str, extra: str, **kw):
    """A card whose worker may change hello.txt and nothing else."""
    return add(stage_id, worker(stage_id, extra), may_also_change=(), **kw)


def stopped(repo: Path, home: Path, stage_id: str, head: str) -> dict:
    run_until_quiet(home, repo)
    s = stage(repo, stage_id)
    assert s["status"] == "failed", s
    assert not (repo / "state" / "logs" / f"{stage_id}-verifier.log").exists()  # the verifier never ran
    assert not (repo / "state" / "logs" / f"{stage_id}-acceptance.log").exists()  # nor the acceptance command
    assert not s.get("verifier_attempts")
    assert git(repo, "rev-parse", "HEAD").strip() == head  # nothing committed
    return s


@pytest.mark.parametrize("mode", MODES)
def test_an_undeclared_file_stops_the_stage(setup, mode):
    repo, home, add = setup
    lanes(repo, mode)
    strict(add, "01-a", "printf 'more\\n' >> README.md && printf 'x\\n' > notes.md", acceptance="true")
    head = git(repo, "rev-parse", "HEAD").strip()
    s = stopped(repo, home, "01-a", head)
    assert s["stall_marker"] == "out_of_scope_change: README.md, notes.md"


@pytest.mark.parametrize("mode", MODES)
def test_a_declared_glob_lets_it_through(setup, mode):
    repo, home, add = setup
    lanes(repo, mode)
    add("01-a", worker("01-a", "mkdir -p docs/notes && printf 'x\\n' > docs/notes/a.md"),
        may_also_change=("docs/notes/**",))
    run_until_quiet(home, repo)
    assert stage(repo, "01-a")["status"] == "completed"
    assert "docs/notes/a.md" in git(repo, "show", "--name-only", "--format=", "HEAD")


def _with_test_file(repo: Path) -> None:
    (repo / "tests").mkdir()
    (repo / "tests" / "test_hello.py").write_text("assert open('hello.txt').read() == 'hello\\n'\n")
    commit_all(repo, "a test")


@pytest.mark.parametrize("mode", MODES)
def test_a_worker_that_rewrites_the_test_to_pass_is_stopped(setup, mode):
    repo, home, add = setup
    lanes(repo, mode)
    _with_test_file(repo)
    # the test is run by the acceptance command, and it lives under tests/: protected twice over,
    # even though the card lets the worker change anything under tests/
    add("01-a", worker("01-a", "printf 'pass\\n' > tests/test_hello.py"), acceptance="python3 tests/test_hello.py",
        may_also_change=("tests/**",))
    head = git(repo, "rev-parse", "HEAD").strip()
    s = stopped(repo, home, "01-a", head)
    assert s["stall_marker"] == "protected_path_changed: tests/test_hello.py"


@pytest.mark.parametrize("mode", MODES)
def test_a_new_test_file_the_card_does_not_name_is_stopped(setup, mode):
    repo, home, add = setup
    lanes(repo, mode)
    strict(add, "01-a", "printf 'def test_x(): pass\\n' > conftest.py")
    head = git(repo, "rev-parse", "HEAD").strip()
    assert stopped(repo, home, "01-a", head)["stall_marker"] == "protected_path_changed: conftest.py"


@pytest.mark.parametrize("mode", MODES)
def test_a_test_file_named_as_a_deliverable_lands(setup, mode):
    repo, home, add = setup
    lanes(repo, mode)
    _with_test_file(repo)
    add("01-a", worker("01-a", "printf 'assert True\\n' > tests/test_hello.py"),
        deliverables=("hello.txt", "tests/test_hello.py"), may_also_change=())
    run_until_quiet(home, repo)
    assert stage(repo, "01-a")["status"] == "completed"


@pytest.mark.parametrize("mode", MODES)
def test_a_worker_that_edits_ci_config_is_stopped(setup, mode):
    repo, home, add = setup
    lanes(repo, mode)
    (repo / ".github" / "workflows").mkdir(parents=True)
    (repo / ".github" / "workflows" / "ci.yml").write_text("on: push\njobs: {test: {steps: [{run: make test}]}}\n")
    commit_all(repo, "ci")
    add("01-a", worker("01-a", "printf 'on: push\\njobs: {}\\n' > .github/workflows/ci.yml"),
        may_also_change=(".github/**",))
    head = git(repo, "rev-parse", "HEAD").strip()
    s = stopped(repo, home, "01-a", head)
    assert s["stall_marker"] == "protected_path_changed: .github/workflows/ci.yml"


@pytest.mark.parametrize("mode", MODES)
def test_a_worker_that_edits_its_own_card_is_stopped(setup, mode):
    repo, home, add = setup
    lanes(repo, mode)
    # it widens its own scope on the way: the card as the tick reads it must not be what judges it
    add("01-a", worker("01-a", "printf -- '- **May also change:** **\\n' >> docs/stages/01-a.md"),
        may_also_change=())
    head = git(repo, "rev-parse", "HEAD").strip()
    s = stopped(repo, home, "01-a", head)
    assert s["stall_marker"] == "protected_path_changed: docs/stages/01-a.md"


@pytest.mark.parametrize("mode", MODES + ["tree"])
def test_a_worker_that_commits_an_undeclared_file_is_stopped(setup, mode):
    """Measured from where the stage started (its fork point; the head at the claim in tree mode), not HEAD."""
    repo, home, add = setup
    lanes(repo, mode)
    strict(add, "01-a", "printf 'x\\n' > notes.md && git add notes.md && "
                        "git -c user.name=Bot -c user.email=bot@x commit -qm sneak")
    head = git(repo, "rev-parse", "HEAD").strip()
    s = stopped(repo, home, "01-a", head)
    assert s["stall_marker"] == "out_of_scope_change: notes.md"


SNEAK = " && git add README.md && git -c user.name=Bot -c user.email=bot@x commit -qm sneak"


@pytest.mark.parametrize("how", ["edits", "commits", "commits-in-tree"])
def test_by_hand_verify_refuses_an_out_of_scope_change(run, tmp_path, how):
    """Measured where the worker worked (its worktree; the checkout with isolation: tree), from where it started."""
    repo = make_repo(tmp_path / "manual")
    if how == "commits-in-tree":
        (repo / ".autometta.local.yaml").write_text("isolation: tree\n")
        (repo / ".gitignore").write_text(".autometta.local.yaml\n")
    extra = "printf 'more\\n' >> README.md" + ("" if how == "edits" else SNEAK)
    card = script_card(repo, "01-a", worker("01-a", extra), may_also_change=())
    commit_all(repo, "card")
    assert run("dispatch", str(card), "--wait").code == 0
    if how != "commits-in-tree":  # the user's own work in the checkout is not the stage's change
        (repo / "notes.md").write_text("the user's note\n")
        (repo / "later.md").write_text("the user's commit\n")
        git(repo, "add", "later.md")
        git(repo, "commit", "-qm", "the user commits meanwhile")
    res = run("verify", str(card), "--wait")
    assert res.code == 1 and "out_of_scope_change: README.md;" in res.err, res.err
    assert not (repo / "state" / "logs" / "01-a-verifier.log").exists()
    assert not (repo / "state" / "logs" / "01-a-acceptance.log").exists()


# ------------------------------------------------------------------ just before the commit

@pytest.mark.parametrize("mode", MODES)
def test_the_commit_itself_refuses_what_the_card_does_not_allow(tmp_path, mode):
    """The last check, shared by the tick and 'autometta accept': whatever reached the tree since the handoff."""
    from autometta.errors import UserError
    repo = make_repo(tmp_path / "repo")
    card = script_card(repo, "01-a", may_also_change=())
    (repo / "tests").mkdir()
    (repo / "tests" / "test_a.py").write_text("assert True\n")
    commit_all(repo, "card and test")
    ctx = RepoContext(paths=RepoPaths(repo), home=HomePaths(tmp_path / "home"), config={}, manifest={})
    stage_doc = {"id": "01-a", "worker": "Script Worker <script-worker@local>",
                 "verifier": "Script Checker <script-checker@local>"}
    if mode == "lanes":  # a branch of its own: its commits count from where it forked
        git(repo, "checkout", "-qb", "autometta/01-a")
        stage_doc["base"] = "master" if "master" in git(repo, "branch") else "main"
        (repo / "early.md").write_text("x\n")
        commit_all(repo, "a commit the agent made")
    head = gitops.head_sha(repo)
    (repo / "hello.txt").write_text("hello\n")
    (repo / "tests" / "test_a.py").write_text("pass\n")
    with pytest.raises(UserError) as caught:
        stagecommit.commit_accepted(ctx, stage_doc, "Say hello")
    assert getattr(caught.value, "marker", None) == "protected_path_changed"
    assert gitops.head_sha(repo) == head
    git(repo, "checkout", "-q", "--", "tests/test_a.py")
    if mode == "lanes":
        with pytest.raises(UserError) as caught:
            stagecommit.commit_accepted(ctx, stage_doc, "Say hello")
        assert getattr(caught.value, "marker", None) == "out_of_scope_change" and "early.md" in caught.value.message
        (repo / "early.md").unlink()
    assert stagecommit.commit_accepted(ctx, stage_doc, "Say hello")  # in scope: committed
    assert "hello.txt" in git(repo, "show", "--name-only", "--format=", "HEAD").split()


@pytest.mark.parametrize("mode", MODES)
def test_a_worker_that_edits_the_card_in_the_users_checkout_is_stopped(setup, mode):
    """The tick reads the card (its acceptance command too) from the user's checkout, outside the worktree."""
    repo, home, add = setup
    lanes(repo, mode)
    edit = ("sed -i 's/test -f never-there/true/' \"$AUTOMETTA_REPO/docs/stages/01-a.md\"")
    strict(add, "01-a", edit, acceptance="test -f never-there")
    head = git(repo, "rev-parse", "HEAD").strip()
    s = stopped(repo, home, "01-a", head)
    assert s["stall_marker"] == "protected_path_changed: docs/stages/01-a.md"


@pytest.mark.parametrize("mode", MODES + ["tree"])
def test_the_users_own_changes_are_not_the_stages(setup, mode, tmp_path):
    """In a worktree: what the user edits in the checkout and commits on the base meanwhile. In tree mode:
    what the user had already changed at the claim. Neither is out of the stage's scope, nor committed."""
    repo, home, add = setup
    lanes(repo, mode)
    go = tmp_path / "go"
    strict(add, "01-a", f"while [ ! -e '{go}' ]; do sleep 0.02; done")
    if mode == "tree":
        (repo / "README.md").write_text("hello\nthe user's line\n")
    start = git(repo, "rev-parse", "HEAD").strip()
    for _ in range(10):
        tick_once(home)
        if stage(repo, "01-a").get("worker_pid"):
            break
    if mode != "tree":
        (repo / "notes.md").write_text("the user's notes\n")
        commit_all(repo, "the user commits meanwhile")
        (repo / "README.md").write_text("hello\nthe user's line\n")
    go.touch()
    await_agents(repo)
    run_until_quiet(home, repo)
    s = stage(repo, "01-a")
    assert s["status"] == "completed", s
    assert git(repo, "show", "--name-only", "--format=", "HEAD").split() == ["hello.txt"]
    assert git(repo, "log", "--format=%s", f"{start}..HEAD").splitlines()[0] == "01-a: Say hello"
    assert (repo / "README.md").read_text() == "hello\nthe user's line\n"

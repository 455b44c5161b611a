"""Hints that work: each command a message tells a user to run does what it says, and keeps state/ (real git)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from autometta import cli, hints
from tests.testing.repos import make_repo
from tests.testing.ticks import git, read_budget, read_state, run_until_quiet, stage

WRITES_TWO = ("printf 'stage\\n' > a.txt && printf 'stage readme\\n' > README.md && printf '%s' "
              "'{\"stage_id\":\"01-a\",\"status\":\"pass\",\"deliverables\":[\"a.txt\"],\"notes\":\"done\"}' "
              "> \"$AUTOMETTA_HANDOFF\"")


def _sh(repo: Path, command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, shell=True, cwd=str(repo), capture_output=True, text=True)


def _tick_log(home: Path) -> str:
    return "".join(p.read_text() for p in sorted((home / "log").glob("tick-*.log")))


@pytest.mark.parametrize("parallel", [1, 2])
def test_the_dirty_tree_halt_names_the_files_and_a_stash_that_keeps_the_queue(setup, run, parallel):
    repo, home, add = setup
    manifest = repo / ".autometta.local.yaml"
    manifest.write_text(manifest.read_text() + f"max_parallel: {parallel}\n")
    add("01-a", WRITES_TWO, deliverables=("a.txt", "README.md"))
    (repo / "README.md").write_text("the user's edit\n")  # tracked, changed: the stage changes it too
    (repo / "a.txt").write_text("the user's own a.txt\n")  # untracked, where the stage adds one
    (repo / "notes.txt").write_text("unrelated\n")  # neither blocks nor is stashed
    run_until_quiet(home, repo, limit=20)
    assert read_budget(repo)["halt_reason"] == "dirty-working-tree"
    said = next(line for line in _tick_log(home).splitlines() if "is ready to land" in line)
    assert "(README.md, a.txt)" in said or "(a.txt, README.md)" in said
    command = re.search(r"set them aside with `([^`]+)`", said).group(1)
    queue_before = run("list-cards", str(repo)).out

    done = _sh(repo, command)  # exactly as the message gives it
    assert done.returncode == 0, done.stderr
    assert sorted(git(repo, "stash", "show", "--include-untracked", "--name-only").split()) == ["README.md", "a.txt"]
    assert run("list-cards", str(repo)).out == queue_before  # the queue is still there
    assert "01-a\tin_progress" in queue_before
    assert (repo / "notes.txt").exists() and not (repo / "a.txt").exists()

    assert run("tick", "--reset-halt", "--repo", str(repo)).code == 0
    run_until_quiet(home, repo, limit=20)
    assert stage(repo, "01-a")["status"] == "completed"
    assert (repo / "a.txt").read_text() == "stage\n"


def test_a_plain_git_stash_would_have_taken_the_queue(setup, run):
    """Why the hint names a command: `git stash` takes the tracked state files, and the queue shows unqueued."""
    repo, home, add = setup
    add("01-a", WRITES_TWO, deliverables=("a.txt", "README.md"))
    assert "01-a\tpending" in run("list-cards", str(repo)).out
    (repo / "README.md").write_text("the user's edit\n")
    git(repo, "stash", "-q")
    assert "01-a\tunqueued" in run("list-cards", str(repo)).out
    git(repo, "stash", "pop", "-q")
    assert "01-a\tpending" in run("list-cards", str(repo)).out


ODD = ["plain.txt", "with space.txt", ":colon.txt", "star*.txt", "-dash.txt", "dir/new.txt"]


@pytest.mark.parametrize("ignored", [False, True])
def test_the_stash_command_takes_exactly_the_files_named(tmp_path, ignored):
    repo = make_repo(tmp_path / "r")
    (repo / "state").mkdir()
    (repo / "state" / "state.yaml").write_text("stages: []\n")
    (repo / "star-other.txt").write_text("tracked, changed, not named\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "files")
    if ignored:  # a repo whose .gitignore ignores state/ itself
        (repo / ".gitignore").write_text("state/\n")
        git(repo, "add", ".gitignore")
        git(repo, "commit", "-qm", "ignore")
    (repo / "state" / "state.yaml").write_text("stages: [changed]\n")
    (repo / "star-other.txt").write_text("changed\n")
    (repo / "dir").mkdir()
    for name in ODD:
        (repo / name).write_text(name)
    done = _sh(repo, hints.stash(ODD))
    assert done.returncode == 0, done.stderr
    assert sorted(git(repo, "stash", "show", "--include-untracked", "--name-only").split("\n")[:-1]) == sorted(ODD)
    assert (repo / "state" / "state.yaml").read_text() == "stages: [changed]\n"
    assert (repo / "star-other.txt").read_text() == "changed\n"


def test_many_files_get_the_pathspec_form_that_keeps_state():
    many = [f"f{i}.txt" for i in range(hints.NAMED + 1)]
    assert hints.stash(many) == "git stash push --include-untracked -- . ':!state'"
    assert hints.stash(["a b"]) == "git stash push --include-untracked -- 'a b'"


@pytest.mark.parametrize("ignored", [False, True])
def test_init_s_next_step_works_as_printed(tmp_path, capsys, ignored):
    repo = make_repo(tmp_path / "r")
    if ignored:
        (repo / ".gitignore").write_text("state/\n")
    capsys.readouterr()
    assert cli.main(["init", str(repo)]) == 0
    out = capsys.readouterr().out
    command = next(line.strip() for line in out.splitlines() if line.strip().startswith("git add"))
    done = _sh(repo, command)
    assert done.returncode == 0, done.stderr
    tracked = git(repo, "ls-files").split()
    assert ".gitignore" in tracked
    assert ("state/state.yaml" in tracked) is not ignored
    if ignored:
        assert "stay untracked" in out

"""autometta.git.gitops against real git in scratch repos.

conftest isolates the global git config and sets a GIT_AUTHOR_*/GIT_COMMITTER_*
identity ("Test Human"), which plays the part of the user's own identity.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Dict, List

import pytest

from autometta.errors import UserError
from autometta.git import gitops
from tests.testing.repos import make_repo

WORKER = "Codex GPT-5.5 <codex-gpt-5-5@local>"
VERIFIER = "Claude Opus 4.8 <claude-opus-4-8@local>"
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


def git(repo: Path, *args: str, check: bool = True) -> str:
    proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"git {args} failed: {proc.stderr.decode()}")
    return proc.stdout.decode("utf-8", "surrogateescape")


def commit_all(repo: Path, message: str = "more") -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)
    return git(repo, "rev-parse", "HEAD").strip()


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def hook(repo: Path, name: str, body: str) -> None:
    target = write(repo / ".git" / "hooks" / name, "#!/bin/sh\n" + body)
    target.chmod(0o755)


def index_bytes(repo: Path) -> bytes:
    return (repo / ".git" / "index").read_bytes()


def user_view(repo: Path) -> Dict[str, object]:
    """Everything of the user's that gitops must not change, as they would see it."""
    return {
        "HEAD file": (repo / ".git" / "HEAD").read_bytes(),
        "HEAD": git(repo, "rev-parse", "-q", "--verify", "HEAD", check=False),
        "index": index_bytes(repo) if (repo / ".git" / "index").exists() else None,
        "status": git(repo, "status", "--porcelain", "-z", "--untracked-files=all", "--ignored"),
        "staged": git(repo, "diff", "--cached", "--name-status", "-z"),
        "files": {str(p.relative_to(repo)): p.read_bytes() for p in sorted(repo.rglob("*"))
                  if p.is_file() and ".git" not in p.relative_to(repo).parts},
    }


@pytest.fixture
def state_repo(repo: Path) -> Path:
    """A subscribed repo: state.yaml and budget.json tracked on the user's branch (as init advises)."""
    write(repo / ".gitignore", "state/logs/\nstate/*.bak\n*.log\n")
    write(repo / "state" / "state.yaml", "stages: []\n")
    write(repo / "state" / "budget.json", '{"tokens_spent": 0}\n')
    commit_all(repo, "autometta: subscribe")
    return repo


# ------------------------------------------------------------- small queries

def test_head_sha_and_branch(tmp_path: Path, repo: Path) -> None:
    assert gitops.head_sha(repo) == git(repo, "rev-parse", "HEAD").strip()
    assert gitops.current_branch(repo) == git(repo, "symbolic-ref", "--short", "HEAD").strip()
    git(repo, "checkout", "-q", "--detach")
    assert gitops.current_branch(repo) is None
    assert gitops.head_sha(repo) == git(repo, "rev-parse", "HEAD").strip()

    unborn = tmp_path / "unborn"
    git(tmp_path, "init", "-q", "-b", "trunk", str(unborn))
    assert gitops.head_sha(unborn) is None
    assert gitops.current_branch(unborn) == "trunk"


def test_not_a_repo_is_a_user_error_naming_the_command(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(UserError) as info:
        gitops.head_sha(plain)
    assert "git rev-parse" in str(info.value)
    assert "not a git repository" in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_git_is_a_user_error(repo: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", "")
    with pytest.raises(UserError, match="git not found"):
        gitops.head_sha(repo)
    with pytest.raises(UserError, match="git not found"):
        gitops.is_work_tree_top(repo)


def test_is_work_tree_top(tmp_path: Path, repo: Path) -> None:
    (repo / "sub").mkdir()
    assert gitops.is_work_tree_top(repo)
    assert gitops.is_work_tree_top(str(repo))
    assert not gitops.is_work_tree_top(repo / "sub")
    assert not gitops.is_work_tree_top(repo / ".git")
    assert not gitops.is_work_tree_top(repo / "README.md")
    assert not gitops.is_work_tree_top(tmp_path / "missing")
    outside = tmp_path / "outside"
    outside.mkdir()
    assert not gitops.is_work_tree_top(outside)
    bare = tmp_path / "bare.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    assert not gitops.is_work_tree_top(bare)


def test_inherited_git_dir_and_index_do_not_redirect_calls(tmp_path: Path, repo: Path,
                                                            monkeypatch) -> None:
    other = make_repo(tmp_path / "other")
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    monkeypatch.setenv("GIT_INDEX_FILE", str(other / ".git" / "index"))
    monkeypatch.setenv("GIT_LITERAL_PATHSPECS", "1")
    write(repo / "new.txt", "x\n")
    assert gitops.dirty_paths(repo) == ["new.txt"]
    monkeypatch.delenv("GIT_DIR")
    monkeypatch.delenv("GIT_INDEX_FILE")
    assert gitops.head_sha(repo) == git(repo, "rev-parse", "HEAD").strip()


# ------------------------------------------------------------- dirty_paths

def test_dirty_paths_clean_repo(state_repo: Path) -> None:
    assert gitops.dirty_paths(state_repo) == []


def test_dirty_paths_kinds(state_repo: Path) -> None:
    repo = state_repo
    write(repo / "README.md", "changed\n")
    write(repo / "notes" / "deep" / "a.txt", "untracked\n")
    write(repo / "notes" / "b.txt", "untracked\n")
    write(repo / "debug.log", "ignored\n")
    write(repo / "state" / "state.yaml", "stages: [x]\n")       # tracked, in state/
    write(repo / "state" / "handoffs" / "s1.json", "{}\n")     # untracked, in state/
    write(repo / "state" / "logs" / "s1-worker.log", "log\n")  # ignored, in state/
    assert sorted(gitops.dirty_paths(repo)) == ["README.md", "notes/b.txt", "notes/deep/a.txt"]


def test_dirty_paths_deleted_and_renamed(repo: Path) -> None:
    write(repo / "old name.txt", "some content that git can follow\n" * 5)
    write(repo / "gone.txt", "bye\n")
    commit_all(repo)
    git(repo, "mv", "old name.txt", "new name.txt")
    (repo / "gone.txt").unlink()
    assert sorted(gitops.dirty_paths(repo)) == ["gone.txt", "new name.txt", "old name.txt"]


def test_dirty_paths_awkward_names(repo: Path) -> None:
    names = ["with space.txt", "new\nline.txt", "ünïcødé ☃.txt", "-rf", "tab\there", '"quoted"']
    for name in names:
        write(repo / name, "x\n")
    assert sorted(gitops.dirty_paths(repo)) == sorted(names)


def test_dirty_paths_does_not_touch_the_index(repo: Path) -> None:
    write(repo / "README.md", "changed\n")
    before = index_bytes(repo)
    gitops.dirty_paths(repo)
    assert index_bytes(repo) == before


@pytest.mark.parametrize("raw, expected", [
    (b"", []),
    (b" M a\0", ["a"]),
    (b"?? new file\0 D gone\0", ["new file", "gone"]),
    (b"R  new\0old\0?? x\0", ["new", "old", "x"]),
    (b"RM new\0old\0", ["new", "old"]),
    (b"C  copy\0orig\0", ["copy", "orig"]),
    (b" R ita-new\0ita-old\0", ["ita-new", "ita-old"]),
    (b"?? line\nbreak\0", ["line\nbreak"]),
    (b"MM a\0A  a\0", ["a"]),
])
def test_parse_status_z(raw: bytes, expected: List[str]) -> None:
    assert gitops.parse_status_z(raw) == expected


# ------------------------------------------------------- worktree_fingerprint

def test_fingerprint_of_a_clean_tree_is_heads_tree(state_repo: Path) -> None:
    head_tree = git(state_repo, "rev-parse", "HEAD^{tree}").strip()
    assert gitops.worktree_fingerprint(state_repo) == head_tree
    assert gitops.worktree_fingerprint(state_repo) == head_tree


def test_fingerprint_follows_content_outside_state_only(state_repo: Path) -> None:
    repo = state_repo
    base = gitops.worktree_fingerprint(repo)

    write(repo / "state" / "state.yaml", "stages: [changed]\n")
    write(repo / "state" / "verifiers" / "s1.json", '{"overall": "PASS"}\n')
    write(repo / "ignored.log", "noise\n")
    assert gitops.worktree_fingerprint(repo) == base

    extra = write(repo / "scratch" / "new.txt", "new\n")
    with_untracked = gitops.worktree_fingerprint(repo)
    assert with_untracked != base
    assert gitops.worktree_fingerprint(repo) == with_untracked
    extra.unlink()
    assert gitops.worktree_fingerprint(repo) == base

    write(repo / "README.md", "edited\n")
    edited = gitops.worktree_fingerprint(repo)
    assert edited != base
    write(repo / "README.md", "hello\n")
    assert gitops.worktree_fingerprint(repo) == base

    (repo / "README.md").chmod(0o755)
    assert gitops.worktree_fingerprint(repo) != base


def test_fingerprint_counts_tracked_files_that_match_gitignore(repo: Path) -> None:
    write(repo / "vendor.log", "tracked though ignored\n")
    commit_all(repo)
    write(repo / ".gitignore", "*.log\n")
    commit_all(repo)
    base = gitops.worktree_fingerprint(repo)
    write(repo / "vendor.log", "changed\n")
    assert gitops.worktree_fingerprint(repo) != base


def test_fingerprint_never_touches_the_users_index(state_repo: Path) -> None:
    repo = state_repo
    write(repo / "README.md", "staged version\n")
    git(repo, "add", "README.md")
    write(repo / "README.md", "working version\n")
    write(repo / "untracked.txt", "u\n")
    before = user_view(repo)
    git_dir_before = sorted(os.listdir(repo / ".git"))
    gitops.worktree_fingerprint(repo)
    assert user_view(repo) == before
    assert sorted(os.listdir(repo / ".git")) == git_dir_before


def test_fingerprint_without_commits(tmp_path: Path) -> None:
    repo = tmp_path / "fresh"
    git(tmp_path, "init", "-q", str(repo))
    assert gitops.worktree_fingerprint(repo) == EMPTY_TREE
    write(repo / "state" / "state.yaml", "stages: []\n")
    assert gitops.worktree_fingerprint(repo) == EMPTY_TREE
    write(repo / "a.txt", "a\n")
    assert gitops.worktree_fingerprint(repo) != EMPTY_TREE
    assert not (repo / ".git" / "index").exists()


# ------------------------------------------------------------ sanitize_subject

@pytest.mark.parametrize("text, expected", [
    ("s1: add the thing", "s1: add the thing"),
    ("  padded  ", "padded"),
    ("line one\nline two\r\nthree", "line one line two three"),
    ("tabs\tand\x00nul\x1b[31mesc\x7fdel", "tabs and nul [31mesc del"),
    ("many     spaces", "many spaces"),
    ("sep\u2028line\u2029para\x85nel", "sep line para nel"),
    ("bidi \u202etxt.exe", "bidi txt.exe"),
    ("-rf: leading dash kept", "-rf: leading dash kept"),
    ("", ""),
    ("\n\n", ""),
    ("ünïcødé ☃ 👍", "ünïcødé ☃ 👍"),
])
def test_sanitize_subject(text: str, expected: str) -> None:
    assert gitops.sanitize_subject(text) == expected


def test_sanitize_subject_limit() -> None:
    long = "word " * 100
    cut = gitops.sanitize_subject(long)
    assert len(cut) <= 120 and cut.endswith("...") and "\n" not in cut
    assert gitops.sanitize_subject("x" * 120) == "x" * 120
    assert gitops.sanitize_subject("x" * 121) == "x" * 117 + "..."
    assert gitops.sanitize_subject("abcdef", limit=5) == "ab..."


# ---------------------------------------------------------------- commit_stage

LOG_FORMAT = "%an <%ae>%n%cn <%ce>%n%s%n%(trailers:key=Co-Authored-By,valueonly)"


def committed_files(repo: Path, rev: str = "HEAD") -> List[str]:
    out = git(repo, "show", "--name-only", "-z", "--no-renames", "--format=", rev)
    return sorted(p for p in out.split("\0") if p.strip("\n"))


def test_commit_stage_author_subject_trailer(state_repo: Path) -> None:
    repo = state_repo
    write(repo / "out" / "s1.txt", "done\n")
    sha = gitops.commit_stage(repo, author=WORKER, subject="s1: make the thing", coauthor=VERIFIER)
    assert sha == git(repo, "rev-parse", "HEAD").strip()
    assert git(repo, "log", "-1", f"--format={LOG_FORMAT}") == (
        f"{WORKER}\nTest Human <human@example.com>\ns1: make the thing\n{VERIFIER}\n\n")
    assert git(repo, "log", "-1", "--format=%B") == f"s1: make the thing\n\nCo-Authored-By: {VERIFIER}\n\n"
    assert committed_files(repo) == ["out/s1.txt"]
    assert gitops.dirty_paths(repo) == []


def test_commit_stage_body_and_no_coauthor(repo: Path) -> None:
    write(repo / "a.txt", "a\n")
    gitops.commit_stage(repo, author=WORKER, subject="s2: body", coauthor=None,
                        body="First line.\r\n\n# not a comment\nKey: value  \n")
    assert git(repo, "log", "-1", "--format=%B") == "s2: body\n\nFirst line.\n\n# not a comment\nKey: value\n\n"
    assert git(repo, "log", "-1", "--format=%(trailers:key=Co-Authored-By,valueonly)").strip() == ""

    write(repo / "b.txt", "b\n")
    gitops.commit_stage(repo, author=WORKER, subject="s3", coauthor=VERIFIER, body="Notes: fine")
    assert git(repo, "log", "-1", "--format=%(trailers:key=Co-Authored-By,valueonly)") == f"{VERIFIER}\n\n"


def test_commit_stage_takes_everything_outside_state(state_repo: Path) -> None:
    repo = state_repo
    write(repo / "keep.txt", "k\n")
    write(repo / "gone.txt", "g\n")
    write(repo / "move me.txt", "content long enough to be a rename\n" * 4)
    commit_all(repo)
    (repo / "gone.txt").unlink()
    (repo / "move me.txt").rename(repo / "moved.txt")
    write(repo / "keep.txt", "changed\n")
    write(repo / "dir" / "new file.txt", "n\n")
    write(repo / "debug.log", "ignored\n")
    state_yaml = write(repo / "state" / "state.yaml", "stages: [tick wrote this]\n")
    handoff = write(repo / "state" / "handoffs" / "s1.json", '{"status": "pass"}\n')
    verdict = write(repo / "state" / "verifiers" / "s1.json", '{"overall": "PASS"}\n')

    gitops.commit_stage(repo, author=WORKER, subject="s1: all", coauthor=VERIFIER)

    assert committed_files(repo) == ["dir/new file.txt", "gone.txt", "keep.txt", "move me.txt", "moved.txt"]
    assert gitops.dirty_paths(repo) == []
    assert state_yaml.read_text() == "stages: [tick wrote this]\n"
    assert handoff.exists() and verdict.exists()
    assert git(repo, "status", "--porcelain", "--untracked-files=all", "--", "state") == (
        " M state/state.yaml\n?? state/handoffs/s1.json\n?? state/verifiers/s1.json\n")
    assert git(repo, "show", "HEAD:state/state.yaml") == "stages: []\n"


def test_commit_stage_leaves_staged_state_staged_and_uncommitted(state_repo: Path) -> None:
    """A worker that ran `git add -A` must not get state/ into the stage commit."""
    repo = state_repo
    write(repo / "out.txt", "work\n")
    write(repo / "state" / "state.yaml", "stages: [claimed]\n")
    write(repo / "state" / "handoffs" / "s1.json", "{}\n")
    git(repo, "add", "-A")
    gitops.commit_stage(repo, author=WORKER, subject="s1: work", coauthor=None)
    assert committed_files(repo) == ["out.txt"]
    assert git(repo, "diff", "--cached", "--name-only") == "state/handoffs/s1.json\nstate/state.yaml\n"
    assert (repo / "state" / "state.yaml").read_text() == "stages: [claimed]\n"


def test_commit_stage_nothing_to_commit(state_repo: Path) -> None:
    repo = state_repo
    write(repo / "state" / "state.yaml", "stages: [only state changed]\n")
    write(repo / "debug.log", "ignored\n")
    before = user_view(repo)
    assert gitops.commit_stage(repo, author=WORKER, subject="s1: nothing", coauthor=VERIFIER) is None
    assert user_view(repo) == before


def test_commit_stage_nothing_to_commit_restores_a_reverted_staging(repo: Path) -> None:
    write(repo / "README.md", "staged by the user\n")
    git(repo, "add", "README.md")
    write(repo / "README.md", "hello\n")  # working tree back to HEAD
    before = user_view(repo)
    assert gitops.commit_stage(repo, author=WORKER, subject="s1", coauthor=None) is None
    assert user_view(repo) == before


def test_commit_stage_refused_by_hook_restores_the_index(state_repo: Path) -> None:
    repo = state_repo
    write(repo / "README.md", "partly staged\n")
    git(repo, "add", "README.md")
    write(repo / "README.md", "worker version\n")
    write(repo / "new.txt", "new\n")
    hook(repo, "pre-commit", "echo 'lint: 3 problems found' >&2\nexit 1\n")
    before = user_view(repo)
    with pytest.raises(UserError) as info:
        gitops.commit_stage(repo, author=WORKER, subject="s1: refused", coauthor=VERIFIER)
    assert "lint: 3 problems found" in str(info.value)
    assert "git commit" in str(info.value)
    assert user_view(repo) == before
    assert not (repo / ".git" / "index.lock").exists()


def test_commit_stage_hook_runs_and_sees_the_message(repo: Path) -> None:
    seen = repo.parent / "hook-saw.txt"
    hook(repo, "commit-msg", f'cp "$1" "{seen}"\n')
    write(repo / "a.txt", "a\n")
    gitops.commit_stage(repo, author=WORKER, subject="s1: hooked", coauthor=VERIFIER)
    assert seen.read_text().startswith("s1: hooked\n")


def test_commit_stage_hook_timeout_restores_the_index(repo: Path, monkeypatch) -> None:
    monkeypatch.setattr(gitops, "COMMIT_TIMEOUT", 1.0)
    pid_file = repo.parent / "hook.pid"
    hook(repo, "pre-commit", f'echo $$ > "{pid_file}"\nsleep 60\n')
    write(repo / "a.txt", "a\n")
    before = user_view(repo)
    with pytest.raises(UserError, match="timed out"):
        gitops.commit_stage(repo, author=WORKER, subject="s1: slow", coauthor=None)
    assert user_view(repo) == before
    assert not running(int(pid_file.read_text()))  # the hook was killed with git


def running(pid: int) -> bool:
    """Alive and not a zombie (a killed orphan may wait a moment for init to reap it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True).stdout
    return bool(state.strip()) and not state.strip().startswith("Z")


@pytest.mark.parametrize("subject", [
    "--upload-pack=touch {marker}",
    "$(touch {marker})",
    "`touch {marker}`",
    "; touch {marker}",
    "-rf: delete everything",
    "--amend",
    "-m",
])
def test_commit_stage_subjects_are_inert(repo: Path, subject: str) -> None:
    marker = repo.parent / "pwned"
    text = subject.format(marker=marker)
    write(repo / "a.txt", "a\n")
    first = git(repo, "rev-parse", "HEAD").strip()
    sha = gitops.commit_stage(repo, author=WORKER, subject=text, coauthor=VERIFIER)
    assert git(repo, "log", "-1", "--format=%s") == text + "\n"
    assert git(repo, "rev-parse", "HEAD~1").strip() == first  # a new commit, not an amend
    assert sha != first
    assert not marker.exists()


def test_commit_stage_newlines_in_subject_make_one_line(repo: Path) -> None:
    write(repo / "a.txt", "a\n")
    gitops.commit_stage(repo, author=WORKER, subject="s1: first\n\nCo-Authored-By: Mallory <m@x>\r\nrest",
                        coauthor=None)
    assert git(repo, "log", "-1", "--format=%B") == "s1: first Co-Authored-By: Mallory <m@x> rest\n\n"
    assert git(repo, "log", "-1", "--format=%(trailers:key=Co-Authored-By,valueonly)").strip() == ""


def test_commit_stage_file_named_like_an_option(repo: Path) -> None:
    write(repo / "-rf", "not an option\n")
    write(repo / "--exec=touch x", "nor this\n")
    gitops.commit_stage(repo, author=WORKER, subject="-rf: odd names", coauthor=None)
    assert committed_files(repo) == ["--exec=touch x", "-rf"]


@pytest.mark.parametrize("author", [
    "Mallory <m@x>\n--exec=touch pwned",
    "no email here",
    "<only@email>",
    "Two <a@b> <c@d>",
    "Name <with space@x>",
    "",
])
def test_commit_stage_refuses_bad_authors(repo: Path, author: str) -> None:
    write(repo / "a.txt", "a\n")
    before = user_view(repo)
    with pytest.raises(UserError, match="Name <email>"):
        gitops.commit_stage(repo, author=author, subject="s1", coauthor=None)
    assert user_view(repo) == before


def test_commit_stage_refuses_empty_subject(repo: Path) -> None:
    write(repo / "a.txt", "a\n")
    with pytest.raises(UserError, match="empty subject"):
        gitops.commit_stage(repo, author=WORKER, subject=" \n ", coauthor=None)


def test_commit_stage_coauthor_is_one_line(repo: Path) -> None:
    write(repo / "a.txt", "a\n")
    gitops.commit_stage(repo, author=WORKER, subject="s1", coauthor="Claude\nOpus <c@local>")
    assert git(repo, "log", "-1", "--format=%(trailers:key=Co-Authored-By,valueonly)") == "Claude Opus <c@local>\n\n"


def _theirs_then_ours(repo: Path) -> None:
    """Branch ``other`` commits "theirs" to README.md; back on the first branch, "ours" is written (uncommitted)."""
    main = gitops.current_branch(repo)
    git(repo, "checkout", "-qb", "other")
    write(repo / "README.md", "theirs\n")
    commit_all(repo, "theirs")
    git(repo, "checkout", "-q", main)
    write(repo / "README.md", "ours\n")


def test_commit_stage_refuses_during_a_merge(repo: Path) -> None:
    _theirs_then_ours(repo)
    commit_all(repo, "ours")
    git(repo, "merge", "-q", "other", check=False)
    assert (repo / ".git" / "MERGE_HEAD").exists()
    head = gitops.head_sha(repo)
    before = user_view(repo)
    with pytest.raises(UserError, match="middle of a merge"):
        gitops.commit_stage(repo, author=WORKER, subject="s1", coauthor=None)
    assert user_view(repo) == before
    assert gitops.head_sha(repo) == head


def test_commit_stage_refuses_during_a_rebase(repo: Path) -> None:
    (repo / ".git" / "rebase-merge").mkdir()
    write(repo / "a.txt", "a\n")
    with pytest.raises(UserError, match="middle of a rebase"):
        gitops.commit_stage(repo, author=WORKER, subject="s1", coauthor=None)


def test_commit_stage_refuses_unresolved_conflicts(repo: Path) -> None:
    _theirs_then_ours(repo)
    write(repo / "wip.txt", "wip\n")
    git(repo, "stash", "-q", "-u")
    git(repo, "reset", "-q", "--hard", "other")
    write(repo / "README.md", "conflicting\n")
    commit_all(repo, "conflict base")
    git(repo, "stash", "pop", "-q", check=False)
    if not git(repo, "ls-files", "-u"):
        pytest.skip("this git resolved the stash without a conflict")
    with pytest.raises(UserError, match="unresolved conflicts"):
        gitops.commit_stage(repo, author=WORKER, subject="s1", coauthor=None)


def test_commit_stage_on_detached_head(repo: Path) -> None:
    git(repo, "checkout", "-q", "--detach")
    write(repo / "a.txt", "a\n")
    sha = gitops.commit_stage(repo, author=WORKER, subject="s1: detached", coauthor=None)
    assert sha == git(repo, "rev-parse", "HEAD").strip()
    assert gitops.current_branch(repo) is None


def test_commit_stage_without_commits_yet(tmp_path: Path) -> None:
    repo = tmp_path / "fresh"
    git(tmp_path, "init", "-q", str(repo))
    write(repo / "a.txt", "a\n")
    write(repo / "state" / "state.yaml", "stages: []\n")
    sha = gitops.commit_stage(repo, author=WORKER, subject="s1: first", coauthor=VERIFIER)
    assert sha and gitops.head_sha(repo) == sha
    assert committed_files(repo) == ["a.txt"]
    assert git(repo, "status", "--porcelain") == "?? state/\n"


def test_commit_stage_uses_the_users_committer_config(repo: Path, monkeypatch) -> None:
    for key in ("GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL"):
        monkeypatch.delenv(key)
    git(repo, "config", "user.name", "Repo Owner")
    git(repo, "config", "user.email", "owner@example.com")
    write(repo / "a.txt", "a\n")
    gitops.commit_stage(repo, author=WORKER, subject="s1", coauthor=None)
    assert git(repo, "log", "-1", "--format=%an <%ae>|%cn <%ce>") == f"{WORKER}|Repo Owner <owner@example.com>\n"


# -------------------------------------------------------------- snapshot_state

STATE_FILES = ["state/state.yaml", "state/budget.json", "state/verifiers", "state/handoffs"]


def snapshot_tree(repo: Path, rev: str = gitops.STATE_REF) -> Dict[str, str]:
    names = git(repo, "ls-tree", "-r", "-z", "--name-only", rev).split("\0")
    return {n: git(repo, "show", f"{rev}:{n}") for n in names if n}


def test_snapshot_creates_the_ref_with_the_files(state_repo: Path) -> None:
    repo = state_repo
    write(repo / "state" / "verifiers" / "s1.panel" / "opus.json", '{"overall": "PASS"}\n')
    write(repo / "state" / "handoffs" / "s1.json", '{"status": "pass"}\n')
    write(repo / "state" / "logs" / "s1-worker.log", "not asked for\n")
    sha = gitops.snapshot_state(repo, STATE_FILES + ["state/missing.json"])
    assert sha == git(repo, "rev-parse", gitops.STATE_REF).strip()
    assert snapshot_tree(repo) == {
        "state/budget.json": '{"tokens_spent": 0}\n',
        "state/handoffs/s1.json": '{"status": "pass"}\n',
        "state/state.yaml": "stages: []\n",
        "state/verifiers/s1.panel/opus.json": '{"overall": "PASS"}\n',
    }
    assert git(repo, "log", "-1", "--format=%an <%ae>|%cn <%ce>|%B", gitops.STATE_REF) == (
        "autometta <autometta@localhost>|autometta <autometta@localhost>|phat-controller: tick state update\n\n")
    assert git(repo, "rev-list", "--count", gitops.STATE_REF).strip() == "1"


def test_snapshot_screen_keeps_a_file_out_and_never_hashes_it(state_repo: Path) -> None:
    repo = state_repo
    write(repo / "state" / "handoffs" / "s1.json", '{"notes": "the key is hunter2-screened-value"}\n')
    write(repo / "state" / "handoffs" / "s2.json", '{"notes": "fine"}\n')
    (repo / "state" / "handoffs" / "exec.sh").write_text("#!/bin/sh\n")
    (repo / "state" / "handoffs" / "exec.sh").chmod(0o755)
    os.symlink("/etc/hostname", repo / "state" / "handoffs" / "link.json")  # never followed
    seen: List[str] = []
    kept: List[tuple] = []

    def screen(path: str, data: bytes):
        seen.append(path)
        return "resolved_secret" if b"hunter2-screened-value" in data else None

    assert gitops.snapshot_state(repo, STATE_FILES, screen=screen, kept_out=kept)
    assert sorted(snapshot_tree(repo)) == ["state/budget.json", "state/handoffs/exec.sh", "state/handoffs/s2.json",
                                           "state/state.yaml"]
    assert "100755" in git(repo, "ls-tree", gitops.STATE_REF, "state/handoffs/exec.sh")
    assert [k[:2] for k in kept] == [("state/handoffs/s1.json", "resolved_secret")]
    assert "state/handoffs/link.json" not in seen
    objects = subprocess.run(["git", "-C", str(repo), "cat-file", "--batch-all-objects", "--batch"],
                             capture_output=True, check=True).stdout
    assert b"hunter2-screened-value" not in objects


def test_snapshot_keeps_history_and_skips_no_change(state_repo: Path) -> None:
    repo = state_repo
    first = gitops.snapshot_state(repo, STATE_FILES)
    assert first
    assert gitops.snapshot_state(repo, STATE_FILES) is None
    assert git(repo, "rev-parse", gitops.STATE_REF).strip() == first

    write(repo / "state" / "state.yaml", "stages: [tick 2]\n")
    second = gitops.snapshot_state(repo, STATE_FILES)
    assert second and second != first
    assert git(repo, "rev-parse", f"{gitops.STATE_REF}^").strip() == first
    assert snapshot_tree(repo)["state/state.yaml"] == "stages: [tick 2]\n"
    assert snapshot_tree(repo, first)["state/state.yaml"] == "stages: []\n"
    assert gitops.snapshot_state(repo, STATE_FILES) is None

    (repo / "state" / "budget.json").unlink()
    third = gitops.snapshot_state(repo, STATE_FILES)
    assert third and "state/budget.json" not in snapshot_tree(repo)
    assert git(repo, "rev-list", "--count", gitops.STATE_REF).strip() == "3"


def test_snapshot_leaves_the_user_alone(state_repo: Path) -> None:
    """The bash bug: checking the user's branch out again restored old state files."""
    repo = state_repo
    write(repo / "README.md", "user edit in progress\n")
    write(repo / "staged.txt", "staged\n")
    git(repo, "add", "staged.txt")
    write(repo / "scratch.txt", "untracked\n")
    write(repo / "state" / "state.yaml", "stages: [written this tick]\n")
    write(repo / "state" / "budget.json", '{"tokens_spent": 42}\n')
    write(repo / "state" / "verifiers" / "s1.json", "{}\n")
    before = user_view(repo)
    assert gitops.snapshot_state(repo, STATE_FILES)
    write(repo / "state" / "state.yaml", "stages: [next tick]\n")
    before_second = user_view(repo)
    assert gitops.snapshot_state(repo, STATE_FILES)
    assert user_view(repo) == before_second
    assert before["HEAD file"] == before_second["HEAD file"]
    assert before["index"] == before_second["index"]
    assert snapshot_tree(repo)["state/budget.json"] == '{"tokens_spent": 42}\n'


def test_snapshot_when_state_is_gitignored(repo: Path) -> None:
    write(repo / ".gitignore", "state/\n")
    commit_all(repo)
    write(repo / "state" / "state.yaml", "stages: []\n")
    write(repo / "state" / "verifiers" / "s1.json", "{}\n")
    before = user_view(repo)
    assert gitops.snapshot_state(repo, STATE_FILES)
    assert sorted(snapshot_tree(repo)) == ["state/state.yaml", "state/verifiers/s1.json"]
    assert user_view(repo) == before


def test_snapshot_on_detached_head(state_repo: Path) -> None:
    git(state_repo, "checkout", "-q", "--detach")
    before = user_view(state_repo)
    assert gitops.snapshot_state(state_repo, STATE_FILES)
    assert user_view(state_repo) == before
    assert gitops.current_branch(state_repo) is None


def test_snapshot_without_commits_yet(tmp_path: Path) -> None:
    repo = tmp_path / "fresh"
    git(tmp_path, "init", "-q", str(repo))
    assert gitops.snapshot_state(repo, STATE_FILES) is None  # nothing to save
    assert git(repo, "for-each-ref") == ""
    write(repo / "state" / "state.yaml", "stages: []\n")
    sha = gitops.snapshot_state(repo, STATE_FILES)
    assert sha and gitops.head_sha(repo) is None
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == "?? state/state.yaml\n"
    assert not (repo / ".git" / "index").exists()


def test_snapshot_custom_ref_message_author(state_repo: Path) -> None:
    ref = "refs/autometta/state"
    sha = gitops.snapshot_state(state_repo, ["state/state.yaml"], ref=ref, message="custom -m",
                                author="Ops Bot <ops@example.com>")
    assert git(state_repo, "log", "-1", "--format=%an <%ae>|%s", ref) == "Ops Bot <ops@example.com>|custom -m\n"
    assert sha == git(state_repo, "rev-parse", ref).strip()
    with pytest.raises(UserError, match="Name <email>"):
        gitops.snapshot_state(state_repo, ["state/state.yaml"], author="bad\nauthor <a@b>")
    with pytest.raises(UserError, match="full ref"):
        gitops.snapshot_state(state_repo, ["state/state.yaml"], ref="phat-controller/state")


def test_snapshot_without_a_user_identity_or_with_signing(state_repo: Path, monkeypatch) -> None:
    for key in ("GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL"):
        monkeypatch.delenv(key)
    git(state_repo, "config", "user.useConfigOnly", "true")
    git(state_repo, "config", "commit.gpgSign", "true")
    git(state_repo, "config", "gpg.program", "false")
    assert gitops.snapshot_state(state_repo, STATE_FILES)


@pytest.mark.parametrize("bad", ["../outside.txt", "/etc/passwd", "state/../../x", ".git/config"])
def test_snapshot_refuses_paths_outside_the_repo(state_repo: Path, bad: str) -> None:
    with pytest.raises(UserError, match="inside it"):
        gitops.snapshot_state(state_repo, [bad])


def test_snapshot_refuses_when_the_state_branch_is_checked_out(state_repo: Path) -> None:
    assert gitops.snapshot_state(state_repo, STATE_FILES)
    git(state_repo, "checkout", "-q", "phat-controller/state")
    write(state_repo / "state" / "state.yaml", "stages: [changed]\n")
    tip = git(state_repo, "rev-parse", gitops.STATE_REF).strip()
    with pytest.raises(UserError, match="checked out"):
        gitops.snapshot_state(state_repo, STATE_FILES)
    assert git(state_repo, "rev-parse", gitops.STATE_REF).strip() == tip


def test_snapshot_odd_file_names(state_repo: Path) -> None:
    write(state_repo / "state" / "handoffs" / "new\nline.json", "{}\n")
    write(state_repo / "state" / "handoffs" / "sp ace ☃.json", "{}\n")
    gitops.snapshot_state(state_repo, STATE_FILES)
    assert {"state/handoffs/new\nline.json", "state/handoffs/sp ace ☃.json"} <= set(snapshot_tree(state_repo))


def test_snapshot_lost_race_raises(state_repo: Path, monkeypatch) -> None:
    """The ref moves by compare-and-swap: a writer in between makes us fail, not overwrite."""
    first = gitops.snapshot_state(state_repo, STATE_FILES)
    write(state_repo / "state" / "state.yaml", "stages: [ours]\n")
    real_run = gitops._run

    def racing(repo, args, **kwargs):
        if args and args[0] == "update-ref":
            git(state_repo, "update-ref", gitops.STATE_REF, git(state_repo, "rev-parse", "HEAD").strip())
        return real_run(repo, args, **kwargs)

    monkeypatch.setattr(gitops, "_run", racing)
    with pytest.raises(UserError, match="update-ref"):
        gitops.snapshot_state(state_repo, STATE_FILES)
    assert git(state_repo, "rev-parse", gitops.STATE_REF).strip() != first


def test_git_call_budget(state_repo: Path, monkeypatch) -> None:
    calls: List[str] = []
    real_run = gitops._run

    def counting(repo, args, **kwargs):
        calls.append(args[0])
        return real_run(repo, args, **kwargs)

    monkeypatch.setattr(gitops, "_run", counting)
    gitops.snapshot_state(state_repo, STATE_FILES)
    assert len(calls) <= 6, calls
    calls.clear()
    gitops.snapshot_state(state_repo, STATE_FILES)
    assert len(calls) <= 4, calls
    calls.clear()
    gitops.worktree_fingerprint(state_repo)
    assert len(calls) <= 4, calls
    calls.clear()
    write(state_repo / "a.txt", "a\n")
    gitops.commit_stage(state_repo, author=WORKER, subject="s1", coauthor=None)
    assert len(calls) <= 6, calls


def test_commit_stage_reports_both_failures_when_the_index_is_locked(repo: Path, monkeypatch) -> None:
    write(repo / "a.txt", "a\n")
    real_run = gitops._run

    def commit_fails_leaving_a_lock(where, args, **kwargs):
        if args and args[0] == "commit":
            write(repo / ".git" / "index.lock", "someone else\n")
            raise UserError("`git commit` failed: hook said no")
        return real_run(where, args, **kwargs)

    monkeypatch.setattr(gitops, "_run", commit_fails_leaving_a_lock)
    with pytest.raises(UserError) as info:
        gitops.commit_stage(repo, author=WORKER, subject="s1", coauthor=None)
    message = str(info.value)
    assert "hook said no" in message and "index.lock exists" in message
    assert (repo / ".git" / "index.lock").read_text() == "someone else\n"

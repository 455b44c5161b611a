"""The few git operations autometta performs, and nothing else.

Every call runs ``git -C <repo> ...`` with an argument list (never a shell),
``GIT_TERMINAL_PROMPT=0``, ``LC_ALL=C``, ``GIT_OPTIONAL_LOCKS=0`` (so even
``git status`` never rewrites the user's index), a timeout, and a scrubbed
environment: ``GIT_DIR``, ``GIT_INDEX_FILE``, ``GIT_WORK_TREE`` and the
pathspec switches a parent process may have exported are dropped, so the
repo given is the repo used and ``:(exclude)`` magic always works. A failure
raises :class:`~autometta.errors.UserError` naming the command and the last
lines git wrote to stderr.

What the user owns is left alone (design property 5, spec §15 items 5, 6, 11):

* :func:`dirty_paths` and :func:`worktree_fingerprint` only read; the
  fingerprint (and the secret scan's view of the tree) is built in a
  temporary index with a temporary object folder, so neither the user's
  index nor the repo's object store gets the tree's files (a secret in an
  untracked file must not sit in ``.git/objects`` until ``git gc``);
* :func:`commit_stage` is the one operation that touches the user's index
  and branch, to commit an accepted stage. It never sweeps in ``state/``,
  returns ``None`` (and records nothing) when there is nothing to commit,
  and puts the index back exactly as it was when the commit fails;
* :func:`snapshot_state` writes the state files to a side ref with plumbing
  only: no checkout, no index, no working-tree change, and the ref keeps
  its history. A ``screen`` keeps files out (the secret scan's, see
  :func:`autometta.scan.snapshot_state`); a file kept out is never written
  into the object store.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shlex
import shutil
import signal
import stat
import subprocess
import tempfile
import unicodedata
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from .. import faults
from ..errors import UserError
from ..files import open_unfollowed
from ..paths import STATE_DIRNAME

PathLike = Union[str, "os.PathLike[str]"]

#: Seconds for a plain git call; committing runs the user's hooks, which may
#: run a test suite, so it gets longer.
GIT_TIMEOUT = 120.0
COMMIT_TIMEOUT = 900.0

STATE_REF = "refs/heads/phat-controller/state"
STATE_MESSAGE = "phat-controller: tick state update"
SNAPSHOT_AUTHOR = "autometta <autometta@localhost>"

#: ``git add`` / ``git status`` pathspec: everything except the state folder (and what is in it).
#: Written as a pattern (``[s]tate``, ``[s]tate/*``) on purpose: given a plain ``:(exclude)state``,
#: ``git add`` lists ``state`` among "paths ignored by one of your .gitignore files" and exits 1
#: whenever the repo's .gitignore ignores the folder itself (a ``state/`` line), although it was
#: told to leave it out (git matches its ignored-paths report against excluding pathspecs too).
#: A pattern has no literal prefix for that report to match; it excludes exactly the same paths.
_OUTSIDE_STATE = (".", f":(exclude)[{STATE_DIRNAME[0]}]{STATE_DIRNAME[1:]}",
                  f":(exclude)[{STATE_DIRNAME[0]}]{STATE_DIRNAME[1:]}/*")

#: Variables that would point git at another repo, index or work tree, or
#: change how our pathspecs are read. Everything else (the user's config,
#: identity, ssh, hooks' needs) is inherited.
_SCRUBBED_ENV = (
    "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_COMMON_DIR", "GIT_NAMESPACE",
    "GIT_PREFIX", "GIT_QUARANTINE_PATH", "GIT_LITERAL_PATHSPECS",
    "GIT_GLOB_PATHSPECS", "GIT_NOGLOB_PATHSPECS", "GIT_ICASE_PATHSPECS",
)

_AUTHOR_RE = re.compile(r"^([^<>]+?) <([^<>\s]+)>$")
_BLANKS_RE = re.compile(r"\s+")
#: Files git leaves while a merge, rebase, cherry-pick or revert is unfinished.
_IN_PROGRESS = (
    ("MERGE_HEAD", "a merge", "git merge --continue"),
    ("rebase-merge", "a rebase", "git rebase --continue"),
    ("rebase-apply", "a rebase or git am", "git rebase --continue"),
    ("CHERRY_PICK_HEAD", "a cherry-pick", "git cherry-pick --continue"),
    ("REVERT_HEAD", "a revert", "git revert --continue"),
)


# ---------------------------------------------------------------- the runner

def _git_exe() -> str:
    exe = shutil.which("git")
    if not exe:
        raise UserError("git not found on PATH; install git (https://git-scm.com) and run again")
    return exe


def _env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
    env.update(GIT_TERMINAL_PROMPT="0", LC_ALL="C", GIT_OPTIONAL_LOCKS="0")
    if extra:
        env.update(extra)
    return env


def _describe(args: Sequence[str]) -> str:
    shown = [a if len(a) <= 60 else a[:57] + "..." for a in args]
    return "git " + " ".join(shlex.quote(a) for a in shown)


def _tail(err: bytes, lines: int = 3) -> str:
    text = err.decode("utf-8", "replace")
    kept = [line.strip() for line in text.splitlines() if line.strip()]
    return " / ".join(kept[-lines:]) if kept else "no message on stderr"


def _kill_group(proc: "subprocess.Popen[bytes]") -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (OSError, AttributeError):
        try:
            proc.kill()
        except OSError:
            pass


def _run(repo: PathLike, args: Sequence[str], *, stdin: Optional[bytes] = None,
         env: Optional[Dict[str, str]] = None, timeout: float = GIT_TIMEOUT,
         ok: Tuple[int, ...] = (0,)) -> Tuple[int, bytes, bytes]:
    """Run ``git -C repo *args``; return (code, stdout, stderr) or raise UserError.

    The child gets its own session, so a timeout kills hooks and whatever they
    started, and nothing it runs can read the terminal.
    """
    where = os.fspath(repo)
    cmd = [_git_exe(), "-C", where, *args]
    what = _describe(args)
    try:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(env),
            start_new_session=True)
    except OSError as exc:
        raise UserError(f"`{what}` could not start in {where}: {exc}") from exc
    try:
        out, err = proc.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        try:
            proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        raise UserError(f"`{what}` timed out after {timeout:g}s in {where}; "
                        "check for a hung hook or a held lock and run again") from None
    except BaseException:
        _kill_group(proc)
        proc.wait()
        raise
    if proc.returncode not in ok:
        raise UserError(f"`{what}` failed in {where} (exit {proc.returncode}): {_tail(err)}")
    return proc.returncode, out, err


def _text(out: bytes) -> str:
    return out.decode("utf-8", "surrogateescape").strip()


def _git_dir(repo: PathLike) -> str:
    return _text(_run(repo, ["rev-parse", "--absolute-git-dir"])[1])


# ------------------------------------------------------------- small queries

def head_sha(repo: PathLike) -> Optional[str]:
    """The commit HEAD points at, or None on an unborn branch (no commit yet)."""
    code, out, _ = _run(repo, ["rev-parse", "-q", "--verify", "HEAD^{commit}"], ok=(0, 1))
    return _text(out) if code == 0 and _text(out) else None


def current_branch(repo: PathLike) -> Optional[str]:
    """The checked-out branch's short name (also on an unborn branch); None when detached."""
    code, out, _ = _run(repo, ["symbolic-ref", "-q", "--short", "HEAD"], ok=(0, 1))
    return _text(out) if code == 0 and _text(out) else None


#: Stall marker: HEAD is detached, so a stage has no branch to land on.
DETACHED_HEAD = "detached_head"
#: Stall marker: the checked-out branch has no commit yet, so a stage has nothing to start from.
UNBORN_BRANCH = "unborn_branch"


class NotOnBranch(UserError):
    """HEAD is detached, or on a branch with no commit yet: a stage has nowhere to land.

    ``marker`` is ``detached_head`` or ``unborn_branch``, the stage's marker when it stops for it.
    """

    def __init__(self, repo: PathLike, detached: bool, head: Optional[str] = None) -> None:
        where = os.fspath(repo)
        if detached:
            marker = DETACHED_HEAD
            said = (f"{where}: HEAD is detached (at {(head or '?')[:12]}, on no branch); autometta lands a stage only "
                    "on the checked-out branch, never on a detached HEAD: check out a branch (git switch <branch>), "
                    "then requeue the stage")
        else:
            marker = UNBORN_BRANCH
            said = (f"{where}: the checked-out branch has no commit yet; a stage starts from the branch's last "
                    "commit: commit something first (git commit --allow-empty -m init), then requeue the stage")
        super().__init__(said, marker=marker)


def on_branch(repo: PathLike) -> Tuple[str, str]:
    """The checked-out branch and its tip; NotOnBranch on a detached HEAD or an unborn branch."""
    branch, head = current_branch(repo), head_sha(repo)
    if branch is None or head is None:
        raise NotOnBranch(repo, detached=branch is None, head=head)
    return branch, head


def is_work_tree_top(path: PathLike) -> bool:
    """True when ``path`` is the top-level folder of a git working tree.

    False for a subfolder of one, a bare repo, a ``.git`` folder, a path
    outside any repo or a path that does not exist. Raises only when git
    itself is missing.
    """
    where = os.fspath(path)
    top = _toplevel(where) if os.path.isdir(where) else None
    if not top:
        return False
    try:
        return os.path.samefile(top, where)
    except OSError:
        return False


def work_tree_top(path: PathLike) -> Optional[str]:
    """The top-level folder of the git working tree holding ``path`` (a file or folder), or None.

    None outside any repo, inside a ``.git`` folder or a bare repo, and for a
    folder that does not exist. Raises only when git itself is missing.
    """
    where = os.fspath(path)
    if not os.path.isdir(where):
        where = os.path.dirname(os.path.abspath(where))
    return _toplevel(where) if os.path.isdir(where) else None


def _toplevel(where: str) -> Optional[str]:
    """``git rev-parse --show-toplevel`` in the folder ``where``; None outside a work tree. Raises only when git
    itself is missing."""
    try:
        code, out, _ = _run(where, ["rev-parse", "--show-toplevel"], ok=(0, 128))
    except UserError:
        if not shutil.which("git"):
            raise
        return None
    top = _text(out)
    return top if code == 0 and top else None


def commits_since(repo: PathLike, since: Optional[str], limit: int = 50) -> List[Tuple[str, str, str]]:
    """``(sha, "Name <email>" of the author, message)`` of the newest commits on HEAD after ``since``.

    ``since`` None: HEAD's whole history (up to ``limit``); an unborn branch has none.
    """
    if head_sha(repo) is None:
        return []
    span = f"{since}..HEAD" if since else "HEAD"
    _, out, _ = _run(repo, ["log", f"--max-count={int(limit)}", "--format=%H%x00%an <%ae>%x00%B%x00%x1e", span,
                            "--"])
    rows = []
    for record in out.split(b"\x1e"):
        fields = record.lstrip(b"\n").split(b"\0")
        if len(fields) >= 3 and fields[0]:
            rows.append((_text(fields[0]), fields[1].decode("utf-8", "replace"),
                         fields[2].decode("utf-8", "replace")))
    return rows


def author_ident(repo: PathLike) -> Optional[str]:
    """``Name <email>`` git would use as the author in ``repo``, or None when it has none."""
    code, out, _ = _run(repo, ["var", "GIT_AUTHOR_IDENT"], ok=(0, 1, 128))
    match = re.match(r"^(.*?<[^<>]*>)", _text(out)) if code == 0 else None
    return match.group(1).strip() if match else None


def ignored(repo: PathLike, paths: Sequence[str]) -> List[str]:
    """Those of ``paths`` (repo-relative) that `git add` would refuse as ignored: untracked, and matched by an
    ignore rule (a ``state/`` line in .gitignore ignores state.yaml whatever ``!state/state.yaml`` says)."""
    if not paths:
        return []
    code, out, _ = _run(repo, ["check-ignore", "-z", "--stdin"], ok=(0, 1),
                        stdin=b"".join(os.fsencode(p) + b"\0" for p in paths))
    return [os.fsdecode(p) for p in _split_z(out)] if code == 0 else []


# ------------------------------------------------------------ the work tree

def _split_z(out: bytes) -> List[bytes]:
    fields = out.split(b"\0")
    if fields and fields[-1] == b"":
        fields.pop()
    return fields


def _is_state(path: str) -> bool:
    return path == STATE_DIRNAME or path.startswith(STATE_DIRNAME + "/")


def parse_status_z(out: bytes) -> List[str]:
    """Paths from ``git status --porcelain -z`` output (v1), in order, each once.

    A rename or copy entry (``R``/``C`` in either column) is followed by a
    second NUL-terminated field, the source path; both paths are reported,
    since both differ from HEAD.
    """
    fields = _split_z(out)
    paths: List[str] = []
    seen = set()
    i = 0
    while i < len(fields):
        entry = fields[i]
        i += 1
        if len(entry) < 4:
            continue
        xy = entry[:2].decode("ascii", "replace")
        names = [entry[3:]]
        if ("R" in xy or "C" in xy) and i < len(fields):
            names.append(fields[i])
            i += 1
        for raw in names:
            name = os.fsdecode(raw)
            if name not in seen:
                seen.add(name)
                paths.append(name)
    return paths


def dirty_paths(repo: PathLike) -> List[str]:
    """Repo-relative paths outside ``state/`` that differ from HEAD (staged or not).

    Modified, deleted, renamed (both names) and untracked files count, each
    untracked file listed on its own; ignored files do not. Names are
    returned exactly (spaces, newlines, non-ASCII bytes via surrogateescape).
    """
    _, out, _ = _run(repo, ["status", "--porcelain", "-z", "--untracked-files=all",
                            "--", *_OUTSIDE_STATE])
    return parse_status_z(out)


_TEMP_PREFIX = "autometta-index-"
#: A throwaway folder older than this whose maker is gone was left by a killed process.
_STALE_SECONDS = 60.0


def _sweep_stale(git_dir: str) -> None:
    """Remove throwaway folders a killed autometta left in the git dir (they may hold a tree's files)."""
    try:
        names = [n for n in os.listdir(git_dir) if n.startswith(_TEMP_PREFIX)]
    except OSError:
        return
    import time

    for name in names:
        path = os.path.join(git_dir, name)
        owner = name[len(_TEMP_PREFIX):].split("-", 1)[0]
        try:
            if time.time() - os.lstat(path).st_mtime < _STALE_SECONDS:
                continue
        except OSError:
            continue
        if owner.isdigit() and _pid_alive(int(owner)):
            continue
        shutil.rmtree(path, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _temp_index_dir(git_dir: str) -> str:
    """A private folder for a throwaway index (and objects), in the git dir when it is writable."""
    _sweep_stale(git_dir)
    prefix = f"{_TEMP_PREFIX}{os.getpid()}-"
    try:
        return tempfile.mkdtemp(prefix=prefix, dir=git_dir)
    except OSError:
        return tempfile.mkdtemp(prefix=prefix)


def _repo_dirs(repo: PathLike) -> Tuple[str, str, Optional[str]]:
    """The absolute git dir, the object folder and the HEAD commit (None on an unborn branch), in one call.

    ``--revs-only`` makes rev-parse drop a revision it cannot resolve instead
    of failing, which is exactly the unborn-branch case. In a linked
    worktree the object folder is the main repo's.
    """
    where = os.fspath(repo)
    lines = _text(_run(where, ["rev-parse", "--absolute-git-dir", "--git-path", "objects",
                               "--revs-only", "HEAD^{commit}"])[1]).splitlines()
    objects = os.path.normpath(os.path.join(where, lines[1].strip()))
    head = lines[2].strip() if len(lines) > 2 and lines[2].strip() else None
    return lines[0], objects, head


@contextlib.contextmanager
def work_tree_index(repo: PathLike) -> Iterator[Dict[str, str]]:
    """A throwaway index holding the working tree outside ``state/`` as it is now.

    Seeded from HEAD (so a tracked file that matches .gitignore still counts),
    then ``git add -A`` outside ``state/``: exactly what a stage commit would
    stage. Yields the environment that points git at it; the user's index is
    never read or written. The objects this writes (every new file's blob,
    secrets included, and trees) go to a throwaway object folder, with the
    repo's own as an alternate for reading, and are removed with it: git
    commands run in the yielded environment see them, nothing else ever does.
    """
    git_dir, objects, head = _repo_dirs(repo)
    folder = _temp_index_dir(git_dir)
    try:
        os.mkdir(os.path.join(folder, "objects"), 0o700)
        env = {"GIT_INDEX_FILE": os.path.join(folder, "index"),
               "GIT_OBJECT_DIRECTORY": os.path.join(folder, "objects"),
               "GIT_ALTERNATE_OBJECT_DIRECTORIES": objects}
        if head:
            _run(repo, ["read-tree", head], env=env)
        _run(repo, ["add", "-A", "--", *_OUTSIDE_STATE], env=env)
        yield env
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def work_tree_diff(repo: PathLike, *args: str) -> str:
    """``git diff --cached <args>`` of the working tree outside ``state/`` against HEAD."""
    with work_tree_index(repo) as env:
        return _run(repo, ["-c", "core.quotepath=off", "diff", "--cached", *args], env=env)[1].decode(
            "utf-8", "surrogateescape")


def changed_since(repo: PathLike, rev: str = "HEAD") -> List[str]:
    """Repo-relative paths outside ``state/`` whose content differs between ``rev`` and the working tree now.

    Commits made since ``rev`` count, as do staged, unstaged and untracked
    (not ignored) changes; a rename gives both names. This is a stage's
    change when ``rev`` is the commit it started from (see autometta.git.scopegate).
    """
    with work_tree_index(repo) as env:
        out = _run(repo, ["diff", "--cached", "--name-only", "--no-renames", "-z", rev, "--",
                          *_OUTSIDE_STATE], env=env)[1]
    return [os.fsdecode(p) for p in _split_z(out)]


def merge_base(repo: PathLike, a: str, b: str) -> Optional[str]:
    """The best common ancestor of two commits, or None when they share none (or one does not exist)."""
    code, out, _ = _run(repo, ["merge-base", a, b], ok=(0, 1, 128))
    return _text(out) or None if code == 0 else None


def file_at(repo: PathLike, rev: str, path: str) -> Optional[bytes]:
    """The bytes of ``path`` in commit ``rev``, or None when it has no such file."""
    code, out, _ = _run(repo, ["cat-file", "blob", f"{rev}:{path}"], ok=(0, 1, 128))
    return out if code == 0 else None


def entries_at(repo: PathLike, rev: str, paths: Sequence[str]) -> List[str]:
    """Which of ``paths`` exist in commit ``rev``: files as given, folders with a trailing ``/``."""
    if not paths:
        return []
    wanted = set(paths)
    _, out, _ = _run(repo, ["--literal-pathspecs", "ls-tree", "-t", "-z", rev, "--", *paths], ok=(0, 128))
    found = []
    for entry in _split_z(out):
        meta, _, name = entry.partition(b"\t")
        kind = meta.split(b" ")[1] if meta.count(b" ") >= 2 else b""
        path = os.fsdecode(name)
        if path in wanted:  # -t also lists the folders leading to a file that was asked for
            found.append(path + "/" if kind == b"tree" else path)
    return found


def worktree_fingerprint(repo: PathLike) -> str:
    """The tree id of the working tree outside ``state/`` as it is now.

    Two calls return the same id exactly when nothing outside ``state/``
    changed in between (content and mode of tracked and untracked files).
    """
    with work_tree_index(repo) as env:
        return _text(_run(repo, ["write-tree"], env=env)[1])


# ------------------------------------------------------------ commit a stage

def sanitize_subject(text: str, limit: int = 120) -> str:
    """One readable line for a commit subject.

    Newlines, carriage returns, tabs and every other control or separator
    character become spaces; runs of blanks collapse to one; the ends are
    stripped; anything longer than ``limit`` is cut and ends in ``...``.
    """
    cleaned = "".join(" " if _is_control(ch) else ch for ch in (text or ""))
    line = _BLANKS_RE.sub(" ", cleaned).strip()
    if limit > 0 and len(line) > limit:
        if limit <= 3:
            return line[:limit]
        line = line[: limit - 3].rstrip() + "..."
    return line


#: Bidirectional overrides and isolates: invisible, and able to make a line
#: read differently from what it says.
_BIDI = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _is_control(ch: str) -> bool:
    return unicodedata.category(ch) in ("Cc", "Zl", "Zp") or ch in _BIDI


def _check_author(author: str, what: str = "author") -> Tuple[str, str]:
    match = _AUTHOR_RE.match(author or "")
    if not match or any(_is_control(ch) for ch in author) or not match.group(1).strip():
        raise UserError(f"git {what} {author!r} is not 'Name <email>' on one line; "
                        "fix the identity in the stage card, e.g. 'Codex GPT-5.3 <codex-gpt-5-3@local>'")
    return match.group(1).strip(), match.group(2)


def _clean_body(body: Optional[str]) -> str:
    if not body:
        return ""
    text = body.replace("\r\n", "\n").replace("\r", "\n")
    text = "".join(ch if ch in "\n\t" or not _is_control(ch) else " " for ch in text)
    lines = [line.rstrip() for line in text.split("\n")]
    return "\n".join(lines).strip("\n")


def commit_message(subject: str, body: Optional[str] = None, coauthor: Optional[str] = None) -> str:
    """Subject, blank line, optional body, then the ``Co-Authored-By`` trailer when given."""
    parts = [sanitize_subject(subject)]
    cleaned = _clean_body(body)
    if cleaned:
        parts.append(cleaned)
    trailer = sanitize_subject(coauthor or "", limit=0)
    if trailer:
        parts.append(f"Co-Authored-By: {trailer}")
    return "\n\n".join(parts) + "\n"


def _in_progress(git_dir: str) -> Optional[Tuple[str, str]]:
    for name, what, fix in _IN_PROGRESS:
        if os.path.lexists(os.path.join(git_dir, name)):
            return what, fix
    return None


def operation_in_progress(repo: PathLike) -> Optional[str]:
    """The unfinished merge, rebase, cherry-pick or revert in ``repo`` (a worktree too), or None."""
    busy = _in_progress(_git_dir(repo))
    return busy[0] if busy else None


def _read_index(path: str) -> Optional[bytes]:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UserError(f"cannot read the git index {path}: {exc}") from exc


def _restore_index(path: str, saved: Optional[bytes]) -> None:
    """Put the user's index back byte for byte, under git's own ``index.lock``."""
    if _read_index(path) == saved:
        return
    lock = path + ".lock"
    try:
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:
        raise UserError(f"could not restore the git index {path}: {lock} exists (another git "
                        "command is running); once it finishes, check `git status` and unstage "
                        "what autometta staged with `git restore --staged .`") from None
    try:
        try:
            if saved is not None:
                _write_all(fd, saved)
                os.fsync(fd)
        finally:
            os.close(fd)
        if saved is None:
            os.unlink(path)
            os.unlink(lock)
        else:
            os.replace(lock, path)
    except BaseException:
        try:
            os.unlink(lock)
        except OSError:
            pass
        raise


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def commit_stage(repo: PathLike, *, author: str, subject: str, coauthor: Optional[str],
                 body: Optional[str] = None, exclude: Sequence[str] = (),
                 env: Optional[Dict[str, str]] = None) -> Optional[str]:
    """Commit the accepted stage's changes outside ``state/``; return the new HEAD.

    Stages every change outside ``state/`` (``git add -A``, ignored files
    excluded) into the user's index and commits on the current branch (or
    detached HEAD) with ``--author=<author>``, the committer from the user's
    git config, hooks run. Changes under ``state/`` are never committed, even
    if something had staged them (they stay staged, untouched). Neither are
    the repo-relative paths in ``exclude`` (``isolation: tree``: what was
    already changed at the claim and still is as it was): whatever they hold,
    in the index or the files, stays as it was.

    ``env`` is added to the environment of ``git commit`` and so of its hooks
    (the tick marks the commit's processes with it, see autometta.agents.runs).

    Returns None, leaving the index as it was, when there is nothing to
    commit. Raises UserError, leaving the index as it was, when a merge,
    rebase, cherry-pick or revert is unfinished, when the index has
    conflicts, or when the commit fails (a hook refused it).
    """
    name, email = _check_author(author)
    message = commit_message(subject, body, coauthor)
    if not sanitize_subject(subject):
        raise UserError("refusing to commit with an empty subject; give the stage a title or headline")
    where = os.fspath(repo)
    git_dir = _git_dir(where)
    busy = _in_progress(git_dir)
    if busy:
        raise UserError(f"{where} is in the middle of {busy[0]}; finish it ({busy[1]}) or abort "
                        "it before autometta can commit the stage")
    _, unmerged, _ = _run(where, ["ls-files", "-u", "-z"])
    if unmerged.strip(b"\0"):
        raise UserError(f"{where} has unresolved conflicts in the index; resolve them "
                        "(git status lists them) before autometta can commit the stage")
    index_path = os.path.join(git_dir, "index")
    saved = _read_index(index_path)
    left_out = [f":(exclude,literal){p}" for p in exclude if not _is_state(p)]
    try:
        _run(where, ["add", "-A", "--", *_OUTSIDE_STATE, *left_out])
        _, out, _ = _run(where, ["diff", "--cached", "--name-only", "-z", "--no-renames",
                                 "--no-ext-diff"])
        kept = set(exclude)
        staged = [os.fsdecode(p) for p in _split_z(out)]
        if any(not _is_state(p) and p not in kept for p in staged):
            args = ["commit", "--quiet", "--cleanup=whitespace", f"--author={name} <{email}>",
                    "--file=-"]
            if any(_is_state(p) or p in kept for p in staged):
                # Something had staged state/ (a worker's `git add -A`) or a path left
                # out: commit only the rest (a partial commit); those entries stay staged.
                args += ["--", *_OUTSIDE_STATE, *left_out]
            faults.point("commit.before")
            _run(where, args, stdin=message.encode("utf-8", "surrogateescape"),
                 timeout=COMMIT_TIMEOUT, env=env)
            faults.point("commit.after")
            committed = True
        else:
            committed = False
    except BaseException as exc:
        try:
            _restore_index(index_path, saved)
        except UserError as also:
            raise UserError(f"{exc}; then {also}") from exc
        raise
    if not committed:
        _restore_index(index_path, saved)
        return None
    sha = head_sha(where)
    if not sha:
        raise UserError(f"git commit reported success in {where} but HEAD has no commit; "
                        "check `git log`")
    return sha


# --------------------------------------------------------- state snapshots

def _snapshot_entries(root: str, files: Iterable[str]) -> List[str]:
    """Existing regular files named by ``files`` (folders expanded), repo-relative, sorted."""
    found = set()
    for given in files:
        rel = os.fspath(given).replace(os.sep, "/").strip("/")
        parts = [p for p in rel.split("/") if p not in ("", ".")]
        if os.path.isabs(os.fspath(given)) or ".." in parts or not parts or parts[0] == ".git":
            raise UserError(f"state snapshot path {given!r} must be relative to the repo "
                            "and stay inside it")
        rel = "/".join(parts)
        full = os.path.join(root, *parts)
        try:
            mode = os.lstat(full).st_mode
        except OSError:
            continue
        if stat.S_ISREG(mode):
            found.add(rel)
        elif stat.S_ISDIR(mode):
            for dirpath, dirnames, filenames in os.walk(full):
                dirnames.sort()
                base = os.path.relpath(dirpath, root).replace(os.sep, "/")
                for leaf in filenames:
                    try:
                        if stat.S_ISREG(os.lstat(os.path.join(dirpath, leaf)).st_mode):
                            found.add(f"{base}/{leaf}")
                    except OSError:
                        continue
    return sorted(found)


def _read_regular(path: str) -> Optional[Tuple[bytes, str]]:
    """(content, git mode) of a regular file, not following a symlink; None when it is not one (any more)."""
    fd = open_unfollowed(path, os.O_RDONLY)
    if fd is None:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        chunks = []
        while True:
            chunk = os.read(fd, 1024 * 1024)
            if not chunk:
                break
            chunks.append(chunk)
    except OSError:
        return None
    finally:
        os.close(fd)
    return b"".join(chunks), ("100755" if st.st_mode & stat.S_IXUSR else "100644")


def snapshot_state(repo: PathLike, files: List[str], ref: str = STATE_REF,
                   message: str = STATE_MESSAGE, author: Optional[str] = None,
                   screen: Optional[Callable[[str, bytes], Optional[str]]] = None,
                   kept_out: Optional[List[Tuple[str, str, str]]] = None) -> Optional[str]:
    """Commit the state files to ``ref`` (with history) and return the new commit.

    ``files`` are repo-relative paths; folders are taken whole, missing paths
    skipped, gitignored files included (they are read from disk, not through
    ``git add``). Each file is read once; ``screen(path, content)`` returning
    a reason keeps that file out (appended to ``kept_out`` as ``(path,
    reason, sha256 of the content)``), and exactly the bytes screened are
    committed, so a file rewritten meanwhile cannot slip past. The snapshot's
    tree holds the files let in; its parent is the ref's previous tip.
    Plumbing only: the user's HEAD, branch, index and working tree are never
    touched. Returns None, writing nothing, when the tree equals the previous
    snapshot's (or there is nothing to save). The ref moves by
    compare-and-swap, so a concurrent writer makes this raise instead of
    losing a snapshot. Six git calls at most.
    """
    if not ref.startswith("refs/"):
        raise UserError(f"state ref {ref!r} must be a full ref name such as {STATE_REF}")
    name, email = _check_author(author or SNAPSHOT_AUTHOR, "snapshot author")
    where = os.fspath(repo)
    entries = _snapshot_entries(where, files)
    _, out, _ = _run(where, ["for-each-ref", "--format=%(refname)%00%(objectname)%00%(tree)%00%(HEAD)",
                             ref])
    old = old_tree = None
    for line in out.decode("utf-8", "surrogateescape").splitlines():
        fields = line.split("\0")
        if len(fields) == 4 and fields[0] == ref:
            old, old_tree = fields[1], fields[2] or None
            if fields[3].strip() == "*":
                short = ref[len("refs/heads/"):] if ref.startswith("refs/heads/") else ref
                raise UserError(f"{where} has {short} checked out (the bash version may have left "
                                "it there); check out your own branch with `git checkout <branch>` "
                                "and run again")
    if not entries and old is None:
        return None
    folder = tempfile.mkdtemp(prefix=f"{_TEMP_PREFIX}{os.getpid()}-")  # copies of what passed the screen
    try:
        env = {"GIT_INDEX_FILE": os.path.join(folder, "index")}
        taken: List[Tuple[str, str, str]] = []  # (path, mode, copy of the bytes screened)
        for rel in entries:
            read = _read_regular(os.path.join(where, *rel.split("/")))
            if read is None:
                continue
            data, mode = read
            reason = screen(rel, data) if screen is not None else None
            if reason:
                if kept_out is not None:
                    kept_out.append((rel, reason, hashlib.sha256(data).hexdigest()))
                continue
            copy = os.path.join(folder, f"blob-{len(taken)}")
            fd = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                _write_all(fd, data)
            finally:
                os.close(fd)
            taken.append((rel, mode, copy))
        if taken:
            listing = "".join(copy + "\n" for _, _, copy in taken).encode("utf-8", "surrogateescape")
            ids = _text(_run(where, ["hash-object", "-w", "--no-filters", "--stdin-paths"], stdin=listing)[1]).split()
            if len(ids) != len(taken):
                raise UserError(f"`git hash-object` gave {len(ids)} ids for {len(taken)} state files in {where}")
            info = b"".join(f"{mode} {blob}\t".encode("ascii") + os.fsencode(rel) + b"\0"
                            for (rel, mode, _), blob in zip(taken, ids))
            _run(where, ["update-index", "--add", "-z", "--index-info"], stdin=info, env=env)
        tree = _text(_run(where, ["write-tree"], env=env)[1])
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if tree == old_tree:
        return None
    ident = {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email,
             "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": email}
    args = ["commit-tree", "--no-gpg-sign", tree]
    if old:
        args += ["-p", old]
    args += ["-F", "-"]
    text = (message or STATE_MESSAGE).rstrip("\n") + "\n"
    new = _text(_run(where, args, stdin=text.encode("utf-8", "surrogateescape"), env=ident)[1])
    faults.point("snapshot.before")
    _run(where, ["update-ref", "-m", "autometta: state snapshot", ref, new, old or ""])
    faults.point("snapshot.after")
    return new

"""The git side of a stage's worktree (a *lane*): made at the claim, landed on the base branch one at a time.

Every stage, at ``max_parallel`` 1 too, runs in its own worktree
(``<repo>/.autometta/worktrees/<id>``, or under the manifest's
``worktree.root``) on branch ``autometta/<id>``, cut from the base branch's
tip (unless the repo opted into ``isolation: tree``, autometta.git.isolation).
Once its verifier passes, the stage is committed on that branch, rebased
onto the base branch's tip, re-checked there when the base moved meanwhile,
and the base branch is fast-forwarded to it, so base history stays linear
with one commit per stage. A conflict or a base that moved leaves the base
branch as it was; so does a file the stage changes that is also changed in
the user's checkout (:func:`collisions`). Everything here is an effect;
when to do it is :mod:`autometta.tick.decide`'s.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

from .. import faults, files
from ..errors import UserError
from . import gitops

DEFAULT_ROOT = Path(".autometta") / "worktrees"
BRANCH_PREFIX = "autometta/"


def git(repo: Path, args: List[str], **kw: Any) -> Tuple[int, bytes, bytes]:
    """gitops' one way to run git (timeouts, scrubbed environment, errors naming the command)."""
    return gitops._run(repo, args, **kw)


def lane_root(repo: Path, manifest: Mapping[str, Any]) -> Path:
    """Where lanes' worktrees live: ``worktree.root`` (absolute, or relative to the repo), else the default."""
    conf = manifest.get("worktree")
    root = conf.get("root") if isinstance(conf, dict) else None
    if isinstance(root, str) and root.strip():
        path = Path(os.path.expanduser(root.strip()))
        return path if path.is_absolute() else repo / path
    return repo / DEFAULT_ROOT


def setup_command(manifest: Mapping[str, Any]) -> Optional[str]:
    """``worktree.setup``: run in each new worktree before its worker (copy .env, install dependencies)."""
    conf = manifest.get("worktree")
    command = conf.get("setup") if isinstance(conf, dict) else None
    return command if isinstance(command, str) and command.strip() else None


def branch_for(stage_id: str) -> str:
    return BRANCH_PREFIX + stage_id


def _prepare_root(root: Path, repo: Path) -> None:
    """Make the worktrees folder, refusing one that is the repo's or holds its files.

    A root inside the repo gets a ``.gitignore`` of its own (``*``), so the
    lanes stay out of ``git status`` without touching the user's ignore files.
    """
    real_root, real_repo = os.path.realpath(root), os.path.realpath(repo)
    if real_repo == real_root or real_repo.startswith(real_root.rstrip(os.sep) + os.sep):
        raise UserError(f"worktree.root {root} is {repo} or a folder around it; give the worktrees a folder "
                        "of their own in .autometta.local.yaml (default .autometta/worktrees)")
    inside = real_root.startswith(real_repo + os.sep)
    if inside and gitops._text(git(repo, ["ls-files", "--", os.path.relpath(real_root, real_repo)])[1]):
        raise UserError(f"worktree.root {root} holds files of the project; give the worktrees a folder of "
                        "their own in .autometta.local.yaml (default .autometta/worktrees)")
    root.mkdir(parents=True, exist_ok=True)
    ignore = root / ".gitignore"
    if inside and not ignore.exists():
        files.atomic_write(ignore, "# autometta's lane worktrees; not part of the project\n*\n")


def create(repo: Path, path: Path, branch: str) -> Tuple[str, str]:
    """A fresh worktree at ``path`` on ``branch`` from the checked-out branch's tip: (base branch, base sha).

    A worktree or branch left there by an earlier run of the same stage (it
    was requeued) is replaced. Raises gitops.NotOnBranch on a detached or unborn HEAD.
    """
    base, tip = gitops.on_branch(repo)  # NotOnBranch (marker detached_head, unborn_branch) otherwise
    _prepare_root(path.parent, repo)
    remove(repo, path, branch)
    git(repo, ["worktree", "add", "--quiet", "-b", branch, str(path), tip])
    faults.point("lane.created")
    return base, tip


def registered(repo: Path) -> Dict[str, Optional[str]]:
    """Every worktree git knows of (the main one excluded): path -> branch short name (None if detached)."""
    out = gitops._text(git(repo, ["worktree", "list", "--porcelain"])[1])
    found: Dict[str, Optional[str]] = {}
    path: Optional[str] = None
    for line in out.splitlines() + [""]:
        if line.startswith("worktree "):
            path = line[len("worktree "):]
            found[path] = None
        elif line.startswith("branch ") and path is not None:
            ref = line[len("branch "):]
            found[path] = ref[len("refs/heads/"):] if ref.startswith("refs/heads/") else ref
    main = next(iter(found), None)  # git lists the main worktree first
    if main is not None:
        del found[main]
    return found


def lane_branches(repo: Path) -> List[str]:
    out = gitops._text(git(repo, ["for-each-ref", "--format=%(refname:short)", f"refs/heads/{BRANCH_PREFIX}"])[1])
    return [line for line in out.splitlines() if line]


def remove(repo: Path, path: Path, branch: Optional[str]) -> List[str]:
    """Remove the worktree at ``path`` and delete ``branch``; what was removed (nothing missing is an error)."""
    done: List[str] = []
    known = {os.path.realpath(p) for p in registered(repo)}
    if os.path.realpath(path) in known:
        git(repo, ["worktree", "remove", "--force", "--force", str(path)])
        done.append(f"worktree {path}")
    elif path.exists():
        shutil.rmtree(path, ignore_errors=True)  # a folder git no longer tracks (its metadata was pruned)
        done.append(f"folder {path}")
    git(repo, ["worktree", "prune"])
    if branch and delete_branch(repo, branch):
        done.append(f"branch {branch}")
    return done


def delete_branch(repo: Path, branch: str) -> bool:
    """Delete a lane's branch (never another); False if there was none."""
    if not branch.startswith(BRANCH_PREFIX) or branch not in lane_branches(repo):
        return False
    git(repo, ["branch", "--quiet", "-D", branch])
    return True


def fold_commits(work: Path, base: str) -> int:
    """Undo (softly) commits made in the lane since it forked from ``base``; how many there were.

    Their changes stay in the index and the files, to be committed again as
    the stage's one commit with the worker as author.
    """
    fork = gitops._text(git(work, ["merge-base", "HEAD", f"refs/heads/{base}"])[1])
    count = int(gitops._text(git(work, ["rev-list", "--count", f"{fork}..HEAD"])[1]) or 0)
    if count:
        git(work, ["reset", "--quiet", "--soft", fork])
    return count


def _fork(work: Path, base: str) -> str:
    return gitops._text(git(work, ["merge-base", "HEAD", f"refs/heads/{base}"])[1])


def base_moved(work: Path, base: str) -> bool:
    """Has ``base`` gained commits since the lane forked (or was last rebased onto it)?"""
    tip = gitops._text(git(work, ["rev-parse", "--verify", f"refs/heads/{base}^{{commit}}"])[1])
    return _fork(work, base) != tip


def _change(work: Path, old: str, new: str) -> bytes:
    """The diff from ``old`` to ``new`` without what a clean rebase alters (line numbers, blob ids)."""
    _, out, _ = git(work, ["diff", "--no-color", "--no-ext-diff", "--no-textconv", "--full-index", "--binary",
                           "--no-renames", old, new, "--"])
    return b"\n".join(line for line in out.split(b"\n") if not line.startswith((b"@@", b"index ")))


def same_change(work: Path, base: str, judged: Optional[str]) -> bool:
    """Does the lane's branch bring exactly the change of ``judged`` (the commit its verdict passed)?

    True when its head is that commit, or that commit's change replayed onto
    ``base`` unaltered (a clean rebase, as landing does itself). False when a
    person (or anything else) changed what the branch brings: a conflict
    resolved by hand, an amended or added commit; also when ``judged`` is
    unknown or gone.
    """
    head = gitops.head_sha(work)
    if not judged or not head:
        return False
    if head == judged:
        return True
    code, out, _ = git(work, ["rev-list", "--parents", "-n", "1", judged], ok=(0, 128))
    parents = gitops._text(out).split()[1:] if code == 0 else []
    if len(parents) != 1:
        return False
    return _change(work, parents[0], judged) == _change(work, _fork(work, base), head)


def changed_files(work: Path, base: str) -> List[str]:
    """The files the lane's commits change since it forked from ``base`` (both names of a rename)."""
    _, out, _ = git(work, ["diff", "--name-only", "--no-renames", "-z", f"{_fork(work, base)}..HEAD", "--"])
    return [os.fsdecode(p) for p in gitops._split_z(out)]


def collisions(repo: Path, work: Path, base: str) -> List[str]:
    """Files landing would overwrite that are changed in the user's checkout; [] if ``base`` is not checked out.

    The user's other changes, staged, unstaged or untracked, neither block the
    landing nor are taken into it: a fast-forward leaves them as they are.
    """
    if gitops.current_branch(repo) != base:
        return []
    dirty = gitops.dirty_paths(repo)
    if not dirty:
        return []
    ours = set(changed_files(work, base))
    folders = {parent for path in ours for parent in _parents(path)}
    # the same file, or one where the stage needs a folder, or one inside a folder the stage makes a file
    return [p for p in dirty if p in ours or p in folders or any(parent in ours for parent in _parents(p))]


def _parents(path: str) -> List[str]:
    parts = path.split("/")[:-1]
    return ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]


@dataclass
class Rebased:
    head: Optional[str] = None  # the stage's commit on top of the base tip
    onto: Optional[str] = None  # the base tip it sits on
    conflicts: Optional[List[str]] = None  # files that would not merge; the lane is left as it was


def rebase(work: Path, base: str) -> Rebased:
    """Replay the lane's commit onto ``base``'s tip, or report the conflicting files and abort cleanly."""
    onto = gitops._text(git(work, ["rev-parse", "--verify", f"refs/heads/{base}^{{commit}}"])[1])
    code, _, err = git(work, ["rebase", "--quiet", onto], ok=(0, 1, 128))
    if code != 0:
        _, out, _ = git(work, ["diff", "--name-only", "--diff-filter=U", "-z"], ok=(0, 1, 128))
        conflicts = sorted({os.fsdecode(p) for p in out.split(b"\0") if p})
        git(work, ["rebase", "--abort"], ok=(0, 1, 128))
        if not conflicts:
            raise UserError(f"`git rebase {onto[:12]}` failed in {work}: {gitops._tail(err)}")
        return Rebased(onto=onto, conflicts=conflicts)
    faults.point("lane.rebased")
    return Rebased(head=gitops.head_sha(work), onto=onto)


def land(repo: Path, base: str, head: str, onto: str) -> bool:
    """Fast-forward ``base`` from ``onto`` to ``head``; False (nothing changed) if ``base`` has moved since.

    When ``base`` is checked out in the main worktree, the fast-forward goes
    through ``git merge --ff-only`` so the files follow; otherwise only the
    ref moves, compare-and-swap.
    """
    if gitops.current_branch(repo) == base:
        tip = gitops.head_sha(repo)
        if tip == head:
            return True  # already landed (a tick killed before it could record so)
        if tip != onto:
            return False
        git(repo, ["merge", "--quiet", "--ff-only", head])
        faults.point("lane.landed")
        return True
    code, out, _ = git(repo, ["rev-parse", "-q", "--verify", f"refs/heads/{base}"], ok=(0, 1))
    if gitops._text(out) == head:
        return True
    code, _, _ = git(repo, ["update-ref", f"refs/heads/{base}", head, onto], ok=(0, 1, 128))
    if code == 0:
        faults.point("lane.landed")
    return code == 0

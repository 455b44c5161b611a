"""Where a stage's agents work: a worktree of its own (the default), or the repo's tree (``isolation: tree``).

By default every stage, at ``max_parallel: 1`` too, runs in its own git
worktree on branch ``autometta/<id>`` (:mod:`autometta.git.worktrees`) and lands
on the checked-out branch through the one-at-a-time merge: the user's
checkout is never an agent's working directory, and nothing of it is
committed as the agents' work.

``isolation: tree`` in ``.autometta.local.yaml`` keeps the bash version's
way for repos where a worktree cannot work: one stage at a time, its agents
in the repo's own working tree. There, two protections hold:

* **Only what changed since the claim is committed.** At the claim the tick
  notes HEAD, its branch and every path that already differs from HEAD
  (staged, unstaged, untracked) with its content hash
  (:func:`record_claim`). The accepted stage's commit leaves out each of
  those paths that is still exactly as it was (:func:`unchanged_since`).
* **No agent's commit stays on the branch unless the stage landed.** A
  commit the worker or the verifier made on the branch since the claim is
  folded into the stage's one commit on a PASS (:func:`fold_since_claim`),
  and taken off the branch on any other finish (:func:`restore_branch`):
  the branch goes back to the claim-time head, the changes stay in the
  working tree for review.

What tree mode cannot tell apart: a change the user makes to the tree (or
a commit on the branch) while the stage is in flight looks like the
agents'. docs/isolation.md says so.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .. import files
from ..books import digests
from ..errors import UserError
from ..paths import RepoPaths

TYPE_CHECKING = False  # not typing's: an idle tick and status import no typing (tests/test_startup.py)
if TYPE_CHECKING:
    from typing import Any, Dict, List, Mapping, Optional

# gitops and hashlib are imported in the functions that use them: every tick asks mode(), also
# of an idle repo, which needs neither (tests/test_startup.py).

WORKTREE = "worktree"
TREE = "tree"
MODES = (WORKTREE, TREE)


def mode(manifest: Mapping[str, Any], max_parallel: int = 1, where: Optional[Path] = None) -> str:
    """The manifest's ``isolation``: ``worktree`` (default) or ``tree``; UserError for anything else.

    ``tree`` runs one stage at a time, so it cannot be combined with ``max_parallel`` above 1.
    """
    value = manifest.get("isolation")
    name = where or ".autometta.local.yaml"
    if value is None:
        return WORKTREE
    if value not in MODES:
        raise UserError(f"{name}: isolation is {value!r}; use 'worktree' (the default) or 'tree'")
    if value == TREE and max_parallel > 1:
        raise UserError(f"{name}: isolation: tree runs one stage at a time in the repo's own tree, but "
                        f"max_parallel is {max_parallel}; remove one of the two")
    return value


def in_tree(stage: Mapping[str, Any]) -> bool:
    """Does this in-flight stage run in the repo's own tree (tree mode, or the bash version's)?"""
    return not stage.get("worktree")


# ------------------------------------------------------------------ the claim

def _entries(repo: Path) -> Dict[str, str]:
    """``path -> "mode blob"`` of the working tree outside ``state/`` as a commit would take it."""
    from . import gitops

    with gitops.work_tree_index(repo) as env:
        _, out, _ = gitops._run(repo, ["ls-files", "-s", "-z"], env=env)
    found: Dict[str, str] = {}
    for entry in gitops._split_z(out):
        meta, _, name = entry.partition(b"\t")
        parts = meta.split()
        if len(parts) >= 2:
            found[os.fsdecode(name)] = f"{parts[0].decode()} {parts[1].decode()}"
    return found


def _states(repo: Path, wanted: List[str]) -> Dict[str, Optional[str]]:
    """What each of ``wanted`` holds now ("mode blob"), None for a path that is gone."""
    if not wanted:
        return {}
    entries = _entries(repo)
    return {path: entries.get(path) for path in wanted}


def record_claim(paths: RepoPaths, stage: Dict[str, Any]) -> str:
    """Note HEAD, its branch and the paths already changed, on the stage and in its claim record.

    Returns a line for the tick log. The record (only written when something
    is dirty) is ``state/logs/<id>-claim.json``; its digest is kept on the
    stage so a changed record is refused rather than trusted, and in the
    controller's books (autometta.books.digests), so the next tick halts
    ``state_tampered`` on a change and puts the record back.
    """
    from ..stagerecord import StageRecord
    from . import gitops

    rec = StageRecord(stage)
    repo = paths.root
    branch, head = gitops.on_branch(repo)  # never a stage on a detached HEAD: its commit would land on no branch
    dirty = gitops.dirty_paths(repo)
    record_path = paths.claim_record(str(rec.id))
    rec.claim_head, rec.claim_branch, rec.claim_record = head, branch, None
    if dirty:
        doc = {"stage_id": rec.id, "head": head, "branch": branch, "dirty": _states(repo, dirty)}
        text = json.dumps(doc, sort_keys=True, indent=1) + "\n"
        files.ensure_dir(record_path.parent)
        digests.write_text(paths, record_path, text, mode=0o600)
        rec.claim_record = _digest(text)
    else:
        try:
            os.unlink(record_path)
        except FileNotFoundError:
            pass
        else:
            digests.forget(paths, [record_path])
    where = f"{branch or 'detached HEAD'} at {(head or 'no commit')[:12]}"
    kept = f"; {len(dirty)} path(s) already changed there are left out of its commit unless they change" \
        if dirty else ""
    return f"stage {stage['id']} runs in the repo's own tree (isolation: tree) from {where}{kept}"


def _digest(text: str) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def _claimed_dirty(paths: RepoPaths, stage: Mapping[str, Any]) -> Dict[str, Optional[str]]:
    from ..stagerecord import StageRecord

    rec = StageRecord(stage)
    digest = rec.claim_record
    if not digest:
        return {}
    record_path = paths.claim_record(str(rec.id))
    try:
        text = files.read_text(record_path)
    except (UserError, OSError) as exc:
        raise UserError(f"{record_path}: the record of what was changed at the claim cannot be read ({exc}); "
                        "nothing committed, the tree is left for review") from None
    if _digest(text) != digest:
        raise UserError(f"{record_path}: the record of what was changed at the claim was altered after the claim; "
                        "nothing committed, the tree is left for review")
    doc = files.parse_json(text, record_path)  # bounded, as every JSON read
    dirty = doc.get("dirty") if isinstance(doc, dict) else None
    return {str(k): v for k, v in dirty.items()} if isinstance(dirty, dict) else {}


def unchanged_since(paths: RepoPaths, stage: Mapping[str, Any]) -> List[str]:
    """Paths that were already changed at the claim and are exactly as they were: never committed."""
    claimed = _claimed_dirty(paths, stage)
    if not claimed:
        return []
    now = _states(paths.root, sorted(claimed))
    return sorted(path for path, was in claimed.items() if now.get(path) == was)


# ------------------------------------------------------------------ the branch

def _is_ancestor(repo: Path, old: str, new: str) -> bool:
    from . import gitops

    code, _, _ = gitops._run(repo, ["merge-base", "--is-ancestor", old, new], ok=(0, 1, 128))
    return code == 0


def _branch_tip(repo: Path, branch: str) -> Optional[str]:
    from . import gitops

    code, out, _ = gitops._run(repo, ["rev-parse", "-q", "--verify", f"refs/heads/{branch}^{{commit}}"],
                               ok=(0, 1, 128))
    return gitops._text(out) if code == 0 and gitops._text(out) else None


def fold_since_claim(repo: Path, stage: Mapping[str, Any]) -> int:
    """Before a PASS commit: undo (softly) commits made on the branch since the claim; how many.

    Their changes stay in the index and the files, to be committed again as
    the stage's one commit (secret scan, author, trailer). Raises UserError
    when HEAD left the claim's branch or no longer descends from the claim.
    """
    from ..stagerecord import StageRecord
    from . import gitops

    rec = StageRecord(stage)
    head0, branch0 = rec.claim_head, rec.claim_branch
    head, branch = gitops.head_sha(repo), gitops.current_branch(repo)
    if branch is None:  # a commit on a detached HEAD would land on no branch
        raise gitops.NotOnBranch(repo, detached=True, head=head)
    if not head0:
        return 0  # the bash version's claim: nothing recorded, committed as it always was
    if branch != branch0:
        raise UserError(f"{repo}: HEAD is on {branch or 'a detached HEAD'}, not on {branch0}, where the stage "
                        "was claimed; nothing committed, check out the branch and requeue the stage")
    if head == head0:
        return 0
    if not head or not _is_ancestor(repo, head0, head):
        raise UserError(f"{repo}: {branch0} no longer holds the commit the stage was claimed at "
                        f"({head0[:12]}); nothing committed, the tree is left for review")
    count = int(gitops._text(gitops._run(repo, ["rev-list", "--count", f"{head0}..{head}"])[1]) or 0)
    gitops._run(repo, ["reset", "--quiet", "--soft", head0])
    return count


def restore_branch(repo: Path, stage: Mapping[str, Any]) -> Optional[str]:
    """After a finish that did not land: move the claim's branch back to the claim-time head.

    Only commits added on top of the claim are taken off (a branch rewritten
    otherwise is left alone); when the branch is checked out, ``reset
    --soft`` keeps their changes in the index and the files. Returns a line
    for the tick log, or None when there was nothing to undo.
    """
    from ..stagerecord import StageRecord
    from . import gitops

    rec = StageRecord(stage)
    head0, branch0 = rec.claim_head, rec.claim_branch
    if not head0 or not branch0:
        return None
    tip = _branch_tip(repo, branch0)
    if not tip or tip == head0:
        return None
    if not _is_ancestor(repo, head0, tip):
        return (f"{branch0} was rewritten while {stage.get('id')} was in flight ({head0[:12]} is no longer in "
                f"its history); left as it is")
    count = gitops._text(gitops._run(repo, ["rev-list", "--count", f"{head0}..{tip}"])[1])
    if gitops.current_branch(repo) == branch0:
        gitops._run(repo, ["reset", "--quiet", "--soft", head0])
        kept = "their changes are kept in the working tree for review"
    else:
        gitops._run(repo, ["update-ref", "-m", "autometta: stage did not land", f"refs/heads/{branch0}", head0, tip])
        kept = f"they stay reachable as {tip[:12]} (git reflog {branch0})"
    return (f"{branch0} moved back from {tip[:12]} to {head0[:12]}: {count} commit(s) made while "
            f"{stage.get('id')} was in flight did not land; {kept}")

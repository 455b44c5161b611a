"""Put a stopped stage (failed, stalled, verifier_failed, secret_blocked, ...) back to ``pending``.

Its old envelope and verdict are moved to ``state/archive/<id>/`` so the next
run cannot mistake them for its own (the bash version re-applied them, §15.7).

``--retry-merge`` is for a parallel stage whose accepted commit did not land
(``merge_conflict``, or its acceptance command failed on the merged result):
once you have fixed its branch in the kept worktree, the tick merges it again
instead of running the stage from the start. A branch that no longer brings
exactly the change its verifier passed (a conflict resolved by hand, a fix
committed there) is checked again first: the acceptance command, then the
verifier, on the branch as you left it; it lands only on a PASS.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Dict

from .. import envelope, files, verdicts
from ..books import state
from ..errors import UserError
from ..git import gitops, worktrees
from ..paths import RepoPaths
from ..stagerecord import StageRecord
from .common import resolve_repo


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("repo", help="the subscribed repo")
    parser.add_argument("stage_id", metavar="STAGE_ID", help="the stage to run again")
    parser.add_argument("--retry-merge", action="store_true",
                        help="a parallel stage that did not land: merge its branch again, as you left it")


def run(args: argparse.Namespace) -> int:
    paths = RepoPaths(resolve_repo(args.repo))
    with files.locked(paths.lock, timeout=30):
        doc = state.load_state(paths)
        stage = state.find_stage(doc, args.stage_id)
        rec = StageRecord(stage)
        if stage is None:
            raise UserError(f"{paths.state_yaml}: no stage {args.stage_id}; add it with 'autometta add-stage'")
        if rec.status in ("pending", "in_progress", "completed"):
            raise UserError(f"stage {args.stage_id} is {rec.status}; only a stopped stage can be re-queued")
        if args.retry_merge:
            note = retry_merge(paths, stage)
            state.save_state(paths, doc)
            print(f"requeued: {args.stage_id} to merge again ({note})", file=sys.stderr)
            return 0
        moved = envelope.archive(paths, args.stage_id)
        previous = rec.status
        keep = ("id", "worker", "verifier", "worker_tokens", "verifier_tokens", "tokens",
                "worker_cost_usd", "verifier_cost_usd", "cost_usd", "worker_seconds", "verifier_seconds")
        fresh = state.new_stage(rec.id, stage.get("worker", ""), stage.get("verifier", ""))
        fresh.update({k: stage[k] for k in keep if k in stage})
        stage.clear()
        stage.update(fresh)
        state.save_state(paths, doc)
    print(f"requeued: {args.stage_id} (was {previous}; {len(moved)} old file(s) archived)", file=sys.stderr)
    return 0


def retry_merge(paths: RepoPaths, stage: Dict[str, Any]) -> str:
    """Queue a parallel stage's branch to merge again; raises UserError if it cannot be."""
    rec = StageRecord(stage)
    sid = rec.id
    marker = str(rec.stall_marker or "")
    landable = rec.status == "merge_conflict" or (
        rec.status == "failed" and marker.startswith("post_merge_acceptance_failed"))
    if not landable or not rec.worktree or not rec.branch:
        raise UserError(f"stage {sid} is {rec.status} ({marker or 'no marker'}); --retry-merge is for a "
                        "parallel stage that did not land (merge_conflict or post_merge_acceptance_failed); "
                        f"run 'autometta requeue {paths.root} {sid}' to run it again from the start")
    work = Path(str(rec.worktree))
    if not (work / ".git").exists():
        raise UserError(f"stage {sid}: its worktree {work} is gone; run 'autometta requeue {paths.root} {sid}' "
                        "to run it again from the start")
    busy = gitops.operation_in_progress(work)
    if busy:
        raise UserError(f"{work} is in the middle of {busy}; finish or abort it there first")
    dirty = gitops.dirty_paths(work)
    if dirty:
        raise UserError(f"{work} has uncommitted changes ({', '.join(dirty[:3])}); commit them on "
                        f"{rec.branch} (the stage lands that branch) or discard them first")
    judged = rec.commit
    stage.update(status="in_progress", stall_marker=None, merge="queued", merge_onto=None,
                 postmerge_pid=None, postmerge_started=None, completed_at=None, tick_error=None)
    if worktrees.same_change(work, str(rec.base), judged):
        return f"{rec.branch} onto {rec.base} on the next tick"
    # The branch brings something no verifier judged (a conflict resolved by hand, a fix): judge it again
    # (acceptance command, then verifier) before it may land; its verdict is archived, the worker not rerun.
    envelope.archive(paths, sid, verdicts_only=True)
    stage.update(merge=None, commit=None, acceptance=None, verifier_pid=None, verifier_started=None,
                 verifier_artefact=None, verifier_attempts=0, verifier_tree=None,
                 worker_tree=gitops.worktree_fingerprint(work), **{key: None for key in verdicts.FIELDS})
    shown = (judged or "none recorded")[:12]
    return (f"{rec.branch} no longer brings the change its verifier passed ({shown}), so it is checked again "
            "(acceptance command, then verifier) on the next ticks, and lands only on a PASS")

"""Stop a stage in flight: every process it runs, accounted, and the stage left ``stopped``.

``autometta stop REPO STAGE_ID`` calls :func:`stop_stage` under the repo's
lock, so no tick is half-way through a transition of the repo meanwhile. For
each of the stage's runs (worker, acceptance, verifier, its worktree setup or
post-merge rerun, a commit an interrupted tick left running) it sends
SIGTERM to the runner's process group and to every process marked as the
run's (:mod:`autometta.agents.processes`), waits up to the grace for them to go,
then SIGKILLs what is left. A live runner passes the SIGTERM to its agent and
writes its exit record, so what the run spent is accounted as on any exit.

The stage becomes ``stopped`` (marker ``stopped_by_operator``), which only
``autometta requeue`` leaves; its worktree and branch stay for review
until then. A stop is not a failure: ``consecutive_failures`` is unchanged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from .. import files
from ..books import budget as budgets, state
from ..errors import UserError
from ..repo import RepoContext
from ..stagerecord import StageRecord
from ..tick import decide as d, effects, facts
from . import processes, runs
from .roles import ROLES

#: marker of a stage ``autometta stop`` ended (status ``stopped``)
STOP_MARKER = "stopped_by_operator"
_ABSENT = object()
#: Seconds a stopped run may take to exit after SIGTERM before it gets SIGKILL.
DEFAULT_GRACE = processes.DEFAULT_GRACE


@dataclass
class Stopped:
    stage_id: str
    #: role -> pids signalled
    signalled: Dict[str, List[int]] = field(default_factory=dict)
    previous: Optional[str] = None

    def summary(self) -> str:
        if not self.signalled:
            return "nothing of it was running"
        return "; ".join(f"{role}: {len(pids)} process(es) ({' '.join(map(str, pids[:6]))}"
                         f"{' ...' if len(pids) > 6 else ''})" for role, pids in self.signalled.items())


def stop_stage(ctx: RepoContext, stage_id: str, grace: float = DEFAULT_GRACE,
               now: Optional[float] = None) -> Stopped:
    """Stop ``stage_id`` in ``ctx``'s repo; the caller holds the repo's lock.

    Raises UserError if the stage is not in flight.
    """
    paths = ctx.paths
    doc = state.load_state(paths)
    stage = state.find_stage(doc, stage_id)
    rec = StageRecord(stage)
    if stage is None:
        raise UserError(f"{paths.state_yaml}: no stage {stage_id}; 'autometta list-cards {paths.root}' lists them")
    if rec.status != "in_progress":
        raise UserError(f"stage {stage_id} is {rec.status}, not in flight; only an in_progress stage "
                        "can be stopped")
    b = budgets.load_budget(paths)
    out = Stopped(stage_id, previous=_phase(stage))
    for role in (*ROLES, runs.COMMIT):
        if rec.pid(role) or runs.mark_of(stage, role):
            pids = runs.stop(stage, role, grace)
            if pids:
                out.signalled[role] = pids
    now = time.time() if now is None else now
    work_ctx = facts.lane_context(ctx, stage) if rec.worktree else ctx
    txn = effects.Txn(ctx=work_ctx, state=doc, budget=b, now=now, base_ctx=ctx, focus=stage_id)
    txn.facts = d.Facts(repo=str(paths.root), budget=b, state=doc, now=now,
                        cur=facts.in_flight(work_ctx, doc, stage_id, now))
    spent: List[d.Effect] = [d.Account(role) for role in ROLES if rec.pid(role)]
    failures = dict(b).get("consecutive_failures", _ABSENT)
    # accounted, then ended as any stop is (merge cleared, current_stage cleared, an in-tree branch put back)
    effects.apply(txn, d.Decision(f"stop {stage_id}", spent, finish=("stopped", STOP_MARKER), transition=False))
    if failures is _ABSENT:  # a stop is not a failure
        b.pop("consecutive_failures", None)
    else:
        b["consecutive_failures"] = failures
    for role in (*ROLES, runs.COMMIT):
        stage[runs.key(role)] = None
        if rec.pid(role) is not None:
            stage[f"{role}_pid"] = None
    if "commit_from" in stage:
        rec.commit_from = None
    state.save_state(paths, doc)
    budgets.save_budget(paths, b)
    return out


def _phase(stage: Dict[str, Any]) -> str:
    rec = StageRecord(stage)
    running = [role for role in ROLES if rec.pid(role)]
    if running:
        return ", ".join(running)
    return "merge " + str(rec.merge) if rec.merge else "between steps"


def locked_stop(ctx: RepoContext, stage_id: str, grace: float = DEFAULT_GRACE, wait: float = 30.0) -> Stopped:
    """:func:`stop_stage` under the repo's lock (waiting up to ``wait`` seconds for a tick to finish)."""
    try:
        with files.locked(ctx.paths.lock, timeout=wait):
            return stop_stage(ctx, stage_id, grace)
    except files.LockBusy:
        raise UserError(f"{ctx.paths.lock}: a tick still holds {ctx.paths.root} after {wait:g}s (a slow commit "
                        "hook?); run 'autometta stop' again when it is done") from None

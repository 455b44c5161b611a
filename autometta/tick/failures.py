"""A stage whose next step fails the same way tick after tick stops, instead of looping.

When moving one stage raises (git refuses a command, a file cannot be
written, a bug), the tick writes nothing of that repo's work and reports the
error; the next tick tries the same step again. Without more, a step that
always fails would keep the stage ``in_progress`` forever: no halt, no marker,
no failure counted.

So the error is also noted on the stage (``tick_error`` in state.yaml: the
error and how many ticks in a row raised it, numbers aside). At the
:data:`THRESHOLD`\\ th identical one in a row the stage stops: whatever of it
still runs is stopped, it becomes ``stalled`` with the marker
``transition_failed: <the error>`` (its worktree kept for review), the failure
counts towards ``consecutive_failure_cap``, and an event says so. A tick that
gets through clears the note.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Optional

from .. import secrets
from ..agents import liveness
from ..agents.roles import ROLES
from ..books import budget as budgets, state
from ..errors import UserError
from ..observe import events
from ..stagerecord import StageRecord
from ..timeutil import now_iso
from . import effects

#: Identical failures in a row that stop the stage.
THRESHOLD = 3
MARKER = "transition_failed"
FIELD = "tick_error"

_NUMBERS = re.compile(r"\d+")


def describe(exc: BaseException) -> str:
    """One line for an error: a UserError's message, else the exception's type and text."""
    text = exc.message if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
    return secrets.redact(" ".join(str(text).split()))[:500]


def same(a: Any, b: Any) -> bool:
    """Do two noted errors say the same thing (pids, counts and times aside)?"""
    return isinstance(a, str) and isinstance(b, str) and _NUMBERS.sub("#", a) == _NUMBERS.sub("#", b)


def stage_of(txn: "effects.Txn") -> Optional[str]:
    """The stage the tick was moving: a lane or a claim (its focus), else the stage in the repo's own tree."""
    current = txn.state.get("current_stage")
    return txn.focus or (current if isinstance(current, str) else None)


def record(txn: "effects.Txn", exc: BaseException, log: Callable[[str], None]) -> Optional[str]:
    """After ``exc`` escaped the tick: note it on the stage being moved, stop the stage at the threshold.

    Returns the id of the stage stopped, else None. Works from the files on disk
    (the tick's in-memory copies are half-applied) and never raises: the tick's own
    error is reported by the caller either way.
    """
    stage_id = stage_of(txn)
    if not stage_id:
        return None
    try:
        return _record(txn, stage_id, describe(exc), log)
    except Exception as also:  # the disk is full, state.yaml is unreadable, ...: the tick's error says enough
        log(f"could not note the error on stage {stage_id}: {describe(also)}")
        return None


def _record(txn: "effects.Txn", stage_id: str, error: str, log: Callable[[str], None]) -> Optional[str]:
    ctx = txn.base_ctx or txn.ctx
    paths = ctx.paths
    doc = state.load_state(paths)
    stage = state.find_stage(doc, stage_id)
    rec = StageRecord(stage)
    if stage is None or rec.status not in ("pending", "in_progress"):
        return None
    before = stage.get(FIELD) if isinstance(stage.get(FIELD), dict) else {}
    again = same(before.get("error"), error) and isinstance(before.get("count"), int)
    count = before["count"] + 1 if again else 1
    since = before.get("since") if again else now_iso(txn.now)
    stage[FIELD] = {"error": error, "count": count, "since": since}
    if count < THRESHOLD:
        state.save_state(paths, doc)
        log(f"stage {stage_id}: this tick failed ({error}); {count} tick(s) in a row, the stage stops at {THRESHOLD}")
        return None
    stopper = effects.Txn(ctx=ctx, state=doc, budget=budgets.load_budget(paths), now=txn.now, base_ctx=ctx,
                          focus=stage_id, tree=txn.tree)
    for role in ROLES:
        pid = rec.pid(role)
        if pid and liveness.is_alive(int(pid), rec.started(role)):
            effects._kill(stopper, role)
    stage[FIELD] = None
    effects._finish(stopper, "stalled", f"{MARKER}: {error}")  # the whole error (500 at most)
    state.save_state(paths, doc)
    budgets.save_budget(paths, stopper.budget)
    said = (f"stage {stage_id} stopped: its next step failed the same way {count} ticks in a row since {since} "
            f"({error}); marked stalled ({MARKER})")
    for extra in stopper.log_extra:
        log(extra)
    log(said)
    events.emit(ctx.home, paths, "stage_stalled", {
        "stage_id": stage_id, "status": "stalled", "marker": rec.stall_marker, "commit": rec.commit,
        "message": said, "repo": str(paths.root)})
    return stage_id


def clear(txn: "effects.Txn") -> None:
    """A tick that got through: no step is failing now; forget the errors noted on stages.

    Costs nothing unless a stage has one (then state.yaml is read and written once more).
    """
    if not any(isinstance(s, dict) and s.get(FIELD) for s in txn.state.get("stages") or []):
        return
    paths = (txn.base_ctx or txn.ctx).paths
    doc = state.load_state(paths)  # as the tick left it: what it decided not to write stays unwritten
    for stage in doc.get("stages") or []:
        if isinstance(stage, dict) and stage.get(FIELD):
            stage[FIELD] = None
    state.save_state(paths, doc)

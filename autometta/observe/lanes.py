"""What each parallel lane is doing, read from state.yaml alone.

``status``, its ticker, the agent ticker, the dashboard and ``report`` share
these helpers so they name a lane's phase the same way. Nothing here runs
git or looks at the process table: the views stay subprocess-free.
"""

from __future__ import annotations

from ..books.state import lane_stages
from ..stagerecord import StageRecord

TYPE_CHECKING = False  # not typing's: an idle tick and status import no typing (tests/test_startup.py)
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional

#: The roles a lane runs, in the order it runs them (state.ROLES, ordered).
RUN_ORDER = ("setup", "worker", "acceptance", "verifier", "postmerge")

#: Phase names by merge state (the ``merge`` stage field).
MERGE_PHASES = {"queued": "merge queued", "checking": "merging"}


def _role(stage: Dict[str, Any]) -> Optional[str]:
    """The role the lane runs now: the postmerge check while merging, else the first with a pid."""
    rec = StageRecord(stage)
    if rec.merge == "checking":
        return "postmerge" if rec.pid("postmerge") else None
    return next((role for role in RUN_ORDER[:-1] if rec.pid(role)), None)


def phase(stage: Dict[str, Any]) -> str:
    """setup, worker, acceptance, verifier, merge queued, merging; ``waiting`` between two of them."""
    merge = MERGE_PHASES.get(str(StageRecord(stage).merge))
    return merge or _role(stage) or "waiting"  # waiting: e.g. a usage limit parked it before its next step


def lane_row(stage: Dict[str, Any]) -> Dict[str, Any]:
    """One lane as the views' JSON shows it; ``pid`` is the process group running now, if any."""
    role, rec = _role(stage), StageRecord(stage)
    row: Dict[str, Any] = {"id": rec.id, "phase": phase(stage), "worktree": rec.worktree,
                           "branch": rec.branch, "base": rec.base, "pid": rec.pid(role) if role else None}
    row.update({f"{r}_pid": rec.pid(r) for r in RUN_ORDER})
    row["sessions"] = rec.session_rows()  # each agent run's session id, resumed or cold (autometta.resume)
    return row


def lanes(doc: Optional[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Every lane in flight, as :func:`lane_row` shows it."""
    return [lane_row(s) for s in lane_stages(doc)]


def describe(lane: Dict[str, Any]) -> str:
    """``01-a: worker (pid 4242), autometta/01-a onto main``: one lane, for a human."""
    pid = lane.get("pid")
    where = f", {lane['branch']} onto {lane.get('base') or '?'}" if lane.get("branch") else ""
    return f"{lane.get('id')}: {lane.get('phase')}{f' (pid {pid})' if pid else ''}{where}"


def in_flight_ids(doc: Optional[Dict[str, Any]]) -> Optional[str]:
    """``current_stage``, else the lanes' ids joined (``01-a, 02-b``), else None."""
    current = (doc or {}).get("current_stage")
    if current:
        return str(current)
    ids = [str(s.get("id")) for s in lane_stages(doc)]
    return ", ".join(ids) or None

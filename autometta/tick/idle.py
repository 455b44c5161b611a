"""An idle repo, told without the machinery that moves stages.

Most ticks find most repos with nothing to do. :func:`message` tells, from what
the tick has read anyway (``state.yaml`` and ``budget.json``; the heartbeat has
looked at the agent registry before), whether a repo is certainly idle, and
what the tick says about it then. The tick logs that and moves on without
importing what decides, observes and starts stages (decide, facts, effects,
dispatch and everything they need). None means "not certainly": the tick takes
its full path, which for an idle repo decides the same (tests/test_idle.py
holds the two to it).
"""

from __future__ import annotations

from ..books import budget as budgets

TYPE_CHECKING = False  # not typing's: an idle tick and status import no typing (tests/test_startup.py)
if TYPE_CHECKING:
    from typing import Any, Dict, Optional

#: Stage statuses that give the tick something to do.
_BUSY = ("pending", "in_progress")


def message(repo: str, state: Dict[str, Any], budget: Dict[str, Any]) -> Optional[str]:
    """What the tick says about a repo with nothing queued or in flight, or None when it may have work.

    The tick's loop (``tick._process``) then has no stage in the tree
    (``current_stage``) and no lane to move, and its claim finds nothing
    pending: it says ``idle`` whatever ``max_parallel`` and ``isolation`` are,
    as no lane is busy.
    """
    if budget.get("halted") or budgets.cap_hit(budget):
        return None  # the gate says so (and a cap just reached halts the repo)
    if state.get("current_stage") is not None or state.get("parked_until") or state.get("pending_kills"):
        return None
    for stage in state.get("stages") or []:
        if not isinstance(stage, dict) or stage.get("status") in _BUSY or stage.get("tick_error"):
            return None  # (a noted tick error is cleared by the full path: autometta.tick.failures)
    return f"idle {repo}: no pending stage"

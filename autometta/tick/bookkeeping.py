"""What a transition writes into a repo's state and budget: claim, account, finish, halt, the counters.

Pure: each function changes the in-memory documents (``state.yaml``'s and
``budget.json``'s, and a stage record in them) and nothing else; the tick
writes them once afterwards (:mod:`autometta.tick.loop`). What goes with it
on disk or in git (booking a run in the spend ledger, :mod:`autometta.books.ledger`;
masking a marker; putting an in-tree branch back) is
:mod:`autometta.tick.effects`'s. Not to be confused with the spend ledger
(``books/ledger.py``) or the digests of the controller's files (``books/digests.py``).
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from ..agents.roles import ROLES
from ..stagerecord import StageRecord
from ..timeutil import now_iso

#: A stage's fields of one verifier run (autometta.verdicts.FIELDS), cleared by a claim and a re-brief.
VERDICT_RUN_FIELDS = ("verifier_run_artefact", "verifier_dispatched_at")
#: The marks of a stage's runs and of its commit (autometta.agents.runs.key), cleared when it is claimed again.
RUN_KEYS = (*(f"{role}_run_id" for role in ROLES), "commit_run_id", "commit_from")
#: A stage's own fields in a worktree, cleared when it is claimed again.
LANE_KEYS = ("worktree", "branch", "base", "setup", "setup_pid", "setup_started", "merge", "merge_onto",
             "postmerge_pid", "postmerge_started")
#: ... and in the repo's own tree (``isolation: tree``).
TREE_KEYS = ("claim_head", "claim_branch", "claim_record")
#: What one worker round leaves on the stage, cleared when the worker is re-briefed on the same tree.
ROUND_KEYS = ("worker_tree", "verifier_tree", "worker_exit", "verifier_artefact", "acceptance", "acceptance_pid",
              "acceptance_started", *VERDICT_RUN_FIELDS)
#: Everything an earlier run of a stage left on it, cleared when it is claimed again.
CLAIM_CLEARS = ("worker_pid", "verifier_pid", "worker_started", "verifier_started", "verifier_artefact",
                "stall_marker", "completed_at", "stopped_at", "commit", "worker_tree", "verifier_tree",
                "worker_exit", "acceptance", "acceptance_pid", "acceptance_started", "loops", *VERDICT_RUN_FIELDS,
                "sessions", "worker_restarts",  # autometta.resume: the claim's agent sessions, vanished-run restarts
                *LANE_KEYS, *TREE_KEYS, *RUN_KEYS)


def claim(stage: Dict[str, Any], now: float) -> None:
    """``pending`` -> ``in_progress``: what an earlier run left is cleared, the claim time noted."""
    StageRecord(stage).clear(CLAIM_CLEARS)
    stage.update(status="in_progress", started_at=now_iso(now), verifier_attempts=0)


def rebrief(stage: Dict[str, Any], loop: int) -> None:
    """The worker goes round again (loop ``loop``) on the same tree: the last round's fields are cleared."""
    StageRecord(stage).clear(ROUND_KEYS)
    stage.update(verifier_attempts=0, loops=loop)


def started(stage: Dict[str, Any], role: str, pid: int, started_at: Optional[float]) -> None:
    """``role``'s run is ``pid`` (started by this tick, or adopted from one that was interrupted)."""
    rec = StageRecord(stage)
    rec.set_of(role, "pid", pid)
    rec.set_of(role, "started", started_at)
    if role == "verifier":
        rec.verifier_attempts += 1


def account(stage: Dict[str, Any], role: str, seconds: int, usage: Any = None, exit_code: Any = None) -> None:
    """``role``'s run ended (or was stopped): its seconds, tokens and cost onto the stage; its pid cleared.

    ``usage``: an :class:`autometta.families.usage.Usage` for a worker or a
    verifier, None for a command. The repo's counters are the spend ledger's
    to fold (:func:`autometta.books.ledger.book_tick_run`).
    """
    rec = StageRecord(stage)
    if role in ("worker", "verifier"):
        rec.add_to(role, "seconds", seconds)
        if usage is not None:
            rec.add_to(role, "tokens", usage.total_tokens)
            rec.tokens = rec.worker_tokens + rec.verifier_tokens
            if usage.cost_usd:
                cost = round(float(usage.cost_usd), 6)
                rec.set_of(role, "cost_usd", round((rec.of(role, "cost_usd") or 0) + cost, 6))
                rec.cost_usd = round((rec.worker_cost_usd or 0) + (rec.verifier_cost_usd or 0), 6)
    if role == "worker":
        rec.worker_exit = exit_code
    rec.set_of(role, "pid", None)
    rec.set_of(role, "started", None)
    rec.set_of(role, "run_id", None)  # accounted: a later tick must not adopt its run again


def finish(state: Dict[str, Any], budget: Dict[str, Any], stage: Optional[Dict[str, Any]], status: str,
           marker: Optional[str], now: float) -> None:
    """The stage ends ``status`` (``marker``: why, as state.yaml keeps it); a failure counts towards the cap."""
    if stage is not None:
        rec = StageRecord(stage)
        rec.status, rec.stall_marker = status, marker
        if status == "completed":
            rec.completed_at = now_iso(now)
        else:
            rec.stopped_at = now_iso(now)  # what needs a person says since when
        if rec.merge:
            rec.merge = None  # landed, or refused: then its branch and worktree stay for review
    if status == "completed":
        budget["consecutive_failures"] = 0
    else:
        budget["consecutive_failures"] = (budget.get("consecutive_failures") or 0) + 1
    if stage is None or state.get("current_stage") == StageRecord(stage).id:
        state["current_stage"] = None


def halt(state: Dict[str, Any], budget: Dict[str, Any], reason: str, now: float) -> None:
    """The repo stops (``reason``) until ``autometta tick --reset-halt``."""
    budget.update(halted=True, halt_reason=reason, halted_at=now_iso(now))
    state.update(halted=True, halt_reason=reason)


def transition(state: Dict[str, Any], budget: Dict[str, Any], now: float) -> None:
    """One transition made: a clock tick spent (``tick-cap``), the state's tick count and time."""
    budget["clock_ticks_used"] = (budget.get("clock_ticks_used") or 0) + 1
    state["tick_count"] = (state.get("tick_count") or 0) + 1
    state["last_tick_at"] = now_iso(now)
    cap = budget.get("clock_tick_cap")
    if isinstance(cap, int):
        state["clock_tick_budget_remaining"] = max(0, cap - budget["clock_ticks_used"])

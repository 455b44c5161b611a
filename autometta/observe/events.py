"""Events a human cares about, raised by the tick: the one place notifications start.

The tick calls :func:`emit` once per event; delivery (a configured command,
a webhook) and once-only bookkeeping live behind it.
"""

from __future__ import annotations

from typing import Any, Dict

from ..paths import HomePaths, RepoPaths

#: The kinds the tick emits.
KINDS = ("stage_completed", "stage_failed", "stage_stalled", "stage_verifier_failed",
         "repo_halted", "agent_stuck", "queue_drained")


def emit(home: HomePaths, repo: RepoPaths, kind: str, fields: Dict[str, Any]) -> None:
    """Deliver one event. Never raises: a notification must not break a tick."""
    return None

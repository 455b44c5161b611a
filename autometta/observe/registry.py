"""``state/active-agents/<pid>.json``: one file per dispatched agent (spec §3.6)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional

from .. import files
from ..paths import RepoPaths


def register(paths: RepoPaths, *, pid: int, started: Optional[float], started_at: str, role: str,
             family: str, identity: str, card_path: str, log_path: str, budget_seconds: int,
             stage_id: Optional[str] = None) -> Path:
    """Write (or rewrite: idempotent per pid) the registry entry for one agent."""
    doc: Dict[str, Any] = {
        "agent_id": f"{pid}-{int(started or 0)}",
        "pid": pid,
        "role": role,
        "family": family,
        "identity": identity,
        "card_path": card_path,
        "log_path": log_path,
        "budget_seconds": int(budget_seconds or 0),
        "started_at": started_at,
    }
    if started is not None:
        doc["process_start"] = started
    if stage_id:
        doc["stage_id"] = stage_id
    files.ensure_dir(paths.active_agents)
    target = paths.active_agents / f"{pid}.json"
    files.atomic_write(target, files.dump_json(dict(sorted(doc.items()))), mode=0o600)
    return target

"""``state/active-agents/<pid>.json``: one file per dispatched agent (spec §3.6).

Every dispatch registers here: the tick's (:func:`autometta.agents.dispatch.start`)
and a human's (``autometta register-agent``). The heartbeat reads the files,
and moves the entry of an agent that has exited to
``state/recent-agents/<pid>-<card stem>.json`` with its outcome.

``pid`` is the process to watch: for the tick's agents the supervising
runner (its exit record says how the agent ended), for a manual dispatch the
agent itself. ``process_start`` (the start time the operating system
reported at registration) tells that process from a later one that got the
same pid; entries written by the bash version lack it. ``run_id`` (the tick's
agents) is the run's mark (:mod:`autometta.agents.processes`): if the runner is gone
without an exit record, the heartbeat still finds what is left of its run.
"""

from __future__ import annotations

import os
from pathlib import Path

from .. import files, schema
from ..errors import UserError
from ..paths import RepoPaths

TYPE_CHECKING = False  # not typing's: an idle tick and status import no typing (tests/test_startup.py)
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional, Tuple

    Entry = Dict[str, Any]


def register(paths: RepoPaths, *, pid: int, started: Optional[float], started_at: str, role: str,
             family: str, identity: str, card_path: str, log_path: str, budget_seconds: int,
             stage_id: Optional[str] = None, run_id: Optional[str] = None) -> Path:
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
    if run_id:
        doc["run_id"] = run_id  # the run's mark: its processes outlive a runner that was killed
    target = entry_path(paths, pid)
    files.ensure_dir(paths.active_agents)
    files.atomic_write(target, files.dump_json(dict(sorted(doc.items()))), mode=0o600)
    return target


def in_use(paths: RepoPaths) -> bool:
    """Was an agent ever registered here (so the heartbeat has something to look at)? Two stats."""
    return paths.active_agents.is_dir() or paths.heartbeat.exists()


def entry_path(paths: RepoPaths, pid: int) -> Path:
    return paths.active_agents / f"{int(pid)}.json"


def card_stem(doc: Entry) -> str:
    """The card's file name without ``.md``; ``unknown`` when there is none (bash's rule)."""
    name = os.path.basename(str(doc.get("card_path") or ""))
    return name.rsplit(".", 1)[0] if "." in name else (name or "unknown")


def stage_of(doc: Entry) -> Optional[str]:
    """The stage id an entry works on: its ``stage_id``, else its card's stem if that is one."""
    stage = doc.get("stage_id")
    if isinstance(stage, str) and stage:
        return stage
    stem = card_stem(doc)
    from ..stageid import STAGE_ID_RE  # not at import: the tick's heartbeat of an empty registry needs no regex

    return stem if STAGE_ID_RE.match(stem) else None


def recent_path(paths: RepoPaths, doc: Entry) -> Path:
    """``recent-agents/<pid>-<card stem>.json`` (the bash name)."""
    pid = doc.get("pid") if isinstance(doc.get("pid"), int) else 0
    return paths.recent_agents / f"{pid}-{card_stem(doc)}.json"


def read_entry(path: Path) -> Optional[Entry]:
    """The entry, if it matches ``schemas/registry-entry.json``; None otherwise (skipped, as bash did)."""
    try:
        doc = files.read_json(path, limit=1024 * 1024)
    except UserError:  # unreadable, not JSON, too deep
        return None
    if not isinstance(doc, dict) or schema.problems(doc, "registry-entry"):
        return None
    return doc


def _listing(folder: Path) -> List[Path]:
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return [folder / name for name in sorted(names) if name.endswith(".json") and not name.startswith(".")]


def active(paths: RepoPaths) -> List[Tuple[Path, Entry]]:
    """Every readable entry in ``active-agents/``, by file name."""
    out = []
    for path in _listing(paths.active_agents):
        doc = read_entry(path)
        if doc is not None:
            out.append((path, doc))
    return out


def recent(paths: RepoPaths, limit: Optional[int] = None) -> List[Entry]:
    """Entries of exited agents, newest first (by ``exited_at``, then file time)."""
    rows = []
    for path in _listing(paths.recent_agents):
        doc = read_entry(path)
        if doc is None:
            continue
        try:
            mtime = path.stat().st_mtime
        except OSError:
            mtime = 0.0
        rows.append((str(doc.get("exited_at") or ""), mtime, doc))
    rows.sort(key=lambda row: (row[0], row[1]), reverse=True)
    docs = [doc for _, _, doc in rows]
    return docs if limit is None else docs[:limit]


def find(paths: RepoPaths, pid: int) -> Optional[Entry]:
    """The active entry for ``pid``, or None."""
    return read_entry(entry_path(paths, pid))


def find_recent(paths: RepoPaths, pid: int) -> Optional[Entry]:
    """The newest recent entry for ``pid``, or None."""
    for doc in recent(paths):
        if doc.get("pid") == pid:
            return doc
    return None

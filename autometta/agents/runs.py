"""A stage's runs as the tick records them: claimed before the spawn, found again after a kill.

Every process the tick starts for a stage (a role of :data:`ROLES`, or the
git commit of an accepted stage) is a *run* with a mark
(:mod:`autometta.agents.processes`). The tick writes the mark into ``state.yaml``
as ``<role>_run_id`` **before** it starts the run and the pid **after**, so a
tick killed anywhere in between leaves one of two things for the next tick:

* nothing started: no process, runner record or exit record carries the
  mark, and the role is started afresh (with a new mark);
* a run that started: its runner record, its exit record or a live process
  carries the mark, and the tick adopts it (:func:`orphan`) instead of
  starting a twin.

A recorded runner that is gone without an exit record is *lost*
(:func:`lost`): what it started is stopped (:func:`terminate`, then SIGKILL
on a later tick) and the stage stalls ``runner_lost``.

A runner record names a pid; since an agent can write anything under
``state/``, a live pid is adopted only when that process carries the mark.
"""

from __future__ import annotations

import signal
from typing import Any, Dict, List, Mapping, Optional, Tuple

from ..paths import RepoPaths
from ..stagerecord import StageRecord
from ..timeutil import parse_iso
from . import liveness, processes
from .spawn import read_exit, read_runner

#: marker of a stage whose runner is gone without an exit record (killed, crashed, a reboot)
RUNNER_LOST_MARKER = "runner_lost"
#: The pseudo-role of the stage commit's git process (its mark is ``commit_run_id``).
COMMIT = "commit"


def key(role: str) -> str:
    """The state.yaml field holding ``role``'s mark."""
    return f"{role}_run_id"


def claim(stage: Dict[str, Any], role: str) -> str:
    """Give ``role`` a new mark in the stage record (saved by the caller before the spawn); the mark."""
    mark = processes.new_mark()
    stage[key(role)] = mark
    return mark


def mark_of(stage: Mapping[str, Any], role: str) -> Optional[str]:
    value = stage.get(key(role))
    return value if isinstance(value, str) and value else None


def orphan(paths: RepoPaths, stage: Mapping[str, Any], role: str) -> Optional[Tuple[int, float]]:
    """A run of ``role`` an interrupted tick started but never recorded: ``(runner pid, start time)``.

    None when the stage records no mark for ``role`` (or already its pid), or
    when nothing of the marked run exists: then it never started.
    """
    rec = StageRecord(stage)
    mark = mark_of(stage, role)
    if mark is None or rec.pid(role):
        return None
    exit_path = paths.exit_record(str(rec.id), role)
    found = _recorded(exit_path, mark)
    if found is None:
        found = processes.runner_of(mark)
    if found is None:  # it may have written its records while we scanned
        found = _recorded(exit_path, mark)
    return found


def _recorded(exit_path: Any, mark: str) -> Optional[Tuple[int, float]]:
    """The marked run from its runner record (checked against the process) or its exit record."""
    runner = read_runner(exit_path)
    record = read_exit(exit_path)
    ended = record is not None and record.get("run_id") == mark
    if runner is not None and runner.run_id == mark:
        if ended or (liveness.is_alive(runner.pid, runner.started) and processes.carries_mark(runner.pid, mark)):
            return runner.pid, runner.started
    if ended and isinstance(record.get("runner_pid"), int) and record["runner_pid"] > 1:
        return record["runner_pid"], parse_iso(str(record.get("started_at") or "")) or 0.0
    return None


def lost(stage: Mapping[str, Any], role: str, alive: bool, record: Optional[Mapping[str, Any]]) -> bool:
    """Was ``role``'s runner started with a mark, and is it gone without leaving an exit record?

    Runs recorded before marks existed (no ``<role>_run_id``) keep the old
    reading: a dead runner's envelope or verdict is used as found.
    """
    rec = StageRecord(stage)
    return bool(rec.pid(role)) and mark_of(stage, role) is not None and not alive and record is None


def leftovers(stage: Mapping[str, Any], role: str) -> List[int]:
    """Live processes of ``role``'s run: marked, or in its runner's process group."""
    rec = StageRecord(stage)
    pid = rec.pid(role)
    return members(int(pid) if pid else None, rec.started(role), mark_of(stage, role))


def members(pid: Optional[int], started: Optional[float], mark: Optional[str]) -> List[int]:
    """Live processes of the run whose runner is ``pid`` (started ``started``) and mark is ``mark``."""
    return processes.find(run_of(pid, started, mark))


def run_of(pid: Optional[int], started: Optional[float], mark: Optional[str]) -> processes.Run:
    """How to find a run: by its mark, and by its runner's process group when that is still the run's.

    The group counts while the runner lives, or when some member carries the
    mark: a group whose leader is gone and whose members are all unmarked
    might be a stranger's that reused the number.
    """
    pgid = None
    if pid and pid > 1:
        if liveness.is_alive(pid, started):
            pgid = pid
        elif mark:
            group = set(liveness.group_members(pid) or [])
            if group and group & set(processes.find(processes.Run(mark=mark))):
                pgid = pid
    return processes.Run(mark=mark, pgid=pgid)


def stop(stage: Mapping[str, Any], role: str, grace: float = processes.DEFAULT_GRACE) -> List[int]:
    """Stop ``role``'s run now: its runner (which stops the agent and writes its exit record) and the rest.

    SIGTERM to the runner's group and every marked process, up to ``grace``
    seconds for them to go, then SIGKILL; returns the pids signalled.
    """
    rec = StageRecord(stage)
    pid = int(rec.pid(role) or 0) or None
    started = rec.started(role)
    runner = pid if pid and liveness.is_alive(pid, started) else None
    return processes.stop(run_of(pid, started, mark_of(stage, role)), grace, last=runner)


def terminate(stage: Mapping[str, Any], role: str) -> Optional[Dict[str, Any]]:
    """SIGTERM ``role``'s runner group and every process marked as its run; the pending-kill entry, or None.

    A live runner passes the signal on and stops the rest itself (SIGKILL
    after its grace, then its exit record); the entry lets a later tick
    SIGKILL whatever is left when the runner is gone.
    """
    rec = StageRecord(stage)
    pid = rec.pid(role)
    mark = mark_of(stage, role)
    if not pid and not mark:
        return None
    if pid and liveness.is_alive(int(pid), rec.started(role)):
        liveness.signal_group(int(pid), signal.SIGTERM)  # the runner passes it on and stops the rest itself
    processes.send(leftovers(stage, role), signal.SIGTERM)
    entry: Dict[str, Any] = {"pid": int(pid)} if pid else {}
    entry.update(started=rec.started(role), run_id=mark)
    return entry


def settle(entry: Mapping[str, Any]) -> None:
    """SIGKILL what is left of a run an earlier tick sent SIGTERM (a pending-kill entry)."""
    pid, started, mark = _entry(entry)
    if pid and liveness.is_alive(pid, started):
        liveness.signal_group(pid, signal.SIGKILL)
    processes.send(members(pid, started, mark), signal.SIGKILL)


def pending(entry: Mapping[str, Any]) -> bool:
    """Is anything of a pending-kill entry's run still alive?"""
    pid, started, mark = _entry(entry)
    return bool((pid and liveness.is_alive(pid, started)) or members(pid, started, mark))


def _entry(entry: Mapping[str, Any]) -> Tuple[Optional[int], Optional[float], Optional[str]]:
    pid, started, mark = entry.get("pid"), entry.get("started"), entry.get("run_id")
    return (pid if isinstance(pid, int) and not isinstance(pid, bool) and pid > 1 else None,
            started if isinstance(started, (int, float)) and not isinstance(started, bool) else None,
            mark if isinstance(mark, str) and mark else None)


def commit_running(stage: Mapping[str, Any], now: float) -> Optional[float]:
    """Seconds the stage's git commit (from a tick that was killed) has been running, or None if it is not."""
    mark = mark_of(stage, COMMIT)
    if mark is None:
        return None
    found = processes.marked(mark)
    if not found:
        return None
    oldest = min((started for _pid, started in found if started is not None), default=now)
    return max(0.0, now - oldest)

"""The heartbeat: what is every registered agent doing right now?

For each entry in ``state/active-agents/`` it observes three facts -- does
the process still run (pid *and* start time), when did its log last grow,
how long has it run against its budget -- and classifies the agent:

=============  ==============================================================
``running``    alive, and its log grew within ``quiet_seconds``
``quiet``      alive, log unchanged for longer than ``quiet_seconds``; or its
               log does not stream, so silence says nothing
``stuck``      alive, but its streaming log has not grown for ``stall_seconds``
``over-budget`` alive past its budget (``budget_seconds`` > 0)
``unsupervised`` its runner is gone without an exit record (killed, crashed)
               but processes of its run (found by the run's mark, see
               :mod:`autometta.agents.processes`) still run: nothing will stop them
               at the budget; the next tick (or ``tick --repair``) does
``exited``     the process is gone (or the pid now belongs to someone else)
=============  ==============================================================

Unsupervised wins over everything; over-budget over stuck, stuck over quiet. The bash flags are kept
(``silent`` = stuck, ``over-budget``) so old readers of ``heartbeat.json``
keep working.

A log *streams* when its family writes as it works (``Family.log_streams``;
a claude log that does not start with stream-json events, the bash
version's plain ``claude -p``, does not, and keeps the bash rule: only the
budget can call it stuck).

An exited agent's entry moves to ``state/recent-agents/`` with an outcome
read from the runner's exit record (``ok``, ``failed``, ``killed``,
``timed-out``, ``not-started``), else from its stage's status in
state.yaml, else ``exited``. The heartbeat never kills anything and
:func:`check` never raises for a bad entry: it is a watchdog, not a gate.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from .. import files
from ..agents import liveness, processes, registry
from ..agents.roles import ROLES
from ..errors import UserError
from ..paths import HomePaths, RepoPaths
from ..timeutil import now_iso, parse_iso
from .settings import Settings

STATES = ("running", "quiet", "stuck", "over-budget", "unsupervised", "exited")
#: States a human should look at.
ALERT_STATES = ("stuck", "over-budget", "unsupervised")
#: Outcomes (and stage statuses) shown as failures.
FAILED_OUTCOMES = ("failed", "killed", "timed-out", "not-started", "stalled", "verifier_failed",
                   "verifier_panel_no_quorum", "merge_conflict", "secret_blocked", "stuck")


@dataclass
class Observed:
    """What was seen of one agent's process and log (the input of :func:`classify`)."""

    alive: bool
    log_size: Optional[int] = None
    log_mtime: Optional[float] = None
    log_streams: bool = True
    #: processes of the run still alive although its runner (the registered pid) is gone
    unsupervised: Tuple[int, ...] = ()


def _fmt(seconds: float) -> str:
    seconds = int(max(0, seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s" if seconds % 60 else f"{seconds // 60}m"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"


def elapsed_of(doc: Dict[str, Any], now: float) -> Optional[float]:
    start = doc.get("process_start")
    if not isinstance(start, (int, float)) or isinstance(start, bool):
        start = parse_iso(str(doc.get("started_at") or ""))
    return None if start is None else max(0.0, now - float(start))


def classify(doc: Dict[str, Any], seen: Observed, now: float, stall_seconds: float,
             quiet_seconds: float) -> Dict[str, Any]:
    """The heartbeat fields for one registry entry: a pure function of what was seen.

    Returns ``alive``, ``state``, ``flags`` (bash's ``silent`` /
    ``over-budget``), ``reason`` (one line for a human), ``log_streams``
    and, when known, ``elapsed_seconds``, ``log_size``,
    ``log_mtime_age_seconds``.
    """
    out: Dict[str, Any] = {"alive": seen.alive, "log_streams": seen.log_streams}
    elapsed = elapsed_of(doc, now)
    if elapsed is not None:
        out["elapsed_seconds"] = int(elapsed)
    age = None
    if seen.log_mtime is not None:
        age = max(0.0, now - seen.log_mtime)
        out["log_mtime_age_seconds"] = int(age)
    if seen.log_size is not None:
        out["log_size"] = seen.log_size
    if not seen.alive and seen.unsupervised:
        shown = " ".join(map(str, seen.unsupervised[:5])) + (" ..." if len(seen.unsupervised) > 5 else "")
        out.update(alive=True, state="unsupervised", flags=["unsupervised"],
                   pids=list(seen.unsupervised),
                   reason=f"its runner is gone without an exit record; {len(seen.unsupervised)} process(es) "
                          f"of its run still running ({shown})")
        return out
    flags: List[str] = []
    budget = doc.get("budget_seconds")
    budget = budget if isinstance(budget, int) and not isinstance(budget, bool) else 0
    over = seen.alive and budget > 0 and elapsed is not None and elapsed > budget
    silent = seen.alive and seen.log_streams and age is not None and age > stall_seconds
    if silent:
        flags.append("silent")
    if over:
        flags.append("over-budget")
    out["flags"] = flags
    if not seen.alive:
        out["state"], out["reason"] = "exited", "process gone"
    elif over:
        out["state"] = "over-budget"
        out["reason"] = f"ran {_fmt(elapsed or 0)} of a {_fmt(budget)} budget"
    elif silent:
        out["state"] = "stuck"
        out["reason"] = f"log silent for {_fmt(age or 0)} (stuck after {_fmt(stall_seconds)})"
    elif age is not None and age > quiet_seconds:
        out["state"] = "quiet"
        out["reason"] = (f"log silent for {_fmt(age)}" if seen.log_streams
                         else f"log silent for {_fmt(age)}; it does not stream, only the budget can tell")
    elif age is None and not seen.log_streams:
        out["state"], out["reason"] = "quiet", "no log yet; it does not stream"
    else:
        out["state"] = "running"
        out["reason"] = "no log yet" if age is None else f"log grew {_fmt(age)} ago"
    return out


def outcome_of(record: Optional[Dict[str, Any]], stage_status: Optional[str]) -> Dict[str, Any]:
    """How an exited agent ended: from its exit record, else its stage's status, else ``exited``."""
    settled = stage_status if stage_status and stage_status not in ("pending", "in_progress") else None
    if record is not None:
        out: Dict[str, Any] = {"exit_code": record.get("exit_code"), "signal": record.get("signal")}
        if record.get("seconds") is not None:
            out["run_seconds"] = record.get("seconds")
        code, sig = record.get("exit_code"), record.get("signal")
        if record.get("error"):
            out["outcome"], out["error"] = "not-started", record.get("error")
            out["reason"] = str(record.get("error"))
        elif record.get("timed_out"):
            out["outcome"], out["reason"] = "timed-out", "stopped at 1.5x its budget"
        elif code == 0:
            out["outcome"], out["reason"] = "ok", "exit 0"
        elif code is None:
            out["outcome"], out["reason"] = "killed", f"killed by signal {sig}" if sig else "killed"
        else:
            out["outcome"], out["reason"] = "failed", f"exit {code}"
        if settled:
            out["stage_status"] = settled
        return out
    if settled:
        return {"outcome": settled, "stage_status": settled, "reason": f"stage {settled}"}
    return {"outcome": "exited", "reason": "process gone (no exit record)"}


# --------------------------------------------------------------------------- observing


def log_streams(family: str, log_path: Optional[Path]) -> bool:
    """Does this agent's log grow while it works? Its family says (:meth:`Family.log_streams`); unknown: yes."""
    from .. import families

    fam = families.FAMILIES.get(family or "")
    return fam.log_streams(log_path) if fam is not None else True


def is_alive(doc: Dict[str, Any]) -> bool:
    """Is the registered process still the one that was registered?

    With ``process_start`` the pid must still have that start time. Without
    it (a bash-era entry) a process that started after the registration is a
    stranger that got the pid later.
    """
    pid = doc.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    start = doc.get("process_start")
    if isinstance(start, (int, float)) and not isinstance(start, bool):
        return liveness.is_alive(pid, float(start))
    if not liveness.is_alive(pid):
        return False
    registered = parse_iso(str(doc.get("started_at") or ""))
    began = liveness.start_time(pid)
    if registered is not None and began is not None and began > registered + liveness.START_TOLERANCE + 1:
        return False
    return True


def exit_record(paths: RepoPaths, doc: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The runner's exit record for this entry's run, if it is this run's.

    The launcher writes ``X.exit.json`` beside the log ``X.log`` (workers,
    verifiers, panellists); a record counts only if its ``runner_pid`` is the
    registered pid, so an old run's record is never taken for this one.
    """
    candidates = []
    log = str(doc.get("log_path") or "")
    if log.endswith(".log"):
        candidates.append(Path(log[: -len(".log")] + ".exit.json"))
    stage, role = registry.stage_of(doc), doc.get("role")
    if stage and role in ROLES:
        candidates.append(paths.exit_record(stage, str(role)))
    from ..agents.spawn import read_exit  # not at import: an idle tick with nothing registered needs none of it

    for path in candidates:
        record = read_exit(path)
        if record is not None and record.get("runner_pid") == doc.get("pid"):
            return record
    return None


def observe(paths: RepoPaths, doc: Dict[str, Any], record: Optional[Dict[str, Any]]) -> Observed:
    alive = is_alive(doc)  # a record while the runner still runs was not written by it: the run goes on
    log = Path(str(doc["log_path"])) if doc.get("log_path") else None
    seen = Observed(alive=alive, log_streams=log_streams(str(doc.get("family") or ""), log))
    mark = doc.get("run_id")
    if not alive and record is None and isinstance(mark, str) and mark:
        # the runner is gone without a record: does anything of its run still run?
        seen.unsupervised = tuple(processes.find(processes.Run(mark=mark)))
    if log is not None:
        try:
            st = os.stat(log)
            seen.log_size, seen.log_mtime = st.st_size, st.st_mtime
        except OSError:
            pass
    return seen


class _Stages:
    """Stage statuses from state.yaml, read once and only if an agent has exited."""

    def __init__(self, paths: RepoPaths) -> None:
        self.paths = paths
        self._doc: Optional[Dict[str, Any]] = None
        self._read = False

    def status(self, stage_id: Optional[str]) -> Optional[str]:
        if not stage_id:
            return None
        if not self._read:
            self._read = True
            from ..books import state

            try:
                self._doc = state.load_state(self.paths)
            except UserError:
                self._doc = None
        if self._doc is None:
            return None
        from ..stagerecord import records

        for rec in records(self._doc):
            if rec.id == stage_id:
                return rec.status
        return None


def check(paths: RepoPaths, settings: Settings, now: float, write: bool = True) -> Dict[str, Any]:
    """Walk the registry; with ``write``, move exited agents and write ``heartbeat.json``.

    Returns the report: ``checked_at``, ``stall_threshold_seconds``,
    ``quiet_threshold_seconds``, ``active_count``, ``counts`` per state,
    ``entries`` (the live agents) and ``exited`` (agents found gone now).
    """
    stages = _Stages(paths)
    entries: List[Dict[str, Any]] = []
    exited: List[Dict[str, Any]] = []
    for path, doc in registry.active(paths):
        record = exit_record(paths, doc)
        seen = observe(paths, doc, record)
        row = dict(doc)
        row.update(classify(doc, seen, now, settings.stall_seconds, settings.quiet_seconds))
        if row["alive"]:
            entries.append(row)
            continue
        row.update(outcome_of(record, stages.status(registry.stage_of(doc))))
        row["exited_at"] = (record or {}).get("ended_at") or now_iso(now)
        exited.append(row)
        if write:
            _retire(paths, path, row)
    counts = {name: 0 for name in STATES}
    for row in entries:
        counts[row["state"]] += 1
    counts["exited"] = len(exited)
    report = {
        "checked_at": now_iso(now),
        "stall_threshold_seconds": settings.stall_seconds,
        "quiet_threshold_seconds": settings.quiet_seconds,
        "active_count": len(entries),
        "counts": counts,
        "entries": entries,
        "exited": exited,
    }
    if write and paths.state_dir.is_dir():
        files.atomic_write(paths.heartbeat, files.dump_json(report), mode=0o600)
    return report


def _retire(paths: RepoPaths, active_path: Path, row: Dict[str, Any]) -> None:
    """Move an exited agent's entry to recent-agents (written first, then the active file goes)."""
    try:
        files.ensure_dir(paths.recent_agents)
        files.atomic_write(registry.recent_path(paths, row), files.dump_json(dict(sorted(row.items()))),
                           mode=0o600)
        os.unlink(active_path)
    except FileNotFoundError:
        pass  # another heartbeat moved it first
    except (OSError, UserError):
        pass  # left in place; the next heartbeat tries again


def for_tick(home: Optional[HomePaths], paths: RepoPaths, now: float,
             log: Optional[Callable[[str], None]] = None) -> Optional[Dict[str, Any]]:
    """The tick's heartbeat: check, then raise ``agent_stuck`` for each stuck agent. Never raises."""
    from . import settings as observe_settings

    home = home or HomePaths.from_env()
    try:
        if not registry.in_use(paths):
            return None  # nothing was ever registered here: an idle repo costs two stats
        report = check(paths, observe_settings.from_home(home), now)
    except Exception as exc:  # a watchdog must not break a tick
        if log is not None:
            log(f"heartbeat failed for {paths.root}: {type(exc).__name__}: {exc}")
        return None
    for row in report["entries"]:
        # over-budget is not told: the runner stops an agent at 1.5x its budget and the stage
        # then stalls, which is told; a silent streaming log is what nothing else would catch
        if row["state"] == "stuck":
            from . import events

            events.emit(home, paths, "agent_stuck", stuck_fields(row))
    return report


def stuck_fields(row: Dict[str, Any]) -> Dict[str, Any]:
    fields = {key: row.get(key) for key in ("agent_id", "pid", "role", "family", "identity", "log_path",
                                            "state", "reason", "elapsed_seconds")}
    fields["stage_id"] = registry.stage_of(row)
    return fields


def table(report: Dict[str, Any]) -> List[Tuple[str, ...]]:
    """Rows for the heartbeat command: live agents, then those found exited."""
    rows = []
    for row in report["entries"] + report["exited"]:
        rows.append((str(row.get("pid")), str(row.get("role") or "?"), str(row.get("family") or "?"),
                     registry.stage_of(row) or registry.card_stem(row),
                     row["state"] if row["alive"] else f"exited:{row.get('outcome')}",
                     _fmt(row.get("run_seconds", row.get("elapsed_seconds")))
                     if row.get("run_seconds", row.get("elapsed_seconds")) is not None else "-",
                     row.get("reason") or ""))
    return rows

"""Every process of a run: marked, found, stopped.

Each run autometta starts (an agent or a command, through
:func:`autometta.agents.spawn.launch`; a stage commit, through the tick) gets a
*mark*: a random id in the environment variable ``AUTOMETTA_RUN_ID`` of the
runner, the agent and everything they start without cleaning their
environment. A run started inside another run (a verifier panel's members,
autometta run by an agent) carries the outer marks too, comma-separated, so
stopping the outer run stops the inner ones. The tick records the mark in
``state.yaml`` *before* the spawn (``<role>_run_id``), which is how a tick
killed between the spawn and recording the pid finds the run again and
adopts it instead of starting a twin (:func:`adoptable`).

:func:`find` gathers a run's live processes from three sources:

1. **the mark**, read from ``/proc/<pid>/environ`` on Linux (the environment
   a process was exec'd with; it cannot rewrite that for itself without
   exec'ing again) or from ``ps -E`` on macOS;
2. **the runner's process group** (pgid = runner pid), which the agent and
   its children share unless they call ``setsid``/``setpgid``;
3. **the runner's descendants**, followed by parent pid. On Linux the runner
   makes itself a *child subreaper* (``prctl(PR_SET_CHILD_SUBREAPER)``), so a
   double-forked or ``setsid`` process whose parent exits is re-parented to
   the runner rather than to init, and stays its descendant while the runner
   lives.

What none of these catches, said plainly: a process that leaves the process
group *and* is exec'd with an environment without the mark (``env -i setsid
...``), once the runner is gone (killed with SIGKILL, a crash) -- or on
macOS, where there is no subreaper, once its parent has exited. Only an OS
sandbox or a cgroup/jail (not something an unprivileged tool can set up
everywhere) contains such a process. Some agent CLIs clean the environment of
the tools they run (codex drops variables whose names contain ``KEY``,
``SECRET`` or ``TOKEN``, hence the name ``AUTOMETTA_RUN_ID``); group and
descendants still hold those while the runner lives.

Standard library only and cheap to import (the runner imports it).
"""

from __future__ import annotations

import os
import secrets
import signal
import sys
import time
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Set, Tuple

from . import liveness

#: The environment variable that marks a run's processes.
ENV = "AUTOMETTA_RUN_ID"
#: Seconds between SIGTERM and SIGKILL when autometta stops a run itself.
DEFAULT_GRACE = 10.0
#: prctl option number (linux/prctl.h)
_PR_SET_CHILD_SUBREAPER = 36


def new_mark() -> str:
    """A fresh, unguessable mark for one run."""
    return secrets.token_hex(12)


def chained(mark: str, inherited: Optional[str] = None) -> str:
    """The ``AUTOMETTA_RUN_ID`` value for a run marked ``mark`` started inside runs ``inherited``."""
    outer = [m for m in (inherited or "").split(",") if m and m != mark]
    return ",".join(outer + [mark])


def own_mark(value: Optional[str]) -> Optional[str]:
    """The innermost mark of an ``AUTOMETTA_RUN_ID`` value: the run it was set for."""
    marks = [m for m in (value or "").split(",") if m]
    return marks[-1] if marks else None


def carries(value: Optional[str], mark: Optional[str]) -> bool:
    """Does an ``AUTOMETTA_RUN_ID`` value belong to run ``mark`` (its own or an inner run)?"""
    return bool(mark) and mark in (value or "").split(",")


@dataclass(frozen=True)
class Run:
    """How to find one run's processes; any field may be unknown."""

    mark: Optional[str] = None
    #: the runner's process group (its pid): the agent's group unless it left it
    pgid: Optional[int] = None
    #: count this process's descendants too (the runner, about its own run)
    root: Optional[int] = None


def find(run: Run, exclude: Iterable[int] = ()) -> List[int]:
    """Live (non-zombie) pids of ``run``, sorted; never this process or those in ``exclude``."""
    rows = liveness.table()
    if rows is None:
        return sorted(set(liveness.group_members(run.pgid) or []) - {os.getpid(), *exclude}) if run.pgid else []
    live = {row.pid: row for row in rows if not row.zombie}
    found: Set[int] = set()
    if run.mark:
        values = liveness.environ_values(ENV, live) or {}
        found.update(pid for pid, value in values.items() if carries(value, run.mark))
    if run.pgid and run.pgid > 1:
        found.update(pid for pid, row in live.items() if row.pgid == run.pgid)
    if run.root:
        found.update(_descendants(run.root, live.values()))
    found -= {os.getpid(), *exclude}
    return sorted(pid for pid in found if pid in live and pid > 1)


def _descendants(root: int, rows: Iterable[liveness.Row]) -> Set[int]:
    children: Dict[int, List[int]] = {}
    for row in rows:
        children.setdefault(row.ppid, []).append(row.pid)
    out: Set[int] = set()
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        if pid not in out:
            out.add(pid)
            todo.extend(children.get(pid, []))
    return out


def marked(mark: Optional[str]) -> List[Tuple[int, Optional[float]]]:
    """``(pid, start time)`` of the live processes that carry ``mark``, oldest first."""
    if not mark:
        return []
    rows = liveness.table() or []
    live = {row.pid: row for row in rows if not row.zombie and row.pid != os.getpid()}
    values = liveness.environ_values(ENV, live) or {}
    out = [(pid, live[pid].started) for pid, value in values.items() if pid in live and carries(value, mark)]
    return sorted(out, key=lambda item: (item[1] or 0.0, item[0]))


def runner_of(mark: Optional[str]) -> Optional[Tuple[int, float]]:
    """The live process that started run ``mark`` (its runner): ``(pid, start time)``, or None.

    The runner carries ``mark`` as its own (innermost) mark and no process
    above it does; among several such processes the oldest one.
    """
    if not mark:
        return None
    rows = liveness.table() or []
    live = {row.pid: row for row in rows if not row.zombie and row.pid != os.getpid()}
    values = liveness.environ_values(ENV, live) or {}
    ours = {pid for pid, value in values.items() if carries(value, mark)}
    tops = [live[pid] for pid in ours if pid in live and live[pid].ppid not in ours
            and own_mark(values.get(pid)) == mark]
    if not tops:
        return None
    top = min(tops, key=lambda row: (row.started or 0.0, row.pid))
    return top.pid, top.started if top.started is not None else time.time()


def carries_mark(pid: int, mark: Optional[str]) -> bool:
    """Is process ``pid`` alive and marked as run ``mark``'s? (how a recorded pid is checked before it is trusted)"""
    if not mark or pid <= 1:
        return False
    values = liveness.environ_values(ENV, [pid])
    return values is not None and carries(values.get(pid), mark)


def send(pids: Iterable[int], sig: int) -> List[int]:
    """Send ``sig`` to each pid; the ones it reached."""
    reached = []
    for pid in pids:
        if pid <= 1 or pid == os.getpid():
            continue
        try:
            os.kill(pid, sig)
        except OSError:
            continue
        reached.append(pid)
    return reached


def stop(run: Run, grace: float = DEFAULT_GRACE, exclude: Iterable[int] = (), last: Optional[int] = None) -> List[int]:
    """SIGTERM every process of ``run``, wait up to ``grace`` seconds, SIGKILL what is left.

    ``last`` (the live runner) gets SIGKILL only after the rest are gone and
    it has had a moment to write its exit record, which it does once its
    agent has ended. Returns every pid that was signalled. Waits by polling
    the process table (these are not our children), so it returns as soon as
    the run is gone.
    """
    excluded = set(exclude)
    signalled: Set[int] = set()
    found = find(run, excluded)
    if not found:
        return []
    signalled.update(send(found, signal.SIGTERM))
    deadline = time.monotonic() + grace
    while True:
        left = find(run, excluded)
        new = [pid for pid in left if pid not in signalled]
        if new:  # forked while we looked: they get the same treatment
            signalled.update(send(new, signal.SIGTERM))
        if not left or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    spared = {last} if last else set()
    for _ in range(3):  # SIGKILL cannot be refused; again, for anything that forked meanwhile
        left = [pid for pid in find(run, excluded) if pid not in spared]
        if not left:
            break
        signalled.update(send(left, signal.SIGKILL))
        _await_gone(left, 2.0)
    if last and liveness.is_alive(last):
        _await_gone([last], 3.0)  # its agent is gone: it sweeps, writes its record and exits
        if liveness.is_alive(last):
            signalled.update(send([last], signal.SIGKILL))
            _await_gone([last], 2.0)
    return sorted(signalled)


def _await_gone(pids: List[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(liveness.is_alive(pid) for pid in pids):
        time.sleep(0.02)


def become_subreaper() -> bool:
    """Linux: adopt this process's orphaned descendants (``PR_SET_CHILD_SUBREAPER``); False elsewhere."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError, ValueError):
        return False


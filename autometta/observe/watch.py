"""``autometta watch``: block until one registered agent exits or is stuck past a grace window.

Each pass runs the heartbeat (which also moves an exited agent to
recent-agents) and prints one line about the agent. Exit codes:

* 0 -- the agent exited (whatever its outcome; the line says which);
* 2 -- it stayed ``stuck`` or ``over-budget`` for longer than the grace window
  (``STUCK: ...`` on stderr); the watcher never kills it;
* 3 -- bad input: a pid that is not a number, or not registered.

Between passes it waits ``watch_poll_seconds``, but wakes at once when the
process exits (a pidfd on Linux).
"""

from __future__ import annotations

import os
import select
import time
from typing import Callable, Dict, Optional, TextIO

from ..agents import registry
from ..paths import RepoPaths
from ..secrets import redact
from . import heartbeat
from .screen import age
from .settings import Settings

EXITED, STUCK, BAD_INPUT = 0, 2, 3


def wait_for_exit(pid: int, timeout: float) -> None:
    """Sleep up to ``timeout`` seconds, returning early if ``pid`` exits (where the OS can say)."""
    opener = getattr(os, "pidfd_open", None)
    if opener is not None:
        try:
            fd = opener(pid)
        except OSError:
            fd = None
        if fd is not None:
            try:
                select.select([fd], [], [], timeout)
            finally:
                os.close(fd)
            return
    time.sleep(timeout)


def _say(text: str, file: TextIO, flush: bool = True) -> None:
    """One line out, masked (a reason or outcome may quote an agent)."""
    print(redact(text), file=file, flush=flush)


def _describe(row: Dict) -> str:
    size = row.get("log_size")
    return (f"{row['state']} elapsed={age(row.get('elapsed_seconds'))} "
            f"log={'?' if size is None else size}B ({row.get('reason') or ''})")


def _exited_line(label: str, pid: int, row: Optional[Dict]) -> str:
    if row is None:
        return f"watch: {label} pid={pid} exited"
    code = row.get("exit_code")
    extra = f", exit {code}" if code is not None else ""
    stage = f", stage {row['stage_status']}" if row.get("stage_status") else ""
    return f"watch: {label} pid={pid} exited: {row.get('outcome') or 'exited'}{extra}{stage}"


def watch(paths: RepoPaths, pid: int, label: Optional[str], settings: Settings, out: TextIO, err: TextIO,
          clock: Callable[[], float] = time.time) -> int:
    label = label or f"pid-{pid}"
    if registry.find(paths, pid) is None:
        done = registry.find_recent(paths, pid)
        if done is not None:
            _say(_exited_line(label, pid, done), file=out, flush=True)
            return EXITED
        _say(f"watch: pid {pid} is not registered in {paths.active_agents}; register it first with "
              f"'autometta register-agent {paths.root} {pid} ROLE FAMILY IDENTITY CARD LOG [BUDGET]'",
              file=err, flush=True)
        return BAD_INPUT
    poll, grace = settings.watch_poll_seconds, settings.watch_stall_grace_seconds
    _say(f"watch: {label} pid={pid} repo={paths.root} poll={poll}s grace={grace}s", file=out, flush=True)
    stuck_since: Optional[float] = None
    while True:
        now = clock()
        report = heartbeat.check(paths, settings, now)
        row = next((r for r in report["entries"] if r.get("pid") == pid), None)
        if row is None:
            gone = next((r for r in report["exited"] if r.get("pid") == pid), None) or registry.find_recent(paths, pid)
            _say(_exited_line(label, pid, gone), file=out, flush=True)
            return EXITED
        _say(f"watch: {label} pid={pid} {_describe(row)}", file=out, flush=True)
        if row["state"] in heartbeat.ALERT_STATES:
            if stuck_since is None:
                stuck_since = now
                _say(f"watch: {label} pid={pid} first {row['state']} observation, grace {grace}s",
                      file=out, flush=True)
            if now - stuck_since >= grace:
                _say(f"STUCK: {label} pid={pid} {row['state']} past the grace window ({grace}s): "
                      f"{row.get('reason') or ''}", file=err, flush=True)
                return STUCK
        else:
            stuck_since = None
        wait_for_exit(pid, poll)

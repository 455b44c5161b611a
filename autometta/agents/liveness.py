"""Facts about processes: does this pid still run the process we started?

A bare pid proves little: an agent can exit and a stranger can get its pid,
and an exited child lingers as a zombie that ``kill(pid, 0)`` still reports.
So a process is identified by its pid *and* its start time, and a zombie
counts as dead.

Where the facts come from:

* **Linux** -- ``/proc/<pid>/stat`` (state, process group, start time in clock
  ticks since boot) plus ``btime`` from ``/proc/stat``. No subprocess.
* **elsewhere (macOS)** -- one ``ps -o stat= -o lstart= -p PID`` call, run
  with ``LC_ALL=C`` and ``TZ=UTC0`` so its date parses the same everywhere.

:func:`table` lists every process (pid, parent, group, state, start time) and
:func:`environ_values` reads one variable from every process's environment
(``/proc/<pid>/environ`` on Linux, one ``ps -E`` call elsewhere): what
:mod:`autometta.agents.processes` finds a run's processes by.

Start times are epoch seconds. They are only as exact as their source (10 ms
on Linux, where the boot time is whole seconds; 1 s from ``ps``), so two
readings of one process are compared with :data:`START_TOLERANCE`. A pid is
reused only after the kernel has cycled through the whole pid range, so a
stranger starting within that tolerance of our process is not a practical
case. A clock step (NTP correcting a wrong clock while an agent runs) shifts
the computed start time of every running process and can make a live agent
look replaced; callers that see "not alive" without a finished record should
treat it as "gone or unknown", not as proof of a clean exit.
"""

from __future__ import annotations

import os
import time
from typing import Dict, Iterable, List, NamedTuple, Optional, Tuple

#: seconds two start-time readings of the same process may differ by
START_TOLERANCE = 2.0

_PROC = "/proc"
_btime: Optional[float] = None
_clk_tck: Optional[int] = None


# --------------------------------------------------------------------------- Linux: /proc


def _have_proc() -> bool:
    return os.path.exists(f"{_PROC}/{os.getpid()}/stat")


def _boot_time() -> Optional[float]:
    """``btime`` from /proc/stat, read once per process so readings stay consistent."""
    global _btime
    if _btime is None:
        try:
            with open(f"{_PROC}/stat", "rb") as handle:
                for line in handle:
                    if line.startswith(b"btime "):
                        _btime = float(line.split()[1])
                        break
        except (OSError, ValueError, IndexError):
            return None
    return _btime


def _ticks_per_second() -> int:
    global _clk_tck
    if _clk_tck is None:
        try:
            _clk_tck = int(os.sysconf("SC_CLK_TCK")) or 100
        except (ValueError, OSError, AttributeError):
            _clk_tck = 100
    return _clk_tck


def _proc_stat(pid: int) -> Optional[Tuple[str, int, int]]:
    """(state, pgrp, starttime in ticks since boot) from /proc/<pid>/stat, or None.

    Field 2, ``comm``, is the executable name in parentheses and may itself hold
    spaces and ``)``, so the fields are split after the *last* ``)``: what
    follows starts with field 3 (state); field 5 is pgrp, field 22 starttime.
    """
    try:
        with open(f"{_PROC}/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:  # no such process (or it vanished while we looked)
        return None
    close = data.rfind(b")")
    if close < 0:
        return None
    fields = data[close + 1:].split()
    try:
        return fields[0].decode("ascii", "replace"), int(fields[2]), int(fields[19])
    except (IndexError, ValueError):
        return None


def _proc_row(pid: int) -> Optional["Row"]:
    """One :class:`Row` from /proc/<pid>/stat (fields after ``comm``: state, ppid, pgrp, ... starttime)."""
    try:
        with open(f"{_PROC}/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 1:].split()
    try:
        return Row(pid, int(fields[1]), int(fields[2]), fields[0].decode("ascii", "replace"),
                   _proc_start_time(int(fields[19])))
    except (IndexError, ValueError):
        return None


def _proc_start_time(ticks: int) -> Optional[float]:
    boot = _boot_time()
    if boot is None:
        return None
    return boot + ticks / _ticks_per_second()


# --------------------------------------------------------------------------- elsewhere: ps


def _ps_path() -> str:
    import shutil  # ps, subprocess and calendar only where /proc is missing

    return shutil.which("ps") or "/bin/ps"


def _ps_env() -> dict:
    return {"PATH": os.environ.get("PATH", os.defpath), "LC_ALL": "C", "TZ": "UTC0"}


def _ps_facts(pid: int) -> Optional[Tuple[str, Optional[float]]]:
    """(state, start time) from one ``ps`` call, or None if there is no such process.

    ``lstart`` prints like ``Wed Nov 26 13:54:01 2025``; with ``TZ=UTC0`` it is UTC.
    """
    if pid <= 0:
        return None
    import calendar
    import subprocess

    try:
        out = subprocess.run([_ps_path(), "-o", "stat=", "-o", "lstart=", "-p", str(pid)],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, env=_ps_env(), timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    words = out.decode("ascii", "replace").split()
    if not words:
        return None
    started: Optional[float] = None
    try:
        started = float(calendar.timegm(time.strptime(" ".join(words[1:6]), "%a %b %d %H:%M:%S %Y")))
    except ValueError:
        pass
    return words[0], started


def _ps_group_members() -> Optional[List[Tuple[int, int, str]]]:
    """(pid, pgid, state) of every process, from one ``ps`` call; None if ps fails."""
    lines = _ps_all("pid", "pgid", "stat")
    if lines is None:
        return None
    rows = []
    for words in lines:
        if len(words) >= 3 and words[0].isdigit() and words[1].isdigit():
            rows.append((int(words[0]), int(words[1]), words[2]))
    return rows


def _ps_all(*columns: str) -> Optional[List[List[str]]]:
    """Each process's ``columns`` from one ``ps -A`` call, as words; None if ps fails."""
    import subprocess

    argv = [_ps_path(), "-A"]
    for column in columns:
        argv += ["-o", f"{column}="]
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              env=_ps_env(), timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0:
        return None
    return [line.split() for line in proc.stdout.decode("ascii", "replace").splitlines()]


def _ps_table() -> Optional[List["Row"]]:
    """Every process from one ``ps -A`` call (``lstart`` is five words, last); None if ps fails."""
    import calendar

    lines = _ps_all("pid", "ppid", "pgid", "stat", "lstart")
    if lines is None:
        return None
    rows = []
    for words in lines:
        if len(words) < 4 or not all(w.isdigit() for w in words[:3]):
            continue
        started: Optional[float] = None
        try:
            started = float(calendar.timegm(time.strptime(" ".join(words[4:9]), "%a %b %d %H:%M:%S %Y")))
        except ValueError:
            pass
        rows.append(Row(int(words[0]), int(words[1]), int(words[2]), words[3], started))
    return rows


def _ps_environ(name: str) -> Optional[Dict[int, str]]:
    """``name``'s value per process from ``ps -E`` (macOS: the environment follows the command).

    ps shows the environment of our own user's processes only, separated by
    spaces, so a value is read up to the next blank; an argument that looks
    like ``NAME=value`` reads as the variable too.
    """
    import subprocess

    try:
        proc = subprocess.run([_ps_path(), "-A", "-E", "-ww", "-o", "pid=", "-o", "command="],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              env=_ps_env(), timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0:
        return None
    return parse_ps_environ(proc.stdout.decode("utf-8", "replace"), name)


def parse_ps_environ(text: str, name: str) -> Dict[int, str]:
    """The ``pid -> value`` of ``name=value`` words in ``ps -E -o pid= -o command=`` output."""
    found: Dict[int, str] = {}
    prefix = name + "="
    for line in text.splitlines():
        head, _, rest = line.strip().partition(" ")
        if not head.isdigit():
            continue
        for word in rest.split():
            if word.startswith(prefix):
                found[int(head)] = word[len(prefix):]
    return found


# --------------------------------------------------------------------------- public


class Row(NamedTuple):
    """One process as :func:`table` saw it."""

    pid: int
    ppid: int
    pgid: int
    state: str  #: ``Z`` first for a zombie
    started: Optional[float]  #: epoch seconds, as :func:`start_time`

    @property
    def zombie(self) -> bool:
        return self.state.startswith("Z")


def table() -> Optional[List[Row]]:
    """Every process on the machine (that we may see); None if the table cannot be read.

    Linux reads /proc (a few ms for a few hundred processes); elsewhere one
    ``ps -A`` call.
    """
    if not _have_proc():
        return _ps_table()
    try:
        names = os.listdir(_PROC)
    except OSError:
        return None
    rows = []
    for name in names:
        if name.isdigit():
            row = _proc_row(int(name))
            if row is not None:
                rows.append(row)
    return rows


def environ_values(name: str, pids: Optional[Iterable[int]] = None) -> Optional[Dict[int, str]]:
    """``pid -> value`` of environment variable ``name`` for every process that has it.

    Linux reads ``/proc/<pid>/environ``: the environment the process was
    started with (exec), which a process cannot change for itself afterwards
    short of exec'ing again; processes of other users are skipped unless we
    are root. Elsewhere one ``ps -E`` call (our own user's processes).
    ``pids`` limits the Linux scan. None if nothing could be read.
    """
    if not _have_proc():
        found = _ps_environ(name)
        if found is not None and pids is not None:
            wanted = set(pids)
            found = {pid: value for pid, value in found.items() if pid in wanted}
        return found
    if pids is None:
        try:
            pids = [int(n) for n in os.listdir(_PROC) if n.isdigit()]
        except OSError:
            return None
    prefix = os.fsencode(name) + b"="
    found = {}
    for pid in pids:
        try:
            with open(f"{_PROC}/{pid}/environ", "rb") as handle:
                data = handle.read()
        except OSError:  # gone, or not ours to read
            continue
        for item in data.split(b"\0"):
            if item.startswith(prefix):
                found[pid] = os.fsdecode(item[len(prefix):])
                break
    return found




def start_time(pid: int) -> Optional[float]:
    """When process ``pid`` started, as epoch seconds; None if there is no such process."""
    if pid <= 0:
        return None
    if _have_proc():
        stat = _proc_stat(pid)
        return None if stat is None else _proc_start_time(stat[2])
    facts = _ps_facts(pid)
    return None if facts is None else facts[1]


#: The largest process id any system gives (pid_t is a C int); a larger number is no process.
MAX_PID = 2 ** 31 - 1


def pid_in(path: "os.PathLike[str]") -> Optional[int]:
    """The process id a pid file (the bash lock's ``pid``) holds, or None if it holds none."""
    from ..errors import UserError
    from ..files import read_bytes

    try:
        text = read_bytes(path, limit=64).strip()
    except UserError:  # none, not a plain file, or longer than any pid
        return None
    if not text.isdigit() or len(text) > 10:
        return None
    pid = int(text)
    return pid if 0 < pid <= MAX_PID else None


def reap(pid: int) -> bool:
    """Collect ``pid`` if it is our own child and has exited; True if it was collected.

    Reaping a child that a :class:`subprocess.Popen` object also tracks makes
    that object report return code 0 later; autometta never needs both.
    """
    if pid <= 0:
        return False
    try:
        done, _status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # not our child (or already collected)
        return False
    except OSError:
        return False
    return done == pid


def is_alive(pid: int, started: Optional[float] = None, *, tolerance: float = START_TOLERANCE) -> bool:
    """True if ``pid`` runs, is not a zombie and (given ``started``) is the same process.

    ``started`` is what :func:`start_time` said when the process was launched;
    a start time further than ``tolerance`` seconds from it means the pid now
    belongs to someone else. An exited child of ours is reaped on the way, so
    it does not linger as a zombie.
    """
    if not 0 < pid <= MAX_PID:  # a pid read from a file: a larger one overflows os.kill
        return False
    if reap(pid):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    if _have_proc():
        stat = _proc_stat(pid)
        if stat is None:
            return False
        state, _pgrp, ticks = stat
        begun = _proc_start_time(ticks)
    else:
        facts = _ps_facts(pid)
        if facts is None:
            return False
        state, begun = facts
    if state.startswith("Z"):
        return False
    if started is not None:
        if begun is None or abs(begun - started) > tolerance:
            return False
    return True


def _proc_group_scan(pgid: int) -> Optional[Tuple[List[int], int]]:
    """(live member pids, number of zombie members) of ``pgid`` from /proc; None if unreadable."""
    try:
        names = os.listdir(_PROC)
    except OSError:
        return None
    live: List[int] = []
    zombies = 0
    for name in names:
        if not name.isdigit():
            continue
        stat = _proc_stat(int(name))
        if stat is None or stat[1] != pgid:
            continue
        if stat[0].startswith("Z"):
            zombies += 1
        else:
            live.append(int(name))
    return sorted(live), zombies


def group_members(pgid: int) -> Optional[List[int]]:
    """Pids of the live (non-zombie) processes in group ``pgid``; None if we cannot tell.

    Linux scans /proc (a few ms for a few hundred processes); elsewhere one
    ``ps -A`` call.
    """
    if pgid <= 0:
        return []
    if _have_proc():
        scan = _proc_group_scan(pgid)
        return None if scan is None else scan[0]
    rows = _ps_group_members()
    if rows is None:
        return None
    return sorted(pid for pid, group, state in rows if group == pgid and not state.startswith("Z"))


def group_alive(pgid: int) -> bool:
    """True if process group ``pgid`` has a member that is not a zombie.

    ``killpg(pgid, 0)`` answers first. It counts zombies, and an agent's
    orphaned children stay zombies for good under a pid 1 that never reaps (as
    in many containers), so on Linux a group that exists is also looked up in
    /proc and counts as dead when all its members are zombies (one pass over
    /proc, a few ms, only when killpg says the group exists). Elsewhere the
    killpg answer stands. The group leader, if it is our exited child, is
    reaped first.
    """
    if pgid <= 1:
        return False
    reap(pgid)
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # members exist, under another user
    except OSError:
        return False
    if _have_proc():
        scan = _proc_group_scan(pgid)
        if scan is not None and not scan[0] and scan[1]:
            return False  # only zombies left
    return True


def signal_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` to process group ``pgid``; True if it was delivered.

    Never signals group 0 or 1, a negative group, or our own group.
    """
    if pgid <= 1 or pgid == os.getpgrp():
        return False
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    except OSError:
        return False
    return True


__all__ = ["START_TOLERANCE", "Row", "table", "environ_values", "start_time", "reap", "is_alive",
           "group_members", "group_alive", "signal_group"]

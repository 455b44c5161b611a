"""autometta.agents.liveness against real processes: start times, zombies, reused pids, groups.

Long-running children are ``cat`` reading a pipe: they end when the test
closes the pipe, so nothing here sleeps to wait for a process.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from autometta.agents import liveness  # noqa: E402
from tests.testing.waits import wait_for  # noqa: E402

LINUX_PROC = os.path.exists(f"/proc/{os.getpid()}/stat")
HAVE_WAITID = hasattr(os, "waitid") and hasattr(os, "WNOWAIT")  # macOS only from Python 3.13


def wait_exited_unreaped(pid: int) -> None:
    """Block until our child ``pid`` has exited, leaving it a zombie (not reaped)."""
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)


@pytest.fixture
def cat():
    """A live child that runs until its stdin is closed."""
    started_before = time.time()
    proc = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    proc.started_before = started_before  # type: ignore[attr-defined]
    proc.started_after = time.time()  # type: ignore[attr-defined]
    yield proc
    if proc.stdin and not proc.stdin.closed:
        proc.stdin.close()
    proc.wait(timeout=10)


def reaped_pid() -> int:
    """The pid of a child that has exited and been reaped: no such process now."""
    proc = subprocess.Popen(["true"])
    proc.wait(timeout=10)
    return proc.pid


# --------------------------------------------------------------------------- start_time


def test_start_time_of_self_is_before_now():
    started = liveness.start_time(os.getpid())
    assert started is not None
    assert started <= time.time() + liveness.START_TOLERANCE
    assert started > time.time() - 24 * 3600  # this test process is not a day old


def test_start_time_of_a_child_is_when_it_was_started(cat):
    started = liveness.start_time(cat.pid)
    assert started is not None
    assert cat.started_before - liveness.START_TOLERANCE <= started <= cat.started_after + liveness.START_TOLERANCE
    assert liveness.start_time(cat.pid) == started  # stable between readings


def test_start_time_of_no_process_is_none():
    assert liveness.start_time(reaped_pid()) is None
    assert liveness.start_time(0) is None
    assert liveness.start_time(-1) is None


@pytest.mark.skipif(not LINUX_PROC, reason="/proc parsing is Linux")
def test_stat_is_read_after_the_last_parenthesis(tmp_path):
    """``comm`` may hold spaces and parentheses; the fields after it must still parse."""
    link = tmp_path / "x) S 1 (y z"
    link.symlink_to(shutil.which("cat"))
    proc = subprocess.Popen([str(link)], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    try:
        raw = Path(f"/proc/{proc.pid}/stat").read_bytes()
        assert b"(x) S 1 (y z)" in raw  # the kernel really reports that name
        state, pgrp, _ticks = liveness._proc_stat(proc.pid)
        assert state in ("R", "S")
        assert pgrp == os.getpgrp()
        assert abs(liveness.start_time(proc.pid) - time.time()) < 5
        assert liveness.is_alive(proc.pid, liveness.start_time(proc.pid))
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)


@pytest.mark.skipif(not (LINUX_PROC and shutil.which("ps")), reason="compares /proc with ps")
def test_ps_fallback_agrees_with_proc(cat):
    """The macOS path (one ps call) gives the same answers as /proc, so it is exercised here too."""
    for pid in (os.getpid(), cat.pid):
        state, started = liveness._ps_facts(pid)
        assert state[0] in "RS"
        assert started is not None
        assert abs(started - liveness.start_time(pid)) <= liveness.START_TOLERANCE
    assert liveness._ps_facts(reaped_pid()) is None
    rows = liveness._ps_group_members()
    assert (cat.pid, os.getpgrp()) in {(pid, group) for pid, group, _state in rows}


# --------------------------------------------------------------------------- is_alive


def test_is_alive_for_a_running_child(cat):
    assert liveness.is_alive(cat.pid)
    assert liveness.is_alive(cat.pid, liveness.start_time(cat.pid))
    assert liveness.is_alive(os.getpid(), liveness.start_time(os.getpid()))


def test_a_reused_pid_is_not_our_process(cat):
    """Same pid, different start time: the pid now belongs to someone else."""
    started = liveness.start_time(cat.pid)
    assert not liveness.is_alive(cat.pid, started - 3600)
    assert not liveness.is_alive(cat.pid, started + 3 * liveness.START_TOLERANCE)
    assert liveness.is_alive(cat.pid, started + liveness.START_TOLERANCE / 2)  # within tolerance: same process


def test_is_alive_for_a_reaped_pid_is_false():
    pid = reaped_pid()
    assert not liveness.is_alive(pid)
    assert not liveness.is_alive(pid, time.time())
    assert not liveness.is_alive(0)
    assert not liveness.is_alive(-1)


@pytest.mark.skipif(not HAVE_WAITID, reason="needs os.waitid with WNOWAIT to keep a zombie")
def test_an_exited_child_is_dead_and_gets_reaped():
    proc = subprocess.Popen(["true"])
    wait_exited_unreaped(proc.pid)
    if LINUX_PROC:
        assert liveness._proc_stat(proc.pid)[0] == "Z"  # a zombie: kill(pid, 0) still succeeds
        os.kill(proc.pid, 0)
    assert not liveness.is_alive(proc.pid)
    with pytest.raises(ChildProcessError):  # is_alive reaped it
        os.waitpid(proc.pid, os.WNOHANG)
    assert liveness.start_time(proc.pid) is None
    proc.wait(timeout=10)  # Popen learns it is gone (it reports 0: the status went to is_alive)


ZOMBIE_PARENT = textwrap.dedent("""\
    import os, subprocess, sys
    child = subprocess.Popen(["true"], start_new_session=True)
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # exited, left unreaped
    print(child.pid, flush=True)
    sys.stdin.read()
""")


@pytest.mark.skipif(not HAVE_WAITID, reason="needs os.waitid with WNOWAIT to keep a zombie")
def test_someone_elses_zombie_is_dead_and_so_is_its_group():
    """A zombie we cannot reap (another process's child), alone in its process group."""
    parent = subprocess.Popen([sys.executable, "-c", ZOMBIE_PARENT], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([parent.stdout], [], [], 20)
        assert ready, "helper did not report its zombie"
        zombie = int(parent.stdout.readline())
        assert not liveness.is_alive(zombie)
        if LINUX_PROC:
            assert liveness.start_time(zombie) is not None  # still in the process table
            os.killpg(zombie, 0)  # the group "exists" as far as killpg knows
            assert not liveness.group_alive(zombie)  # but it holds only a zombie
            assert liveness.group_members(zombie) == []
    finally:
        parent.stdin.close()
        parent.wait(timeout=10)
        parent.stdout.close()


# --------------------------------------------------------------------------- groups


GROUP = "sleep 30 & echo $!; wait"


def test_group_alive_and_signal_group_stop_a_whole_group():
    leader = subprocess.Popen(["sh", "-c", GROUP], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    try:
        ready, _, _ = select.select([leader.stdout], [], [], 20)
        assert ready
        grandchild = int(leader.stdout.readline())
        assert os.getpgid(grandchild) == leader.pid
        assert liveness.group_alive(leader.pid)
        assert liveness.group_members(leader.pid) == sorted([leader.pid, grandchild])
        assert liveness.signal_group(leader.pid, signal.SIGTERM)
        assert leader.wait(timeout=10) == -signal.SIGTERM
        # the grandchild is not ours: nothing to wait on but the process table
        wait_for(lambda: not liveness.group_alive(leader.pid))
        assert not liveness.is_alive(grandchild)
    finally:
        if liveness.group_alive(leader.pid):
            liveness.signal_group(leader.pid, signal.SIGKILL)
        leader.wait(timeout=10)
        leader.stdout.close()


def test_a_finished_group_is_not_alive():
    pid = reaped_pid()
    assert not liveness.group_alive(pid)
    assert not liveness.signal_group(pid, signal.SIGTERM)
    assert liveness.group_members(pid) == []


@pytest.mark.skipif(not HAVE_WAITID, reason="needs os.waitid with WNOWAIT to keep a zombie")
def test_group_alive_reaps_our_exited_group_leader():
    proc = subprocess.Popen(["true"], start_new_session=True)
    wait_exited_unreaped(proc.pid)
    assert not liveness.group_alive(proc.pid)
    with pytest.raises(ChildProcessError):
        os.waitpid(proc.pid, os.WNOHANG)
    proc.wait(timeout=10)


@pytest.mark.parametrize("pgid", [0, 1, -1, -os.getpgrp()])
def test_signal_group_refuses_special_groups(pgid):
    assert not liveness.signal_group(pgid, signal.SIGTERM)
    assert not liveness.group_alive(pgid)


def test_signal_group_never_signals_our_own_group():
    assert not liveness.signal_group(os.getpgrp(), signal.SIGTERM)  # we are still here to assert it
    assert liveness.group_alive(os.getpgrp())


@pytest.mark.parametrize("pid", [0, -5, 2 ** 31, 10 ** 30])
def test_a_pid_outside_the_range_read_from_a_file_is_no_live_process(pid):
    """A pid from a file an agent can write (an open-run note of the spend ledger): a large one
    overflowed os.waitpid and os.kill (OverflowError)."""
    assert liveness.is_alive(pid) is False
    assert liveness.is_alive(pid, 12345.0) is False

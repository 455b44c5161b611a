"""autometta.agents.processes and the process table under it, against real processes.

A run's processes are found by the mark in their environment, by the
runner's process group and by descent from the runner; stopping a run
SIGTERMs all of them and SIGKILLs what stays. Long-lived processes are
``sleep`` started for the test and stopped at teardown.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import List

import pytest

from autometta.agents import liveness, processes
from autometta.agents.spawn import LaunchSpec, launch, read_exit

LINUX_PROC = os.path.exists(f"/proc/{os.getpid()}/stat")


class Started:
    """Processes a test starts; each prints the pids it wants us to know, one per line, then keeps running.

    Every pid started or told of is SIGKILLed at teardown.
    """

    def __init__(self) -> None:
        self.pids: List[int] = []
        self.procs: List[subprocess.Popen] = []

    def sh(self, script: str, env=None, new_session: bool = False) -> int:
        proc = subprocess.Popen(["sh", "-c", script], stdout=subprocess.PIPE, text=True, env=env,
                                start_new_session=new_session)
        self.pids.append(proc.pid)
        self.procs.append(proc)
        return proc.pid

    def line(self) -> int:
        pid = int(self.procs[-1].stdout.readline().split()[-1])
        self.pids.append(pid)
        return pid

    def close(self) -> None:
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        for proc in self.procs:
            proc.wait(timeout=10)
            proc.stdout.close()


@pytest.fixture
def started():
    s = Started()
    yield s
    s.close()


#: Prints ``<its argument> <its pid>`` once it runs as it will (no exec after: /proc shows an environment
#: that is not being replaced), then sleeps; ``ignore`` as its argument also makes it ignore SIGTERM.
SLEEPER = (f"'{sys.executable}' -c 'import os, signal, sys, time; "
           "sys.argv[1] == \"ignore\" and signal.signal(signal.SIGTERM, signal.SIG_IGN); "
           "print(sys.argv[1], os.getpid(), flush=True); time.sleep(60)'")


def _env(mark: str) -> dict:
    return {"PATH": os.environ.get("PATH", os.defpath), processes.ENV: mark}


def test_marks_chain_and_belong():
    mark = processes.new_mark()
    assert len(mark) == 24 and mark != processes.new_mark()
    assert processes.chained(mark) == mark
    assert processes.chained("b", "a") == "a,b" and processes.chained("b", "a,b") == "a,b"
    assert processes.own_mark("a,b") == "b" and processes.own_mark(None) is None
    assert processes.carries("a,b", "a") and processes.carries("a,b", "b") and not processes.carries("ab", "a")
    assert not processes.carries("a", None) and not processes.carries(None, "a")


def test_the_table_knows_our_parent_group_and_start():
    rows = {row.pid: row for row in liveness.table()}
    me = rows[os.getpid()]
    assert me.ppid == os.getppid() and me.pgid == os.getpgrp() and not me.zombie
    assert abs(me.started - liveness.start_time(os.getpid())) <= liveness.START_TOLERANCE


def test_environ_values_reads_what_a_process_was_started_with(started):
    mark = processes.new_mark()
    pid = started.sh(f"exec {SLEEPER} me", env=_env(mark))
    assert started.line() == pid
    assert liveness.environ_values(processes.ENV, [pid]) == {pid: mark}
    assert liveness.environ_values(processes.ENV)[pid] == mark
    assert os.getpid() not in (liveness.environ_values(processes.ENV) or {})


def test_the_ps_environment_parser():
    text = (" 12 /bin/sh -c x PATH=/bin AUTOMETTA_RUN_ID=abc,def HOME=/h\n"
            "   13 sleep 5 AUTOMETTA_RUN_ID=zzz\n 14 AUTOMETTA_RUN_IDX=no\n garbage\n")
    assert liveness.parse_ps_environ(text, "AUTOMETTA_RUN_ID") == {12: "abc,def", 13: "zzz"}


@pytest.mark.skipif(not (LINUX_PROC and os.path.exists("/bin/ps")), reason="compares /proc with ps")
def test_the_ps_table_agrees_with_proc(started):
    pid = started.sh(f"exec {SLEEPER} me")
    assert started.line() == pid
    ps = {row.pid: row for row in liveness._ps_table()}
    mine = {row.pid: row for row in liveness.table()}
    for p in (os.getpid(), pid):
        assert ps[p][:3] == mine[p][:3]
        assert abs(ps[p].started - mine[p].started) <= liveness.START_TOLERANCE


def test_find_by_mark_group_and_descent(started):
    mark = processes.new_mark()
    # the leader of a new group; a marked child that leaves the group; an unmarked child that stays in it
    leader = started.sh(f"setsid {SLEEPER} e & env -u AUTOMETTA_RUN_ID {SLEEPER} u & wait",
                        env=_env(mark), new_session=True)
    told = dict(started.procs[-1].stdout.readline().split() for _ in range(2))  # each once it runs as it will
    escapee, unmarked = int(told["e"]), int(told["u"])
    started.pids += [escapee, unmarked]
    stranger = started.sh(f"exec {SLEEPER} s", env=_env(processes.new_mark()))
    assert started.line() == stranger
    assert processes.find(processes.Run(mark=mark)) == sorted([leader, escapee])
    assert processes.find(processes.Run(pgid=leader)) == sorted([leader, unmarked])
    assert processes.find(processes.Run(root=leader)) == sorted([escapee, unmarked])
    everything = processes.find(processes.Run(mark=mark, pgid=leader, root=leader))
    assert everything == sorted([leader, escapee, unmarked]) and stranger not in everything
    assert processes.find(processes.Run(mark=mark), exclude=[leader]) == [escapee]
    assert [pid for pid, _ in processes.marked(mark)] == [leader, escapee]  # oldest first
    assert processes.runner_of(mark)[0] == leader
    assert processes.carries_mark(escapee, mark) and not processes.carries_mark(stranger, mark)
    assert processes.find(processes.Run()) == [] and processes.marked(None) == []


def test_stop_terms_then_kills_what_stays(started):
    mark = processes.new_mark()
    stubborn = started.sh(f"exec {SLEEPER} ignore", env=_env(mark))
    assert started.line() == stubborn
    polite = started.sh(f"exec {SLEEPER} polite", env=_env(mark))
    assert started.line() == polite
    began = time.monotonic()
    signalled = processes.stop(processes.Run(mark=mark), grace=0.3)
    assert sorted(signalled) == sorted([stubborn, polite])
    assert time.monotonic() - began < 5
    assert not liveness.is_alive(stubborn) and not liveness.is_alive(polite)
    assert processes.stop(processes.Run(mark=mark)) == []  # nothing left: returns at once


def test_a_stop_sent_while_the_runner_starts_still_gets_an_exit_record(tmp_path):
    """launch forks the runner with SIGTERM blocked; it takes it once its handlers are in place."""
    spec = LaunchSpec(argv=["sh", "-c", "echo started > out.txt; exec sleep 60"], cwd=tmp_path,
                      env={"PATH": os.environ.get("PATH", os.defpath)}, log_path=tmp_path / "agent.log",
                      exit_path=tmp_path / "agent.exit.json")
    launched = launch(spec)
    os.kill(launched.pid, signal.SIGTERM)  # its interpreter is still starting
    os.waitpid(launched.pid, 0)
    record = read_exit(spec.exit_path)
    assert record is not None and record["signal"] == signal.SIGTERM and record["run_id"] == launched.run_id
    assert processes.find(processes.Run(mark=launched.run_id)) == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_CHILD_SUBREAPER is Linux")
def test_a_subreaper_adopts_the_orphans_of_its_children(tmp_path):
    code = ("import os, subprocess, sys, time\n"
            "sys.path.insert(0, sys.argv[1])\n"
            "from autometta.agents import processes as supervise\n"
            "assert supervise.become_subreaper()\n"
            "out = subprocess.run(['sh', '-c', 'sleep 60 >/dev/null 2>&1 & echo $!'],\n"
            "                     capture_output=True, text=True).stdout\n"
            "orphan = int(out)\n"
            "print(os.getpid(), orphan, flush=True)\n"
            "ppid = int(open(f'/proc/{orphan}/stat').read().rsplit(')', 1)[1].split()[1])\n"
            "print(ppid, flush=True)\n"
            "os.kill(orphan, 9); os.waitpid(orphan, 0)\n")
    out = subprocess.run([sys.executable, "-c", code, str(Path(__file__).resolve().parents[2])],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    (me, _orphan), (parent,) = [list(map(int, line.split())) for line in out.stdout.splitlines()]
    assert parent == me  # re-parented to the subreaper, not to init

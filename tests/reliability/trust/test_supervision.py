"""Ways an agent could outlive its supervision, each tried serially, in lanes and with ``isolation: tree``.

An agent may fork a ``setsid`` child, clean the environment it gives that
child, double-fork so the child is orphaned, write files under ``state/``
(a runner record naming a stranger's process, its own exit record), and its
runner may be killed. Afterwards nothing of the run may still be running and
nobody else's process may have been touched. What cannot be caught (an
escapee with neither the mark nor the group, once its runner is gone) is said
in docs/dispatch-contract.md.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from autometta.agents import liveness, processes
from autometta.paths import RepoPaths
from tests.testing.tick_processes import await_pid, runner_pids
from tests.testing.ticks import PASS_WORKER, read_state, stage, tick_once
from tests.testing.waits import read_fifo

SID = "01-hello"
LINUX = sys.platform.startswith("linux")


def _escapee(path: Path) -> int:
    return int(path.read_text().strip())


def _ready(tmp_path: Path) -> Path:
    """A FIFO the worker writes to once it has set up what the test looks at (``read_fifo`` reads it)."""
    fifo = tmp_path / "ready.fifo"
    os.mkfifo(fifo)
    return fifo


def _await_runners(repo: Path) -> None:
    """Wait for the live runner processes of the stage (found by their command line, not by state.yaml)."""
    from autometta.agents.roles import ROLES

    for role in ROLES:
        for pid in runner_pids(repo, SID, role):
            await_pid(pid)


def _settle(home: Path, repo: Path, limit: int = 12) -> None:
    for _ in range(limit):
        tick_once(home)
        _await_runners(repo)
        if stage(repo, SID)["status"] not in ("pending", "in_progress"):
            return
    raise AssertionError(f"not settled: {stage(repo, SID)}")


def _gone(*pids: int) -> None:
    for pid in pids:
        await_pid(pid, timeout=30)
        assert not liveness.is_alive(pid), f"pid {pid} still runs"


def test_a_setsid_child_does_not_survive_the_worker_timeout(setup, lanes, tmp_path):
    repo, home, add = setup
    esc = tmp_path / "esc.pid"
    add(SID, f"setsid sleep 300 & echo $! > '{esc}'; sleep 300", worker_budget="1 second")
    tick_once(home)
    runner = stage(repo, SID)["worker_pid"]
    await_pid(runner)  # the runner stops the run at 1.5 x the budget
    _gone(_escapee(esc))
    tick_once(home)
    s = stage(repo, SID)
    assert (s["status"], s["stall_marker"]) == ("stalled", "worker_timeout")
    record = json.loads((repo / "state" / "logs" / f"{SID}-worker.exit.json").read_text())
    assert record["timed_out"] is True  # the exit record was written, escapee and all


@pytest.mark.skipif(not LINUX, reason="the runner is a child subreaper on Linux only")
def test_an_orphaned_child_with_a_clean_environment_is_caught_while_the_runner_lives(setup, lanes, tmp_path):
    """``env -i`` drops the mark, ``setsid`` leaves the group, the subshell's exit orphans it."""
    repo, home, add = setup
    esc, ready = tmp_path / "esc.pid", _ready(tmp_path)
    add(SID, f"(env -i setsid sh -c 'echo $$ > \"{esc}\"; printf x > \"{ready}\"; exec sleep 300' &); sleep 300",
        worker_budget="1 second")
    tick_once(home)
    runner = stage(repo, SID)["worker_pid"]
    read_fifo(ready)
    pid = _escapee(esc)
    assert b"AUTOMETTA_RUN_ID" not in Path(f"/proc/{pid}/environ").read_bytes()
    assert os.getsid(pid) == pid
    await_pid(runner)
    _gone(pid)


def test_a_child_left_writing_after_the_worker_exits_is_stopped_before_the_verifier(setup, lanes, tmp_path):
    """A worker that hands off and leaves a setsid loop writing to the tree it handed off."""
    repo, home, add = setup
    esc = tmp_path / "esc.pid"
    loop = "while :; do echo late >> hello.txt; sleep 0.05; done"
    add(SID, f"setsid sh -c '{loop}' & echo $! > '{esc}'; " + PASS_WORKER.replace("{id}", SID))
    tick_once(home)
    _await_runners(repo)
    _gone(_escapee(esc))
    _settle(home, repo)
    s = stage(repo, SID)
    assert s["status"] == "completed", s
    from tests.testing.ticks import git

    committed = git(repo, "show", f"{s['commit']}:hello.txt")
    assert committed.startswith("hello\n") and (repo / "hello.txt").read_text() == committed  # nothing wrote after


@pytest.mark.parametrize("how", ["tick", "repair"])
def test_a_killed_runner_leaves_nothing_running_and_the_stage_says_so(setup, lanes, run, tmp_path, how):
    repo, home, add = setup
    esc, ready = tmp_path / "esc.pid", _ready(tmp_path)
    add(SID, f"setsid sleep 300 & echo $! > '{esc}'; printf x > '{ready}'; sleep 300")
    tick_once(home)
    s = stage(repo, SID)
    runner, mark = s["worker_pid"], s["worker_run_id"]
    read_fifo(ready)
    escapee = _escapee(esc)
    procs_of_run = [pid for pid, _start in processes.marked(mark) if pid != runner]
    assert escapee in procs_of_run
    os.kill(runner, signal.SIGKILL)
    os.waitpid(runner, 0)
    assert procs_of_run, "the agent should still run after its runner was killed"

    beat = run("heartbeat", str(repo))
    assert beat.code == 0 and f"{repo}: 1 running agent(s) (1 unsupervised)" in beat.out, beat.out
    assert "its runner is gone without an exit record" in beat.out

    if how == "tick":
        tick_once(home)
    else:
        res = run("tick", "--repair")
        assert res.code == 0 and "is gone without an exit record" in res.out, res.out
        assert "nothing to repair" not in res.out
    _gone(*procs_of_run)
    s = stage(repo, SID)
    assert (s["status"], s["stall_marker"]) == ("stalled", "runner_lost"), s
    assert s["worker_pid"] is None and read_state(repo)["current_stage"] is None
    tick_once(home)  # the next tick settles the kill and retires the agent
    beat = run("heartbeat", str(repo))
    assert f"{repo}: 0 running agent(s)" in beat.out, beat.out


def _stranger() -> int:
    """A process of somebody else's: not ours to wait for (its parent exits), in a session of its own."""
    out = subprocess.run(["sh", "-c", "setsid sleep 300 >/dev/null 2>&1 & echo $!"], capture_output=True,
                         text=True, check=True).stdout
    return int(out)


def test_a_runner_record_naming_a_stranger_is_not_adopted(setup, lanes, tmp_path):
    """The worker writes the verifier's runner record (no verifier runs yet) naming someone else's process."""
    repo, home, add = setup
    stranger = _stranger()
    try:
        forged = json.dumps({"pid": stranger, "pgid": stranger, "started": liveness.start_time(stranger),
                             "started_at": "2026-01-01T00:00:00Z", "run_id": None})
        target = f"\"$AUTOMETTA_REPO/state/logs/{SID}-verifier.runner.json\""
        add(SID, f"printf '%s' '{forged}' > {target}; " + PASS_WORKER.replace("{id}", SID))
        _settle(home, repo)
        s = stage(repo, SID)
        assert s["status"] == "completed", s
        assert liveness.is_alive(stranger), "autometta killed a process that was not its own"
        assert not (RepoPaths(repo).logs / f"{SID}-verifier.runner.json").exists() or \
            json.loads((RepoPaths(repo).logs / f"{SID}-verifier.runner.json").read_text())["pid"] != stranger
    finally:
        os.kill(stranger, signal.SIGKILL)


def test_a_worker_that_writes_its_own_exit_record_is_still_supervised(setup, lanes, tmp_path):
    """An exit record written while the runner still runs is not taken as the end of the run."""
    repo, home, add = setup
    gate, ready = tmp_path / "gate", _ready(tmp_path)
    os.mkfifo(gate)
    record = json.dumps({"pid": 1, "runner_pid": 1, "exit_code": 0, "signal": None, "started_at": None,
                         "ended_at": None, "seconds": 0, "timed_out": False, "error": None})
    target = f"\"$AUTOMETTA_REPO/state/logs/{SID}-worker.exit.json\""
    add(SID, PASS_WORKER.replace("{id}", SID) + f"; printf '%s' '{record}' > {target}; printf x > '{ready}'; "
             f"read x < '{gate}'; echo late >> hello.txt")
    tick_once(home)
    runner = stage(repo, SID)["worker_pid"]
    read_fifo(ready)  # the worker has handed off and forged its record; it now waits on the gate
    kinds = [o.kind for o in tick_once(home)]
    assert stage(repo, SID)["worker_pid"] == runner, ("taken as finished", kinds)
    assert stage(repo, SID)["verifier_pid"] is None
    with open(gate, "w") as handle:
        handle.write("go\n")
    await_pid(runner)
    _settle(home, repo)
    s = stage(repo, SID)
    from tests.testing.ticks import git

    assert s["status"] == "completed", s
    assert git(repo, "show", f"{s['commit']}:hello.txt") == "hello\nlate\n"  # what it did last was judged


def test_an_agent_that_kills_its_own_runner_is_stopped_by_the_next_tick(setup, lanes, tmp_path):
    """The runner is the agent's parent: ``kill -9 $PPID`` leaves the agent with nobody watching its budget."""
    repo, home, add = setup
    ready = _ready(tmp_path)
    add(SID, f"kill -9 $PPID; printf x > '{ready}'; sleep 300")
    tick_once(home)
    s = stage(repo, SID)
    read_fifo(ready)
    await_pid(s["worker_pid"])  # the runner, killed by its own agent
    left = [pid for pid, _start in processes.marked(s["worker_run_id"])]
    assert left, "the agent should have outlived its runner"
    tick_once(home)
    _gone(*left)
    s = stage(repo, SID)
    assert (s["status"], s["stall_marker"]) == ("stalled", "runner_lost"), s

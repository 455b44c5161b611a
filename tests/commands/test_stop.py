"""``autometta stop REPO STAGE_ID``: a stage in flight stopped cleanly, left ``stopped`` for ``requeue``.

Real processes and real git: the agents are script-family commands that
wait (a FIFO nobody writes, or ``sleep``), the stop ends them and what they
started, the runner still writes its exit record, the stage is accounted and
``stopped``; ``requeue`` then runs it to the end.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from autometta.agents import liveness, processes
from tests.testing.tick_processes import await_pid
from tests.testing.ticks import PASS_WORKER, git, read_budget, read_state, run_until_quiet, stage, tick_once
from tests.testing.waits import read_fifo

SID = "01-hello"


def _once_then(flag: Path, first: str, then: str) -> str:
    """A command that runs ``first`` the first time (and marks ``flag``), ``then`` every later time."""
    return f"if [ ! -e '{flag}' ]; then : > '{flag}'; {first}; fi; {then}"


def _lanes(repo: Path) -> None:
    manifest = repo / ".autometta.local.yaml"
    manifest.write_text(manifest.read_text() + "max_parallel: 2\n")


def _run_processes(s: dict, role: str) -> list:
    return [pid for pid, _start in processes.marked(s[f"{role}_run_id"])]


def test_stop_ends_the_worker_and_what_it_started_then_requeue_runs_it_again(setup, run, tmp_path):
    repo, home, add = setup
    ready, escaped = tmp_path / "ready", tmp_path / "esc"
    os.mkfifo(ready)
    worker = _once_then(tmp_path / "ran", f"setsid sleep 300 & echo $! > '{escaped}'; printf x > '{ready}'; sleep 300",
                        PASS_WORKER.replace("{id}", SID))
    add(SID, worker)
    tick_once(home)
    s = stage(repo, SID)
    assert s["status"] == "in_progress"
    runner = s["worker_pid"]
    read_fifo(ready)  # the worker has started its escapee (a stop before that would never start it)
    ours = _run_processes(s, "worker")
    assert int(escaped.read_text()) in ours  # it left the group, not the run's mark
    failures = read_budget(repo).get("consecutive_failures")

    res = run("stop", str(repo), SID)
    assert res.code == 0, res.err
    assert f"stopped: {SID} in {repo} (was running: worker;" in res.err
    assert f"autometta requeue {repo} {SID}" in res.err
    for pid in [runner, *ours]:
        await_pid(pid)
        assert not liveness.is_alive(pid)
    s = stage(repo, SID)
    assert (s["status"], s["stall_marker"]) == ("stopped", "stopped_by_operator")
    assert s["worker_pid"] is None and s["worker_run_id"] is None
    assert read_state(repo)["current_stage"] is None
    record = json.loads((repo / "state" / "logs" / f"{SID}-worker.exit.json").read_text())
    assert record["signal"] == signal.SIGTERM and record["run_id"]  # the runner wrote its record
    assert read_budget(repo).get("consecutive_failures") == failures  # a stop is not a failure
    assert "stopped: 01-hello" in "".join(p.read_text() for p in (home / "log").glob("tick-*.log"))

    assert tick_once(home)[0].kind in ("idle", "wait", "noop")  # a stopped stage waits for a person
    assert stage(repo, SID)["status"] == "stopped"
    res = run("requeue", str(repo), SID)
    assert res.code == 0, res.err
    run_until_quiet(home, repo)
    assert stage(repo, SID)["status"] == "completed"
    assert git(repo, "log", "-1", "--format=%s").startswith(f"{SID}:")


def test_stop_a_verifier_in_a_lane_keeps_the_lane_for_review(setup, run, tmp_path):
    repo, home, add = setup
    _lanes(repo)
    from tests.testing.ticks import verifier_writes

    ready = tmp_path / "ready"
    os.mkfifo(ready)
    add(SID, verifier_cmd=_once_then(tmp_path / "ran", f"printf x > '{ready}'; sleep 300", verifier_writes(SID)))
    tick_once(home)
    await_pid(stage(repo, SID)["worker_pid"])
    tick_once(home)
    s = stage(repo, SID)
    assert s["verifier_pid"], s
    read_fifo(ready)  # the verifier took its first branch (a stop before that never started it)
    ours = [s["verifier_pid"], *_run_processes(s, "verifier")]
    assert set(ours) - {s["verifier_pid"]}, ours  # the verifier, beside its runner

    res = run("stop", str(repo), SID, "--grace", "5")
    assert res.code == 0, res.err
    assert "was running: verifier" in res.err
    for pid in ours:
        await_pid(pid)
    s = stage(repo, SID)
    assert s["status"] == "stopped" and s["verifier_pid"] is None
    assert Path(s["worktree"]).is_dir() and s["branch"] == f"autometta/{SID}"  # kept until requeued
    assert run("tick", "--repair").out.count("remove orphaned worktree") == 0
    assert run("requeue", str(repo), SID).code == 0
    run_until_quiet(home, repo)
    assert stage(repo, SID)["status"] == "completed"
    assert (repo / "hello.txt").read_text() == "hello\n"


def test_stop_the_acceptance_command_that_ignores_sigterm(setup, run, tmp_path):
    """SIGTERM is ignored (the shell and its sleep): SIGKILL after the grace, and still an exit record."""
    repo, home, add = setup
    ready = tmp_path / "ready"
    os.mkfifo(ready)
    add(SID, acceptance=f"trap '' TERM; printf x > '{ready}'; sleep 300")
    tick_once(home)
    await_pid(stage(repo, SID)["worker_pid"])
    tick_once(home)
    s = stage(repo, SID)
    assert s["acceptance_pid"], s
    read_fifo(ready)  # the command runs (and ignores SIGTERM) now
    ours = [s["acceptance_pid"], *_run_processes(s, "acceptance")]
    res = run("stop", str(repo), SID, "--grace", "0.3")
    assert res.code == 0, res.err
    for pid in ours:
        await_pid(pid)
        assert not liveness.is_alive(pid)
    assert stage(repo, SID)["status"] == "stopped"
    record = json.loads((repo / "state" / "logs" / f"{SID}-acceptance.exit.json").read_text())
    assert record["signal"] == signal.SIGKILL


def test_stop_after_the_runner_was_killed_stops_what_it_left(setup, run, tmp_path):
    repo, home, add = setup
    ready = tmp_path / "ready"
    os.mkfifo(ready)
    add(SID, f"printf x > '{ready}'; sleep 300")
    tick_once(home)
    s = stage(repo, SID)
    read_fifo(ready)  # the agent runs
    agent = _run_processes(s, "worker")
    assert agent
    os.kill(s["worker_pid"], signal.SIGKILL)
    os.waitpid(s["worker_pid"], 0)
    assert run("stop", str(repo), SID).code == 0
    for pid in agent:
        await_pid(pid)
        assert not liveness.is_alive(pid)
    assert stage(repo, SID)["status"] == "stopped"


def test_stop_in_the_tree_takes_the_workers_own_commit_off_the_branch(setup, run, tmp_path):
    """isolation: tree: the worker commits on the user's branch, then waits; stopped, its commit does not stay."""
    repo, home, add = setup
    manifest = repo / ".autometta.local.yaml"
    manifest.write_text(manifest.read_text() + "isolation: tree\n")
    ready = tmp_path / "ready"
    os.mkfifo(ready)
    before = git(repo, "rev-parse", "HEAD").strip()
    add(SID, "printf 'own\\n' > own.txt && git add own.txt && "
             "git -c user.name=sneaky -c user.email=sneaky@local commit -qm 'worker commits itself' && "
             f"printf x > '{ready}'; sleep 300")
    claimed = git(repo, "rev-parse", "HEAD").strip()  # add-stage committed the card
    tick_once(home)
    s = stage(repo, SID)
    assert s["worker_pid"] and not s.get("worktree"), s
    read_fifo(ready)  # the worker has committed on the branch and sleeps
    ours = [s["worker_pid"], *_run_processes(s, "worker")]
    assert set(ours) - {s["worker_pid"]}, ours  # the worker, beside its runner
    assert git(repo, "log", "-1", "--format=%s").strip() == "worker commits itself"

    res = run("stop", str(repo), SID, "--grace", "2")
    assert res.code == 0, res.err
    for pid in ours:
        await_pid(pid)
        assert not liveness.is_alive(pid)
    assert stage(repo, SID)["status"] == "stopped"
    assert git(repo, "rev-parse", "HEAD").strip() == claimed != before  # the worker's commit is off the branch
    assert (repo / "own.txt").read_text() == "own\n"  # its change is left in the tree for review


@pytest.mark.parametrize("status", ["pending", "completed"])
def test_stop_refuses_a_stage_not_in_flight(setup, run, status):
    repo, home, add = setup
    add(SID)
    if status == "completed":
        run_until_quiet(home, repo)
    res = run("stop", str(repo), SID)
    assert res.code == 1
    assert res.err.strip() == (f"autometta stop: stage {SID} is {status}, not in flight; only an in_progress "
                               "stage can be stopped")
    res = run("stop", str(repo), "09-nope")
    assert res.code == 1 and "no stage 09-nope" in res.err
    assert run("stop", str(repo), SID, "--grace", "-1").code == 2

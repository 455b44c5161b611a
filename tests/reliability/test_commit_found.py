"""A commit is found again: a tick killed after (or while) git commits a stage records the commit that landed.

The tick writes ``commit_from`` (HEAD before) and ``commit_run_id`` (the mark
git and its hooks carry) into state.yaml before git starts. Killed after the
commit, the next tick finds the stage's commit on the branch (its subject,
author and trailer) and records its real sha; killed during a slow
pre-commit hook, the next ticks wait for that git to finish rather than
commit again into its lock, then record what landed. Serial, lanes and ``isolation: tree``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from autometta.agents import processes
from tests.testing.env import ROOT
from tests.testing.tick_processes import await_all_runners, await_pid, tick_process, tick_until_settled
from tests.testing.ticks import git, read_state, stage, tick_once
from tests.testing.waits import read_fifo

SID = "01-hello"


def _to_the_verdict(setup) -> str:
    """Queue the stage and tick until only the commit is left; HEAD of the base branch before it."""
    repo, home, add = setup
    add(SID)
    start = git(repo, "rev-parse", "HEAD").strip()
    for _ in range(2):  # claim + worker, then reap + verifier
        tick_once(home)
        await_all_runners(repo)
    run = stage(repo, SID).get("verifier_run_artefact")
    assert run and (repo / run).exists(), stage(repo, SID)  # the verdict its verifier run wrote
    return start


def _landed(repo: Path, start: str) -> None:
    subjects = git(repo, "log", "--format=%s", f"{start}..master").splitlines()
    assert [s for s in subjects if s.startswith(f"{SID}:")] == [f"{SID}: Say hello"], subjects
    s = stage(repo, SID)
    assert s["status"] == "completed", s
    assert s["commit"] == git(repo, "log", "-1", "--format=%H", f"--grep=^{SID}:", "master").strip()


def test_a_tick_killed_after_the_commit_records_its_real_sha(setup, lanes):
    repo, home, _ = setup
    start = _to_the_verdict(setup)
    killed = tick_process(fault="commit.after")
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert stage(repo, SID)["status"] == "in_progress" and stage(repo, SID).get("commit_run_id")
    tick_until_settled(home, repo)
    _landed(repo, start)
    assert "found its commit" in "".join(p.read_text() for p in (home / "log").glob("tick-*.log"))


HOOK = """#!/bin/sh
[ -e "{flag}" ] && exit 0
: > "{flag}"
printf x > "{started}"
read x < "{go}"
"""


def test_a_tick_killed_during_a_slow_hook_waits_for_that_commit_then_records_it(setup, lanes, tmp_path):
    repo, home, _ = setup
    start = _to_the_verdict(setup)
    started, go = tmp_path / "started.fifo", tmp_path / "go.fifo"
    os.mkfifo(started)
    os.mkfifo(go)
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_text(HOOK.format(flag=tmp_path / "hook-ran", started=started, go=go))
    hook.chmod(0o755)

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("AUTOMETTA_FAULT", None)
    ticking = subprocess.Popen([sys.executable, "-m", "autometta", "tick"], cwd=str(ROOT), env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    read_fifo(started)  # the hook runs: git commit is under way
    ticking.kill()
    ticking.wait(timeout=30)
    mark = stage(repo, SID)["commit_run_id"]
    hooked = [pid for pid, _start in processes.marked(mark)]
    assert hooked, "git and its hook should outlive the tick that started them"

    outcomes = tick_once(home)  # the commit still runs: wait, do not commit into its lock
    assert outcomes[0].kind == "wait", outcomes
    s = stage(repo, SID)
    assert s["status"] == "in_progress" and not s.get("commit") and not s.get("stall_marker"), s

    with open(go, "w") as handle:
        handle.write("go\n")
    for pid in hooked:
        await_pid(pid)
    tick_until_settled(home, repo)
    _landed(repo, start)
    assert read_state(repo)["current_stage"] is None

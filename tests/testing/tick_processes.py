"""Helpers for the reliability suite: subprocess ticks, awaiting detached agents, invariants."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

from autometta.agents import liveness
from autometta.agents.roles import ROLES
from autometta.books import budget as budgets, state
from autometta.paths import RepoPaths
from tests.testing.env import ROOT
from tests.testing.ticks import QUIET, read_state, tick_once



def repeats(default: int) -> int:
    """``AUTOMETTA_RELIABILITY_REPEAT`` overrides a repeat count (bench/faults.py sets the full one)."""
    value = os.environ.get("AUTOMETTA_RELIABILITY_REPEAT")
    return int(value) if value and value.isdigit() else default


def tick_process(*args: str, fault: Optional[str] = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m autometta tick ...`` in a child process, optionally with a fault armed."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("AUTOMETTA_FAULT", None)
    if fault:
        env["AUTOMETTA_FAULT"] = fault
    return subprocess.run([sys.executable, "-m", "autometta", "tick", *args], cwd=str(ROOT), env=env,
                          capture_output=True, text=True, timeout=timeout)


def await_pid(pid: int, timeout: float = 60.0) -> None:
    """Block until ``pid`` has exited: waitpid for our children, a pidfd (or the process table) otherwise."""
    try:
        os.waitpid(pid, 0)
        return
    except ChildProcessError:
        pass
    deadline = time.monotonic() + timeout
    opener = getattr(os, "pidfd_open", None)
    if opener is not None:
        try:
            fd = opener(pid)
        except OSError:
            return  # already gone
        try:
            select.select([fd], [], [], timeout)
        finally:
            os.close(fd)
        return
    while liveness.is_alive(pid) and time.monotonic() < deadline:  # pragma: no cover - no pidfd
        time.sleep(0.02)


def runner_pids(repo: Path, stage_id: str, role: str) -> List[int]:
    """Live runner processes whose exit record is this stage's ``role`` record."""
    exit_path = str(RepoPaths(repo).exit_record(stage_id, role))
    found = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                argv = handle.read().split(b"\0")
            with open(f"/proc/{entry}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if fields[0] == b"Z":
            continue
        if b"--exit-file" in argv and os.fsencode(exit_path) in argv:
            found[int(entry)] = int(fields[1])
    # a runner's child between fork and exec still shows the runner's command line
    return [pid for pid, ppid in found.items() if ppid not in found]


def await_all_runners(repo: Path) -> None:
    """Wait for every runner of every stage, recorded in state or not (orphans of a killed tick)."""
    for s in read_state(repo)["stages"]:
        for role in ROLES:
            for pid in set(runner_pids(repo, s["id"], role)) | ({int(s[f"{role}_pid"])} if s.get(f"{role}_pid") else set()):
                await_pid(pid)


def assert_one_runner_per_stage(repo: Path) -> None:
    for s in read_state(repo)["stages"]:
        for role in ROLES:
            live = runner_pids(repo, s["id"], role)
            assert len(live) <= 1, f"{s['id']} has {len(live)} live {role}s: {live}"


def assert_documents_valid(repo: Path) -> Dict:
    """state.yaml and budget.json parse and pass their schemas; returns the state."""
    paths = RepoPaths(repo)
    doc = state.load_state(paths)
    budgets.load_budget(paths)
    ids = state.stage_ids(doc)
    assert len(ids) == len(set(ids)), f"duplicated stage: {ids}"
    return doc


def tick_until_settled(home: Path, repo: Path, limit: int = 30) -> List[str]:
    """Tick in-process, awaiting all agents between ticks, until no stage is in progress or a quiet tick."""
    kinds = []
    for _ in range(limit):
        outcomes = tick_once(home)
        kinds.append(outcomes[0].kind if outcomes else "none")
        assert_one_runner_per_stage(repo)
        await_all_runners(repo)
        doc = read_state(repo)
        busy = any(s.get("status") == "in_progress" for s in doc["stages"])
        if kinds[-1] in QUIET and not busy:
            return kinds
    raise AssertionError(f"not settled after {limit} ticks: {kinds}")

"""Supervision with the real ``claude`` and ``codex`` CLIs: the run's mark reaches the tools they run, and a
``setsid`` child a tool call leaves behind does not outlive the worker.

Each CLI works one stage (the other family verifies it) against the scripted
model server. The worker's first tool call, run by the CLI's own shell tool
(claude's Bash, codex's exec_command inside its bubblewrap sandbox), saves
``$AUTOMETTA_RUN_ID`` as the tool sees it and starts ``setsid sleep`` in the
background, orphaned; the worker then writes its deliverable and handoff and
ends. When its runner has exited, no process of the run may be left (found
by the mark, and by looking for that ``sleep`` under the test's folder), and
the stage lands as usual.

What the test measured on this machine is the point: that both CLIs pass
``AUTOMETTA_RUN_ID`` to the commands their tools run (codex drops variables
whose names hold KEY, SECRET or TOKEN), so autometta can find those. Seen
with claude 2.1.332 and codex 0.171.0: claude's Bash tool leaves the
``setsid`` child running and the runner stops it when claude exits ("stopping
1 process(es) the agent left running" in the worker log); codex's
exec_command, under its bubblewrap sandbox, has ended it itself by then.

Skips like tests/e2e/test_tick_real_clis.py.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Dict, List

import pytest

from autometta.agents import processes
from autometta.paths import HomePaths, RepoPaths
from autometta.tick import loop as tick
from tests.e2e.test_tick_real_clis import (CLAUDE, CODEX, DEADLINE, FAMILY, _stop_group,
                                           agent_key, await_agents, envelope, subscribed,
                                           verdict)
from tests.testing.model_server import ModelServer, Turn, shell, text, verdict_path, write_file
from tests.testing.repos import CARD, make_repo
from tests.testing.ticks import commit_all, git, read_state

STAGES = {"01-claude-forks": (CLAUDE, CODEX), "02-codex-forks": (CODEX, CLAUDE)}


def escapees(top: Path) -> List[int]:
    """Live ``sleep 300`` processes working under ``top`` (the test's folder)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            argv = Path(f"/proc/{name}/cmdline").read_bytes().split(b"\0")
            cwd = os.readlink(f"/proc/{name}/cwd")
            state = Path(f"/proc/{name}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if argv[:2] == [b"sleep", b"300"] and cwd.startswith(str(top)) and state != b"Z":
            found.append(int(name))
    return found


def build_script(repo: Path, marks: Path) -> Dict[str, List[Turn]]:
    """As tests/e2e/test_tick_real_clis.py's, with the worker's fork first (each stage in its worktree)."""
    paths = RepoPaths(repo)
    script: Dict[str, List[Turn]] = {}
    for stage_id, (worker, verifier) in STAGES.items():
        family = FAMILY[worker]
        work = repo / ".autometta" / "worktrees" / stage_id
        fork = (f"printf '%s' \"$AUTOMETTA_RUN_ID\" > '{marks}/{stage_id}'; "
                "(setsid sleep 300 </dev/null >/dev/null 2>&1 &); echo forked")
        if family == "claude":
            made = [write_file(str(work / "out" / f"{stage_id}.txt"), f"{stage_id}\n"),
                    write_file(str(paths.handoff(stage_id)), envelope(stage_id, worker))]
        else:
            made = [write_file(f"out/{stage_id}.txt", f"{stage_id}\n"),
                    shell("printf '%s' '" + envelope(stage_id, worker).replace("'", "'\\''")
                          + "' > \"$AUTOMETTA_HANDOFF\"")]
        script[f"{family}:worker:{stage_id}"] = [shell(fork), *made, text("Wrote the file and the handoff.")]
        script[f"{FAMILY[verifier]}:verifier:{stage_id}"] = [
            write_file(verdict_path(stage_id), verdict(stage_id, verifier, f"{stage_id} lands")),  # as its prompt names
            text("Verdict written: PASS."),
        ]
    return script


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="looks for leftovers in /proc")
def test_a_tool_calls_setsid_child_does_not_outlive_the_worker(clis, run, tmp_path, home_dir, monkeypatch):
    deadline = time.monotonic() + DEADLINE
    repo = make_repo(tmp_path / "proj")
    marks = tmp_path / "tmp" / "marks"  # under the agents' TMPDIR: codex's sandbox lets them write there
    marks.mkdir(parents=True)
    with ModelServer(build_script(repo, marks), key=agent_key) as server:
        subscribed(run, repo, monkeypatch, clis, server.url, tmp_path)
        # claude's default (acceptEdits) refuses a redirection outside the worktree and setsid: an agent
        # that means to escape runs with everything allowed, as under bypass
        manifest = RepoPaths(repo).manifest
        manifest.write_text(manifest.read_text() + "permissions:\n  claude:\n    mode: bypass\n")
        for stage_id, (worker, verifier) in STAGES.items():
            card = repo / "docs" / "stages" / f"{stage_id}.md"
            card.parent.mkdir(parents=True, exist_ok=True)
            card.write_text(CARD.format(stage_id=stage_id, title=f"Stage {stage_id}", worker=worker,
                                        verifier=verifier).replace("10 minutes", "1 minute"))
        commit_all(repo, "two stages whose workers fork")
        for stage_id in STAGES:
            assert run("add-stage", str(repo), str(repo / "docs" / "stages" / f"{stage_id}.md")).code == 0
        seen: Dict[str, str] = {}
        try:
            for _ in range(20):
                if time.monotonic() > deadline:
                    pytest.fail("the stages did not finish in time")
                (outcome,) = tick.run_tick(HomePaths(home_dir), echo=False)
                running = {s["id"]: s.get("worker_run_id") for s in read_state(repo)["stages"]
                           if s.get("worker_pid")}
                await_agents(repo, deadline)
                for stage_id, mark in running.items():  # the worker's runner has exited: nothing of it is left
                    seen[stage_id] = mark
                    assert processes.marked(mark) == [], (stage_id, processes.marked(mark))
                    assert escapees(tmp_path) == [], f"{stage_id}: a setsid child outlived the worker"
                if outcome.kind in ("wait", "noop", "halt", "halted", "error") and not any(
                        s["status"] == "in_progress" for s in read_state(repo)["stages"]):
                    break
        finally:
            for pid in escapees(tmp_path):
                _stop_group(pid)
        problems = list(server.problems)
    assert problems == []
    states = {s["id"]: (s["status"], s.get("stall_marker")) for s in read_state(repo)["stages"]}
    assert states == dict.fromkeys(STAGES, ("completed", None)), states
    for stage_id in STAGES:
        # the CLI's shell tool saw the run's mark: autometta can find what its tools start
        assert (marks / stage_id).read_text() == seen[stage_id], stage_id
        assert git(repo, "log", "-1", "--format=%s", f"--grep=^{stage_id}:").startswith(f"{stage_id}:")

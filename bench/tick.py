"""The tick's own overhead: idle ticks over 1, 10 and 100 repos, and per transition.

Usage: python3 bench/tick.py [--repos 1,10,100] [--runs 5] [--stages 5] [--parallel 3] [--python PATH]

Idle: a full ``autometta tick`` through the built pyz (a fresh process, as
cron runs it) over N subscribed repos with nothing queued; a ``git`` shim on
PATH counts subprocess calls, which must be zero. Transitions: stages of
the script family run in-process; for each tick we record wall time and the
tick process's own CPU time (getrusage of this process, so git and the
agents, which are child processes, are excluded). Both are run again with
``max_parallel`` set (``--parallel``, default 3): idle repos must still make
no git call, and a lane tick's CPU is reported per transition it made.
Every stage runs in a worktree of its own (at max_parallel 1 too); the
transitions are run once more with ``isolation: tree`` (the stage in the
repo's own tree) for comparison. Git calls per transition are counted with
the same shim.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autometta.tick import loop as tick  # noqa: E402
from autometta.commands.add_stage import add_stage  # noqa: E402
from autometta.commands.init_host import init_host  # noqa: E402
from autometta.commands.subscribe import subscribe  # noqa: E402
from autometta.paths import HomePaths  # noqa: E402
from autometta.books.state import load_state  # noqa: E402
from autometta.paths import RepoPaths  # noqa: E402


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, stdout=subprocess.DEVNULL)


def make_world(base: Path, n: int, parallel: int = 1, tree: bool = False) -> HomePaths:
    hp = HomePaths(base / "home")
    os.environ["PHAT_CONTROLLER_HOME"] = str(hp.root)  # the books of the repos made here go there too
    init_host(hp, say=lambda _l: None)
    for i in range(n):
        repo = base / f"repo{i:03d}"
        repo.mkdir()
        git(repo, "init", "-q")
        git(repo, "config", "user.name", "bench")
        git(repo, "config", "user.email", "bench@localhost")
        subscribe(hp, str(repo), say=lambda _l: None)
        if parallel > 1 or tree:
            with open(repo / ".autometta.local.yaml", "a") as handle:
                handle.write(f"max_parallel: {parallel}\n" if parallel > 1 else "isolation: tree\n")
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", "subscribe")
    return hp


def git_shim(base: Path) -> tuple:
    shim = base / "shim"
    shim.mkdir()
    counter = base / "git-calls"
    counter.write_text("")
    real = shutil.which("git")
    (shim / "git").write_text(f"#!/bin/sh\necho \"$@\" >> {counter}\nexec {real} \"$@\"\n")
    (shim / "git").chmod(0o755)
    return shim, counter


def idle(n: int, runs: int, python: str, pyz: Path, parallel: int = 1) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        hp = make_world(base, n, parallel)
        shim, counter = git_shim(base)
        env = {**os.environ, "PHAT_CONTROLLER_HOME": str(hp.root), "PATH": f"{shim}:{os.environ['PATH']}"}
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run([python, str(pyz), "tick", "--quiet"], env=env, check=True)
            times.append(time.perf_counter() - start)
        calls = len(counter.read_text().splitlines())
        lanes = f" (max_parallel {parallel})" if parallel > 1 else ""
        print(f"idle tick over {n:>3} repos{lanes}: median {statistics.median(times) * 1000:7.1f} ms "
              f"({statistics.median(times) * 1000 / n:6.2f} ms/repo), git calls: {calls}")


def transitions(stages: int, parallel: int = 1, tree: bool = False) -> None:
    sys.path.insert(0, str(ROOT))
    from tests.testing.ticks import await_agents, script_card

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        hp = make_world(base, 1, parallel, tree)
        shim, counter = git_shim(base)
        path = os.environ["PATH"]
        os.environ["PATH"] = f"{shim}:{path}"
        repo = base / "repo000"
        for i in range(stages):
            script_card(repo, f"{i:02d}-bench-{i}", worker_cmd=(
                f"printf x > f{i}.txt && printf '%s' '{{\"stage_id\":\"{i:02d}-bench-{i}\",\"status\":\"pass\","
                f"\"deliverables\":[\"f{i}.txt\"],\"notes\":\"ok\"}}' > \"$AUTOMETTA_HANDOFF\""))
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", "cards")
        for i in range(stages):
            add_stage(str(repo), str(repo / "docs" / "stages" / f"{i:02d}-bench-{i}.md"))
        walls, cpus, kinds, ticks, calls = [], [], [], 0, []
        for _ in range(stages * 4):
            counter.write_text("")
            before = resource.getrusage(resource.RUSAGE_SELF)
            start = time.perf_counter()
            before_count = load_state(RepoPaths(repo.resolve())).get("tick_count") or 0
            outcomes = tick.run_tick(hp, echo=False)
            wall = time.perf_counter() - start
            ticks += 1
            made = (load_state(RepoPaths(repo.resolve())).get("tick_count") or 0) - before_count
            after = resource.getrusage(resource.RUSAGE_SELF)
            await_agents(repo)
            if outcomes and made > 0:
                calls.extend([len(counter.read_text().splitlines()) / made] * made)
                walls.extend([wall / made] * made)
                cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
                cpus.extend([cpu / made] * made)
                kinds.append(outcomes[0].kind)
            doc = load_state(RepoPaths(repo.resolve()))
            if all(s["status"] == "completed" for s in doc["stages"]):
                break
        os.environ["PATH"] = path
        lanes = f"max_parallel {parallel}: " if parallel > 1 else ("isolation tree: " if tree else "")
        print(f"{lanes}{stages} stages done in {ticks} ticks; transitions: {len(walls)} "
              f"({', '.join(sorted(set(kinds)))})")
        print(f"  wall per transition:       median {statistics.median(walls) * 1000:6.1f} ms, "
              f"max {max(walls) * 1000:6.1f} ms (includes git and process start)")
        print(f"  autometta CPU/transition:  median {statistics.median(cpus) * 1000:6.1f} ms, "
              f"max {max(cpus) * 1000:6.1f} ms (target < 50 ms)")
        print(f"  git calls/transition:      median {statistics.median(calls):6.1f}, max {max(calls):6.1f}, "
              f"total {sum(calls):.0f}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repos", default="1,10,100")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--stages", type=int, default=5)
    parser.add_argument("--parallel", type=int, default=3, help="max_parallel for the lane runs (1: skip them)")
    parser.add_argument("--python", default=sys.executable)
    args = parser.parse_args()
    python = os.path.realpath(args.python)
    subprocess.run([python, str(ROOT / "build_pyz.py")], check=True, stdout=subprocess.DEVNULL)
    print(f"interpreter: {python}")
    for n in (int(x) for x in args.repos.split(",")):
        idle(n, args.runs, python, ROOT / "dist" / "autometta.pyz")
    transitions(args.stages)
    transitions(args.stages, tree=True)
    if args.parallel > 1:
        for n in (int(x) for x in args.repos.split(",")):
            idle(n, args.runs, python, ROOT / "dist" / "autometta.pyz", args.parallel)
        transitions(args.stages, args.parallel)
    return 0


if __name__ == "__main__":
    sys.exit(main())

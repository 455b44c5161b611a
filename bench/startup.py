"""Start-up cost of autometta's commands, through the built pyz, as a ratio to a bare Python start.

Usage: python3 bench/startup.py [--python PATH] [--runs 15] [--pyz PATH] [--only tick1,status,...]

For each command, ``--runs`` pairs of child processes: ``python -c pass``,
then ``python autometta.pyz <command>``; each one's CPU time is user+sys of
the child (and of any process it waited for, so the demo's git and agents
count), and the figure is the median of the per-pair ratios, so the load on a
shared machine affects both halves of a pair alike. Each command is measured
with a warm bytecode cache (filled by a first run) and a cold one (an empty
cache folder for every run: the first run after installing a new build).

Commands: ``tick1``/``tick100`` (an idle tick over 1 and 100 subscribed repos
with nothing queued), ``status`` (one repo), ``version`` (``--version``) and
``demo`` (the whole loop on a scratch repo). Targets (issue 17, warm): tick1
and status 4x, version 1.5x, tick100 15x. The floor is printed first: a
zipapp whose ``__main__.py`` does nothing (Python imports ``runpy`` and reads
the zip to start any zipapp).

The pyz is built with ``--no-source`` (or given with ``--pyz``, e.g. an older
build to compare with), and the children get their own controller home,
``XDG_CACHE_HOME`` and ``XDG_STATE_HOME``: no build ledger, so ``status``
does not ask git whether the pyz is older than its checkout.
"""

from __future__ import annotations

import argparse
import os
import shutil
import zipfile
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autometta.commands.init_host import init_host  # noqa: E402
from autometta.commands.subscribe import subscribe  # noqa: E402
from autometta.paths import HomePaths  # noqa: E402

COMMANDS = ("tick1", "tick100", "status", "version", "demo")
TARGETS = {"tick1": 4.0, "tick100": 15.0, "status": 4.0, "version": 1.5}


def cpu_ms(argv: Sequence[str], env: Dict[str, str], cwd: str) -> float:
    """User+sys CPU of the child (and the children it waited for), in ms; it must exit 0."""
    proc = subprocess.Popen(list(argv), env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    err = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    proc.returncode = os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status >> 8
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}: {err.strip()[-500:]}")
    return (usage.ru_utime + usage.ru_stime) * 1000


def _load() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, stdout=subprocess.DEVNULL)


def idle_home(base: Path, repos: int) -> Path:
    """A controller home with ``repos`` subscribed git repos, nothing queued."""
    hp = HomePaths(base / "home")
    init_host(hp, say=lambda _line: None)
    for i in range(repos):
        repo = base / f"repo{i:03d}"
        repo.mkdir()
        git(repo, "init", "-q")
        git(repo, "config", "user.name", "bench")
        git(repo, "config", "user.email", "bench@localhost")
        subscribe(hp, str(repo), say=lambda _line: None)
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", "subscribe")
    return hp.root


def build(python: str, out: Path) -> Path:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    subprocess.run([python, str(ROOT / "build_pyz.py"), "--output", str(out), "--no-source"], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    return out


def measure(python: str, argv_for: Callable[[int], List[str]], env_for: Callable[[int], Dict[str, str]],
            runs: int, cwd: str) -> tuple:
    """(median ratio, median command ms, median bare ms) over ``runs`` pairs."""
    ratios, cmd, bare = [], [], []
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    for i in range(runs):
        b = cpu_ms([python, "-c", "pass"], base_env, cwd)
        c = cpu_ms(argv_for(i), env_for(i), cwd)
        ratios.append(c / b)
        cmd.append(c)
        bare.append(b)
    return statistics.median(ratios), statistics.median(cmd), statistics.median(bare)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--python", default=sys.executable, help="an absolute interpreter (default: this one)")
    parser.add_argument("--runs", type=int, default=15, help="pairs per command and cache state (default 15)")
    parser.add_argument("--pyz", help="measure this pyz instead of building one")
    parser.add_argument("--only", default=",".join(COMMANDS), help=f"a comma list of {', '.join(COMMANDS)}")
    args = parser.parse_args(argv)
    python = os.path.abspath(args.python)
    wanted = [c.strip() for c in args.only.split(",") if c.strip()]
    unknown = [c for c in wanted if c not in COMMANDS]
    if unknown:
        parser.error(f"unknown command(s) {', '.join(unknown)}; choose from {', '.join(COMMANDS)}")
    version = subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"], check=True,
                             stdout=subprocess.PIPE, universal_newlines=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="autometta-startup-") as tmp:
        base = Path(tmp)
        pyz = Path(args.pyz).resolve() if args.pyz else build(python, base / "autometta.pyz")
        homes = {}
        if "tick1" in wanted or "status" in wanted:
            homes[1] = idle_home(base / "one", 1)
        if "tick100" in wanted:
            homes[100] = idle_home(base / "hundred", 100)
        state_home = base / "xdg-state"
        warm_cache = base / "cache-warm"
        cold = {"n": 0}

        def env(home: Optional[Path], cache: Path) -> Dict[str, str]:
            out = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
            out.update(XDG_CACHE_HOME=str(cache), XDG_STATE_HOME=str(state_home),
                       PHAT_CONTROLLER_HOME=str(home or base / "home-unused"))
            return out

        def cold_cache() -> Path:
            cold["n"] += 1
            folder = base / f"cache-cold-{cold['n']}"
            return folder

        def argv(command: str, i: int, mode: str) -> List[str]:
            if command in ("tick1", "tick100"):
                return [python, str(pyz), "tick", "--quiet"]
            if command == "status":
                return [python, str(pyz), "status"]
            if command == "version":
                return [python, str(pyz), "--version"]
            folder = base / f"demo-{mode}-{i}"
            return [python, str(pyz), "demo", "--dir", str(folder)]

        print(f"interpreter: {python} (Python {version}); load average {_load()}")
        print(f"pyz: {pyz}; {args.runs} pairs per figure; CPU = user+sys of the child and what it waited for")
        empty = base / "empty.pyz"
        with zipfile.ZipFile(empty, "w") as archive:
            archive.writestr("__main__.py", "")
        floor = measure(python, lambda i: [python, str(empty)], lambda i: env(None, warm_cache), args.runs, tmp)
        print(f"floor: an empty zipapp costs {floor[0]:.2f}x ({floor[1]:.1f} ms)")
        rows = []
        for command in wanted:
            home = homes.get(100 if command == "tick100" else 1) if command.startswith(("tick", "status")) else None
            # a first run of each: writes the dashboard page and the tick log, fills the warm cache
            cpu_ms(argv(command, -1, "warm"), env(home, warm_cache), tmp)
            warm = measure(python, lambda i, c=command: argv(c, i, "warm"), lambda i: env(home, warm_cache),
                           args.runs, tmp)
            cold_run = measure(python, lambda i, c=command: argv(c, i, "cold"), lambda i: env(home, cold_cache()),
                               args.runs, tmp)
            for folder in base.glob("cache-cold-*"):
                shutil.rmtree(folder, ignore_errors=True)
            rows.append((command, warm, cold_run))
        print(f"{'command':<10} {'warm':>7} {'(ms)':>8} {'cold':>7} {'(ms)':>8}  target (warm)   python -c pass")
        for command, warm, cold_run in rows:
            target = TARGETS.get(command)
            verdict = "" if target is None else f"<= {target:g}x {'met' if warm[0] <= target else 'NOT met'}"
            print(f"{command:<10} {warm[0]:6.2f}x {warm[1]:7.1f}  {cold_run[0]:6.2f}x {cold_run[1]:7.1f}  "
                  f"{verdict:<15} {warm[2]:.1f} ms")
        print(f"load average at the end: {_load()} ({os.cpu_count()} CPUs; other processes slow both halves of "
              "a pair alike, but a busy machine still moves the ratios)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Time ``autometta status`` through the built pyz over 1, 10 and 100 repos.

Usage: python3 bench/status.py [--repos 1,10,100] [--runs 5] [--python PATH]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autometta.books import budget, state
from autometta import home  # noqa: E402
from autometta.paths import HomePaths, RepoPaths  # noqa: E402


def make_home(base: Path, n: int) -> Path:
    hp = HomePaths(base / "home")
    os.environ["PHAT_CONTROLLER_HOME"] = str(hp.root)  # the books of the repos made here go there too
    (hp.subscribers).mkdir(parents=True)
    for i in range(n):
        repo = base / f"repo{i:03d}"
        (repo / ".git").mkdir(parents=True)
        paths = RepoPaths(repo)
        paths.state_dir.mkdir()
        state.save_state(paths, state.initial_state())
        budget.save_budget(paths, budget.initial_budget())
        (hp.subscribers / f"repo{i:03d}.yaml").write_text(home.render_subscriber(repo, paths.manifest, 100))
    return hp.root


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repos", default="1,10,100")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--python", default=sys.executable)
    args = parser.parse_args()
    pyz = ROOT / "dist" / "autometta.pyz"
    subprocess.run([args.python, str(ROOT / "build_pyz.py")], check=True, stdout=subprocess.DEVNULL)
    print(f"interpreter: {os.path.realpath(args.python)}")
    for n in (int(x) for x in args.repos.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            home_dir = make_home(Path(tmp), n)
            env = {**os.environ, "PHAT_CONTROLLER_HOME": str(home_dir)}
            times = []
            for _ in range(args.runs):
                start = time.perf_counter()
                subprocess.run([args.python, str(pyz), "status"], env=env, check=True, stdout=subprocess.DEVNULL)
                times.append(time.perf_counter() - start)
            print(f"status over {n:>3} repos: median {statistics.median(times) * 1000:7.1f} ms "
                  f"(min {min(times) * 1000:.1f} ms, {args.runs} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

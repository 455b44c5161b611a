"""Block until one registered agent exits (0) or stays stuck past the grace window (2).

Bad input -- a pid that is not a number or not registered -- exits 3. Each
poll runs the heartbeat and prints a line; the watcher never kills the
agent. Poll and grace: ``PHAT_CONTROLLER_WATCH_POLL`` (60 s) and
``PHAT_CONTROLLER_WATCH_STALL_GRACE`` (120 s); stuck means the heartbeat's
``stuck`` or ``over-budget``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..errors import UserError
from ..observe import settings, watch
from ..paths import HomePaths, RepoPaths


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("repo", metavar="REPO", help="the repo the agent is registered in")
    parser.add_argument("pid", metavar="PID", help="the registered pid")
    parser.add_argument("label", metavar="LABEL", nargs="?", help="a name for the output lines (default pid-PID)")

    def error(message: str):  # bad input is exit 3 here, as documented since the bash version
        parser.exit(watch.BAD_INPUT, f"{parser.prog}: {message} (see '{parser.prog} --help')\n")

    parser.error = error  # type: ignore[assignment]
    lenient = parser.parse_known_args

    def strict(args=None, namespace=None):  # extra arguments are bad input too, not a usage error of autometta
        parsed, extras = lenient(args, namespace)
        if extras:
            error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras

    parser.parse_known_args = strict  # type: ignore[assignment]


def run(args: argparse.Namespace) -> int:
    repo = Path(os.path.realpath(args.repo))
    if not repo.is_dir():
        print(f"autometta watch: {repo}: no such folder", file=sys.stderr)
        return watch.BAD_INPUT
    if not args.pid.isdigit() or int(args.pid) <= 0:
        print(f"autometta watch: refusing non-numeric pid: {args.pid}", file=sys.stderr)
        return watch.BAD_INPUT
    hp = HomePaths.from_env()
    try:
        conf = settings.from_home(hp)
    except UserError as exc:
        print(f"autometta watch: {exc.message}", file=sys.stderr)
        return watch.BAD_INPUT
    return watch.watch(RepoPaths(repo), int(args.pid), args.label, conf, sys.stdout, sys.stderr)

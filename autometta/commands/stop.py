"""Stop a stage in flight now: its worker, acceptance command, verifier, worktree setup or merge recheck.

Everything the stage's runs started gets SIGTERM (the runner's process
group and every process marked with the run's id, ``setsid`` children
included), then SIGKILL after ``--grace`` seconds. What they spent is
accounted, and the stage is left ``stopped`` until you run ``autometta
requeue REPO STAGE_ID``; the stage keeps its worktree and branch for
review. Waits (up to 30 s) for a tick that holds the repo.
"""

from __future__ import annotations

import argparse
import sys

from .. import home, manifest
from ..agents import stopstage
from ..errors import UsageError
from ..paths import HomePaths, RepoPaths
from ..repo import RepoContext
from ..ticklog import TickLog
from .common import resolve_repo


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("repo", help="the repo the stage runs in")
    parser.add_argument("stage_id", metavar="STAGE_ID", help="the stage to stop")
    parser.add_argument("--grace", type=float, default=stopstage.DEFAULT_GRACE, metavar="SECONDS",
                        help=f"seconds between SIGTERM and SIGKILL (default {stopstage.DEFAULT_GRACE:g})")


def run(args: argparse.Namespace) -> int:
    if not (args.grace >= 0):
        raise UsageError(f"--grace needs a number of seconds, 0 or more, got {args.grace}")
    paths = RepoPaths(resolve_repo(args.repo))
    hp = HomePaths.from_env()
    sub = home.find_subscriber(hp, paths.root) if hp.subscribers.is_dir() else None
    config = home.load_config(hp)
    ctx = RepoContext(paths=paths, home=hp, config=config,
                      manifest=manifest.load_manifest(paths, sub.manifest_path if sub else None))
    stopped = stopstage.locked_stop(ctx, args.stage_id, args.grace)
    note = (f"stopped: {args.stage_id} in {paths.root} (was running: {stopped.previous}; {stopped.summary()}); "
            f"'autometta requeue {paths.root} {args.stage_id}' runs it again")
    if hp.root.is_dir():
        TickLog(hp, echo=False)(note)
    print(note, file=sys.stderr)
    return 0

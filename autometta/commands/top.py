"""One terminal screen to watch and steer every agent: what needs you first, and the keys to act on it.

The header says when the controller last ticked and what schedules it, and
what was spent today against the caps. Below it, the repos and their
stages, the ones that need a person first (halted, stalled, failed, a merge
conflict, a stuck agent, parked), then what runs, then the queue. The
selected row's detail has four tabs: the agent's activity (its CLI's log,
read as the ticker reads it), the diff of the stage's worktree or commit,
the verdict with its evidence, and the controller log's lines about the repo.

Keys: up/down (or j/k) move, enter opens the detail, tab (or 1-4) picks a
tab, s stops the selected stage, r requeues it, m merges it again, h resets
the repo's halt, t runs one tick now, a attaches the repo's tmux viewer,
? is help and q quits. Every action asks first (y), runs the same code as
its command (autometta stop, requeue, requeue --retry-merge, tick
--reset-halt, tick, attach) and shows that command's one-line result.
--read-only turns the actions off, for a shared screen.

It reads the files every second, cheaply (no git and no process for an
idle repo; the diff tab runs git while it is shown) and never takes a
repo's lock itself. It needs a terminal of 80x24 or more (colour unless
NO_COLOR is set); without one it says so in one line and names
'autometta status --watch', which works anywhere.
"""

from __future__ import annotations

import argparse
import os

from ..errors import UserError
from ..paths import HomePaths


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("repo", metavar="REPO", nargs="?", help="one repo (default: every subscribed repo)")
    parser.add_argument("--read-only", action="store_true", help="watch only: the action keys are off")


def run(args: argparse.Namespace) -> int:
    from .. import home as homes
    from ..observe import settings, topapp
    from ..observe.topdata import Source

    hp = HomePaths.from_env()
    scope = None
    if args.repo:
        scope = os.path.realpath(args.repo)
        if not os.path.isdir(scope):
            raise UserError(f"{scope}: no such folder; give the repo's path")
    else:
        homes.require_home(hp)
    topapp.check_terminal()
    source = Source(hp, settings.from_home(hp), scope)
    return topapp.main(source, read_only=args.read_only, scope=scope)

"""Open the tmux viewer for a repo: repo status, the controller log, and its agent ticker.

The session is ``autometta-<repo name>`` (``PHAT_CONTROLLER_TMUX_SESSION``
overrides; ``AUTOMETTA_TMUX_SOCKET`` picks a private tmux server). It is
created when missing, and a session that lost its ticker pane gets it back.
``--ensure`` only makes sure it exists (no attach; without tmux a warning
and exit 0); ``--dry-run`` prints the session and the three pane commands.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ..errors import UsageError, UserError
from ..observe import tmux
from ..paths import HomePaths


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("repo", metavar="REPO", nargs="?", default=".", help="the repo (default: .)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="print the session and pane commands; change nothing")
    mode.add_argument("--ensure", action="store_true", help="create the session if it is missing; do not attach")
    parser.add_argument("--json", action="store_true", help="with --dry-run: print them as JSON")


def run(args: argparse.Namespace) -> int:
    if args.json and not args.dry_run:
        raise UsageError("--json goes with --dry-run")
    repo = Path(os.path.realpath(args.repo))
    if not repo.is_dir():
        raise UserError(f"{repo}: no such folder; give the repo's path")
    view = tmux.viewer(repo, HomePaths.from_env())
    if args.dry_run:
        if args.json:
            print(json.dumps(dict(view.as_dict(), tmux=tmux.tmux_argv()), indent=2))
        else:
            print(f"tmux session: {view.session}")
            print(f"tmux command: {' '.join(tmux.tmux_argv())}")
            print(f"repo: {view.repo}")
            print(f"status pane: {view.status}")
            print(f"log pane: {view.log}")
            print(f"ticker pane: {view.ticker}")
        return 0
    if not tmux.available():
        if args.ensure:
            print("WARN tmux not found; the attach viewer is optional (install tmux to use it)", file=sys.stderr)
            return 0
        raise UserError("tmux not found on PATH; the viewer needs it (apt install tmux, or brew install tmux)")
    print(tmux.ensure(view))
    if args.ensure:
        return 0
    tmux.attach(view)
    return 0

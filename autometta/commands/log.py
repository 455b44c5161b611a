"""Print the controller's tick log; with --follow keep printing, moving to each new day's file.

The tick writes one file per local day (``log/tick-YYYY-MM-DD.log``);
``--follow`` keeps going past midnight, where ``tail -f`` on one file would
fall silent. Ctrl-C stops it. ``--repo REPO`` shows only the lines about
that repo (the tick tags each with the repo's path; the tag is left out).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from ..errors import UserError
from ..observe.logtail import Follower, RepoFilter
from ..paths import HomePaths
from ..secrets import redact

POLL_SECONDS = 1.0


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--follow", "-f", action="store_true", help="keep printing new lines (Ctrl-C stops)")
    parser.add_argument("--lines", "-n", type=int, default=20, metavar="N", help="last N lines first (default 20)")
    parser.add_argument("--repo", metavar="REPO", help="only the lines about this repo")


def run(args: argparse.Namespace) -> int:
    keep = None
    if args.repo:
        path = os.path.realpath(args.repo)
        if not os.path.isdir(path):
            raise UserError(f"{path}: no such folder; give the repo's path")
        keep = RepoFilter(path)
    follower = Follower(HomePaths.from_env(), keep=keep)
    out = sys.stdout
    try:
        out.write(redact(follower.start(args.lines)))  # lines older than masking, or quoting an agent
        out.flush()
        while args.follow:
            time.sleep(POLL_SECONDS)
            text = follower.poll()
            if text:
                out.write(redact(text))
                out.flush()
    except KeyboardInterrupt:
        return 0
    return 0

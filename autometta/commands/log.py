"""Print the controller's tick log; with --follow keep printing, moving to each new day's file.

The tick writes one file per local day (``log/tick-YYYY-MM-DD.log``);
``--follow`` keeps going past midnight, where ``tail -f`` on one file would
fall silent. Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import sys
import time

from ..observe.logtail import Follower
from ..paths import HomePaths
from ..secrets import redact

POLL_SECONDS = 1.0


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--follow", "-f", action="store_true", help="keep printing new lines (Ctrl-C stops)")
    parser.add_argument("--lines", "-n", type=int, default=20, metavar="N", help="last N lines first (default 20)")


def run(args: argparse.Namespace) -> int:
    follower = Follower(HomePaths.from_env())
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

"""The agent ticker: what needs you (with the command that addresses each), every running agent
(role, family, stage, age, tokens, last log line), recent exits and what is scheduled.

Without REPO it shows every enabled subscribed repo. It redraws in place on
a terminal every ``PHAT_CONTROLLER_TICKER_INTERVAL`` seconds (5), prints
plain frames otherwise, and stops on Ctrl-C. It only reads: the heartbeat
runs in memory, nothing is written.
"""

from __future__ import annotations

import argparse
import json
import time

from ..observe import screen, settings, tickers
from ..paths import HomePaths


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("repo", metavar="REPO", nargs="?", help="one repo (default: every subscribed repo)")
    parser.add_argument("--once", action="store_true", help="draw once and exit")
    parser.add_argument("--json", action="store_true", help="print the view once as JSON")


def run(args: argparse.Namespace) -> int:
    hp = HomePaths.from_env()
    conf = settings.from_home(hp)
    repos = tickers.target_repos(hp, args.repo)
    if args.json:
        print(json.dumps(tickers.agents_view(hp, repos, conf, time.time()), indent=2))
        return 0

    def render(width: int):  # the repo list is read again each frame: a new subscription shows up
        current = tickers.target_repos(hp, args.repo)
        return tickers.agents_lines(tickers.agents_view(hp, current, conf, time.time()), width)

    return screen.run(render, conf.ticker_interval_seconds, once=args.once)

"""The morning summary: what landed (commits), what stopped and why, what needs you, and the spend.

``--since`` takes a span (24h, 90m, 2d, 1w) or a UTC time; default 24h.
Reads state.yaml, budget.json, the event journal and the agent registry.
"""

from __future__ import annotations

import argparse
import json
import time

from ..observe import report, settings
from ..paths import HomePaths


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", default="24h", metavar="SPAN", help="window: 24h (default), 90m, 2d, 1w or a time")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args: argparse.Namespace) -> int:
    hp = HomePaths.from_env()
    now = time.time()
    since = report.parse_since(args.since, now)
    doc = report.build(hp, settings.from_home(hp), since, now)
    print(json.dumps(doc, indent=2) if args.json else report.render(doc, now))
    return 0

"""Check the tools autometta uses; exit 1 if a required one is missing.

Then say what runs the tick (cron block, systemd timer, LaunchAgents) and
warn when it, or the pyz on PATH, points at a pyz that no longer exists or
is older than the checkout it was built from.
"""

from __future__ import annotations

import argparse
import json

from .. import deps


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    found = deps.check()
    from ..schedule import health

    found += health.checks()
    if args.json:
        print(json.dumps([d.__dict__ for d in found], indent=2))
    else:
        for dep in found:
            print(dep.line())
    return 0 if deps.ok(found) else 1

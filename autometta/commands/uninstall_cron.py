"""Remove autometta's block from your crontab; every other line stays as it was.

Lines that run the tick but were not written by install-cron are named and
left alone.
"""

from __future__ import annotations

import argparse

from ..schedule import cron
from .common import note


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="print the new crontab; change nothing")


def run(args: argparse.Namespace) -> int:
    cron.uninstall(dry_run=args.dry_run, say=print, note=note)
    return 0

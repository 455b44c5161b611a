"""Pin a built pyz in a repo: copy it to REPO/tools/autometta.pyz with tools/autometta.VERSION.

Nothing is committed; the command prints the git line to run.
"""

from __future__ import annotations

import argparse

from ..schedule import vendor
from .common import add_program_args, note
from .common import resolve_repo


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("repo", metavar="REPO", help="the repo to vendor autometta into")
    parser.add_argument("--dry-run", action="store_true", help="say what would be written; change nothing")
    add_program_args(parser, pyz_only=True)


def run(args: argparse.Namespace) -> int:
    vendor.vendor(resolve_repo(args.repo), args.pyz, dry_run=args.dry_run, say=print, note=note)
    return 0

"""Install this autometta with Homebrew from a local tap: a formula for one built pyz.

Renders templates/homebrew/autometta.rb.template with the pyz's version,
commit, sha256 and a file:// URL, writes it into the tap (created with
'brew tap-new --no-git' when missing) and runs 'brew install' (or
'reinstall'). Without brew, prints the formula and exits 1. Downloads nothing.
"""

from __future__ import annotations

import argparse
import os

from ..schedule import homebrew
from .common import add_program_args, note


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true",
                        help="print the paths and the formula; change nothing")
    parser.add_argument("--tap", metavar="OWNER/NAME",
                        default=os.environ.get("AUTOMETTA_HOMEBREW_TAP") or homebrew.DEFAULT_TAP,
                        help=f"the local tap (default $AUTOMETTA_HOMEBREW_TAP or {homebrew.DEFAULT_TAP})")
    add_program_args(parser, pyz_only=True)


def run(args: argparse.Namespace) -> int:
    homebrew.install(args.pyz, args.tap, dry_run=args.dry_run, say=print, note=note)
    return 0

"""Run the tick from your crontab: ``install-cron`` and ``uninstall-cron``.

Each is a class of the command-line protocol (its docstring the help, ``register`` its
arguments, ``run`` the command); :data:`autometta.cli.COMMANDS` names them.
"""

from __future__ import annotations

import argparse

from ..schedule import cron, lookup
from ..schedule.invocation import resolve_invocation
from .common import add_program_args, note, positive_int


class Install:
    """Run the tick from your crontab every MIN minutes.

    The entry sits in a marked block autometta owns; every other line of the
    crontab is left exactly as it was. It runs a built pyz by absolute path with
    an absolute interpreter (never a version manager's shim), with PATH set to
    the folders where check-deps found claude, codex, git, tmux and op, and
    appends its output to <home>/log/cron.log. Running it again replaces the
    block in place; --dry-run prints the new crontab and changes nothing.
    """

    @staticmethod
    def register(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--interval", type=positive_int, default=cron.DEFAULT_MINUTES, metavar="MIN",
                            help=f"minutes between ticks (default {cron.DEFAULT_MINUTES}; cron needs a "
                                 f"divisor of 60, or whole hours)")
        parser.add_argument("--dry-run", action="store_true", help="print the new crontab; change nothing")
        parser.add_argument("--replace-existing", action="store_true",
                            help="remove crontab lines outside the block that already run the tick "
                                 "(e.g. the bash version's 'autometta tick' line)")
        add_program_args(parser)

    @staticmethod
    def run(args: argparse.Namespace) -> int:
        cron.spec_for(args.interval)
        inv = resolve_invocation(args.pyz, args.python)
        cron.install(inv, args.interval, others=lookup.others_than("cron"), dry_run=args.dry_run,
                     replace_existing=args.replace_existing, say=print, note=note)
        return 0


class Uninstall:
    """Remove autometta's block from your crontab; every other line stays as it was.

    Lines that run the tick but were not written by install-cron are named and
    left alone.
    """

    @staticmethod
    def register(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="print the new crontab; change nothing")

    @staticmethod
    def run(args: argparse.Namespace) -> int:
        cron.uninstall(dry_run=args.dry_run, say=print, note=note)
        return 0

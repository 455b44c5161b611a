"""Linux: run the tick from a systemd user timer: ``install-systemd`` and ``uninstall-systemd``.

Each is a class of the command-line protocol (its docstring the help, ``register`` its
arguments, ``run`` the command); :data:`autometta.cli.COMMANDS` names them.
"""

from __future__ import annotations

import argparse

from ..schedule import lookup, systemd
from ..schedule.invocation import resolve_invocation
from .common import add_program_args, note, positive_int


class Install:
    """Linux: a systemd user timer that runs the tick every MIN minutes.

    Writes autometta-tick.service and autometta-tick.timer under
    ${XDG_CONFIG_HOME:-~/.config}/systemd/user/ (KillMode=process, so agents
    outlive the tick) and, when systemctl is present, runs
    'systemctl --user daemon-reload' and 'enable --now autometta-tick.timer'.
    """

    @staticmethod
    def register(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--interval", type=positive_int, default=systemd.DEFAULT_MINUTES, metavar="MIN",
                            help=f"minutes between ticks (default {systemd.DEFAULT_MINUTES})")
        parser.add_argument("--dry-run", action="store_true", help="print the units; change nothing")
        parser.add_argument("--no-start", action="store_true",
                            help="write the units only; do not run systemctl")
        add_program_args(parser)

    @staticmethod
    def run(args: argparse.Namespace) -> int:
        systemd.require_linux("install-systemd")
        inv = resolve_invocation(args.pyz, args.python)
        systemd.install(inv, args.interval, others=lookup.others_than("systemd"), dry_run=args.dry_run,
                        start=not args.no_start, say=print, note=note)
        return 0


class Uninstall:
    """Linux: stop and delete autometta's systemd user timer and service."""

    @staticmethod
    def register(parser: argparse.ArgumentParser) -> None:
        pass  # no arguments

    @staticmethod
    def run(args: argparse.Namespace) -> int:
        systemd.uninstall(say=print, note=note)
        return 0

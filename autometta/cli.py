"""Command-line wiring only: each subcommand lives in ``autometta/commands/``.

A command module exposes ``NAME``, ``HELP``, ``register(parser)`` to add its
arguments and ``run(args) -> int``. This file only collects them, so adding a
command is one module plus one line in :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from typing import List, Optional, Sequence

from .errors import UserError

#: (module name under autometta.commands, command name, one-line help)
COMMANDS = [
    ("init_host", "init-host", "create the controller home (~/.phat-controller)"),
    ("init", "init", "init-host, then subscribe a repo"),
    ("subscribe", "subscribe", "register a repo with the controller"),
    ("unsubscribe", "unsubscribe", "remove a repo from the controller"),
    ("add_stage", "add-stage", "queue a stage card in a repo's state.yaml"),
    ("list_cards", "list-cards", "list a repo's stage cards and their status"),
    ("status", "status", "one row per subscribed repo"),
    ("check_deps", "check-deps", "check the tools autometta uses"),
    ("tick", "tick", "move each subscribed repo one step (run it from cron or launchd)"),
    ("requeue", "requeue", "put a stopped stage back in the queue"),
    ("demo", "demo", "run the whole loop on a scratch repo (no credentials needed)"),
]


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors print one line and exit 2 like every UserError."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: {message} (see '{self.prog} --help')\n")


def version_string() -> str:
    from .version import describe

    return describe()


def build_parser(only: Optional[str] = None) -> argparse.ArgumentParser:
    """The full parser, or (``only``) one whose other commands are stubs.

    Importing a command module is the expensive part of start-up, so a run
    imports just the command it executes; ``--help`` still lists them all.
    """
    parser = _Parser(
        prog="autometta",
        description="Run coding agents unattended; every worker is checked by the other family.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and build commit")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for module_name, name, summary in COMMANDS:
        if only is not None and name != only:
            sub.add_parser(name, help=summary, add_help=False)
            continue
        module = importlib.import_module(f"autometta.commands.{module_name}")
        cmd = sub.add_parser(name, help=summary, description=getattr(module, "__doc__", None) or summary)
        module.register(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def _command_name(args: List[str]) -> Optional[str]:
    names = {name for _, name, _ in COMMANDS}
    for arg in args:
        if arg in names:
            return arg
        if not arg.startswith("-"):
            return None
    return None


def main(argv: Optional[Sequence[str]] = None) -> int:
    args_list: List[str] = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] in ("--version", "version"):
        print(version_string())
        return 0
    parser = build_parser(only=_command_name(args_list))
    args = parser.parse_args(args_list)
    debug = args.debug or os.environ.get("AUTOMETTA_DEBUG") == "1"
    if args.version:
        print(version_string())
        return 0
    if not getattr(args, "_run", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args._run(args) or 0)
    except UserError as exc:
        if debug:
            traceback.print_exc()
        print(f"autometta {args.command}: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

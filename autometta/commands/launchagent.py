"""macOS: run a repo's tick from a LaunchAgent: ``install-launchagent`` and ``uninstall-launchagent``.

Each is a class of the command-line protocol (its docstring the help, ``register`` its
arguments, ``run`` the command); :data:`autometta.cli.COMMANDS` names them.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..errors import UserError
from ..schedule import launchd, lookup
from ..schedule.invocation import resolve_invocation
from .common import add_program_args, note, positive_int


def repo_path(arg: str) -> Path:
    repo = Path(os.path.realpath(arg))
    if not repo.is_dir():
        raise UserError(f"{repo}: no such folder; give the repo's path")
    return repo


class Install:
    """macOS: a LaunchAgent that runs 'tick --repo REPO' every N seconds.

    Writes ~/Library/LaunchAgents/com.autometta.tick.<repo>.plist (RunAtLoad,
    StartInterval, AbandonProcessGroup so agents outlive the tick, logs in
    REPO/state/logs/launchagent.{out,err}.log, PATH from check-deps), loads it
    with 'launchctl bootstrap gui/<uid>' (after 'bootout' when replacing), and
    removes the autometta-managed cron tick, as the bash version did.
    """

    @staticmethod
    def register(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("repo", metavar="REPO", help="the subscribed repo the agent ticks")
        parser.add_argument("--interval", type=positive_int, default=launchd.DEFAULT_INTERVAL, metavar="N",
                            help=f"seconds between ticks (default {launchd.DEFAULT_INTERVAL})")
        parser.add_argument("--dry-run", action="store_true", help="print the plist; change nothing")
        add_program_args(parser)

    @staticmethod
    def run(args: argparse.Namespace) -> int:
        launchd.require_macos("install-launchagent")
        repo = repo_path(args.repo)
        inv = resolve_invocation(args.pyz, args.python)
        launchd.install(inv, repo, args.interval, others=lookup.others_than("launchd"), dry_run=args.dry_run,
                        say=print, note=note)
        return 0


class Uninstall:
    """macOS: unload and delete the repo's LaunchAgent (launchctl bootout, then the plist)."""

    @staticmethod
    def register(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("repo", metavar="REPO", help="the repo whose agent to remove (it may be gone)")

    @staticmethod
    def run(args: argparse.Namespace) -> int:
        launchd.require_macos("uninstall-launchagent")
        launchd.uninstall(Path(os.path.realpath(args.repo)), say=print)
        return 0

"""macOS: unload and delete the repo's LaunchAgent (launchctl bootout, then the plist)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..schedule import launchd


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("repo", metavar="REPO", help="the repo whose agent to remove (it may be gone)")


def run(args: argparse.Namespace) -> int:
    launchd.require_macos("uninstall-launchagent")
    launchd.uninstall(Path(os.path.realpath(args.repo)), say=print)
    return 0

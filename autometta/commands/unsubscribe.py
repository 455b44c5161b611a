"""Remove a repo from the controller. Its state/ files stay where they are."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .. import home
from ..errors import UserError
from ..paths import HomePaths


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("repo", nargs="?", default=".", help="the repo to unsubscribe (default: .)")


def run(args: argparse.Namespace) -> int:
    hp = HomePaths.from_env()
    home.require_home(hp)
    repo = Path(os.path.realpath(args.repo))
    sub = home.find_subscriber(hp, repo)
    if sub is None:
        print(f"not subscribed: {repo}", file=sys.stderr)
        return 0
    try:
        sub.file.unlink()
    except OSError as exc:
        raise UserError(f"{sub.file}: cannot remove ({exc.strerror})") from exc
    print(f"PASS unsubscribed {repo} (removed {sub.file}; {repo}/state is kept)")
    from ..schedule import invocation, launchd

    if invocation.platform_name() == "darwin" and launchd.plists_for(repo):
        launchd.uninstall(repo, say=print)  # its LaunchAgent would otherwise tick a repo nobody follows
    return 0

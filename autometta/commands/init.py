"""init-host, then subscribe the repo (default: the current folder)."""

from __future__ import annotations

import argparse

from ..paths import HomePaths
from . import init_host, subscribe


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("repo", nargs="?", default=".", help="the repo to subscribe (default: .)")


def run(args: argparse.Namespace) -> int:
    hp = HomePaths.from_env()
    init_host.init_host(hp)
    repo = subscribe.subscribe(hp, args.repo)
    print("Next: commit .gitignore, state/state.yaml and state/budget.json before the first tick:")
    print("  git add .gitignore state/state.yaml state/budget.json && git commit -m 'autometta: subscribe'")
    return 0 if repo else 1

"""init-host, then subscribe the repo (default: the current folder)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..git import gitops
from ..paths import HomePaths
from . import init_host, subscribe
from .common import resolve_repo


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("repo", nargs="?", default=".", help="the repo to subscribe (default: .)")


def run(args: argparse.Namespace) -> int:
    hp = HomePaths.from_env()
    init_host.init_host(hp)
    repo = subscribe.subscribe(hp, args.repo)
    print(next_step(resolve_repo(args.repo)))
    return 0 if repo else 1


def next_step(repo: Path) -> str:
    """What to commit before the first tick: the state files too, unless the repo's .gitignore keeps them out."""
    wanted = [".gitignore", "state/state.yaml", "state/budget.json"]
    left = gitops.ignored(repo, wanted[1:])
    if not left:
        return ("Next: commit .gitignore, state/state.yaml and state/budget.json before the first tick:\n"
                "  git add .gitignore state/state.yaml state/budget.json && git commit -m 'autometta: subscribe'")
    kept = [p for p in wanted if p not in left]
    return (f"Next: commit {' and '.join(kept)} before the first tick:\n"
            f"  git add {' '.join(kept)} && git commit -m 'autometta: subscribe'\n"
            f"({' and '.join(left)} stay untracked: the repo's .gitignore ignores them, and autometta does not need "
            "them in git; each tick keeps their history on the phat-controller/state ref)")

"""Run the whole loop on a scratch repo with three script-family stages (no credentials)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..books.state import load_state
from ..demo import run_demo
from ..paths import RepoPaths


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", metavar="DIR", help="an empty folder to use (default: a new temporary one)")
    parser.add_argument("--parallel", metavar="N", type=_positive, default=1,
                        help="run up to N stages at once, each in a git worktree (max_parallel; default 1)")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, not {text!r}")
    return value


def run(args: argparse.Namespace) -> int:
    repo = run_demo(Path(args.dir) if args.dir else None, parallel=args.parallel)
    doc = load_state(RepoPaths(repo.resolve()))
    return 0 if all(s.get("status") == "completed" for s in doc["stages"]) else 1

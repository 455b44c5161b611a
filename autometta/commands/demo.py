"""Run the whole loop on a scratch repo with three script-family stages (no credentials)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..demo import run_demo
from ..state import load_state
from ..paths import RepoPaths


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", metavar="DIR", help="an empty folder to use (default: a new temporary one)")


def run(args: argparse.Namespace) -> int:
    repo = run_demo(Path(args.dir) if args.dir else None)
    doc = load_state(RepoPaths(repo.resolve()))
    return 0 if all(s.get("status") == "completed" for s in doc["stages"]) else 1

"""Internal: the verifier panel the tick starts as an agent (``autometta _panel-run PLAN``).

Carries out the plan the dispatcher wrote (see :mod:`autometta.verify.panel`):
starts the three panellists, waits for them until the verifier budget is
spent, counts the votes, prints the panel's usage line and writes the
synthesised verdict. Its output is the stage's verifier log.

Exit codes: 0 PASS, 1 FAIL, 2 no verdict (no quorum or a tie) or no usable
plan, 143 stopped by a signal before the synthesis (nothing written).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..errors import UserError
from ..verify import panel

NAME = "_panel-run"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("plan", metavar="PLAN", help="the plan file the dispatcher wrote")


def run(args: argparse.Namespace) -> int:
    try:
        plan = panel.load_plan(Path(args.plan))
    except UserError as exc:
        print(f"panel: {exc.message}", file=sys.stderr, flush=True)
        return 2
    try:
        result = panel.run_panel(plan, os.environ, register=not plan.get("read_only"),
                                 say=lambda line: print(line, flush=True))
    except panel.Stopped as exc:
        print(f"panel: stopped ({exc}) before the votes were counted; no synthesis written", flush=True)
        return 143
    return result.exit_code

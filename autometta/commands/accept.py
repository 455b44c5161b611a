"""Commit one stage by hand on a PASS verdict, exactly as the tick would.

Needs the record ``autometta verify`` leaves (``state/logs/<id>-oneshot.json``):
only the verdict of the verifier that run started counts, read from the path
made for it (or its final message) once it has ended. On PASS, and when the
stage's worktree is the one the verifier judged, commits every change outside
``state/`` there with the worker as author, the verifier as
``Co-Authored-By`` and ``<id>: <headline>`` as subject (the verdict's
``headline``, else the card title), then lands it as the tick would: rebased
onto the checked-out branch, the acceptance command rerun if that branch
moved, fast-forwarded, the worktree removed. Your own uncommitted changes are
never part of it. On FAIL nothing is committed and the exit is 1. state.yaml
and budget.json are not touched.
"""

from __future__ import annotations

import argparse
import json

from .. import manual
from .common import note


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("card", metavar="CARD", help="the stage card (docs/stages/<id>.md)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    shot = manual.load(args.card, warn=note, show_warnings=False)
    result = manual.accept(shot, warn=note)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for line in manual.verdict_lines(result):
        print(line)
    if result.get("commit"):
        print(f"committed {result['commit'][:12]} {result['subject']}")
    else:
        print(f"nothing to commit outside state/ for {result['stage_id']}")
    return 0

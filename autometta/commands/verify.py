"""Judge one stage by hand: its acceptance command, then the cross-family verifier.

Needs the worker's ``pass`` handoff (``autometta dispatch``) and the worker's
run to have ended. Runs the card's acceptance command, if it has one, and
waits for it (a non-zero exit is ``acceptance_failed`` and no verifier runs);
then starts the verifier as the tick does, with a verdict path made for it
alone, and records that run for ``autometta accept``. A verdict already there
(``verdict_forged``) fails the stage before any verifier starts. ``--wait`` waits for the verdict and prints it; exit 0 on PASS,
1 otherwise. state.yaml and budget.json are not touched; its runs are booked
in the spend ledger once they end. Next: ``autometta accept CARD``.
"""

from __future__ import annotations

import argparse
import json

from .. import manual
from .common import note, print_started


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("card", metavar="CARD", help="the stage card (docs/stages/<id>.md)")
    parser.add_argument("--wait", action="store_true", help="wait for the verifier and print its verdict")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    shot = manual.load(args.card, warn=note, show_warnings=False)
    result = manual.verify(shot, wait=args.wait, say=note if not args.json else None)
    failed = result.get("marker") == "acceptance_failed"
    ok = not failed and (not args.wait or result.get("overall") == "PASS")
    if args.json:
        print(json.dumps(result, indent=2))
        return 0 if ok else 1
    acceptance = result.get("acceptance")
    if acceptance:
        print(f"acceptance command exited {acceptance['exit_code']}: {acceptance['command']}")
        if failed:
            print(f"{result['stage_id']}: FAIL (acceptance_failed); see {acceptance['log']}")
            return 1
    if "pid" not in result:  # refused before a verifier started (verdict_forged)
        for line in manual.verdict_lines(result):
            print(line)
        return 1
    print_started("verifier", result, result["verifier"], ("log", result["log"]), ("verdict", result["artefact"]))
    if not args.wait:
        print(f"next: when the verdict is written, autometta accept {args.card}")
        return 0
    for line in manual.verdict_lines(result):
        print(line)
    if ok:
        print(f"next: autometta accept {args.card}")
    return 0 if ok else 1

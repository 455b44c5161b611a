"""Start one stage's worker now, by hand, without the queue (the pass-1 contract, step 3).

The repo is the git work tree holding the card (commit the card first). The
stage gets a git worktree of its own, ``.autometta/worktrees/<id>`` on branch
``autometta/<id>`` from the checked-out branch's tip (an earlier by-hand
run's is replaced), and the worker starts there exactly as the tick starts
it (prompt, clean environment, detached runner, log at
``state/logs/<id>-worker.log``), handing off to ``state/handoffs/<id>.json``.
With ``isolation: tree`` it runs in the checkout, which must then be clean
outside ``state/``.
``--wait`` waits for it and prints how it ended; exit 0 when it handed off
``pass``. state.yaml and budget.json are not touched; the run is booked in the
spend ledger once it ends (the next tick counts it against the caps). Next:
``autometta verify CARD``.
"""

from __future__ import annotations

import argparse
import json

from .. import manual
from .common import note, print_started


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("card", metavar="CARD", help="the stage card (docs/stages/<id>.md)")
    parser.add_argument("--wait", action="store_true", help="wait for the worker and print how it ended")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    shot = manual.load(args.card, warn=note)
    result = manual.dispatch(shot, wait=args.wait)
    ok = not args.wait or result.get("handoff_status") == "pass"
    if args.json:
        print(json.dumps(result, indent=2))
        return 0 if ok else 1
    print_started("worker", result, result["identity"], ("log", result["log"]), ("handoff", result["handoff"]))
    if not args.wait:
        print(f"next: once the handoff is written, autometta verify {args.card}")
        return 0
    line = f"worker exited {result.get('exit_code')}"
    if result.get("seconds") is not None:
        line += f" after {float(result['seconds']):.1f}s"
    line += f"; handoff status={result.get('handoff_status')}"
    if result.get("marker"):
        line += f" ({result['marker']})"
    if result.get("tokens"):
        line += f"; {result['tokens']} tokens"
    print(line)
    if result.get("notes"):
        print(f"  notes: {result['notes']}")
    if ok:
        print(f"next: autometta verify {args.card} --wait")
    return 0 if ok else 1

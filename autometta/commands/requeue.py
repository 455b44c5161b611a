"""Put a failed, stalled or verifier_failed stage back to ``pending``.

Its old envelope and verdict are moved to ``state/archive/<id>/`` so the next
run cannot mistake them for its own (the bash version re-applied them, §15.7).
"""

from __future__ import annotations

import argparse
import sys

from .. import envelope, files, state
from ..errors import UserError
from ..paths import RepoPaths
from .subscribe import resolve_repo


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("repo", help="the subscribed repo")
    parser.add_argument("stage_id", metavar="STAGE_ID", help="the stage to run again")


def run(args: argparse.Namespace) -> int:
    paths = RepoPaths(resolve_repo(args.repo))
    with files.locked(paths.lock, timeout=30):
        doc = state.load_state(paths)
        stage = state.find_stage(doc, args.stage_id)
        if stage is None:
            raise UserError(f"{paths.state_yaml}: no stage {args.stage_id}; add it with 'autometta add-stage'")
        if stage.get("status") in ("pending", "in_progress", "completed"):
            raise UserError(f"stage {args.stage_id} is {stage['status']}; only a stopped stage can be re-queued")
        moved = envelope.archive(paths, args.stage_id)
        previous = stage.get("status")
        keep = ("id", "worker", "verifier", "worker_tokens", "verifier_tokens", "tokens",
                "worker_cost_usd", "verifier_cost_usd", "cost_usd", "worker_seconds", "verifier_seconds")
        fresh = state.new_stage(stage["id"], stage.get("worker", ""), stage.get("verifier", ""))
        fresh.update({k: stage[k] for k in keep if k in stage})
        stage.clear()
        stage.update(fresh)
        state.save_state(paths, doc)
    print(f"requeued: {args.stage_id} (was {previous}; {len(moved)} old file(s) archived)", file=sys.stderr)
    return 0

"""List a repo's stage cards with their queue status (from state.yaml).

Output: ``<id>\\t<status>\\t<path>``, sorted by id; ``unqueued`` for a card
that was never added. The bash version guessed status from a PLAN.md table
and ignored state.yaml (§15.23).
"""

from __future__ import annotations

import argparse
import json

from .. import card as cards, manifest
from ..books import state
from ..errors import UserError
from ..paths import RepoPaths
from .common import resolve_repo


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("repo", nargs="?", default=".", help="the repo (default: .)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    repo = resolve_repo(args.repo)
    paths = RepoPaths(repo)
    doc = state.load_state(paths) if paths.state_yaml.exists() else state.initial_state()
    rows = []
    for stage_id, path in cards.list_cards(repo, cards.card_globs(repo, manifest.load_manifest(paths))):
        stage = state.find_stage(doc, stage_id)
        status = stage.get("status", "pending") if stage else "unqueued"
        waits = []
        if status == "pending":
            try:
                waits = state.unmet_dependencies(cards.parse_card(path).depends_on, doc)
            except UserError:
                pass  # lint-card says what is wrong with it
        rows.append({"id": stage_id, "status": status, "path": str(path), "waits_for": waits})
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            waits = f"\twaits for {', '.join(row['waits_for'])}" if row["waits_for"] else ""
            print(f"{row['id']}\t{row['status']}\t{row['path']}{waits}")
    return 0

"""Queue a stage card: append it to the repo's state.yaml as ``pending``.

Idempotent (an id already queued prints ``exists: <id>``). The card is
checked first by the card lint (``autometta lint-card``) and refused on any
error: a bad id, a missing Worker or Verifier line, two agents of one family
without a stated reason, unfilled placeholders, a missing input, a
``Depends on`` naming no card or closing a cycle, ...; or when the tick's
lookup would not find it. Warnings are printed and do not refuse.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path
from typing import Callable, Optional

from .. import card as cards, cardlint, files, manifest
from ..books import state
from ..errors import UserError
from ..paths import RepoPaths
from .common import resolve_repo

#: How long add-stage waits for a running tick to release the repo.
LOCK_WAIT_SECONDS = 30.0


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("repo", help="the subscribed repo")
    parser.add_argument("card", help="the stage card (docs/stages/<id>.md)")


def add_stage(repo_arg: str, card_arg: str, warn: Optional[Callable[[str], None]] = None) -> str:
    """Queue the card; ``warn`` gets the lint's warnings (and the errors after the first)."""
    repo = resolve_repo(repo_arg)
    paths = RepoPaths(repo)
    if not paths.state_yaml.exists():
        state.load_state(paths)  # raises the "not found; run subscribe" error
    card_path = Path(os.path.abspath(card_arg))
    if not card_path.is_file():
        raise UserError(f"{card_path}: stage card not found")
    card = cards.parse_card(card_path)
    globs = cards.card_globs(repo, manifest.load_manifest(paths))
    findings = cardlint.lint_card(card_path, repo, globs=globs)
    # a stage waiting for a stage that does not exist would wait for ever: refused here, not just warned
    findings = [dataclasses.replace(f, severity=cardlint.ERROR) if f.rule == "depends" else f for f in findings]
    cardlint.refuse_errors(findings,
                           warn or (lambda line: print(line, file=sys.stderr)), show_warnings=warn is not None)
    found = cards.find_card(repo, card.stage_id, globs)
    if found is None or os.path.realpath(found) != os.path.realpath(card_path):
        where = f"it finds {found} instead" if found else "it looks in " + ", ".join(globs)
        raise UserError(f"{card_path}: the tick would not find this card for {card.stage_id} ({where}); "
                        "move it to docs/stages/ or add its folder to stage_card_globs in .autometta.local.yaml")
    with files.locked(paths.lock, timeout=LOCK_WAIT_SECONDS):
        doc = state.load_state(paths)
        if state.find_stage(doc, card.stage_id) is not None:
            return "exists"
        doc["stages"].append(state.new_stage(card.stage_id, card.worker or "", card.verifier or ""))
        state.save_state(paths, doc)
    return "added"


def run(args: argparse.Namespace) -> int:
    card_path = Path(args.card)
    outcome = add_stage(args.repo, args.card, warn=lambda line: print(line, file=sys.stderr))
    print(f"{outcome}: {card_path.stem}", file=sys.stderr)
    return 0

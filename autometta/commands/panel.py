"""Run a stage's verifier panel again, read-only, and print its synthesis.

The three panellists (``panel:`` in config.yaml, or the default panel) judge
the working tree as it is now, exactly as in a tick, but every file they
write (logs, verdicts, the synthesis) goes to a temporary folder that is
removed afterwards (``--keep DIR`` keeps them in DIR). Nothing in ``state/``
is read for writing, nothing is registered, budget.json is untouched (each
panellist's run is booked in the spend ledger, which the next tick counts
against the repo's caps). The card
is found the way the tick finds it (the manifest's ``stage_card_globs``
first). Progress goes to stderr.

Exit 0 when the panel says PASS, 1 for FAIL or no verdict (no quorum, tie).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from .. import card as cards
from ..books import ledger, state
from ..errors import UserError
from ..tick.facts import load_card
from ..verify import panel
from .common import repo_context, resolve_repo


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stage_id", metavar="STAGE_ID", help="the stage whose panel to run")
    parser.add_argument("repo", nargs="?", default=".", help="the repo (default: .)")
    parser.add_argument("--json", action="store_true", help="print the synthesised verdict as JSON")
    parser.add_argument("--keep", metavar="DIR", help="keep the panellists' logs and verdicts in DIR")


def run(args: argparse.Namespace) -> int:
    repo = resolve_repo(args.repo)
    stage_id = cards.check_stage_id(args.stage_id, "STAGE_ID")
    ctx = repo_context(repo)
    card = load_card(ctx, stage_id)
    if card is None:
        globs = ", ".join(cards.card_globs(repo, ctx.manifest))
        raise UserError(f"{repo}: no stage card for {stage_id} (looked in {globs}); "
                        "add it or list its folder under stage_card_globs in .autometta.local.yaml")
    stage = None
    if ctx.paths.state_yaml.exists():
        stage = state.find_stage(state.load_state(ctx.paths), stage_id)
    if stage is None:
        stage = {"id": stage_id, "worker": card.worker or "", "verifier": card.verifier or ""}
    keep = Path(args.keep).resolve() if args.keep else None
    out_dir = keep or Path(tempfile.mkdtemp(prefix="autometta-panel-"))
    try:
        plan, env = panel.build_plan(ctx, stage, card, reason="autometta panel (read-only)", out_dir=out_dir)
        result = panel.run_panel(plan, env, register=False, say=lambda line: print(line, file=sys.stderr))
        # each panellist's spend, booked to its own family and model (the next tick counts it against the caps)
        ledger.book_panel(ledger.home_of(ctx), repo, plan, parent=None, by="hand", environ=ctx.environ,
                          manifest=ctx.manifest)
    except panel.Stopped as exc:
        print(f"autometta panel: stopped ({exc}) before the votes were counted", file=sys.stderr)
        return 143
    finally:
        if keep is None:
            shutil.rmtree(out_dir, ignore_errors=True)
    if args.json:
        print(json.dumps(result.doc, indent=2))
    else:
        print(f"panel for {stage_id} in {repo} (read-only: state/ untouched)")
        print(f"{'#':<2} {'name':<10} {'vote':<5} {'identity':<44} outcome")
        for v in result.votes:
            print(f"{v.id:<2} {v.name:<10} {v.vote or '-':<5} {v.identity[:44]:<44} {v.status}")
        verdict = result.overall or "no verdict"
        print(f"overall: {verdict} ({result.reason}; quorum {panel.QUORUM_REQUIRED})")
        if keep is not None:
            print(f"files kept in {keep}")
    return 0 if result.overall == "PASS" else 1

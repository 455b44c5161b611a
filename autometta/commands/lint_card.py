"""Check stage cards against the orchestrator checklist before anything is dispatched.

Prints one ``file:line: rule: message`` line per finding (warnings say
``warning:``) and exits 1 if any card has an error, 0 otherwise. ``--rules``
lists the rules. Paths in a card are checked against the git work tree the
card is in (``--repo`` to name another).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .. import cardlint, manifest
from ..card import card_globs
from ..errors import UsageError
from ..git.gitops import work_tree_top
from ..paths import RepoPaths


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("cards", nargs="*", metavar="CARD", help="stage card files (docs/stages/<id>.md)")
    parser.add_argument("--repo", metavar="REPO", help="check paths against this repo (default: the card's)")
    parser.add_argument("--rules", action="store_true", help="list the rules and exit")
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")


def lint_paths(cards, repo=None):
    findings = []
    for card in cards:
        top = repo or work_tree_top(card)
        root = Path(os.path.realpath(top)) if top else None
        globs = card_globs(root, manifest.load_manifest(RepoPaths(root))) if root else None
        findings.extend(cardlint.lint_card(card, root, globs=globs))
    return findings


def run(args: argparse.Namespace) -> int:
    if args.rules:
        if args.json:
            print(json.dumps([{"rule": name, "checks": text} for name, text in cardlint.RULES.items()], indent=2))
        else:
            width = max(len(name) for name in cardlint.RULES)
            for name, text in cardlint.RULES.items():
                print(f"{name:<{width}}  {text}")
        return 0
    if not args.cards:
        raise UsageError("name at least one stage card, e.g. 'autometta lint-card docs/stages/*.md'")
    findings = lint_paths(args.cards, args.repo)
    if args.json:
        print(json.dumps([f.as_dict() for f in findings], indent=2))
    else:
        for finding in findings:
            print(finding)
        count = len(cardlint.errors(findings))
        warnings = len(findings) - count
        print(f"{len(args.cards)} card{'s' if len(args.cards) != 1 else ''}: {count} error"
              f"{'s' if count != 1 else ''}, {warnings} warning{'s' if warnings != 1 else ''}", file=sys.stderr)
    return 1 if cardlint.errors(findings) else 0

"""Write a new stage card, ``docs/stages/<ID>.md``, from the bundled template.

The identities are filled in, and the verifier comes from the other family
by default (a Claude worker gets a Codex verifier and the other way round).
Everything only the author can write becomes ``TODO(autometta)`` text, which
``autometta lint-card`` reports until it is replaced. An existing card is
never overwritten.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from .. import families, files, render, resources
from ..card import check_stage_id, parse_depends, parse_duration
from ..cardlint import TODO_MARK
from ..errors import UsageError, UserError
from ..families import family_of
from ..git import gitops
from .common import resolve_repo

TEMPLATE = "templates/stage-card.md"
FOLDER = "docs/stages"

#: The family of the worker when --worker is not given.
DEFAULT_FAMILY = "claude"

DEFAULT_WORKER_BUDGET = "20 minutes"
DEFAULT_VERIFIER_BUDGET = "10 minutes"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("repo", metavar="REPO", help="the repo (the card goes to REPO/docs/stages/ID.md)")
    parser.add_argument("id", metavar="ID", help="the stage id, e.g. 03-add-login (two digits, a dash, words)")
    parser.add_argument("title", metavar="TITLE", help="a one-line title; also the commit subject by default")
    parser.add_argument("--worker", metavar="IDENTITY",
                        help="worker identity, or just claude/codex/script (default: Claude Sonnet 4.6)")
    parser.add_argument("--verifier", metavar="IDENTITY",
                        help="verifier identity, or a family (default: the other family's default)")
    parser.add_argument("--orchestrator", metavar="IDENTITY", help="who wrote the card (default: your git identity)")
    parser.add_argument("--depends-on", metavar="IDS", help="stages this one needs first, e.g. '01-setup, 02-api'")
    parser.add_argument("--acceptance-command", metavar="CMD",
                        help="a shell command autometta runs before the verifier; it must exit 0")
    parser.add_argument("--max-loops", metavar="N", type=int, help="how many re-briefs the stage may take")
    parser.add_argument("--worker-budget", metavar="DURATION", default=DEFAULT_WORKER_BUDGET,
                        help=f"worker wall-clock budget (default: {DEFAULT_WORKER_BUDGET})")
    parser.add_argument("--verifier-budget", metavar="DURATION", default=DEFAULT_VERIFIER_BUDGET,
                        help=f"verifier wall-clock budget (default: {DEFAULT_VERIFIER_BUDGET})")


def _identity(value: str, flag: str, role: str) -> str:
    """``value``, or the family's default identity for ``role`` when it is just a family's name."""
    text = " ".join((value or "").split())
    if text.lower() in families.FAMILIES:
        return families.get(text.lower()).default_identity(role)
    if family_of(text) is None:
        names = list(families.FAMILIES)
        raise UsageError(f"{flag} {value!r} names no known agent family; give {', '.join(names[:-1])} or "
                         f"{names[-1]}, or an identity like '{families.get('codex').default_identity(role)}'")
    return text


def pair(worker: Optional[str], verifier: Optional[str]) -> Tuple[str, str, str]:
    """(worker, verifier, pairing rationale): cross-family unless both are given from one family."""
    worker_id = (_identity(worker, "--worker", "worker") if worker
                 else families.get(DEFAULT_FAMILY).default_identity("worker"))
    worker_family = family_of(worker_id) or DEFAULT_FAMILY
    if verifier:
        verifier_id = _identity(verifier, "--verifier", "verifier")
    else:
        verifier_id = families.get(families.get(worker_family).partner).default_identity("verifier")
    verifier_family = family_of(verifier_id)
    if verifier_family != worker_family:
        reason = (f"Cross-family: a {verifier_family} verifier checks a {worker_family} worker, "
                  "so the two are unlikely to share a blind spot.")
    elif families.get(worker_family).runs_card_command:
        reason = "Both sides are deterministic shell commands; no model judges its own family's work."
    else:
        reason = (f"{TODO_MARK}: say why a {verifier_family} verifier may check a {worker_family} worker, "
                  "or pick a verifier from another family")
    return worker_id, verifier_id, reason


def _optional_metadata(args: argparse.Namespace, worker_family: Optional[str],
                       verifier_family: Optional[str]) -> str:
    lines: List[str] = []
    unused: List[str] = []
    if args.depends_on:
        refs = parse_depends(args.depends_on)
        if not refs:
            raise UsageError(f"--depends-on {args.depends_on!r} names no stage; write ids like '01-setup, 02-api'")
        lines.append(f"- **Depends on:** {', '.join(refs)}")
    else:
        unused.append('"- **Depends on:** 01-other-stage"')
    if args.acceptance_command:
        if "`" in args.acceptance_command or "\n" in args.acceptance_command:
            raise UsageError("--acceptance-command must be one line without backquotes; "
                             "put a longer command in a script and run that")
        lines.append(f"- **Acceptance command:** `{args.acceptance_command}`")
    else:
        unused.append('"- **Acceptance command:** `<a command that must exit 0>`"')
    if args.max_loops is not None:
        if args.max_loops < 0:
            raise UsageError("--max-loops must be 0 or more")
        lines.append(f"- **Max loops:** {args.max_loops}")
    else:
        unused.append('"- **Max loops:** 2"')
    if worker_family and families.get(worker_family).runs_card_command:
        lines.append(f"- **Worker command:** `{TODO_MARK}: the shell command that plays the worker`")
    if verifier_family and families.get(verifier_family).runs_card_command:
        lines.append(f"- **Verifier command:** `{TODO_MARK}: the shell command that writes the verdict`")
    if unused:
        lines.append(f"<!-- Optional bullets for this list: {', '.join(unused)} -->")
    return "\n".join(lines)


def card_values(args: argparse.Namespace, repo: Path) -> Dict[str, str]:
    """Every value the stage-card template needs."""
    stage_id = check_stage_id(args.id)
    title = " ".join((args.title or "").split())
    if not title:
        raise UsageError("TITLE is empty; give the stage a one-line title")
    for label, value in (("--worker-budget", args.worker_budget), ("--verifier-budget", args.verifier_budget)):
        if parse_duration(value, what=f"{label}") is None:
            raise UsageError(f"{label} {value!r} is not a duration; write it like '20 minutes' or '1h 30m'")
    worker, verifier, reason = pair(args.worker, args.verifier)
    orchestrator = args.orchestrator or gitops.author_ident(repo) or "not recorded"
    return {
        "stage-id": stage_id,
        "stage-title": title,
        "date-authored": time.strftime("%Y-%m-%d", time.gmtime()),
        "orchestrator-identity": " ".join(orchestrator.split()),
        "worker-identity": worker,
        "verifier-identity": verifier,
        "pairing-rationale": reason,
        "optional-metadata": _optional_metadata(args, family_of(worker), family_of(verifier)),
        "objective": f"{TODO_MARK}: the goal in one or two sentences.",
        "inputs": f"- {TODO_MARK}: each file the worker should read, as a back-quoted repo-relative path.",
        "deliverables": f"- {TODO_MARK}: each file the worker creates or changes, back-quoted, "
                        "and what it must hold.",
        "constraints": f"- {TODO_MARK}: the hard rules (style, files not to touch, no new dependencies, ...).",
        "acceptance-criteria": f"1. {TODO_MARK}: a check the verifier can make from the files alone, "
                               "e.g. a command and what it must print.",
        "out-of-scope": f"- {TODO_MARK}: what the worker might be tempted to change but must not.",
        "worker-budget": " ".join(args.worker_budget.split()),
        "verifier-budget": " ".join(args.verifier_budget.split()),
        "verifier-handoff": (f"The worker ends by writing its handoff, `state/handoffs/{stage_id}.json`, as its "
                             f"prompt describes; the verifier writes its verdict to "
                             f"`state/verifiers/{stage_id}.json`. Nothing else is exchanged."),
        "family-notes": "None.",
    }


def new_card(args: argparse.Namespace) -> Path:
    repo = resolve_repo(args.repo)
    values = card_values(args, repo)
    target = repo / FOLDER / f"{values['stage-id']}.md"
    if os.path.lexists(target):
        raise UserError(f"{target}: already exists; edit it, or pick another stage id")
    text = render.render(resources.read_text(TEMPLATE), values, source=TEMPLATE, keep_comments=True)
    files.ensure_dir(target.parent)
    files.atomic_write(target, text)
    return target


def run(args: argparse.Namespace) -> int:
    target = new_card(args)
    print(target)
    print(f"next: replace the {TODO_MARK} lines, then: autometta lint-card {target}")
    return 0

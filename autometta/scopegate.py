"""The scope check against git: what a stage changed, judged by :mod:`autometta.scope`.

Run twice: when the worker hands off (before the acceptance command and the
verifier spend anything; the tick's decide() sees it through
``InFlight.scope``) and just before the commit (:func:`check_stage_commit`,
from ``stagecommit.commit_accepted``, so the tick and ``autometta accept``
both stop there).

A stage's change is every path outside ``state/`` that differs between the
commit it started from and its working tree, commits the agents made
included: for a stage with a branch of its own, from the fork point of that
branch and its base; otherwise from ``HEAD``.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Optional

from . import card as cards
from . import gitops, scope
from .errors import UserError


class ScopeViolation(UserError):
    """The change touches files the card does not allow; ``marker`` is the scope marker."""

    def __init__(self, finding: scope.Finding) -> None:
        self.finding = finding
        self.marker = finding.marker or scope.OUT_OF_SCOPE_MARKER
        shown = scope.stall_text(self.marker, finding.files)[len(self.marker) + 2:]
        why = ("the card, the acceptance command's files, CI configuration or tests the card does not name"
               if finding.protected else "outside the card's Deliverables and May also change")
        super().__init__(f"{shown} ({why}); nothing committed: revert them, or change the card and requeue "
                         "the stage")


def start_rev(work: "os.PathLike[str]", stage: Mapping[str, Any]) -> str:
    """The commit the stage's change is measured from."""
    base = stage.get("base")
    if base:
        fork = gitops.merge_base(work, "HEAD", f"refs/heads/{base}")
        if fork:
            return fork
    return "HEAD"


def rules_for(work: "os.PathLike[str]", repo: "os.PathLike[str]", card: cards.Card, rev: str) -> scope.Rules:
    """The card's scope, with the acceptance command's files as they were in ``rev``."""
    named = scope.command_paths(card.acceptance_command)
    acceptance = gitops.entries_at(work, rev, named) if named else []
    card_rel = os.path.relpath(os.path.realpath(str(card.path)), os.path.realpath(str(repo)))
    return scope.Rules(card=card_rel.replace(os.sep, "/"), deliverables=tuple(card.deliverables),
                       may_also_change=tuple(card.may_also_change), acceptance_files=tuple(acceptance))


def finding(ctx: Any, stage: Mapping[str, Any], card: cards.Card) -> scope.Finding:
    """What the stage changed that its card does not allow (``ctx``: a RepoContext, ``ctx.work`` its tree)."""
    rev = start_rev(ctx.work, stage)
    changed = gitops.changed_since(ctx.work, rev)
    if not changed:
        return scope.Finding()
    return scope.classify(changed, rules_for(ctx.work, ctx.repo, card, rev))


def problem(ctx: Any, stage: Mapping[str, Any], card: Optional[cards.Card]) -> Optional[str]:
    """``<marker>: <files>`` when the stage's change leaves its card's scope, else None (also without a card)."""
    if card is None:
        return None
    return finding(ctx, stage, card).text()


def _card_for(ctx: Any, stage_id: str) -> Optional[cards.Card]:
    path = cards.find_card(ctx.repo, stage_id, cards.card_globs(ctx.repo, ctx.manifest))
    return cards.parse_card(path) if path is not None else None


def check_stage_commit(ctx: Any, stage: Mapping[str, Any], card: Optional[cards.Card] = None) -> None:
    """Before a stage's commit: raise :class:`ScopeViolation` if what would be committed leaves its scope."""
    card = card if card is not None else _card_for(ctx, str(stage["id"]))
    if card is None:
        raise UserError(f"stage card for {stage['id']} not found, so its scope cannot be checked; "
                        "nothing committed (stage_card_missing)")
    found = finding(ctx, stage, card)
    if not found.ok:
        raise ScopeViolation(found)

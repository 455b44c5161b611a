"""The scope check against git: what a stage changed, judged by :mod:`autometta.git.scope`.

Run twice: when the worker hands off (before the acceptance command and the
verifier spend anything; the tick's decide() sees it through
``InFlight.scope``) and just before the commit (:func:`check_stage_commit`,
from ``stagecommit.commit_accepted``, so the tick and ``autometta accept``
both stop there).

A stage's change is every path outside ``state/`` that differs between the
commit it started from and its working tree, commits the agents made
included (:func:`start_rev`): for a stage in its worktree (serial or a
lane, by the tick or by hand), from the fork point of its branch and its
base, so what the user commits on the base meanwhile is not the stage's;
with ``isolation: tree``, from the checkout's head at the claim, leaving out
the paths the user had already changed then and left as they were; for the
bash version's claim, which recorded neither, from ``HEAD``.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Optional

from .. import card as cards
from ..errors import UserError
from ..stagerecord import StageRecord
from . import gitops, isolation, scope


class ScopeViolation(UserError):
    """The change touches files the card does not allow; ``marker`` is the scope marker."""

    def __init__(self, finding: scope.Finding) -> None:
        self.finding = finding
        marker = finding.marker or scope.OUT_OF_SCOPE_MARKER
        shown = scope.stall_text(marker, finding.files)[len(marker) + 2:]
        why = ("the card, the acceptance command's files, CI configuration or tests the card does not name"
               if finding.protected else "outside the card's Deliverables and May also change")
        super().__init__(f"{shown} ({why}); nothing committed: revert them, or change the card and requeue "
                         "the stage", marker=marker)


def start_rev(work: "os.PathLike[str]", stage: Mapping[str, Any]) -> str:
    """The commit the stage's change is measured from."""
    rec = StageRecord(stage)
    base = rec.base
    if base:
        fork = gitops.merge_base(work, "HEAD", f"refs/heads/{base}")
        if fork:
            return fork
    head = rec.claim_head  # isolation: tree: the checkout's head at the claim
    return str(head) if head else "HEAD"


def rules_for(work: "os.PathLike[str]", repo: "os.PathLike[str]", card: cards.Card, rev: str) -> scope.Rules:
    """The card's scope, with the acceptance command's files as they were in ``rev``."""
    named = scope.command_paths(card.acceptance_command)
    acceptance = gitops.entries_at(work, rev, named) if named else []
    card_rel = os.path.relpath(os.path.realpath(str(card.path)), os.path.realpath(str(repo)))
    return scope.Rules(card=card_rel.replace(os.sep, "/"), deliverables=tuple(card.deliverables),
                       may_also_change=tuple(card.may_also_change), acceptance_files=tuple(acceptance))


def finding(ctx: Any, stage: Mapping[str, Any], card: cards.Card) -> scope.Finding:
    """What the stage changed that its card does not allow (``ctx``: a RepoContext, ``ctx.work`` its tree)."""
    rec = StageRecord(stage)
    rev = start_rev(ctx.work, stage)
    changed = gitops.changed_since(ctx.work, rev)
    if rec.claim_head and not rec.base:  # isolation: tree: your own changes are not the stage's
        try:
            yours = set(isolation.unchanged_since(ctx.paths, stage))
        except UserError:
            yours = set()  # a claim record altered since: the commit refuses it, naming the record
        changed = [path for path in changed if path not in yours]
    rules = rules_for(ctx.work, ctx.repo, card, rev)
    if card_changed_elsewhere(ctx, card, rules.card, rev):
        changed.append(rules.card)
    if not changed:
        return scope.Finding()
    return scope.classify(changed, rules)


def card_changed_elsewhere(ctx: Any, card: cards.Card, card_rel: str, rev: str) -> bool:
    """Has the card the tick reads changed, when it lives outside the stage's tree (a lane's worktree)?

    The tick reads a stage's card, its acceptance command included, from the
    user's checkout; an agent in a worktree can reach that file too. It must
    still be the card as committed where the stage started, or at the
    checkout's HEAD (a card you committed since). An uncommitted card has
    nothing to compare with.
    """
    work = os.path.realpath(str(ctx.work))
    path = os.path.realpath(str(card.path))
    if path == work or path.startswith(work + os.sep):
        return False  # in the stage's own tree: its change shows it
    try:
        with open(path, "rb") as handle:
            current = handle.read()
    except OSError:
        return False  # gone: the tick stalls the stage stage_card_missing
    committed = [gitops.file_at(ctx.work, rev, card_rel), gitops.file_at(ctx.repo, "HEAD", card_rel)]
    known = [blob for blob in committed if blob is not None]
    return bool(known) and current not in known


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
    rec = StageRecord(stage)
    card = card if card is not None else _card_for(ctx, str(rec.id))
    if card is None:
        raise UserError(f"stage card for {rec.id} not found, so its scope cannot be checked; "
                        "nothing committed (stage_card_missing)")
    found = finding(ctx, stage, card)
    if not found.ok:
        raise ScopeViolation(found)

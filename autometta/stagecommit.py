"""Committing an accepted stage: one subject rule, one author rule, one trailer.

The tick and ``autometta accept`` both commit through :func:`commit_accepted`,
so a stage accepted by hand lands exactly as the tick would land it:

* the secret scan first (:func:`autometta.scan.check_stage_commit`): a hit
  raises ``SecretInDiff`` (marker ``secret_in_diff``) before anything is staged;
* then the scope check (:func:`autometta.scopegate.check_stage_commit`): a
  file the card does not allow raises ``ScopeViolation`` (marker
  ``out_of_scope_change`` or ``protected_path_changed``);
* author: the worker identity as ``Name <email>`` (:func:`identity.git_author`);
* subject: ``<stage-id>: <headline>``, cleaned to one line
  (:func:`gitops.sanitize_subject`), where the headline is the verifier
  artefact's ``headline`` when it has a non-blank one, else the card's title
  summary (:func:`headline`);
* trailer: ``Co-Authored-By: <verifier identity>``;
* the headline is the verifier's text: a secret in it is masked
  (:func:`autometta.secrets.redact`) before it becomes a commit message;
* committer: whoever runs git (the operator), never set here.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

from . import gitops, scan, scopegate, secrets
from .dispatch import RepoContext, identity_for
from .identity import git_author


def headline(card_summary: str, artefact_doc: Optional[Mapping[str, Any]] = None) -> str:
    """The verdict's own ``headline`` if it has a non-blank one, else the card's summary."""
    given = artefact_doc.get("headline") if isinstance(artefact_doc, Mapping) else None
    if isinstance(given, str) and given.strip():
        return given
    return card_summary


def subject(stage_id: str, line: str) -> str:
    return gitops.sanitize_subject(f"{stage_id}: {line}")


def commit_accepted(ctx: RepoContext, stage: Mapping[str, Any], line: str, card: Any = None,
                    exclude: Sequence[str] = ()) -> Optional[str]:
    """Commit the working tree outside ``state/`` for a PASS; the new sha, or None if nothing changed.

    ``stage`` is a state.yaml stage record (or one shaped like it: ``id``,
    ``worker``, ``verifier``); ``line`` the headline; ``card`` its parsed
    card (looked up by id when not given); ``exclude`` paths left out of the
    commit (see :func:`autometta.isolation.unchanged_since`).
    """
    scan.check_stage_commit(ctx, stage)  # resolves the stage's secrets: redact() knows them from here
    scopegate.check_stage_commit(ctx, stage, card)
    line = secrets.redact(line)
    worker = identity_for(stage, "worker")
    verifier = identity_for(stage, "verifier") or None
    return gitops.commit_stage(ctx.work, author=git_author(worker), subject=subject(str(stage["id"]), line),
                               coauthor=git_author(verifier) if verifier else None, exclude=exclude)

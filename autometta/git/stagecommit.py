"""Committing an accepted stage: one subject rule, one author rule, one trailer.

The tick and ``autometta accept`` both commit through :func:`commit_accepted`,
so a stage accepted by hand lands exactly as the tick would land it:

* the secret scan first (:func:`autometta.scan.check_stage_commit`): a hit
  raises ``SecretInDiff`` (marker ``secret_in_diff``) before anything is staged;
* then the scope check (:func:`autometta.git.scopegate.check_stage_commit`): a
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

:func:`landed` finds that commit again after a kill: the tick records HEAD
(``commit_from``) and the commit's mark (``commit_run_id``) in state.yaml
before git starts, and a commit after ``commit_from`` with the stage's
subject, author and trailer is the one it made.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

from .. import scan, secrets
from ..agents import processes
from ..agents.identity import git_author
from ..agents.provision import identity_for
from ..repo import RepoContext
from ..stagerecord import StageRecord
from . import gitops, scopegate


def headline(card_summary: str, artefact_doc: Optional[Mapping[str, Any]] = None) -> str:
    """The verdict's own ``headline`` if it has a non-blank one, else the card's summary."""
    given = artefact_doc.get("headline") if isinstance(artefact_doc, Mapping) else None
    if isinstance(given, str) and given.strip():
        return given
    return card_summary


def subject(stage_id: str, line: str) -> str:
    return gitops.sanitize_subject(f"{stage_id}: {line}")


def commit_accepted(ctx: RepoContext, stage: Mapping[str, Any], line: str, card: Any = None,
                    exclude: Sequence[str] = (), run_id: Optional[str] = None) -> Optional[str]:
    """Commit the working tree outside ``state/`` for a PASS; the new sha, or None if nothing changed.

    ``stage`` is a state.yaml stage record (or one shaped like it: ``id``,
    ``worker``, ``verifier``); ``line`` the headline; ``card`` its parsed
    card (looked up by id when not given); ``exclude`` paths left out of the
    commit (see :func:`autometta.git.isolation.unchanged_since`); ``run_id``
    marks git and its hooks (``AUTOMETTA_RUN_ID``) so a later tick can tell
    the commit is still running.
    """
    rec = StageRecord(stage)
    scan.check_stage_commit(ctx, stage)  # resolves the stage's secrets: redact() knows them from here
    scopegate.check_stage_commit(ctx, stage, card)
    line = secrets.redact(line)
    worker = identity_for(stage, "worker")
    verifier = identity_for(stage, "verifier") or None
    env = {processes.ENV: run_id} if run_id else None
    return gitops.commit_stage(ctx.work, author=git_author(worker), subject=subject(str(rec.id), line),
                               coauthor=git_author(verifier) if verifier else None, exclude=exclude, env=env)


def landed(ctx: RepoContext, stage: Mapping[str, Any]) -> Optional[str]:
    """The stage's commit made by a tick that was killed before it could record it, or None.

    Only after a commit was claimed (``commit_run_id`` set): the newest commit
    on HEAD since ``commit_from`` whose subject starts ``<stage-id>: ``, whose
    author is the worker and which carries the verifier's ``Co-Authored-By``
    trailer.
    """
    rec = StageRecord(stage)
    if not rec.commit_run_id:
        return None
    worker = identity_for(stage, "worker")
    verifier = identity_for(stage, "verifier")
    author = git_author(worker)
    trailer = f"Co-Authored-By: {gitops.sanitize_subject(git_author(verifier), limit=0)}" if verifier else None
    prefix = f"{rec.id}: "
    since = rec.commit_from
    for sha, who, message in gitops.commits_since(ctx.work, since if isinstance(since, str) else None):
        lines = message.splitlines()
        if lines and lines[0].startswith(prefix) and who == author and (trailer is None or trailer in lines):
            return sha
    return None

"""How a stage's runs end, read one way for the tick and for the by-hand runs alike.

The tick (:mod:`autometta.tick.decide`) and ``autometta dispatch``/``verify``/
``accept`` (:mod:`autometta.manual`) both ask here what a worker's handoff
and exit amount to (:func:`worker`) and what a verdict does to the stage
(:func:`verdict`: a panel's votes counted again, its criteria against its
``overall``, the tree it judged), so the two cannot drift apart. Pure: it
reads no file and imports nothing that does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from ..git import scope

#: The marker of a worker that exited without a handoff envelope, its CLI's output naming no cause.
WORKER_NO_ENVELOPE = "worker_envelope_missing_after_exit"
#: The marker of a worker whose handoff envelope does not parse or fails its schema.
WORKER_ENVELOPE_INVALID = "worker_envelope_invalid"
#: The marker of a PASS whose verifier changed the tree it judged.
VERIFIER_MODIFIED_TREE = "verifier_modified_tree"
#: The marker of a plain FAIL verdict.
VERIFIER_FAIL = "verifier_fail"

#: Two votes of a panel's three make a quorum (the bash version's rule).
QUORUM_REQUIRED = 2
#: Stage status and stall-marker prefix for a panel that reached no verdict.
NO_QUORUM = "verifier_panel_no_quorum"


@dataclass(frozen=True)
class Envelope:
    """A worker's handoff envelope as read (:func:`autometta.envelope.read_envelope`)."""

    kind: str  # missing | invalid | pass | fail | partial
    notes: str = ""
    error: str = ""
    doc: Optional[Dict[str, Any]] = None


@dataclass(frozen=True)
class Artefact:
    """A verifier's verdict as read (:func:`autometta.envelope.read_artefact`, :mod:`autometta.verdicts`)."""

    kind: str  # missing | partial | verdict
    overall: Optional[str] = None  # PASS | FAIL, for a verdict
    problem: str = ""  # why a parseable artefact cannot count as PASS
    doc: Optional[Dict[str, Any]] = None
    errors: List[str] = field(default_factory=list)


@dataclass(frozen=True)
class Outcome:
    """How a run ends the stage: its status and marker, and which rule said so (``why``)."""

    status: str
    marker: Optional[str]
    #: worker: ``missing``, ``invalid``, ``fail``, ``partial``; verdict: ``pass``, ``problem`` (a panel's
    #: count or the criteria override its overall), ``modified_tree``, ``fail``
    why: str

    @property
    def finish(self) -> Tuple[str, Optional[str]]:
        return self.status, self.marker


def worker(env: Envelope, diagnosis: Optional[str] = None) -> Optional[Outcome]:
    """What the worker's handoff envelope ``env`` does to the stage;
    None for a ``pass`` (on to the acceptance command and the verifier).

    ``diagnosis``: why its CLI could not run, read from its exit and output
    (``worker_timeout``, ``claude_usage_limit``, ...), named instead of
    :data:`WORKER_NO_ENVELOPE` when it left no envelope.
    """
    if env.kind == "missing":
        return Outcome("stalled", diagnosis or WORKER_NO_ENVELOPE, "missing")
    if env.kind == "invalid":
        return Outcome("stalled", WORKER_ENVELOPE_INVALID, "invalid")
    if env.kind in ("fail", "partial"):
        return Outcome("failed", env.notes or f"worker_envelope_{env.kind}", env.kind)
    return None


def verdict(art: Artefact, tree_changed: Callable[[], bool]) -> Outcome:
    """What a verdict (an :class:`Artefact` of kind ``verdict``) does to the stage.

    First the verdict must agree with itself (:func:`verdict_problem`); a
    PASS then counts only if the tree is the one the verifier judged
    (``tree_changed``, asked for a PASS alone: it costs a git call).
    """
    problem = verdict_problem(art.doc)
    if problem is not None:
        return Outcome(problem[0], problem[1], "problem")
    if art.overall == "PASS":
        if tree_changed():
            return Outcome("verifier_failed", VERIFIER_MODIFIED_TREE, "modified_tree")
        return Outcome("completed", None, "pass")
    return Outcome("verifier_failed", art.problem or VERIFIER_FAIL, "fail")


#: The status of a stage whose PASS commit the secret scan refused (marker ``secret_in_diff``).
SECRET_BLOCKED = "secret_blocked"


def failed_effect(effect: str, role: Optional[str], marker: Optional[str], secret: bool = False) -> Tuple[str, str]:
    """What the stage becomes when an effect of its decision could not be done (autometta.tick.effects).

    ``effect``: the effect's name (``launch``, ``worktree``, ``record_claim``,
    ``merge``, ``land``, ``commit``); ``role``: whose start failed; ``marker``:
    the one the error itself names, if any; ``secret``: the commit's secret
    scan refused it. The effects after it are not applied: they assumed it would work.
    """
    if effect == "launch":
        return "stalled", marker or f"{role}_spawn_failed"
    if effect == "worktree":
        return "stalled", marker or "worktree_failed"
    if effect == "record_claim":
        return "stalled", marker or "tree_claim_failed"
    if effect in ("merge", "land"):  # git failed, with no conflict to name
        return "failed", marker or "merge_failed"
    if effect == "commit":
        if secret:  # the verdict was PASS: say what stopped it
            return SECRET_BLOCKED, str(marker)
        marker = marker or "commit_failed"
        return ("failed" if marker in scope.MARKERS else "verifier_failed"), marker
    raise AssertionError(f"effect {effect} does not fail")


def merge_conflict(files: Sequence[str]) -> Tuple[str, str]:
    """A lane that does not rebase onto its base branch: it stops, naming the files."""
    return "merge_conflict", f"merge_conflict: {conflicts_shown(files)}"[:300]


def conflicts_shown(files: Sequence[str]) -> str:
    """The files of a merge conflict as the marker and the tick log name them: the first ten."""
    return ", ".join(files[:10]) + (" ..." if len(files) > 10 else "")


# ------------------------------------------------------------------ a verdict that disagrees with itself

@dataclass(frozen=True)
class Tally:
    """The panel's count. ``overall`` is None when there is no verdict (no quorum or a tie)."""

    passes: int
    fails: int
    no_votes: int
    overall: Optional[str]
    reason: str  # one line for logs and markers

    @property
    def votes(self) -> int:
        return self.passes + self.fails


def tally(votes: Sequence[Optional[str]], required: int = QUORUM_REQUIRED) -> Tally:
    """Count ``votes`` (``PASS``, ``FAIL`` or None for a panellist that did not vote).

    Fewer than ``required`` votes, or as many PASS as FAIL, is no verdict;
    otherwise the verdict is PASS exactly when PASS votes outnumber FAIL votes.
    A crash or a timeout is a no-vote, never a FAIL.
    """
    passes = sum(1 for v in votes if v == "PASS")
    fails = sum(1 for v in votes if v == "FAIL")
    no_votes = len(votes) - passes - fails
    counts = f"{passes} PASS, {fails} FAIL, {no_votes} no-vote"
    if passes + fails < required:
        return Tally(passes, fails, no_votes, None, f"no quorum: {passes + fails} of {required} votes needed ({counts})")
    if passes == fails:
        return Tally(passes, fails, no_votes, None, f"no majority: tied vote ({counts})")
    overall = "PASS" if passes > fails else "FAIL"
    return Tally(passes, fails, no_votes, overall, f"majority {overall} ({counts})")


def panel_problem(doc: Optional[Mapping[str, Any]]) -> Optional[Tuple[str, str]]:
    """For a synthesised panel verdict: the (status, marker) that overrides its ``overall``, or None.

    The votes are counted again from ``panellists`` (the file's ``overall`` is
    not trusted on its own): no quorum or a tie stops the stage as
    ``verifier_panel_no_quorum``; an ``overall`` that disagrees with the
    count fails it. None for a single verifier's artefact and for a panel
    whose ``overall`` is its majority.
    """
    if not isinstance(doc, Mapping) or not isinstance(doc.get("panellists"), list):
        return None
    votes: List[Optional[str]] = []
    for entry in doc["panellists"]:
        vote = entry.get("overall") if isinstance(entry, Mapping) else None
        votes.append(vote if vote in ("PASS", "FAIL") else None)
    quorum = doc.get("quorum")
    required = quorum.get("required") if isinstance(quorum, Mapping) else None
    required = required if isinstance(required, int) and not isinstance(required, bool) else QUORUM_REQUIRED
    count = tally(votes, max(required, QUORUM_REQUIRED))
    if count.overall is None:
        return NO_QUORUM, f"{NO_QUORUM}: {count.reason}"
    if doc.get("overall") != count.overall:
        return "verifier_failed", (f"verifier_panel_inconsistent: overall {str(doc.get('overall'))[:20]!r} "
                                   f"but the panellists' {count.reason}")
    return None


#: The marker of a verdict whose overall disagrees with its own criteria.
INCONSISTENT_MARKER = "verifier_inconsistent"


def criteria_problem(doc: Optional[Mapping[str, Any]]) -> Optional[str]:
    """Why a verdict's ``overall`` disagrees with its own criteria, or None.

    PASS needs every criterion to PASS; FAIL needs one that does not. A
    verdict without criteria (a panel with no majority source) is not judged here.
    """
    if not isinstance(doc, Mapping) or doc.get("overall") not in ("PASS", "FAIL"):
        return None
    criteria = doc.get("criteria")
    if not isinstance(criteria, list) or not criteria:
        return None
    failing = [c for c in criteria if not isinstance(c, Mapping) or c.get("verdict") != "PASS"]
    if doc["overall"] == "PASS" and failing:
        first = failing[0] if isinstance(failing[0], Mapping) else {}
        more = f" (and {len(failing) - 1} more)" if len(failing) > 1 else ""
        return (f"overall PASS but criterion {str(first.get('id'))[:10]} ({str(first.get('name'))[:80]}) "
                f"is {str(first.get('verdict'))[:10]}{more}")
    if doc["overall"] == "FAIL" and not failing:
        return "overall FAIL but every criterion PASSes"
    return None


def verdict_problem(doc: Optional[Mapping[str, Any]]) -> Optional[Tuple[str, str]]:
    """The (status, marker) that overrides a verdict's ``overall``, or None: one rule for every verdict.

    A panel's votes are counted again (:func:`panel_problem`); then any
    verdict, a single verifier's or a panel's, must agree with its own
    criteria, else it fails ``verifier_inconsistent``.
    """
    panel = panel_problem(doc)
    if panel is not None:
        return panel
    why = criteria_problem(doc)
    if why is not None:
        return "verifier_failed", f"{INCONSISTENT_MARKER}: {why}"
    return None

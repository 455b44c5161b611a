"""The stages run by hand, as the views list them: the sessions of each one's runs.

``autometta dispatch`` and ``verify`` record the session of every run they
start in ``state/logs/<id>-oneshot.json`` (:mod:`autometta.books.oneshot`),
as the tick records its runs' in the stage. ``show`` lists a stage's beside
the tick's; ``status --json`` lists every stage's under ``by_hand``, a row a
stage as its ``lanes`` are (``id``, ``sessions``). Both read the record
through :func:`~autometta.books.oneshot.trusted_record` alone: one changed
behind autometta's back is not shown (``show`` names it among its problems,
``status --json`` as the stage's ``problem``).
"""

from __future__ import annotations

from ..books import oneshot
from ..errors import UserError
from ..stagerecord import StageRecord

TYPE_CHECKING = False  # not typing's: an idle tick and status import no typing (tests/test_startup.py)
if TYPE_CHECKING:
    from typing import Any, Dict, List

    from ..paths import RepoPaths


def sessions(paths: RepoPaths, stage_id: str) -> List[Dict[str, Any]]:
    """The sessions of the stage's runs by hand, as ``show --json`` lists them; raises UserError for a record
    changed behind autometta's back."""
    return StageRecord(oneshot.trusted_record(paths, stage_id)).session_rows()


def rows(paths: RepoPaths) -> List[Dict[str, Any]]:
    """Every stage with runs by hand: ``{"id", "sessions"}``, or ``{"id", "sessions": [], "problem"}`` for one
    whose record is not trusted; by id."""
    out: List[Dict[str, Any]] = []
    for stage_id in oneshot.stage_ids(paths):
        try:
            found = sessions(paths, stage_id)
        except UserError as exc:
            out.append({"id": stage_id, "sessions": [], "problem": exc.message})
            continue
        if found:
            out.append({"id": stage_id, "sessions": found})
    return out

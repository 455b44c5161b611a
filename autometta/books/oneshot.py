"""The record of a stage run by hand: ``state/logs/<id>-oneshot.json``.

``autometta dispatch``, ``verify`` and ``accept`` (:mod:`autometta.manual`)
write it through the controller's books (:mod:`autometta.books.digests`) and
read it back for the next of them; ``show`` and ``status --json`` list the
sessions of its runs (:mod:`autometta.observe.byhand`), and ``tick --repair``
spares the worktree it names. Every reader goes through :func:`read_record`
(as its schema allows it) and, where what it says is acted on or shown,
:func:`trusted_record`. Light to import: ``status`` reads it.
"""

from __future__ import annotations

import os

from .. import files, schema
from ..errors import UserError
from . import digests

TYPE_CHECKING = False  # not typing's: an idle tick and status import no typing (tests/test_startup.py)
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any, Dict, List

    from ..paths import RepoPaths

#: ``<id>`` + this, in ``state/logs/``.
SUFFIX = "-oneshot.json"


def stage_ids(paths: RepoPaths) -> List[str]:
    """The stages that have a record, by id."""
    from ..stageid import STAGE_ID_RE

    try:
        names = os.listdir(paths.logs)
    except OSError:  # no logs yet (or not a folder)
        return []
    ids = (name[:-len(SUFFIX)] for name in names if name.endswith(SUFFIX))
    return sorted(i for i in ids if STAGE_ID_RE.match(i))


def read_record(path: Path) -> Dict[str, Any]:
    """A one-shot record as its schema allows it; {} if missing, unreadable or not as autometta writes it."""
    try:
        doc = files.read_json(path) if path.exists() else {}
    except UserError:
        return {}
    return doc if isinstance(doc, dict) and not schema.problems(doc, "oneshot-record") else {}


def trusted_record(paths: RepoPaths, stage_id: str) -> Dict[str, Any]:
    """What dispatch set up and verify saw (``state/logs/<id>-oneshot.json``); {} if none.

    Written through the controller's books (autometta.books.digests): one changed
    since autometta wrote it (its agents ran in between: the worker could
    point ``base`` elsewhere, the verifier drop the tree it was given) is
    refused, not trusted; so is one the books do not know (an agent that can
    reach ``state/`` could plant a whole record, verify run and worktree for a
    stage nobody dispatched by hand).
    """
    path = paths.oneshot_record(stage_id)
    if digests.changed_behind(paths, path):
        raise UserError(f"{path}: changed since autometta wrote it, not by autometta ({digests.TAMPERED_MARKER}); "
                        "nothing it says is trusted: review it and the stage's logs, then dispatch again")
    if os.path.lexists(path) and not digests.knows(paths, path):
        raise UserError(f"{path}: not written by autometta ({digests.TAMPERED_MARKER}): the controller's books "
                        "do not know it, and an agent could have put it there; nothing it says is trusted: review "
                        "it and the stage's logs, then dispatch again (a dispatch starts afresh)")
    return read_record(path)

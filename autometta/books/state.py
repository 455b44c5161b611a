"""``state/state.yaml``: the per-repo stage queue.

The file keeps the bash version's shape (spec §3.4) and its ``yq -P`` layout,
which some readers parse as text. Writes are atomic, keep a rolling ``.bak``
of the last valid document, and refuse to replace a valid document with a
degenerate one (the bash version once wiped a user's state that way).
"""

from __future__ import annotations

from .. import files, schema, yamlsub
from ..errors import UserError
from ..paths import RepoPaths
from . import digests

TYPE_CHECKING = False  # not typing's: an idle tick and status import no typing (tests/test_startup.py)
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional

STATUSES = (
    "pending",
    "in_progress",
    "completed",
    "failed",
    "stalled",
    "verifier_failed",
    "verifier_panel_no_quorum",
    "merge_conflict",
    "secret_blocked",
    "stopped",
)

#: Statuses a stage does not leave without a human (re-queue) decision.
TERMINAL = ("completed", "failed", "stalled", "verifier_failed", "verifier_panel_no_quorum", "merge_conflict",
            "secret_blocked", "stopped")

FILE_MODE = 0o600


def initial_state() -> Dict[str, Any]:
    return {
        "version": 1,
        "current_stage": None,
        "stages": [],
        "last_tick_at": "1970-01-01T00:00:00Z",
        "tick_count": 0,
        "clock_tick_budget_remaining": 100,
        "halted": False,
        "halt_reason": None,
    }


def new_stage(stage_id: str, worker: str, verifier: str) -> Dict[str, Any]:
    """A queued stage, with the fields and order add-stage.sh wrote."""
    return {
        "id": stage_id,
        "status": "pending",
        "worker": worker,
        "verifier": verifier,
        "started_at": None,
        "worker_pid": None,
        "verifier_pid": None,
        "verifier_artefact": None,
        "verifier_attempts": 0,
        "completed_at": None,
    }


def is_structurally_valid(doc: Any) -> bool:
    """The bash version's integrity rule: a non-empty mapping with a list ``stages``."""
    return isinstance(doc, dict) and bool(doc) and isinstance(doc.get("stages"), list)


def parse_state(text: str, source: str) -> Dict[str, Any]:
    if not text.strip():
        raise UserError(f"{source}: empty; restore it from {source}.bak or git, or run 'autometta tick --repair'")
    doc = yamlsub.loads(text, source=source)
    if not is_structurally_valid(doc):
        raise UserError(f"{source}: not a state file (expected a mapping with a 'stages' list); "
                        f"restore it from {source}.bak or git")
    schema.check(doc, "state", source)
    return doc


def load_state(paths: RepoPaths, text: Optional[str] = None) -> Dict[str, Any]:
    """The state document; ``text``: its contents as already read (and checked by ``digests.audit``)."""
    paths.check_contained()
    if text is None:
        if not paths.state_yaml.exists():
            raise UserError(f"{paths.state_yaml}: not found; run 'autometta subscribe {paths.root}' to create it")
        text = files.read_text(paths.state_yaml)
    return parse_state(text, str(paths.state_yaml))


def load_backup(paths: RepoPaths) -> Optional[Dict[str, Any]]:
    """The rolling ``.bak`` if it holds a valid document, else None."""
    bak = paths.state_backup
    try:
        return parse_state(files.read_text(bak), str(bak))
    except UserError:
        return None


def dumps_state(doc: Dict[str, Any], source: str = "state.yaml") -> str:
    if not is_structurally_valid(doc):
        raise UserError(f"{source}: refusing to write a degenerate state document (no 'stages' list)")
    schema.check(doc, "state", source)
    return yamlsub.dumps(doc)


def save_state(paths: RepoPaths, doc: Dict[str, Any]) -> None:
    """Write atomically, then mirror the same valid document to ``state.yaml.bak``.

    The backup is written second, so it always holds the newest document that
    passed validation: restoring it after a hand edit or a crash gone wrong
    loses nothing the tick wrote (a copy of the *previous* document, as the
    bash version kept, dropped the last change). Both go through
    :func:`autometta.books.digests.write_files`, which records their digests (and
    which stages are in flight) in the controller home.
    """
    text = dumps_state(doc, str(paths.state_yaml))
    digests.write_files(paths, [(paths.state_yaml, text), (paths.state_backup, text)], mode=FILE_MODE,
                      in_flight=digests.in_flight_of(doc))


def find_stage(doc: Dict[str, Any], stage_id: str) -> Optional[Dict[str, Any]]:
    for stage in doc.get("stages") or []:
        if isinstance(stage, dict) and stage.get("id") == stage_id:
            return stage
    return None


def stage_ids(doc: Dict[str, Any]) -> List[str]:
    return [s.get("id") for s in doc.get("stages") or [] if isinstance(s, dict)]


def unmet_dependencies(depends_on: List[str], doc: Dict[str, Any]) -> List[str]:
    """What a stage with ``depends_on`` still waits for, in card order; empty when it may start.

    Each entry is a stage id still pending or in flight, ``<id> (<status>)`` for
    one that ended without completing, or ``<ref> (not queued)`` for a
    reference no queued stage answers.
    """
    from ..card import resolve_dependency  # not at import: reading state needs no card

    ids = [i for i in stage_ids(doc) if isinstance(i, str)]
    out: List[str] = []
    for reference in depends_on:
        resolved = resolve_dependency(reference, ids)
        if resolved is None:
            out.append(f"{reference} (not queued)")
            continue
        status = (find_stage(doc, resolved) or {}).get("status")
        if status == "completed":
            continue
        out.append(resolved if status in ("pending", "in_progress") else f"{resolved} ({status})")
    return out


def lane_stages(doc: Optional[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Parallel stages in flight (in_progress with a worktree), in queue order; see autometta.git.worktrees."""
    return [s for s in (doc or {}).get("stages") or []
            if isinstance(s, dict) and s.get("status") == "in_progress" and s.get("worktree")]

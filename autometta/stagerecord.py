"""One stage of state.yaml with named fields, over the very mapping the file holds.

``StageRecord(doc)`` reads and writes ``doc`` (one item of state.yaml's
``stages`` list) and nothing else: the file keeps exactly the keys it had
(the bash version reads and writes it too, :file:`schemas/state.json` lists
them), a key the record never set is never written, and a field that is
absent reads as None, as ``doc.get(key)`` did. Counters (``loops``,
``verifier_attempts``, tokens) read as 0 when absent.

A new field is one line in the class below (``my_field = Field()``) and an
entry in :file:`schemas/state.json`. Fields kept per role (``worker_pid``,
``verifier_started``, ``acceptance_run_id``...) are also read by role with
:meth:`StageRecord.pid`, :meth:`~StageRecord.started`,
:meth:`~StageRecord.run_id`.

No typing and no dataclasses here: the tick's path imports this.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: the tick imports this (tests/test_startup.py)
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional


def records(doc: Any) -> List[StageRecord]:
    """Each stage of a state document (one that is not a mapping is left out)."""
    stages = doc.get("stages") if isinstance(doc, dict) else None
    return [StageRecord(s) for s in stages or [] if isinstance(s, dict)]


class Field:
    """A key of the stage mapping, read as ``doc.get(key)`` (None when absent), written as ``doc[key] = v``."""

    __slots__ = ("key",)

    def __init__(self, key: str = "") -> None:
        self.key = key

    def __set_name__(self, owner: type, name: str) -> None:
        self.key = self.key or name

    def __get__(self, record: Optional[StageRecord], owner: Optional[type] = None) -> Any:
        if record is None:
            return self
        return record.doc.get(self.key)

    def __set__(self, record: StageRecord, value: Any) -> None:
        record.doc[self.key] = value

    def __delete__(self, record: StageRecord) -> None:
        record.doc.pop(self.key, None)


class Count(Field):
    """A counter: 0 when absent or null."""

    __slots__ = ()

    def __get__(self, record: Optional[StageRecord], owner: Optional[type] = None) -> Any:
        if record is None:
            return self
        return record.doc.get(self.key) or 0


class StageRecord:
    """A stage's fields by name (see :file:`schemas/state.json` for what each holds)."""

    __slots__ = ("doc",)

    def __init__(self, doc: Optional[Dict[str, Any]] = None) -> None:
        self.doc: Dict[str, Any] = doc if doc is not None else {}

    def __repr__(self) -> str:
        return f"StageRecord({self.doc!r})"

    # what it is and where it stands
    id = Field()
    status = Field()
    worker = Field()  # the worker's identity
    verifier = Field()  # the verifier's identity
    stall_marker = Field()
    started_at = Field()
    completed_at = Field()
    stopped_at = Field()
    loops = Count()  # the worker round it is in (absent: the first)
    tick_error = Field()
    parked_until = Field()
    # its processes (per role also by pid(role), started(role), run_id(role))
    worker_pid = Field()
    worker_started = Field()
    worker_exit = Field()
    worker_tree = Field()
    verifier_pid = Field()
    verifier_started = Field()
    verifier_attempts = Count()
    verifier_artefact = Field()
    verifier_run_artefact = Field()
    verifier_dispatched_at = Field()
    verifier_tree = Field()
    acceptance = Field()
    acceptance_pid = Field()
    # its worktree and branch, and landing them
    worktree = Field()
    branch = Field()
    base = Field()
    setup = Field()
    merge = Field()
    merge_onto = Field()
    claim_head = Field()
    claim_branch = Field()
    claim_record = Field()
    commit = Field()
    commit_from = Field()
    commit_run_id = Field()
    # what it spent
    tokens = Count()
    worker_tokens = Count()
    verifier_tokens = Count()
    cost_usd = Field()
    worker_cost_usd = Field()
    verifier_cost_usd = Field()
    # its agents' sessions (autometta.resume)
    sessions = Field()  # one record per worker or verifier run since the claim
    worker_restarts = Count()  # worker runs started again after the whole run vanished (a reboot)

    def identity(self, role: str) -> Any:
        """The identity the card gave ``role`` (``worker``, ``verifier``), as claimed."""
        return self.doc.get(role)

    def pid(self, role: str) -> Any:
        """``<role>_pid``: the process (group) of the role's run in flight, None when none is."""
        return self.doc.get(f"{role}_pid")

    def started(self, role: str) -> Any:
        """``<role>_started``: its process's start time, to tell it from a recycled pid."""
        return self.doc.get(f"{role}_started")

    def of(self, role: str, name: str) -> Any:
        """``<role>_<name>``: a field kept per role (``of("worker", "tokens")`` is ``worker_tokens``)."""
        return self.doc.get(f"{role}_{name}")

    def set_of(self, role: str, name: str, value: Any) -> None:
        """Set ``<role>_<name>``."""
        self.doc[f"{role}_{name}"] = value

    def add_to(self, role: str, name: str, amount: Any) -> Any:
        """Add ``amount`` to the counter ``<role>_<name>`` (absent: 0); the new value."""
        total = (self.of(role, name) or 0) + amount
        self.set_of(role, name, total)
        return total

    def clear(self, keys: Any) -> None:
        """Null each of ``keys`` the stage has (one it never had stays absent: the bash version's file)."""
        for key in keys:
            if key in self.doc:
                self.doc[key] = None

    def run_id(self, role: str) -> Any:
        """``<role>_run_id``: the mark of the role's current run (AUTOMETTA_RUN_ID)."""
        return self.doc.get(f"{role}_run_id")

    def session_rows(self) -> List[Dict[str, Any]]:
        """The session records as ``show`` and ``status --json`` list them (without the CLI's raw figures)."""
        from .resume import records

        return [{k: v for k, v in r.items() if k not in ("reported", "ended")} for r in records(self.doc)]

    def reaped(self) -> bool:
        """Has the worker been reaped? (bash-written state: a verifier already ran)."""
        return bool(self.worker_tree or self.worker_exit is not None or self.verifier_pid
                    or self.verifier_attempts or self.acceptance)

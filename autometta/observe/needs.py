"""What needs a person, per repo: the one answer every view and event reads.

:func:`needs_you` is a pure function of what a repo's files say -- its
``state.yaml``, its ``budget.json`` and the heartbeat's findings (the
registry entries as :func:`autometta.observe.heartbeat.check` classified
them) -- and returns :class:`Need` items, most pressing first:

=====================  ==========================================================
``halted``             the repo is halted (``marker``: why; ``since``: when)
``<stopped status>``   a stage stopped and waits for a person: ``stalled``,
                       ``failed``, ``verifier_failed``, ``merge_conflict``, ...
                       (every status in :data:`autometta.books.state.TERMINAL` but
                       ``completed``); ``marker``: its stall marker
``stuck``              an agent whose streaming log stopped growing
``over-budget``        an agent past its wall-clock budget
``unsupervised``       processes of an agent's run left running after its
                       supervising runner was killed
``parked``             a usage limit's reset is awaited (``until``): a billing route
                       parked for every repo on this host (``route``; listed under
                       the repo that met it), a stage in flight waiting to run its
                       agent again, or a repo an earlier autometta parked whole
``unreadable``         state.yaml or budget.json cannot be read (file views only)
=====================  ==========================================================

Each item carries the one ``command`` that addresses it (``autometta requeue
REPO ID``, ``autometta requeue --retry-merge REPO ID``, ``autometta tick
--reset-halt --repo REPO``, ...), a ``note`` to read before running it when
there is one, and ``look``: where to look first (``autometta show REPO ID``).

``status`` (table, ``--json``, the attach pane), the agent ticker, the
dashboard and its stage pages, ``report`` and the events all read these
items, so they cannot disagree. The billing routes parked in
``<home>/parked.json`` (:mod:`autometta.books.parking`, as
:func:`autometta.books.parking.shown` lists them) are given as ``parks``: a park is
an item of the repo that met it, and :func:`elsewhere` makes the items of
parks met in a repo no view lists (an unsubscribed repo, or another repo
than ``--repo``'s), so every view that lists several repos shows each park
once. From the tick, with the state, budget and
heartbeat report it already holds::

    from autometta.observe import needs
    items = needs.needs_you(str(paths.root), txn.state, txn.budget, report["entries"] if report else [])
    fields["needs_you"] = [item.as_dict() for item in items]

:func:`for_repo` reads the files itself (no subprocess, no git): the heartbeat's
findings come from the live check a view ran, else from the
``state/heartbeat.json`` the last tick wrote (only agents still registered).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ..books.state import TERMINAL
from ..frozen import Frozen
from ..paths import RepoPaths
from ..stagerecord import StageRecord
from ..timeutil import now_iso, parse_iso

#: Stage statuses that wait for a person until the stage is re-queued.
STOPPED = tuple(status for status in TERMINAL if status != "completed")
#: Heartbeat states a person should look at (:data:`autometta.observe.heartbeat.ALERT_STATES`).
AGENT_STATES = ("stuck", "over-budget", "unsupervised")
#: Every kind, most pressing first (the order items are returned in).
KINDS = ("unreadable", "halted") + STOPPED + AGENT_STATES + ("parked",)

# status reads these on every run: this module imports neither typing nor dataclasses (nor shlex, until
# a command is quoted), which cost it more than its own work (tests/test_startup.py)
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, Iterable, List, Optional

#: A :class:`Need`'s fields, in order; each but the first three may be left out (None).
FIELDS = ("kind", "repo", "summary", "command", "stage_id", "marker", "since", "until", "note", "look", "pid", "role",
          "route")


class Need(Frozen):
    """One thing a person has to do (or know) about a repo (read-only).

    ``kind``, ``repo``, ``summary``; ``command``, ``stage_id``, ``marker``,
    ``since``, ``until``, ``note``, ``look`` (text or None); ``pid`` (int or
    None); ``role``; ``route``: for ``parked``, the billing route (``claude
    subscription``, ...) whose usage limit is awaited.
    """

    __slots__ = FIELDS

    def __init__(self, kind: str, repo: str, summary: str, command: Optional[str] = None,
                 stage_id: Optional[str] = None, marker: Optional[str] = None, since: Optional[str] = None,
                 until: Optional[str] = None, note: Optional[str] = None, look: Optional[str] = None,
                 pid: Optional[int] = None, role: Optional[str] = None, route: Optional[str] = None) -> None:
        self._set(zip(FIELDS, (kind, repo, summary, command, stage_id, marker, since, until, note, look, pid, role,
                               route)))

    def fix(self) -> str:
        """``command  (note)``: the command first (a narrow pane cuts the end), the command alone, or the note."""
        if self.note and self.command:
            return f"{self.command}  ({self.note})"
        return self.command or self.note or ""


def _text(value: Any) -> Optional[str]:
    """A field as text for a person; None when it says nothing (a hostile file may put anything there)."""
    if value is None or isinstance(value, (dict, list)) or value == "":
        return None
    return str(value)


def _q(text: str) -> str:
    import shlex

    return shlex.quote(text)


def _stage_need(repo: str, stage: Mapping[str, Any], detail: Optional[str]) -> Need:
    rec = StageRecord(stage)
    stage_id, status = str(rec.id), str(rec.status)
    marker = _text(rec.stall_marker)
    shown = marker if marker and marker.startswith(status + ":") else (
        f"{status} ({marker})" if marker else status)
    summary = f"{stage_id}: {shown}{f' - {detail}' if detail else ''}"
    worktree, branch = _text(rec.worktree), _text(rec.branch)
    landable = status == "merge_conflict" or (status == "failed" and (marker or "").startswith(
        "post_merge_acceptance_failed"))
    if landable and worktree and branch:
        command = f"autometta requeue --retry-merge {_q(repo)} {_q(stage_id)}"
        note: Optional[str] = (f"after you resolve it on {branch} in {worktree} and commit"
                               if status == "merge_conflict" else f"after you fix {branch} in {worktree} and commit")
    else:
        command, note = f"autometta requeue {_q(repo)} {_q(stage_id)}", None
    return Need(kind=status, repo=repo, summary=summary, command=command, stage_id=stage_id, marker=marker,
                since=_text(rec.stopped_at), note=note,
                look=f"autometta show {_q(repo)} {_q(stage_id)}")


def _agent_need(repo: str, row: Mapping[str, Any], now: Optional[float]) -> Need:
    from ..agents.registry import card_stem, stage_of

    state = str(row.get("state"))
    stage_id = stage_of(dict(row)) or None
    pid = row.get("pid") if isinstance(row.get("pid"), int) and not isinstance(row.get("pid"), bool) else None
    role = _text(row.get("role")) or "agent"
    reason = _text(row.get("reason"))
    since = None
    silent = row.get("log_mtime_age_seconds")
    if state == "stuck" and now is not None and isinstance(silent, (int, float)) and not isinstance(silent, bool):
        since = now_iso(now - float(silent))  # when its log last grew
    elif state == "over-budget":
        since = _text(row.get("started_at"))
    where = stage_id or card_stem(dict(row))
    summary = f"{where}: {role} pid {pid if pid is not None else '?'} {state}{f' ({reason})' if reason else ''}"
    look = f"autometta show {_q(repo)} {_q(stage_id)}" if stage_id else (
        f"less {_q(str(row['log_path']))}" if _text(row.get("log_path")) else None)
    command = f"kill -TERM -{pid}" if pid is not None else None
    note = "if it has hung" if pid is not None else None
    if state == "unsupervised":  # its runner (the pid) is gone; what is left of its run is found by its mark
        left = [p for p in row.get("pids") or [] if isinstance(p, int) and not isinstance(p, bool) and p > 1]
        command = (f"autometta stop {_q(repo)} {_q(stage_id)}" if stage_id else
                   f"kill -TERM {' '.join(map(str, left))}" if left else None)
        note = "or let the next tick stop it: the stage then stalls runner_lost"
    return Need(kind=state, repo=repo, summary=summary, command=command, stage_id=stage_id,
                marker=reason, since=since, note=note, look=look, pid=pid, role=role)


#: The name a view gives an item of no repo it lists: a billing route parked by another repo (it holds them all).
HOST = "(this host)"
#: What to do about a park: nothing (the note every ``parked`` item carries).
PARK_NOTE = "nothing to do: it resumes by itself then"
ROUTE_NOTE = "nothing to do: it resumes by itself then; the other family keeps working"


def _same_repo(a: Any, b: str) -> bool:
    return isinstance(a, str) and bool(a) and (a == b or os.path.realpath(a) == os.path.realpath(b))


def _in_force(until: Optional[str], now: Optional[float]) -> bool:
    when = parse_iso(until or "")
    return when is not None and (now is None or when > now)


def _route_need(repo: str, park: Mapping[str, Any]) -> Need:
    route, until, reason = _text(park.get("route")) or "?", _text(park.get("until")), _text(park.get("reason"))
    stage_id = _text(park.get("stage"))
    met = _text(park.get("repo"))
    where = f"{stage_id} in {met}" if stage_id and met else (met or stage_id)
    said = "; ".join(part for part in (reason, f"met by {where}" if where else None) if part)
    summary = f"{route} parked until {until} for every repo on this host{f' ({said})' if said else ''}"
    home = repo or met  # the repo it is an item of (the view's spelling of its path), else where it was met
    return Need(kind="parked", repo=home or "", summary=summary, stage_id=stage_id, marker=reason,
                since=_text(park.get("since")), until=until, note=ROUTE_NOTE, route=route,
                look=f"autometta show {_q(home)} {_q(stage_id)}" if home and stage_id else None)


def _parked(repo: str, doc: Mapping[str, Any], parks: Iterable[Mapping[str, Any]], now: Optional[float]) -> List[Need]:
    """The parks of ``repo``: the routes it met a limit on, its stages waiting for a reset, a whole-repo park."""
    out: List[Need] = []
    covered = set()
    for park in parks:
        if isinstance(park, Mapping) and _same_repo(park.get("repo"), repo) and _in_force(_text(park.get("until")), now):
            out.append(_route_need(repo, park))
            covered.add(_text(park.get("stage")))
    for stage in doc.get("stages") or []:
        rec = StageRecord(stage) if isinstance(stage, Mapping) else None
        if rec is None or rec.status != "in_progress":
            continue
        stage_id, until = str(rec.id), _text(rec.parked_until)
        if stage_id in covered or not _in_force(until, now):
            continue  # its route's park says it already
        out.append(Need(kind="parked", repo=repo, stage_id=stage_id, until=until, note=PARK_NOTE,
                        summary=f"{stage_id}: waits for a usage limit to reset, until {until}",
                        look=f"autometta show {_q(repo)} {_q(stage_id)}"))
    until = _text(doc.get("parked_until"))
    if _in_force(until, now):  # a whole-repo park an earlier autometta recorded
        reason = _text(doc.get("park_reason"))
        out.append(Need(kind="parked", repo=repo, until=until, marker=reason,
                        summary=f"parked until {until}{f' ({reason})' if reason else ''}", note=PARK_NOTE))
    return out


def elsewhere(parks: Iterable[Mapping[str, Any]], repos: Iterable[str], now: Optional[float] = None) -> List[Need]:
    """The parks in force met in none of ``repos`` (the repos a view lists): each still holds every repo
    on this host, so a view shows it on its own. A pure function."""
    shown = [str(r) for r in repos]
    return [_route_need("", park) for park in parks
            if isinstance(park, Mapping) and _in_force(_text(park.get("until")), now)
            and not any(_same_repo(park.get("repo"), r) for r in shown)]


def needs_you(repo: str, state_doc: Optional[Mapping[str, Any]], budget_doc: Optional[Mapping[str, Any]],
              agents: Iterable[Mapping[str, Any]] = (), now: Optional[float] = None,
              detail_of: Optional[Callable[[str], Optional[str]]] = None,
              parks: Iterable[Mapping[str, Any]] = ()) -> List[Need]:
    """What needs a person in ``repo`` (its path), most pressing first: a pure function.

    ``agents``: the heartbeat's rows for the live agents (``state``, ``pid``,
    ``role``, ``reason``, ...); only ``stuck``, ``over-budget`` and ``unsupervised`` ones count.
    ``detail_of(stage_id)``: an extra word on a stopped stage (its verdict's
    first FAIL), or None. ``now``: for ``parked`` (a reset in the past is no
    longer a park) and a stuck agent's ``since``. ``parks``: the billing
    routes parked on this host (:func:`autometta.books.parking.shown`); those met
    in ``repo`` are its items.
    """
    out: List[Need] = []
    b = budget_doc if isinstance(budget_doc, Mapping) else {}
    doc = state_doc if isinstance(state_doc, Mapping) else {}
    if b.get("halted"):
        reason = _text(b.get("halt_reason")) or "unknown"
        out.append(Need(kind="halted", repo=repo, summary=f"halted: {reason}", marker=reason,
                        since=_text(b.get("halted_at")), command=f"autometta tick --reset-halt --repo {_q(repo)}",
                        note="after you fix the cause: docs/troubleshooting.md names each marker"))
    stopped = [s for s in doc.get("stages") or [] if isinstance(s, Mapping) and s.get("status") in STOPPED]
    for stage in stopped:
        detail = detail_of(str(StageRecord(stage).id)) if detail_of is not None else None
        out.append(_stage_need(repo, stage, detail))
    for row in agents:
        if isinstance(row, Mapping) and row.get("state") in AGENT_STATES:
            out.append(_agent_need(repo, row, now))
    out.extend(_parked(repo, doc, parks if parks is not None else (), now))
    return out


# --------------------------------------------------------------------------- from the files


def findings(paths: RepoPaths) -> List[Dict[str, Any]]:
    """The live agents in the ``heartbeat.json`` the last tick wrote, still registered (file reads only)."""
    from .. import files
    from ..errors import UserError

    try:
        report = files.read_json(paths.heartbeat)  # bounded: never a FIFO, nor nesting that overflows
    except UserError:
        return []
    entries = report.get("entries") if isinstance(report, dict) else None
    out = []
    for row in entries if isinstance(entries, list) else []:
        pid = row.get("pid") if isinstance(row, dict) else None
        if isinstance(pid, int) and not isinstance(pid, bool) and (paths.active_agents / f"{pid}.json").is_file():
            out.append(row)
    return out


def for_repo(paths: RepoPaths, now: float, agents: Optional[Iterable[Mapping[str, Any]]] = None,
             state_doc: Any = False, budget_doc: Any = False,
             parks: Iterable[Mapping[str, Any]] = ()) -> List[Need]:
    """:func:`needs_you` for one repo, reading what was not given (files only: no subprocess, no git).

    ``state_doc`` / ``budget_doc``: the documents when the caller already read
    them (None: unreadable or absent), else they are read here; a file that
    exists but cannot be read is an ``unreadable`` item.
    """
    repo = str(paths.root)
    out: List[Need] = []
    if state_doc is False:
        state_doc = _read(paths, "state", out)
    if budget_doc is False:
        budget_doc = _read(paths, "budget", out)
    rows = findings(paths) if agents is None else list(agents)
    return out + needs_you(repo, state_doc, budget_doc, rows, now, lambda sid: first_fail(paths, sid), parks)


def _read(paths: RepoPaths, which: str, problems: List[Need]) -> Optional[Dict[str, Any]]:
    from ..books import budget, state
    from ..errors import UserError

    path = paths.state_yaml if which == "state" else paths.budget
    if not os.path.lexists(path):  # a symlink to nowhere is there, and unreadable
        return None
    try:
        return state.load_state(paths) if which == "state" else budget.load_budget(paths)
    except UserError as exc:
        prefix = f"{paths.root}{os.sep}"  # the file first, named from its repo: a narrow pane cuts the end
        summary = exc.message[len(prefix):] if exc.message.startswith(prefix) else exc.message
        problems.append(Need(kind="unreadable", repo=str(paths.root), summary=summary, marker=str(path),
                             note="the tick stops at this repo until the file is fixed or restored"))
        return None


def lines(items: Iterable[Need], name: Optional[str] = None, now: Optional[float] = None) -> List[str]:
    """Two lines per item for a terminal: what (and since when), then ``-> what to do``; a marker
    quoting an agent sends no escape to the terminal."""
    from .screen import age, clean

    out = []
    for item in items:
        when = ""
        stamp = parse_iso(item.since or "") if item.since else None
        if stamp is not None and now is not None:
            when = f"  (since {age(now - stamp)} ago)"
        out.append(clean(f"{f'{name}  ' if name else ''}{item.summary}{when}"))
        if item.fix():
            out.append(clean(f"    -> {item.fix()}"))
    return out


def first_fail(paths: RepoPaths, stage_id: str) -> Optional[str]:
    """``FAIL 2: name`` from the stage's verdict, or None (none, or not a valid verdict)."""
    from ..envelope import load_verdict

    doc = load_verdict(paths.verifier_artefact(stage_id))
    for crit in (doc or {}).get("criteria") or []:
        if crit.get("verdict") == "FAIL":
            return f"FAIL {crit.get('id')}: {crit.get('name') or ''}".strip()
    return None


__all__ = ["Need", "needs_you", "for_repo", "elsewhere", "findings", "lines", "HOST", "STOPPED", "AGENT_STATES",
           "KINDS", "first_fail"]


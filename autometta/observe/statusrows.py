"""The rows of ``autometta status``: one per subscribed repo, what needs you in each, and their lines.

:mod:`autometta.observe.tickers` builds the status document from them (``status --json``, ``status
--watch``); :mod:`autometta.commands.status` prints it. Files only, per repo: no git, no subprocess.
"""

from __future__ import annotations

import time

from .. import home, manifest
from ..books import budget, state
from ..errors import UserError
from ..paths import HomePaths
from ..stagerecord import StageRecord
from ..timeutil import parse_iso
from . import byhand, lanes as lane_view, needs as needing
from .screen import compact

TYPE_CHECKING = False  # not typing's: an idle tick and status import no typing (tests/test_startup.py)
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional, Tuple

COLUMNS = (("repo", 14), ("stage", 18), ("status", 18), ("ticks", 7), ("fail", 4), ("tokens", 6), ("cost", 6))


def repo_row(sub: home.Subscriber, now: Optional[float] = None, settings: Any = None,
             parks: Optional[List[Dict[str, Any]]] = None) -> Dict[str, Any]:
    """One repo's row; ``parks``: the billing routes parked on this host (:func:`autometta.books.parking.shown`)."""
    now = time.time() if now is None else now
    row: Dict[str, Any] = {
        "repo": sub.name,
        "repo_path": str(sub.repo_path) if sub.repo_path else None,
        "subscriber_file": str(sub.file),
        "enabled": sub.enabled,
        "stage": None,
        "status": None,
        "halted": False,
        "halt_reason": None,
        "errors": [],
        "needs_you": [],
    }
    if sub.error or not sub.enabled:
        row["status"] = "error" if sub.error else "off"
        row["errors"] += [sub.error] if sub.error else []
        if sub.repo_path is not None:  # a billing route it parked still holds every repo on this host
            row["needs_you"] = [item.as_dict() for item in needing.needs_you(str(sub.repo_path), None, None,
                                                                             now=now, parks=parks or ())]
        return row
    paths = sub.paths
    try:
        doc = state.load_state(paths)
    except UserError as exc:
        row["status"] = "missing" if not paths.state_yaml.exists() else "error"
        row["errors"].append(exc.message)
        doc = None
    try:
        b = budget.load_budget(paths)
    except UserError as exc:
        row["errors"].append(exc.message)
        if row["status"] is None:
            row["status"] = "error"
        b = None
    if doc is not None:
        current = doc.get("current_stage")
        row["stage"] = current
        row["queue"] = {s: sum(1 for st in doc["stages"] if st.get("status") == s) for s in state.STATUSES}
        repo_manifest = _manifest(sub)
        row["max_parallel"] = manifest.max_parallel(repo_manifest or {}, sub.max_parallel)
        row["lanes"] = lane_view.lanes(doc)
        if current:
            stage = state.find_stage(doc, current)
            rec = StageRecord(stage) if stage else None
            row["status"] = rec.status if rec else "missing-stage-record"
            if rec:
                row["worker_pid"] = rec.worker_pid
                row["verifier_pid"] = rec.verifier_pid
        elif row["lanes"]:
            row["stage"] = lane_view.in_flight_ids(doc)
            if row["status"] is None:
                row["status"] = "in_progress"
            if len(row["lanes"]) == 1:
                row["worker_pid"] = row["lanes"][0].get("worker_pid")
                row["verifier_pid"] = row["lanes"][0].get("verifier_pid")
        elif row["status"] is None:
            row["status"] = "idle"
        row["waiting"] = _waiting(sub, doc, repo_manifest)
        park = _parked(doc, now)
        if park is not None:
            row["parked_until"], row["park_reason"] = park
            if row["status"] in ("idle", "in_progress"):
                row["status"] = "parked"
    if b is not None:
        for key in ("clock_ticks_used", "clock_tick_cap", "consecutive_failures", "consecutive_failure_cap",
                    "tokens_spent", "token_cap_total", "cost_usd_spent", "cost_cap_usd",
                    "wall_clock_elapsed_seconds", "wall_clock_cap_seconds"):
            row[key] = b.get(key)
        row.update(budget.lifetime(b))
        if b.get("halted"):
            row["halted"] = True
            row["halt_reason"] = b.get("halt_reason")
            row["status"] = f"halted:{b.get('halt_reason') or '-'}"
    row["by_hand"] = byhand.rows(paths)  # the sessions of stages run by hand, as show lists them
    items = needing.for_repo(paths, now, _agents(paths, settings, now), state_doc=doc, budget_doc=b,
                             parks=parks or ())
    row["needs_you"] = [item.as_dict() for item in items]
    waiting = sum(1 for item in items if item.kind != "parked")
    if row["status"] == "idle" and waiting:
        row["status"] = f"needs you: {waiting}"
    return row


def _agents(paths: Any, settings: Any, now: float) -> List[Dict[str, Any]]:
    """The heartbeat's live reading of the repo's registered agents (none registered: no work)."""
    if not paths.active_agents.is_dir():
        return []
    from . import heartbeat
    from . import settings as observe_settings

    try:
        conf = settings if settings is not None else observe_settings.load({})
        return heartbeat.check(paths, conf, now, write=False)["entries"]
    except Exception:  # noqa: BLE001 - a watchdog's trouble must not cost the status table
        return needing.findings(paths)


def _parked(doc: Dict[str, Any], now: float) -> Optional[Tuple[str, str]]:
    """(until, reason) when a stage of this repo waits for a usage limit to reset (or an older autometta
    parked the whole repo); None otherwise. What needs you says which route and until when."""
    for stage in doc.get("stages") or []:
        rec = StageRecord(stage) if isinstance(stage, dict) else None
        if rec is None or rec.status != "in_progress":
            continue
        until = parse_iso(str(rec.parked_until or ""))
        if until is not None and until > now:
            return str(rec.parked_until), f"{rec.id} waits for a usage limit to reset"
    until = parse_iso(str(doc.get("parked_until") or ""))
    if until is not None and until > now:
        return str(doc.get("parked_until")), str(doc.get("park_reason"))
    return None


def _manifest(sub: home.Subscriber) -> Optional[Dict[str, Any]]:
    """The repo's manifest, or None when it cannot be read (the tick and lint-card report that)."""
    try:
        return manifest.load_manifest(sub.paths, sub.manifest_path)
    except UserError:
        return None


def _waiting(sub: home.Subscriber, doc: Dict[str, Any],
             repo_manifest: Optional[Dict[str, Any]]) -> Dict[str, List[str]]:
    """Pending stage id -> what its ``Depends on`` still waits for (file reads only)."""
    pending = [s.get("id") for s in doc["stages"] if isinstance(s, dict) and s.get("status") == "pending"]
    if not pending or repo_manifest is None:
        return {}
    from .. import card as cards  # not at import: a repo with nothing pending reads no card

    out: Dict[str, List[str]] = {}
    try:
        globs = cards.card_globs(sub.paths.root, repo_manifest)
        for stage_id in pending:
            path = cards.find_card(sub.paths.root, stage_id, globs) if cards.is_valid_stage_id(stage_id) else None
            waits = state.unmet_dependencies(cards.parse_card(path).depends_on, doc) if path else []
            if waits:
                out[stage_id] = waits
    except UserError:
        pass  # a card or manifest problem is the tick's and lint-card's to report
    return out


def _cells(row: Dict[str, Any]) -> List[str]:
    def frac(a: Any, b: Any) -> str:
        return "-" if a is None else f"{a}/{b if b is not None else '-'}"

    cost = row.get("cost_usd_spent")
    return [
        row["repo"],
        row.get("stage") or "-",
        row.get("status") or "-",
        frac(row.get("clock_ticks_used"), row.get("clock_tick_cap")),
        frac(row.get("consecutive_failures"), row.get("consecutive_failure_cap")),
        compact(row.get("tokens_spent")),
        "-" if row.get("tokens_spent") is None else f"${cost or 0:.2f}",
    ]


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "~"


def render_table(rows: List[Dict[str, Any]]) -> str:
    lines = [" ".join(f"{name:<{w}}" for name, w in COLUMNS).rstrip(),
             " ".join("-" * w for _, w in COLUMNS)]
    for row in rows:
        cells = _cells(row)
        lines.append(" ".join(f"{_fit(c, w):<{w}}" for c, (_, w) in zip(cells, COLUMNS)).rstrip())
    return "\n".join(lines)


def lane_lines(row: Dict[str, Any]) -> List[str]:
    """``repo: lane 01-a: worker (pid 4242), autometta/01-a onto main``, one per lane in flight.

    At ``max_parallel`` 1 the one stage in its worktree is a ``stage``, not a lane.
    """
    word = "lane" if (row.get("max_parallel") or 1) > 1 else "stage"
    return [f"{row['repo']}: {word} {lane_view.describe(lane)}" for lane in row.get("lanes") or []]


def parks_now(hp: HomePaths, now: float) -> List[Dict[str, Any]]:
    """The billing routes parked on this host, in force at ``now`` (``<home>/parked.json``)."""
    from ..books import parking

    return parking.shown(parking.load(hp), now)


def collect(hp: HomePaths, now: Optional[float] = None, settings: Any = None,
            parks: Optional[List[Dict[str, Any]]] = None) -> List[Dict[str, Any]]:
    home.require_home(hp)
    if settings is None:
        from . import settings as observe_settings

        settings = observe_settings.from_home(hp)
    now = time.time() if now is None else now
    parks = parks_now(hp, now) if parks is None else parks
    return [repo_row(sub, now, settings, parks) for sub in home.load_subscribers(hp)]


def needs_lines(items: List[Dict[str, Any]], now: float) -> List[str]:
    """``NEEDS YOU (n)`` and two lines per item of the status document's ``needs_you`` (each names its
    repo, or :data:`autometta.observe.needs.HOST`); one line when nothing does."""
    found = [(str(item.get("name") or needing.HOST), {k: v for k, v in item.items() if k != "name"}) for item in items]
    if not found:
        return ["NEEDS YOU: nothing"]
    out = [f"NEEDS YOU ({len(found)})"]
    for name, item in found:
        out.extend(f"  {line}" for line in needing.lines([needing.Need(**item)], name, now))
    return out


def latest_log(hp: HomePaths) -> Optional[str]:
    if not hp.log_dir.is_dir():
        return None
    logs = sorted(p for p in hp.log_dir.glob("tick-*.log"))
    return str(logs[-1]) if logs else None

"""The spend ledger: every run autometta starts, booked once, to its repo, stage, role, family and model.

One append-only file per repo in the controller home,
``<home>/ledger/<repo name>-<hash>.jsonl`` (:meth:`HomePaths.ledger`), one
JSON object a line::

    {"key": "05-x/worker/4242/1764000000.12", "repo": "/src/app", "stage": "05-x", "role": "worker",
     "by": "tick", "family": "claude", "identity": "Claude Sonnet 4.6 <...>", "model": "claude-sonnet-4-6",
     "route": "subscription", "parent": null, "started_at": "...", "ended_at": "...", "day": "2026-12-04",
     "seconds": 312, "exit_code": 0, "tokens": 18250, "input_tokens": ..., "output_tokens": ...,
     "cache_read_tokens": ..., "cache_write_tokens": ..., "cost_usd": 0.41, "booked_at": "..."}

Who books:

* the tick, when it accounts a run (:func:`book_tick_run`, from
  ``effects._account``): workers, verifiers, acceptance and setup commands;
  a verifier panel is booked as the panel's own run (its time, no tokens)
  and one entry per panellist with that panellist's family, model and tokens
  (``parent`` names the panel's run);
* ``dispatch``, ``verify`` and ``accept`` by hand: each run they start is
  noted in ``<home>/ledger/open/`` (:func:`open_run`) and booked once it has
  ended, by the command itself when it waits, else by the next tick
  (:func:`settle_open`), whichever comes first;
* ``autometta panel``: its panellists, when it has counted their votes.

**Once.** The key is the run: its stage, role, runner pid and start time.
:func:`book` appends under a lock only when no complete line has that key,
so a tick killed after booking and before saving state books nothing twice
when the next tick accounts the run again; a line cut short by a kill is
skipped by every reader and closed off by the next writer.

**The caps compare against it.** ``budget.json`` keeps the bash version's
counters (``tokens_spent``, ``cost_usd_spent``,
``wall_clock_elapsed_seconds``), and ``ledger_offset``: how many bytes of the
repo's ledger are already added to them. :func:`fold` adds the entries past
it and moves it, in the same atomic write of budget.json, so a run booked by
hand counts against the repo's caps on its next tick, and one booked by a
tick that was killed before it saved is added exactly once. A panellist's
seconds ran inside its panel's, so only the panel's count toward the wall
clock. ``tick --reset-halt`` resets a counter; the ledger keeps every entry,
and budget.json's lifetime totals, which each fold adds to as well, keep the sum.

``report`` and the dashboard read the ledger for spend per day (the UTC day a
run ended) and per model (:func:`summarise`).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from .. import files
from ..errors import UserError
from ..paths import HomePaths, RepoPaths
from ..repo import home_of  # the controller home a repo context books to (callers name it ledger.home_of)
from ..timeutil import now_iso, parse_iso

# Every tick asks whether runs are to be booked or folded (settle_open, pending), an idle one too: this module
# imports no typing, and settle_open imports what reads a run only when there is one (tests/test_startup.py).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, Iterable, List, Mapping, Optional

VERSION = 1
FILE_MODE = 0o600
#: budget.json: bytes of the repo's ledger already added to its counters.
OFFSET = "ledger_offset"
COUNTS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
#: An entry claiming more than this in one run is not one autometta wrote: it is skipped.
MAX_TOKENS = 10 ** 12
MAX_COST = 10 ** 7
LOCK_WAIT_SECONDS = 30.0
#: Family of a command role (acceptance, setup, postmerge): no model, no tokens, only time.
COMMAND = "command"
PANEL = "panel"

_SAFE = r"[^A-Za-z0-9._-]+"  #: compiled on first use (``re`` keeps it): only a run started by hand needs it


# ------------------------------------------------------------------ entries

def run_key(stage_id: str, role: str, pid: Any, started: Any) -> str:
    """The run: stage, role, runner pid and start time (a bash-era run: the claim time)."""
    if isinstance(started, (int, float)) and not isinstance(started, bool):
        when = f"{float(started):.2f}"
    else:
        when = str(started or "unknown")
    return f"{stage_id}/{role}/{pid}/{when}"


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < MAX_TOKENS else 0


def make_entry(*, key: str, repo: Any, stage_id: str, role: str, info: Mapping[str, Any], by: str,
               started_at: Optional[str], ended_at: Optional[str], seconds: Any, exit_code: Any = None,
               usage: Any = None, parent: Optional[str] = None, now: Optional[float] = None) -> Dict[str, Any]:
    """One ledger line; ``usage`` is a :class:`autometta.families.usage.Usage` or None (no tokens reported)."""
    booked = now_iso(now)
    at = ended_at or started_at or booked
    cost = getattr(usage, "cost_usd", None) if usage is not None else None
    try:
        secs = max(0, int(round(float(seconds or 0))))
    except (TypeError, ValueError):
        secs = 0
    entry: Dict[str, Any] = {
        "v": VERSION, "key": key, "repo": os.path.realpath(str(repo)), "stage": stage_id, "role": role, "by": by,
        "family": info.get("family"), "identity": info.get("identity"), "model": info.get("model"),
        "route": info.get("route"), "parent": parent, "started_at": started_at, "ended_at": ended_at,
        "day": str(at)[:10], "seconds": secs, "exit_code": exit_code if isinstance(exit_code, int) else None,
        "tokens": int(usage.total_tokens) if usage is not None else 0,
    }
    for name in COUNTS:
        entry[name] = int(getattr(usage, name, 0) or 0) if usage is not None else 0
    entry["cost_usd"] = round(float(cost), 6) if isinstance(cost, (int, float)) and cost else None
    if info.get("seat"):
        entry["seat"] = info["seat"]
    entry["booked_at"] = booked
    return entry


def valid(entry: Any) -> bool:
    """An entry autometta could have written (agents can reach the home: a reader trusts nothing else)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("key"), str) or not isinstance(entry.get("repo"), str):
        return False
    for name in ("tokens", "seconds", *COUNTS):
        value = entry.get(name, 0)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < MAX_TOKENS:
            return False
    cost = entry.get("cost_usd")
    if cost is not None and (not isinstance(cost, (int, float)) or isinstance(cost, bool) or not 0 <= cost < MAX_COST):
        return False
    return all(entry.get(name) is None or isinstance(entry.get(name), str)
               for name in ("stage", "role", "family", "identity", "model", "route", "parent", "day", "ended_at"))


# ------------------------------------------------------------------ booking

def _lock(path: Path) -> Path:
    return path.with_name(f".{path.name}.lock")


def _booked(data: bytes, key: str) -> bool:
    """Is ``key`` on a complete, readable line of ``data``?"""
    marker = ('"key": ' + json.dumps(key)).encode("utf-8")
    start = 0
    while True:
        at = data.find(marker, start)
        if at < 0:
            return False
        begin = data.rfind(b"\n", 0, at) + 1
        end = data.find(b"\n", at)
        if end >= 0:
            try:
                doc = json.loads(data[begin:end].decode("utf-8"))
            except (UnicodeDecodeError, ValueError, RecursionError):
                doc = None
            if isinstance(doc, dict) and doc.get("key") == key:
                return True
        start = at + len(marker)


def book(hp: HomePaths, entry: Dict[str, Any]) -> bool:
    """Append ``entry`` to its repo's ledger unless its key is booked already; True if it was added."""
    path = hp.ledger(entry["repo"])
    files.ensure_dir(hp.root, mode=0o700)
    files.ensure_dir(path.parent, mode=0o700)
    line = (json.dumps(entry, sort_keys=True, ensure_ascii=True) + "\n").encode("utf-8")
    with files.locked(_lock(path), timeout=LOCK_WAIT_SECONDS):
        try:
            with files.open_regular(path) as handle:  # never a FIFO put in its place
                data = handle.read()
        except FileNotFoundError:
            data = b""
        except OSError as exc:
            raise UserError(f"{path}: cannot read the spend ledger ({exc.strerror})") from exc
        if _booked(data, entry["key"]):
            return False
        if data and not data.endswith(b"\n"):
            line = b"\n" + line  # a line a kill cut short stays a broken line of its own
        try:
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
            fd = os.open(str(path), flags, FILE_MODE)  # never through a symlink an agent put there
            try:
                view = memoryview(line)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise UserError(f"{path}: cannot append to the spend ledger ({exc.strerror})") from exc
    return True


# ------------------------------------------------------------------ reading

def _lines(data: bytes) -> Iterable[Dict[str, Any]]:
    for raw in data.split(b"\n"):
        if not raw.strip():
            continue
        try:
            doc = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            continue
        if valid(doc):
            yield doc


def ledger_files(hp: HomePaths) -> List[Path]:
    try:
        return sorted(p for p in hp.ledger_dir.iterdir() if p.suffix == ".jsonl" and p.is_file()
                      and not p.is_symlink())
    except OSError:
        return []


def entries(hp: HomePaths, repo: Optional[Any] = None, since: Optional[float] = None) -> List[Dict[str, Any]]:
    """Every complete, valid entry (of ``repo`` only, ended at or after ``since``), in booking order per repo."""
    paths = [hp.ledger(repo)] if repo is not None else ledger_files(hp)
    out: List[Dict[str, Any]] = []
    for path in paths:
        try:
            with files.open_regular(path) as handle:  # never a FIFO put in its place
                data = handle.read()
        except OSError:
            continue
        cut = data.rfind(b"\n") + 1  # a last line still being written is not read
        for doc in _lines(data[:cut]):
            if since is not None:
                when = parse_iso(str(doc.get("ended_at") or doc.get("started_at") or doc.get("booked_at") or ""))
                if when is None or when < since:
                    continue
            out.append(doc)
    return out


# ------------------------------------------------------------------ the caps' counters

def add_to_counters(budget: Dict[str, Any], *, tokens: int = 0, cost_usd: float = 0.0, seconds: int = 0) -> None:
    """Add spend to the counters the caps compare (the bash version's fields) and to the lifetime
    totals beside them, which no reset clears (:func:`autometta.books.budget.spend`)."""
    from .budget import spend

    spend(budget, tokens=int(tokens), cost_usd=float(cost_usd), seconds=int(seconds))


def pending(hp: HomePaths, repo: Any, budget: Mapping[str, Any]) -> bool:
    """Does the ledger hold entries past the budget's offset? (one stat)"""
    try:
        size = os.stat(hp.ledger(repo)).st_size
    except OSError:
        return False
    return size != _offset(budget)


def _offset(budget: Mapping[str, Any]) -> int:
    value = budget.get(OFFSET)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def fold(hp: HomePaths, repo: Any, budget: Dict[str, Any]) -> int:
    """Add the repo's entries past ``budget['ledger_offset']`` to its counters and move the offset.

    Changes ``budget`` in memory only; the caller writes it (counters and
    offset together). Returns how many entries were added. A ledger shorter
    than the offset was replaced or emptied: it is read from its start.
    """
    path = hp.ledger(repo)
    offset = _offset(budget)
    try:
        size = os.stat(path).st_size
    except OSError:
        return 0
    if size == offset:
        return 0
    if size < offset:
        offset = 0
    try:
        with files.open_regular(path) as handle:  # never a FIFO put in its place
            handle.seek(offset)
            data = handle.read()
    except OSError:
        return 0
    cut = data.rfind(b"\n") + 1
    if cut == 0:
        return 0
    added = 0
    tokens, cost, seconds = 0, 0.0, 0
    for doc in _lines(data[:cut]):
        tokens += doc.get("tokens", 0)  # valid(): an entry without a count counts none
        cost += float(doc.get("cost_usd") or 0)
        if not doc.get("parent"):  # a panellist's time ran inside its panel's
            seconds += doc.get("seconds", 0)
        added += 1
    add_to_counters(budget, tokens=tokens, cost_usd=cost, seconds=seconds)
    budget[OFFSET] = offset + cut
    return added


# ------------------------------------------------------------------ what a run was

def run_info(ctx: Any, stage: Mapping[str, Any], role: str, card: Any = None) -> Dict[str, Any]:
    """Family, identity, model and billing route of ``role`` for ``stage`` as ``ctx`` would start it now."""
    from .. import auth
    from ..agents.provision import COMMAND_ROLES, identity_for
    from ..families import family_of
    from ..families.models import resolve_model

    if role in COMMAND_ROLES:
        return {"family": COMMAND, "identity": COMMAND_ROLES[role], "model": None, "route": None}
    identity = identity_for(stage, role)
    family = family_of(identity) or "unknown"
    try:
        model = resolve_model(identity, family, (getattr(ctx, "config", None) or {}).get("models") or {})
    except UserError:
        model = None
    environ = getattr(ctx, "environ", None) or os.environ
    manifest = getattr(ctx, "manifest", None) or {}
    route = (auth.mode_for(family, environ, manifest).mode if family in auth.routes() else None)
    info = {"family": family, "identity": identity, "model": model, "route": route}
    if role == "verifier":
        from ..verify.transport import panel_enabled, transport_for

        if card is not None and panel_enabled(environ, bool(getattr(card, "panel", False))):
            return {"family": PANEL, "identity": "autometta panel", "model": None, "route": None}
        try:
            if transport_for(family, environ, manifest).transport == "api":
                info["route"] = "api"
        except UserError:
            pass
    return info


def route_label(entry: Mapping[str, Any]) -> str:
    family, route = entry.get("family") or "?", entry.get("route")
    return f"{family} {route}" if route else str(family)


def model_label(entry: Mapping[str, Any]) -> str:
    if entry.get("model"):
        return str(entry["model"])
    family = entry.get("family") or "?"
    if family in (COMMAND, PANEL):
        return str(family)
    return f"{family} (default model)"


# ------------------------------------------------------------------ the verifier panel

def panel_plan(paths: RepoPaths, stage_id: str, started: Any) -> Optional[Dict[str, Any]]:
    """The panel plan the verifier run that started at ``started`` carried out, or None (not a panel).

    The tick writes the plan just before it starts the panel, so a plan
    written well before that run belongs to an earlier attempt.
    """
    from ..verify import panel

    path = panel.plan_path(paths, stage_id)
    try:
        written = path.stat().st_mtime
    except OSError:
        return None
    if isinstance(started, (int, float)) and not isinstance(started, bool):
        if not started - 600 <= written <= started + 5:
            return None
    try:
        return panel.load_plan(path)
    except UserError:
        return None


def book_panel(hp: HomePaths, repo: Any, plan: Mapping[str, Any], *, parent: Optional[str], by: str,
               environ: Optional[Mapping[str, str]] = None, manifest: Optional[Mapping[str, Any]] = None,
               now: Optional[float] = None) -> List[Dict[str, Any]]:
    """Book every panellist of ``plan`` that started and has ended; the entries added."""
    from .. import auth, families
    from ..agents import liveness
    from ..agents.logwriter import run_log
    from ..agents.spawn import read_exit, read_runner

    out = []
    stage_id = str(plan.get("stage_id"))
    for member in plan.get("panellists") or []:
        if not isinstance(member, dict):
            continue
        exit_path = Path(str(member.get("exit")))
        runner = read_runner(exit_path)
        if runner is None:
            continue  # never started
        record = read_exit(exit_path)
        if record is not None and record.get("runner_pid") not in (None, runner.pid):
            record = None
        if record is None and liveness.is_alive(runner.pid, runner.started):
            continue  # still running: booked by whoever sees it end
        family = str(member.get("family") or "unknown")
        fam = families.FAMILIES.get(family)
        text, forged = run_log(Path(str(member.get("log"))), record)
        usage = fam.parse_usage(text) if fam is not None and forged is None else None  # never the agent's own words
        if member.get("transport") == "api":
            route: Optional[str] = "api"
        elif family in auth.routes():
            route = auth.mode_for(family, environ or os.environ, manifest or {}).mode
        else:
            route = None
        info = {"family": family, "identity": member.get("identity"), "model": member.get("model"), "route": route,
                "seat": member.get("name")}
        entry = make_entry(key=run_key(stage_id, f"panel-{member.get('id')}", runner.pid, runner.started), repo=repo,
                           stage_id=stage_id, role="verifier", info=info, by=by,
                           started_at=(record or {}).get("started_at") or runner.started_at,
                           ended_at=(record or {}).get("ended_at"), seconds=(record or {}).get("seconds"),
                           exit_code=(record or {}).get("exit_code"), usage=usage, parent=parent, now=now)
        if book(hp, entry):
            out.append(entry)
    return out


# ------------------------------------------------------------------ the tick's runs

def book_tick_run(ctx: Any, stage: Mapping[str, Any], role: str, *, usage: Any, record: Mapping[str, Any],
                  seconds: int, budget: Dict[str, Any], now: Optional[float] = None) -> Optional[str]:
    """Book a run the tick accounts and fold the repo's ledger into ``budget``; a log line if it could not.

    When the ledger cannot be written the run's spend goes straight to the
    counters, so a cap still sees it.
    """
    stage_id = str(stage.get("id"))
    pid, started = stage.get(f"{role}_pid"), stage.get(f"{role}_started")
    key = run_key(stage_id, role, pid, started if started is not None else stage.get("started_at"))
    hp = home_of(ctx)
    repo = ctx.paths.root
    info = run_info(ctx, stage, role)
    plan = panel_plan(ctx.paths, stage_id, started) if role == "verifier" else None
    started_at = record.get("started_at") or (now_iso(started) if isinstance(started, (int, float)) else None)
    try:
        if plan is not None:
            info = {"family": PANEL, "identity": "autometta panel", "model": None, "route": None}
            book_panel(hp, repo, plan, parent=key, by="tick", environ=ctx.environ, manifest=ctx.manifest, now=now)
            usage = None  # the panel's usage line sums its panellists, booked each on its own
        entry = make_entry(key=key, repo=repo, stage_id=stage_id, role=role, info=info, by="tick",
                           started_at=started_at, ended_at=record.get("ended_at") or now_iso(now), seconds=seconds,
                           exit_code=record.get("exit_code"), usage=usage, now=now)
        book(hp, entry)
        fold(hp, repo, budget)
    except UserError as exc:
        tokens = int(usage.total_tokens) if usage is not None else 0
        add_to_counters(budget, tokens=tokens, cost_usd=float(getattr(usage, "cost_usd", 0) or 0), seconds=seconds)
        return f"spend of the {role} of {stage_id} not booked in the ledger ({exc.message}); added to budget.json"
    return None


# ------------------------------------------------------------------ runs started by hand

def _open_path(hp: HomePaths, key: str) -> Path:
    return hp.open_runs / (re.sub(_SAFE, "_", key)[:180] + ".json")


def open_run(ctx: Any, stage: Mapping[str, Any], card: Any, role: str, launched: Any) -> Optional[str]:
    """Note a run started by hand, to be booked once it ends (:func:`settle_open`); its key. Best effort."""
    from ..verify import panel

    stage_id = card.stage_id
    paths: RepoPaths = ctx.paths
    key = run_key(stage_id, role, launched.pid, launched.started)
    info = run_info(ctx, stage, role, card)
    doc = {"v": VERSION, "key": key, "repo": os.path.realpath(str(paths.root)), "stage": stage_id, "role": role,
           "by": "hand", "info": info, "pid": launched.pid, "started": launched.started,
           "started_at": launched.started_at, "log": str(paths.log(stage_id, role)),
           "exit": str(paths.exit_record(stage_id, role)),
           "plan": str(panel.plan_path(paths, stage_id)) if info.get("family") == PANEL else None,
           "environ": {name: value for name, value in (ctx.environ or {}).items()
                       if name.startswith("AUTOMETTA_") and name.endswith("_MODE")},
           "manifest_auth": ctx.manifest.get("auth") if isinstance(ctx.manifest, dict) else None}
    hp = home_of(ctx)
    try:
        files.ensure_dir(hp.root, mode=0o700)
        files.ensure_dir(hp.ledger_dir, mode=0o700)
        files.ensure_dir(hp.open_runs, mode=0o700)
        files.write_json(_open_path(hp, key), doc, mode=FILE_MODE)
    except UserError:
        return None
    return key


def settle_open(hp: HomePaths, *, keys: Optional[Iterable[str]] = None, stage: Optional[str] = None,
                now: Optional[float] = None) -> List[Dict[str, Any]]:
    """Book the runs started by hand that have ended (only ``keys``, or one ``stage``'s); the entries added."""
    wanted = set(keys) if keys is not None else None
    try:
        names = sorted(p for p in hp.open_runs.iterdir() if p.suffix == ".json")
    except OSError:
        return []
    if not names:
        return []  # what reads a run is not imported for none (every tick asks)
    from .. import families
    from ..agents import liveness
    from ..agents.logwriter import run_log
    from ..agents.spawn import read_exit
    from ..verify import panel

    out: List[Dict[str, Any]] = []
    for path in names:
        try:
            doc = files.read_json(path)
        except UserError:
            _forget(path)
            continue
        if not _open_note_ok(doc):
            _forget(path)
            continue
        if (wanted is not None and doc["key"] not in wanted) or (stage is not None and doc.get("stage") != stage):
            continue
        try:
            pid, started = int(doc["pid"]), float(doc["started"])
        except (KeyError, TypeError, ValueError):
            _forget(path)
            continue
        record = read_exit(Path(str(doc.get("exit"))))
        if record is not None and record.get("runner_pid") not in (None, pid):
            record = None  # the file belongs to a later run of the stage
        if record is None and liveness.is_alive(pid, started):
            continue
        info = doc["info"]
        usage = None
        family = families.FAMILIES.get(str(info.get("family")))
        if family is not None and record is not None:
            text, forged = run_log(Path(str(doc.get("log"))), record)
            usage = family.parse_usage(text) if forged is None else None  # never the agent's own words
        manifest = {"auth": doc["manifest_auth"]} if isinstance(doc.get("manifest_auth"), dict) else {}
        try:
            if info.get("family") == PANEL and doc.get("plan"):
                try:
                    plan = panel.load_plan(Path(str(doc["plan"])))
                except UserError:
                    plan = None
                if plan is not None:
                    out += book_panel(hp, doc["repo"], plan, parent=doc["key"], by="hand",
                                      environ=doc.get("environ") or {}, manifest=manifest, now=now)
            entry = make_entry(key=doc["key"], repo=doc["repo"], stage_id=str(doc.get("stage")),
                               role=str(doc.get("role")), info=info, by="hand",
                               started_at=(record or {}).get("started_at") or doc.get("started_at"),
                               ended_at=(record or {}).get("ended_at") or now_iso(now),
                               seconds=(record or {}).get("seconds"), exit_code=(record or {}).get("exit_code"),
                               usage=usage, now=now)
            if book(hp, entry):
                out.append(entry)
        except UserError:
            continue  # the ledger cannot be written now: the note stays for the next try
        _forget(path)
    return out


#: What a note of a run started by hand holds, as ``note_open`` writes it: (field, types, required).
_OPEN_FIELDS = (("key", (str,), True), ("repo", (str,), True), ("info", (dict,), True),
                ("stage", (str,), False), ("role", (str,), False), ("exit", (str,), False), ("log", (str,), False),
                ("plan", (str,), False), ("started_at", (str,), False), ("environ", (dict,), False),
                ("manifest_auth", (dict,), False))
_OPEN_INFO = ("family", "identity", "model", "route", "seat")


def _open_note_ok(doc: Any) -> bool:
    """Is ``doc`` a note autometta wrote? One it did not (a wrong type, a field gone) is dropped, not booked."""
    if not isinstance(doc, dict):
        return False
    for name, types, required in _OPEN_FIELDS:
        if name not in doc or (doc[name] is None and not required):
            if required:
                return False
            continue
        if not isinstance(doc[name], types):
            return False
    environ = doc.get("environ") or {}
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in environ.items()):
        return False
    return all(doc["info"].get(name) is None or isinstance(doc["info"][name], str) for name in _OPEN_INFO)


def _forget(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def has_open(hp: HomePaths) -> bool:
    try:
        return any(True for _ in hp.open_runs.iterdir())
    except OSError:
        return False


# ------------------------------------------------------------------ views

def summarise(rows: Iterable[Mapping[str, Any]]) -> Dict[str, Any]:
    """Spend per day, per model and per repo (tokens, cost, runs, seconds)."""
    days: Dict[str, Dict[str, Any]] = {}
    models: Dict[str, Dict[str, Any]] = {}
    repos: Dict[str, Dict[str, Any]] = {}
    total = {"tokens": 0, "cost_usd": 0.0, "runs": 0, "seconds": 0}
    for e in rows:
        cost = float(e.get("cost_usd") or 0)
        secs = 0 if e.get("parent") else int(e.get("seconds") or 0)
        for bucket in (days.setdefault(str(e.get("day")), {"date": str(e.get("day"))}),
                       models.setdefault(model_label(e), {"model": model_label(e), "family": e.get("family"),
                                                          "identities": []}),
                       repos.setdefault(str(e.get("repo")), {"repo": str(e.get("repo"))}), total):
            bucket["tokens"] = bucket.get("tokens", 0) + int(e.get("tokens") or 0)
            bucket["cost_usd"] = round(bucket.get("cost_usd", 0.0) + cost, 6)
            bucket["runs"] = bucket.get("runs", 0) + 1
            bucket["seconds"] = bucket.get("seconds", 0) + secs
        who = e.get("identity")
        if who and who not in models[model_label(e)]["identities"]:
            models[model_label(e)]["identities"].append(who)
        if e.get("by") == "hand":
            repos[str(e.get("repo"))]["by_hand_runs"] = repos[str(e.get("repo"))].get("by_hand_runs", 0) + 1
    total["cost_usd"] = round(total["cost_usd"], 6)
    return {
        "by_day": [days[k] for k in sorted(days)],
        "by_model": sorted(models.values(), key=lambda m: (-m["tokens"], -m["cost_usd"], m["model"])),
        "by_repo": repos,
        "total": total,
    }

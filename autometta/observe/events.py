"""Events a human cares about, raised by the tick: the one place notifications start.

The tick calls :func:`emit` once per event (a stage completed, failed,
stalled or failed verification; a repo halted; an agent stuck; the queue
drained). Each event is built into one JSON document with a stable ``id``,
and unless ``<home>/events.jsonl`` already holds that id it is delivered
and appended there. The journal is therefore both the once-only ledger and
the history ``autometta report`` reads. No daemon: delivery happens inside
the tick, bounded by a timeout, and a failure is logged, never fatal.

Delivery is configured in ``config.yaml``::

    notify:
      command: notify-send "autometta" "$AUTOMETTA_EVENT_SUMMARY"   # or an argv list
      webhook: https://hooks.example.com/T000/B000                  # POSTed as JSON
      timeout: 10                                                   # seconds, each
      kinds: [stage_failed, repo_halted, agent_stuck]               # optional filter

An event is recorded before it is delivered (each channel ``sending``) and
its outcome after, in a line ``{"id": ..., "update": true, "delivery": ...}``
that :func:`journal` folds into it: a tick stopped in the middle never sends
it twice (the next tick marks it interrupted; ``autometta events --resend``
sends it by hand). A webhook post that failed for a reason that may pass (no
answer, a time-out, HTTP 5xx, 408, 425, 429) is posted again by later ticks
(:func:`retry_undelivered`), after 1, 2, 5, 15, 30, then every 60 minutes,
up to :data:`MAX_ATTEMPTS` posts within a day; a tick posts five at most,
none once the webhook failed in that tick, and stops at the first that fails
again. The command is never run again by itself. ``autometta events`` lists
the journal (``--undelivered``) and resends one (``--resend REF``).

The command gets the event as JSON on stdin and, for one-liners,
``AUTOMETTA_EVENT_ID``, ``AUTOMETTA_EVENT_KIND``, ``AUTOMETTA_EVENT_REPO``,
``AUTOMETTA_EVENT_SUMMARY`` and ``AUTOMETTA_EVENT_NEEDS_HUMAN`` (``1``/``0``)
in its environment; it runs in its own process group, which is killed at the
timeout. The webhook gets the same JSON (with a ``text`` field, which chat
webhooks show).

Event ids are built from what identifies the occurrence, so the same
occurrence seen by two ticks is one event, and a re-run of a stage is a new
one: ``stage_completed:<repo>:<stage>:<claimed at>``,
``repo_halted:<repo>:<reason>:<halted at>``, ``agent_stuck:<repo>:<agent id>``,
``queue_drained:<repo>:<digest of the queue>``. ``queue_drained`` carries the
stages that still need a person (``needs_you``) and is ``needs_human`` when
there are any (or the repo is halted).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from .. import files
from ..errors import UserError
from ..paths import HomePaths, RepoPaths
from ..timeutil import now_iso, parse_iso

#: The kinds the tick emits.
KINDS = ("stage_completed", "stage_failed", "stage_stalled", "stage_verifier_failed",
         "stage_verifier_panel_no_quorum", "stage_merge_conflict", "stage_secret_blocked",
         "repo_halted", "agent_stuck", "queue_drained", "secret_in_state")

#: Kinds that mean "you are needed" rather than "something finished" (``queue_drained``
#: needs you when a stage it leaves stopped, or the repo is halted: see :func:`drained_fields`).
NEEDS_HUMAN = ("stage_failed", "stage_stalled", "stage_verifier_failed", "stage_verifier_panel_no_quorum",
               "stage_merge_conflict", "stage_secret_blocked", "repo_halted", "agent_stuck", "secret_in_state")

DEFAULT_TIMEOUT = 10.0
#: The journal is trimmed to its newest half when it grows past this.
JOURNAL_LIMIT = 4 * 1024 * 1024
_OUTPUT_LIMIT = 300

#: What a channel says while its delivery runs; found later, the tick was stopped in the middle of it.
SENDING = "sending"
#: Seconds before the n-th retry of an undelivered webhook post (the last one repeats).
RETRY_DELAYS = (60, 120, 300, 900, 1800, 3600)
#: Posts an event gets at most (its first one included), and for how long after it was raised.
MAX_ATTEMPTS = 8
RETRY_WINDOW = 24 * 3600
#: Posts one tick retries at most; it stops at the first that fails again.
RETRIES_PER_TICK = 5
#: Journal fields about the delivery, not the event: left out of what is delivered.
BOOKKEEPING = ("delivery", "attempts", "retry_at", "update")


def emit(home: HomePaths, repo: RepoPaths, kind: str, fields: Dict[str, Any]) -> None:
    """Deliver one event. Never raises: a notification must not break a tick."""
    try:
        event = build_event(repo, kind, fields, time.time())
        publish(home, event)
    except Exception as exc:
        log_line(home, f"notify: {kind} for {repo.root} not delivered: {type(exc).__name__}: {exc}", repo.root)


# --------------------------------------------------------------------------- building


def _read_state(repo: RepoPaths) -> Dict[str, Any]:
    from ..books import state

    try:
        return state.load_state(repo)
    except UserError:
        return {}


def _read_budget(repo: RepoPaths) -> Dict[str, Any]:
    from ..books import budget

    try:
        return budget.load_budget(repo)
    except UserError:
        return {}


def event_id(repo: RepoPaths, kind: str, fields: Mapping[str, Any]) -> str:
    """The id of this occurrence (see the module docstring)."""
    where = str(repo.root)
    if kind.startswith("stage_") and fields.get("stage_id"):
        stage_id = str(fields["stage_id"])
        started = fields.get("started_at")
        if started is None:
            from ..stagerecord import records

            for rec in records(_read_state(repo)):
                if rec.id == stage_id:
                    started = rec.started_at
        return f"{kind}:{where}:{stage_id}:{started or '-'}"
    if kind == "repo_halted":
        halted_at = fields.get("halted_at") or _read_budget(repo).get("halted_at") or "-"
        return f"{kind}:{where}:{fields.get('reason') or '-'}:{halted_at}"
    if kind == "agent_stuck" and fields.get("agent_id"):
        return f"{kind}:{where}:{fields['agent_id']}"
    if kind == "queue_drained":
        stages = [(s.get("id"), s.get("status"), s.get("started_at"))
                  for s in _read_state(repo).get("stages") or [] if isinstance(s, dict)]
        digest = hashlib.sha256(json.dumps(stages, default=str).encode("utf-8")).hexdigest()[:16]
        return f"{kind}:{where}:{digest}"
    rest = {k: v for k, v in fields.items() if k not in ("message",)}
    digest = hashlib.sha256(json.dumps(rest, sort_keys=True, default=str).encode("utf-8")).hexdigest()[:16]
    return f"{kind}:{where}:{digest}"


def summary(kind: str, name: str, fields: Mapping[str, Any]) -> str:
    """One line a human reads in a notification."""
    stage = fields.get("stage_id") or "?"
    marker = f" ({fields['marker']})" if fields.get("marker") else ""
    if kind == "stage_completed":
        commit = f", commit {str(fields['commit'])[:12]}" if fields.get("commit") else ", nothing to commit"
        return f"{name}: stage {stage} completed{commit}"
    if kind == "stage_merge_conflict":
        return (f"{name}: stage {stage} did not land{marker}; needs you (resolve it in its worktree and "
                "autometta requeue --retry-merge, or requeue)")
    if kind in ("stage_failed", "stage_stalled", "stage_verifier_failed"):
        status = kind[len("stage_"):].replace("_", " ")
        return f"{name}: stage {stage} {status}{marker}; needs you (autometta requeue after a look)"
    if kind == "repo_halted":
        return f"{name}: halted ({fields.get('reason') or '?'}); needs you (autometta tick --reset-halt)"
    if kind == "agent_stuck":
        what = f"{fields.get('role') or 'agent'} pid {fields.get('pid')}"
        stage_note = f" on {fields['stage_id']}" if fields.get("stage_id") else ""
        return f"{name}: {what}{stage_note} is {fields.get('state') or 'stuck'}: {fields.get('reason') or ''}".rstrip(": ")
    if kind == "stage_secret_blocked":
        return (f"{name}: stage {stage} passed verification, but the secret scan found a secret in its changes"
                f"{marker}; nothing was committed; needs you (remove the secret, then autometta requeue)")
    if kind == "queue_drained":
        return f"{name}: queue drained ({drained_text(fields)})"
    if kind == "secret_in_state":
        return (f"{name}: {fields.get('path') or 'a state file'} holds a secret ({fields.get('rule') or '?'}) and "
                "was kept out of the state snapshot; needs you (remove the secret from the file)")
    return f"{name}: {kind}"


#: Stopped stages named in a ``queue_drained`` summary before "and N more".
_NAMED = 5


def drained_fields(doc: Mapping[str, Any], repo: str = "") -> Dict[str, Any]:
    """What ``queue_drained`` carries: the stages by status, and each stopped one that needs a person,
    as every view shows it (:func:`autometta.observe.needs.needs_you`: with its marker, since when and
    the command that addresses it; ``status`` is its kind)."""
    from .needs import needs_you

    stages = [s for s in doc.get("stages") or [] if isinstance(s, dict)]
    counts: Dict[str, int] = {}
    for s in stages:
        counts[str(s.get("status"))] = counts.get(str(s.get("status")), 0) + 1
    needs = [dict(item.as_dict(), status=item.kind) for item in needs_you(repo, doc, None) if item.stage_id]
    out: Dict[str, Any] = {"stages": len(stages), "counts": counts, "needs_you": needs}
    if doc.get("halted"):
        out["halted"] = doc.get("halt_reason") or True
    return out


def drained_text(fields: Mapping[str, Any]) -> str:
    """``5 stages: 2 completed; 3 need you: 02-a failed, 03-b stalled, 04-c verifier_failed``."""
    total = fields.get("stages", "?")
    counts = fields.get("counts") if isinstance(fields.get("counts"), dict) else {}
    needs = [n for n in fields.get("needs_you") or [] if isinstance(n, dict)]
    text = f"{total} stage{'s' if total != 1 else ''}"
    done = counts.get("completed")
    if done:
        text += f": {done} completed"
    if needs:
        named = ", ".join(f"{n.get('stage_id')} {n.get('status')}" for n in needs[:_NAMED])
        more = f" and {len(needs) - _NAMED} more" if len(needs) > _NAMED else ""
        text += f"{';' if done else ':'} {len(needs)} need{'s' if len(needs) == 1 else ''} you: {named}{more}"
    if fields.get("halted"):
        text += f"; the repo is halted ({fields['halted']})"
    return text


def needs_human(kind: str, fields: Mapping[str, Any]) -> bool:
    if kind == "queue_drained":
        return bool(fields.get("needs_you") or fields.get("halted"))
    return kind in NEEDS_HUMAN


def build_event(repo: RepoPaths, kind: str, fields: Mapping[str, Any], now: float) -> Dict[str, Any]:
    """The event document; every string in it masked (:func:`autometta.secrets.redact`), as it leaves the host."""
    from ..secrets import redact_doc

    fields = redact_doc(dict(fields))
    name = repo.root.name
    event: Dict[str, Any] = {
        "id": event_id(repo, kind, fields),
        "kind": kind,
        "at": now_iso(now),
        "repo": str(repo.root),
        "repo_name": name,
        "needs_human": needs_human(kind, fields),
    }
    for key, value in fields.items():
        if key not in event:
            event[key] = value
    event["repo"] = str(repo.root)
    event["summary"] = event["text"] = summary(kind, name, fields)
    return event


# --------------------------------------------------------------------------- the journal


def log_line(home: HomePaths, message: str, repo: Any = None) -> None:
    """One line in today's tick log (the tick's own format, tagged with ``repo``); stderr if that fails."""
    from ..ticklog import tag

    where = f"{tag(repo)} " if repo else ""
    line = f"{now_iso()} {where}{message}\n"
    try:
        home.log_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(str(home.tick_log()), os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NONBLOCK", 0),
                     0o600)  # a FIFO in its place fails, never hangs
        with open(fd, "a", encoding="utf-8") as handle:
            handle.write(line)
    except OSError:
        sys.stderr.write(line)


def journal(home: HomePaths) -> List[Dict[str, Any]]:
    """Every recorded event, oldest first, each with its delivery as last recorded (unreadable lines skipped).

    A line with ``"update": true`` is no event: it records how a delivery
    went later (see :func:`publish`) and is folded into its event here.
    """
    try:
        with files.open_regular(home.events) as handle:
            lines = handle.read().decode("utf-8", errors="replace").splitlines()
    except OSError:
        return []
    out: List[Dict[str, Any]] = []
    by_id: Dict[str, Dict[str, Any]] = {}
    for number, line in enumerate(lines, 1):
        try:
            doc = files.parse_json(line, f"{home.events}:{number}")
        except UserError:  # a torn or hand-mangled line: the others still count
            continue
        if not isinstance(doc, dict) or not isinstance(doc.get("id"), str):
            continue
        if doc.get("update") is True:
            target = by_id.get(doc["id"])
            if target is not None:
                _fold(target, doc)
            continue
        if doc["id"] in by_id:  # the same id twice (a hand-edited file): the first one counts
            continue
        by_id[doc["id"]] = doc
        out.append(doc)
    return out


def _append(home: HomePaths, record: Dict[str, Any]) -> None:
    line = json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n"
    try:
        size = os.path.getsize(home.events)
    except OSError:
        size = 0
    if size + len(line) > JOURNAL_LIMIT:
        keep = [json.dumps(doc, ensure_ascii=False, sort_keys=True) + "\n" for doc in journal(home)]
        if record.get("update") is True:  # folded into its event now, which is kept if it is recent
            keep = [json.dumps(doc, ensure_ascii=False, sort_keys=True) + "\n" for doc in _folded(home, record)]
            line = ""
        while keep and sum(len(x) for x in keep) > JOURNAL_LIMIT // 2:
            keep.pop(0)
        files.atomic_write(home.events, "".join(keep) + line, mode=0o600)
        return
    fd = os.open(str(home.events), os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NONBLOCK", 0), 0o600)
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)


def _fold(target: Dict[str, Any], update: Mapping[str, Any]) -> None:
    """Apply an update line to its event (a field of the wrong type counts as empty)."""
    for key in ("delivery", "attempts"):
        if isinstance(update.get(key), dict):
            base = target.get(key) if isinstance(target.get(key), dict) else {}
            target[key] = dict(base, **update[key])
    if "retry_at" in update:
        target["retry_at"] = update["retry_at"]


def _folded(home: HomePaths, update: Dict[str, Any]) -> List[Dict[str, Any]]:
    docs = journal(home)
    for doc in docs:
        if doc["id"] == update["id"]:
            _fold(doc, update)
    return docs


def _attempts(doc: Mapping[str, Any]) -> Dict[str, int]:
    """The webhook posts an event had, as recorded (0 for anything unreadable)."""
    raw = doc.get("attempts") if isinstance(doc.get("attempts"), dict) else {}
    count = raw.get("webhook")
    return {"webhook": count if isinstance(count, int) and not isinstance(count, bool) and count >= 0 else 0}


def _update(home: HomePaths, event_id: str, delivery: Dict[str, str], attempts: Optional[Dict[str, int]] = None,
            retry_at: Any = "keep") -> None:
    """Record how a delivery went (appended; :func:`journal` folds it into the event). Hold the lock."""
    record: Dict[str, Any] = {"id": event_id, "update": True, "at": now_iso(), "delivery": delivery}
    if attempts:
        record["attempts"] = attempts
    if retry_at != "keep":
        record["retry_at"] = retry_at
    _append(home, record)


def _owed(home: HomePaths) -> None:
    """Flag that a delivery may be owed (:attr:`HomePaths.events_pending`); the tick's retry looks then only."""
    try:
        fd = os.open(str(home.events_pending), os.O_WRONLY | os.O_CREAT, 0o600)
        os.close(fd)
    except OSError:
        pass


def ref_of(event_id: str) -> str:
    """A short handle for an event (``autometta events --resend REF``)."""
    return hashlib.sha256(event_id.encode("utf-8", "surrogateescape")).hexdigest()[:8]


def payload_of(record: Mapping[str, Any]) -> Dict[str, Any]:
    """The event as delivered: the journal record without its delivery bookkeeping."""
    return {k: v for k, v in record.items() if k not in BOOKKEEPING}


def publish(home: HomePaths, event: Dict[str, Any], config: Optional[Mapping[str, Any]] = None) -> bool:
    """Deliver ``event`` unless the journal has its id; True if it was new.

    The event is recorded *before* it is delivered, each channel marked
    :data:`SENDING`, and the outcome after: a tick stopped in between leaves
    it marked, and it is never sent twice (the next tick calls it
    interrupted, see :func:`retry_undelivered`). A webhook post that failed
    for a reason that may pass (no answer, a time-out, HTTP 5xx, 408, 429) is
    given a ``retry_at``; a later tick posts it again.
    """
    from .. import home as homes

    if not home.root.is_dir():
        return False
    if config is None:
        config = homes.load_config(home)
    notify = config.get("notify") or {}
    with files.locked(home.events_lock, timeout=120):
        if any(doc.get("id") == event["id"] for doc in journal(home)):
            return False
        plan = plan_delivery(event, notify, home)
        if not plan.targets:
            _append(home, dict(event, delivery=dict(plan.errors)))
            delivery: Dict[str, str] = dict(plan.errors)
            retry_at = None
        else:
            _owed(home)
            _append(home, dict(event, delivery=dict(plan.errors, **{ch: SENDING for ch in plan.targets})))
            delivery, attempts, retry_at = _send(event, plan, home, time.time(), {})
            _update(home, event["id"], delivery, attempts, retry_at)
    if delivery:
        later = f" (the webhook is tried again from {retry_at})" if retry_at else ""
        log_line(home, f"notify: {event['kind']} {event['id']}: {delivery_text(delivery)}{later}", event.get("repo"))
    return True


def delivery_text(delivery: Mapping[str, str]) -> str:
    return ", ".join(f"{channel} {result}" for channel, result in sorted(delivery.items()))


# --------------------------------------------------------------------------- delivery


def _setting_error(home: HomePaths, key: str, fix: str) -> str:
    return f"error: {home.config}: notify.{key} {fix}"


class Plan:
    """Where an event goes: ``targets`` (channel -> command or URL), the timeout, and setting errors."""

    def __init__(self, targets: Dict[str, Any], timeout: float, errors: Dict[str, str]) -> None:
        self.targets, self.timeout, self.errors = targets, timeout, errors


def plan_delivery(event: Mapping[str, Any], notify: Any, home: HomePaths,
                  channels: Optional[Sequence[str]] = None) -> Plan:
    """The channels ``notify`` configures for ``event`` (its ``kinds`` filter applied), or why none."""
    if not notify:
        return Plan({}, DEFAULT_TIMEOUT, {})
    if not isinstance(notify, dict):
        return Plan({}, DEFAULT_TIMEOUT,
                    {"config": f"error: {home.config}: 'notify:' must be a mapping (command, webhook, timeout)"})
    kinds = notify.get("kinds")
    if isinstance(kinds, list) and kinds and event["kind"] not in kinds:
        return Plan({}, DEFAULT_TIMEOUT, {})
    timeout = notify.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        return Plan({}, DEFAULT_TIMEOUT, {"config": _setting_error(home, "timeout", "must be a number of seconds > 0")})
    targets = {ch: notify.get(ch) for ch in ("command", "webhook") if notify.get(ch)}
    if channels is not None:
        targets = {ch: t for ch, t in targets.items() if ch in channels}
    return Plan(targets, float(timeout), {})


def deliver(event: Dict[str, Any], notify: Any, home: HomePaths) -> Dict[str, str]:
    """Run the command and post the webhook that ``notify`` configures; ``{channel: result}``."""
    plan = plan_delivery(event, notify, home)
    if not plan.targets:
        return dict(plan.errors)
    return _send(event, plan, home, time.time(), {})[0]


#: Webhooks (by URL) that failed in this tick: later events in the tick do not wait on them again.
_down: Dict[str, str] = {}


def new_tick() -> None:
    """Forget which webhooks failed: a new tick tries each again (as its back-off allows)."""
    _down.clear()


def _delay(attempts: int) -> int:
    return RETRY_DELAYS[min(max(attempts, 1), len(RETRY_DELAYS)) - 1]


def _send(event: Mapping[str, Any], plan: Plan, home: HomePaths, now: float,
          attempts: Dict[str, int]) -> Tuple[Dict[str, str], Dict[str, int], Optional[str]]:
    """Deliver to each target: ``(results, attempts, retry_at)``; ``retry_at`` when the webhook may be tried again."""
    payload = json.dumps(payload_of(event), ensure_ascii=False, sort_keys=True).encode("utf-8")
    results: Dict[str, str] = dict(plan.errors)
    attempts = dict(attempts)
    retry_at: Optional[str] = None
    command = plan.targets.get("command")
    if command:
        results["command"] = run_command(command, payload, event, plan.timeout, home)
    url = plan.targets.get("webhook")
    if url:
        key = str(url)
        if key in _down:
            result, again = f"error: not tried: the webhook failed earlier in this tick ({_down[key]})", True
        else:
            result, again = _post(url, payload, plan.timeout, home)
            attempts["webhook"] = attempts.get("webhook", 0) + 1
            if result != "ok" and again:
                _down[key] = result[len("error: "):] if result.startswith("error: ") else result
        results["webhook"] = result
        tried = attempts.get("webhook", 0)
        at = parse_iso(str(event.get("at") or "")) or now
        if result != "ok" and again and tried < MAX_ATTEMPTS and now - at < RETRY_WINDOW:
            retry_at = now_iso(now + _delay(tried))
    return results, attempts, retry_at


#: What an event whose delivery was cut short says, once a later tick finds it so.
INTERRUPTED = "unknown: the tick stopped while delivering; not sent again by itself (autometta events --resend {ref})"


def _interrupted(home: HomePaths, docs: List[Dict[str, Any]], log: Optional[Callable[[str], None]]) -> None:
    """Mark channels left :data:`SENDING` by a tick that was stopped (the caller holds the lock)."""
    for doc in docs:
        delivery = doc.get("delivery") if isinstance(doc.get("delivery"), dict) else {}
        cut = {ch: INTERRUPTED.format(ref=ref_of(doc["id"])) for ch, v in delivery.items() if v == SENDING}
        if cut:
            _update(home, doc["id"], cut, retry_at=None)
            doc["delivery"] = dict(delivery, **cut)
            doc["retry_at"] = None
            if log is not None:
                log(f"notify: {doc.get('kind')} {doc['id']}: {delivery_text(cut)}")


def _due(doc: Mapping[str, Any], now: float) -> bool:
    when = parse_iso(str(doc.get("retry_at") or ""))
    delivery = doc.get("delivery") if isinstance(doc.get("delivery"), dict) else {}
    return when is not None and when <= now and delivery.get("webhook") not in (None, "ok", SENDING)


def retry_undelivered(home: HomePaths, config: Mapping[str, Any], log: Optional[Callable[[str], None]] = None,
                      now: Optional[float] = None) -> int:
    """Post again, oldest first, the webhook posts whose ``retry_at`` has come; the number delivered.

    Bounded: :data:`RETRIES_PER_TICK` posts at most, none once the webhook
    failed in this tick, and it stops at the first that fails again (the
    webhook is still down: the rest wait for their own back-off) or when
    the posts took the configured timeout. Each event is posted under the
    journal's lock and marked :data:`SENDING` first, so no two ticks post
    it and a post cut short is never repeated by itself. Never raises.
    """
    try:
        return _retry(home, config, log, time.time() if now is None else now)
    except Exception as exc:  # a notification must not break a tick
        if log is not None:
            log(f"notify: retrying undelivered events failed: {type(exc).__name__}: {exc}")
        return 0


def _retry(home: HomePaths, config: Mapping[str, Any], log: Optional[Callable[[str], None]], now: float) -> int:
    if not home.events_pending.exists():  # nothing is owed: an idle tick costs one stat
        return 0
    notify = config.get("notify")
    delivered = 0
    started = time.monotonic()
    with files.locked(home.events_lock, timeout=30):
        docs = journal(home)
        _interrupted(home, docs, log)
        due = [doc for doc in docs if _due(doc, now)] if notify else []
        if not any(doc.get("retry_at") for doc in docs):
            try:
                os.unlink(home.events_pending)
            except OSError:
                pass
        for doc in due[:RETRIES_PER_TICK]:
            plan = plan_delivery(doc, notify, home, channels=("webhook",))
            url = plan.targets.get("webhook")
            if not url:  # the webhook was removed from config.yaml, or the kind filtered out since
                _update(home, doc["id"], {}, retry_at=None)
                continue
            if str(url) in _down:
                break
            _owed(home)
            _update(home, doc["id"], {"webhook": SENDING})
            results, attempts, retry_at = _send(doc, plan, home, now, _attempts(doc))
            _update(home, doc["id"], {"webhook": results["webhook"]}, attempts, retry_at)
            if log is not None:
                tried = attempts.get("webhook", 0)
                later = (f"; again from {retry_at}" if retry_at else
                         "; given up (autometta events --undelivered lists it)" if results["webhook"] != "ok" else "")
                log(f"notify: {doc.get('kind')} {doc['id']}: webhook {results['webhook']} (attempt {tried}){later}")
            if results["webhook"] != "ok":
                break
            delivered += 1
            if time.monotonic() - started > plan.timeout:
                break
    return delivered


def resend(home: HomePaths, ref: str, config: Optional[Mapping[str, Any]] = None) -> Tuple[Dict[str, Any], Dict[str, str]]:
    """Deliver one event again, by hand, to each configured channel that did not get it: ``(event, results)``.

    ``ref`` is the event's id or the start of its :func:`ref_of` (4 characters
    or more). A channel that got it (``ok``) is not sent it again; ``results``
    is empty when every channel did. UserError when no event, or more than one, matches.
    """
    from .. import home as homes

    if config is None:
        config = homes.load_config(home)
    notify = config.get("notify") or {}
    with files.locked(home.events_lock, timeout=120):
        doc = find(journal(home), ref)
        delivery = doc.get("delivery") if isinstance(doc.get("delivery"), dict) else {}
        plan = plan_delivery(doc, notify, home)
        if not plan.targets and plan.errors:
            raise UserError(plan.errors["config"][len("error: "):])
        if not plan.targets:
            raise UserError(f"{home.config}: 'notify:' sends this event nowhere (no command or webhook"
                            f"{', or its kinds leave out ' + str(doc.get('kind')) if notify else ''}); "
                            "set one up, then resend")
        todo = [ch for ch in plan.targets if delivery.get(ch) != "ok"]
        if not todo:
            return doc, {}
        plan.targets = {ch: plan.targets[ch] for ch in todo}
        _owed(home)
        _update(home, doc["id"], {ch: SENDING for ch in todo})
        saved = _down.pop(str(plan.targets.get("webhook")), None)  # by hand: try it whatever this process saw
        try:
            results, attempts, _later = _send(doc, plan, home, time.time(), _attempts(doc))
        finally:
            if saved is not None:
                _down[str(plan.targets.get("webhook"))] = saved
        _update(home, doc["id"], results, attempts, retry_at=None)
    log_line(home, f"notify: {doc.get('kind')} {doc['id']}: resent by hand: {delivery_text(results)}", doc.get("repo"))
    return doc, results


def find(docs: List[Dict[str, Any]], ref: str) -> Dict[str, Any]:
    """The event ``ref`` names: its whole id, or the start (4+ characters) of its :func:`ref_of`."""
    exact = [d for d in docs if d["id"] == ref]
    if exact:
        return exact[0]
    wanted = ref.strip().lower()
    if len(wanted) < 4 or any(c not in "0123456789abcdef" for c in wanted):
        raise UserError(f"no event {ref!r}; give the REF 'autometta events' shows (4 characters or more) or the id")
    found = [d for d in docs if ref_of(d["id"]).startswith(wanted)]
    if not found:
        raise UserError(f"no event with ref {ref!r} in the journal; 'autometta events' lists them")
    if len(found) > 1:
        raise UserError(f"ref {ref!r} names {len(found)} events; give more of it")
    return found[0]


def state_of(doc: Mapping[str, Any]) -> Dict[str, str]:
    """Per channel, where its delivery is, in words: ``ok``, ``sending``, ``retry 2 from <time> (<error>)``,
    ``undelivered (<error>)``, or the interrupted note."""
    delivery = doc.get("delivery") if isinstance(doc.get("delivery"), dict) else {}
    attempts = doc.get("attempts") if isinstance(doc.get("attempts"), dict) else {}
    out: Dict[str, str] = {}
    for channel, result in sorted(delivery.items()):
        result = str(result)
        if result in ("ok", SENDING) or result.startswith("unknown:"):
            out[channel] = result
        elif channel == "webhook" and doc.get("retry_at"):
            out[channel] = (f"failed {attempts.get('webhook') or 0}x, tried again from {doc['retry_at']} "
                            f"({result[len('error: '):] if result.startswith('error: ') else result})")
        else:
            out[channel] = f"undelivered ({result[len('error: '):] if result.startswith('error: ') else result})"
    return out


def undelivered(doc: Mapping[str, Any]) -> bool:
    """Did some channel not get it (yet)?"""
    delivery = doc.get("delivery") if isinstance(doc.get("delivery"), dict) else {}
    return any(v != "ok" for v in delivery.values())


def _loopback(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    return host in ("localhost", "127.0.0.1", "::1")


#: HTTP answers worth a retry: the receiver may take it later.
_RETRY_HTTP = (408, 425, 429)


def post_webhook(url: Any, payload: bytes, timeout: float, home: HomePaths) -> str:
    return _post(url, payload, timeout, home)[0]


def _post(url: Any, payload: bytes, timeout: float, home: HomePaths) -> Tuple[str, bool]:
    """POST ``payload``: ``(result, worth a retry)``."""
    import urllib.error  # here, not at the top: every tick imports this module, few post webhooks
    import urllib.request

    if not isinstance(url, str) or urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        return _setting_error(home, "webhook", "must be an http:// or https:// URL"), False
    request = urllib.request.Request(url, data=payload, method="POST",
                                     headers={"Content-Type": "application/json",
                                              "User-Agent": "autometta-notify"})
    handlers = [urllib.request.ProxyHandler({})] if _loopback(url) else []
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(request, timeout=timeout) as response:
            response.read(64 * 1024)
            status = response.status
    except urllib.error.HTTPError as exc:
        return (f"error: HTTP {exc.code} from {urllib.parse.urlsplit(url).netloc}",
                exc.code >= 500 or exc.code in _RETRY_HTTP)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"error: {urllib.parse.urlsplit(url).netloc}: {reason}", not isinstance(exc, ValueError)
    if 200 <= status < 300:
        return "ok", False
    return f"error: HTTP {status}", status >= 500 or status in _RETRY_HTTP


def _clip(data: bytes) -> str:
    text = data.decode("utf-8", errors="replace").strip().replace("\n", " | ")
    return text if len(text) <= _OUTPUT_LIMIT else text[-_OUTPUT_LIMIT:]


def run_command(command: Any, payload: bytes, event: Mapping[str, Any], timeout: float,
                home: HomePaths) -> str:
    if isinstance(command, str):
        argv = ["/bin/sh", "-c", command]
    elif isinstance(command, list) and command and all(isinstance(x, str) for x in command):
        argv = list(command)
    else:
        return _setting_error(home, "command", "must be a shell command string or a list of strings")
    env = dict(os.environ)
    env.update(AUTOMETTA_EVENT_ID=str(event["id"]), AUTOMETTA_EVENT_KIND=str(event["kind"]),
               AUTOMETTA_EVENT_REPO=str(event.get("repo") or ""),
               AUTOMETTA_EVENT_SUMMARY=str(event.get("summary") or ""),
               AUTOMETTA_EVENT_NEEDS_HUMAN="1" if event.get("needs_human") else "0")
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=env, cwd=str(home.root), start_new_session=True, close_fds=True)
    except OSError as exc:
        return f"error: cannot run {argv[0]} ({exc.strerror or exc})"
    try:
        _out, err = proc.communicate(payload, timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        proc.communicate()
        return f"error: timed out after {timeout:g}s (killed)"
    if proc.returncode != 0:
        detail = f": {_clip(err)}" if err.strip() else ""
        return f"error: exit {proc.returncode}{detail}"
    return "ok"

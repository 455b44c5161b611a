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
``queue_drained:<repo>:<digest of the queue>``.
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
from typing import Any, Dict, List, Mapping, Optional

from .. import files
from ..errors import UserError
from ..paths import HomePaths, RepoPaths
from ..timeutil import now_iso

#: The kinds the tick emits.
KINDS = ("stage_completed", "stage_failed", "stage_stalled", "stage_verifier_failed",
         "stage_verifier_panel_no_quorum", "stage_merge_conflict",
         "repo_halted", "agent_stuck", "queue_drained", "secret_in_state")

#: Kinds that mean "you are needed" rather than "something finished".
NEEDS_HUMAN = ("stage_failed", "stage_stalled", "stage_verifier_failed", "stage_verifier_panel_no_quorum",
               "stage_merge_conflict", "repo_halted", "agent_stuck", "secret_in_state")

DEFAULT_TIMEOUT = 10.0
#: The journal is trimmed to its newest half when it grows past this.
JOURNAL_LIMIT = 4 * 1024 * 1024
_OUTPUT_LIMIT = 300


def emit(home: HomePaths, repo: RepoPaths, kind: str, fields: Dict[str, Any]) -> None:
    """Deliver one event. Never raises: a notification must not break a tick."""
    try:
        event = build_event(repo, kind, fields, time.time())
        publish(home, event)
    except Exception as exc:
        log_line(home, f"notify: {kind} for {repo.root} not delivered: {type(exc).__name__}: {exc}")


# --------------------------------------------------------------------------- building


def _read_state(repo: RepoPaths) -> Dict[str, Any]:
    from .. import state

    try:
        return state.load_state(repo)
    except UserError:
        return {}


def _read_budget(repo: RepoPaths) -> Dict[str, Any]:
    try:
        doc = json.loads(files.read_text(repo.budget))
    except (UserError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def event_id(repo: RepoPaths, kind: str, fields: Mapping[str, Any]) -> str:
    """The id of this occurrence (see the module docstring)."""
    where = str(repo.root)
    if kind.startswith("stage_") and fields.get("stage_id"):
        stage_id = str(fields["stage_id"])
        started = fields.get("started_at")
        if started is None:
            for stage in _read_state(repo).get("stages") or []:
                if isinstance(stage, dict) and stage.get("id") == stage_id:
                    started = stage.get("started_at")
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
    if kind == "queue_drained":
        return f"{name}: queue drained ({fields.get('stages', '?')} stages)"
    if kind == "secret_in_state":
        return (f"{name}: {fields.get('path') or 'a state file'} holds a secret ({fields.get('rule') or '?'}) and "
                "was kept out of the state snapshot; needs you (remove the secret from the file)")
    return f"{name}: {kind}"


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
        "needs_human": kind in NEEDS_HUMAN,
    }
    for key, value in fields.items():
        if key not in event:
            event[key] = value
    event["repo"] = str(repo.root)
    event["summary"] = event["text"] = summary(kind, name, fields)
    return event


# --------------------------------------------------------------------------- the journal


def log_line(home: HomePaths, message: str) -> None:
    """One line in today's tick log (the tick's own format); stderr if that fails."""
    line = f"{now_iso()} {message}\n"
    try:
        home.log_dir.mkdir(parents=True, exist_ok=True)
        with open(home.tick_log(), "a", encoding="utf-8") as handle:
            handle.write(line)
    except OSError:
        sys.stderr.write(line)


def journal(home: HomePaths) -> List[Dict[str, Any]]:
    """Every recorded event, oldest first (unreadable lines skipped)."""
    try:
        with open(home.events, "r", encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict) and isinstance(doc.get("id"), str):
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
        while keep and sum(len(x) for x in keep) > JOURNAL_LIMIT // 2:
            keep.pop(0)
        files.atomic_write(home.events, "".join(keep) + line, mode=0o600)
        return
    fd = os.open(str(home.events), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)


def publish(home: HomePaths, event: Dict[str, Any], config: Optional[Mapping[str, Any]] = None) -> bool:
    """Deliver ``event`` unless the journal has its id; True if it was new."""
    from .. import home as homes

    if not home.root.is_dir():
        return False
    if config is None:
        config = homes.load_config(home)
    notify = config.get("notify") or {}
    with files.locked(home.events_lock, timeout=120):
        if any(doc.get("id") == event["id"] for doc in journal(home)):
            return False
        delivery = deliver(event, notify, home)
        _append(home, dict(event, delivery=delivery))
    if delivery:
        shown = ", ".join(f"{channel} {result}" for channel, result in sorted(delivery.items()))
        log_line(home, f"notify: {event['kind']} {event['id']}: {shown}")
    return True


# --------------------------------------------------------------------------- delivery


def _setting_error(home: HomePaths, key: str, fix: str) -> str:
    return f"error: {home.config}: notify.{key} {fix}"


def deliver(event: Dict[str, Any], notify: Any, home: HomePaths) -> Dict[str, str]:
    """Run the command and post the webhook that ``notify`` configures; ``{channel: result}``."""
    if not notify:
        return {}
    if not isinstance(notify, dict):
        return {"config": f"error: {home.config}: 'notify:' must be a mapping (command, webhook, timeout)"}
    kinds = notify.get("kinds")
    if isinstance(kinds, list) and kinds and event["kind"] not in kinds:
        return {}
    timeout = notify.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        return {"config": _setting_error(home, "timeout", "must be a number of seconds > 0")}
    payload = json.dumps(event, ensure_ascii=False, sort_keys=True).encode("utf-8")
    out: Dict[str, str] = {}
    command = notify.get("command")
    if command:
        out["command"] = run_command(command, payload, event, float(timeout), home)
    webhook = notify.get("webhook")
    if webhook:
        out["webhook"] = post_webhook(webhook, payload, float(timeout), home)
    return out


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


def _loopback(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    return host in ("localhost", "127.0.0.1", "::1")


def post_webhook(url: Any, payload: bytes, timeout: float, home: HomePaths) -> str:
    import urllib.error  # here, not at the top: every tick imports this module, few post webhooks
    import urllib.request

    if not isinstance(url, str) or urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        return _setting_error(home, "webhook", "must be an http:// or https:// URL")
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
        return f"error: HTTP {exc.code} from {urllib.parse.urlsplit(url).netloc}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"error: {urllib.parse.urlsplit(url).netloc}: {reason}"
    return "ok" if 200 <= status < 300 else f"error: HTTP {status}"

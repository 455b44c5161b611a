"""``autometta report``: the morning summary.

For a window (``--since 24h``) and every subscribed repo: first what needs
the human now (:mod:`.needs`, with the command that resolves it), then what
landed (the commits), what stopped and why, and the spend. Sources: state.yaml and budget.json (the
truth), the event journal ``<home>/events.jsonl`` (when a stage stopped),
the registry (stuck agents), git (commit subjects), the spend ledger
``<home>/ledger/`` (every run, by the tick or by hand, per day and per model)
and the parked billing routes ``<home>/parked.json``.
"""

from __future__ import annotations

import os.path as os_path
import re
import subprocess
import time
from typing import Any, Dict, Optional

from .. import home as homes
from ..books import budget as budgets, ledger, parking
from ..errors import UsageError
from ..paths import HomePaths
from ..secrets import redact_doc
from ..timeutil import now_iso, parse_iso
from . import events, heartbeat, lanes, needs
from .needs import first_fail
from .repodocs import read_repo
from .screen import age, compact
from .settings import Settings
from .tickers import BLOCKED, repo_needs

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", re.IGNORECASE)


def parse_since(text: str, now: float) -> float:
    """``24h``, ``90m``, ``2d``, ``1w``, ``3600`` (seconds) or a UTC timestamp -> epoch seconds."""
    match = _SPAN.match(text or "")
    if match:
        return now - float(match.group(1)) * _UNITS[(match.group(2) or "s").lower()]
    when = parse_iso(text)
    if when is None:
        raise UsageError(f"--since {text!r}: give a span like 24h, 90m, 2d, 1w, or a time like 2026-11-26T08:00:00Z")
    return when


def _subject(repo: str, sha: str) -> Optional[str]:
    try:
        proc = subprocess.run(["git", "-C", repo, "log", "-1", "--format=%s", sha], stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def _in_window(stamp: Any, since: float) -> bool:
    when = parse_iso(str(stamp or ""))
    return when is not None and when >= since


#: Journal events of a stage that stopped for a human: one per status in BLOCKED.
_STOPPED_KINDS = tuple(f"stage_{status}" for status in BLOCKED)


def build(hp: HomePaths, settings: Settings, since: float, now: Optional[float] = None) -> Dict[str, Any]:
    now = time.time() if now is None else now
    homes.require_home(hp)
    journal = [e for e in events.journal(hp) if _in_window(e.get("at"), since)]
    booked = ledger.entries(hp, since=since)  # every run that ended in the window, by the tick or by hand
    spent = ledger.summarise(booked)
    parks = parking.shown(parking.load(hp), now)
    repos = []
    for sub in homes.load_subscribers(hp):
        entry: Dict[str, Any] = {"name": sub.name, "repo": str(sub.repo_path) if sub.repo_path else None,
                                 "enabled": sub.enabled, "landed": [], "stopped": [], "needs_you": [],
                                 "spend": {}}
        repos.append(entry)
        if sub.error:
            entry["needs_you"].append(needs.Need(kind="unreadable", repo=str(sub.file), summary=sub.error,
                                             note=f"edit {sub.file}").as_dict())
            if sub.repo_path is not None:  # a billing route it parked still holds every repo on this host
                entry["needs_you"] += [item.as_dict() for item in needs.needs_you(str(sub.repo_path), None, None,
                                                                                  now=now, parks=parks)]
            continue
        if not sub.enabled:  # not ticked, but a billing route it parked still holds every repo on this host
            entry["needs_you"] = [item.as_dict() for item in needs.needs_you(str(sub.repo_path), None, None, now=now,
                                                                            parks=parks)]
            continue
        paths = sub.paths
        repo = str(paths.root)
        state_read, budget_read, problems = read_repo(paths)
        state_doc, b = state_read or {}, budget_read or {}
        stages = [s for s in state_doc.get("stages") or [] if isinstance(s, dict)]
        for s in stages:
            if s.get("status") == "completed" and _in_window(s.get("completed_at"), since):
                sha = s.get("commit")
                entry["landed"].append({"stage": s.get("id"), "commit": sha, "completed_at": s.get("completed_at"),
                                        "subject": _subject(repo, sha) if sha else None,
                                        "tokens": s.get("tokens"), "cost_usd": s.get("cost_usd")})
        stopped_ids = set()
        for e in journal:
            if e.get("repo") == repo and e.get("kind") in _STOPPED_KINDS:
                stopped_ids.add(e.get("stage_id"))
                entry["stopped"].append({"stage": e.get("stage_id"), "status": e.get("status"),
                                         "why": e.get("marker") or first_fail(paths, str(e.get("stage_id"))),
                                         "at": e.get("at")})
        for s in stages:  # stopped without an event (before the journal existed): judged by claim time
            if s.get("status") in BLOCKED and s.get("id") not in stopped_ids and _in_window(s.get("started_at"), since):
                entry["stopped"].append({"stage": s.get("id"), "status": s.get("status"),
                                         "why": s.get("stall_marker") or first_fail(paths, str(s.get("id"))),
                                         "at": s.get("started_at")})
        mine = spent["by_repo"].get(os_path.realpath(repo)) or {}
        agents = heartbeat.check(paths, settings, now, write=False)["entries"] if paths.active_agents.is_dir() else []
        entry["needs_you"] = [item.as_dict() for item in repo_needs(paths, now, agents, state_read, budget_read,
                                                                    problems, parks=parks)]
        entry["pending"] = sum(1 for s in stages if s.get("status") == "pending")
        entry["in_flight"] = lanes.in_flight_ids(state_doc)
        entry["lanes"] = lanes.lanes(state_doc)
        entry["spend"] = {"window_tokens": mine.get("tokens", 0), "window_cost_usd": mine.get("cost_usd", 0.0),
                          "window_runs": mine.get("runs", 0), "window_by_hand_runs": mine.get("by_hand_runs", 0),
                          "tokens_spent": b.get("tokens_spent"), "token_cap_total": b.get("token_cap_total"),
                          "cost_usd_spent": b.get("cost_usd_spent"), "cost_cap_usd": b.get("cost_cap_usd"),
                          **(budgets.lifetime(b) if budget_read is not None else {})}
    # every item, each naming its repo; a billing route parked by a repo not listed here holds them too
    every = [dict(item, name=r["name"]) for r in repos for item in r["needs_you"]] + [
        dict(item.as_dict(), name=needs.HOST)
        for item in needs.elsewhere(parks, [r["repo"] for r in repos if r.get("repo")], now)]
    return redact_doc({  # markers, event texts and verdicts quote agents: never a key
        "since": now_iso(since), "generated_at": now_iso(now), "needs_you": every, "repos": repos,
        "by_day": spent["by_day"], "by_model": spent["by_model"],
        "totals": {"landed": sum(len(r["landed"]) for r in repos), "stopped": sum(len(r["stopped"]) for r in repos),
                   "needs_you": len(every),
                   # every repo's runs, a repo that is not (or no longer) subscribed included
                   "window_tokens": spent["total"]["tokens"], "window_cost_usd": spent["total"]["cost_usd"],
                   "window_runs": spent["total"]["runs"]},
    })


def _runs(n: int) -> str:
    return f"{n} run" if n == 1 else f"{n} runs"


def render(doc: Dict[str, Any], now: float) -> str:
    t = doc["totals"]
    since = parse_iso(doc["since"]) or now
    lines = [f"autometta report: the last {age(now - since)} (since {doc['since']})", ""]
    lines.append(f"NEEDS YOU ({t['needs_you']})")
    for x in doc["needs_you"]:
        item = needs.Need(**{k: v for k, v in x.items() if k != "name"})
        lines.extend(f"  {line}" for line in needs.lines([item], str(x.get("name")), now))
    if not t["needs_you"]:
        lines.append("  (nothing: all clear)")
    lines += ["", f"LANDED ({t['landed']})"]
    for r in doc["repos"]:
        for x in r["landed"]:
            sha = str(x.get("commit") or "")[:12] or "(nothing to commit)"
            lines.append(f"  {r['name']}  {x['stage']}  {sha}  {x.get('subject') or ''}".rstrip())
    if not t["landed"]:
        lines.append("  (nothing)")
    lines += ["", f"STOPPED ({t['stopped']})"]
    for r in doc["repos"]:
        for x in r["stopped"]:
            why = str(x.get("why") or "see its logs")
            status = str(x.get("status"))
            shown = why if why.startswith(status + ":") else f"{status}: {why}"  # merge_conflict: <files>
            lines.append(f"  {r['name']}  {x['stage']}  {shown}")
    if not t["stopped"]:
        lines.append("  (nothing)")
    busy = [(r["name"], lane) for r in doc["repos"] for lane in r.get("lanes") or []]
    if busy:
        lines += ["", f"IN FLIGHT ({len(busy)} {'lane' if len(busy) == 1 else 'lanes'})"]
        lines += [f"  {name}  {lanes.describe(lane)}" for name, lane in busy]
    lines += ["", "SPEND (in the window; since the last reset, against the cap; lifetime)"]
    for r in doc["repos"]:
        s = r["spend"]
        if not s:
            continue
        cap = f" of ${s['cost_cap_usd']:.2f}" if isinstance(s.get("cost_cap_usd"), (int, float)) else ""
        hand = f" ({_runs(s['window_by_hand_runs'])} by hand)" if s.get("window_by_hand_runs") else ""
        life = (f"   lifetime {compact(s['lifetime_tokens'])} tokens  ${float(s.get('lifetime_cost_usd') or 0):.2f}"
                if s.get("lifetime_tokens") is not None else "")
        lines.append(f"  {r['name']}  {compact(s.get('window_tokens'))} tokens  "
                     f"${s.get('window_cost_usd') or 0:.2f}{hand}"
                     f"   since reset {compact(s.get('tokens_spent'))}/{compact(s.get('token_cap_total'))} tokens"
                     f"  ${float(s.get('cost_usd_spent') or 0):.2f}{cap}{life}")
    lines.append(f"  all  {compact(t['window_tokens'])} tokens  ${t['window_cost_usd']:.2f}")
    if doc.get("by_day"):
        lines += ["", "SPEND PER DAY (UTC; every run, by the tick or by hand)"]
        lines += [f"  {d['date']}  {_runs(d['runs']):>9}  {compact(d['tokens']):>7} tokens  ${d['cost_usd']:.2f}"
                  for d in doc["by_day"]]
    if doc.get("by_model"):
        lines += ["", "SPEND PER MODEL"]
        lines += [f"  {m['model']:<28} {_runs(m['runs']):>9}  {compact(m['tokens']):>7} tokens  ${m['cost_usd']:.2f}"
                  for m in doc["by_model"]]
    return "\n".join(lines)

"""The two tickers: agents (``autometta ticker``) and repos (``autometta status --watch``).

Both are viewers: they read files and the process table and write nothing
(the agent ticker runs the heartbeat in memory, so it is live between
ticks). A view is built as data first (``--json`` prints it), then drawn
by :mod:`autometta.observe.screen`.

Every string a view shows is masked (:func:`autometta.secrets.redact_doc`):
an agent's last log line or a marker quoting it never shows a key.

Both lead with what needs you (:mod:`autometta.observe.needs`, the one
source every view and event reads), computed from the present state, so
each item clears when its cause goes: a halt when it is reset, a stopped
stage when it is re-queued, a stuck agent when it writes again or exits, a
park when its reset passes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .. import home as homes
from ..errors import UserError
from ..paths import HomePaths, RepoPaths
from ..secrets import redact_doc
from ..stagerecord import records
from ..timeutil import now_iso, parse_iso
from . import lanes, needs
from ..agents import registry  # activity and heartbeat where an agent is shown: status imports neither
from .screen import age, clean, compact
from .repodocs import read_repo, read_state
from .settings import Settings

TYPE_CHECKING = False  # not typing's: status imports no typing (tests/test_startup.py)
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional

    from .screen import Line

#: Stage statuses that need a human until the stage is re-queued.
BLOCKED = needs.STOPPED


# --------------------------------------------------------------------------- inputs


def target_repos(hp: HomePaths, repo: Optional[str]) -> List[RepoPaths]:
    """``repo`` (any folder, subscribed or not), else every enabled subscribed repo."""
    if repo:
        path = Path(os.path.realpath(repo))
        if not path.is_dir():
            raise UserError(f"{path}: no such folder; give the repo's path")
        return [RepoPaths(path)]
    homes.require_home(hp)
    return [sub.paths for sub in homes.load_subscribers(hp) if sub.enabled and not sub.error]


def repo_needs(paths: RepoPaths, now: float, agents: Any, state_doc: Optional[Dict[str, Any]],
               budget_doc: Optional[Dict[str, Any]], problems: Dict[str, str],
               parks: Any = ()) -> List[needs.Need]:
    """:func:`.needs.for_repo` given what :func:`read_repo` read: a file it could not read is left
    to ``for_repo`` to read, which makes it an ``unreadable`` item naming the file."""
    return needs.for_repo(paths, now, agents, state_doc=False if "state" in problems else state_doc,
                          budget_doc=False if "budget" in problems else budget_doc, parks=parks)


def last_tick(hp: HomePaths) -> Optional[float]:
    """When the controller last ran (its stamp) or wrote its log (any repo), or None."""
    try:
        logs = [p for p in hp.log_dir.iterdir() if p.name.startswith("tick-") and p.name.endswith(".log")
                or p.name == hp.tick_stamp.name]
    except OSError:
        return None
    times = []
    for log in logs:
        try:
            times.append(log.stat().st_mtime)
        except OSError:
            pass
    return max(times) if times else None


def controller_line(hp: HomePaths, settings: Settings, now: float) -> Line:
    when = last_tick(hp)
    if when is None:
        return ("controller: no tick has run yet (cron or launchd runs 'autometta tick')", "yellow")
    seconds = max(0.0, now - when)
    if seconds > settings.tick_stale_seconds:
        return (f"controller: last tick {age(seconds)} ago (STALE: is cron/launchd still running it?)", "red")
    if seconds > settings.tick_warn_seconds:
        return (f"controller: last tick {age(seconds)} ago (WARN)", "yellow")
    return (f"controller: last tick {age(seconds)} ago (ok)", "")


# --------------------------------------------------------------------------- the agent view


def need_lines(items: List[Dict[str, Any]], now: float) -> List[Line]:
    """``NEEDS YOU (n)`` and each item with what to do, in red; nothing when nothing needs you."""
    if not items:
        return []
    out: List[Line] = [(f"NEEDS YOU ({len(items)})", "red")]
    for text in needs.lines([needs.Need(**item) for item in items], now=now):
        out.append((f"  {'! ' if not text.startswith('    ') else ''}{clean(text)}", "red"))
    return out


def repo_view(paths: RepoPaths, settings: Settings, now: float, parks: Any = ()) -> Dict[str, Any]:
    from . import activity, heartbeat

    report = heartbeat.check(paths, settings, now, write=False)
    live = []
    for row in report["entries"]:
        log = Path(str(row["log_path"])) if row.get("log_path") else None
        usage = activity.live_usage(log, str(row.get("family") or ""))
        live.append({
            "pid": row.get("pid"), "role": row.get("role"), "family": row.get("family"),
            "identity": row.get("identity"), "stage": registry.stage_of(row) or registry.card_stem(row),
            "elapsed_seconds": row.get("elapsed_seconds"), "tokens": usage.total_tokens if usage else None,
            "cost_usd": usage.cost_usd if usage else None, "state": row["state"], "reason": row.get("reason"),
            "flags": row.get("flags"), "log_path": row.get("log_path"), "activity": activity.last_activity(log),
        })
    state_doc, budget_doc, problems = read_repo(paths)
    status_now = {s.get("id"): s.get("status") for s in (state_doc or {}).get("stages") or [] if isinstance(s, dict)}
    recent = []
    for row in report["exited"] + registry.recent(paths, 5):
        stage = registry.stage_of(row)
        exited = parse_iso(str(row.get("exited_at") or ""))
        recent.append({
            "pid": row.get("pid"), "role": row.get("role"), "family": row.get("family"),
            "stage": stage or registry.card_stem(row), "outcome": row.get("outcome") or "exited",
            "stage_status": status_now.get(stage) or row.get("stage_status"), "exit_code": row.get("exit_code"),
            "exited_ago_seconds": None if exited is None else max(0, int(now - exited)),
            "elapsed_seconds": row.get("run_seconds", row.get("elapsed_seconds")),
        })
    scheduled = []
    for rec in records(state_doc):
        if rec.status == "in_progress":
            scheduled.append({"id": rec.id, "status": "in_progress",
                              "phase": lanes.phase(rec.doc) if rec.worktree else None})
    for rec in records(state_doc):
        if rec.status == "pending" and len(scheduled) < 6:
            scheduled.append({"id": rec.id, "status": "pending"})
    items = repo_needs(paths, now, report["entries"], state_doc, budget_doc, problems, parks=parks)
    return {
        "repo": str(paths.root), "name": paths.root.name,
        "state_readable": state_doc is not None,
        "needs_you": [item.as_dict() for item in items],
        "alerts": [item.summary for item in items],
        "active": live, "recent": recent[:5], "scheduled": scheduled,
    }


def agents_view(hp: HomePaths, repos: List[RepoPaths], settings: Settings, now: float) -> Dict[str, Any]:
    from ..books import parking

    parks = parking.shown(parking.load(hp), now)  # a billing route parked by one of them
    text, style = controller_line(hp, settings, now)
    return redact_doc({"checked_at": now_iso(now), "controller": {"line": text, "level": style or "ok",
                                                                  "last_tick_at": _iso(last_tick(hp))},
                       "repos": [repo_view(paths, settings, now, parks) for paths in repos]})


def _iso(when: Optional[float]) -> Optional[str]:
    return None if when is None else now_iso(when)


def agents_lines(view: Dict[str, Any], width: int) -> List[Line]:
    from .heartbeat import ALERT_STATES, FAILED_OUTCOMES

    stamp = view["checked_at"][11:]
    lines: List[Line] = [(f"autometta agents  {stamp}", "bold"),
                         (view["controller"]["line"], "" if view["controller"]["level"] == "ok"
                          else view["controller"]["level"])]
    if not view["repos"]:
        lines.append(("no enabled subscribed repos; run 'autometta subscribe REPO'", ""))
    for repo in view["repos"]:
        lines.append(("", ""))
        lines.append((f"== {repo['name']}  {repo['repo']}", "bold"))
        lines.extend(need_lines(repo["needs_you"], parse_iso(view["checked_at"]) or 0.0))
        lines.append((f"ACTIVE ({len(repo['active'])})", "bold"))
        if not repo["active"]:
            lines.append(("  (none)", "dim"))
        for a in repo["active"]:
            style = "red" if a["state"] in ALERT_STATES else ("yellow" if a["state"] == "quiet" else "")
            lines.append((f"  {str(a['role'] or '?'):<8} {str(a['family'] or '?'):<6} {str(a['stage']):<22} "
                          f"{age(a['elapsed_seconds']):>6} {compact(a['tokens']):>6} tok  {a['state']}", style))
            if a["activity"]:
                lines.append((f"    > {a['activity']}", "dim"))
        lines.append(("RECENT", "bold"))
        if not repo["recent"]:
            lines.append(("  (none)", "dim"))
        for r in repo["recent"]:
            outcome = str(r["outcome"])
            if r.get("exit_code") not in (None, 0) and outcome == "failed":
                outcome = f"failed:{r['exit_code']}"
            stage_note = f" [{r['stage_status']}]" if r.get("stage_status") and r["stage_status"] != r["outcome"] else ""
            failed = r["outcome"] in FAILED_OUTCOMES or r.get("stage_status") in FAILED_OUTCOMES
            lines.append((f"  {age(r['exited_ago_seconds']) + ' ago':<9} {str(r['role'] or '?'):<8} "
                          f"{str(r['family'] or '?'):<6} {str(r['stage']):<22} {outcome}{stage_note}",
                          "red" if failed else ""))
        lines.append(("SCHEDULED", "bold"))
        if not repo["scheduled"]:
            lines.append(("  (nothing pending)" if repo["state_readable"] else "  (no readable state.yaml)", "dim"))
        for s in repo["scheduled"]:
            lane = f"  lane: {s['phase']}" if s.get("phase") else ""
            lines.append((f"  {s['status']:<12} {s['id']}{lane}", ""))
    return lines


# --------------------------------------------------------------------------- the status view


def completed(hp: HomePaths, repos: List[RepoPaths], limit: int) -> List[Dict[str, Any]]:
    """Stages that completed, newest first, across ``repos``."""
    rows = []
    for paths in repos:
        for rec in records(read_state(paths)):
            if rec.status == "completed":
                rows.append({"repo": paths.root.name, "stage": rec.id, "commit": rec.commit,
                             "completed_at": rec.completed_at})
    rows.sort(key=lambda r: str(r.get("completed_at") or ""), reverse=True)
    return rows[:limit]


def scope_rows(hp: HomePaths, rows: List[Dict[str, Any]], repo: str) -> List[Dict[str, Any]]:
    """The status rows of ``repo`` only (an unsubscribed repo has none)."""
    wanted = os.path.realpath(repo)
    return [r for r in rows if r.get("repo_path") and os.path.realpath(r["repo_path"]) == wanted]


def status_view(hp: HomePaths, repo: Optional[str], settings: Settings, now: float,
                warnings: bool = True) -> Dict[str, Any]:
    """The one status document: ``status --json`` and ``status --watch --once --json`` print it.

    ``needs_you``: every repo's items (each names its repo; a billing route
    parked by a repo not listed here names :data:`autometta.observe.needs.HOST`), first; ``repos``:
    the rows, each with its own ``needs_you``; ``warnings=False`` leaves the
    schedule unread (the redrawn table does not show it), ``schedule_warnings``
    is then empty.
    """
    from . import statusrows as status_cmd

    parks = status_cmd.parks_now(hp, now)
    rows = status_cmd.collect(hp, now, settings, parks)
    if repo:
        rows = scope_rows(hp, rows, repo)
        repos = target_repos(hp, repo)
    else:
        repos = [RepoPaths(Path(r["repo_path"])) for r in rows if r.get("repo_path") and r.get("enabled")]
    text, level = controller_line(hp, settings, now)
    schedule: List[str] = []
    if warnings:
        from .schedulewarnings import warnings as schedule_warnings

        schedule = schedule_warnings()  # remembered between runs while what they depend on is unchanged
    return redact_doc({  # a marker quoting an agent never shows a key
        "checked_at": now_iso(now), "home": str(hp.root), "latest_log": status_cmd.latest_log(hp),
        "controller": {"line": text, "level": level or "ok", "last_tick_at": _iso(last_tick(hp))},
        "needs_you": [dict(item, name=row["repo"]) for row in rows for item in row.get("needs_you") or []] + [
            dict(item.as_dict(), name=needs.HOST)  # a park met in no repo listed here holds them too
            for item in needs.elsewhere(parks, [r["repo_path"] for r in rows if r.get("repo_path")], now)],
        "repos": rows, "completed": completed(hp, repos, int(settings.completed_limit)),
        "completed_limit": int(settings.completed_limit), "schedule_warnings": schedule})


def status_lines(view: Dict[str, Any], width: int) -> List[Line]:
    from . import statusrows as status_cmd

    now = parse_iso(view["checked_at"]) or 0.0
    rows = view["repos"]
    level = view["controller"]["level"]
    lines: List[Line] = [(f"autometta status  {view['checked_at'][11:]}", "bold"),
                         (view["controller"]["line"], "" if level == "ok" else level), ("", "")]
    for text in status_cmd.needs_lines(view["needs_you"], now):
        lines.append((text, "bold" if text.startswith("NEEDS YOU: nothing") else "red"))
    lines.append(("", ""))
    if rows:
        table = status_cmd.render_table(rows).splitlines()
        lines.append((table[0], "bold"))
        lines.append((table[1], "dim"))
        for row, text in zip(rows, table[2:]):
            bad = row.get("halted") or row.get("errors") or row.get("status") in BLOCKED or any(
                item.get("kind") != "parked" for item in row.get("needs_you") or [])
            lines.append((text, "red" if bad else ""))
        for row in rows:
            prefix = f"{row.get('repo_path')}/"
            for err in row.get("errors") or []:  # the repo's name first: a narrow pane cuts the end
                lines.append((f"  {row['repo']}: {err[len(prefix):] if err.startswith(prefix) else err}", "red"))
            lines.extend((f"  {line}", "") for line in status_cmd.lane_lines(row))
    else:
        lines.append(("no subscribed repos match; run 'autometta subscribe REPO'", ""))
    limit = view["completed_limit"]
    done = view["completed"]
    lines.append(("", ""))
    lines.append((f"COMPLETED (last {limit})", "bold"))
    if not done:
        lines.append(("  (none)", "dim"))
    for row in done:
        ago = parse_iso(str(row.get("completed_at") or ""))
        commit = str(row.get("commit") or "-")[:10]
        lines.append((f"  {row['repo'][:16]:<16} {str(row['stage'])[:30]:<30} {commit:<10} "
                      f"{age(None if ago is None else now - ago)} ago", "green"))
    return lines


def status_watch(hp: HomePaths, repo: Optional[str], *, once: bool = False, as_json: bool = False) -> int:
    """``autometta status --watch``: the status table and recent completions, redrawn."""
    import time

    from ..errors import UsageError
    from . import screen
    from . import settings as observe_settings

    conf = observe_settings.from_home(hp)
    homes.require_home(hp)
    if as_json:
        if not once:
            raise UsageError("--watch redraws a table; for JSON use --json alone, or --watch --once --json")
        doc = status_view(hp, repo, conf, time.time())
        print(json.dumps(doc, indent=2))
        return 1 if any(row["errors"] for row in doc["repos"]) else 0

    def render(width: int) -> List[Line]:
        return status_lines(status_view(hp, repo, conf, time.time(), warnings=False), width)

    return screen.run(render, conf.status_ticker_interval_seconds, once=once)

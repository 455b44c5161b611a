"""One self-contained HTML page: every repo's queue, agents, halts, spend and last ticks.

``<home>/dashboard/index.html`` holds everything: the page is rendered here
(no script builds it), its data is embedded as JSON (``#autometta-data``,
also written to ``data.json`` beside it in the bash version's shape), the
charts are inline SVG and the page's Content-Security-Policy forbids any
network fetch. It therefore opens from ``file://`` with no server, no
network and no console errors (the bash page's ``fetch('data.json')`` is
blocked by Chromium there, §15.25).

Every page leads with what needs you (:mod:`.needs`, the one source the
other views and the events read): the page's top lists every repo's items,
each repo's card starts with its own, each with the command that addresses
it; a stage's own page starts with the stage's.

The tick calls :func:`refresh` at its end, which regenerates the page when
something it shows changed since its data was read -- a repo's
``state.yaml`` or ``budget.json``, the subscriber list, the heartbeat's
findings (an agent turned stuck, over budget or gone reaches the page the
same tick), the billing routes parked on this host (``parked.json``), the
spend ledger (a run booked by hand), a park reaching its reset -- and otherwise only restamps it
(:mod:`.fresh`): an idle tick costs a few ``stat`` calls, small reads and
one rewrite of the page's "data as of" line, no git and no subprocess. The
page turns that line red when its data is older than two tick intervals.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from .. import files, home as homes
from ..agents import registry
from ..books import budget as budgets, ledger, parking
from ..errors import UserError
from ..paths import HomePaths, RepoPaths
from ..secrets import redact_doc
from ..stagerecord import records
from ..timeutil import now_iso
from . import fresh, heartbeat, lanes, needs
from .pagehtml import CSP as _CSP, CSS as _CSS, badge as _badge, e as _e, needs_html, table
from .repodocs import read_repo, read_state
from .settings import Settings
from .tickers import BLOCKED, repo_needs

#: Tick log lines shown per repo.
LAST_TICKS = 12
_LOG_TAIL_BYTES = 256 * 1024

STAGE_FIELDS = ("id", "status", "worker", "verifier", "started_at", "completed_at", "tokens", "worker_tokens",
                "verifier_tokens", "cost_usd", "worker_cost_usd", "verifier_cost_usd", "commit", "verifier_artefact",
                "stall_marker")


def _verdict(paths: RepoPaths, stage_id: str) -> Optional[str]:
    from ..envelope import load_verdict

    return (load_verdict(paths.verifier_artefact(stage_id)) or {}).get("overall")


def _orchestrator(card_path: Optional[Path]) -> Optional[str]:
    if card_path is None:
        return None
    try:
        text = files.read_bytes(card_path).decode("utf-8", errors="replace")
    except UserError:
        return None
    for line in text.splitlines():
        if line.startswith("- **Orchestrator:** "):
            return line[len("- **Orchestrator:** "):].strip()
    return None


def _cards(sub: homes.Subscriber) -> Dict[str, Path]:
    """Stage id -> card file, by the repo's card globs ({} when they cannot be read)."""
    from .. import card as cards
    from .. import manifest
    from ..errors import UserError

    try:
        found = cards.list_cards(sub.paths.root, cards.card_globs(
            sub.paths.root, manifest.load_manifest(sub.paths, sub.manifest_path)))
    except (UserError, OSError):
        return {}
    return {stage_id: Path(path) for stage_id, path in found}


def recent_log_lines(hp: HomePaths) -> List[str]:
    """The tails of the two newest tick logs, read once for every repo."""
    try:
        logs = sorted(p for p in hp.log_dir.iterdir() if p.name.startswith("tick-") and p.name.endswith(".log"))
    except OSError:
        return []
    lines: List[str] = []
    for log in logs[-2:]:
        try:
            with files.open_regular(log) as handle:
                handle.seek(0, os.SEEK_END)
                size = handle.tell()
                handle.seek(max(0, size - _LOG_TAIL_BYTES))
                lines.extend(handle.read().decode("utf-8", errors="replace").splitlines())
        except OSError:
            continue
    return lines


def _tick_lines(log_lines: List[str], repo: str, others: List[str], limit: int,
                stage_ids: Optional[List[str]] = None) -> List[str]:
    """The last ``limit`` tick log lines about ``repo``: those naming it, or one of its stages
    and no other repo (the tick logs a transition's details, ``worker pid N started for 05-x``,
    without repeating the path). A stage id two repos share shows in both. A line repeated
    tick after tick (an idle repo) is shown once, counted."""
    import re

    ids = re.compile(r"\b(?:" + "|".join(re.escape(i) for i in stage_ids) + r")\b") if stage_ids else None
    ours = re.compile(re.escape(repo) + r"(?![\w.-])")
    theirs = [re.compile(re.escape(o) + r"(?![\w.-])") for o in others if o != repo]
    collapsed: List[List[Any]] = []
    for line in log_lines:
        if not (ours.search(line) or (ids is not None and ids.search(line[21:])
                                      and not any(t.search(line) for t in theirs))):
            continue
        if collapsed and collapsed[-1][0][21:] == line[21:]:
            collapsed[-1] = [line, collapsed[-1][1] + 1]
        else:
            collapsed.append([line, 1])
    return [line if n == 1 else f"{line} (x{n})" for line, n in collapsed][-limit:]


def repo_data(hp: HomePaths, sub: homes.Subscriber, settings: Settings, now: float,
              others: Optional[List[str]] = None, log_lines: Optional[List[str]] = None,
              parks: Optional[List[Dict[str, Any]]] = None) -> Dict[str, Any]:
    """One repo's card; ``parks``: the billing routes parked on this host (read from ``hp`` when None)."""
    parks = parking.shown(parking.load(hp), now) if parks is None else parks
    out: Dict[str, Any] = {"name": sub.name, "repo_path": str(sub.repo_path) if sub.repo_path else None,
                           "enabled": sub.enabled, "error": sub.error, "stages": [], "agents": [],
                           "alerts": [], "last_ticks": []}
    if sub.error or sub.repo_path is None:
        if sub.repo_path is not None:  # a billing route it parked still holds every repo on this host
            out["needs_you"] = [i.as_dict() for i in needs.needs_you(str(sub.repo_path), None, None, now=now,
                                                                      parks=parks)]
        return out
    paths = sub.paths
    state_doc, budget_doc, problems = read_repo(paths)
    b = budget_doc or {}
    for key in ("tokens_spent", "token_cap_total", "cost_usd_spent", "cost_cap_usd", "clock_ticks_used",
                "clock_tick_cap", "consecutive_failures", "consecutive_failure_cap", "halted", "halt_reason",
                "halted_at"):
        out[key] = b.get(key)
    out.update(budgets.lifetime(b) if budget_doc is not None else dict.fromkeys(k for k, _ in budgets.LIFETIME))
    out["unreadable"] = list(problems.values())
    out["halted"] = bool(b.get("halted"))
    out["current_stage"] = (state_doc or {}).get("current_stage")
    out["lanes"] = lanes.lanes(state_doc)
    out["last_tick_at"] = (state_doc or {}).get("last_tick_at")
    out["state_readable"] = state_doc is not None
    card_paths = _cards(sub)
    for rec in records(state_doc):
        row = {key: rec.doc.get(key) for key in STAGE_FIELDS}
        row["verifier_overall"] = _verdict(paths, str(rec.id)) if rec.verifier_artefact else None
        row["orchestrator"] = _orchestrator(card_paths.get(str(rec.id)))
        out["stages"].append(row)
    live, rows = [], []
    if paths.active_agents.is_dir():
        rows = heartbeat.check(paths, settings, now, write=False)["entries"]
        for row in rows:
            live.append({"pid": row.get("pid"), "role": row.get("role"), "family": row.get("family"),
                         "identity": row.get("identity"), "stage": registry.stage_of(row),
                         "state": row.get("state"), "reason": row.get("reason"),
                         "elapsed_seconds": row.get("elapsed_seconds")})
    out["agents"] = live
    items = repo_needs(paths, now, rows, state_doc, budget_doc, problems, parks=parks)
    out["needs_you"] = [item.as_dict() for item in items]
    out["alerts"] = [item.summary for item in items]
    out["parked_until"] = (state_doc or {}).get("parked_until")
    out["last_ticks"] = _tick_lines(recent_log_lines(hp) if log_lines is None else log_lines, str(sub.repo_path),
                                    others or [], LAST_TICKS, [str(s["id"]) for s in out["stages"] if s.get("id")])
    return out


def collect(hp: HomePaths, settings: Settings, now: Optional[float] = None) -> Dict[str, Any]:
    """The dashboard's data: ``generated_at``, ``repos``, ``by_model``, ``by_day`` and totals."""
    now = time.time() if now is None else now
    subs = homes.load_subscribers(hp)
    known = [str(sub.repo_path) for sub in subs if sub.repo_path is not None]
    log_lines = recent_log_lines(hp)
    parks = parking.shown(parking.load(hp), now)
    repos = [repo_data(hp, sub, settings, now, known, log_lines, parks) for sub in subs]
    # Spend from the ledger: every run, by the tick or by hand, whatever became of its stage.
    spend = ledger.summarise(ledger.entries(hp))
    for repo in repos:
        mine = spend["by_repo"].get(os.path.realpath(str(repo.get("repo_path") or ""))) or {}
        repo["ledger"] = {key: mine.get(key, 0) for key in ("tokens", "cost_usd", "runs", "by_hand_runs")}
    return {
        "data_as_of": now_iso(now),
        "generated_at": now_iso(now),
        "needs_you": [dict(item, name=repo["name"]) for repo in repos for item in repo.get("needs_you") or []] + [
            dict(item.as_dict(), name=needs.HOST) for item in needs.elsewhere(parks, known, now)],
        "repos": repos,
        "totals": {"tokens_spent": sum(int(r.get("tokens_spent") or 0) for r in repos),
                   "cost_usd_spent": round(sum(float(r.get("cost_usd_spent") or 0) for r in repos), 6),
                   "lifetime_tokens": sum(int(r.get("lifetime_tokens") or 0) for r in repos),
                   "lifetime_cost_usd": round(sum(float(r.get("lifetime_cost_usd") or 0) for r in repos), 6),
                   "repos": len(repos), "halted": sum(1 for r in repos if r.get("halted"))},
        # ``identity`` keeps the bash page's key: here the model's name, the identities that ran it beside it
        "by_model": [{"identity": m["model"], "model": m["model"], "family": m["family"],
                      "identities": m["identities"], "tokens": m["tokens"], "cost_usd": m["cost_usd"],
                      "runs": m["runs"]} for m in spend["by_model"]],
        "by_day": [{"date": d["date"], "tokens": d["tokens"], "cost_usd": d["cost_usd"], "runs": d["runs"]}
                   for d in spend["by_day"]],
    }


# --------------------------------------------------------------------------- rendering

_SCRIPT = fresh.SCRIPT


def _num(n: Any) -> str:
    if n is None:
        return "-"
    try:
        value = float(n)
    except (TypeError, ValueError):
        return _e(n)
    for unit, size in (("M", 1_000_000), ("k", 1_000)):
        if abs(value) >= size:
            return f"{value / size:.1f}{unit}".replace(".0" + unit, unit)
    return str(int(value))


def _usd(n: Any) -> str:
    try:
        return f"${float(n or 0):.2f}"
    except (TypeError, ValueError):
        return "-"


def bar_chart(items: List[Dict[str, Any]], key: str, label: str, fmt: Callable[[Any], str]) -> str:
    """Horizontal bars as inline SVG: one per item, scaled to the largest ``key``."""
    items = [i for i in items if float(i.get(key) or 0) > 0]
    if not items:
        return f'<p class="muted">No {label} recorded yet.</p>'
    top = max(float(i[key]) for i in items)
    row, left, width = 22, 170, 640
    height = row * len(items) + 6
    parts = [f'<svg role="img" aria-label="{_e(label)} per stage" viewBox="0 0 {width} {height}" '
             f'width="100%" style="max-width:{width}px" xmlns="http://www.w3.org/2000/svg">']
    for n, item in enumerate(items):
        y = n * row + 3
        value = float(item[key])
        length = max(2.0, (width - left - 80) * value / top)
        name = str(item.get("id"))
        shown = name if len(name) <= 24 else name[:23] + "~"
        parts.append(f'<g><title>{_e(name)}: {_e(fmt(value))}</title>'
                     f'<text x="{left - 6}" y="{y + 14}" text-anchor="end">{_e(shown)}</text>'
                     f'<rect class="bar" x="{left}" y="{y + 2}" width="{length:.1f}" height="{row - 6}" rx="3"/>'
                     f'<text class="val" x="{left + length + 6:.1f}" y="{y + 14}">{_e(fmt(value))}</text></g>')
    parts.append("</svg>")
    return "".join(parts)


def _lane_badge(lane: Dict[str, Any]) -> str:
    """A lane in flight where the current stage's badge goes: its id and phase, its branch on hover."""
    where = f"{lane.get('branch')} onto {lane.get('base')} in {lane.get('worktree')}"
    return (f'<span class="badge s-in_progress" title="{_e(where)}">{_e(lane.get("id"))}: '
            f'{_e(lane.get("phase"))}</span>')


def _repo_html(repo: Dict[str, Any]) -> str:
    out = [f'<section class="card" id="repo-{_e(repo["name"])}"><div class="row"><h2>{_e(repo["name"])}</h2>']
    if repo.get("error"):
        out.append(f'{_badge("error")}</div><p class="muted">{_e(repo["error"])}</p></section>')
        return "".join(out)
    if not repo.get("enabled"):
        out.append(_badge("off"))
    elif repo.get("halted"):
        out.append(f'<span class="badge s-halted">halted: {_e(repo.get("halt_reason"))}</span>')
    elif repo.get("current_stage"):
        out.append(f'<span class="badge s-in_progress">{_e(repo["current_stage"])}</span>')
    elif repo.get("lanes"):
        out.extend(_lane_badge(lane) for lane in repo["lanes"])
    elif any(item.get("kind") != "parked" for item in repo.get("needs_you") or []):
        waiting = sum(1 for item in repo["needs_you"] if item.get("kind") != "parked")
        out.append(f'<span class="badge s-halted">needs you: {waiting}</span>')
    elif repo.get("needs_you"):
        out.append('<span class="badge s-quiet">parked</span>')
    else:
        out.append('<span class="badge s-pending">idle</span>')
    out.append(f'<code class="muted">{_e(repo.get("repo_path"))}</code></div>')
    out.append(needs_html(repo.get("needs_you") or [], {str(repo.get("repo_path")): repo.get("stage_pages") or {}}))
    cost_cap = f' of {_usd(repo["cost_cap_usd"])}' if repo.get("cost_cap_usd") is not None else ""
    out.append('<div class="row" style="margin-top:8px">'
               f'<span class="kpi">tokens <b>{_num(repo.get("tokens_spent"))}</b> of {_num(repo.get("token_cap_total"))}'
               f' <span class="muted">since the last reset</span></span>'
               f'<span class="kpi">cost <b>{_usd(repo.get("cost_usd_spent"))}</b>{cost_cap}</span>'
               f'<span class="kpi">lifetime <b>{_num(repo.get("lifetime_tokens"))}</b> tokens, '
               f'<b>{_usd(repo.get("lifetime_cost_usd"))}</b>, '
               f'<b>{_num(repo.get("lifetime_wall_clock_seconds"))}</b>s</span>'
               f'<span class="kpi">ticks <b>{_e(repo.get("clock_ticks_used"))}</b>/{_e(repo.get("clock_tick_cap"))}</span>'
               f'<span class="kpi">failures in a row <b>{_e(repo.get("consecutive_failures"))}</b>/'
               f'{_e(repo.get("consecutive_failure_cap"))}</span>'
               f'<span class="kpi muted">last transition {_e(repo.get("last_tick_at"))}</span>'
               + (f'<span class="kpi muted">booked {_e((repo.get("ledger") or {}).get("runs"))} runs, '
                  f'{_e((repo.get("ledger") or {}).get("by_hand_runs"))} by hand</span>'
                  if (repo.get("ledger") or {}).get("by_hand_runs") else "") + '</div>')
    stages = repo["stages"]
    use_cost = any(float(s.get("cost_usd") or 0) > 0 for s in stages)
    out.append(f'<h3>{"Cost" if use_cost else "Tokens"} per stage</h3>')
    out.append(bar_chart(stages, "cost_usd" if use_cost else "tokens", "cost" if use_cost else "tokens",
                         (lambda v: f"${v:.2f}") if use_cost else _num))
    out.append("<h3>Stage queue</h3>")
    rows = []
    for s in stages:
        marker = f'<div class="muted">{_e(s.get("stall_marker"))}</div>' if s.get("stall_marker") else ""
        verdict = f' <span class="muted">verdict {_e(s["verifier_overall"])}</span>' if s.get("verifier_overall") else ""
        rows.append(f'<tr><td>{_stage_cell(repo, s.get("id"))}</td><td>{_badge(s.get("status"))}{verdict}{marker}</td>'
                    f'<td>{_e(s.get("worker"))}</td><td>{_e(s.get("verifier"))}</td>'
                    f'<td class="num">{_num(s.get("tokens"))}</td>'
                    f'<td class="num">{_usd(s.get("cost_usd")) if s.get("cost_usd") else "-"}</td>'
                    f'<td><code>{_e(str(s.get("commit") or "")[:12]) or "-"}</code></td>'
                    f'<td>{_e(s.get("completed_at") or "-")}</td></tr>')
    out.append(table('<th>Stage</th><th>Status</th><th>Worker</th><th>Verifier</th><th class="num">Tokens</th>'
                     '<th class="num">Cost</th><th>Commit</th><th>Completed</th>', rows,
                     "No stages queued (autometta add-stage REPO CARD)."))
    out.append("<h3>Agents now</h3>")
    rows = [f'<tr><td>{_e(a["role"])}</td><td>{_e(a["family"])}</td><td>{_stage_cell(repo, a["stage"])}</td>'
            f'<td>{_badge(a["state"])}</td><td>{_e(a["pid"])}</td>'
            f'<td class="num">{_e(a["elapsed_seconds"])}s</td><td>{_e(a["reason"])}</td></tr>' for a in repo["agents"]]
    out.append(table('<th>Role</th><th>Family</th><th>Stage</th><th>State</th><th>pid</th><th class="num">Running</th>'
                     '<th>Why</th>', rows, "No agent running."))
    out.append("<h3>Last ticks</h3>")
    if repo["last_ticks"]:
        out.append("<pre>" + "\n".join(_e(line) for line in repo["last_ticks"]) + "</pre>")
    else:
        out.append('<p class="muted">No tick has logged this repo yet.</p>')
    out.append("</section>")
    return "".join(out)


def render_html(data: Dict[str, Any], now: Optional[float] = None) -> str:
    now = time.time() if now is None else now
    embedded = json.dumps(data, ensure_ascii=True, sort_keys=True).replace("<", "\\u003c").replace(">", "\\u003e")
    totals = data["totals"]
    body = "".join(_repo_html(repo) for repo in data["repos"]) or (
        '<section class="card"><p>No subscribed repos. Run <code>autometta subscribe REPO</code>.</p></section>')
    by_model = "".join(f'<tr><td>{_e(m["model"])}</td><td class="muted">{_e(", ".join(m.get("identities") or []))}</td>'
                       f'<td class="num">{_e(m["runs"])}</td><td class="num">{_num(m["tokens"])}</td>'
                       f'<td class="num">{_usd(m["cost_usd"])}</td></tr>' for m in data["by_model"])
    models = ('<section class="card"><h2>Spend per model</h2><table><thead><tr><th>Model</th><th>Run as</th>'
              '<th class="num">Runs</th><th class="num">Tokens</th><th class="num">Cost</th></tr></thead>'
              f'<tbody>{by_model}</tbody></table></section>' if by_model else "")
    by_day = "".join(f'<tr><td>{_e(d["date"])}</td><td class="num">{_e(d["runs"])}</td>'
                     f'<td class="num">{_num(d["tokens"])}</td><td class="num">{_usd(d["cost_usd"])}</td></tr>'
                     for d in reversed(data["by_day"][-31:]))
    days = ('<section class="card"><h2>Spend per day</h2><table><thead><tr><th>Day (UTC)</th>'
            '<th class="num">Runs</th><th class="num">Tokens</th><th class="num">Cost</th></tr></thead>'
            f'<tbody>{by_day}</tbody></table></section>' if by_day else "")
    links = {str(r.get("repo_path")): r.get("stage_pages") or {} for r in data["repos"]}
    top = needs_html(data.get("needs_you") or [], links, with_repo=True) or (
        '<div class="muted">Nothing needs you.</div>')
    every = int(data.get("tick_interval_seconds") or fresh.DEFAULT_INTERVAL)
    freshness = fresh.fragment(data.get("data_as_of") or data["generated_at"], now,
                               int(data.get("stale_after_seconds") or fresh.stale_after(every)), every,
                               str(data.get("tick_interval_source") or "the default"))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta http-equiv="refresh" content="60">'
        '<link rel="icon" href="data:,">'
        "<title>autometta dashboard</title>"
        f"<style>{_CSS}</style></head><body>"
        f'<header><h1>autometta dashboard</h1><div class="row muted">'
        f'<span title="made {_e(data["generated_at"])}">{freshness}</span>'
        f"<span>{totals['repos']} repos</span><span>{_num(totals['tokens_spent'])} tokens against the caps, "
        f"{_num(totals['lifetime_tokens'])} lifetime</span>"
        f"<span>{_usd(totals['cost_usd_spent'])}</span><span>{totals['halted']} halted</span></div>{top}</header>"
        f"<main>{body}{days}{models}</main>"
        f'<script type="application/json" id="autometta-data">{embedded}</script>'
        f"<script>{_SCRIPT}</script></body></html>\n"
    )


def generate(hp: HomePaths, settings: Settings, now: Optional[float] = None,
             page_seconds: Optional[float] = None) -> Path:
    """Write ``index.html`` and ``data.json`` under ``<home>/dashboard/``, and the pages of the
    stages that changed (:mod:`.stagepage`, within ``page_seconds``); returns the page."""
    return generate_data(hp, settings, now, page_seconds)[0]


def generate_data(hp: HomePaths, settings: Settings, now: Optional[float] = None,
                  page_seconds: Optional[float] = None) -> Tuple[Path, Dict[str, Any]]:
    """:func:`generate`, and the data it wrote to ``data.json``: ``dashboard --json`` prints that,
    never reading back a file a tick may have rewritten meanwhile (or a hostile one in its place)."""
    as_of = time.time()  # before anything is read: a change after this is newer than the page
    now = as_of if now is None else now
    subs = homes.load_subscribers(hp)
    data = redact_doc(collect(hp, settings, now))  # masked: the page and data.json never hold a key
    every = fresh.interval(settings)
    data.update(tick_interval_seconds=every[0], tick_interval_source=every[1],
                stale_after_seconds=fresh.stale_after(every[0]))
    stage_needs: Dict[str, Dict[str, List[Dict[str, Any]]]] = {}
    for repo in data["repos"]:
        for item in repo.get("needs_you") or []:
            if item.get("stage_id"):
                stage_needs.setdefault(str(repo.get("repo_path")), {}).setdefault(item["stage_id"], []).append(item)
    try:
        files.ensure_dir(hp.dashboard, mode=0o700)
        pages = _stage_pages(hp, page_seconds, stage_needs)
        for repo in data["repos"]:
            repo["stage_pages"] = pages.get(str(repo.get("repo_path")), {})
        written = {k: v for k, v in data.items() if k != "data_as_of"}  # the page alone is restamped by each tick
        files.atomic_write(hp.dashboard_data, files.dump_json(written), mode=0o600)
        files.atomic_write(hp.dashboard_page, render_html(data), mode=0o600)  # its age judged by the clock
        fresh.record(hp, subs, as_of, every, _expires(data, now))
    except UserError as exc:
        raise NotWritten(str(exc), {k: v for k, v in data.items() if k != "data_as_of"}) from None
    return hp.dashboard_page, written


class NotWritten(UserError):
    """A file of the dashboard could not be written; ``data`` is what was collected (``--json`` still prints it)."""

    def __init__(self, message: str, data: Dict[str, Any]) -> None:
        super().__init__(message)
        self.data = data


def _expires(data: Dict[str, Any], now: float) -> Optional[float]:
    """The earliest park reset the page shows (a repo's, a stage's, a billing route's): the page is out of
    date from then."""
    from ..timeutil import parse_iso

    resets = [parse_iso(str(r.get("parked_until") or "")) for r in data["repos"]]
    resets += [parse_iso(str(item.get("until") or "")) for item in data.get("needs_you") or []]
    later = [t for t in resets if t is not None and t > now]
    return min(later) if later else None


def _stage_pages(hp: HomePaths, seconds: Optional[float],
                 stage_needs: Optional[Dict[str, Dict[str, List[Dict[str, Any]]]]] = None) -> Dict[str, Dict[str, str]]:
    """Write the page of every stage whose record, files or needs changed; repo path -> stage id -> link.
    One repo's trouble spares the others."""
    from . import stagepage

    run = stagepage.Pages(hp, seconds)
    out: Dict[str, Dict[str, str]] = {}
    for sub in homes.load_subscribers(hp):
        if sub.error or sub.repo_path is None:
            continue
        try:
            out[str(sub.repo_path)] = stagepage.write_pages(run, sub, read_state(sub.paths), _cards(sub),
                                                           (stage_needs or {}).get(str(sub.repo_path)))
        except Exception:  # noqa: BLE001 - a stage page must never cost the dashboard
            continue
    return out


def _stage_cell(repo: Dict[str, Any], stage_id: Any) -> str:
    """A stage id in a table row, linked to its page when it has one."""
    link = (repo.get("stage_pages") or {}).get(stage_id) if isinstance(stage_id, str) else None
    code = f"<code>{_e(stage_id)}</code>"
    return f'<a href="{_e(link)}">{code}</a>' if link else code


def stale(hp: HomePaths, now: Optional[float] = None) -> bool:
    """Has anything the page shows changed since its data was read? (:func:`.fresh.why_stale`)"""
    now = time.time() if now is None else now
    return fresh.why_stale(hp, homes.load_subscribers(hp), now) is not None


def refresh(hp: HomePaths, log: Optional[Callable[[str], None]] = None) -> Optional[Path]:
    """The tick's call: regenerate the page if it is stale, else restamp it. Never raises."""
    from . import settings as observe_settings

    try:
        if not hp.root.is_dir():
            return None
        now = time.time()
        if not stale(hp, now) and fresh.restamp(hp, now):
            return None
        from .stagepage import TICK_SECONDS

        return generate(hp, observe_settings.from_home(hp), page_seconds=TICK_SECONDS)
    except Exception as exc:  # the dashboard must never break a tick
        if log is not None:
            log(f"dashboard not refreshed: {type(exc).__name__}: {exc}")
        return None


__all__ = ["collect", "render_html", "generate", "refresh", "stale", "bar_chart", "needs_html", "BLOCKED"]

"""The dashboard's page per stage: ``autometta show``'s review as self-contained HTML.

``<home>/dashboard/stages/<repo>-<hash>/<id>.html``, linked from every table
row of the dashboard that names the stage. Same rules as the dashboard: the
review (:func:`autometta.observe.review.build`, masked) is rendered here and
embedded as JSON (``#autometta-stage``); no script builds it, no network.

A page starts with what needs you about its stage (:mod:`.needs`: the stage
stopped, or its agent is stuck or over budget), with the command that
addresses it.

Cheap by construction: a page is rebuilt only when something it shows
changed (the stage's state.yaml record, the size or time of its logs,
exit records, envelope, verdict or card, or what needs you about it). Each stage's key is kept in
``index.json`` beside its pages, so regenerating the dashboard after a
transition rebuilds (and runs git for) only the stages that moved, and an
idle tick, which does not regenerate the dashboard at all, runs nothing.
The tick gives the pages a time budget (:data:`TICK_SECONDS`): a home with
a long history that has no pages yet gets them over several ticks, stages in
flight and the latest first; a stage without a page yet is not linked.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from .. import files
from ..paths import HomePaths, RepoPaths
from ..stagerecord import StageRecord, records
from . import review

FOLDER = "stages"
#: Seconds a tick's dashboard refresh spends building stage pages, at most (one page: ~10 ms).
TICK_SECONDS = 2.0
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_STAGE_ID = re.compile(r"^[0-9]{2}[a-z]*-[a-z0-9-]+$")


def repo_slug(repo_path: str) -> str:
    """A folder name per repo: its base name and a hash of its path (two repos may share a name)."""
    name = _SAFE.sub("-", os.path.basename(str(repo_path).rstrip("/")) or "repo")[:60]
    return f"{name}-{hashlib.sha1(str(repo_path).encode('utf-8', 'surrogateescape')).hexdigest()[:8]}"


def href(repo_path: Optional[str], stage_id: Any) -> Optional[str]:
    """The stage page's address relative to ``index.html``; None for a stage that gets no page."""
    if not repo_path or not isinstance(stage_id, str) or not _STAGE_ID.match(stage_id) or len(stage_id) > 100:
        return None
    return f"{FOLDER}/{repo_slug(repo_path)}/{stage_id}.html"


def _stat(path: Path) -> List[int]:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return [0, 0]
    return [st.st_size, st.st_mtime_ns]


def stage_key(paths: RepoPaths, stage: Dict[str, Any], card_path: Optional[Path],
              needs: Optional[List[Dict[str, Any]]] = None) -> str:
    """What the page depends on, as a digest: the record, the stat of every file it reads, and what
    needs you about the stage (its kind and marker: an agent turning stuck changes no file)."""
    stage_id = str(StageRecord(stage).id)
    watched = [paths.verifier_artefact(stage_id), paths.handoff(stage_id)]
    for role in ("setup", "worker", "acceptance", "verifier", "postmerge"):
        watched += [paths.log(stage_id, role), paths.exit_record(stage_id, role)]
    if card_path is not None:
        watched.append(card_path)
    doc: Dict[str, Any] = {"stage": stage, "files": [_stat(p) for p in watched]}
    if needs:
        doc["needs"] = [[n.get("kind"), n.get("marker"), n.get("pid"), n.get("command")] for n in needs]
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


class Pages:
    """One dashboard generation's pass over the stage pages: the journal read once, a time budget."""

    def __init__(self, hp: HomePaths, seconds: Optional[float] = None) -> None:
        self.hp = hp
        self.deadline = None if seconds is None else time.monotonic() + seconds
        self.left_out = 0  # pages due but not built: the budget ran out (a later generation builds them)
        self._journal: Optional[List[Dict[str, Any]]] = None

    def journal(self) -> List[Dict[str, Any]]:
        if self._journal is None:
            from . import events

            self._journal = events.journal(self.hp)
        return self._journal

    def over(self) -> bool:
        return self.deadline is not None and time.monotonic() > self.deadline


def _ordered(stages: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Stages in flight first, then the most recently claimed: the pages a reader wants first."""
    latest = sorted(stages, key=lambda s: str(s.get("started_at") or ""), reverse=True)
    return sorted(latest, key=lambda s: s.get("status") != "in_progress")


def write_pages(run: Pages, sub: Any, state_doc: Optional[Dict[str, Any]],
                card_paths: Dict[str, Path], needs: Optional[Dict[str, List[Dict[str, Any]]]] = None) -> Dict[str, str]:
    """Write the pages of one repo's stages that changed since they were written (within the
    budget); returns stage id -> link for every stage whose page exists. ``needs``: stage id ->
    what needs you about it (:func:`autometta.observe.needs.needs_you`, as dicts)."""
    needs = needs or {}
    hp = run.hp
    if sub.repo_path is None or not isinstance(state_doc, dict):
        return {}
    paths = sub.paths
    folder = hp.dashboard / FOLDER / repo_slug(str(sub.repo_path))
    index_path = folder / "index.json"
    try:
        known = files.read_json(index_path) if index_path.exists() else {}
    except Exception:  # noqa: BLE001 - a bad index only costs a rebuild
        known = {}
    known = known if isinstance(known, dict) else {}
    fresh: Dict[str, str] = {}
    links: Dict[str, str] = {}
    manifest: Optional[Dict[str, Any]] = None
    stages = [rec.doc for rec in records(state_doc)]
    for stage in _ordered(stages):
        stage_id = StageRecord(stage).id
        link = href(str(sub.repo_path), stage_id)
        if link is None:
            continue
        key = stage_key(paths, stage, card_paths.get(str(stage_id)), needs.get(str(stage_id)))
        page = hp.dashboard / link
        if known.get(stage_id) == key and page.exists():
            fresh[str(stage_id)], links[str(stage_id)] = key, link
            continue
        if run.over():
            run.left_out += 1
            if page.exists():  # an older page, still better than none; rebuilt next time
                links[str(stage_id)] = link
            continue
        if manifest is None:
            manifest = _manifest(sub)
        doc = review.build(paths, str(stage_id), hp=hp, name=sub.name, manifest=manifest, journal=run.journal())
        doc["needs_you"] = needs.get(str(stage_id)) or []
        files.ensure_dir(folder, mode=0o700)
        files.atomic_write(page, render_html(doc), mode=0o600)
        fresh[str(stage_id)], links[str(stage_id)] = key, link
    if fresh != known:
        files.ensure_dir(folder, mode=0o700)
        files.write_json(index_path, fresh, mode=0o600)
    return links


def _manifest(sub: Any) -> Dict[str, Any]:
    from .. import manifest as manifests
    from ..errors import UserError

    try:
        return manifests.load_manifest(sub.paths, sub.manifest_path)
    except UserError:
        return {}


# --------------------------------------------------------------------------- rendering

_PAGE_CSS = """
.diff .add{color:var(--ok)}.diff .del{color:var(--bad)}.diff .hunk{color:var(--run)}
ol.steps{margin:4px 0;padding-left:28px}ol.steps li{margin:2px 0}.fail{color:var(--bad)}
.ok{color:var(--ok)}.none{color:var(--muted)}nav a{color:inherit}
"""


def _diff_html(diff: str) -> str:
    from .pagehtml import e as _e

    out = []
    for line in diff.splitlines():
        cls = ("hunk" if line.startswith("@@") else "add" if line.startswith("+") and not line.startswith("+++")
               else "del" if line.startswith("-") and not line.startswith("---") else "")
        out.append(f'<span class="{cls}">{_e(line)}</span>' if cls else _e(line))
    return '<pre class="diff">' + "\n".join(out) + "</pre>"


def _step_html(step: Dict[str, Any]) -> str:
    from .pagehtml import e as _e

    text = review._step_line(step)
    cls = "fail" if step.get("ok") is False or step.get("kind") == "error" else (
        "ok" if step.get("ok") else "none")
    return f'<li class="{cls}"><code>{_e(text)}</code></li>'


def _agent_html(agent: Dict[str, Any], envelope: Dict[str, Any]) -> str:
    from .pagehtml import e as _e
    from .pagehtml import shown

    out = [f'<section class="card" id="{_e(agent.get("role"))}"><div class="row"><h2>{_e(agent.get("role"))}</h2>'
           f'<span>{_e(agent.get("family") or "?")}, {_e(agent.get("identity") or "?")}</span>'
           f'<span class="muted">{_e(review.run_line(agent))}</span></div>'
           f'<p class="muted">{_e(review.usage_line(agent))}</p>']
    steps = review.listed_steps(agent)
    if steps:
        offset = int(agent.get("steps_total") or len(agent.get("steps") or [])) - len(agent.get("steps") or [])
        out.append(f'<ol class="steps" start="{offset + 1}">')
        for item in review.steps_shown(steps):
            out.append(f'<li class="none">... {item} more ...</li>' if isinstance(item, int) else _step_html(item))
        out.append("</ol>")
    else:
        out.append('<p class="muted">No tool calls logged.</p>')
    out.append(shown("<h3>Final message</h3><pre>{}</pre>", agent.get("final_message")))
    if agent.get("role") == "worker" and envelope.get("status"):
        out.append(f'<p>Envelope: <b>{_e(envelope["status"])}</b> {_e(envelope.get("notes") or "")}</p>')
    out.append(shown('<p class="muted">{}</p>', agent.get("missing")))
    out.append(shown('<p class="muted">log <code>{}</code></p>', agent.get("log")))
    out.append("</section>")
    return "".join(out)


def render_html(doc: Dict[str, Any]) -> str:
    """The review as one self-contained page (same CSS and Content-Security-Policy as the dashboard)."""
    from .pagehtml import CSP as _CSP
    from .pagehtml import CSS as _CSS
    from .pagehtml import badge as _badge
    from .pagehtml import e as _e
    from .pagehtml import needs_html, shown, table

    card, verdict, change = doc.get("card") or {}, doc.get("verdict") or {}, doc.get("change") or {}
    embedded = json.dumps(doc, ensure_ascii=True, sort_keys=True).replace("<", "\\u003c").replace(">", "\\u003e")
    body: List[str] = []
    head = (f'<section class="card"><div class="row"><h2><code>{_e(doc["stage_id"])}</code></h2>'
            f'{_badge(doc.get("status"))}'
            + (f'<span class="fail">{_e(doc["stall_marker"])}</span>' if doc.get("stall_marker") else "")
            + f'<span class="muted">{_e(doc.get("name"))}: <code>{_e(doc.get("repo"))}</code></span></div>'
            f'<p><b>{_e(card.get("title") or "(no title)")}</b></p>'
            f'<div class="row"><span>worker {_e(doc.get("worker"))}</span><span>verifier {_e(doc.get("verifier"))}</span>'
            + (f'<span class="muted">card <code>{_e(card["path"])}</code></span>' if card.get("path") else "")
            + (f'<span class="muted">branch <code>{_e(doc["branch"])}</code> onto <code>{_e(doc.get("base"))}</code>'
               + (f' in <code>{_e(doc["worktree"])}</code>' if doc.get("worktree") else "") + "</span>"
               if doc.get("branch") else "")
            + "</div>" + needs_html(doc.get("needs_you") or []) + "</section>")
    body.append(head)
    crit = ['<section class="card" id="criteria"><div class="row"><h2>Criteria</h2>']
    if verdict.get("overall"):
        tone = "completed" if verdict["overall"] == "PASS" else "failed"
        crit.append(f'<span class="badge s-{tone}">verdict {_e(verdict["overall"])}</span>')
    if verdict.get("verifier_identity"):
        crit.append(f'<span class="muted">by {_e(verdict["verifier_identity"])}</span>')
    crit.append("</div>")
    crit.append(shown("<p>Headline: {}</p>", verdict.get("headline")))
    crit.append(shown('<p class="fail">{}</p>', verdict.get("problem")))
    rows = []
    for row in verdict.get("criteria") or []:
        mark = row.get("verdict") or "-"
        cls = "ok" if mark == "PASS" else "fail" if mark == "FAIL" else "none"
        rows.append(f'<tr><td>{_e(row.get("id"))}</td><td>{_e(row.get("criterion") or row.get("name"))}</td>'
                    f'<td class="{cls}"><b>{_e(mark)}</b></td><td>{_e(row.get("evidence"))}</td></tr>')
    crit.append(table("<th>#</th><th>Criterion</th><th>Verdict</th><th>Evidence</th>", rows,
                      f'No criteria ({_e(card.get("missing") or "the card lists none")}).'))
    crit.append(shown('<p class="muted">Verdict missing: {}</p>', verdict.get("missing")))
    crit.append(shown("<h3>Findings</h3><p>{}</p>", verdict.get("findings")))
    crit.append("</section>")
    body.append("".join(crit))
    commands = doc.get("commands") or []
    for run in commands:
        body.append(f'<section class="card" id="{_e(run.get("role"))}"><div class="row"><h2>{_e(run.get("role"))}</h2>'
                    f'<code>{_e(run.get("command") or "(command not known)")}</code>'
                    f'<span class="muted">{_e(review.run_line(run))}</span></div>'
                    + (f'<pre>{_e(chr(10).join(run.get("tail") or []))}</pre>' if run.get("tail") else "")
                    + (f'<p class="muted">{_e(run["missing"])}</p>' if run.get("missing") else "") + "</section>")
    if not any(r.get("role") == "acceptance" for r in commands):
        body.append('<section class="card" id="acceptance"><h2>acceptance</h2><p class="muted">'
                    + ("The card has no acceptance command." if card.get("path") else "No card.") + "</p></section>")
    ch = [f'<section class="card" id="change"><div class="row"><h2>Change</h2><span>{_e(review._change_head(change))}</span></div>']
    if change.get("note") and change.get("kind") != "commit":
        ch.append(f'<p class="muted">{_e(change["note"])}</p>')
    ch.append(shown('<p class="muted">Missing: {}</p>', change.get("missing")))
    if change.get("diffstat"):
        ch.append(f'<pre>{_e(change["diffstat"])}</pre>')
    elif "diffstat" in change:
        ch.append('<p class="muted">No changes.</p>')
    if change.get("diff"):
        ch.append('<p><a href="#diff">the diff</a> is at the end</p>')
    ch.append("</section>")
    body.append("".join(ch))
    for agent in doc.get("agents") or []:
        body.append(_agent_html(agent, doc.get("envelope") or {}))
    tl = ['<section class="card" id="timeline"><h2>Timeline</h2>']
    if doc.get("timeline"):
        tl.append('<table><thead><tr><th>At</th><th>Event</th><th class="num">After</th><th>Detail</th></tr></thead><tbody>')
        for event in doc["timeline"]:
            after = event.get("after_seconds")
            tl.append(f'<tr><td><code>{_e(event.get("at"))}</code></td><td>{_e(event.get("event"))}</td>'
                      f'<td class="num">{_e("+" + review._duration(after) if after is not None else "")}</td>'
                      f'<td>{_e(event.get("detail"))}</td></tr>')
        tl.append("</tbody></table>")
        span = review.claim_to_land(doc)
        if span is not None:
            tl.append(f'<p class="muted">Claimed to landed: {_e(review._duration(span))}</p>')
    else:
        tl.append('<p class="muted">Nothing yet.</p>')
    tl.append("</section>")
    body.append("".join(tl))
    if doc.get("problems"):
        body.append('<section class="card" id="missing"><h2>Missing</h2><ul>'
                    + "".join(f"<li>{_e(p)}</li>" for p in doc["problems"]) + "</ul></section>")
    if change.get("diff"):
        body.append('<section class="card" id="diff"><h2>Diff</h2>' + _diff_html(change["diff"])
                    + (f'<p class="muted">Cut at {review.DIFF_LIMIT} characters; see it in git.</p>'
                       if change.get("truncated") else "") + "</section>")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>{_e(doc['stage_id'])} - autometta</title>"
        f"<style>{_CSS}{_PAGE_CSS}</style></head><body>"
        f'<header><nav class="muted"><a href="../../index.html">autometta dashboard</a> / {_e(doc.get("name"))}</nav>'
        f'<h1>{_e(doc["stage_id"])}</h1><div class="muted">made {_e(doc.get("generated_at"))}</div></header>'
        f"<main>{''.join(body)}</main>"
        f'<script type="application/json" id="autometta-stage">{embedded}</script></body></html>\n'
    )

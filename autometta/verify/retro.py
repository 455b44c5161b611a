"""Retro-grade: judge completed stages again with today's rubric, in one Message Batches request.

For the last N completed stages of a repo (fewer is fine), autometta rebuilds
the verifier request an API verifier would send today (:mod:`.request`: the
current template and schema as the cached static block) with, as the stage
block, the card, what the stage's commit changed (``git show <commit>``,
``state/`` excluded) and the card's inputs as they are now. The requests go
to the Anthropic Message Batches API in one batch::

    POST <base>/v1/messages/batches            {"requests": [{"custom_id": "<stage id>", "params": {...}}]}
    GET  <base>/v1/messages/batches/<id>       until processing_status is "ended"
    GET  <results_url>                         JSON Lines, one result per stage

Polling backs off from :data:`POLL_FIRST` to :data:`POLL_MAX` seconds and
gives up after ``--timeout-seconds`` (``AUTOMETTA_RETRO_GRADE_TIMEOUT_SECONDS``,
default 25 hours, a batch's limit), naming the batch so ``--batch-id``
can collect it later. Nothing is retried.

The outcome is a Markdown report, ``<home>/reports/<repo>-<hash>/retro-grade-<UTC
date>.md`` (:func:`report_dir`, from ``templates/retro-grade-report.md``): each
stage's original and new verdict, the disagreements, and the batch's token
totals and cost (batch rate). It is advisory: state, verdicts and
``budget.json`` are not touched, and nothing is written into the work tree
(a file there would make the next tick halt the repo for a dirty tree). The
JSONL payload is kept beside the report, and a dry run writes only that.
"""

from __future__ import annotations

import json
import os
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional

from .. import files, render, resources
from ..books import state
from ..errors import UserError
from ..families import claude_api
from ..families.api import ApiError, VerifierRequest, http, http_json
from ..families.usage import Usage
from ..paths import HomePaths
from ..timeutil import now_iso
from .request import (StageInfo, add_usage, commit_diff, cost_usd, finish_answer, input_files, stage_block,
                      static_block)

DEFAULT_MODEL = "claude-sonnet-4-6"
DEFAULT_LAST = 20
MAX_TOKENS = 8192
TIMEOUT_ENV = "AUTOMETTA_RETRO_GRADE_TIMEOUT_SECONDS"
DEFAULT_TIMEOUT_SECONDS = 25 * 3600
POLL_FIRST = 15.0
POLL_MAX = 300.0
HTTP_TIMEOUT = 120.0

#: The poll loop's clock and wait; tests replace them.
sleep: Callable[[float], None] = time.sleep
monotonic: Callable[[], float] = time.monotonic


@dataclass
class Target:
    """One completed stage to grade again."""

    stage_id: str
    completed_at: Optional[str]
    commit: Optional[str]
    worker: str
    original: str  # PASS | FAIL
    original_from: str
    card_path: Optional[Path] = None
    card_inputs: List[str] = field(default_factory=list)
    note: str = ""


@dataclass
class Row:
    target: Target
    retro: str = "-"  # PASS | FAIL | invalid | errored | canceled | expired | missing
    detail: str = ""
    usage: Optional[Usage] = None

    @property
    def agrees(self) -> Optional[bool]:
        return self.retro == self.target.original if self.retro in ("PASS", "FAIL") else None


class BatchTimeout(UserError):
    pass


def timeout_seconds(environ: Mapping[str, str]) -> int:
    value = environ.get(TIMEOUT_ENV)
    if value in (None, ""):
        return DEFAULT_TIMEOUT_SECONDS
    try:
        seconds = int(str(value))
    except ValueError:
        raise UserError(f"{TIMEOUT_ENV}={value!r} is not a whole number of seconds; fix or unset it") from None
    if seconds <= 0:
        raise UserError(f"{TIMEOUT_ENV}={value!r} must be more than zero seconds")
    return seconds


# ------------------------------------------------------------------ what to grade

def select_targets(ctx: Any, doc: Mapping[str, Any], last: int) -> List[Target]:
    """The last ``last`` completed stages (by ``completed_at``, then queue order), oldest first."""
    from ..tick.facts import load_card

    if last <= 0:
        raise UserError("--last must be a positive number of stages")
    completed = [(i, s) for i, s in enumerate(doc.get("stages") or [])
                 if isinstance(s, dict) and s.get("status") == "completed" and isinstance(s.get("id"), str)]
    completed.sort(key=lambda item: (str(item[1].get("completed_at") or ""), item[0]))
    targets = []
    for _, s in completed[-last:]:
        stage_id = s["id"]
        original, source = "PASS", "status completed"
        artefact = ctx.paths.verifier_artefact(stage_id)
        if artefact.is_file():
            try:
                verdict = files.read_json(artefact)
            except UserError:
                verdict = None
            if isinstance(verdict, dict) and verdict.get("overall") in ("PASS", "FAIL"):
                original, source = verdict["overall"], f"state/verifiers/{stage_id}.json"
        target = Target(stage_id=stage_id, completed_at=s.get("completed_at"), commit=s.get("commit") or None,
                        worker=str(s.get("worker") or ""), original=original, original_from=source)
        try:
            card = load_card(ctx, stage_id)
        except UserError as exc:
            card, target.note = None, exc.message
        if card is None:
            target.note = target.note or "stage card not found"
        else:
            target.card_path, target.card_inputs = Path(card.path), list(card.inputs)
        targets.append(target)
    return targets


def _identity(model: str) -> str:
    return f"autometta retro-grade ({model}) <retro-grade@local>"


def _invocation(model: str) -> str:
    return f"autometta retro-grade (Anthropic Message Batches API, model {model})"


def _info(ctx: Any, t: Target, model: str) -> StageInfo:
    assert t.card_path is not None
    return StageInfo(stage_id=t.stage_id, repo=ctx.repo, card_path=t.card_path, verifier_identity=_identity(model),
                     verifier_invocation=_invocation(model), worker_identity=t.worker)


def build_requests(ctx: Any, targets: List[Target], model: str) -> List[Dict[str, Any]]:
    """One batch request per target with a card; custom_id is the stage id."""
    static = static_block(ctx.repo)
    out = []
    for t in targets:
        if t.card_path is None:
            continue
        if t.commit:
            diff = commit_diff(ctx.repo, t.commit)
            title = f"What the stage's commit {t.commit[:12]} changed (state/ excluded)"
            if diff is None:
                diff = f"(commit {t.commit} is not in this repository any more; judge from the card and inputs)\n"
        else:
            title, diff = "What the stage changed", "(no commit was recorded for this stage)\n"
        text = stage_block(_info(ctx, t, model), files.read_text(t.card_path), title, diff,
                           input_files(ctx.repo, t.card_inputs))
        text += (f"\n## Retro-grade\n\nThis stage was completed earlier; its verdict then was {t.original}. "
                 "Judge it again on the evidence above with today's rubric; your reply is the verdict.\n")
        request = VerifierRequest(static, text)
        out.append({"custom_id": t.stage_id,
                    "params": {"model": model, "max_tokens": MAX_TOKENS,
                               "messages": [{"role": "user", "content": claude_api.content(request)}]}})
    return out


def write_payload(path: Path, requests: List[Dict[str, Any]]) -> None:
    files.ensure_dir(path.parent, mode=0o700)
    text = "".join(json.dumps(r, separators=(",", ":"), ensure_ascii=False) + "\n" for r in requests)
    files.atomic_write(path, text, mode=0o600)


# ------------------------------------------------------------------ the batch

def batches_url(base: str) -> str:
    return f"{base.rstrip('/')}/v1/messages/batches"


def submit(base: str, key: str, requests: List[Dict[str, Any]]) -> Dict[str, Any]:
    batch = http_json(claude_api.LABEL, "POST", batches_url(base), claude_api.headers(key),
                      {"requests": requests}, HTTP_TIMEOUT)
    if not isinstance(batch.get("id"), str) or not batch["id"]:
        raise ApiError(claude_api.LABEL, 200, "the batch was created but its answer names no id")
    return batch


def poll(base: str, key: str, batch_id: str, limit_seconds: float) -> Dict[str, Any]:
    """GET the batch until it has ended; waits POLL_FIRST, doubling to POLL_MAX, up to ``limit_seconds``."""
    url = f"{batches_url(base)}/{urllib.parse.quote(batch_id, safe='')}"
    start, delay = monotonic(), POLL_FIRST
    while True:
        batch = http_json(claude_api.LABEL, "GET", url, claude_api.headers(key), None, HTTP_TIMEOUT)
        if batch.get("processing_status") == "ended":
            return batch
        left = limit_seconds - (monotonic() - start)
        if left <= 0:
            raise BatchTimeout(f"batch {batch_id} has not ended after {int(limit_seconds)}s "
                               f"(status {batch.get('processing_status')}); collect it later with "
                               f"'autometta retro-grade --batch-id {batch_id}'")
        sleep(min(delay, left))
        delay = min(delay * 2, POLL_MAX)


def _same_origin(a: str, b: str) -> bool:
    pa, pb = urllib.parse.urlsplit(a), urllib.parse.urlsplit(b)
    return (pa.scheme, pa.hostname, pa.port) == (pb.scheme, pb.hostname, pb.port)


def fetch_results(base: str, key: str, batch: Mapping[str, Any]) -> Dict[str, Dict[str, Any]]:
    """The batch's results by custom_id. The key is only sent to the API's own host."""
    url = batch.get("results_url")
    if not isinstance(url, str) or not url:
        raise ApiError(claude_api.LABEL, 200, f"batch {batch.get('id')} ended without a results_url")
    if not _same_origin(url, base):
        raise UserError(f"batch {batch.get('id')}: results_url {url} is not on {base}; not sending the key there")
    raw = http(claude_api.LABEL, "GET", url, claude_api.headers(key), None, HTTP_TIMEOUT)
    out: Dict[str, Dict[str, Any]] = {}
    for line in raw.decode("utf-8", "replace").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict) and isinstance(item.get("custom_id"), str):
            out[item["custom_id"]] = item.get("result") if isinstance(item.get("result"), dict) else {}
    return out


def grade(ctx: Any, targets: List[Target], results: Mapping[str, Dict[str, Any]], model: str) -> List[Row]:
    rows = []
    for t in targets:
        row = Row(t)
        rows.append(row)
        if t.card_path is None:
            row.retro, row.detail = "skipped", t.note
            continue
        result = results.get(t.stage_id)
        if result is None:
            row.retro, row.detail = "missing", "no result in the batch"
            continue
        kind = result.get("type")
        if kind != "succeeded":
            err = result.get("error") if isinstance(result.get("error"), dict) else {}
            inner = err.get("error") if isinstance(err.get("error"), dict) else err
            row.retro = str(kind or "unknown")
            row.detail = f"{inner.get('type') or ''} {inner.get('message') or ''}".strip()
            continue
        message = result.get("message") if isinstance(result.get("message"), dict) else {}
        row.usage = claude_api.usage_of(message.get("usage"))
        doc, errors = finish_answer(claude_api.message_text(message), _info(ctx, t, model))
        if doc is None or errors:
            row.retro, row.detail = "invalid", errors[0] if errors else "no verdict"
        else:
            row.retro = doc["overall"]
            failed = [c.get("name") for c in doc.get("criteria") or [] if c.get("verdict") == "FAIL"]
            row.detail = ("failed: " + "; ".join(str(n) for n in failed)) if failed else ""
    return rows


# ------------------------------------------------------------------ the report

def _cell(text: Any) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def report_dir(home: HomePaths, repo: Path) -> Path:
    """``<home>/reports/<repo name>-<hash of its path>``: the controller's, outside every work tree."""
    import hashlib

    digest = hashlib.sha256(str(repo).encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return home.reports / f"{repo.name}-{digest}"


def payload_path(home: HomePaths, repo: Path, now: float) -> Path:
    return report_dir(home, repo) / f"retro-grade-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(now))}.jsonl"


def report_path(home: HomePaths, repo: Path, now: float) -> Path:
    folder = report_dir(home, repo)
    day = time.strftime("%Y-%m-%d", time.gmtime(now))
    path = folder / f"retro-grade-{day}.md"
    if path.exists():
        path = folder / f"retro-grade-{day}-{time.strftime('%H%M%S', time.gmtime(now))}.md"
    return path


def totals(rows: List[Row]) -> Usage:
    total = Usage()
    for row in rows:
        total = add_usage(total, row.usage)
    return total


def render_report(repo: Path, rows: List[Row], *, batch_id: str, model: str, now: float) -> str:
    total = totals(rows)
    cost = cost_usd(model, total, batch=True)
    drift = [r for r in rows if r.agrees is False]
    agree = [r for r in rows if r.agrees is True]
    table = ["| Stage | Completed | Original | Retro | Agrees | Card | Notes |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        t = r.target
        card = os.path.relpath(t.card_path, repo) if t.card_path else "-"
        mark = "yes" if r.agrees else "**no**" if r.agrees is False else "-"
        table.append(f"| `{t.stage_id}` | {t.completed_at or '-'} | {t.original} | {r.retro} | {mark} | "
                     f"`{_cell(card)}` | {_cell(r.detail) or ''} |")
    if drift:
        drift_lines = ["| Stage | Original | Retro | Why (retro) |", "|---|---|---|---|"]
        drift_lines += [f"| `{r.target.stage_id}` | {r.target.original} | {r.retro} | {_cell(r.detail)} |"
                        for r in drift]
        drift_table = "\n".join(drift_lines)
    else:
        drift_table = "No disagreements."
    skipped = [r for r in rows if r.retro == "skipped"]
    skipped_text = ("\n## Not graded\n\n" + "".join(f"- `{r.target.stage_id}`: {r.detail}\n" for r in skipped)
                    if skipped else "")
    date = time.strftime("%Y-%m-%d", time.gmtime(now))
    values = {
        "title": json.dumps(f"Retro-grade {date}"), "date": json.dumps(date), "date-text": date,
        "repo": json.dumps(str(repo)), "repo-text": str(repo), "batch-id": json.dumps(batch_id),
        "batch-id-text": batch_id, "model": json.dumps(model), "model-text": model, "generated-at": now_iso(now),
        "stage-count": str(len(rows)), "drift-count": str(len(drift)), "agree-count": str(len(agree)),
        "other-count": str(len(rows) - len(drift) - len(agree)),
        "input-tokens": str(total.input_tokens), "output-tokens": str(total.output_tokens),
        "cache-read-tokens": str(total.cache_read_tokens), "cache-write-tokens": str(total.cache_write_tokens),
        "total-tokens": str(total.total_tokens), "cost-usd": "null" if cost is None else f"{cost:.6f}",
        "cost-text": "unknown (no price for this model)" if cost is None else f"${cost:.4f}",
        "stage-table": "\n".join(table), "drift-table": drift_table, "skipped": skipped_text,
    }
    return render.render(resources.read_text("templates/retro-grade-report.md"), values,
                         source="templates/retro-grade-report.md")


def write_report(home: HomePaths, repo: Path, text: str, now: float) -> Path:
    path = report_path(home, repo, now)
    files.ensure_dir(path.parent, mode=0o700)
    files.atomic_write(path, text, mode=0o600)
    return path


def load_state_doc(ctx: Any) -> Dict[str, Any]:
    return state.load_state(ctx.paths)

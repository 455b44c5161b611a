"""Judge a repo's last completed stages again with today's rubric, in one Anthropic batch.

Rebuilds the verifier request for each of the last N completed stages (fewer
is fine), sends them as one Message Batches request, waits for the batch
(backing off up to --timeout-seconds) and writes an advisory report with
every stage's original and new verdict and the batch's tokens and cost. It goes under the
controller home, <home>/reports/<repo>-<hash>/retro-grade-<UTC date>.md (its
path is printed), never into the work tree; nothing in state/ changes and the
tokens are not counted in budget.json. --dry-run writes the JSONL payload
beside it (retro-grade-<time>.jsonl) and sends nothing. --batch-id collects
a batch submitted earlier.

The key comes from the claude billing route (auth.claude.mode: api); the
base URL is ANTHROPIC_BASE_URL, else verifier.claude.base_url in config.yaml.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from .. import families, home
from ..errors import UserError
from ..families import claude_api
from ..families.api import ApiError
from ..verify import retro
from ..verify.request import config_base_url
from .common import repo_context, resolve_repo


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--last", type=int, default=retro.DEFAULT_LAST, metavar="N",
                        help=f"how many of the latest completed stages to grade (default {retro.DEFAULT_LAST})")
    parser.add_argument("--dry-run", action="store_true", help="write the batch payload and send nothing")
    parser.add_argument("--repo", metavar="REPO", default=".", help="the repo (default: .)")
    parser.add_argument("--model", metavar="M", default=retro.DEFAULT_MODEL,
                        help=f"the model that judges (default {retro.DEFAULT_MODEL})")
    parser.add_argument("--batch-id", metavar="ID", help="collect this batch instead of submitting a new one")
    parser.add_argument("--timeout-seconds", type=int, metavar="S",
                        help=f"give up waiting after S seconds (default ${retro.TIMEOUT_ENV} or 25 hours)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def _key(ctx) -> str:
    from ..agents.provision import agent_env

    try:
        return claude_api.api_key(agent_env(ctx, families.get("claude"), "verifier"))
    except UserError as exc:
        raise UserError(f"retro-grade calls the Anthropic API: {exc.message}") from None


def run(args: argparse.Namespace) -> int:
    repo = resolve_repo(args.repo)
    ctx = repo_context(repo)
    home.require_home(ctx.home)  # the report is kept there
    doc = retro.load_state_doc(ctx)
    targets = retro.select_targets(ctx, doc, args.last)
    if not targets:
        print(f"retro-grade: nothing to grade: no completed stage in {ctx.paths.state_yaml}", file=sys.stderr)
        return 0
    now = time.time()
    stages = [{"stage_id": t.stage_id, "completed_at": t.completed_at, "original": t.original,
               "original_from": t.original_from, "card": str(t.card_path) if t.card_path else None,
               "note": t.note} for t in targets]
    requests = [] if args.batch_id else retro.build_requests(ctx, targets, args.model)
    payload = None
    if requests:
        payload = retro.payload_path(ctx.home, repo, now)
        retro.write_payload(payload, requests)
    if args.dry_run:
        if args.json:
            print(json.dumps({"dry_run": True, "payload": str(payload) if payload else None,
                              "requests": len(requests), "model": args.model, "stages": stages}, indent=2))
        else:
            for s in stages:
                print(f"{s['stage_id']:<28} {s['original']:<5} {s['note'] or ''}")
            print(f"dry run: {len(requests)} request(s) written to {payload}; nothing sent")
        return 0
    if not args.batch_id and not requests:
        raise UserError(f"{repo}: none of the {len(targets)} completed stage(s) has a stage card to grade against")
    key = _key(ctx)
    base = claude_api.base_url(os.environ, config_base_url(ctx.config, "claude"))
    limit = args.timeout_seconds if args.timeout_seconds else retro.timeout_seconds(os.environ)
    try:
        if args.batch_id:
            batch_id = args.batch_id
        else:
            batch_id = retro.submit(base, key, requests)["id"]
            print(f"retro-grade: submitted batch {batch_id} ({len(requests)} requests, model {args.model})",
                  file=sys.stderr)
        batch = retro.poll(base, key, batch_id, limit)
        results = retro.fetch_results(base, key, batch)
    except ApiError as exc:
        raise UserError(f"retro-grade: {exc.line()}") from None
    rows = retro.grade(ctx, targets, results, args.model)
    path = retro.write_report(ctx.home, repo, retro.render_report(repo, rows, batch_id=batch_id, model=args.model,
                                                                  now=now), now)
    total = retro.totals(rows)
    if args.json:
        print(json.dumps({
            "report": str(path), "batch_id": batch_id, "model": args.model, "payload": str(payload) if payload else None,
            "stages": [dict(s, retro=r.retro, agrees=r.agrees, detail=r.detail) for s, r in zip(stages, rows)],
            "tokens": {"input": total.input_tokens, "output": total.output_tokens,
                       "cache_read": total.cache_read_tokens, "cache_write": total.cache_write_tokens,
                       "total": total.total_tokens},
            "cost_usd": retro.cost_usd(args.model, total, batch=True),
        }, indent=2))
    else:
        print(f"{'stage':<28} {'original':<8} {'retro':<8} agrees")
        for r in rows:
            mark = "yes" if r.agrees else "NO" if r.agrees is False else "-"
            print(f"{r.target.stage_id:<28} {r.target.original:<8} {r.retro:<8} {mark}")
        print(f"report: {path}")
    return 0

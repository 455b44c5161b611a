"""List the events the tick raised and how each was delivered; resend one that did not arrive.

Reads ``<home>/events.jsonl``, oldest first: per event its REF (what
``--resend`` takes), when, the kind, the repo, each channel's delivery (``ok``;
a webhook post waiting for its next try; undelivered, with the reason) and
the one-line summary. ``--since`` takes a span (24h, 90m, 2d, 1w) or a UTC
time. ``--undelivered`` shows only events some channel did not get.
``--resend REF`` delivers that event now to each configured channel that did
not get it (a channel that did is not sent it twice); exit 1 if a delivery
fails. The tick itself posts undelivered webhook events again, with a
back-off (see docs/observability.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from ..errors import UsageError
from ..observe import events
from ..observe.report import parse_since
from ..paths import HomePaths
from ..secrets import redact_doc
from ..timeutil import parse_iso


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", metavar="TIME", help="only events since: 24h, 90m, 2d, 1w or a UTC time")
    parser.add_argument("--undelivered", action="store_true", help="only events some channel did not get")
    parser.add_argument("--resend", metavar="REF", help="deliver this event again where it did not arrive")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def _row(doc: dict) -> dict:
    return {"ref": events.ref_of(doc["id"]), "id": doc["id"], "at": doc.get("at"), "kind": doc.get("kind"),
            "repo": doc.get("repo"), "repo_name": doc.get("repo_name"), "needs_human": doc.get("needs_human"),
            "summary": doc.get("summary"), "delivery": doc.get("delivery") or {},
            "delivery_state": events.state_of(doc), "attempts": doc.get("attempts") or {},
            "retry_at": doc.get("retry_at"), "undelivered": events.undelivered(doc)}


def run(args: argparse.Namespace) -> int:
    hp = HomePaths.from_env()
    if args.resend:
        if args.since or args.undelivered:
            raise UsageError("--resend takes one event; leave out --since and --undelivered")
        doc, results = events.resend(hp, args.resend)
        row = _row(doc)
        if args.json:
            print(json.dumps(redact_doc({"ref": row["ref"], "id": doc["id"], "resent": results}), indent=2))
        elif not results:
            print(f"{row['ref']} {doc.get('kind')}: every configured channel got it already "
                  f"({events.delivery_text(doc.get('delivery') or {})}); nothing resent")
        else:
            for channel, result in sorted(results.items()):
                print(f"{row['ref']} {doc.get('kind')}: {channel} {result}",
                      file=sys.stdout if result == "ok" else sys.stderr)
        return 0 if all(r == "ok" for r in results.values()) else 1
    since = parse_since(args.since, time.time()) if args.since else None
    rows = []
    for doc in events.journal(hp):
        if since is not None and (parse_iso(str(doc.get("at") or "")) or 0) < since:
            continue
        if args.undelivered and not events.undelivered(doc):
            continue
        rows.append(_row(doc))
    rows = redact_doc(rows)  # summaries quote markers, and markers quote agents
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        what = "undelivered events" if args.undelivered else "events"
        print(f"no {what}{' since ' + str(args.since) if args.since else ''} in {hp.events}")
        return 0
    for row in rows:
        state = "; ".join(f"{ch} {text}" for ch, text in row["delivery_state"].items()) or "not configured"
        print(f"{row['ref']}  {row['at']}  {row['kind']}  {row['repo_name'] or '-'}  [{state}]")
        print(f"    {row['summary']}")
    return 0

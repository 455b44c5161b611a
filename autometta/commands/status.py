"""What needs you, then one row per subscribed repo: stage, status, ticks and failures against caps, spend.

It leads with what needs a person, per repo (:mod:`autometta.observe.needs`,
which every view and event reads): a halt and why, each stopped stage
(stalled, failed, merge_conflict, ...) with its marker, each stuck or
over-budget agent, a park and until when -- each with the command that
addresses it. A repo with nothing in flight but stopped stages says
``needs you: N``, not ``idle``.

The stage cell lists every stage in flight and a line under the table says
what each is doing in its worktree (a *lane*, one at a time at
``max_parallel`` 1); ``--json`` has them as ``lanes`` beside
``max_parallel``, and for a single stage in flight its ``worker_pid`` and
``verifier_pid`` as well, as for a stage in the repo's own tree. The
sessions of stages run by hand (``dispatch``/``verify``) are under
``by_hand`` (autometta.observe.byhand).

``--json`` prints the same document as ``--watch --once --json``.

Reads files only per repo (no git, no subprocess; registered agents are
classified as the ticker does, from ``/proc`` where there is one), so it
stays fast with a hundred repos. A repo whose files cannot be read gets an
``error`` row and a line saying why; the command then exits 1. Warnings
about the schedule (nothing runs the tick, it runs a pyz that is gone or
older than its checkout) go to stderr, and to ``schedule_warnings`` in
``--json``; they do not change the exit code. They are remembered between
runs (autometta.schedulememo): a crontab edited by hand may take up to an
hour to show; ``check-deps`` always checks afresh.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from .. import home
from ..observe.statusrows import lane_lines, needs_lines, render_table
from ..paths import HomePaths


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--repo", metavar="REPO", help="only this repo")
    parser.add_argument("--watch", action="store_true", help="redraw every few seconds, with recent completions")
    parser.add_argument("--once", action="store_true", help="with --watch: draw once and exit")


def run(args: argparse.Namespace) -> int:
    from ..observe import settings as observe_settings
    from ..observe import tickers

    hp = HomePaths.from_env()
    if args.watch or args.once:
        return tickers.status_watch(hp, args.repo, once=args.once, as_json=args.json)
    home.require_home(hp)
    now = time.time()
    doc = tickers.status_view(hp, args.repo, observe_settings.from_home(hp), now, warnings=True)
    rows = doc["repos"]
    errors = [e for row in rows for e in row["errors"]]
    if args.json:
        print(json.dumps(doc, indent=2))
        return 1 if errors else 0
    print(f"phat-controller home: {hp.root}")
    print(f"latest controller log: {doc['latest_log'] or '-'}")
    print()
    for line in needs_lines(doc["needs_you"], now):
        print(line)
    print()
    print(render_table(rows) if rows else "no subscribed repos; run 'autometta subscribe REPO'")
    for row in rows:
        for stage_id, waits in (row.get("waiting") or {}).items():
            print(f"{row['repo']}: {stage_id} waits for {', '.join(waits)}")
        for line in lane_lines(row):
            print(line)
    for err in errors:
        print(err, file=sys.stderr)
    for warning in doc["schedule_warnings"]:
        print(warning, file=sys.stderr)
    return 1 if errors else 0

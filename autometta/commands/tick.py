"""Move each subscribed repo one step: worker -> verifier -> commit, under its budget.

Run it from cron or launchd every few minutes. ``--reset-halt`` clears halts
(and the counter that tripped them); ``--repair`` reconciles state with what
is on disk and in the process table. ``--dry-run`` alone prints, per repo,
what the next tick would do (claim which stage, start which agent with which
billing route and model, land which lane, or why it would do nothing) and
touches nothing: no file written, no process started, no git run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from .. import files, home
from ..errors import UsageError, UserError
from ..paths import HomePaths
from ..secrets import redact, redact_doc
from ..tick.loop import context_for, run_tick
from ..ticklog import TickLog


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repo", metavar="REPO", help="only this subscribed repo")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--reset-halt", action="store_true", help="clear halts and the counter that tripped them")
    mode.add_argument("--repair", action="store_true", help="reconcile state with reality and print each change")
    parser.add_argument("--dry-run", action="store_true",
                        help="print what the next tick would do, per repo, and change nothing (with --repair: "
                             "what it would repair)")
    parser.add_argument("--json", action="store_true", help="with --dry-run: the plan as JSON")
    parser.add_argument("--quiet", action="store_true", help="log to the tick log only, not stderr")


def _subscribers(hp: HomePaths, repo):
    home.require_home(hp)
    subs = [s for s in home.tick_order(home.load_subscribers(hp)) if s.enabled and not s.error]
    if repo:
        wanted = os.path.realpath(repo)
        subs = [s for s in subs if os.path.realpath(s.repo_path) == wanted]
        if not subs:
            raise UserError(f"{wanted}: not a subscribed, enabled repo; run 'autometta subscribe {wanted}'")
    return subs


def run(args: argparse.Namespace) -> int:
    hp = HomePaths.from_env()
    if args.json and not (args.dry_run and not args.repair):
        raise UsageError("--json goes with --dry-run (the plan)")
    if args.dry_run and args.reset_halt:
        raise UsageError("--dry-run goes alone (the plan) or with --repair, not with --reset-halt")
    if args.dry_run and not args.repair:
        from ..tick import dryrun
        from ..tick.loop import plan_tick

        plans, limit = plan_tick(hp, repo=args.repo)
        print(json.dumps({"max_per_fire": limit, "repos": redact_doc(plans)}, indent=2) if args.json
              else redact(dryrun.render(plans, limit)))
        return 1 if any(line.startswith("error:") for p in plans for line in p["lines"]) else 0
    if args.reset_halt or args.repair:
        from .. import repair

        log = TickLog(hp, echo=not args.quiet)
        config = home.load_config(hp)
        failed = False
        for sub in _subscribers(hp, args.repo):
            try:
                with files.locked(sub.paths.lock, timeout=30):
                    if args.reset_halt:
                        note = repair.reset_halt(sub.paths)
                        if note:
                            log(note)
                    else:
                        changes = repair.repair(context_for(sub, config), dry_run=args.dry_run)
                        for change in changes:
                            print(f"{sub.repo_path}: {'would ' if args.dry_run else ''}{change}")
                            if not args.dry_run:
                                log(f"repair {sub.repo_path}: {change}")
                        if not changes:
                            print(f"{sub.repo_path}: nothing to repair")
            except UserError as exc:
                print(f"autometta tick: {exc.message}", file=sys.stderr)
                failed = True
        return 1 if failed else 0
    outcomes = run_tick(hp, repo=args.repo, echo=not args.quiet)
    return 1 if any(o.error for o in outcomes) else 0

"""Check every registered agent: running, quiet, stuck, over-budget or exited.

Writes ``state/heartbeat.json`` and moves the entries of exited agents to
``state/recent-agents/`` with their outcome. Never kills anything, and
exits 0 once its arguments are good: it is a watchdog, not a gate. Without
REPO it checks every enabled subscribed repo; a REPO must be subscribed, or
have agents registered with ``autometta register-agent`` (else exit 1). Thresholds: see
``autometta.observe.settings`` (``PHAT_CONTROLLER_HEARTBEAT_STALL``, ...).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from .. import home
from ..errors import UserError
from ..observe import heartbeat, settings
from ..observe.tickers import target_repos
from ..paths import HomePaths, RepoPaths

COLUMNS = (("pid", 7), ("role", 9), ("family", 7), ("stage", 22), ("state", 12), ("ran", 6))


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("repo", metavar="REPO", nargs="?", help="one repo (default: every subscribed repo)")
    parser.add_argument("--json", action="store_true", help="print the reports as JSON")


def _table(report) -> str:
    lines = [" ".join(f"{name:<{w}}" for name, w in COLUMNS) + " why", " ".join("-" * w for _, w in COLUMNS) + " ---"]
    for row in heartbeat.table(report):
        cells = [c if len(c) <= w else c[: w - 1] + "~" for c, (_, w) in zip(row, COLUMNS)]
        lines.append(" ".join(f"{c:<{w}}" for c, (_, w) in zip(cells, COLUMNS)) + " " + row[-1])
    return "\n".join(lines)


def _check_known(hp: HomePaths, paths: RepoPaths) -> None:
    """A REPO argument must be a repo autometta knows: subscribed, or with an agent registry."""
    if paths.active_agents.is_dir() or paths.recent_agents.is_dir() or paths.heartbeat.is_file():
        return
    if hp.subscribers.is_dir() and home.find_subscriber(hp, paths.root) is not None:
        return
    raise UserError(f"{paths.root}: not a subscribed repo and no agent was ever registered there; give a "
                    "subscribed repo ('autometta status' lists them) or run 'autometta subscribe' first")


def run(args: argparse.Namespace) -> int:
    hp = HomePaths.from_env()
    repos = target_repos(hp, args.repo)
    if args.repo:
        _check_known(hp, repos[0])
    conf = settings.from_home(hp)
    now = time.time()
    reports = {}
    for paths in repos:
        try:
            reports[str(paths.root)] = heartbeat.check(paths, conf, now)
        except UserError as exc:  # e.g. heartbeat.json not writable: say so, still exit 0
            print(f"autometta heartbeat: {exc.message}", file=sys.stderr)
    if args.json:
        print(json.dumps(reports if args.repo is None else next(iter(reports.values()), {}), indent=2))
        return 0
    for repo, report in reports.items():
        counts = ", ".join(f"{n} {s}" for s, n in report["counts"].items() if n)
        print(f"{repo}: {report['active_count']} running agent(s){f' ({counts})' if counts else ''}")
        if report["entries"] or report["exited"]:
            print(_table(report))
    if not reports:
        print("no enabled subscribed repos; give a REPO")
    return 0

"""Add a manually started agent to a repo's registry, so heartbeat, watch and the tickers see it.

The bash version's arguments: REPO PID ROLE FAMILY IDENTITY CARD LOG [BUDGET]
(BUDGET in seconds, 0 = unknown). Registering the same pid again rewrites its
entry. The process's start time is recorded when it is running, so a later
process that gets the same pid is never mistaken for this agent. Prints the
entry's path.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .. import schema
from ..agents import liveness, registry
from ..agents.roles import ROLES
from ..errors import UserError
from ..paths import RepoPaths
from ..stageid import STAGE_ID_RE
from ..timeutil import now_iso



def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("repo", metavar="REPO", help="the repo the agent works in")
    parser.add_argument("pid", metavar="PID", help="the agent's process id")
    parser.add_argument("role", metavar="ROLE", help="worker or verifier")
    parser.add_argument("family", metavar="FAMILY", help="agent family: claude, codex, script, ...")
    parser.add_argument("identity", metavar="IDENTITY", help="e.g. 'Codex GPT-5.5 <codex-gpt-5-5@local>'")
    parser.add_argument("card", metavar="CARD", help="the stage card it works on")
    parser.add_argument("log", metavar="LOG", help="the file its output goes to")
    parser.add_argument("budget", metavar="BUDGET", nargs="?", default="0",
                        help="wall-clock budget in seconds (default 0: unknown)")


def run(args: argparse.Namespace) -> int:
    repo = Path(os.path.realpath(args.repo))
    if not repo.is_dir():
        raise UserError(f"{repo}: no such folder; give the repo the agent works in")
    if not args.pid.isdigit() or int(args.pid) <= 0:
        raise UserError(f"refusing to register non-numeric pid: {args.pid}")
    if args.role not in ROLES:
        raise UserError(f"refusing unknown role: {args.role} (use one of {', '.join(ROLES)})")
    if not args.budget.isdigit():
        raise UserError(f"budget {args.budget!r}: give whole seconds (0 = unknown)")
    pid = int(args.pid)
    started = liveness.start_time(pid) if liveness.is_alive(pid) else None
    if started is None:
        print(f"autometta register-agent: warning: pid {pid} is not running; "
              "the next heartbeat moves it to recent-agents", file=sys.stderr)
    card = os.path.abspath(args.card)
    stem = os.path.basename(card).rsplit(".", 1)[0]
    paths = RepoPaths(repo)
    doc_args = dict(pid=pid, started=started, started_at=now_iso(), role=args.role, family=args.family,
                    identity=args.identity, card_path=card, log_path=os.path.abspath(args.log),
                    budget_seconds=int(args.budget), stage_id=stem if STAGE_ID_RE.match(stem) else None)
    preview = {k: v for k, v in doc_args.items() if k not in ("started",) and v is not None}
    preview["agent_id"] = f"{pid}-0"
    schema.check(preview, "active-agent", str(registry.entry_path(paths, pid)))
    print(registry.register(paths, **doc_args))
    return 0

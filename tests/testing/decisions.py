"""Facts for the pure decision (autometta/tick/decide.py), built by hand, and a Decision's effects as names.

No files, no processes, no git: a state document with one stage (``state_with``), the repo's facts
(``facts``), the stage in flight in the repo's tree (``inflight``) or in a lane of its own (``lane``), and
its agents' processes (``running``, ``exited``, ``limited``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Optional

from autometta.books.budget import initial_budget
from autometta.families.usage import UsageLimit
from autometta.books.state import initial_state, new_stage
from autometta.tick import decide as d

SID = "01-thing"
#: A lane's stage fields: its worktree, its branch, the branch it lands on.
LANE = {"worktree": "/r/.autometta/worktrees/01-thing", "branch": "autometta/01-thing", "base": "main"}
NOW = 1_900_000_000.0  # 2030-03-17T17:46:40Z
LIMIT = UsageLimit("usage", "You've hit your session limit", "2030-03-17T18:00:00Z")
CLAUDE, CODEX = "claude subscription", "codex subscription"
ROUTES = {"worker": CLAUDE, "verifier": CODEX}
#: The claude route parked for every repo on this host until after NOW.
PARKED = {CLAUDE: {"until": "2030-03-17T18:01:00Z", "reason": "worker hit a usage limit: x", "repo": "/other"}}
PASS_DOC = {"overall": "PASS", "criteria": [{"id": 1, "name": "hello", "verdict": "PASS", "evidence": "ok"}]}
FAIL_DOC = {"overall": "FAIL", "criteria": [{"id": 1, "name": "hello", "verdict": "FAIL", "evidence": "empty"}]}


def state_with(status: str = "pending", current: Optional[str] = None, **fields: Any) -> Dict[str, Any]:
    doc = initial_state()
    stage = new_stage(SID, "Claude Sonnet 4.6 <claude-sonnet-4-6@local>", "Codex GPT-5.5 <codex-gpt-5-5@local>")
    stage["status"] = status
    stage.update(fields)
    doc["stages"].append(stage)
    doc["current_stage"] = current
    return doc


def facts(doc=None, budget=None, cur: Optional[d.InFlight] = None, pending: Optional[d.Pending] = None,
          dirty: Optional[List[str]] = None) -> d.Facts:
    doc = doc if doc is not None else state_with()
    f = d.Facts(repo="/r", budget=budget or initial_budget(), state=doc, cur=cur, pending=pending)
    if dirty is not None:
        f.dirty = lambda: dirty
    return f


def inflight(doc, **kw) -> d.InFlight:
    stage = doc["stages"][0]
    c = d.InFlight(stage=stage)
    for key, value in kw.items():
        setattr(c, key, value)
    return c


def lane(doc=None, dirty: Optional[List[str]] = None, **kw) -> d.Facts:
    """Facts for a stage in a lane (``decide_lane``): ``doc`` defaults to one in progress in its worktree."""
    doc = doc if doc is not None else state_with("in_progress", **LANE)
    f = facts(doc, dirty=dirty)
    f.cur = inflight(doc, lane=True, **kw)
    return f


def running(elapsed=10.0, pid=42):
    return d.Proc(pid=pid, alive=True, elapsed=elapsed)


def exited(code=0, seconds=30.0, usage=None, pid=42, **extra):
    return d.Proc(pid=pid, alive=False, elapsed=seconds, exit={"exit_code": code, "seconds": seconds, **extra},
                  usage=usage)


def limited(proc: d.Proc, limit: Optional[UsageLimit] = None) -> d.Proc:
    """``proc``, ended on a usage limit."""
    return dataclasses.replace(proc, limit=limit or LIMIT)


def effects(dec: d.Decision) -> List[str]:
    """``["claim:01-thing", "worktree", "launch:worker"]``: each effect's name, with its argument when it has a
    short one."""
    return [e.name if e.arg is None or isinstance(e, (d.Commit, d.SaveArtefact, d.Set)) else f"{e.name}:{e.arg}"
            for e in dec.effects]

"""Plan mode (``autometta tick --dry-run``): what the next tick would do, touching nothing.

The tick's own loop (:func:`autometta.tick.loop._process`) runs on copies of each
repo's state and budget with ``Txn.dry`` set: every decision is taken as the
tick would take it, and :func:`apply` stands in for
:func:`autometta.tick.effects.apply`. It changes the copies only as far as the
decisions after it in the same tick need (a claim fills a lane, a finish
frees one, an accounting moves the counters), and says what the real effect
would do: which stage is claimed, which agent starts with which billing
route, model and permission mode, which lane lands where.

Nothing is written (no state, budget, log, lock, ledger, park or turn file),
no process is started and git is not run: the facts a decision would ask git
for (:func:`without_git`) are taken as "unchanged" and the plan says so. A
repo whose lock another tick holds is reported as skipped, found with a
shared ``flock`` on the existing lock file, never created.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path
from typing import Any, Dict, List, Optional

from ..stagerecord import StageRecord
from ..timeutil import now_iso
from . import decide as d

#: Said of a decision that would ask git (plan mode does not run it).
NO_GIT = "(plan mode runs no git: the tree is taken as unchanged)"


def lock_held(path: Path) -> bool:
    """Does another process hold the repo's tick lock? (the file is opened read-only, never created)"""
    try:
        fd = os.open(str(path), os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        return exc.errno in (errno.EAGAIN, errno.EACCES)
    finally:
        os.close(fd)
    return False


def without_git(facts: Optional[d.Facts]) -> Optional[d.Facts]:
    """The facts with every question for git answered without it: the tree as the verifier judged it,
    nothing changed in the checkout, the stage's change within its card's scope, the lane's tree checked
    again before it lands."""
    if facts is None:
        return facts
    facts.dirty = lambda: []
    if facts.cur is not None:
        recorded = (facts.cur.stage or {}).get("worker_tree")
        facts.cur.tree_now = lambda: recorded
        facts.cur.scope = lambda: None
        facts.cur.recheck = lambda: True
    return facts


def agent(ctx: Any, stage: Dict[str, Any], role: str) -> str:
    """Who ``role`` would be for ``stage``: identity, family, billing route, model, permission and sandbox."""
    rec = StageRecord(stage)
    from .. import auth, families
    from ..agents import sandbox
    from ..agents.provision import COMMAND_ROLES, identity_for, privilege_summary
    from ..errors import UserError
    from .facts import load_card
    from ..families import family_of
    from ..families.models import resolve_model
    from ..verify.transport import panel_enabled, transport_for

    try:
        card = load_card(ctx, str(rec.id))
    except UserError:
        card = None
    if role in COMMAND_ROLES:
        from ..git.worktrees import setup_command

        command = setup_command(ctx.manifest) if role == "setup" else (card.acceptance_command if card else None)
        box = sandbox.kind_of(ctx.manifest, ctx.paths.manifest)
        inside = f" (sandbox {box})" if box != "none" and role != "setup" else ""
        return f"the {COMMAND_ROLES[role]} `{command}`{inside}"
    identity = identity_for(stage, role)
    family = family_of(identity) or "unknown"
    parts = [f"family {family}"]
    route = auth.route_summary(ctx.environ, ctx.manifest, identity, role, ctx.paths.manifest)
    parts.append(route or "no billing route")
    if role == "verifier" and card is not None and panel_enabled(ctx.environ, bool(card.panel)):
        from ..verify.panel import panel_members

        try:
            members = panel_members(ctx.config, ctx.environ, ctx.manifest)
            seats = ", ".join(f"{m.name}: {m.family} {m.route.transport}" + (f" {m.model}" if m.model else "")
                              for m in members)
        except UserError as exc:
            seats = f"not startable: {exc.message}"
        return f"a verifier panel for {identity} ({seats})"
    if role == "verifier":
        try:
            if transport_for(family, ctx.environ, ctx.manifest).transport == "api":
                parts.append("through its API (transport api)")
        except UserError:
            pass
    try:
        model = resolve_model(identity, family, ctx.config.get("models") or {}) if family in families.FAMILIES \
            else None
    except UserError as exc:
        model = f"none: {exc.message}"
    parts.append(f"model {model}" if model else "the CLI's default model")
    confined = privilege_summary(ctx, identity, role, card)
    if confined:
        parts.append(confined)
    return f"{identity} ({', '.join(parts)})"


def _say(txn: Any, line: str) -> None:
    txn.log_extra.append(f"  would {line}")


def apply(txn: Any, decision: d.Decision) -> str:
    """Plan mode's :func:`autometta.tick.effects.apply`: the copies change as later decisions need; nothing else."""
    from ..books import ledger
    from .facts import lane_context
    from ..books.state import find_stage
    from ..git.worktrees import branch_for, lane_root

    finish = decision.finish
    for effect in decision.effects:
        arg = effect.arg
        stage = txn.cur
        rec = StageRecord(stage)  # an empty record when there is no stage (stage None)
        sid = rec.id if stage else "?"
        if isinstance(effect, d.Claim):
            claimed = find_stage(txn.state, arg)
            if claimed is not None:
                claimed.update(status="in_progress", started_at=now_iso(txn.now), verifier_attempts=0)
            txn.focus = arg
            if txn.tree:
                txn.state["current_stage"] = arg
        elif isinstance(effect, d.Worktree) and stage is not None:
            base_ctx = txn.base_ctx or txn.ctx
            path = lane_root(base_ctx.repo, base_ctx.manifest) / sid
            stage.update(worktree=str(path), branch=branch_for(sid), base="the checked-out branch")
            txn.ctx = lane_context(base_ctx, stage)
            shown = os.path.relpath(path, base_ctx.repo) if str(path).startswith(str(base_ctx.repo)) else path
            _say(txn, f"create the worktree {shown} on branch {branch_for(sid)} from the checked-out branch's tip")
        elif isinstance(effect, d.RecordClaim):
            _say(txn, "note what is already changed in the checkout, to keep it out of the stage's commit")
        elif isinstance(effect, d.Launch) and stage is not None:
            _say(txn, f"start the {arg} for {sid}: {agent(txn.ctx, stage, arg)}")
        elif isinstance(effect, d.Account) and stage is not None:
            proc = getattr(txn.facts.cur, arg, None) if txn.facts is not None and txn.facts.cur is not None else None
            usage = getattr(proc, "usage", None)
            tokens = int(usage.total_tokens) if usage is not None else 0
            cost = float(getattr(usage, "cost_usd", 0) or 0)
            seconds = int(float(((getattr(proc, "exit", None) or {}).get("seconds")) or 0))
            ledger.add_to_counters(txn.budget, tokens=tokens, cost_usd=cost, seconds=seconds)
            _say(txn, f"book the {arg}'s run of {sid} in the spend ledger ({tokens} tokens"
                      + (f", ${cost:.2f}" if cost else "") + f", {seconds}s)")
            # its pid stays: the runner's record is still on disk, and a later decision in this plan must
            # not take the run for an orphan to adopt
        elif isinstance(effect, d.Kill) and stage is not None:
            _say(txn, f"stop the {arg} of {sid} (SIGTERM to process group {rec.pid(arg)})")
        elif isinstance(effect, d.Commit) and stage is not None:
            where = f" on {rec.branch}" if rec.branch else ""
            _say(txn, f"commit {sid}'s changes{where} as '{sid}: {arg}' after the secret scan")
        elif isinstance(effect, d.Merge) and stage is not None:
            _say(txn, f"rebase {rec.branch} onto {rec.base} {NO_GIT}")
        elif isinstance(effect, d.Land) and stage is not None:
            _say(txn, f"fast-forward {rec.base} to {sid}'s commit and remove its worktree and branch")
        elif isinstance(effect, d.Park):
            _say(txn, f"park {arg[2]} until {arg[0]} for every repo on this host")
        elif isinstance(effect, d.Unpark) and arg:
            _say(txn, f"clear the park of {arg}")
        elif isinstance(effect, d.Rebrief):
            _say(txn, f"re-brief the worker of {sid} (loop {arg.get('loop')} of {arg.get('of')})")
        elif isinstance(effect, d.Quarantine) and stage is not None:
            _say(txn, f"move {sid}'s invalid {arg} aside as .invalid.json")
        elif isinstance(effect, d.SaveArtefact) and stage is not None:
            _say(txn, f"save the verdict {sid}'s verifier gave as its final message")
        elif isinstance(effect, d.Adopt) and stage is not None:
            _say(txn, f"adopt the {arg[0]} pid {arg[1]} an interrupted tick started")
        elif isinstance(effect, d.Set) and stage is not None:
            stage[arg[0]] = arg[1]
        elif isinstance(effect, d.ClearCurrent):
            txn.state["current_stage"] = None
    if finish:
        rec = StageRecord(txn.cur)
        if txn.cur is not None:
            rec.status = finish[0]
            if txn.state.get("current_stage") == rec.id:
                txn.state["current_stage"] = None
        _say(txn, f"mark {rec.id if txn.cur is not None else 'the stage'} {finish[0]}"
                  + (f" ({finish[1]})" if finish[1] else ""))
    if decision.halt:
        txn.budget.update(halted=True, halt_reason=decision.halt)
        _say(txn, f"halt the repo ({decision.halt}) until 'autometta tick --reset-halt'")
    return finish[0] if finish else decision.kind


def render(plans: List[Dict[str, Any]], limit: Optional[int]) -> str:
    """The plan as printed: a heading per repo, what it would do below it."""
    cap = f"max_per_fire {limit}" if limit is not None else "no max_per_fire"
    out = [f"autometta tick --dry-run: what the next tick would do ({cap}; nothing is written, started or "
           "committed)"]
    for plan in plans:
        turn = "  [takes a turn]" if plan.get("worked") and limit is not None else ""
        out += ["", f"{plan['repo']}{turn}"]
        out += [f"  {line}" for line in plan["lines"]] or ["  (nothing)"]
    return "\n".join(out)

"""``tick --reset-halt`` and ``tick --repair``: put a repo back in step with reality.

The bash version's ``--repair`` was a no-op and ``--reset-halt`` cleared only
the flag, so a tick- or failure-cap halt fired again on the next tick
(§15.1). Here reset also clears the counter that tripped, and repair
reconciles state with what is really on disk and in the process table,
printing every change it makes (or would make, with ``--dry-run``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Dict, List, Optional

from . import envelope, files
from .agents import liveness, registry, runs
from .agents.roles import ROLES
from .agents.spawn import read_exit
from .books import budget as budgets, state
from .errors import UserError
from .git import worktrees
from .paths import RepoPaths
from .repo import RepoContext
from .stagerecord import StageRecord

#: The counter each cap halts on, cleared by --reset-halt.
COUNTERS = {reason: counter for reason, counter, _cap, _opt in budgets.CAPS}


def reset_halt(paths: RepoPaths) -> Optional[str]:
    """Clear a halt and the counter that tripped it; None if the repo was not halted.

    Only that counter: the lifetime totals (budget.LIFETIME) keep every token,
    dollar and second spent, and the other counters keep theirs.
    """
    b = budgets.load_budget(paths)
    if not b.get("halted"):
        return None
    reason = b.get("halt_reason")
    note = f"reset halt state for {paths.root} ({reason})"
    counter = COUNTERS.get(reason or "")
    b.update(budgets.lifetime(b))  # what was spent stays counted, whatever is reset
    if counter and b.get(counter):
        note += f"; {counter} {b[counter]} -> 0"
        b[counter] = 0
    b.update(halted=False, halt_reason=None, halted_at=None)
    budgets.save_budget(paths, b)
    if paths.state_yaml.exists():
        try:
            doc = state.load_state(paths)
        except Exception:  # a corrupt state is the tick's to restore, not ours
            return note
        if doc.get("halted") or doc.get("halt_reason"):
            doc.update(halted=False, halt_reason=None)
            state.save_state(paths, doc)
    return note


def _alive(stage: Dict[str, Any], role: str) -> bool:
    rec = StageRecord(stage)
    pid = rec.pid(role)
    return bool(pid) and liveness.is_alive(int(pid), rec.started(role))


#: Seconds repair gives what is left of a lost run between SIGTERM and SIGKILL.
LOST_GRACE = 5.0
#: The stall marker of a stage in_progress that is not current and has no live agent.
ORPHANED_MARKER = "repair_orphaned_in_progress"


def _lost_runners(paths: RepoPaths, stages: List[Dict[str, Any]], doc: Dict[str, Any], dry_run: bool) -> List[str]:
    """Stages in flight whose runner is gone without an exit record: stop what is left, stall runner_lost."""
    changes: List[str] = []
    for stage in stages:
        rec = StageRecord(stage)
        if rec.status != "in_progress":
            continue
        sid = str(rec.id)
        gone = []
        for role in ROLES:
            if not rec.pid(role):
                continue
            alive = _alive(stage, role)
            record = None if alive else read_exit(paths.exit_record(sid, role))
            if runs.lost(stage, role, alive, record):
                gone.append(role)
        if not gone:
            continue
        left = sorted({pid for role in ROLES for pid in runs.leftovers(stage, role)})
        changes.append(f"stage {sid}: the runner of its {gone[0]} (pid {rec.pid(gone[0])}) is gone "
                       "without an exit record; " + (f"stop the {len(left)} process(es) left of its run "
                                                      f"({' '.join(map(str, left))}); " if left else "")
                       + f"mark stalled ({runs.RUNNER_LOST_MARKER})")
        if not dry_run:
            for role in ROLES:
                runs.stop(stage, role, LOST_GRACE)
        for role in ROLES:
            for field in (f"{role}_pid", f"{role}_started", runs.key(role)):
                if stage.get(field) is not None:
                    stage[field] = None
        rec.status, rec.stall_marker = "stalled", runs.RUNNER_LOST_MARKER
        if rec.merge:
            rec.merge = None
        if doc.get("current_stage") == sid:
            doc["current_stage"] = None
    return changes


def repair(ctx: RepoContext, *, dry_run: bool = False) -> List[str]:
    """Reconcile one repo; returns a line per change (made, or to be made)."""
    paths = ctx.paths
    changes: List[str] = []
    bash_lock = paths.bash_lock_dir
    if bash_lock.is_dir():
        pid = liveness.pid_in(bash_lock / "pid")
        if not (pid and liveness.is_alive(pid)):
            changes.append(f"remove stale bash lock {bash_lock}")
            if not dry_run:
                shutil.rmtree(bash_lock, ignore_errors=True)

    # temp files of an atomic write the writer did not live to rename (only the tick,
    # under the lock we hold, writes these documents, so none is in flight)
    for name in (paths.state_yaml.name, paths.state_yaml.name + ".bak", paths.budget.name):
        for stale in sorted(paths.state_dir.glob(f".{name}.*.tmp")):
            changes.append(f"remove {stale}, left by a write that was interrupted (the document is intact)")
            if not dry_run:
                try:
                    stale.unlink()
                except FileNotFoundError:
                    pass

    doc = state.load_state(paths)
    stages = [s for s in doc["stages"] if isinstance(s, dict)]
    changes += _lost_runners(paths, stages, doc, dry_run)
    current = doc.get("current_stage")
    cur = state.find_stage(doc, current) if current else None
    if current and (cur is None or StageRecord(cur).status != "in_progress"):
        changes.append(f"current_stage {current} is "
                       f"{'missing' if cur is None else StageRecord(cur).status}; clear current_stage")
        doc["current_stage"] = None
        cur = None
    for stage in stages:
        rec = StageRecord(stage)
        if rec.status != "in_progress" or stage is cur or rec.worktree:
            continue  # a parallel stage (it has a worktree) is in flight without being current_stage
        live = [r for r in ROLES if _alive(stage, r) or runs.orphan(paths, stage, r) is not None]
        if live and doc.get("current_stage") is None:
            changes.append(f"stage {rec.id} is in_progress with a live {live[0]}; make it current_stage")
            doc["current_stage"] = rec.id
        else:
            changes.append(f"stage {rec.id} is in_progress but not current and has no live agent; "
                           f"mark stalled ({ORPHANED_MARKER})")
            rec.status, rec.stall_marker = "stalled", ORPHANED_MARKER
    for stage in stages:
        rec = StageRecord(stage)
        for role in ROLES:
            pid = rec.pid(role)
            if pid and rec.status != "in_progress" and not _alive(stage, role):
                changes.append(f"stage {rec.id}: {role} pid {pid} is gone; clear it")
                rec.set_of(role, "pid", None)
        if rec.status == "pending":
            for stale in (paths.handoff(rec.id), paths.verifier_artefact(rec.id)):
                if stale.exists():
                    changes.append(f"stage {rec.id} is pending but {stale} exists from an earlier run; "
                                   f"move it to {paths.archive}")
                    if not dry_run:
                        envelope.archive(paths, rec.id)
                    break
    kills = [k for k in doc.get("pending_kills") or [] if isinstance(k, dict) and runs.pending(k)]
    if len(kills) != len(doc.get("pending_kills") or []):
        changes.append("drop pending kills of processes that are gone")
        doc["pending_kills"] = kills
    if changes and not dry_run:
        state.save_state(paths, doc)
    changes += _orphaned_lanes(ctx, stages, dry_run)

    if paths.active_agents.is_dir():
        for entry in sorted(paths.active_agents.glob("*.json")):
            agent = registry.read_entry(entry)
            pid = agent["pid"] if agent is not None else 0
            if agent is None:
                changes.append(f"unreadable registry entry {entry}; move to {paths.recent_agents}")
            if agent is None or not liveness.is_alive(pid, agent.get("process_start")):
                if agent is not None:
                    changes.append(f"agent {pid} ({agent.get('role')}) has exited; move {entry.name} to recent-agents")
                if not dry_run:
                    files.ensure_dir(paths.recent_agents)
                    os.replace(entry, paths.recent_agents / entry.name)
    return changes


def _orphaned_lanes(ctx: RepoContext, stages: List[Dict[str, Any]], dry_run: bool) -> List[str]:
    """Remove lanes (worktree, ``autometta/<id>`` branch) of this repo's stages that no stage owns now.

    A stage that stopped keeps its lane for review until it is re-queued; a
    completed or pending one owns none (its lane landed, or it starts
    afresh). Everything in a lanes' root inside the repo (the default
    ``.autometta/worktrees``) is autometta's; elsewhere only lanes named
    after a stage in this repo's state are touched, so another repo's
    worktrees under a shared root, or a branch that merely starts with
    ``autometta/``, are left alone.
    """
    repo = ctx.repo
    root = worktrees.lane_root(repo, ctx.manifest)
    ids = {str(s.get("id")) for s in stages}
    owned = {os.path.realpath(str(s["worktree"])): s.get("branch") for s in stages
             if s.get("worktree") and s.get("status") not in ("pending", "completed")}
    owned.update(_by_hand(ctx))
    try:
        known = worktrees.registered(repo)
        branches = worktrees.lane_branches(repo)
    except UserError as exc:
        return [f"cannot list worktrees ({exc.message}); orphaned worktrees were not checked"]

    private = _inside(os.path.realpath(root), repo / ".autometta") or (
        _inside(os.path.realpath(root), repo) and os.path.realpath(root) != os.path.realpath(repo))

    def mine(path: str) -> bool:
        """In the lanes' root, and either the root is the repo's own or the folder is named after a stage."""
        return _inside(path, root) and path != os.path.realpath(root) and (private or os.path.basename(path) in ids)

    def lane_id(branch: Optional[str]) -> Optional[str]:
        name = (branch or "")[len(worktrees.BRANCH_PREFIX):] if (branch or "").startswith(worktrees.BRANCH_PREFIX) else ""
        return name if name in ids else None

    doomed: Dict[str, Optional[str]] = {}
    for path, branch in known.items():
        real = os.path.realpath(path)
        ours = lane_id(branch) is not None or mine(real)
        if ours and real not in owned:
            lane_branch = (branch or "").startswith(worktrees.BRANCH_PREFIX) and (lane_id(branch) or mine(real))
            doomed[path] = branch if lane_branch else None
    if root.is_dir() and not _inside(os.path.realpath(repo), root):
        registered = {os.path.realpath(p) for p in known}
        for entry in sorted(root.iterdir()):
            real = os.path.realpath(entry)
            if entry.is_dir() and mine(real) and real not in owned and real not in registered:
                doomed[str(entry)] = None  # a lane folder git no longer knows of
    changes: List[str] = []
    for path, branch in sorted(doomed.items()):
        changes.append(f"remove orphaned worktree {path}" + (f" and branch {branch}" if branch else ""))
        if not dry_run:
            worktrees.remove(repo, Path(path), branch)
    kept = set(owned.values()) | {b for b in doomed.values() if b}
    for branch in branches:
        if lane_id(branch) is not None and branch not in kept:
            changes.append(f"delete orphaned branch {branch}")
            if not dry_run:
                worktrees.delete_branch(repo, branch)
    return changes


def _by_hand(ctx: RepoContext) -> Dict[str, Optional[str]]:
    """Worktrees ``autometta dispatch`` made for a stage run by hand and not yet landed: path -> branch."""
    out: Dict[str, Optional[str]] = {}
    from .books import oneshot

    for stage_id in oneshot.stage_ids(ctx.paths):
        # as its schema allows it: a branch that is a list broke the repair
        doc = oneshot.read_record(ctx.paths.oneshot_record(stage_id))
        if doc.get("worktree") and not doc.get("landed"):
            out[os.path.realpath(doc["worktree"])] = doc.get("branch")
    return out


def _inside(path: str, root: Path) -> bool:
    top = os.path.realpath(root)
    return path == top or path.startswith(top + os.sep)

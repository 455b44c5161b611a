"""Apply a decision's effects to one repo: claim, launch, account, commit, merge, land, park.

:func:`autometta.tick.decide.decide` says what to do, as typed effect
records (:class:`autometta.tick.decide.Effect`); :func:`apply` hands each to
its handler (:data:`HANDLERS`), which only starts a process, runs git or
moves files, and changes the in-memory state and budget of one transaction
(:class:`Txn`) through :mod:`autometta.tick.bookkeeping`. A handler decides
nothing: one that could not do its work returns a :class:`Failed`, and
:func:`autometta.tick.outcomes.failed_effect` says what the stage becomes. The
tick writes the documents once afterwards, except where an effect must be on
disk before its side effect (a claim before its spawn, a landing before its
lane is removed), which saves state itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from .. import auth, envelope, files, scan, secrets, sessions, verdicts
from ..agents import runs
from ..agents.dispatch import start
from ..agents.identity import git_author
from ..agents.logwriter import read_log
from ..agents.provision import identity_for, privilege_summary
from ..agents.spawn import read_exit, runner_record
from ..books import digests, ledger, parking, state
from ..errors import UserError
from ..git import gitops, isolation, stagecommit, worktrees
from ..paths import RepoPaths
from ..repo import RepoContext
from ..stagerecord import StageRecord
from ..timeutil import now_iso
from . import bookkeeping, outcomes, decide as d
from .facts import lane_context, load_card


@dataclass
class Txn:
    """The in-memory copies one transition changes, written once at the end."""

    ctx: RepoContext
    state: Dict[str, Any]
    budget: Dict[str, Any]
    now: float
    #: The repo's own context while ``ctx`` is a lane's (agents in its worktree).
    base_ctx: Optional[RepoContext] = None
    facts: Optional[d.Facts] = None
    log_extra: List[str] = field(default_factory=list)
    #: The stage effects apply to (a lane, or a claim); None: the repo's current_stage.
    focus: Optional[str] = None
    #: ``isolation: tree``: a claim runs the stage in the repo's own tree, as ``current_stage``.
    tree: bool = False
    #: Plan mode (``tick --dry-run``): decisions are described, and applied to the copies only (autometta.tick.dryrun).
    dry: bool = False

    @property
    def cur(self) -> Optional[Dict[str, Any]]:
        current = self.focus or self.state.get("current_stage")
        return state.find_stage(self.state, current) if current else None


@dataclass(frozen=True)
class Failed:
    """An effect that could not be done: what was tried, why, and the marker the error names (if any)."""

    what: str
    why: str
    marker: Optional[str] = None
    #: The commit's secret scan refused it (autometta.scan.SecretInDiff).
    secret: bool = False


@dataclass(frozen=True)
class Requeued:
    """A merge or landing found the base branch moved: the lane goes back to the queue; nothing after it runs."""


@dataclass(frozen=True)
class Conflict:
    """A lane that does not rebase onto its base branch: the files in conflict; nothing after it runs."""

    files: List[str]


@dataclass(frozen=True)
class Landed:
    """The base branch moved to the lane's commit: the stage is completed (and on disk already)."""


def _finish(txn: Txn, status: str, marker: Optional[str]) -> None:
    """The stage ends (:func:`bookkeeping.finish`); its marker masked, a failed in-tree stage's branch put back."""
    stage = txn.cur
    masked = _masked(txn, stage, marker) if stage is not None else marker
    bookkeeping.finish(txn.state, txn.budget, stage, status, masked, txn.now)
    if status != "completed" and stage is not None and isolation.in_tree(stage):
        _restore_branch(txn, stage)


def _masked(txn: Txn, stage: Dict[str, Any], marker: Optional[str]) -> Optional[str]:
    """A marker as state.yaml keeps it: agent-written text in it (an envelope's notes) with the stage's
    resolved secrets (fetched again if this tick has not) and every key shape masked."""
    if not marker:
        return marker
    scan.secrets_for(txn.ctx, [stage])  # registers them for secrets.redact, the tick log's too
    return secrets.redact(marker)


def _restore_branch(txn: Txn, stage: Dict[str, Any]) -> None:
    """A stage in the repo's tree did not land: no commit an agent made since the claim stays on the branch."""
    rec = StageRecord(stage)
    try:
        said = isolation.restore_branch(txn.ctx.repo, stage)
    except UserError as exc:
        said = f"could not move {rec.claim_branch} back to where {rec.id} was claimed: {exc.message}"
    if said:
        txn.log_extra.append(said)


def _account(txn: Txn, role: str) -> None:
    stage = txn.cur
    rec = StageRecord(stage)
    if stage is None or not rec.pid(role):
        return
    stage_id = rec.id
    proc: d.Proc = getattr(txn.facts.cur, role) if txn.facts and txn.facts.cur else d.Proc()
    record = proc.exit or read_exit(txn.ctx.paths.exit_record(stage_id, role)) or {}
    seconds = record.get("seconds")
    if seconds is None and proc.alive and proc.elapsed is not None:
        seconds = proc.elapsed  # stopped by this tick: it ran until now
    # else: it died without a record (a bash-era agent, a crash): its run time is unknown, count none
    seconds = int(round(float(seconds or 0)))
    usage = proc.usage if role in ("worker", "verifier") else None
    # Booked in the spend ledger and folded into the caps' counters (autometta.books.ledger): once, even
    # when this tick is killed before it saves and the next one accounts the run again.
    said = ledger.book_tick_run(txn.ctx, stage, role, usage=usage, record=record, seconds=seconds,
                                budget=txn.budget, now=txn.now)
    if said:
        txn.log_extra.append(said)
    if role in ("worker", "verifier"):
        sessions.ended(txn.ctx, stage, role, record.get("exit_code"))  # the id it used, what it reported
    bookkeeping.account(stage, role, seconds, usage, record.get("exit_code"))
    try:  # accounted: its runner is no orphan for a later tick to adopt
        os.unlink(runner_record(txn.ctx.paths.exit_record(stage_id, role)))
    except OSError:
        pass


def _park(txn: Txn, until: str, reason: str, route: str) -> None:
    """Park ``route`` for every repo on this host (autometta.books.parking); the stage keeps its own until."""
    stage = txn.cur
    rec = StageRecord(stage)
    if stage is not None:
        rec.parked_until = until  # whose limit it was: see decide._limited
    base = txn.base_ctx or txn.ctx
    try:
        parking.park(ledger.home_of(base), route, until, secrets.redact(reason), repo=str(base.repo),
                     stage=rec.id if stage else None, now=txn.now)
    except UserError as exc:
        txn.log_extra.append(f"could not park {route} for the other repos ({exc.message}); "
                             f"{rec.id if stage else 'the stage'} itself waits until {until}")


def _unpark(txn: Txn, route: str) -> None:
    """The route's reset has passed (as this tick counts time): its park goes."""
    try:
        parking.unpark(ledger.home_of(txn.base_ctx or txn.ctx), route, now=txn.now)
    except UserError as exc:
        txn.log_extra.append(f"could not clear the park of {route} ({exc.message}); it runs out by itself")


def _unpark_repo(txn: Txn, route: Optional[str]) -> None:
    txn.state.update(parked_until=None, park_reason=None)
    if route:
        _unpark(txn, route)


def _kill(txn: Txn, role: str) -> None:
    """SIGTERM ``role``'s run (its runner's group and every process marked as the run's); SIGKILL on a later tick."""
    stage = txn.cur
    entry = runs.terminate(stage, role) if stage else None
    if entry is not None:
        txn.state.setdefault("pending_kills", []).append(dict(entry, since=now_iso(txn.now)))


def _claim(txn: Txn, stage_id: str) -> None:
    stage = state.find_stage(txn.state, stage_id)
    assert stage is not None
    envelope.archive(txn.ctx.paths, stage_id, txn.now)
    bookkeeping.claim(stage, txn.now)
    txn.focus = stage_id
    if txn.tree:
        txn.state["current_stage"] = stage_id


def _worktree(txn: Txn) -> None:
    """Give the claimed stage its worktree and branch; the lane's agents work there from now on."""
    stage = txn.cur
    rec = StageRecord(stage)
    assert stage is not None
    base_ctx = txn.base_ctx or txn.ctx
    path = worktrees.lane_root(base_ctx.repo, base_ctx.manifest) / rec.id
    branch = worktrees.branch_for(rec.id)
    base, tip = worktrees.create(base_ctx.repo, path, branch)
    stage.update(worktree=str(path), branch=branch, base=base)
    txn.ctx = lane_context(base_ctx, stage)
    shown = os.path.relpath(path, base_ctx.repo) if str(path).startswith(str(base_ctx.repo) + os.sep) else path
    txn.log_extra.append(f"worktree {shown} on branch {branch} from {base} at {tip[:12]} for {rec.id}")


def _rebase(txn: Txn, unmoved: bool = False) -> Optional[Any]:
    """Rebase the lane onto its base branch's tip: None, a :class:`Conflict`, or :class:`Requeued`.

    ``unmoved``: the acceptance command is not rerun because the tree to land
    is the one already checked; if the base moved since that was decided, the
    lane goes back to the queue, to be rebased and rechecked.
    """
    stage = txn.cur
    rec = StageRecord(stage)
    assert stage is not None
    if unmoved and worktrees.base_moved(txn.ctx.work, rec.base):
        stage.update(merge="queued", merge_onto=None)
        txn.log_extra.append(f"{rec.base} moved while {rec.id} was about to land; it will be rebased "
                             "and checked again on a later tick")
        return Requeued()
    rebased = worktrees.rebase(txn.ctx.work, rec.base)
    if rebased.conflicts:
        txn.log_extra.append(f"stage {rec.id} does not merge onto {rec.base}: conflicts in "
                             f"{outcomes.conflicts_shown(rebased.conflicts)}; {rec.base} left as it was, "
                             f"{rec.worktree} kept for review")
        return Conflict(list(rebased.conflicts))
    rec.merge_onto = rebased.onto
    return None


def _land(txn: Txn) -> Any:
    """Fast-forward the base branch to the rebased lane and remove the lane: :class:`Landed`, or
    :class:`Requeued` when the base moved meanwhile (rebased again on a later tick)."""
    stage = txn.cur
    rec = StageRecord(stage)
    assert stage is not None
    repo = (txn.base_ctx or txn.ctx).repo
    head = gitops.head_sha(txn.ctx.work)
    onto = rec.merge_onto
    if not head or not onto or not worktrees.land(repo, rec.base, head, onto):
        stage.update(merge="queued", merge_onto=None)
        txn.log_extra.append(f"{rec.base} moved while {rec.id} was being merged; it will be rebased "
                             "again on a later tick")
        return Requeued()
    # head == onto: nothing of its own to land, or it landed already (a tick killed before it could record
    # so, after the commit it had recorded)
    landed = head != onto or rec.commit == head
    rec.commit = head if landed else None
    said = (f"stage {rec.id} landed on {rec.base} as {head[:12]}" if landed else
            f"stage {rec.id} had nothing to land on {rec.base}")
    _finish(txn, "completed", None)
    state.save_state(txn.ctx.paths, txn.state)  # landed: recorded before its lane is taken apart
    try:
        removed = worktrees.remove(repo, Path(rec.worktree), rec.branch)
        txn.log_extra.append(f"{said}; removed its worktree and branch" if removed else said)
        rec.worktree = None
    except UserError as exc:
        txn.log_extra.append(f"{said}; could not remove its worktree ({exc.message}); "
                             "'autometta tick --repair' removes it")
    return Landed()


def _rebrief(txn: Txn, brief: Dict[str, Any]) -> None:
    """Save what the re-briefed worker is told, archive the round's envelope and verdict, reset the round."""
    stage = txn.cur
    rec = StageRecord(stage)
    assert stage is not None
    stage_id = rec.id
    paths = txn.ctx.paths
    card = load_card(txn.ctx, stage_id)
    files.ensure_dir(paths.rebriefs)
    files.atomic_write(paths.rebrief(stage_id, brief["loop"]),
                       secrets.redact(rebrief_text(txn.ctx, stage, card, brief)), mode=0o600)
    envelope.archive(paths, stage_id, txn.now)
    bookkeeping.rebrief(stage, brief["loop"])
    txn.log_extra.append(f"re-brief for {stage_id} saved as {paths.rebrief(stage_id, brief['loop'])}")


def rebrief_text(ctx: RepoContext, stage: Dict[str, Any], card: Any, brief: Dict[str, Any]) -> str:
    """The Markdown appended to the worker's prompt for loop ``brief['loop']``."""
    rec = StageRecord(stage)
    stage_id = rec.id
    paths = ctx.paths
    lines = [f"# Re-brief: loop {brief['loop']} of {brief['of']} for stage {stage_id}", ""]
    evidence = brief.get("verdict") or {}
    if brief["reason"] == "acceptance_failed":
        command = card.acceptance_command if card is not None else None
        lines += [f"Your previous round was not accepted: the acceptance command `{command}` exited "
                  f"{evidence.get('exit_code')}. The end of its output "
                  f"({paths.log(stage_id, 'acceptance')}):", "", "```",
                  _tail(paths.log(stage_id, "acceptance")), "```"]
    else:
        lines += [f"Your previous round was not accepted: the verifier ({rec.verifier}) gave FAIL.", "",
                  "## Failing criteria", ""]
        failing = [c for c in evidence.get("criteria") or [] if isinstance(c, dict) and c.get("verdict") != "PASS"]
        for criterion in failing:
            lines.append(f"- {criterion.get('id')}. {criterion.get('name')}: {criterion.get('verdict')}. "
                         f"Evidence: {criterion.get('evidence')}")
        if not failing:
            lines.append("- (the verdict named no failing criterion; see its findings)")
        findings = evidence.get("additional_findings")
        if findings:
            lines += ["", "## Additional findings", "", str(findings)]
    lines += ["", "The work tree still holds your previous changes. Fix what is listed above, keep what "
              "already works, and write a new handoff envelope to "
              f"`{paths.handoff(stage_id)}` when you are done (the old one was archived).", ""]
    return "\n".join(lines)


def _tail(path: "os.PathLike[str]", limit: int = 4000) -> str:
    text = read_log(path)
    return text[-limit:].rstrip("\n") or "(no output)"


def _launch(txn: Txn, role: str) -> None:
    stage = txn.cur
    rec = StageRecord(stage)
    assert stage is not None
    card = load_card(txn.ctx, rec.id)
    if card is None:
        raise UserError(f"stage card for {rec.id} not found")
    if role == "verifier":  # its own verdict path, on disk before it starts (an adopted verifier's counts too)
        verdicts.begin_stage(txn.ctx.paths, stage, txn.now)
        state.save_state(txn.ctx.paths, txn.state)
    session = sessions.prepare(txn.ctx, stage, card, role)  # resume the worker's own session, or not
    launched = start(txn.ctx, stage, card, role, run_id=runs.mark_of(stage, role), session=session)
    bookkeeping.started(stage, role, launched.pid, launched.started)
    said = sessions.started(stage, session, txn.now)
    if said:
        txn.log_extra.append(said)
    route = auth.route_summary(txn.ctx.environ, txn.ctx.manifest, identity_for(stage, role), role,
                               txn.ctx.paths.manifest)
    confined = privilege_summary(txn.ctx, identity_for(stage, role), role, card)
    txn.log_extra.append(f"{role} pid {launched.pid} started for {rec.id}" + (f" ({route})" if route else "")
                         + (f" [{confined}]" if confined else ""))


def _commit(txn: Txn, headline: str) -> Optional[str]:
    stage = txn.cur
    rec = StageRecord(stage)
    assert stage is not None
    found = stagecommit.landed(txn.ctx, stage)  # committed by a tick that was killed before recording it
    if found:
        stage.update(commit=found, commit_from=None, **{runs.key(runs.COMMIT): None})
        txn.log_extra.append(f"stage {rec.id} PASS: found its commit {found[:12]}, made by a tick that "
                             "was interrupted before recording it")
        return found
    # Commits the agents made since the claim are folded into the stage's one commit,
    # so the secret scan sees them and the branch gets one commit per stage.
    exclude: List[str] = []
    if rec.worktree and rec.base:
        folded, where = worktrees.fold_commits(txn.ctx.work, rec.base), rec.branch
    else:
        folded, where = isolation.fold_since_claim(txn.ctx.work, stage), rec.claim_branch
        exclude = isolation.unchanged_since(txn.ctx.paths, stage)
        if exclude:
            txn.log_extra.append(f"left out of {rec.id}'s commit, as they were already changed at the claim "
                                 f"and still are as they were: {', '.join(exclude[:5])}"
                                 + (f" and {len(exclude) - 5} more" if len(exclude) > 5 else ""))
    if folded:
        txn.log_extra.append(f"folded {folded} commit(s) the agents made on {where} into the stage's commit")
    # On disk before git starts: where the commit will be, and the mark its git (and hooks) carry,
    # so a tick killed during the commit leaves a commit the next one finds, or waits for.
    # A stage is queued to merge only once committed: on disk it is not yet.
    rec.commit_from = gitops.head_sha(txn.ctx.work)
    mark = runs.claim(stage, runs.COMMIT)
    queued = rec.merge
    if queued:
        rec.merge = None
    state.save_state(txn.ctx.paths, txn.state)
    if queued:
        rec.merge = queued
    try:
        sha = stagecommit.commit_accepted(txn.ctx, stage, headline, exclude=exclude,  # scan, author, ...
                                           run_id=mark)
    finally:
        stage.update(commit_from=None, **{runs.key(runs.COMMIT): None})
    rec.commit = sha
    if sha:
        txn.log_extra.append(f"stage {rec.id} PASS: committed worker output as {sha[:12]} "
                             f"with --author={git_author(identity_for(stage, 'worker'))}")
    else:
        txn.log_extra.append(f"stage {rec.id} PASS: nothing to commit outside state/")
    return sha


# ------------------------------------------------------------------ one handler an effect

def _quarantine(txn: Txn, what: str) -> None:
    """Move the stage's invalid envelope or partial verdict aside as ``.invalid.json`` (the books follow)."""
    stage = txn.cur
    rec = StageRecord(stage)
    if stage is None:
        return
    paths = txn.ctx.paths
    src = paths.handoff(rec.id) if what == "envelope" else verdicts.current_path(paths, stage)
    if src is not None and src.exists():
        dest = (paths.handoffs / f"{rec.id}.invalid.json" if what == "envelope"
                else src.with_name(src.name + ".invalid.json"))
        os.replace(src, dest)
        digests.moved(paths, [(src, dest)])


def _save_artefact(txn: Txn, doc: Dict[str, Any]) -> None:
    stage = txn.cur
    rec = StageRecord(stage)
    if stage is None:
        return
    paths = txn.ctx.paths
    scan.secrets_for(txn.ctx, [stage])  # the books' copy of the verdict masks a key its headline quotes
    verdicts.store(paths, rec.id, doc, verdicts.run_of(paths, rec.id, stage))
    rec.verifier_artefact = RepoPaths.verifier_artefact_rel(rec.id)


def _record_tree(txn: Txn) -> None:
    stage = txn.cur
    rec = StageRecord(stage)
    if stage is not None:
        rec.worker_tree = gitops.worktree_fingerprint(txn.ctx.work)


def _set(txn: Txn, key: str, value: Any) -> None:
    stage = txn.cur
    if stage is not None:
        stage[key] = value


def _adopt(txn: Txn, role: str, pid: int, started: Optional[float]) -> None:
    stage = txn.cur
    if stage is not None:
        bookkeeping.started(stage, role, pid, started)


def _start(txn: Txn, role: str) -> Optional[Failed]:
    """Start ``role``; what is decided so far, and the new run's mark, are on disk first.

    A tick killed after the spawn then leaves a run the next tick finds by
    its mark and adopts (never a twin); killed before it, nothing carries the
    mark and it starts afresh.
    """
    stage = txn.cur
    if stage is not None:
        runs.claim(stage, role)
    state.save_state(txn.ctx.paths, txn.state)
    try:
        _launch(txn, role)
    except UserError as exc:
        if stage is not None:  # whatever did start of it is stopped; nothing adopts it
            runs.terminate(stage, role)
            stage[runs.key(role)] = None
        return Failed(f"could not start the {role}", exc.message, exc_marker(exc))
    return None


def _create_worktree(txn: Txn) -> Optional[Failed]:
    try:
        _worktree(txn)
    except UserError as exc:
        return Failed("could not create the worktree", exc.message, exc_marker(exc))
    return None


def _record_claim(txn: Txn) -> Optional[Failed]:
    stage = txn.cur
    if stage is None:
        return None
    try:
        txn.log_extra.append(isolation.record_claim(txn.ctx.paths, stage))
    except UserError as exc:
        return Failed("could not record the tree at the claim", exc.message, exc_marker(exc))
    return None


def _merge(txn: Txn, unmoved: bool) -> Any:
    try:
        return _rebase(txn, unmoved)
    except UserError as exc:  # git failed, with no conflict to name
        return Failed("merge failed", exc.message, exc_marker(exc))


def _land_lane(txn: Txn) -> Any:
    try:
        return _land(txn)
    except UserError as exc:
        return Failed("merge failed", exc.message, exc_marker(exc))


def _commit_stage(txn: Txn, headline: str) -> Optional[Failed]:
    try:
        _commit(txn, headline)
    except scan.SecretInDiff as exc:
        return Failed("commit refused by the secret scan", exc.message, exc.marker, secret=True)
    except UserError as exc:
        return Failed("commit failed", exc.message, exc_marker(exc))
    return None


def exc_marker(exc: UserError) -> Optional[str]:
    """The marker an error names itself (a declared field of autometta.errors.UserError), if any."""
    return exc.marker


#: Each effect record's handler: it does the work, and returns a :class:`Failed`, a merge's or landing's
#: result, or None.
HANDLERS: Dict[type, Callable[..., Any]] = {
    d.Claim: lambda txn, e: _claim(txn, e.stage_id),
    d.ClearCurrent: lambda txn, e: txn.state.update(current_stage=None),
    d.Account: lambda txn, e: _account(txn, e.role),
    d.RecordTree: lambda txn, e: _record_tree(txn),
    d.Quarantine: lambda txn, e: _quarantine(txn, e.what),
    d.SaveArtefact: lambda txn, e: _save_artefact(txn, e.doc),
    d.Kill: lambda txn, e: _kill(txn, e.role),
    d.Park: lambda txn, e: _park(txn, e.until, e.reason, e.route),
    d.Unpark: lambda txn, e: _unpark_repo(txn, e.route),
    d.Rebrief: lambda txn, e: _rebrief(txn, e.brief),
    d.Set: lambda txn, e: _set(txn, e.key, e.value),
    d.Adopt: lambda txn, e: _adopt(txn, e.role, e.pid, e.started),
    d.Launch: lambda txn, e: _start(txn, e.role),
    d.Worktree: lambda txn, e: _create_worktree(txn),
    d.RecordClaim: lambda txn, e: _record_claim(txn),
    d.Merge: lambda txn, e: _merge(txn, e.unmoved),
    d.Land: lambda txn, e: _land_lane(txn),
    d.Commit: lambda txn, e: _commit_stage(txn, e.headline),
}


def apply(txn: Txn, decision: d.Decision) -> str:
    """Apply ``decision`` to the in-memory documents; effects happen in order."""
    if txn.dry:
        from . import dryrun

        return dryrun.apply(txn, decision)
    finish = decision.finish
    for effect in decision.effects:
        stage = txn.cur
        result = HANDLERS[type(effect)](txn, effect)
        if isinstance(result, Failed):
            status, marker = outcomes.failed_effect(effect.name, getattr(effect, "role", None), result.marker,
                                                    result.secret)
            txn.log_extra.append(f"{result.what} for {StageRecord(stage).id if stage else '?'}: {marker}: {result.why}")
            finish = (status, secrets.redact(f"{marker}: {result.why}")[:300])
            break  # the effects after it assumed it would work
        if isinstance(result, Conflict):
            finish = outcomes.merge_conflict(result.files)
            break  # the lane does not land: nothing after it runs
        if isinstance(result, Requeued):
            break  # back in the queue: nothing after it runs
        if isinstance(result, Landed):
            finish = ("completed", None)
    if finish:
        _finish(txn, *finish)
    if decision.halt:
        bookkeeping.halt(txn.state, txn.budget, decision.halt, txn.now)
    if decision.transition and (not decision.halt or decision.effects):
        bookkeeping.transition(txn.state, txn.budget, txn.now)
    return finish[0] if finish else decision.kind


def settle_kills(txn: Txn) -> bool:
    """SIGKILL process groups that survived the SIGTERM of an earlier tick."""
    kills = txn.state.get("pending_kills") or []
    if not kills:
        return False
    for entry in kills:
        if isinstance(entry, dict):
            runs.settle(entry)
    txn.state["pending_kills"] = []
    return True

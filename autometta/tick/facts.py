"""Observe one repo for the tick: the facts :func:`autometta.tick.decide.decide` needs.

Only cheap observations happen here (file reads, stats, signal-0 checks);
anything that costs a git call is handed to decide() as a callable, so an
idle repo costs no subprocess at all.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from .. import card as cards, families, sessions, verdicts
from ..agents import liveness, runs
from ..agents.logwriter import read_log, run_log
from ..agents.provision import identity_for, preflight
from ..agents.roles import ROLES
from ..agents.spawn import read_exit
from ..books import ledger, parking
from ..books.state import find_stage, unmet_dependencies
from ..envelope import artefact_from_message, judge_artefact_doc, read_envelope
from ..errors import UserError
from ..git import gitops, scopegate, stagecommit, worktrees
from ..paths import RepoPaths
from ..repo import RepoContext
from ..stageid import STAGE_ID_RE
from ..stagerecord import StageRecord
from ..timeutil import parse_iso
from .decide import DEFAULT_BUDGET_SECONDS, DEFAULT_PARK_SECONDS, Facts, InFlight, Pending, Proc

def load_card(ctx: RepoContext, stage_id: str) -> Optional[cards.Card]:
    path = cards.find_card(ctx.repo, stage_id, cards.card_globs(ctx.repo, ctx.manifest))
    if path is None:
        return None
    return cards.parse_card(path)


def max_loops(ctx: RepoContext, card: cards.Card) -> int:
    """Worker rounds a stage may take: the card's ``Max loops``, else the manifest's ``max_loops``, else 1."""
    value = card.max_loops if card.max_loops is not None else ctx.manifest.get("max_loops")
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 1 else 1


def _family(identity: str) -> Optional[families.Family]:
    try:
        return families.for_identity(identity)
    except UserError:
        return None


def observe_proc(ctx: RepoContext, stage: Dict[str, Any], stage_id: str, role: str, now: float) -> Proc:
    rec = StageRecord(stage)
    pid = rec.pid(role)
    if not pid:
        return Proc()
    started = rec.started(role)
    # The runner first: while it runs, the run is not over, whatever a file under state/ says (an
    # agent can write its own "exit record"); the runner writes its record as the last thing it does.
    alive = liveness.is_alive(int(pid), started)
    exit_record = None if alive else read_exit(ctx.paths.exit_record(stage_id, role))
    lost = runs.lost(stage, role, alive, exit_record)
    if started is None:  # a bash-era stage: only the claim time is known
        started = parse_iso(rec.started_at or "")
    elapsed = now - started if started else None
    usage = limit = log_forged = None
    if not alive and role in ("worker", "verifier"):
        family = _family(identity_for(stage, role))
        if family is not None:
            # only what its runner wrote: a usage line, session id or limit message of the agent's own is not read
            text, log_forged = run_log(ctx.paths.log(stage_id, role), exit_record)
            if log_forged is None:
                usage = sessions.own_usage(family, stage, role, family.parse_usage(text))  # a resumed run's own
                limit = family.usage_limit((exit_record or {}).get("exit_code"), text)
    return Proc(pid=int(pid), alive=alive, elapsed=elapsed, exit=exit_record, usage=usage, limit=limit, lost=lost,
                log_forged=log_forged)


def in_flight(ctx: RepoContext, state: Dict[str, Any], stage_id: str, now: float) -> InFlight:
    stage = find_stage(state, stage_id)
    if stage is None:
        return InFlight(stage=None)
    try:
        card = load_card(ctx, stage_id)
    except UserError:
        card = None
    c = InFlight(stage=stage, card_found=card is not None)
    rec = c.record
    if card is not None:
        c.worker_budget, _ = cards.budget_seconds(card, "worker")
        c.verifier_budget, _ = cards.budget_seconds(card, "verifier")
        c.acceptance_command = card.acceptance_command
        c.headline = card.summary
        c.max_loops = max_loops(ctx, card)
    else:
        c.worker_budget = c.verifier_budget = DEFAULT_BUDGET_SECONDS
    c.routes = {role: parking.route_for(ctx, stage, role) for role in ("worker", "verifier")}
    c.lane = bool(rec.worktree)
    if c.lane:
        c.setup_command = worktrees.setup_command(ctx.manifest)
        c.worktree_missing = not Path(str(rec.worktree), ".git").exists()
    for role in ROLES:
        setattr(c, role, observe_proc(ctx, stage, stage_id, role, now))
    run, legacy = verdicts.run_of(ctx.paths, stage_id, stage), verdicts.is_legacy(stage)
    c.artefact = verdicts.read(ctx.paths, stage_id, run, legacy=legacy)  # only the verdict of autometta's run
    if not rec.merge:  # accepted and committed on its branch: its verdict is stored already
        started = verdicts.run_started(ctx.paths, stage_id, run, rec.verifier_pid)
        c.forged = verdicts.forged(ctx.paths, stage_id, run, started=started, legacy=legacy)
    c.headline = stagecommit.headline(c.headline, c.artefact.doc)
    if rec.worker_pid and not c.worker.alive:
        c.envelope = read_envelope(ctx.paths.handoff(stage_id), stage_id)
        if c.envelope.kind == "missing":
            c.worker_diagnosis = worker_diagnosis(ctx.paths, stage_id, identity_for(stage, "worker"),
                                                  c.worker.exit or {})
    if not rec.verifier_pid:
        c.worker_leftover = verdicts.worker_run_alive(ctx.paths, stage_id) if not c.worker.alive else None
    elif (run is not None or legacy) and not c.verifier.alive and c.artefact.kind == "missing":
        family = _family(identity_for(stage, "verifier"))
        if family is not None:
            doc = artefact_from_message(family.final_message(read_log(ctx.paths.log(stage_id, "verifier"))))
            if doc is not None:
                c.message_artefact = judge_artefact_doc(doc, stage_id, "the verifier's final message")
                c.headline = stagecommit.headline(c.headline, doc)
    c.tree_now = lambda: gitops.worktree_fingerprint(ctx.work)
    c.scope = lambda: scopegate.problem(ctx, stage, card)
    for role in ROLES:  # a run claimed (marked) before a spawn whose pid was never recorded
        orphan = runs.orphan(ctx.paths, stage, role)
        if orphan is not None:
            c.orphans[role] = orphan
    c.commit_running = runs.commit_running(stage, now)
    return c


def worker_diagnosis(paths: RepoPaths, stage_id: str, identity: str, record: Dict[str, Any]) -> Optional[str]:
    """Why a worker that left no handoff could not run, from its exit ``record`` and its log; None if unknown.

    The tick and ``autometta dispatch --wait`` (autometta.manual) both ask here.
    """
    if record.get("timed_out"):
        return "worker_timeout"
    family = _family(identity)
    if family is None:
        return None
    return family.diagnose(record.get("exit_code"), read_log(paths.log(stage_id, "worker")))


def pending_queue(ctx: RepoContext, state: Dict[str, Any], parks: Optional[Dict[str, Any]] = None,
                  now: float = 0.0) -> List[Pending]:
    """Pending stages in queue order up to the first claimable one (whose dependencies completed and whose
    worker's billing route is not parked).

    Cards are read for the stages passed over only; the preflight is run for the claimable one.
    """
    out: List[Pending] = []
    for stage in state.get("stages") or []:
        rec = StageRecord(stage) if isinstance(stage, dict) else None
        if rec is None or rec.status != "pending":
            continue
        stage_id = str(rec.id)
        try:
            card = load_card(ctx, stage_id) if STAGE_ID_RE.match(stage_id) else None
        except UserError:
            card = None
        worker = identity_for(stage, "worker")
        waits = unmet_dependencies(card.depends_on, state) if card is not None else []
        route = parking.route_for(ctx, stage, "worker")
        if waits or parking.active(parks or {}, route, now) is not None:
            out.append(Pending(stage_id=stage_id, worker=worker, waits_for=waits, route=route))
            continue
        out.append(Pending(stage_id=stage_id, card_found=card is not None, worker=worker, route=route,
                           preflight=preflight(ctx, worker, card=card) if card is not None else None))
        break
    return out


def park_seconds(ctx: RepoContext) -> int:
    """The manifest's ``usage_limit_backoff`` (seconds), else the default."""
    value = ctx.manifest.get("usage_limit_backoff")
    ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
    return value if ok else DEFAULT_PARK_SECONDS


def _facts(ctx: RepoContext, budget: Dict[str, Any], state: Dict[str, Any], now: float) -> Facts:
    return Facts(repo=str(ctx.repo), budget=budget, state=state, now=now, park_seconds=park_seconds(ctx),
                 max_parallel=ctx.max_parallel, parks=parking.load(ledger.home_of(ctx)))


def gather(ctx: RepoContext, budget: Dict[str, Any], state: Dict[str, Any],
           now: Optional[float] = None) -> Facts:
    """The facts for the stage in the repo's own tree (``current_stage``), or for a claim into it."""
    now = time.time() if now is None else now
    facts = _facts(ctx, budget, state, now)
    facts.in_tree = True
    current = state.get("current_stage")
    if isinstance(current, str) and STAGE_ID_RE.match(current):
        facts.cur = in_flight(ctx, state, current, now)
    elif current is None:
        facts.queue = pending_queue(ctx, state, facts.parks, now)
    return facts


# ------------------------------------------------------------------ lanes

def lane_context(ctx: RepoContext, stage: Dict[str, Any]) -> RepoContext:
    """``ctx`` with the agents working in the stage's worktree."""
    return ctx.replace(workdir=Path(str(StageRecord(stage).worktree)))


def gather_lane(ctx: RepoContext, budget: Dict[str, Any], state: Dict[str, Any], stage: Dict[str, Any],
                now: float, merge_busy: bool) -> Facts:
    """The facts for one parallel stage; ``ctx`` is its lane_context()."""
    facts = _facts(ctx, budget, state, now)
    rec = StageRecord(stage)
    facts.cur = in_flight(ctx, state, str(rec.id), now)
    facts.cur.merge_busy = merge_busy
    base = str(rec.base or "")
    if base and rec.merge:
        # Landing moves the main tree only when the base branch is checked out there, and only
        # the files the stage changes: those must not be changed there too.
        facts.dirty = lambda: worktrees.collisions(ctx.repo, ctx.work, base)
        cur = facts.cur
        cur.recheck = lambda: worktrees.base_moved(ctx.work, base) or cur.tree_now() != rec.worker_tree
    return facts


def gather_claim(ctx: RepoContext, budget: Dict[str, Any], state: Dict[str, Any], now: float,
                 lanes_in_flight: int, in_tree: bool = False) -> Facts:
    """The facts for claiming a stage into a free lane (into the repo's own tree with ``in_tree``)."""
    facts = _facts(ctx, budget, state, now)
    facts.lanes_in_flight, facts.setup_command = lanes_in_flight, worktrees.setup_command(ctx.manifest)
    facts.in_tree = in_tree
    facts.queue = pending_queue(ctx, state, facts.parks, now)
    return facts

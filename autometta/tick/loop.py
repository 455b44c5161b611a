"""``autometta tick``: visit each subscribed repo and move its stages one step.

The thin shell around :mod:`autometta.tick.decide`: take the repo's lock, load
and check its files, observe, decide, apply the decision's effects
(:mod:`autometta.tick.effects`), write state and budget once, log a line per
decision, snapshot the state to the ``phat-controller/state`` ref. Each
stage in flight makes one transition a tick (a stage accepted just now also
merges in the same tick when no other did), then free slots claim the next
stages: at ``max_parallel`` 1 as above it, each into a worktree of its own
(autometta.git.isolation). One repo's failure is logged and never stops the
others.
"""

from __future__ import annotations

import os
import sys
import time
from collections import namedtuple

from .. import files, home, logretention, manifest, ticklog
from ..agents import registry
from ..books import budget as budgets, digests, ledger, state
from ..errors import UserError
from ..git import isolation
from ..paths import HomePaths, RepoPaths
from ..repo import RepoContext
from ..ticklog import TickLog
from ..timeutil import now_iso
from . import idle, turns

TYPE_CHECKING = False  # not typing's: an idle tick and status import no typing (tests/test_startup.py)
if TYPE_CHECKING:  # imported where a repo has work: an idle one needs none of them (autometta/tick/idle.py)
    from typing import Any, Callable, Dict, List, Optional, Tuple

    from . import decide as d
    from . import effects

#: State files committed to the snapshot ref after each transition.
SNAPSHOT_FILES = ("state/state.yaml", "state/budget.json", "state/verifiers", "state/handoffs")


class Outcome(namedtuple("Outcome", "repo message kind error worked", defaults=("noop", False, False))):
    __slots__ = ()
    repo: str
    message: str
    kind: str
    error: bool
    #: The visit made a transition: the repo took a turn under ``max_per_fire`` (autometta.tick.turns).
    worked: bool


def _load_state(paths: RepoPaths, log: Callable[[str], None],
                text: Optional[str] = None) -> Optional[Dict[str, Any]]:
    """state.yaml (``text``, as the books audit read it), restored from ``.bak`` when corrupt; None when neither is usable."""
    try:
        return state.load_state(paths, text)
    except UserError as exc:
        backup = state.load_backup(paths)
        if backup is None:
            log(f"state-integrity: {exc.message}; no valid .bak")
            return None
        kept = ""
        if paths.state_yaml.is_file() and not paths.state_yaml.is_symlink():
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
            corrupt = paths.state_yaml.with_name(f"state.yaml.corrupt-{stamp}")
            os.replace(paths.state_yaml, corrupt)  # kept for review, never silently lost
            digests.forget(paths, [paths.state_yaml])
            kept = f"; the broken file is kept as {corrupt.name}"
        state.save_state(paths, backup)
        log(f"state-integrity: {paths.state_yaml} was corrupt/empty ({exc.message}); restored from .bak{kept}")
        return backup


def process_repo(ctx: RepoContext, log: Callable[[str], None], now: Optional[float] = None) -> Outcome:
    paths = ctx.paths
    repo = str(paths.root)
    if _bash_lock_held(paths):
        log(f"tick already in progress for {repo} (bash lock), skipping")
        return Outcome(repo, "locked", "locked")
    try:
        with files.locked(paths.lock, timeout=0):
            return _process_locked(ctx, log, now)
    except files.LockBusy:
        log(f"tick already in progress for {repo}, skipping")
        return Outcome(repo, "locked", "locked")


def _bash_lock_held(paths: RepoPaths) -> bool:
    pid_file = paths.bash_lock_dir / "pid"
    if not os.path.lexists(pid_file):
        return False  # no bash tick: liveness is not imported for none (every tick asks)
    from ..agents import liveness

    pid = liveness.pid_in(pid_file)
    return pid is not None and liveness.is_alive(pid)


def _event_message(decision: d.Decision, extra: List[str]) -> str:
    """What an event says happened: the decision, and what applying it found (a conflict, a failed commit)."""
    return "; ".join([decision.message, *extra[-1:]])


def _said(log: Callable[[str], None], key: str, decision: d.Decision) -> None:
    """The decision's line; one that changes nothing is written once while it repeats (:mod:`.ticklog`)."""
    _say(log, key, decision.message, bool(decision.transition or decision.halt))


def _say(log: Callable[[str], None], key: str, message: str, transition: bool) -> None:
    if isinstance(log, ticklog.RepoLog):
        log.decision(key, message, transition)
    else:
        log(message)


def _events_for(txn: effects.Txn, decision: d.Decision, kind: str, stage_id: Optional[str]) -> List[tuple]:
    """The human-facing events one applied decision raises."""
    from ..observe import events
    from ..stagerecord import StageRecord

    out = []
    if kind in state.TERMINAL and stage_id:
        rec = StageRecord(state.find_stage(txn.state, stage_id) or {})
        out.append((f"stage_{kind}", {"stage_id": stage_id, "status": kind,
                                      "marker": rec.stall_marker, "commit": rec.commit}))
        if not any(s.get("status") in ("pending", "in_progress") for s in txn.state.get("stages") or []):
            out.append(("queue_drained", events.drained_fields(txn.state, str(txn.ctx.paths.root))))
    if decision.halt:
        out.append(("repo_halted", {"reason": decision.halt}))
    return out


def _process_locked(ctx: RepoContext, log: Callable[[str], None], now: Optional[float]) -> Outcome:
    paths = ctx.paths
    repo = str(paths.root)
    now = time.time() if now is None else now
    audited = _audit(paths, log, now)  # the books first: a file changed behind our back halts the repo
    if audited.tampered:
        from ..observe import events

        events.emit(ctx.home, paths, "repo_halted", {"reason": audited.halt_reason, "repo": repo,
                                                      "message": f"halted {repo} due to {audited.halt_reason}"})
        return Outcome(repo, f"halted {repo} due to {audited.halt_reason}", "halt", worked=True)
    # unreadable: UserError -> this repo errors, nothing is written
    b = budgets.load_budget(paths, audited.text(paths.budget, paths))
    doc = _load_state(paths, log, audited.text(paths.state_yaml, paths))
    if doc is None:
        if b.get("halted"):
            _say(log, "serial", f"halted {repo} (reason already recorded: {b.get('halt_reason')})", False)
            return Outcome(repo, "halted", "halted")
        b.update(halted=True, halt_reason="state-corrupt", halted_at=now_iso(now))
        budgets.save_budget(paths, b)
        log(f"halted {repo} due to state-corrupt")
        return Outcome(repo, "state-corrupt", "halt")
    # runs booked by hand since (the full path folds them into the budget, and may halt on a cap) go that way
    quiet = None if ledger.pending(ledger.home_of(ctx), paths.root, b) else idle.message(repo, doc, b)
    if quiet is not None:  # nothing queued or in flight: said without importing what moves stages
        _heartbeat(ctx, now, log)
        _say(log, "claim", quiet, False)  # as the full path says its claim's idle decision
        return Outcome(repo, quiet, "wait")
    from . import effects

    txn = effects.Txn(ctx=ctx, state=doc, budget=b, now=now, base_ctx=ctx, tree=ctx.isolation == isolation.TREE)
    settled = effects.settle_kills(txn)
    _heartbeat(ctx, now, log)
    from . import failures

    try:
        outcome = _process(txn, log, settled)
    except Exception as exc:
        failures.record(txn, exc, log)  # the same error tick after tick stops its stage (transition_failed)
        raise
    failures.clear(txn)
    return outcome


def _audit(paths: RepoPaths, log: Callable[[str], None], now: float) -> digests.Audit:
    """The books' audit, with state's and budget's parsers handed in; a file changed behind autometta's
    back while a stage was in flight (restored by the audit) halts the repo on the restored books."""
    parsers = {paths.state_yaml: state.parse_state, paths.state_backup: state.parse_state,
               paths.budget: budgets.parse_budget}
    audited = digests.audit(paths, log, now=now, parsers=parsers)
    if not audited.tampered:
        return audited
    reason = audited.halt_reason
    try:
        b = budgets.load_budget(paths, audited.text(paths.budget, paths))
        if not (b.get("halted") and str(b.get("halt_reason") or "").startswith(digests.TAMPERED_MARKER)):
            b.update(halted=True, halt_reason=reason, halted_at=now_iso())
            budgets.save_budget(paths, b)
        doc = state.load_state(paths, audited.text(paths.state_yaml, paths))
        doc.update(halted=True, halt_reason=b.get("halt_reason"))
        state.save_state(paths, doc)
    except UserError as exc:  # the restored books cannot be read: the tick reports it as for any repo
        print(f"autometta: {exc.message}", file=sys.stderr)
    for path in (paths.state_yaml, paths.budget):
        audited.reread(path, paths)
    log(f"halted {paths.root} due to {reason}: nothing the changed file(s) said is honoured; review them, "
        "then 'autometta tick --reset-halt'")
    return audited


def _heartbeat(ctx: RepoContext, now: float, log: Callable[[str], None]) -> None:
    """Classify agents, retire exited ones, raise agent_stuck (where an agent was ever registered)."""
    if registry.in_use(ctx.paths):
        from ..observe import heartbeat

        heartbeat.for_tick(ctx.home, ctx.paths, now, log)


def _process(txn: effects.Txn, log: Callable[[str], None], settled: bool) -> Outcome:
    """One transition per stage in flight, one merge at most, then claims until max_parallel are in flight.

    A stage in the repo's own tree (``current_stage``: ``isolation: tree``, or
    one the bash version claimed) goes first and alone: nothing is claimed
    beside it. Every other stage, at ``max_parallel`` 1 too, is a lane in a
    worktree of its own. Each decision sees the budget as the ones before it
    left it, so a cap reached by one stage's accounting stops every later
    dispatch this tick.
    """
    from . import decide as d
    from . import effects
    from . import facts
    from ..observe import events
    from ..stagerecord import StageRecord

    ctx, paths = txn.ctx, txn.ctx.paths
    repo = str(paths.root)
    before_budget = dict(txn.budget)
    ledger.fold(ledger.home_of(ctx), paths.root, txn.budget)  # runs booked by hand count against the caps too
    transitions, messages, kinds = 0, [], []
    raised: List[tuple] = []

    def run(decision: d.Decision, stage_id: Optional[str]) -> None:
        nonlocal transitions
        kind = effects.apply(txn, decision)
        stage_id = stage_id or txn.focus
        _said(log, stage_id or "claim", decision)
        for extra in txn.log_extra:
            log(extra)
        said = _event_message(decision, txn.log_extra)
        txn.log_extra.clear()
        transitions += 1 if decision.transition else 0
        messages.append(decision.message)
        kinds.append(kind)
        raised.extend((event, dict(fields, message=said)) for event, fields in _events_for(txn, decision, kind, stage_id))

    def stops(decision: d.Decision) -> bool:
        return bool(decision.halt) or decision.stops_repo

    stopped = False
    current = txn.state.get("current_stage")
    if current is not None:  # a stage in the repo's own tree
        txn.ctx, txn.focus = ctx, None
        txn.facts = _seen(txn, facts.gather(ctx, txn.budget, txn.state, txn.now))
        decision = d.decide(txn.facts)
        run(decision, current if isinstance(current, str) else None)
        stopped = stops(decision)
    merged = any(s.get("merge") == "checking" for s in state.lane_stages(txn.state))
    for stage in state.lane_stages(txn.state):
        if stopped or txn.budget.get("halted"):
            break
        rec = StageRecord(stage)
        lane_ctx = facts.lane_context(ctx, stage)
        txn.ctx, txn.focus = lane_ctx, rec.id
        for again in (False, True):
            busy = merged and rec.merge != "checking"
            txn.facts = _seen(txn, facts.gather_lane(lane_ctx, txn.budget, txn.state, stage, txn.now, busy))
            decision = d.decide_lane(txn.facts, rec.id)
            run(decision, rec.id)
            if again:
                kinds.pop(-2)  # the stage's outcome this tick is how its merge went
            merged = merged or decision.merges
            stopped = stops(decision)
            committed = decision.commits
            if stopped or merged or not committed or rec.merge != "queued":
                break
            # Accepted just now and the merge slot is free: it merges now, not a tick later; the
            # commit is on disk first, so a tick killed while landing leaves a stage that knows it.
            if not txn.dry:
                state.save_state(paths, txn.state)
                budgets.save_budget(paths, txn.budget)
    slots = 1 if txn.tree else ctx.max_parallel
    while not stopped and txn.state.get("current_stage") is None:  # nothing is claimed beside a stage in the tree
        in_flight = len(state.lane_stages(txn.state))
        if in_flight >= slots or (txn.tree and in_flight):
            break  # at max_parallel 1 (or in tree mode) the lanes left finish first
        txn.ctx, txn.focus = ctx, None
        txn.facts = _seen(txn, facts.gather_claim(ctx, txn.budget, txn.state, txn.now, in_flight, in_tree=txn.tree))
        decision = d.decide_claim(txn.facts)
        if not decision.transition and not messages:
            run(decision, None)  # nothing else happened: say why the repo is idle
        elif decision.transition or decision.halt:
            run(decision, None)
        if not decision.transition or decision.halt or decision.finish or txn.focus is None \
                or (state.find_stage(txn.state, txn.focus) or {}).get("status") != "in_progress":
            break  # a claim that stopped at once (no worktree, a missing CLI) is one failure a tick
    txn.ctx, txn.focus = ctx, None
    if txn.dry:  # plan mode writes nothing
        raised, settled = [], False
    elif transitions or settled:
        state.save_state(paths, txn.state)
    if txn.budget != before_budget and not txn.dry:
        budgets.save_budget(paths, txn.budget)
    if transitions and not txn.dry:
        _snapshot(ctx, log)
    for event, fields in raised:
        events.emit(ctx.home, paths, event, dict(fields, repo=repo))
    if not messages:
        return Outcome(repo, "no lane work", "wait")
    kind = next((k for k in kinds if k not in ("wait", "noop")), kinds[-1])
    return Outcome(repo, messages[-1] if len(messages) == 1 else "; ".join(messages), kind, worked=transitions > 0)


def _seen(txn: effects.Txn, seen: d.Facts) -> d.Facts:
    """The facts a decision is taken on; in plan mode with git's questions answered without it."""
    if txn.dry:
        from . import dryrun

        dryrun.without_git(seen)
    return seen


def _snapshot(ctx: RepoContext, log: Callable[[str], None]) -> None:
    from .. import scan

    try:
        scan.snapshot_state(ctx, SNAPSHOT_FILES, log)  # a file holding a secret stays out
    except UserError as exc:
        log(f"state snapshot failed for {ctx.repo}: {exc.message}")


def context_for(sub: home.Subscriber, config: Dict[str, Any], hp: Optional[HomePaths] = None) -> RepoContext:
    paths = sub.paths
    repo_manifest = manifest.load_manifest(paths, sub.manifest_path)
    parallel = manifest.max_parallel(repo_manifest, sub.max_parallel)
    return RepoContext(paths=paths, home=hp or HomePaths.from_env(), config=config, manifest=repo_manifest,
                       max_parallel=parallel, isolation=isolation.mode(repo_manifest, parallel, paths.manifest))


def plan_tick(hp: HomePaths, *, repo: Optional[str] = None,
              now: Optional[float] = None) -> Tuple[List[Dict[str, Any]], Optional[int]]:
    """Plan mode (``tick --dry-run``): per repo, in turn order, what the next tick would do (autometta.tick.dryrun).

    Writes nothing, starts no process, runs no git. Returns the plans
    (``repo``, ``lines``, ``worked``) and ``max_per_fire``.
    """
    from . import dryrun

    home.require_home(hp)
    config = home.load_config(hp)
    now = time.time() if now is None else now
    subs = home.tick_order(home.load_subscribers(hp))
    if repo is not None:
        subs = only(subs, repo)
    limit = fire_limit(config)
    plans: List[Dict[str, Any]] = []
    taken = 0
    for sub in visiting_order(subs, turns.load(hp)):
        plan: Dict[str, Any] = {"repo": str(sub.repo_path or sub.file), "lines": [], "worked": False}
        plans.append(plan)
        if sub.error:
            plan["lines"].append(f"skipped: invalid subscriber {sub.file}: {sub.error}")
        elif not sub.enabled:
            plan["lines"].append(f"skipped: not enabled in {sub.file}")
        elif limit is not None and taken >= limit:
            plan["lines"].append(f"waits: max_per_fire ({limit}) is taken by the repos above; its turn comes on a "
                                 "later tick")
        else:
            try:
                plan.update(_plan_repo(context_for(sub, config, hp), now, dryrun))
            except UserError as exc:
                plan["lines"].append(f"error: {exc.message}")
            taken += 1 if plan["worked"] else 0
    return plans, limit


def _plan_repo(ctx: RepoContext, now: float, dryrun: Any) -> Dict[str, Any]:
    paths = ctx.paths
    if _bash_lock_held(paths):
        return {"lines": ["skipped: a bash tick holds state/.tick.lock"], "worked": False}
    if dryrun.lock_held(paths.lock):
        return {"lines": ["skipped: another tick is working on this repo now"], "worked": False}
    tampered = digests.would_tamper(paths)
    if tampered:
        reason = f"{digests.TAMPERED_MARKER}: {', '.join(tampered)}"[:300]
        return {"lines": [f"books: {', '.join(tampered)} changed behind autometta's back while a stage was in "
                          "flight: would set the changed file(s) aside, put back the last copies autometta wrote "
                          f"and halt the repo ({reason}) until 'autometta tick --reset-halt'"], "worked": True}
    import copy

    from . import effects

    b = budgets.load_budget(paths)
    lines: List[str] = []
    try:
        doc = state.load_state(paths)
    except UserError as exc:
        doc = state.load_backup(paths)
        if doc is None:
            if b.get("halted"):
                return {"lines": [f"halted (reason already recorded: {b.get('halt_reason')})"], "worked": False}
            return {"lines": [f"state-integrity: {exc.message}; no valid .bak",
                              "  would halt the repo (state-corrupt)"], "worked": True}
        lines.append(f"state-integrity: {exc.message}; would restore state.yaml from its .bak and go on from it")
    if ledger.pending(ledger.home_of(ctx), paths.root, b):
        lines.append("would add the runs booked in the spend ledger since (by hand, or by a tick that was "
                     "stopped) to budget.json's counters")
    kills = [k.get("pid") for k in doc.get("pending_kills") or [] if isinstance(k, dict)]
    if kills:
        lines.append(f"would SIGKILL what is left of process groups {', '.join(map(str, kills))}, stopped by an "
                     "earlier tick")
    txn = effects.Txn(ctx=ctx, state=copy.deepcopy(doc), budget=copy.deepcopy(b), now=now, base_ctx=ctx,
                      tree=ctx.isolation == isolation.TREE, dry=True)
    outcome = _process(txn, lines.append, settled=False)
    return {"lines": lines, "worked": outcome.worked, "kind": outcome.kind}


def only(subs: List[home.Subscriber], repo: str) -> List[home.Subscriber]:
    """The subscriber of ``repo`` (a path, as given to ``tick --repo``); UserError when it is not subscribed."""
    wanted = os.path.realpath(repo)
    found = [s for s in subs if s.repo_path is not None and os.path.realpath(s.repo_path) == wanted]
    if not found:
        raise UserError(f"{wanted}: not subscribed; run 'autometta subscribe {wanted}'")
    return found


def fire_limit(config: Dict[str, Any]) -> Optional[int]:
    """``max_per_fire``: how many repos one tick works on; None when unset or not a positive number."""
    value = config.get("max_per_fire")
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def turn_key(sub: home.Subscriber) -> str:
    return os.path.realpath(str(sub.repo_path or sub.file))


def _waits_turn(log: TickLog, hp: HomePaths, sub: home.Subscriber, now: Optional[float], message: str) -> None:
    """Say a repo waits for its turn, once while it repeats; what it said on its last visit still stands."""
    repo_log = ticklog.RepoLog(log, hp, sub.repo_path, now)
    kept = {key: said for key, said in repo_log.before.items() if key != "turn"}
    repo_log.before = {key: said for key, said in repo_log.before.items() if key == "turn"}
    repo_log.after.update(kept)
    repo_log.decision("turn", message, False)
    repo_log.close()


def visiting_order(subs: List[home.Subscriber], turns_now: Dict[str, Any]) -> List[home.Subscriber]:
    """Subscribers in turn order (autometta.tick.turns): fewest turns for their weight first, then weight, path."""
    passes = turns_now.get("passes") if isinstance(turns_now.get("passes"), dict) else {}
    view = {"clock": turns_now.get("clock", 0),
            "passes": {str(n): passes[turn_key(s)] for n, s in enumerate(subs) if turn_key(s) in passes}}
    entries = [(str(n), sub.weight, f"{n:08d}") for n, sub in enumerate(subs)]  # subs come in tick order
    return [subs[int(key)] for key in turns.order(entries, view)]


def _new_tick() -> None:
    """Forget which webhooks failed in an earlier tick of this process (none when events was never imported)."""
    events = sys.modules.get(f"{__package__.rpartition('.')[0]}.observe.events")
    if events is not None:
        events.new_tick()


def _dashboard(hp: HomePaths, subs: List[home.Subscriber], log: Callable[[str], None]) -> None:
    """The dashboard's refresh (:func:`.dashboard.refresh`), where an idle tick's restamp needs only
    :mod:`.observe.fresh`, not the module that renders the page."""
    try:
        from ..observe import fresh

        now = time.time()
        if hp.root.is_dir() and fresh.why_stale(hp, subs, now) is None and fresh.restamp(hp, now):
            return
    except Exception:  # noqa: BLE001 - dashboard.refresh says what is wrong, and never raises
        pass
    from ..observe import dashboard

    dashboard.refresh(hp, log)


def _on_path(name: str) -> bool:
    """``shutil.which(name) is not None``, without importing shutil (and the bz2 and lzma it imports), which
    costs an idle tick more than deciding its repos."""
    for folder in os.get_exec_path():
        path = os.path.join(folder, name)
        if os.access(path, os.X_OK) and not os.path.isdir(path):
            return True
    return False


def run_tick(hp: HomePaths, *, repo: Optional[str] = None, echo: bool = True,
             now: Optional[float] = None) -> List[Outcome]:
    log = TickLog(hp, echo=echo)
    home.require_home(hp)
    config = home.load_config(hp)
    _new_tick()
    if not _on_path("git"):
        raise UserError("git not found on PATH; install git (autometta check-deps lists what is missing)")
    ledger.settle_open(hp)  # runs started by hand that ended since: booked before any repo's caps are checked
    subs = every = home.tick_order([s for s in home.load_subscribers(hp)])
    if repo is not None:
        subs = only(subs, repo)
    limit = fire_limit(config)
    outcomes: List[Outcome] = []
    turns_now = turns.load(hp) if limit is not None else {}
    taken: List[tuple] = []
    for sub in visiting_order(subs, turns_now):
        if sub.error:
            log(f"invalid subscriber {sub.file}: {sub.error}")
            outcomes.append(Outcome(str(sub.file), sub.error, "error", error=True))
            continue
        if not sub.enabled:
            continue
        if limit is not None and len(taken) >= limit:  # a repo with nothing to do took no turn
            _waits_turn(log, hp, sub, now, f"max_per_fire ({limit}) reached; {sub.repo_path} waits for its turn "
                                           "on a later tick")
            continue
        repo_log = ticklog.RepoLog(log, hp, sub.repo_path, now)
        try:
            outcome = process_repo(context_for(sub, config, hp), repo_log, now)
            outcomes.append(outcome)
            if outcome.worked:
                taken.append((turn_key(sub), sub.weight))
        except UserError as exc:
            log(f"error in {sub.repo_path}: {exc.message}")
            outcomes.append(Outcome(str(sub.repo_path), exc.message, "error", error=True))
        except Exception as exc:  # one repo's bug must not stop the others; its crash log keeps the traceback
            from ..crash import unexpected

            said = unexpected(exc, hp, where=f"the tick's visit to {sub.repo_path}")
            log(f"error in {sub.repo_path}: {said}")
            outcomes.append(Outcome(str(sub.repo_path), said, "error", error=True))
        finally:
            repo_log.close()
    if limit is not None and taken:  # the next tick starts with whoever has had fewest turns for its weight
        try:
            turns.record(hp, taken, [turn_key(s) for s in subs if s.repo_path is not None])
        except UserError as exc:
            log(f"could not note whose turn it was under max_per_fire ({exc.message})")
    if hp.events_pending.exists():  # webhook posts that failed before, as their back-off allows (one stat when none)
        from ..observe import events

        events.retry_undelivered(hp, config, log, now)
    ticklog.stamp(hp)  # when the controller last ran, though its log may have had nothing new to say
    _dashboard(hp, every, log)  # rewritten when what it shows changed, else only restamped
    logretention.prune_logs(hp, config, log=log)
    return outcomes

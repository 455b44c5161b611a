"""What a tick should do to one repo: a pure function of observed facts.

:func:`decide` looks at the budget, the state, the stage in flight and what
is known about its processes and files, and returns one :class:`Decision`: a
log line, an ordered list of effects for the tick to apply, and the outcome.
It reads no file and starts no process, and imports nothing that does
(tests/test_decide.py holds it to that); facts that cost a git call arrive as
callables so an idle repo needs none. The order of checks is the bash
version's (spec §6.4-6.6), with its gaps (§15) fixed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Dict, List, Optional, Tuple

from .. import hints, resume
from ..agents.roles import ROLES
from ..books import budget as budgets, parking
from ..stageid import STAGE_ID_RE
from ..stagerecord import StageRecord
from ..timeutil import now_iso, parse_iso
from . import outcomes
from .outcomes import Artefact, Envelope

if TYPE_CHECKING:
    from ..families.usage import Usage, UsageLimit

#: The bash version's verifier attempt cap (§6.5h).
VERIFIER_ATTEMPT_CAP = 3
#: A stage is stopped after its budget plus this fraction (bash: +50%).
GRACE_FRACTION = 0.5
DEFAULT_BUDGET_SECONDS = 600
#: How long a stage commit (hooks included) may run: gitops.COMMIT_TIMEOUT.
COMMIT_SECONDS = 900
#: How long a billing route stays parked on a usage limit whose reset the CLI did not give (or gave unreadably).
DEFAULT_PARK_SECONDS = parking.DEFAULT_PARK_SECONDS
#: ... and on API throttling (a 429 without a plan limit).
RATE_PARK_SECONDS = parking.RATE_PARK_SECONDS
#: stall marker of a stage one of whose agents wrote into its own log, or replaced it (failed)
LOG_FORGED_MARKER = "agent_log_forged"


@dataclass(frozen=True)
class Proc:
    """One agent process of the stage in flight, as observed now."""

    pid: Optional[int] = None
    alive: bool = False
    elapsed: Optional[float] = None  # seconds since it started
    exit: Optional[Dict[str, Any]] = None  # the runner's exit record, once it ended
    usage: Optional[Usage] = None  # read from its log once it ended
    limit: Optional[UsageLimit] = None  # the rate or usage limit it ended on, read from its log
    lost: bool = False  # its runner is gone without an exit record: nothing supervises the run (runs.lost)
    log_forged: Optional[str] = None  # why its log is not only what its runner wrote (logwriter.run_log)


@dataclass
class InFlight:
    stage: Optional[Dict[str, Any]]
    card_found: bool = True
    worker_budget: int = DEFAULT_BUDGET_SECONDS
    verifier_budget: int = DEFAULT_BUDGET_SECONDS
    acceptance_command: Optional[str] = None
    headline: str = "worker output accepted"
    worker: Proc = field(default_factory=Proc)
    verifier: Proc = field(default_factory=Proc)
    acceptance: Proc = field(default_factory=Proc)
    envelope: Envelope = field(default_factory=lambda: Envelope("missing"))
    artefact: Artefact = field(default_factory=lambda: Artefact("missing"))
    #: A verdict the (dead) verifier gave as its final message instead of a file.
    message_artefact: Optional[Artefact] = None
    #: Why the worker could not run, read from its CLI's exit and output.
    worker_diagnosis: Optional[str] = None
    #: Worker rounds the stage may take (card ``Max loops``, else the manifest's ``max_loops``; 1: no re-brief).
    max_loops: int = 1
    tree_now: Callable[[], Optional[str]] = lambda: None
    #: ``<marker>: <files>`` when the stage's change leaves its card's scope (autometta.git.scopegate), else None.
    scope: Callable[[], Optional[str]] = lambda: None
    #: Runners started for this stage that state.yaml never recorded (the tick that
    #: started them was killed before it could write): role -> (pid, start time).
    orphans: Dict[str, Tuple[int, float]] = field(default_factory=dict)
    #: The billing route each agent role would run on (autometta.books.parking): a parked one is not started.
    routes: Dict[str, Optional[str]] = field(default_factory=dict)
    #: A parallel stage (it has a worktree): a PASS is committed on its branch and merged later.
    lane: bool = False
    #: ``worktree.setup`` from the manifest: run in a lane's new worktree before its worker.
    setup_command: Optional[str] = None
    setup: Proc = field(default_factory=Proc)
    #: The acceptance command rerun on the merged result before the base branch moves.
    postmerge: Proc = field(default_factory=Proc)
    #: Another lane holds the merge slot, or one merged this tick: a queued merge waits its turn.
    merge_busy: bool = False
    #: A lane whose worktree folder is gone (deleted by hand): nothing more can run there.
    worktree_missing: bool = False
    #: Would the merged result differ from the tree the acceptance command and the verifier checked
    #: (the base branch moved since the lane forked, or its branch changed since), so it is checked again?
    recheck: Callable[[], bool] = lambda: True
    #: Why the stage's verdict files hold one no verifier run of autometta's wrote (autometta.verdicts).
    forged: Optional[str] = None
    #: A process of the worker's run still alive after the worker exited: no verifier is dispatched yet.
    worker_leftover: Optional[str] = None
    #: Seconds the stage's git commit, started by a tick that was killed, has been running; None if it is not.
    commit_running: Optional[float] = None

    @property
    def record(self) -> StageRecord:
        """The stage's fields by name (autometta.stagerecord); an empty record when it has none."""
        return StageRecord(self.stage if self.stage is not None else {})


@dataclass
class Pending:
    stage_id: str
    card_found: bool = True
    #: Why the worker cannot be started at all (CLI missing, root without IS_SANDBOX, ...).
    preflight: Optional[str] = None
    worker: str = ""
    #: What its card's ``Depends on`` still waits for (see state.unmet_dependencies); empty: claimable.
    waits_for: List[str] = field(default_factory=list)
    #: The billing route its worker would run on (autometta.books.parking).
    route: Optional[str] = None


@dataclass
class Facts:
    repo: str
    budget: Dict[str, Any]
    state: Dict[str, Any]
    cur: Optional[InFlight] = None
    pending: Optional[Pending] = None
    #: The pending stages in queue order (``pending`` alone stands for a queue of one).
    queue: List[Pending] = field(default_factory=list)
    #: Landing: the files the stage changes that are also changed (staged, unstaged, untracked) in the
    #: user's checkout, which the fast-forward would overwrite; empty when the base is not checked out.
    dirty: Callable[[], List[str]] = lambda: []
    now: float = 0.0
    #: Seconds to park on a usage limit without a readable reset (``usage_limit_backoff`` in the manifest).
    park_seconds: int = DEFAULT_PARK_SECONDS
    #: Lanes: how many stages may be in flight at once, and how many are.
    max_parallel: int = 1
    lanes_in_flight: int = 0
    #: ``worktree.setup``: a new lane runs it before its worker.
    setup_command: Optional[str] = None
    #: ``isolation: tree``: a claim runs the stage in the repo's own tree instead of a worktree.
    in_tree: bool = False
    #: Billing routes parked for every repo on this host (``<home>/parked.json``): route -> park.
    parks: Dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------ effects
# What a decision makes happen, in order: typed records, applied by autometta.tick.effects (each only starts a
# process, runs git or moves files; the stage's and the repo's documents are autometta.tick.bookkeeping's),
# described by plan mode (autometta.tick.dryrun). ``name`` is how logs and the tick's outcome call it.

@dataclass(frozen=True)
class Effect:
    name: ClassVar[str] = ""

    @property
    def arg(self) -> Any:
        """The record's value (None, its one field, or a tuple of them): how plan mode and tests show it."""
        values = tuple(getattr(self, f.name) for f in fields(self))
        return values[0] if len(values) == 1 else (values or None)


@dataclass(frozen=True)
class Account(Effect):
    role: str
    name: ClassVar[str] = "account"  # add its tokens, cost and seconds; clear its pid


@dataclass(frozen=True)
class RecordTree(Effect):
    name: ClassVar[str] = "record_tree"  # fingerprint the worker's tree


@dataclass(frozen=True)
class Quarantine(Effect):
    what: str  # envelope | artefact
    name: ClassVar[str] = "quarantine"  # move aside as .invalid.json


@dataclass(frozen=True)
class SaveArtefact(Effect):
    doc: Dict[str, Any] = field(hash=False)
    name: ClassVar[str] = "save_artefact"  # keep the verdict acted on at state/verifiers/<id>.json (verdicts.store)


@dataclass(frozen=True)
class Kill(Effect):
    role: str
    name: ClassVar[str] = "kill"  # TERM its process group now, KILL on a later tick


@dataclass(frozen=True)
class Launch(Effect):
    role: str  # worker | verifier | acceptance | setup | postmerge
    name: ClassVar[str] = "launch"  # a failed start stops the stage (outcomes.failed_effect)


@dataclass(frozen=True)
class Commit(Effect):
    headline: str
    name: ClassVar[str] = "commit"  # commit the worker's changes (author worker, co-author verifier)


@dataclass(frozen=True)
class Claim(Effect):
    stage_id: str
    name: ClassVar[str] = "claim"  # pending -> in_progress


@dataclass(frozen=True)
class Set(Effect):
    key: str
    value: Any = field(hash=False)
    name: ClassVar[str] = "set"  # on the stage in flight


@dataclass(frozen=True)
class Adopt(Effect):
    role: str
    pid: int
    started: Optional[float]
    name: ClassVar[str] = "adopt"  # record a runner an interrupted tick started


@dataclass(frozen=True)
class Rebrief(Effect):
    brief: Dict[str, Any] = field(hash=False)  # loop, of, reason, verdict
    name: ClassVar[str] = "rebrief"  # save the re-brief, archive the round, reset its fields


@dataclass(frozen=True)
class ClearCurrent(Effect):
    name: ClassVar[str] = "clear_current"


@dataclass(frozen=True)
class Park(Effect):
    until: str  # ISO time
    reason: str
    route: str
    name: ClassVar[str] = "park"  # the route starts no agent in any repo until then (autometta.books.parking)


@dataclass(frozen=True)
class Unpark(Effect):
    route: Optional[str] = None
    name: ClassVar[str] = "unpark"  # clear the repo's park (an earlier autometta's), and the route's once run out


@dataclass(frozen=True)
class Worktree(Effect):
    name: ClassVar[str] = "worktree"  # create the claimed lane's worktree and branch from the base branch's tip


@dataclass(frozen=True)
class RecordClaim(Effect):
    name: ClassVar[str] = "record_claim"  # isolation: tree: note HEAD, its branch and what is already changed


@dataclass(frozen=True)
class Merge(Effect):
    #: its recheck was skipped as the tree was the one checked, so a base that moved since sends it back to the queue
    unmoved: bool
    name: ClassVar[str] = "merge"  # rebase the lane onto the base branch's tip (a conflict stops the stage)


@dataclass(frozen=True)
class Land(Effect):
    name: ClassVar[str] = "land"  # fast-forward the base branch to the lane's commit; remove its worktree and branch


@dataclass
class Decision:
    message: str
    effects: List[Effect] = field(default_factory=list)
    #: Terminal outcome for the stage in flight: (status, marker).
    finish: Optional[Tuple[str, Optional[str]]] = None
    halt: Optional[str] = None
    #: A transition spends a clock tick and is written; waiting and idling are not.
    transition: bool = True
    #: The repo does nothing else this tick (halted, a cap reached, parked): no later lane moves, nothing is claimed.
    stops_repo: bool = False

    @property
    def kind(self) -> str:
        if self.halt:
            return "halt"
        if self.finish:
            return self.finish[0]
        return self.effects[-1].name if self.effects else ("wait" if not self.transition else "noop")

    @property
    def merges(self) -> bool:
        """Does it rebase or land a lane (the merge slot is taken for this tick)?"""
        return any(isinstance(e, (Merge, Land)) for e in self.effects)

    @property
    def commits(self) -> bool:
        return any(isinstance(e, Commit) for e in self.effects)


def _projected(budget: Dict[str, Any], *usages: Optional[Usage], seconds: float = 0.0) -> Dict[str, Any]:
    """The budget as it will be once ``usages`` are accounted: caps gate every dispatch."""
    out = dict(budget)
    spent = [usage for usage in usages if usage is not None]
    budgets.spend(out, tokens=sum(u.total_tokens for u in spent), cost_usd=sum(u.cost_usd or 0 for u in spent),
                  seconds=int(seconds))  # the sum the spend ledger folds into the budget (autometta.books.budget.spend)
    return out


def _seconds(proc: Proc) -> float:
    return float((proc.exit or {}).get("seconds") or 0)


def _threshold(budget_seconds: int) -> int:
    return budget_seconds + int(budget_seconds * GRACE_FRACTION)


def decide(f: Facts) -> Decision:
    """The one transition for a stage in the repo's own tree (``current_stage``), or a claim into it.

    That is ``isolation: tree``, or a stage the bash version claimed. Every
    other stage, at ``max_parallel`` 1 too, runs in a worktree of its own:
    :func:`decide_lane` and :func:`decide_claim`.
    """
    return _unpark_after(f, _held(f, _decide(f)))


def decide_lane(f: Facts, stage_id: str) -> Decision:
    """The one transition for parallel stage ``stage_id`` (``f.cur``)."""
    assert f.cur is not None
    return _unpark_after(f, _gate(f) or _held(f, _in_flight(f, stage_id, f.cur)))


def decide_claim(f: Facts) -> Decision:
    """Claim the next stage into a lane of its own (into the repo's tree with ``f.in_tree``)."""
    return _unpark_after(f, _gate(f) or _held(f, _claim(f, lane=not f.in_tree)))


def _held(f: Facts, decision: Decision) -> Decision:
    """A decision that would start a worker or verifier on a parked billing route waits instead.

    Nothing of it is applied: the next tick decides again from the same
    facts, and once the route's park has run out it does it all.
    """
    for launch in decision.effects:
        if not isinstance(launch, Launch) or launch.role not in ("worker", "verifier"):
            continue
        role = launch.role
        claimed = next((e.stage_id for e in decision.effects if isinstance(e, Claim)), None)
        if f.cur is not None and claimed is None:
            route = f.cur.routes.get(role)
            who = f"stage {f.cur.record.id if f.cur.stage else '?'} waits to start its {role}"
        else:
            route = next((p.route for p in f.queue or [f.pending] if p is not None and p.stage_id == claimed), None)
            who = f"{claimed} not claimed for {f.repo}: its worker waits"
        park = parking.active(f.parks, route, f.now)
        if park is not None:
            return Decision(f"{who}; {parking.describe(park, str(route))}", transition=False)
    return decision


def _unpark_after(f: Facts, decision: Decision) -> Decision:
    if (f.state.get("parked_until") and decision.transition and not decision.halt
            and not any(isinstance(e, (Park, Unpark)) for e in decision.effects)):
        decision.effects.insert(0, Unpark(None))  # a park that has run out is cleared by the next transition
    return decision


def _gate(f: Facts) -> Optional[Decision]:
    """A halt, a cap reached or a park: the repo does nothing else this tick."""
    b = f.budget
    if b.get("halted"):
        return Decision(f"halted {f.repo} (reason already recorded: {b.get('halt_reason')})", transition=False,
                        stops_repo=True)
    cap = budgets.cap_hit(b)
    if cap:
        return Decision(f"halted {f.repo} due to {cap}", halt=cap, stops_repo=True)
    until = parse_iso(str(f.state.get("parked_until") or ""))
    if until is not None and f.now < until:  # a whole-repo park an earlier autometta recorded
        return Decision(f"parked {f.repo} until {f.state.get('parked_until')} ({f.state.get('park_reason')})",
                        transition=False, stops_repo=True)
    return None


def _decide(f: Facts) -> Decision:
    gate = _gate(f)
    if gate is not None:
        return gate
    current = f.state.get("current_stage")
    if current is None:
        return _idle(f)
    if not isinstance(current, str) or not STAGE_ID_RE.match(current):
        return Decision(f"current_stage {current!r} in {f.repo} is not a valid stage id", halt="invalid-stage-id")
    assert f.cur is not None
    if f.cur.stage is None:
        return Decision(f"current_stage {current} has no stage record in {f.repo}; cleared",
                        [ClearCurrent()])
    return _in_flight(f, current, f.cur)


def _claimable(f: Facts) -> Tuple[Optional[Pending], List[Pending]]:
    """The first pending stage whose dependencies are all completed and whose worker's billing route is
    not parked, and those waiting before it (a parked one is passed over: the other family keeps working)."""
    queue = f.queue or ([f.pending] if f.pending is not None else [])
    waiting: List[Pending] = []
    for p in queue:
        if not p.waits_for and parking.active(f.parks, p.route, f.now) is None:
            return p, waiting
        waiting.append(p)
    return None, waiting


def waiting_note(waiting: List[Pending], parks: Optional[Dict[str, Any]] = None, now: float = 0.0) -> str:
    def why(p: Pending) -> str:
        if p.waits_for:
            return f"{p.stage_id} waits for {', '.join(p.waits_for)}"
        park = parking.active(parks or {}, p.route, now) or {}
        return f"{p.stage_id} waits for {p.route}, parked until {park.get('until')}"

    shown = "; ".join(why(p) for p in waiting[:3])
    return shown + (f"; and {len(waiting) - 3} more" if len(waiting) > 3 else "")


def _listed(paths: List[str]) -> str:
    return ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")


def _idle(f: Facts) -> Decision:
    return _claim(f, lane=False)


def _claim(f: Facts, lane: bool) -> Decision:
    """Claim the first claimable stage: into a lane of its own, or into the repo's own tree.

    Neither needs a clean tree: a lane starts from the base branch's tip, not
    from the working tree; in the tree, what is already changed is recorded
    and left out of the stage's commit (autometta.git.isolation).
    """
    p, waiting = _claimable(f)
    nothing = (f"no stage to claim for {f.repo} ({f.lanes_in_flight} of {f.max_parallel} lanes busy)"
               if lane and f.lanes_in_flight else f"idle {f.repo}")
    if p is None and waiting:
        why = ("their dependencies" if all(p.waits_for for p in waiting) else
               "a parked billing route" if not any(p.waits_for for p in waiting) else
               "their dependencies or a parked billing route")
        return Decision(f"{nothing}: {len(waiting)} pending stage(s) wait for {why} "
                        f"({waiting_note(waiting, f.parks, f.now)})", transition=False)
    if p is None:
        return Decision(f"{nothing}: no pending stage", transition=False)
    if not STAGE_ID_RE.match(p.stage_id):
        return Decision(f"pending stage id {p.stage_id!r} in {f.repo} is not valid", halt="invalid-stage-id")
    if not p.card_found:
        return Decision(f"stage card missing for {p.stage_id} in {f.repo}", transition=False)
    if p.preflight:
        return Decision(f"stage {p.stage_id} cannot start: {p.preflight}",
                        [Claim(p.stage_id)], finish=("stalled", p.preflight))
    if not lane:
        return Decision(f"claimed {p.stage_id} for {f.repo}; dispatching worker {p.worker} in the repo's own tree",
                        [Claim(p.stage_id), RecordClaim(), Launch("worker")])
    first = "setup" if f.setup_command else "worker"
    what = "running worktree.setup" if f.setup_command else f"dispatching worker {p.worker}"
    into = f" into lane {f.lanes_in_flight + 1} of {f.max_parallel}" if f.max_parallel > 1 else ""
    return Decision(f"claimed {p.stage_id} for {f.repo}{into}; {what} in its worktree",
                    [Claim(p.stage_id), Worktree(), Launch(first)])


@dataclass(frozen=True)
class _Command:
    """A role that runs a shell command (acceptance, setup, postmerge), and how the tick speaks of it."""

    role: str
    budget: int  # seconds; stopped past it plus the grace
    starting: str
    running: str
    stopped: str  # "{secs}" is the time it ran
    marker: str  # the failure marker when it is stopped


def _command(f: Facts, cur: str, c: InFlight, cmd: _Command,
             effects: List[Effect]) -> Tuple[Optional[Decision], Optional[int]]:
    """Start, wait for or stop a command role: a decision, or (once it exited) None and its exit code.

    The exit code comes with the role's Account appended to ``effects``.
    """
    proc: Proc = getattr(c, cmd.role)
    if not c.record.pid(cmd.role):
        return _dispatch(f, cur, f.budget, effects, cmd.role, cmd.starting), None
    if proc.alive:
        if proc.elapsed is not None and proc.elapsed > _threshold(cmd.budget):
            return Decision(cmd.stopped.format(secs=int(proc.elapsed)),
                            effects + [Kill(cmd.role), Account(cmd.role)], finish=("failed", cmd.marker)), None
        return Decision(cmd.running, effects, transition=False), None
    effects.append(Account(cmd.role))
    return None, (proc.exit or {}).get("exit_code")


def _step(f: Facts, cur: str, c: InFlight, effects: List[Effect], role: str, budget: int, marker: str,
          names: Tuple[str, str, str]) -> Tuple[Optional[Decision], Optional[int]]:
    """:func:`_command` for a stage's ``role`` command; ``names``: what it runs, its name while it runs, when
    stopped (the tick log's words)."""
    doing, name, stopped = names
    return _command(f, cur, c, _Command(
        role, budget, starting=f"stage {cur} running {doing}", running=f"{name} for {cur} still running",
        stopped=f"stage {cur} {stopped} still running after {{secs}}s; stopped", marker=marker), effects)


def _setup(f: Facts, cur: str, c: InFlight, effects: List[Effect]) -> Decision:
    """A lane's ``worktree.setup`` runs before its worker; its failure fails the stage."""
    decision, code = _step(f, cur, c, effects, "setup", c.worker_budget, "worktree_setup_failed",
                           ("worktree.setup in its worktree", "worktree.setup", "worktree.setup"))
    if decision is not None:
        return decision
    if code != 0:
        return Decision(f"stage {cur} failed: worktree.setup exited {code}; see state/logs/{cur}-setup.log",
                        effects, finish=("failed", "worktree_setup_failed"))
    effects.append(Set("setup", "pass"))
    return _dispatch(f, cur, _projected(f.budget, seconds=_seconds(c.setup)), effects, "worker",
                     f"stage {cur} worktree.setup passed; dispatching the worker")


def _merge(f: Facts, cur: str, c: InFlight, effects: List[Effect]) -> Decision:
    """An accepted lane, committed on its branch: rebase onto the base tip, recheck, land; one at a time."""
    st = c.record
    base = st.base or "the base branch"
    if st.merge == "checking":
        decision, code = _command(f, cur, c, _Command(
            "postmerge", c.verifier_budget,
            starting=f"stage {cur} rerunning the acceptance command on the merged result",
            running=f"acceptance on the merged result for {cur} still running",
            stopped=f"stage {cur} acceptance on the merged result still running after {{secs}}s; stopped, "
                    f"{base} left as it was",
            marker="post_merge_acceptance_failed"), effects)
        if decision is not None:
            return decision
        if code != 0:
            return Decision(f"stage {cur} failed: the acceptance command exited {code} on the merged result; "
                            f"{base} left as it was, see state/logs/{cur}-postmerge.log", effects,
                            finish=("failed", "post_merge_acceptance_failed"))
        blocked = _dirty_halt(f, cur, base, effects)
        if blocked is not None:
            return blocked  # the rerun is accounted; it runs again once the halt is reset
        return Decision(f"stage {cur} passed acceptance on the merged result; landing on {base}",
                        effects + [Land()])
    if c.merge_busy:
        return Decision(f"stage {cur} is accepted and waits for its turn to merge onto {base}", effects,
                        transition=False)
    if c.acceptance_command and c.recheck():  # a tree nobody checked yet: checked again before it lands
        return Decision(f"stage {cur} merging onto {base}; then rerunning the acceptance command",
                        effects + [Merge(False), Set("merge", "checking"), Launch("postmerge")])
    blocked = _dirty_halt(f, cur, base, effects)
    if blocked is not None:
        return blocked
    return Decision(f"stage {cur} merging onto {base}", effects + [Merge(bool(c.acceptance_command)), Land()])


def _dirty_halt(f: Facts, cur: str, base: str, effects: List[Effect]) -> Optional[Decision]:
    """Landing would overwrite files the user changed in the checkout: halt, naming them."""
    dirty = f.dirty()
    if not dirty:
        return None
    return Decision(f"stage {cur} is ready to land on {base}, but it changes files that are also changed in the "
                    f"working tree of {f.repo} ({hints.listed(dirty)}); {hints.set_aside(dirty)}; then run "
                    "'autometta tick --reset-halt'", effects, halt="dirty-working-tree")


def _verdict(f: Facts, cur: str, c: InFlight, art: Artefact, effects: List[Effect]) -> Decision:
    if isinstance(art.doc, dict):
        effects.append(SaveArtefact(art.doc))  # kept where the views and the bash version read verdicts
    recorded = c.record.worker_tree
    judged: List[Optional[str]] = []  # the tree now, once a PASS asked for it

    def tree_changed() -> bool:
        judged.append(c.tree_now() if recorded else None)
        return judged[-1] is not None and judged[-1] != recorded

    outcome = outcomes.verdict(art, tree_changed)  # a panel's own count, and criteria, override an overall
    if outcome.why == "problem":
        who = "verifier panel" if str(outcome.marker).startswith("verifier_panel") else "verifier"
        return Decision(f"stage {cur} {who}: {outcome.marker}; tree left for operator review", effects,
                        finish=outcome.finish)
    if outcome.why == "modified_tree":
        effects.append(Set("verifier_tree", judged[-1]))
        return Decision(f"stage {cur} verifier changed the tree it judged; not committing", effects,
                        finish=outcome.finish)
    if outcome.why == "pass":
        if c.lane:
            branch = c.record.branch or "its branch"
            return Decision(f"stage {cur} PASS: committing worker output on {branch}; queued to merge",
                            effects + [Set("merge", "queued"), Commit(c.headline)])
        effects.append(Commit(c.headline))
        return Decision(f"stage {cur} PASS: committing worker output", effects, finish=outcome.finish)
    marker = outcome.marker
    if marker == outcomes.VERIFIER_FAIL:
        spent = _projected(f.budget, c.verifier.usage if Account("verifier") in effects else None,
                           seconds=_seconds(c.verifier) if Account("verifier") in effects else 0)
        again = _loop_again(f, cur, c, spent, effects, "verifier_fail", f"stage {cur} verifier FAIL", art.doc)
        if again is not None:
            return again
    return Decision(f"stage {cur} verifier FAIL ({marker}); tree left for operator review", effects,
                    finish=outcome.finish)


def _stop_runs(c: InFlight) -> List[Effect]:
    """Every run of the stage in flight stopped (if it still runs) and accounted: the stage ends here."""
    out: List[Effect] = []
    for role in ROLES:
        if c.record.pid(role):
            out += ([Kill(role)] if getattr(c, role).alive else []) + [Account(role)]
    return out


def _in_flight(f: Facts, cur: str, c: InFlight) -> Decision:
    st = c.record
    effects: List[Effect] = []

    # 0. A runner an interrupted tick started but never recorded: adopt it, never start a twin.
    for role, (pid, started) in sorted(c.orphans.items()):
        if not st.pid(role):
            return Decision(f"adopting {role} {pid} for {cur}, started by a tick that was interrupted",
                            [Adopt(role, pid, started)])

    # 0'. A runner gone without an exit record: stop what is left of its run, stall the stage.
    lost = [role for role in ROLES if st.pid(role) and getattr(c, role).lost]
    if lost == ["worker"] and not c.worker_leftover and c.card_found and resume.restartable(st.doc):
        # nothing of the run is left (a reboot): the worker starts again, resuming its session (autometta.resume)
        return _dispatch(f, cur, _projected(f.budget, seconds=_seconds(c.worker)),
                         [Account("worker"), Set("worker_exit", None),
                          Set(resume.RESTARTS, st.worker_restarts + 1)], "worker",
                         f"stage {cur}: the runner of its worker (pid {st.pid('worker')}) is gone without an "
                         "exit record and nothing of its run is left (a reboot?); starting the worker again")
    if lost:
        for role in ROLES:
            if st.pid(role):
                effects += [Kill(role), Account(role)]
        return Decision(f"stage {cur}: the runner of its {lost[0]} (pid {st.pid(lost[0])}) is gone without "
                        "an exit record; stopping what is left of the run, marked stalled", effects,
                        finish=("stalled", "runner_lost"))

    # 0''. The stage's commit, started by a tick that was killed, still runs (a slow hook): let it end.
    if c.commit_running is not None:
        if c.commit_running <= COMMIT_SECONDS:
            return Decision(f"stage {cur}: its commit, started by an interrupted tick, is still running; waiting",
                            effects, transition=False)
        return Decision(f"stage {cur}: its commit, started by an interrupted tick, still runs after "
                        f"{int(c.commit_running)}s; stopped (the next tick records it if it landed, "
                        "else commits again)",
                        effects + [Kill("commit")])

    # 0a. A lane whose worktree was deleted: stop what still runs there.
    if c.lane and c.worktree_missing:
        effects += _stop_runs(c)
        return Decision(f"stage {cur} lost its worktree {st.worktree}; marked stalled", effects,
                        finish=("stalled", "worktree_missing"))

    # 0b. A lane accepted and committed on its branch: merge it back.
    if c.lane and st.merge:
        return _merge(f, cur, c, effects)

    # 0c. A verdict that no verifier run autometta started wrote: the stage fails, nothing it says counts.
    if c.forged:
        effects += _stop_runs(c)
        return Decision(f"stage {cur} has a verdict no verifier of autometta's wrote ({c.forged}); nothing "
                        "committed, tree left for operator review", effects,
                        finish=("failed", f"verdict_forged: {c.forged}"[:300]))

    # 0c'. A run whose log holds what its runner did not write (the agent wrote its own usage line, session
    # id or limit message, or swapped the file): nothing read from it counts, and the stage fails.
    for role in ("worker", "verifier"):
        why = getattr(c, role).log_forged
        if why:
            effects += _stop_runs(c)
            return Decision(f"stage {cur}: {why} ({role}); nothing read from it counts, nothing committed, "
                            "tree left for operator review", effects,
                            finish=("failed", f"{LOG_FORGED_MARKER}: {role}: {why}"[:300]))

    # 1. A verdict beats a stall (§6.5b).
    art = c.artefact
    if art.kind == "partial" and c.verifier.pid and c.verifier.alive:
        art = Artefact("missing")  # still being written: not a verdict yet
    elif art.kind == "partial":
        effects.append(Quarantine("artefact"))
        art = Artefact("missing")
    if art.kind == "verdict":
        if c.verifier.pid:
            if c.verifier.alive:
                elapsed = c.verifier.elapsed
                if elapsed is None or elapsed <= _threshold(c.verifier_budget):
                    # Let it finish: its last usage line is still to come, and the
                    # tree is compared once it can no longer change it.
                    return Decision(f"verifier {st.verifier_pid} for {cur} wrote its verdict; "
                                    "waiting for it to exit", effects, transition=False)
                effects.append(Kill("verifier"))
            effects.append(Account("verifier"))
        return _verdict(f, cur, c, art, effects)

    # 2. The worker.
    if not st.reaped():
        if not st.worker_pid:
            # Claimed, but a tick was interrupted before its worker started (or, in bash-era
            # state, the spawn failed): start it now; never verify an unworked tree.
            if not c.card_found:
                return Decision(f"stage card missing for {cur} and no worker ever started, marking stalled",
                                effects, finish=("stalled", "stage_card_missing"))
            if c.lane and c.setup_command and st.setup != "pass":
                return _setup(f, cur, c, effects)
            return _dispatch(f, cur, f.budget, effects, "worker",
                             f"stage {cur} has no worker (an interrupted tick never started it); starting it")
        if c.worker.alive:
            limit = _threshold(c.worker_budget)
            if c.worker.elapsed is not None and c.worker.elapsed > limit:
                return Decision(f"stage {cur} stalled after {int(c.worker.elapsed)}s (budget {c.worker_budget}s "
                                "+ 50% grace), marked stalled", effects + [Kill("worker"), Account("worker")],
                                finish=("stalled", "worker_timeout"))
            return Decision(f"worker {st.worker_pid} for {cur} still running, skipping verifier dispatch",
                            effects, transition=False)
        if c.worker.limit is not None and c.envelope.kind == "missing":
            return _limited(f, cur, c, "worker", c.worker, effects)
        if (c.envelope.kind == "missing" and resume.refused(c.worker_diagnosis)
                and (resume.last(st.doc, "worker") or {}).get("resumed")):  # asked to resume, refused: go cold
            return _dispatch(f, cur, _projected(f.budget, c.worker.usage, seconds=_seconds(c.worker)),
                             effects + [Account("worker"), Set("worker_exit", None)], "worker",
                             f"stage {cur}: the worker's CLI refused to resume its session "
                             f"({c.worker_diagnosis}); starting the worker again in a new session")
        effects += [Account("worker"), RecordTree()]
        env = c.envelope
        ended = outcomes.worker(env, c.worker_diagnosis)
        if ended is not None and ended.why == "missing":
            return Decision(f"stage {cur} worker exited without a handoff envelope ({ended.marker}), marked stalled",
                            effects, finish=ended.finish)
        if ended is not None and ended.why == "invalid":
            return Decision(f"stage {cur} handoff envelope invalid ({env.error}); moved to .invalid.json, "
                            "marked stalled", effects + [Quarantine("envelope")], finish=ended.finish)
        if ended is not None:
            return Decision(f"stage {cur} failed: worker envelope status={env.kind}; notes: {env.notes}",
                            effects, finish=ended.finish)
        out_of_scope = c.scope()  # before the acceptance command and the verifier spend anything
        if out_of_scope:
            return Decision(f"stage {cur} failed: the worker changed files its card does not allow "
                            f"({out_of_scope}); tree left for operator review", effects,
                            finish=("failed", out_of_scope))
        projected = _projected(f.budget, c.worker.usage, seconds=_seconds(c.worker))
        if c.acceptance_command:
            return _dispatch(f, cur, projected, effects, "acceptance",
                             f"stage {cur} worker envelope status=pass, running the acceptance command")
        return _dispatch_verifier(f, cur, c, projected, effects,
                                  f"stage {cur} worker envelope status=pass, proceeding to verifier dispatch")

    # 3. The acceptance gate.
    if c.acceptance_command and st.acceptance is None:
        decision, code = _step(f, cur, c, effects, "acceptance", c.verifier_budget, "acceptance_failed",
                               ("the acceptance command", "acceptance", "acceptance command"))
        if decision is not None:
            return decision
        if code != 0:
            again = _loop_again(f, cur, c, _projected(f.budget, seconds=_seconds(c.acceptance)), effects,
                                "acceptance_failed", f"stage {cur} acceptance command exited {code}",
                                {"exit_code": code})
            if again is not None:
                return again
            return Decision(f"stage {cur} failed: acceptance command exited {code}; see "
                            f"state/logs/{cur}-acceptance.log", effects, finish=("failed", "acceptance_failed"))
        effects.append(Set("acceptance", "pass"))
        return _dispatch_verifier(f, cur, c, _projected(f.budget, seconds=_seconds(c.acceptance)), effects,
                                  f"stage {cur} acceptance passed, proceeding to verifier dispatch")

    # 4. The verifier.
    projected = f.budget
    if st.verifier_pid:
        if c.verifier.alive:
            limit = _threshold(c.verifier_budget)
            if c.verifier.elapsed is not None and c.verifier.elapsed > limit:
                effects += [Kill("verifier"), Account("verifier")]
                if st.verifier_attempts >= VERIFIER_ATTEMPT_CAP:
                    return Decision(f"verifier for {cur} timed out after {int(c.verifier.elapsed)}s and the attempt "
                                    f"cap ({VERIFIER_ATTEMPT_CAP}) is reached, marking stalled", effects,
                                    finish=("stalled", "verifier_attempt_cap"))
                return Decision(f"verifier {st.verifier_pid} for {cur} timed out after "
                                f"{int(c.verifier.elapsed)}s (budget {c.verifier_budget}s + 50% grace); stopped",
                                effects)
            return Decision(f"verifier {st.verifier_pid} for {cur} still running, skipping verifier dispatch",
                            effects, transition=False)
        if c.verifier.limit is not None and c.message_artefact is None:
            return _limited(f, cur, c, "verifier", c.verifier, effects)
        effects.append(Account("verifier"))
        if c.message_artefact is not None and c.message_artefact.kind == "verdict":
            return _verdict(f, cur, c, c.message_artefact, effects)
        projected = _projected(f.budget, c.verifier.usage, seconds=_seconds(c.verifier))
    if st.verifier_attempts >= VERIFIER_ATTEMPT_CAP:
        return Decision(f"verifier attempt cap ({VERIFIER_ATTEMPT_CAP}) reached for {cur} without artefact, "
                        "marking stalled", effects, finish=("stalled", "verifier_attempt_cap"))
    return _dispatch_verifier(f, cur, c, projected, effects, f"stage {cur} dispatching verifier")


def park_until(limit: UsageLimit, now: float, park_seconds: int, printed_at: Optional[float] = None) -> float:
    """When a route parked on ``limit`` may be tried again (:func:`autometta.books.parking.until`)."""
    return parking.until(limit, now, park_seconds, printed_at)


def _limited(f: Facts, cur: str, c: InFlight, role: str, proc: Proc, effects: List[Effect]) -> Decision:
    """A worker or verifier that ended on a usage limit: park its billing route for every repo on this host;
    once the reset has passed (the stage's own and the route's), run it again."""
    assert proc.limit is not None
    own = (c.stage or {}).get("parked_until")
    held = parse_iso(str(own or ""))
    if held is not None and f.now < held:
        return Decision(f"stage {cur} {role} waits for its {proc.limit.kind} limit to reset ({c.routes.get(role)} "
                        f"parked until {own})", transition=False)
    # This limit parked the route and the reset has passed (the repo-wide park an earlier autometta
    # recorded counts too).
    if f.state.get("parked_until") or own:
        effects = effects + [Account(role), Unpark(c.routes.get(role))]
        if (c.stage or {}).get("parked_until"):
            effects.append(Set("parked_until", None))
        if role == "worker":
            effects.append(Set("worker_exit", None))  # the worker is not reaped: it runs again
        else:
            attempts = (c.stage or {}).get("verifier_attempts") or 0
            effects.append(Set("verifier_attempts", max(0, attempts - 1)))  # a limit is no attempt
        return _dispatch(f, cur, _projected(f.budget, proc.usage, seconds=_seconds(proc)), effects, role,
                         f"stage {cur} usage limit has reset; dispatching the {role} again")
    printed = parse_iso(str((proc.exit or {}).get("ended_at") or ""))
    until = now_iso(park_until(proc.limit, f.now, f.park_seconds, printed))
    reason = f"{role} hit a {proc.limit.kind} limit: {proc.limit.message}"[:200]
    route = c.routes.get(role) or "unknown"
    return Decision(f"stage {cur} {role} hit a {proc.limit.kind} limit ({proc.limit.message[:120]}); "
                    f"parked {route} until {until} for every repo on this host",
                    effects + [Park(until, reason, route)])


def loop_of(stage: Optional[Dict[str, Any]]) -> int:
    """The worker round a stage is in: 1 until it is re-briefed (``loops`` in state.yaml)."""
    loops = (stage or {}).get("loops")
    return loops if isinstance(loops, int) and loops > 1 else 1


def _loop_again(f: Facts, cur: str, c: InFlight, projected: Dict[str, Any], effects: List[Effect], reason: str,
                what: str, evidence: Optional[Dict[str, Any]]) -> Optional[Decision]:
    """Re-brief the worker on the same tree when the stage has loops left (``Max loops``); else None."""
    loop = loop_of(c.stage)
    if loop >= c.max_loops or not c.card_found:
        return None
    cap = budgets.cap_hit(projected)
    if cap:  # the verdict stays in place; the re-brief happens once the halt is reset
        return Decision(f"{what}; loop {loop + 1} of {c.max_loops} left, but halted {f.repo} due to {cap} "
                        "before re-briefing", effects, halt=cap)
    brief = {"loop": loop + 1, "of": c.max_loops, "reason": reason, "verdict": evidence}
    return Decision(f"{what}; re-briefing the worker (loop {loop + 1} of {c.max_loops})",
                    effects + [Rebrief(brief), Launch("worker")])


def _dispatch(f: Facts, cur: str, projected: Dict[str, Any], effects: List[Effect], role: str,
              message: str) -> Decision:
    cap = budgets.cap_hit(projected)
    if cap:
        return Decision(f"{message}; but halted {f.repo} due to {cap} before dispatch", effects, halt=cap)
    return Decision(message, effects + [Launch(role)])


def _dispatch_verifier(f: Facts, cur: str, c: InFlight, projected: Dict[str, Any], effects: List[Effect],
                       message: str) -> Decision:
    if not c.card_found:
        return Decision(f"stage card missing for {cur} at verifier dispatch, marking stalled", effects,
                        finish=("stalled", "stage_card_missing"))
    if c.worker_leftover:  # it could still change what the verifier judges
        return Decision(f"{message}; but {c.worker_leftover}, so the verifier waits for it", effects,
                        transition=bool(effects))
    attempt = c.record.verifier_attempts + 1
    return _dispatch(f, cur, projected, effects, "verifier", f"{message} (attempt {attempt})")

"""One stage by hand (the pass-1 contract): dispatch, verify, accept.

``autometta dispatch CARD`` starts the card's worker, ``autometta verify
CARD`` runs the acceptance command and the cross-family verifier, and
``autometta accept CARD`` commits on a PASS verdict. Each step uses what the
tick uses, so a stage run by hand behaves as a queued one:

* agents start through :func:`autometta.agents.dispatch.start` (rendered prompt,
  clean environment, detached runner, predictable log, registry entry);
* the files are the tick's: ``state/handoffs/<id>.json``,
  ``state/verifiers/<id>.json``, ``state/logs/<id>-<role>.log``, and an
  earlier run's envelope and verdict are archived first;
* the markers are the tick's (``worker_envelope_missing_after_exit``,
  ``acceptance_failed``, ``verifier_modified_tree``, ...), so
  docs/troubleshooting.md covers both;
* the commit is :func:`autometta.git.stagecommit.commit_accepted`;
* only a verdict from the verifier ``verify`` started counts
  (:mod:`autometta.verdicts`): ``verify`` records that run (its verdict
  path, made at its dispatch, its pid) in ``state/logs/<id>-oneshot.json``,
  and ``accept`` refuses without that record;
* each worker and verifier run gets a new session (never a resumed one),
  recorded in ``state/logs/<id>-oneshot.json`` (``sessions``) as the tick
  records its runs' in the stage (autometta.sessions), and listed by ``show``;
* the agents work where the tick's would: ``dispatch`` gives the stage a
  worktree of its own on ``autometta/<id>`` (autometta.git.worktrees), never the
  user's checkout, and ``accept`` lands it the tick's way: commit there,
  rebase onto the base branch, rerun the acceptance command if the base
  moved, fast-forward, remove the worktree. Only with ``isolation: tree``
  do they work in the checkout (autometta.git.isolation), and ``accept`` then
  folds commits made since ``dispatch`` into the stage's commit, or on a
  FAIL takes them off the branch again.

None of them reads or writes the queue in ``state/state.yaml`` or the
budget; they refuse a stage the tick has in flight. Every run they start is
booked in the spend ledger (autometta.books.ledger) once it ends, by the command
when it waits, else by the next tick, and counts against the repo's caps
from that tick on. The repo is the git work
tree holding the card. Waiting (``--wait``) is ``os.waitpid`` on the runner,
which is this process's child. What ``dispatch`` set up and ``verify`` saw is
kept in ``state/logs/<id>-oneshot.json``.
"""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from . import cardlint, families, files, hints, home, manifest, resume, sessions, verdicts
from .agents import liveness
from .agents.dispatch import start
from .agents.logwriter import read_log, run_log
from .agents.provision import preflight
from .agents.spawn import Launched, read_exit
from .books import digests, ledger, state
from .books.oneshot import trusted_record  # the one check of what dispatch set up and verify saw
from .card import Card, card_globs, parse_card
from .envelope import Artefact, archive, artefact_from_message, judge_artefact_doc, read_envelope
from .errors import UserError
from .git import gitops, isolation, scopegate, stagecommit, worktrees
from .paths import HomePaths, RepoPaths
from .repo import RepoContext
from .stagerecord import StageRecord
from .tick import outcomes
from .tick.decide import LOG_FORGED_MARKER
from .tick.facts import worker_diagnosis
from .timeutil import now_iso

#: How long a one-shot command waits for a running tick to release the repo.
LOCK_WAIT_SECONDS = 30.0

Say = Callable[[str], None]


@dataclass
class Shot:
    """A card, its repo, and the stage record :func:`dispatch.start` expects."""

    ctx: RepoContext
    card: Card
    stage: Dict[str, Any] = field(default_factory=dict)

    @property
    def paths(self) -> RepoPaths:
        return self.ctx.paths

    @property
    def record(self) -> StageRecord:
        """The stage's fields by name (over :attr:`stage` itself)."""
        return StageRecord(self.stage)

    @property
    def stage_id(self) -> str:
        return self.card.stage_id


def load(card_arg: str, warn: Optional[Say] = None, *, show_warnings: bool = True) -> Shot:
    """Find the card's repo, read the card, and refuse it if the lint finds an error.

    ``warn`` gets the lint's other findings (warnings only with ``show_warnings``).
    """
    card_path = Path(os.path.abspath(card_arg))
    if not card_path.is_file():
        raise UserError(f"{card_path}: stage card not found")
    top = gitops.work_tree_top(card_path)
    if top is None:
        raise UserError(f"{card_path}: not inside a git work tree; keep stage cards in the repo they change "
                        "(e.g. docs/stages/) and run 'git init' there first")
    repo = Path(os.path.realpath(top))
    paths = RepoPaths(repo)
    hp = HomePaths.from_env()
    config = home.load_config(hp)
    subscriber = home.find_subscriber(hp, repo) if hp.subscribers.is_dir() else None
    settings = manifest.load_manifest(paths, subscriber.manifest_path if subscriber else None)
    card = parse_card(card_path)
    findings = cardlint.lint_card(card_path, repo, globs=card_globs(repo, settings))
    cardlint.refuse_errors(findings, warn, show_warnings=show_warnings)
    ctx = RepoContext(paths=paths, home=hp, config=config, manifest=settings,
                      isolation=isolation.mode(settings, 1, paths.manifest))
    return Shot(ctx, card, {"id": card.stage_id, "worker": card.worker or "", "verifier": card.verifier or ""})


def _in_tree(shot: Shot) -> bool:
    return shot.ctx.isolation == isolation.TREE


def _record(shot: Shot) -> Dict[str, Any]:
    return trusted_record(shot.paths, shot.stage_id)


def _note(shot: Shot, **fields: Any) -> None:
    files.ensure_dir(shot.paths.logs)
    doc = dict(_record(shot), **fields)
    digests.write_json(shot.paths, shot.paths.oneshot_record(shot.stage_id), doc, mode=0o600)


def _work(shot: Shot) -> RepoContext:
    """Where the stage's agents work: its worktree (made by dispatch), or the checkout with ``isolation: tree``."""
    if _in_tree(shot):
        return shot.ctx
    where = _record(shot).get("worktree")
    if not where or not Path(str(where), ".git").exists():
        raise UserError(f"{shot.paths.oneshot_record(shot.stage_id)}: no worktree for {shot.stage_id}; run "
                        f"'autometta dispatch {shot.card.path} --wait' first (it makes one)")
    return shot.ctx.replace(workdir=Path(str(where)))


def _measured(shot: Shot) -> Dict[str, Any]:
    """The stage record with where its change starts, as the tick's has it (see autometta.git.scopegate.start_rev).

    In its worktree: the base branch dispatch forked it from (its change is
    everything since the fork point, the agents' commits included). With
    ``isolation: tree``: the checkout's head at dispatch.
    """
    record = _record(shot)
    if _in_tree(shot):
        return dict(shot.stage, claim_head=record.get("claim_head"), claim_branch=record.get("claim_branch"))
    return dict(shot.stage, base=record.get("base"), worktree=record.get("worktree"),
                branch=record.get("branch"))


def _not_in_flight(shot: Shot) -> None:
    paths = shot.paths
    if not paths.state_yaml.exists():
        return
    try:
        doc = state.load_state(paths)
    except UserError:
        return  # the tick restores a corrupt state; it is not ours to judge here
    lanes = [s.get("id") for s in state.lane_stages(doc)]
    if doc.get("current_stage") == shot.stage_id or shot.stage_id in lanes:
        raise UserError(f"{paths.state_yaml}: the tick has {shot.stage_id} in flight; let it finish "
                        f"(autometta status), or stop it and 'autometta requeue {paths.root} {shot.stage_id}'")


def _await(launched: Launched, shot: Optional[Shot] = None) -> None:
    try:
        os.waitpid(launched.pid, 0)
    except ChildProcessError:  # already collected (by launch's own bookkeeping)
        pass
    if shot is not None:  # ended: book it now rather than on the next tick
        ledger.settle_open(ledger.home_of(shot.ctx), stage=shot.stage_id)


def _start(ctx: RepoContext, shot: Shot, role: str) -> Launched:
    """Start ``role`` as the tick would, and note the run for the spend ledger (booked once it ends).

    A worker or verifier gets a new session (never resumed by hand: autometta.sessions), recorded in the
    one-shot record's ``sessions`` as the tick records its runs' in the stage."""
    session = None
    if role in ("worker", "verifier"):
        shot.stage[resume.FIELD] = resume.records(_record(shot))  # the stage's runs by hand so far
        session = sessions.prepare(ctx, shot.stage, shot.card, role, by_hand=True)
    now = time.time()
    launched = start(ctx, shot.stage, shot.card, role, session=session)
    ledger.open_run(ctx, shot.stage, shot.card, role, launched)
    if session is not None:
        sessions.started(shot.stage, session, now)
        _note(shot, sessions=resume.records(shot.stage))
    return launched


def _session_ended(shot: Shot, role: str) -> None:
    """Note on ``role``'s latest session by hand what its log says (the id the CLI used, what it spent),
    once its run has ended (:func:`autometta.sessions.ended`); once."""
    stage = dict(shot.stage, sessions=resume.records(_record(shot)))
    mine = resume.last(stage, role)
    if mine is None or "ended" in mine:
        return
    code = (read_exit(shot.paths.exit_record(shot.stage_id, role)) or {}).get("exit_code")
    sessions.ended(shot.ctx, stage, role, code)
    _note(shot, sessions=resume.records(stage))


def _settle(shot: Shot) -> None:
    """Book the stage's earlier runs by hand that have ended, before a new run overwrites their logs."""
    ledger.settle_open(ledger.home_of(shot.ctx), stage=shot.stage_id)


def _usage(shot: Shot, role: str) -> Dict[str, Any]:
    try:
        family = families.for_identity(shot.stage.get(role) or "")
    except UserError:
        return {}
    usage = family.parse_usage(read_log(shot.paths.log(shot.stage_id, role)))
    if usage is None:
        return {}
    out: Dict[str, Any] = {"tokens": usage.total_tokens}
    if usage.cost_usd:
        out["cost_usd"] = round(float(usage.cost_usd), 6)
    return out


def _forget(shot: Shot) -> None:
    """Drop an earlier run's record (and what the books know of it): a new dispatch starts afresh."""
    path = shot.paths.oneshot_record(shot.stage_id)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    digests.forget(shot.paths, [path])


# ---------------------------------------------------------------- dispatch


def dispatch(shot: Shot, *, wait: bool = False) -> Dict[str, Any]:
    """Start the card's worker now; with ``wait``, also wait for it and read its handoff."""
    paths, stage_id = shot.paths, shot.stage_id
    identity = shot.record.worker
    files.ensure_dir(paths.state_dir)
    with files.locked(paths.lock, timeout=LOCK_WAIT_SECONDS):
        _not_in_flight(shot)
        dirty = gitops.dirty_paths(paths.root) if _in_tree(shot) else []
        if dirty:
            raise UserError(f"{paths.root}: uncommitted changes outside state/ ({hints.listed(dirty, 3)}); with "
                            "isolation: tree the worker runs in this tree, so commit them (the card too, so worker "
                            f"and verifier read the same one) or set them aside with `{hints.stash(dirty)}`, then "
                            "dispatch again")
        problem = preflight(shot.ctx, identity, "worker", shot.card)
        if problem:
            raise UserError(f"{shot.card.path}: the worker {identity!r} cannot start here: {problem} "
                            "(docs/troubleshooting.md explains each marker)")
        _settle(shot)
        archive(paths, stage_id)
        _forget(shot)
        ctx = _prepare(shot)
        launched = _start(ctx, shot, "worker")
    result: Dict[str, Any] = {
        "stage_id": stage_id, "role": "worker", "identity": identity, "pid": launched.pid,
        "started_at": launched.started_at, "log": str(paths.log(stage_id, "worker")),
        "handoff": str(paths.handoff(stage_id)), "waited": wait, "worktree": str(ctx.work),
    }
    if wait:
        _await(launched, shot)
        result.update(worker_outcome(shot))
        try:
            _session_ended(shot, "worker")
        except UserError:  # its record changed behind autometta's back: verify refuses it, and says so
            pass
    return result


def _prepare(shot: Shot) -> RepoContext:
    """The stage's worktree, made afresh from the checked-out branch's tip and set up; or the checkout (tree)."""
    paths, stage_id = shot.paths, shot.stage_id
    if _in_tree(shot):
        branch, head = gitops.on_branch(paths.root)  # its commit must land on a branch
        _note(shot, stage_id=stage_id, claim_head=head, claim_branch=branch, dispatched_at=now_iso())
        return shot.ctx
    path = worktrees.lane_root(paths.root, shot.ctx.manifest) / stage_id
    branch = worktrees.branch_for(stage_id)
    base, tip = worktrees.create(paths.root, path, branch)  # an earlier by-hand run's worktree is replaced
    _note(shot, stage_id=stage_id, worktree=str(path), branch=branch, base=base, base_sha=tip,
          dispatched_at=now_iso())
    ctx = shot.ctx.replace(workdir=path)
    if worktrees.setup_command(shot.ctx.manifest):
        _await(_start(ctx, shot, "setup"), shot)
        code = (read_exit(paths.exit_record(stage_id, "setup")) or {}).get("exit_code")
        if code != 0:
            raise UserError(f"{paths.log(stage_id, 'setup')}: worktree.setup exited {code} in {path} "
                            "(worktree_setup_failed); fix it in .autometta.local.yaml, then dispatch again")
    return ctx


def worker_outcome(shot: Shot) -> Dict[str, Any]:
    """How the worker ended, in the tick's words: exit, handoff status, and a marker when it stalled."""
    paths, stage_id = shot.paths, shot.stage_id
    record = read_exit(paths.exit_record(stage_id, "worker")) or {}
    envelope = read_envelope(paths.handoff(stage_id), stage_id)
    out: Dict[str, Any] = {"exit_code": record.get("exit_code"), "seconds": record.get("seconds"),
                           "handoff_status": envelope.kind, "notes": envelope.notes or envelope.error}
    diagnosis = worker_diagnosis(paths, stage_id, shot.record.worker, record) if envelope.kind == "missing" else None
    ended = outcomes.worker(envelope, diagnosis)  # the tick's reading (autometta.tick.decide asks the same)
    if ended is not None:
        out["marker"] = ended.marker
    out.update(_usage(shot, "worker"))
    return out


# ---------------------------------------------------------------- verify


def verify(shot: Shot, *, wait: bool = False, say: Optional[Say] = None) -> Dict[str, Any]:
    """Run the acceptance command (waiting for it), then start the verifier; ``wait`` reads the verdict."""
    say = say or (lambda line: None)
    paths, stage_id = shot.paths, shot.stage_id
    files.ensure_dir(paths.state_dir)
    with files.locked(paths.lock, timeout=LOCK_WAIT_SECONDS):
        _not_in_flight(shot)
        envelope = read_envelope(paths.handoff(stage_id), stage_id)
        ended = outcomes.worker(envelope)  # as the tick reads it: only a pass goes on to the verifier
        if ended is not None and ended.why == "missing":
            running = (paths.log(stage_id, "worker").exists()
                       and read_exit(paths.exit_record(stage_id, "worker")) is None)
            hint = ("the worker is still running; wait for it" if running
                    else f"run 'autometta dispatch {shot.card.path} --wait' first")
            raise UserError(f"{paths.handoff(stage_id)}: no handoff from the worker yet; {hint}")
        if ended is not None and ended.why == "invalid":
            raise UserError(f"{envelope.error}; the worker's handoff is invalid ({ended.marker}), "
                            "so there is nothing to verify; dispatch the worker again")
        if ended is not None:
            raise UserError(f"{paths.handoff(stage_id)}: the worker handed off status={envelope.kind} "
                            f"({envelope.notes}); the tick would mark the stage failed without a verifier")
        alive = verdicts.worker_run_alive(paths, stage_id)
        if alive:
            raise UserError(f"{paths.log(stage_id, 'worker')}: {alive}; wait for it to end (it could still change "
                            "what the verifier judges), then verify again")
        _, log_forged = run_log(paths.log(stage_id, "worker"), read_exit(paths.exit_record(stage_id, "worker")))
        if log_forged is not None:  # as the tick fails such a stage: nothing read from that log counts
            raise UserError(f"{paths.log(stage_id, 'worker')}: {log_forged} ({LOG_FORGED_MARKER}); nothing "
                            "is verified: review the log and the tree, then dispatch again")
        _session_ended(shot, "worker")  # its run has ended
        work = _work(shot)
        # before anything is spent; measured where the worker worked, from where it started
        out_of_scope = scopegate.problem(work, _measured(shot), shot.card)
        if out_of_scope:
            raise UserError(f"{shot.card.path}: {out_of_scope}; the worker changed files its card does not allow, "
                            "so nothing is verified (the tick fails such a stage); revert them or change the card")
        problem = preflight(shot.ctx, shot.record.verifier, "verifier", shot.card)
        if problem:
            raise UserError(f"{shot.card.path}: the verifier {shot.record.verifier!r} cannot start here: "
                            f"{problem} (docs/troubleshooting.md explains each marker)")
        previous = verify_record(shot)
        if previous is not None and isinstance(previous.get("verifier_pid"), int) \
                and not _verifier_ended(shot, previous):
            raise UserError(f"{paths.log(stage_id, 'verifier')}: the verifier of the last verify run (pid "
                            f"{previous['verifier_pid']}) is still running; wait for it, then verify again")
        _settle(shot)
        forged = verdicts.forged(paths, stage_id, verdicts.run_of(paths, stage_id, previous),
                                 started=isinstance((previous or {}).get("verifier_pid"), int))
        if not forged:
            archive(paths, stage_id, verdicts_only=True)
        tree = gitops.worktree_fingerprint(work.work)
        _note(shot, stage_id=stage_id, worker_tree=tree, merged_tree=None, checked_tree=None,
              verify_started_at=now_iso(), **dict.fromkeys(_RUN_FIELDS))
    result: Dict[str, Any] = {"stage_id": stage_id, "verifier": shot.record.verifier,
                              "artefact": str(paths.verifier_artefact(stage_id)), "waited": wait}
    if forged:  # left in place for review; no run is recorded, so nothing is accepted
        result.update(overall="FAIL", marker=f"{verdicts.MARKER}: {forged}")
        return result
    if shot.card.acceptance_command:
        say(f"running the acceptance command for {stage_id}: {shot.card.acceptance_command}")
        _await(_start(work, shot, "acceptance"), shot)
        record = read_exit(paths.exit_record(stage_id, "acceptance")) or {}
        result["acceptance"] = {"command": shot.card.acceptance_command, "exit_code": record.get("exit_code"),
                                "log": str(paths.log(stage_id, "acceptance"))}
        if record.get("exit_code") != 0:
            result.update(overall="FAIL", marker="acceptance_failed")
            return result
        shot.record.acceptance = "pass"
    try:  # the verdict path is made now, for this verifier alone
        run = verdicts.begin(paths, stage_id, None)
    except verdicts.Forged as exc:
        result.update(overall="FAIL", marker=f"{verdicts.MARKER}: {exc.message}")
        return result
    shot.stage.update(run.fields(paths))
    _note(shot, **run.fields(paths))  # before it starts
    launched = _start(work, shot, "verifier")
    _note(shot, verifier_pid=launched.pid, verifier_started=launched.started)
    result.update(pid=launched.pid, log=str(paths.log(stage_id, "verifier")))
    if wait:
        _await(launched, shot)
        result.update(verdict_of(shot))
        result.update(_usage(shot, "verifier"))
        _session_ended(shot, "verifier")
    return result


#: What ``verify`` records of the verifier run it starts.
_RUN_FIELDS = (*verdicts.FIELDS, "verifier_pid", "verifier_started")


def verify_record(shot: Shot) -> Optional[Dict[str, Any]]:
    """The record as ``verify`` left it (the tree it saw, the verifier run it started), or None.

    ``verify`` writes it after the worker's run ended, so a record whose
    inode changed last before the runner wrote the worker's exit record was
    written by something else (the worker itself) and is not verify's. The
    change time, unlike the modification time, cannot be set back.
    """
    path = shot.paths.oneshot_record(shot.stage_id)
    try:
        changed = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISREG(changed.st_mode):
        return None
    try:
        worker_ended = os.stat(shot.paths.exit_record(shot.stage_id, "worker")).st_ctime
    except OSError:
        worker_ended = None  # no worker dispatched by hand: nothing to be older than
    if worker_ended is not None and changed.st_ctime < worker_ended:
        return None
    record = _record(shot)
    return record if record.get("verify_started_at") else None


def _verifier_ended(shot: Shot, record: Dict[str, Any]) -> bool:
    """Has the verifier ``verify`` started (the one in ``record``) ended?"""
    pid = record.get("verifier_pid")
    if not isinstance(pid, int):
        return False
    exit_record = read_exit(shot.paths.exit_record(shot.stage_id, "verifier"))
    if exit_record is not None and exit_record.get("runner_pid") == pid:
        return True
    started = record.get("verifier_started")
    return not liveness.is_alive(pid, started if isinstance(started, (int, float)) else None)


def read_verdict(shot: Shot, record: Dict[str, Any]) -> Artefact:
    """The verdict of the verifier run in ``record``: its file, else (once it ended) its final message."""
    paths, stage_id = shot.paths, shot.stage_id
    run = verdicts.run_of(paths, stage_id, record)
    artefact = verdicts.read(paths, stage_id, run)
    if artefact.kind != "missing" or run is None:
        return artefact
    try:
        family = families.for_identity(shot.record.verifier)
    except UserError:
        return artefact
    doc = artefact_from_message(family.final_message(read_log(paths.log(stage_id, "verifier"))))
    if doc is None:
        return artefact
    return judge_artefact_doc(doc, stage_id, "the verifier's final message")


def verdict_of(shot: Shot) -> Dict[str, Any]:
    """The verdict as the tick would act on it: overall, marker, criteria, headline, tree check.

    Only the verdict of the verifier ``verify`` started counts, once it has
    ended; it is then kept at ``state/verifiers/<id>.json``.
    """
    paths, stage_id = shot.paths, shot.stage_id
    out: Dict[str, Any] = {"artefact": str(paths.verifier_artefact(stage_id))}
    record = verify_record(shot)
    if record is None:
        out.update(overall=None, problem="no record of a verify run")
        return out
    run = verdicts.run_of(paths, stage_id, record)
    forged = verdicts.forged(paths, stage_id, run, started=isinstance(record.get("verifier_pid"), int))
    if forged:
        out.update(overall="FAIL", marker=f"{verdicts.MARKER}: {forged}")
        return out
    if run is None or not isinstance(record.get("verifier_pid"), int):
        out.update(overall=None, problem="no verifier was started by the last verify run")
        return out
    if not _verifier_ended(shot, record):
        out.update(overall=None, problem="the verifier has not finished")
        return out
    artefact = read_verdict(shot, record)
    if artefact.kind != "verdict":
        out.update(overall=None, problem=artefact.problem or "the verifier exited without writing a verdict")
        return out
    doc = artefact.doc or {}
    if artefact.doc is not None:
        verdicts.store(paths, stage_id, artefact.doc, run)  # autometta's copy, where the views read it
    out.update(overall=artefact.overall, criteria=doc.get("criteria") or [],
               headline=stagecommit.headline(shot.card.summary, doc),
               verifier_identity=doc.get("verifier_identity"))
    outcome = outcomes.verdict(artefact, lambda: tree_changed(shot))  # the tick's reading of a verdict
    if outcome.why == "problem":  # a panel's own count and the criteria override an overall
        out.update(overall="FAIL", status=outcome.status, marker=outcome.marker)
    elif outcome.why == "fail":
        out["marker"] = outcome.marker
    elif outcome.why == "modified_tree":
        out.update(overall="FAIL", marker=outcome.marker)
    return out


def tree_changed(shot: Shot) -> bool:
    """Whether the tree outside state/ differs from the one ``verify`` recorded (False without a record).

    The stage's worktree once ``accept`` rebased it onto a base that moved
    (and rechecked it there) counts as the tree it judged too.
    """
    record = _record(shot)
    recorded = record.get("worker_tree")
    if not recorded:
        return False
    try:
        work = _work(shot).work
    except UserError:
        return False  # landed and removed already, or never made
    return gitops.worktree_fingerprint(work) not in (recorded, record.get("merged_tree"))


# ---------------------------------------------------------------- accept


def accept(shot: Shot, warn: Optional[Say] = None) -> Dict[str, Any]:
    """Commit the worker's changes on a PASS verdict, exactly as the tick would.

    Needs the record of a ``verify`` run: a verdict counts only from the
    verifier that run started.
    """
    paths, stage_id = shot.paths, shot.stage_id
    files.ensure_dir(paths.state_dir)
    with files.locked(paths.lock, timeout=LOCK_WAIT_SECONDS):
        _not_in_flight(shot)
        if verify_record(shot) is None:
            raise UserError(f"{paths.oneshot_record(stage_id)}: no record of a verify run for {stage_id} (one "
                            "written before the worker's run ended is not verify's), and only a verdict from a "
                            f"verifier autometta started counts; run 'autometta verify {shot.card.path} --wait' "
                            "first")
        record = dict(_record(shot), id=stage_id)
        verdict = verdict_of(shot)
        artefact = paths.verifier_artefact(stage_id)
        if verdict.get("overall") is None:
            raise UserError(f"{artefact}: no verdict to accept ({verdict.get('problem')}); "
                            f"run 'autometta verify {shot.card.path} --wait' first")
        if _verifier_ended(shot, record):  # (a forged verdict fails the stage while its verifier may run)
            _session_ended(shot, "verifier")
        if verdict["overall"] != "PASS":
            undone = isolation.restore_branch(paths.root, record) if _in_tree(shot) else None
            if undone and warn:
                warn(undone)
            raise UserError(f"{artefact}: the verdict is FAIL ({verdict.get('marker')}); nothing committed, "
                            f"{'the working tree' if _in_tree(shot) else 'the stage worktree'} is left for review")
        if _in_tree(shot):
            isolation.fold_since_claim(paths.root, record)
            sha = stagecommit.commit_accepted(shot.ctx, _measured(shot), verdict["headline"], shot.card)
        elif record.get("landed") and not record.get("worktree_kept"):
            sha = None  # accepted before: landed, its worktree removed
        else:
            sha = _land(shot, _work(shot), record, verdict["headline"], warn)
    verdict.update(stage_id=stage_id, commit=sha, subject=stagecommit.subject(stage_id, verdict["headline"]))
    return verdict


def _land(shot: Shot, work: RepoContext, record: Dict[str, Any], headline: str, warn: Optional[Say]) -> Optional[str]:
    """Commit in the stage's worktree, rebase onto the base branch, recheck if it moved, fast-forward, clean up.

    The tick's landing (autometta.git.worktrees), done at once. Whatever stops it
    leaves the base branch as it was and the worktree for another ``accept``.
    """
    paths, stage_id = shot.paths, shot.stage_id
    base, where = str(record.get("base") or ""), work.work
    if not base:
        raise UserError(f"{paths.oneshot_record(stage_id)}: no base branch recorded; dispatch again")
    worktrees.fold_commits(where, base)  # the agents' commits, and an earlier accept's, become one commit
    stagecommit.commit_accepted(work, _measured(shot), headline, shot.card)
    rebased = worktrees.rebase(where, base)
    if rebased.conflicts:
        raise UserError(f"{stage_id} does not merge onto {base}: conflicts in {', '.join(rebased.conflicts[:10])} "
                        f"(merge_conflict); {base} is as it was; rebase {where} onto {base} there, then accept again")
    tree = gitops.worktree_fingerprint(where)
    if tree not in (record.get("worker_tree"), record.get("checked_tree")):
        # rebased onto commits made since: a tree nobody checked yet (the verdict still applies to it)
        _note(shot, merged_tree=tree)
        if shot.card.acceptance_command:
            _await(_start(work, shot, "postmerge"), shot)
            code = (read_exit(paths.exit_record(stage_id, "postmerge")) or {}).get("exit_code")
            if code != 0:
                raise UserError(f"{paths.log(stage_id, 'postmerge')}: the acceptance command exited {code} on "
                                f"{stage_id} rebased onto {base} (post_merge_acceptance_failed); {base} is as it was")
            _note(shot, checked_tree=tree)
    clash = worktrees.collisions(paths.root, where, base)
    if clash:
        raise UserError(f"{paths.root}: {stage_id} changes files that are also changed here ({hints.listed(clash)}) "
                        f"(dirty-working-tree); {hints.set_aside(clash)}; then accept again")
    head = gitops.head_sha(where)
    if not head or not rebased.onto or not worktrees.land(paths.root, base, head, rebased.onto):
        raise UserError(f"{base} moved while {stage_id} was landing; nothing changed, accept again")
    sha = head if head != rebased.onto else None
    _note(shot, landed=sha or rebased.onto, landed_at=now_iso())
    try:
        worktrees.remove(paths.root, where, record.get("branch"))
    except UserError as exc:
        _note(shot, worktree_kept=True)
        if warn:
            warn(f"landed, but could not remove {where} ({exc.message}); 'autometta tick --repair' removes it")
    return sha


# ---------------------------------------------------------------- what the commands print


def verdict_lines(result: Dict[str, Any]) -> List[str]:
    """The verdict as a few lines: overall and marker, then one row per criterion."""
    stage_id = result.get("stage_id", "")
    overall = result.get("overall")
    if overall is None:
        return [f"{stage_id}: no verdict yet ({result.get('problem')}); it will be at {result.get('artefact')}"]
    head = f"{stage_id}: {overall}"
    if result.get("marker"):
        head += f" ({result['marker']})"
    if result.get("verifier_identity"):
        head += f" by {result['verifier_identity']}"
    lines = [head]
    for criterion in result.get("criteria") or []:
        if isinstance(criterion, dict):
            lines.append(f"  {criterion.get('id', '?')!s:>3}  {criterion.get('verdict', '?'):<4}  "
                         f"{criterion.get('name', '')}: {criterion.get('evidence', '')}")
    if result.get("headline"):
        lines.append(f"  headline: {result['headline']}")
    return lines

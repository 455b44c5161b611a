"""Which verdict counts: only the one written by the verifier run autometta started.

Each verifier dispatch gets a verdict path of its own, made from a nonce nobody
can guess: ``state/verifiers/<id>.<nonce>.json`` (a panel member's:
``state/verifiers/<id>.panel/<name>.<nonce>.json``). The run is recorded
before its verifier starts (``verifier_run_artefact`` and
``verifier_dispatched_at`` in the stage, or the one-shot record of
``autometta verify``) and the path is given to that verifier alone: its
environment (``AUTOMETTA_ARTEFACT``) and its prompt. The worker gets no
verdict path at all.

:func:`forged` says why a stage's verdict files cannot be trusted (the stage
fails ``verdict_forged``):

* a file at ``state/verifiers/<id>.json`` that is not autometta's copy of the
  current run's verdict. autometta is that path's only writer: it stores a
  verdict there (:func:`store`) once it accepted it, for the views and for
  the bash version, which read verdicts there;
* a verdict at the run's path when no verifier was started for it;
* the run's file is a symlink, not a regular file, has another hard link, or
  was last written before the run was dispatched (a file made earlier and
  moved in);
* any other file of the stage in ``state/verifiers/``: another nonce, a
  guessed name, a panel vote that is not one of the current panel's.

The tick checks on every tick while a stage is in flight (a verdict that
exists before the verifier is dispatched fails the stage before one is), and
again at each verifier dispatch; ``verify`` and ``accept`` check the same.
A panel checks each member's file with :func:`check_file`.

Also here, so that there is one place to extend: :func:`worker_run_alive`,
whether a process of the worker's run is still known to be alive (no verifier
is dispatched while one is).
"""

from __future__ import annotations

import os
import re
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

from . import files
from .agents import liveness, processes
from .agents.spawn import read_exit, read_runner
from .books import digests
from .envelope import Artefact, archive, read_artefact
from .errors import UserError
from .paths import STATE_DIRNAME, RepoPaths
from .stagerecord import StageRecord
from .timeutil import now_iso, parse_iso

MARKER = "verdict_forged"
NONCE_BYTES = 16
_NONCE = "[0-9a-f]{%d}" % (2 * NONCE_BYTES)
#: How much earlier than its dispatch a verdict's modification time may read: file systems keep
#: coarse times (a jiffy on Linux, a second on HFS+, two on FAT), so a fresh file can look a little old.
MTIME_SLACK_SECONDS = 2.0


class Forged(UserError):
    """A verdict autometta cannot attribute to the verifier run it started."""

    marker = MARKER


@dataclass(frozen=True)
class Run:
    """One verifier dispatch: where its verdict goes, and when it was dispatched (epoch seconds)."""

    artefact: Path
    dispatched_at: float

    def fields(self, paths: RepoPaths) -> Dict[str, Any]:
        """As recorded in a stage of state.yaml (and in the one-shot record)."""
        return {"verifier_run_artefact": rel(paths, self.artefact), "verifier_dispatched_at": self.dispatched_at}


#: The stage fields a run is recorded in; cleared with the stage's other verifier fields.
FIELDS = ("verifier_run_artefact", "verifier_dispatched_at")


def rel(paths: RepoPaths, path: Path) -> str:
    try:
        return str(Path(path).relative_to(paths.root))
    except ValueError:
        return str(path)


def nonce() -> str:
    return os.urandom(NONCE_BYTES).hex()


def new_run(paths: RepoPaths, stage_id: str, now: Optional[float] = None) -> Run:
    return Run(paths.verifier_run_artefact(stage_id, nonce()), time.time() if now is None else now)


def run_of(paths: RepoPaths, stage_id: str, record: Optional[Mapping[str, Any]]) -> Optional[Run]:
    """The verifier run ``record`` (a stage, the one-shot record) names, or None if it names none (well)."""
    if not isinstance(record, Mapping):
        return None
    path, at = record.get("verifier_run_artefact"), record.get("verifier_dispatched_at")
    if not isinstance(path, str) or not isinstance(at, (int, float)) or isinstance(at, bool):
        return None
    if not re.fullmatch(rf"{STATE_DIRNAME}/verifiers/{re.escape(stage_id)}\.{_NONCE}\.json", path):
        return None  # only a path autometta makes; never one pointing elsewhere
    return Run(paths.root / path, float(at))


def is_legacy(stage: Mapping[str, Any]) -> bool:
    """A stage a bash tick (or an autometta before per-dispatch paths) dispatched its verifier for.

    Its verifier was told ``state/verifiers/<id>.json``, so that is where its
    verdict is read; state.yaml says so (``verifier_artefact`` set at dispatch,
    no run recorded). autometta itself sets ``verifier_artefact`` only once it
    stored a verdict it accepted, after which the stage is no longer in flight.
    """
    rec = StageRecord(stage)
    return not rec.verifier_run_artefact and bool(rec.verifier_artefact)


def artefact_of(paths: RepoPaths, stage: Mapping[str, Any]) -> Path:
    """The verdict path of the stage's current verifier run (UserError if none is recorded)."""
    rec = StageRecord(stage)
    run = run_of(paths, str(rec.id), stage)
    if run is None:
        raise UserError(f"{paths.state_yaml}: no verifier run is recorded for {rec.id}; autometta makes "
                        "one at each verifier dispatch")
    return run.artefact


def current_path(paths: RepoPaths, stage: Mapping[str, Any]) -> Optional[Path]:
    """Where the stage's verdict is read from: its run's path (a legacy stage: the bash path), or None."""
    rec = StageRecord(stage)
    stage_id = str(rec.id)
    run = run_of(paths, stage_id, stage)
    if run is not None:
        return run.artefact
    return paths.verifier_artefact(stage_id) if is_legacy(stage) else None


def read(paths: RepoPaths, stage_id: str, run: Optional[Run], *, legacy: bool = False) -> Artefact:
    """The verdict of ``run`` (missing, half-written, or a verdict); nothing else is read as one."""
    if run is not None:
        return read_artefact(run.artefact, stage_id)
    if legacy:
        return read_artefact(paths.verifier_artefact(stage_id), stage_id)
    return Artefact("missing")


def run_started(paths: RepoPaths, stage_id: str, run: Optional[Run], pid: Any) -> bool:
    """Was a verifier process started for ``run``? Its pid is recorded while it runs; once accounted,
    the runner's exit record says when it started (the launch removes an older one first)."""
    if pid:
        return True
    if run is None:
        return False
    record = read_exit(paths.exit_record(stage_id, "verifier"))
    started = parse_iso(str((record or {}).get("started_at") or ""))
    return started is not None and started >= run.dispatched_at - MTIME_SLACK_SECONDS


# ------------------------------------------------------------------ what is forged


def check_file(path: Path, since: Optional[float], shown: Optional[str] = None) -> Optional[str]:
    """Why ``path`` is not a file its verifier wrote after ``since``, or None (also when it does not exist)."""
    shown = shown or str(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"{shown} cannot be examined ({exc.strerror})"
    if stat.S_ISLNK(st.st_mode):
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        return f"{shown} is a symlink (to {target}), not a file its verifier wrote"
    if not stat.S_ISREG(st.st_mode):
        return f"{shown} is not a regular file"
    if st.st_nlink > 1:
        return f"{shown} has {st.st_nlink} hard links: it was linked in, not written by its verifier"
    if since is not None and st.st_mtime < since - MTIME_SLACK_SECONDS:
        return (f"{shown} was last written at {now_iso(st.st_mtime)}, before its verifier was dispatched "
                f"at {now_iso(since)}")
    return None


def _load(path: Path) -> Any:
    try:
        return files.read_json(path, follow=False)  # bounded: a verifier wrote it
    except UserError:
        return None


def panel_members(paths: RepoPaths, stage_id: str, run: Optional[Run]) -> List[str]:
    """File names of the panel members' verdicts for ``run`` (from its panel plan), or none."""
    if run is None:
        return []
    plan = _load(paths.logs / f"{stage_id}-panel.plan.json")
    if not isinstance(plan, dict) or plan.get("out") != str(run.artefact) \
            or not isinstance(plan.get("panellists"), list):
        return []
    names = []
    for entry in plan["panellists"]:
        artefact = entry.get("artefact") if isinstance(entry, dict) else None
        if isinstance(artefact, str) and Path(artefact).parent == paths.verifiers / f"{stage_id}.panel":
            names.append(Path(artefact).name)
    return names


def forged(paths: RepoPaths, stage_id: str, run: Optional[Run], *, started: bool,
           legacy: bool = False) -> Optional[str]:
    """Why the stage's verdict files cannot be trusted (``verdict_forged``), or None.

    ``run`` is the current verifier run (None before the first dispatch) and
    ``started`` whether its verifier process was started. A ``legacy`` stage
    (:func:`is_legacy`) was told the old path: only that its verdict there is
    a plain file is checked (a bash panel's votes are under ``<id>.panel/``).
    """
    if legacy:
        return check_file(paths.verifier_artefact(stage_id), None, rel(paths, paths.verifier_artefact(stage_id)))
    try:
        names = sorted(os.listdir(paths.verifiers))
    except OSError:
        return None
    canonical = paths.verifier_artefact(stage_id)
    # Never read as a verdict: autometta's quarantine of a half-written legacy verdict, and anything
    # named after the run's own file (its .invalid.json, an editor's temporary copy).
    allowed = (f"{stage_id}.json.invalid.json", run.artefact.name) if run is not None \
        else (f"{stage_id}.json.invalid.json",)
    for name in names:
        if not name.startswith(f"{stage_id}.") or name.startswith(allowed):
            continue
        path = paths.verifiers / name
        if name == canonical.name:
            problem = _canonical_problem(paths, stage_id, run)
        elif name == f"{stage_id}.panel":
            problem = _panel_problem(paths, stage_id, run)
        else:
            problem = f"{rel(paths, path)} is not the verdict path of this stage's verifier run"
        if problem:
            return problem
    if run is not None:
        problem = check_file(run.artefact, run.dispatched_at, rel(paths, run.artefact))
        if problem:
            return problem
        if not started and os.path.lexists(run.artefact):
            return f"{rel(paths, run.artefact)} holds a verdict, but no verifier was started for it"
    return None


def _canonical_problem(paths: RepoPaths, stage_id: str, run: Optional[Run]) -> Optional[str]:
    path = paths.verifier_artefact(stage_id)
    shown = rel(paths, path)
    problem = check_file(path, None, shown)
    if problem:
        return problem
    if run is None:
        return f"{shown} exists, but no verifier has run for this stage (autometta alone writes that file)"
    stored = _load(path)
    if stored is None or not os.path.isfile(run.artefact) or stored != _load(run.artefact):
        return (f"{shown} is not autometta's copy of the verdict of this stage's verifier run "
                f"({rel(paths, run.artefact)}); autometta alone writes that file")
    return None


def _panel_problem(paths: RepoPaths, stage_id: str, run: Optional[Run]) -> Optional[str]:
    folder = paths.verifiers / f"{stage_id}.panel"
    shown = rel(paths, folder)
    if folder.is_symlink() or not folder.is_dir():
        return f"{shown} is not a folder autometta made"
    members = panel_members(paths, stage_id, run)
    for name in sorted(os.listdir(folder)):  # a temporary file (".name.tmp") or one named after a member's is no vote
        if not name.startswith((".", *members)):
            return f"{shown}/{name} is not the verdict path of a member of this stage's verifier panel"
    for name in members:
        problem = check_file(folder / name, run.dispatched_at if run else None, f"{shown}/{name}")
        if problem:
            return problem
    return None


# ------------------------------------------------------------------ dispatch and acceptance


def begin(paths: RepoPaths, stage_id: str, previous: Optional[Run], *, legacy: bool = False,
          now: Optional[float] = None) -> Run:
    """A new run for a verifier about to be dispatched: the stage's files checked, earlier attempts archived.

    Raises :class:`Forged` when the files hold a verdict no verifier run of
    autometta's wrote (one that exists before this verifier is dispatched).
    """
    problem = forged(paths, stage_id, previous, started=True, legacy=legacy)
    if problem:
        raise Forged(problem)
    archive(paths, stage_id, now, verdicts_only=True)
    files.ensure_dir(paths.verifiers)
    return new_run(paths, stage_id)  # the real clock, whatever ``now`` says: files are stamped by it


def begin_stage(paths: RepoPaths, stage: Dict[str, Any], now: Optional[float] = None) -> Run:
    """:func:`begin` for a stage of state.yaml, recording the new run in it."""
    rec = StageRecord(stage)
    stage_id = str(rec.id)
    run = begin(paths, stage_id, run_of(paths, stage_id, stage), legacy=is_legacy(stage), now=now)
    stage.update(run.fields(paths), verifier_artefact=None)
    return run


def store(paths: RepoPaths, stage_id: str, doc: Any, run: Optional[Run]) -> Path:
    """Keep a verdict autometta accepted at ``state/verifiers/<id>.json``, where views and the bash version read it.

    A verdict the verifier gave as its final message is also written to its
    run's path, so that the two agree (:func:`forged` compares them).
    """
    if run is not None and not os.path.lexists(run.artefact):
        digests.write_json(paths, run.artefact, doc, mode=0o600)
    path = paths.verifier_artefact(stage_id)
    digests.write_json(paths, path, doc, mode=0o600)  # its digest in the controller's books (autometta.books.digests)
    return path


# ------------------------------------------------------------------ the worker's run


def worker_run_alive(paths: RepoPaths, stage_id: str) -> Optional[str]:
    """Why a process of the stage's worker run is known to be alive still, or None.

    The worker's runner leads a process group that everything the worker
    starts shares, unless it leaves it (``setsid``); the runner stops what is
    left of its run before it writes its exit record. So: the runner while
    it has not written its record, then any member of its group, then any
    process still carrying the run's mark (``AUTOMETTA_RUN_ID``, which the
    exit record names; :mod:`autometta.agents.processes`), a ``setsid`` escapee
    included.
    """
    exit_path = paths.exit_record(stage_id, "worker")
    record = read_exit(exit_path)
    runner = read_runner(exit_path)
    groups = set()
    if runner is not None:
        if record is None and liveness.is_alive(runner.pid, runner.started):
            return f"the worker's runner (pid {runner.pid}) is still running"
        groups.add(runner.pgid)
    if record is not None and isinstance(record.get("runner_pid"), int):
        groups.add(int(record["runner_pid"]))
    for group in sorted(groups):
        if group > 1 and liveness.group_alive(group):
            members = liveness.group_members(group) or []
            shown = " ".join(str(pid) for pid in members[:5]) or "?"
            return f"process(es) {shown} of the worker's run (process group {group}) are still running"
    mark = (record or {}).get("run_id") or (runner.run_id if runner is not None else None)  # a lost runner's too
    marked = processes.marked(mark) if isinstance(mark, str) and mark else []
    if marked:
        shown = " ".join(str(pid) for pid, _started in marked[:5])
        return f"process(es) {shown} of the worker's run (marked {mark}) are still running"
    return None

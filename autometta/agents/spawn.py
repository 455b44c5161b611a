"""The one way autometta starts an agent: detached, supervised, recorded.

:func:`launch` starts :mod:`autometta.agents.runner` in a new session (so it outlives
the tick and no terminal hang-up reaches it); the runner starts the agent in
its own process group and writes an exit record when the agent is done.
The tick keeps what :class:`Launched` says (pid, pgid, start time) and on
later ticks asks, in this order:

1. ``liveness.is_alive(pid, started)`` -- the runner is still there, and the run
   goes on (a record found meanwhile was not written by the runner, which
   writes it as the last thing it does: an agent can write files there too);
2. :func:`read_exit` -- the runner is gone and its record says how the run
   ended: exit code, signal, run time, whether the budget stopped it;
3. neither -- the runner died without a record (SIGKILL, a crash, a reboot):
   the run is *lost*, and what is left of it is found by its mark.

To stop a run: ``liveness.signal_group(pgid, SIGTERM)``; the runner passes it on,
escalates to SIGKILL after its grace period and still writes the record.

The controller home (:attr:`LaunchSpec.home`) goes to the runner as
``--home``: the runner's own environment is the agent's, so it could not tell
where a crash log of a bug in the runner belongs (autometta.crash).

The runner masks the agent's output as it writes the log
(:mod:`autometta.agents.logwriter`). The secret values to mask (every value this
process resolved, :func:`autometta.secrets.registered`, and
``LaunchSpec.secret_values``) reach it through a pipe it inherits
(``--secrets-fd``), never argv or a file.

Every run is marked: ``AUTOMETTA_RUN_ID`` in the runner's (and so the
agent's) environment holds the run's id (:attr:`LaunchSpec.run_id`, or a new
one), which :mod:`autometta.agents.processes` finds all of the run's processes by,
``setsid`` escapees included, and which the runner writes into its exit
record. The tick records the id before it launches, so a tick killed before
it learns the pid still finds the run.

The runner is started as ``python -I -c BOOTSTRAP ROOT runner-args...``: ``-I``
keeps the agent's working directory and ``PYTHON*`` variables out of the
runner's imports, and ROOT (the folder holding the ``autometta`` package, or
the pyz file itself) is put on ``sys.path`` by the bootstrap, so nothing like
``PYTHONPATH`` is added to the agent's environment.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence

import autometta

from .. import faults, files, schema, secrets
from ..errors import UserError
from ..timeutil import now_iso
from . import liveness, logwriter, processes

_ON_PATH = "import sys; sys.path.insert(0, sys.argv.pop(1)); "

#: Run by ``python -I -c``; argv[1] is the import root, the rest goes to the runner.
BOOTSTRAP = _ON_PATH + "from autometta.agents.runner import main; sys.exit(main(sys.argv[1:]))"

#: Runs autometta's own CLI the same way (for agents that are autometta itself:
#: a verifier panel, an API-transport verifier).
CLI_BOOTSTRAP = _ON_PATH + "from autometta.cli import main; sys.exit(main(sys.argv[1:]))"

#: ``error`` of the record returned for an exit file that is not an exit record
CORRUPT = "corrupt exit record"

#: Set by the interpreter at startup in a C locale (PEP 538); the runner undoes it.
_COERCED = ("LC_CTYPE",)

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(autometta.__file__)))


def import_root() -> str:
    """The sys.path entry autometta is imported from: a checkout/site-packages folder or the pyz.

    ``autometta.__file__`` is ``<root>/autometta/__init__.py``; from a zipapp
    ``<root>`` is the archive itself (``/x/autometta.pyz``), which zipimport
    accepts as a sys.path entry.
    """
    return _ROOT


@dataclass
class LaunchSpec:
    argv: List[str]
    cwd: Path
    env: Dict[str, str]
    log_path: Path
    exit_path: Path
    budget_seconds: Optional[int] = None
    #: Secret values the runner masks in the log, besides every value this process resolved.
    secret_values: Sequence[str] = ()
    #: the run's mark (processes.new_mark()); None: launch makes one
    run_id: Optional[str] = None
    #: the controller home (its root): a bug in the runner leaves its crash log in ``<home>/log``
    #: (autometta.crash); None: no crash log, the exit record alone says what failed
    home: Optional[Path] = None


@dataclass
class Launched:
    pid: int  #: the runner's pid
    pgid: int  #: its process group: runner, agent and the agent's children
    started: float  #: the runner's start time (liveness.start_time), for liveness.is_alive
    started_at: str  #: when launch started it, UTC ``Z``
    run_id: Optional[str] = None  #: the run's mark (``AUTOMETTA_RUN_ID``); None in records older than marks


def cached(bootstrap: str) -> str:
    """``bootstrap`` loading autometta's bytecode from this process's cache first (when it runs from the
    pyz, see :mod:`autometta.bytecache`). The cache is named outright: the child's environment is an agent's."""
    from .. import bytecache

    root = bytecache.active_root()
    if root is None:
        return bootstrap
    return _ON_PATH + f"from autometta import bytecache; bytecache.install({root!r}); " + bootstrap[len(_ON_PATH):]


def self_argv(*args: str) -> List[str]:
    """An argv that runs ``autometta <args>`` with this interpreter, from a pyz or a checkout."""
    return [sys.executable, "-I", "-c", cached(CLI_BOOTSTRAP), import_root(), *args]


def runner_args(spec: LaunchSpec, secrets_fd: Optional[int] = None) -> List[str]:
    """The runner's command line for ``spec`` (after the bootstrap and import root)."""
    args = ["--exit-file", str(spec.exit_path), "--log", str(spec.log_path)]
    if secrets_fd is not None:
        args += ["--secrets-fd", str(secrets_fd)]
    if spec.budget_seconds is not None:
        args += ["--budget-seconds", str(spec.budget_seconds)]
    if spec.home is not None:
        args += ["--home", str(spec.home)]
    for name in _COERCED:
        if name in spec.env:
            args += ["--env-set", f"{name}={spec.env[name]}"]
        else:
            args += ["--env-unset", name]
    return args + ["--", *spec.argv]


def launch(spec: LaunchSpec) -> Launched:
    """Start ``spec.argv`` under the runner, detached; return how to find it again.

    A stale exit file is removed first, so a record seen later belongs to
    this run. The log is created (0600) before the runner starts, and the
    runner's own stderr goes to it, so even an interpreter that fails to
    start the runner leaves its reason in the log.
    """
    if not spec.argv:
        raise UserError(f"{spec.log_path}: nothing to launch (empty command)")
    # absolute, because the runner works in spec.cwd, not in our folder
    spec = dataclasses.replace(spec, log_path=Path(os.path.abspath(spec.log_path)),
                               exit_path=Path(os.path.abspath(spec.exit_path)),
                               home=None if spec.home is None else Path(os.path.abspath(spec.home)))
    if not sys.executable:
        raise UserError("cannot find the Python interpreter (sys.executable is empty); "
                        "run autometta with an explicit python3")
    for folder in (spec.exit_path.parent, spec.log_path.parent):
        if not folder.is_dir():
            raise UserError(f"{folder}: folder does not exist; create it before launching an agent")
    try:
        os.unlink(spec.exit_path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise UserError(f"{spec.exit_path}: cannot remove the old exit record ({exc.strerror})") from exc
    try:
        log_fd = files.open_fresh(spec.log_path)  # never a FIFO an agent left there (it would hang the tick)
    except OSError as exc:
        raise UserError(f"{spec.log_path}: cannot open the agent log ({exc.strerror})") from exc
    try:
        values_fd = _values_pipe([*spec.secret_values, *secrets.registered()])
    except BaseException:
        os.close(log_fd)
        raise
    run_id = spec.run_id or processes.new_mark()
    env = dict(spec.env)
    env[processes.ENV] = processes.chained(run_id, os.environ.get(processes.ENV))  # inside a run: its too
    command = [sys.executable, "-I", "-c", cached(BOOTSTRAP), import_root(), *runner_args(spec, values_fd)]
    try:
        os.fchmod(log_fd, 0o600)
        faults.point("spawn.before", spec.exit_path.name)
        with _stops_held():
            proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log_fd,
                                    cwd=str(spec.cwd), env=env, start_new_session=True,
                                    close_fds=True, pass_fds=(values_fd,))
    except OSError as exc:
        raise UserError(f"cannot start {sys.executable} in {spec.cwd} ({exc.strerror or exc}); "
                        f"check that the folder exists and the interpreter runs") from exc
    finally:
        os.close(log_fd)
        os.close(values_fd)
    started_at = now_iso()
    started = liveness.start_time(proc.pid)
    _CHILDREN[:] = [child for child in _CHILDREN if child.poll() is None]  # reaps finished runners
    _CHILDREN.append(proc)
    launched = Launched(pid=proc.pid, pgid=proc.pid, started=time.time() if started is None else started,
                        started_at=started_at, run_id=run_id)
    _record_runner(spec.exit_path, launched)
    faults.point("spawn.after", spec.exit_path.name)
    return launched


def _values_pipe(values: List[str]) -> int:
    """The read end of a pipe holding ``values`` (JSON) and then its end, for the runner to inherit."""
    try:
        payload = logwriter.encode_values(values)
    except ValueError as exc:
        raise UserError(f"cannot hand the runner the secrets to mask: {exc}") from None
    read_fd, write_fd = os.pipe()
    try:
        view = memoryview(payload)
        while view:  # a few hundred bytes: the pipe's buffer holds them before the runner reads
            view = view[os.write(write_fd, view):]
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    return read_fd


@contextlib.contextmanager
def _stops_held() -> Iterator[None]:
    """Block SIGTERM, SIGINT and SIGHUP while the runner is forked: it inherits the mask, so a stop sent
    while its interpreter starts waits for its handlers (it unblocks them) instead of killing it recordless."""
    mask = getattr(signal, "pthread_sigmask", None)
    if mask is None:
        yield
        return
    old = mask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
    try:
        yield
    finally:
        mask(signal.SIG_SETMASK, old)


def runner_record(exit_path: Path) -> Path:
    """``<id>-<role>.runner.json`` next to the exit record: which runner :func:`launch` started last."""
    name = exit_path.name
    stem = name[: -len(".exit.json")] if name.endswith(".exit.json") else name
    return exit_path.with_name(stem + ".runner.json")


def _record_runner(exit_path: Path, launched: Launched) -> None:
    """Note the runner on disk the moment it exists, so a tick killed before it saves state.yaml
    leaves a trace a later tick (or ``--repair``) can find the orphan by. Best effort."""
    try:
        files.write_json(runner_record(exit_path), dataclasses.asdict(launched), mode=0o600)
    except UserError:
        pass


def read_runner(exit_path: Path) -> Optional[Launched]:
    """The runner :func:`launch` last started for ``exit_path``, or None (no record, or not one of ours)."""
    try:
        doc = files.read_json(runner_record(exit_path), limit=64 * 1024)
    except UserError:
        return None
    if not isinstance(doc, dict) or schema.problems(doc, "runner-record"):
        return None
    run_id = doc.get("run_id")
    return Launched(pid=int(doc["pid"]), pgid=int(doc["pgid"]), started=float(doc["started"]),
                    started_at=str(doc["started_at"]), run_id=run_id if isinstance(run_id, str) else None)


#: Popen objects of runners this process started and has not seen finish. Kept
#: so they are not reported as "still running" when garbage-collected; exited
#: runners are reaped here on the next launch or by liveness.is_alive.
_CHILDREN: List[subprocess.Popen] = []


def read_exit(exit_path: Path) -> Optional[dict]:
    """The runner's exit record, or None while there is none.

    The runner writes it atomically (temp file, fsync, rename), so a file that
    is not a JSON object was written by someone else; it is returned as a
    record with ``exit_code`` null and ``error`` :data:`CORRUPT`, so the run
    still counts as over and failed, and nothing is raised.
    """
    if not os.path.lexists(exit_path):
        return None
    try:
        doc = files.read_json(exit_path, limit=1024 * 1024)
    except UserError:
        return _corrupt()
    if not isinstance(doc, dict) or schema.problems(doc, "exit-record"):
        return _corrupt()
    return doc


def _corrupt() -> dict:
    return {"pid": None, "runner_pid": None, "exit_code": None, "signal": None, "started_at": None,
            "ended_at": None, "seconds": None, "timed_out": False, "error": CORRUPT, "run_id": None,
            "log_sha256": None, "log_forged": None}

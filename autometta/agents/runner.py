"""The supervisor that wraps every agent: exact exit code, run time and a finished record.

    python -m autometta.agents.runner --exit-file PATH --log PATH [--budget-seconds N]
        [--kill-grace SECONDS] [--env-unset NAME]... [--env-set NAME=VALUE]...
        [--secrets-fd FD] [--home PATH] -- command...

:func:`autometta.agents.spawn.launch` starts this in a new session, so the runner
leads a process group that the agent and everything the agent starts share
(pgid = runner pid); the tick stops them all with one ``killpg``. The run's
mark (``AUTOMETTA_RUN_ID`` in the environment launch gives the runner, see
:mod:`autometta.agents.processes`) and, on Linux, the runner's role as the *child
subreaper* of everything the agent starts, also find processes that left the
group (``setsid``): "the run" below is all of them.

What it does:

1. truncates the log (mode 0600) and starts the command with stdin from
   /dev/null and stdout+stderr going, through a pipe, into the log, masked
   line by line (:mod:`autometta.agents.logwriter`: the secret values read from
   ``--secrets-fd``, an inherited pipe that launch fills, and every key
   shape), in the runner's cwd, environment and process group;
2. waits for it. With ``--budget-seconds N``, at 1.5 x N it sends SIGTERM to
   the whole run (ignoring it itself for that instant), and SIGKILL to every
   other process of it ``--kill-grace`` seconds (default 10) later: a hard stop
   even if no tick ever runs again. SIGTERM, SIGINT or SIGHUP sent to the
   runner are forwarded to the agent; if the agent is still there
   ``--kill-grace`` seconds later, the run gets SIGKILL;
3. when the agent has exited, stops what it left behind in the run
   (SIGTERM, then SIGKILL after the grace), so a finished record means
   nothing of that run is still writing; orphans re-parented to the runner
   are reaped as they exit;
4. masks what the agent wrote into the log file itself, then writes the exit
   record atomically (see :func:`record`) and exits.

The record: ``pid`` (the agent), ``runner_pid``, ``exit_code`` (null if the
agent was killed by a signal), ``signal`` (the signal that killed the agent,
else the first signal the runner received and forwarded, else null),
``started_at``/``ended_at`` (UTC, ``Z``), ``seconds`` (agent run time),
``timed_out`` (the budget stop fired), ``error`` (``could not start: ...``
with exit code 127 for a missing command, 126 for one that cannot be run;
``runner failed: ...`` for a bug in the runner itself) and ``run_id`` (the
run's mark, null when launched without one).

A bug in the runner (an exception it did not expect) still stops the agent and
writes the record. With ``--home`` (the controller home, which
:func:`autometta.agents.spawn.launch` passes on) it also leaves a crash log,
``<home>/log/crash-<time>.log``, as :mod:`autometta.crash` does for the CLI
and the tick (traceback, version, platform), and the record's ``error`` and
the runner's line in the log name it: ``runner failed: KeyError('x'); details
in <home>/log/crash-....log``. Without a home, or where its log folder takes
no file, only the record and the line say what failed (never the agent's
temporary folder or stderr, which are the agent's).

The runner's own notes go into the log as lines starting ``autometta-runner:``.
Everything the runner writes there it also hashes (:class:`autometta.agents.logwriter.Sink`):
once the run is over it compares the file with that, and the record says
``log_forged`` (why the log holds what it did not write: the agent wrote
into it, or swapped it) or ``log_sha256`` (the log as left, masked), so the
tick never reads an agent's own usage line, session id or limit message.
``--env-unset``/``--env-set`` change the agent's environment relative to the
runner's; launch uses them only to undo the interpreter's C-locale coercion
(PEP 538 sets ``LC_CTYPE`` at startup), so the agent sees exactly the
environment it was given. They must never carry secrets: argv is public.

Standard library plus :mod:`autometta.files`, :mod:`autometta.timeutil`,
:mod:`autometta.agents.liveness`, :mod:`autometta.agents.logwriter` and :mod:`autometta.agents.processes`, all cheap to
import (:mod:`autometta.crash` only when the runner meets a bug).
"""

from __future__ import annotations

import errno
import os
import select
import signal
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence

from .. import faults, files
from ..errors import UserError
from ..files import write_json
from ..redact import Redactor
from ..timeutil import now_iso
from . import logwriter, processes

DEFAULT_KILL_GRACE = 10.0
#: the hard stop fires at budget x this (the bash version's "budget + 50% grace")
BUDGET_FACTOR = 1.5
#: seconds what the agent leaves behind may take to end on its own before it is stopped
SETTLE_SECONDS = 0.5
#: longest single sleep of the wait loop; wake-ups normally come from signals
_MAX_NAP = 60.0
_FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_PREFIX = "autometta-runner: "


class ArgError(ValueError):
    pass


class Args:
    def __init__(self) -> None:
        self.exit_file: str = ""
        self.log: str = ""
        self.budget: Optional[float] = None
        self.grace: float = DEFAULT_KILL_GRACE
        self.env_unset: List[str] = []
        self.env_set: Dict[str, str] = {}
        self.secrets_fd: Optional[int] = None
        #: the controller home: a bug in the runner leaves its crash log in its log folder
        self.home: Optional[str] = None
        self.command: List[str] = []


def parse_args(argv: Sequence[str]) -> Args:
    """Parse the runner's command line (no argparse: it is slow to import and fussy about ``--``)."""
    args = Args()
    items = list(argv)
    i = 0
    while i < len(items):
        item = items[i]
        if item == "--":
            args.command = items[i + 1:]
            break
        name, eq, value = item.partition("=")
        if name not in ("--exit-file", "--log", "--budget-seconds", "--kill-grace", "--env-unset", "--env-set",
                        "--secrets-fd", "--home"):
            raise ArgError(f"unknown argument {item!r}")
        if not eq:
            if i + 1 >= len(items):
                raise ArgError(f"{name} needs a value")
            value = items[i + 1]
            i += 1
        i += 1
        if name == "--exit-file":
            args.exit_file = value
        elif name == "--log":
            args.log = value
        elif name == "--home":
            args.home = value
        elif name in ("--budget-seconds", "--kill-grace"):
            try:
                number = float(value)
            except ValueError:
                raise ArgError(f"{name} needs a number of seconds, got {value!r}") from None
            if number != number or number < 0 or (name == "--budget-seconds" and number == 0):
                raise ArgError(f"{name} needs a positive number of seconds, got {value!r}")
            if name == "--budget-seconds":
                args.budget = number
            else:
                args.grace = number
        elif name == "--env-unset":
            args.env_unset.append(value)
        elif name == "--secrets-fd":
            if not value.isdigit():
                raise ArgError(f"--secrets-fd needs a file descriptor number, got {value!r}")
            args.secrets_fd = int(value)
        else:
            key, sep, val = value.partition("=")
            if not sep or not key:
                raise ArgError(f"--env-set needs NAME=VALUE, got {value!r}")
            args.env_set[key] = val
    if not args.exit_file or not args.log:
        raise ArgError("--exit-file and --log are required")
    return args


def record(*, pid: Optional[int], exit_code: Optional[int], sig: Optional[int], started: float,
           ended: float, seconds: float, timed_out: bool, error: Optional[str],
           run_id: Optional[str] = None, log_sha256: Optional[str] = None,
           log_forged: Optional[str] = None) -> dict:
    """The exit record, in the order it is written."""
    return {
        "pid": pid,
        "runner_pid": os.getpid(),
        "exit_code": exit_code,
        "signal": sig,
        "started_at": now_iso(started),
        "ended_at": now_iso(ended),
        "seconds": round(max(0.0, seconds), 3),
        "timed_out": timed_out,
        "error": error,
        "run_id": run_id,
        "log_sha256": log_sha256,
        "log_forged": log_forged,
    }


class _Run:
    def __init__(self, args: Args) -> None:
        self.args = args
        self.log_fd = -1
        self.pending: List[int] = []
        self.first_signal: Optional[int] = None
        self.timed_out = False
        self.child: Optional[subprocess.Popen] = None
        self.leader = os.getpgrp() == os.getpid()
        self.redactor = Redactor()
        self.pump: Optional[logwriter.Pump] = None
        self.sink: Optional[logwriter.Sink] = None
        #: the run's mark, set by launch in our environment (the agent inherits it)
        self.mark = processes.own_mark(os.environ.get(processes.ENV))
        self.subreaper = False

    # ------------------------------------------------------------------ small effects

    def note(self, message: str) -> None:
        if self.sink is not None:
            self.sink.write((_PREFIX + self.redactor.text(message) + "\n").encode("utf-8", "replace"))

    def _on_signal(self, signum: int, _frame: object) -> None:
        self.pending.append(signum)  # acted on by the wait loop, never here

    def _others(self) -> List[int]:
        """Live processes of the run other than us: our group (if we lead it), the marked, our descendants."""
        self.reap()
        run = processes.Run(mark=self.mark, pgid=os.getpgrp() if self.leader else None, root=os.getpid())
        return processes.find(run)

    def term_group(self) -> None:
        """SIGTERM to every process of the run but the runner (which ignores it meanwhile)."""
        self._kill_child(signal.SIGTERM)
        if self.leader:
            previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
            try:
                os.killpg(os.getpgrp(), signal.SIGTERM)
            except OSError:
                pass
            finally:
                signal.signal(signal.SIGTERM, previous)
        processes.send(self._others(), signal.SIGTERM)  # those that left the group

    def kill_others(self) -> None:
        """SIGKILL every process of the run but the runner."""
        self._kill_child(signal.SIGKILL)
        for _ in range(3):  # again, in case one forked while we looked
            others = self._others()
            if not others:
                return
            processes.send(others, signal.SIGKILL)

    def reap(self) -> Optional[int]:
        """Collect every exited child (the agent, and orphans re-parented to us); the agent's return code.

        As a subreaper we inherit the agent's orphans, so ``waitpid(-1)``
        rather than the agent's pid alone; the agent's status is kept on its
        Popen object as ``poll()`` would have kept it.
        """
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            except OSError:  # pragma: no cover - EINTR is retried by Python itself
                break
            if pid == 0:
                break
            if self.child is not None and pid == self.child.pid and self.child.returncode is None:
                self.child.returncode = _exit_code(status)
        return None if self.child is None else self.child.returncode

    def _kill_child(self, sig: int) -> None:
        if self.child is not None and self.child.returncode is None:
            try:
                self.child.send_signal(sig)
            except OSError:
                pass

    # ------------------------------------------------------------------ the run

    def open_log(self) -> Optional[str]:
        try:
            self.log_fd = files.open_fresh(self.args.log)  # a FIFO or a link put there is never followed
        except OSError as exc:
            return f"could not start: cannot open log {self.args.log} ({exc.strerror})"
        try:
            os.fchmod(self.log_fd, 0o600)
        except OSError:
            pass
        self.sink = logwriter.Sink(self.log_fd)
        return None

    def child_env(self) -> Optional[Dict[str, str]]:
        if not self.args.env_unset and not self.args.env_set:
            return None
        env = dict(os.environ)
        for name in self.args.env_unset:
            env.pop(name, None)
        env.update(self.args.env_set)
        return env

    def wait(self, wake_fd: int, started_mono: float) -> None:
        """Wait for the child, forwarding signals and enforcing the budget."""
        assert self.child is not None
        grace = self.args.grace
        deadline = None if self.args.budget is None else started_mono + self.args.budget * BUDGET_FACTOR
        kill_at: Optional[float] = None
        while self.reap() is None:
            now = time.monotonic()
            while self.pending:
                sig = self.pending.pop(0)
                if self.first_signal is None:
                    self.first_signal = sig
                    self.note(f"received {signal.Signals(sig).name}; passing it on to pid {self.child.pid}")
                self._kill_child(sig)
                if kill_at is None:
                    kill_at = now + grace
            if deadline is not None and not self.timed_out and now >= deadline:
                self.timed_out = True
                self.note(f"budget {self.args.budget:g}s x {BUDGET_FACTOR:g} exceeded after "
                          f"{now - started_mono:.1f}s; stopping the process group (SIGTERM, "
                          f"SIGKILL after {grace:g}s)")
                self.term_group()
                kill_at = now + grace if kill_at is None else min(kill_at, now + grace)
            if kill_at is not None and now >= kill_at:
                self.note(f"pid {self.child.pid} still running {grace:g}s after SIGTERM; sending SIGKILL")
                self.kill_others()
                kill_at = now + 1.0  # SIGKILL cannot be refused; check again shortly regardless
            nap = _MAX_NAP
            for moment in (deadline if not self.timed_out else None, kill_at):
                if moment is not None:
                    nap = min(nap, moment - now)
            if self.reap() is not None:
                break
            try:
                select.select([wake_fd], [], [], max(0.0, nap))
            except OSError as exc:  # pragma: no cover - EINTR is retried by Python itself
                if exc.errno != errno.EINTR:
                    raise
            _drain(wake_fd)

    def sweep(self) -> None:
        """After the agent exits: stop what it left running in the run.

        What is still on its way out (a sandbox's init ending after the
        sandbox reported the exit) gets :data:`SETTLE_SECONDS` to go first.
        """
        others = self._others()
        settle = time.monotonic() + SETTLE_SECONDS
        while others and time.monotonic() < settle:
            time.sleep(0.02)
            others = self._others()
        if not others:
            return
        self.note(f"stopping {len(others)} process(es) the agent left running: {' '.join(map(str, others))}")
        self.term_group()
        deadline = time.monotonic() + self.args.grace
        while time.monotonic() < deadline:
            if not self._others():
                return
            time.sleep(0.05)  # mostly not our children: nothing to wait on but the process table
        self.note(f"still running {self.args.grace:g}s after SIGTERM: {' '.join(map(str, self._others()))}; "
                  "sending SIGKILL")
        self.kill_others()
        self.reap()

    def run(self) -> int:
        args = self.args
        self.redactor = Redactor(logwriter.read_values(args.secrets_fd))
        started = time.time()
        started_mono = time.monotonic()
        problem = self.open_log()
        if problem is None and not args.command:
            problem = "could not start: no command given"
        if problem is not None:
            self.note(problem)
            return self.finish(pid=None, exit_code=127 if args.command == [] else None, sig=None,
                               started=started, seconds=0.0, error=problem)

        self.subreaper = processes.become_subreaper()  # orphans of the agent become ours, not init's
        wake_r, wake_w = os.pipe()
        for fd in (wake_r, wake_w):
            os.set_blocking(fd, False)
        saved = {sig: signal.getsignal(sig) for sig in (*_FORWARDED, signal.SIGCHLD)}
        old_wakeup = signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        try:
            signal.signal(signal.SIGCHLD, _ignore)  # a handler (not SIG_DFL) so exits wake the loop
            for sig in _FORWARDED:
                signal.signal(sig, self._on_signal)
            # launch starts us with these blocked, so a stop sent while we started up waited for the
            # handlers; unblocked before the agent starts (it inherits the mask), delivered now.
            if hasattr(signal, "pthread_sigmask"):
                signal.pthread_sigmask(signal.SIG_UNBLOCK, _FORWARDED)
            started = time.time()
            started_mono = time.monotonic()
            if self.pending:
                self.first_signal = self.pending[0]
                self.note(f"received {signal.Signals(self.first_signal).name} before the agent started; "
                          "not starting it")
                return self.finish(pid=None, exit_code=None, sig=self.first_signal, started=started,
                                   seconds=0.0, error=None)
            out_r, out_w = os.pipe()  # the agent's output reaches the log masked (agentlog.Pump)
            try:
                self.child = subprocess.Popen(args.command, stdin=subprocess.DEVNULL, stdout=out_w,
                                              stderr=subprocess.STDOUT, env=self.child_env(), close_fds=True)
            except OSError as exc:
                os.close(out_r)
                missing = isinstance(exc, (FileNotFoundError, NotADirectoryError))
                problem = f"could not start: {args.command[0]}: {exc.strerror or exc}"
                self.note(problem)
                return self.finish(pid=None, exit_code=127 if missing else 126, sig=None,
                                   started=started, seconds=time.monotonic() - started_mono, error=problem)
            finally:
                os.close(out_w)
            self.pump = logwriter.Pump(out_r, self.sink, self.redactor)
            self.pump.start()
            faults.point("runner.started", os.path.basename(args.exit_file))  # the agent runs, supervised
            self.wait(wake_r, started_mono)
            seconds = time.monotonic() - started_mono
            ended = time.time()
            self.sweep()
            self.pump.finish()
        finally:
            signal.set_wakeup_fd(old_wakeup)
            for sig, handler in saved.items():
                if handler is not None:
                    signal.signal(sig, handler)
            os.close(wake_r)
            os.close(wake_w)
        code = self.child.returncode
        if code is not None and code < 0:
            exit_code, sig = None, -code
        else:
            exit_code, sig = code, self.first_signal
        if self.timed_out:
            self.note(f"pid {self.child.pid} stopped by the budget after {seconds:.1f}s")
        return self.finish(pid=self.child.pid, exit_code=exit_code, sig=sig, started=started,
                           seconds=seconds, error=None, ended=ended)

    def finish(self, *, pid: Optional[int], exit_code: Optional[int], sig: Optional[int], started: float,
               seconds: float, error: Optional[str], ended: Optional[float] = None) -> int:
        log_sha256 = log_forged = None
        if self.log_fd >= 0 and self.sink is not None:  # before the record: a tick reads the log once it sees one
            if self.pump is not None:
                self.pump.finish(0.0)
            self.sink.seal()
            # Nothing of the run is left to write: is the log only what we wrote? (else the tick trusts
            # none of it: its usage, session id or limit message could be the agent's)
            log_forged = logwriter.forged(self.args.log, self.sink)
            logwriter.scrub(self.args.log, self.log_fd, self.redactor)
            if log_forged is None:
                log_sha256 = logwriter.digest(self.args.log, self.sink)  # as scrubbed: what a reader must find
                if log_sha256 is None:
                    log_forged = "its log cannot be read"
        doc = record(pid=pid, exit_code=exit_code, sig=sig, started=started,
                     ended=time.time() if ended is None else ended, seconds=seconds,
                     timed_out=self.timed_out, error=error, run_id=self.mark,
                     log_sha256=log_sha256, log_forged=log_forged)
        try:
            write_json(self.args.exit_file, doc, mode=0o600)
        except UserError as exc:
            self.note(f"could not write the exit record: {exc}")
            return 1
        finally:
            if self.log_fd >= 0:
                os.close(self.log_fd)
                self.log_fd = -1
        if exit_code is not None:
            return exit_code if 0 <= exit_code < 256 else 1
        return 128 + sig if sig else 1


def _exit_code(status: int) -> int:
    """A wait status as Popen's returncode: the exit code, or -N for signal N."""
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    return 1  # pragma: no cover - stopped/continued are not reported without WUNTRACED


def _ignore(_signum: int, _frame: object) -> None:
    pass


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except (BlockingIOError, InterruptedError):
        pass
    except OSError:
        pass


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``argv`` (without the program name); return the agent's exit code (128+N for signal N)."""
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
    except ArgError as exc:
        sys.stderr.write(f"{_PREFIX}{exc}\n")
        return 2
    run = _Run(args)
    try:
        return run.run()
    except Exception as exc:  # a bug here must still leave a record and no unsupervised agent
        said = f"runner failed: {exc!r}"
        crash_log = _crash_log(exc, run)
        if crash_log is not None:
            said += f"; details in {crash_log}"
        run.note(f"{said}; stopping the agent")
        run.kill_others()
        return run.finish(pid=run.child.pid if run.child else None, exit_code=None, sig=None,
                          started=time.time(), seconds=0.0, error=said)


def _crash_log(exc: Exception, run: _Run) -> Optional[str]:
    """The crash log of a bug in the runner, in the controller home's log folder; None without ``--home``,
    or where that folder takes no file. Imported here only: the runner starts with as little as it can."""
    if not run.args.home:
        return None
    try:
        from pathlib import Path

        from .. import crash, secrets
        from ..paths import HomePaths

        for value in run.redactor.values:  # masked as the log is: the values launch handed us, and key shapes
            secrets.register(value)
        command = run.args.command[0] if run.args.command else "-"
        path = crash.write(exc, HomePaths(Path(run.args.home)), fallback=False,
                           where=f"the runner supervising {command} (exit record {run.args.exit_file})")
    except Exception:  # noqa: BLE001 - the crash log is extra; the record and the agent's stop are not
        return None
    return None if path is None else str(path)


if __name__ == "__main__":
    sys.exit(main())

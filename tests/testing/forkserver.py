"""``python -m autometta ARGS`` without paying for a new interpreter each time.

The fuzz runs every read-only command some hundred times a round; most of each
run's cost is starting Python and importing autometta. A :class:`Runner`
starts one server process (``python -m tests.testing.forkserver``, in the
environment and folder the commands run in) that imports autometta once and
forks a child per command. The child is what ``python -m autometta ARGS``
would be from then on: ``cli.main(ARGS)`` with its own stdin (``/dev/null``),
stdout and stderr (files the caller reads back), its own session, an uncaught
exception printed as a traceback with exit 1, ``sys.exit`` codes as the
interpreter maps them, and atexit handlers run before it exits. A command
still running after its timeout is killed with its process group, as
``subprocess.run(timeout=...)`` would, and reported as hung.

Protocol: one JSON request a line on the server's stdin (``argv``, ``cwd``,
``timeout``, ``out``, ``err``: the files to write), one JSON reply a line on
its stdout (``code``, or ``hung``: true).
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional


class Hung(Exception):
    """The command was still running at its timeout (it was killed)."""


class Runner:
    """One server; not for two threads at once (start one per thread)."""

    def __init__(self, cwd: Path, env: Dict[str, str], root: Path) -> None:
        self.env = dict(env, PYTHONPATH=os.pathsep.join([str(root), env.get("PYTHONPATH", "")]).rstrip(os.pathsep))
        self.cwd = cwd
        self.tmp = tempfile.TemporaryDirectory(prefix="forkserver-")
        self.proc: Optional[subprocess.Popen] = None

    def _server(self) -> subprocess.Popen:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen([sys.executable, "-m", "tests.testing.forkserver"], cwd=str(self.cwd),
                                         env=self.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         text=True, bufsize=1)
        return self.proc

    def run(self, args: List[str], timeout: float = 60) -> subprocess.CompletedProcess:
        """As ``subprocess.run([python, -m, autometta, *args], capture_output=True, text=True)``;
        :class:`Hung` if it was still running after ``timeout`` seconds."""
        out, err = Path(self.tmp.name) / "out", Path(self.tmp.name) / "err"
        proc = self._server()
        assert proc.stdin is not None and proc.stdout is not None
        request = {"argv": list(args), "timeout": timeout, "out": str(out), "err": str(err), "cwd": str(self.cwd)}
        proc.stdin.write(json.dumps(request) + "\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the fork server exited ({proc.wait()}) running autometta {' '.join(args)}")
        reply = json.loads(line)
        if reply.get("hung"):
            raise Hung(f"autometta {' '.join(args)}: still running after {timeout:.0f} s")
        return subprocess.CompletedProcess(["autometta", *args], reply["code"],
                                           out.read_bytes().decode("utf-8", "replace"),
                                           err.read_bytes().decode("utf-8", "replace"))

    def close(self) -> None:
        if self.proc is not None:
            if self.proc.stdin:
                self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            if self.proc.stdout:
                self.proc.stdout.close()
        self.tmp.cleanup()


# --------------------------------------------------------------------------- the server


def _child(argv: List[str], out: str, err: str, cwd: str) -> None:
    """In the forked child: become ``python -m autometta ARGV`` and never return."""
    code = 1
    try:
        os.setsid()
        os.chdir(cwd)  # the folder by its name: the caller may have replaced it since the server started
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        for fd, path in ((1, out), (2, err)):
            target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(target, fd)
            os.close(target)
        os.close(null)
        sys.argv = ["autometta", *argv]
        from autometta.cli import main

        try:
            code = main(argv)
        except SystemExit as exc:  # as the interpreter maps sys.exit's argument
            if exc.code is None:
                code = 0
            elif isinstance(exc.code, int):
                code = exc.code
            else:
                print(exc.code, file=sys.stderr)
                code = 1
        code = 0 if code is None else int(code)
    except BaseException:  # noqa: BLE001 - what the interpreter does with an uncaught exception
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        try:
            import atexit
            import threading

            getattr(threading, "_shutdown", lambda: None)()
            getattr(atexit, "_run_exitfuncs", lambda: None)()
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:  # noqa: BLE001
            pass
        os._exit(code & 0xFF)


def _wait(pid: int, timeout: float) -> Optional[int]:
    """The child's exit code (a signal as 128+n... as negative, like subprocess), or None at the timeout."""
    deadline = time.monotonic() + timeout
    fd = os.pidfd_open(pid) if hasattr(os, "pidfd_open") else None
    try:
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else \
                    (-os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status))
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            if fd is not None:
                select.select([fd], [], [], left)
            else:
                time.sleep(min(0.005, left))
    finally:
        if fd is not None:
            os.close(fd)


def serve() -> None:
    import importlib
    import pkgutil

    import autometta

    for info in pkgutil.walk_packages(autometta.__path__, "autometta."):  # once, here, not in each child
        try:
            importlib.import_module(info.name)
        except Exception:  # noqa: BLE001 - a module for another system; the child imports it if it must
            pass
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    quiet = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet, 1)  # nothing the server prints can corrupt the replies
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            protocol.close()
            _child(request["argv"], request["out"], request["err"], request["cwd"])
        code = _wait(pid, float(request["timeout"]))
        if code is None:
            for kill in (os.killpg, os.kill):  # its session, or itself if it had not made one yet
                try:
                    kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            os.waitpid(pid, 0)
            protocol.write(json.dumps({"hung": True}) + "\n")
        else:
            protocol.write(json.dumps({"code": code}) + "\n")


if __name__ == "__main__":
    serve()

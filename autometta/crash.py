"""What becomes of an exception nobody expected (a bug): a crash log, and one line that names it.

A :class:`~autometta.errors.UserError` is the user's to fix and says so in one
line. Any other exception is autometta's own bug; as pre-commit's error handler
does, it is written whole to ``<home>/log/crash-<UTC time>.log`` (the
traceback, the command line, autometta's version, Python's and the
platform's), and the user is told, in one line::

    autometta status: unexpected error (KeyError: 'x'); details in <home>/log/crash-20261204T231502Z.log

The CLI then exits :data:`~autometta.errors.UNEXPECTED_EXIT` (3). Inside the
tick a repo's unexpected error is caught the same way: its line goes to the
tick log, its crash log is written, and the other repos go on. A bug in the
runner that supervises an agent (:mod:`autometta.agents.runner`) stops the
agent and leaves its crash log in the log folder of the home its spawner named;
the run's exit record and the runner's line in the agent log say where. This
module is imported only when something went wrong: an idle tick never pays for
it (nor for ``traceback`` or ``platform``).

What is written is masked as the tick log is (:func:`autometta.secrets.redact`):
an exception's text may hold a value it was handed. The file is the user's
alone (0600, in the controller's 0700 log folder); where the home cannot be
written to, the system's temporary folder takes the log instead, and where
neither can, the traceback goes to stderr.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from .errors import UNEXPECTED_EXIT, UserError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional, Sequence

    from .paths import HomePaths


#: The most of an exception's text its one line shows (the crash log has all of it).
SHOWN = 300


def summary(exc: BaseException) -> str:
    """``KeyError: 'x'``: the exception's type and its text, on one short line."""
    text = " ".join(str(exc).split())
    if len(text) > SHOWN:
        text = text[:SHOWN - 3] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _masked(text: str) -> str:
    try:
        from .secrets import redact

        return redact(text)
    except Exception:  # the mask itself broke: say nothing of the exception's text rather than risk a secret
        return "(not shown: the secret mask failed)"


def _report(exc: BaseException, argv: Optional[Sequence[str]], where: Optional[str]) -> str:
    import platform
    import traceback

    from .version import describe

    lines = ["### what failed", f"when: {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}"]
    if argv is not None:
        lines.append("command: autometta " + " ".join(argv))
    if where:
        lines.append(f"while: {where}")
    lines.append(f"process: {os.getpid()}, argv {sys.argv!r}")
    lines += ["", "### versions", f"autometta: {describe()}", f"python: {sys.version.splitlines()[0]}",
              f"executable: {sys.executable}", f"platform: {platform.platform()}", "",
              "### traceback",
              "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip("\n"), ""]
    return "\n".join(lines)


def _open_new(folder: Path, stamp: str):
    """A new file ``crash-<stamp>.log`` (``-2``, ``-3``, ... when the second is taken) in ``folder``, 0600."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    for n in range(1, 100):
        path = folder / (f"crash-{stamp}.log" if n == 1 else f"crash-{stamp}-{n}.log")
        try:
            return path, os.open(str(path), flags, 0o600)
        except FileExistsError:
            continue
    raise FileExistsError(str(folder / f"crash-{stamp}.log"))


def write(exc: BaseException, home: Optional[HomePaths] = None, *, argv: Optional[Sequence[str]] = None,
          where: Optional[str] = None, fallback: bool = True) -> Optional[Path]:
    """Write the crash log of ``exc``; its path, or None when no folder would take it (then on stderr).

    ``fallback=False``: the home's log folder or nothing (None, and nothing on stderr), for a process
    whose temporary folder and stderr are an agent's (the runner, :mod:`autometta.agents.runner`).
    """
    try:
        text = _masked(_report(exc, argv, where))
    except Exception:  # the report's extras failed (the platform's name?): the traceback alone
        import traceback

        text = _masked("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    folders = []
    try:
        if home is None:
            from .paths import HomePaths

            home = HomePaths.from_env()
        folders.append(home.log_dir)
    except Exception:  # no home to be had ($HOME unset): the temporary folder
        pass
    if fallback:
        import tempfile

        folders.append(Path(tempfile.gettempdir()))
    for folder in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            path, fd = _open_new(folder, stamp)
            with open(fd, "w", encoding="utf-8", errors="replace") as handle:
                handle.write(text)
            return path
        except OSError:
            continue
    if fallback:
        print(text, file=sys.stderr)
    return None


def unexpected(exc: BaseException, home: Optional[HomePaths] = None, *, argv: Optional[Sequence[str]] = None,
               where: Optional[str] = None) -> str:
    """Write the crash log of ``exc``; the line for the user: ``unexpected error (...); details in <log>``."""
    path = write(exc, home, argv=argv, where=where)
    said = f"unexpected error ({_masked(summary(exc))})"
    return f"{said}; details in {path}" if path is not None else f"{said}; its details are above"


def handle(exc: BaseException, command: str, *, argv: Optional[Sequence[str]] = None,
           debug: bool = False) -> int:
    """The CLI's one error handler: print ``exc`` as one line on stderr and return the exit code.

    A :class:`UserError` prints its message (exit 1, or 2 for usage); anything else is a bug: a crash log
    and exit :data:`UNEXPECTED_EXIT`. ``debug`` (``--debug``) prints the traceback first as well.
    """
    if debug:
        import traceback

        traceback.print_exception(type(exc), exc, exc.__traceback__)
    if isinstance(exc, UserError):
        print(f"autometta {command}: {_masked(exc.message)}", file=sys.stderr)
        return exc.exit_code
    print(f"autometta {command}: {unexpected(exc, argv=argv)}", file=sys.stderr)
    return UNEXPECTED_EXIT

"""The one user-facing error type, and what becomes of any other exception.

Anything a user can cause (a broken card, a corrupt state file, a missing
tool, a wrong flag) raises :class:`UserError`. The CLI prints its message as
one line on stderr and exits with its code; tracebacks are for ``--debug``.
Anything else is a bug: :mod:`autometta.crash` (imported only then) writes
its traceback to a crash log and the CLI says where, in one line, exit 3.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: every command imports this module (tests/test_startup.py)
if TYPE_CHECKING:
    from typing import Optional

#: The exit code of an unexpected error (a bug), as pre-commit's.
UNEXPECTED_EXIT = 3


class UserError(Exception):
    """A problem the user can fix. The message names the file and the fix.

    ``marker`` is the stall marker the tick records when this error stops a stage
    (``docs/troubleshooting.md`` names each); None leaves the choice to the caller.
    """

    exit_code = 1
    marker: Optional[str] = None

    def __init__(self, message: str, *, exit_code: Optional[int] = None,
                 marker: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        if exit_code is not None:
            self.exit_code = exit_code
        if marker is not None:
            self.marker = marker

    def __str__(self) -> str:
        return self.message


class UsageError(UserError):
    """The command line itself is wrong (exit 2, like argparse)."""

    exit_code = 2

"""The one user-facing error type.

Anything a user can cause (a broken card, a corrupt state file, a missing
tool, a wrong flag) raises :class:`UserError`. The CLI prints its message as
one line on stderr and exits with its code; tracebacks are for ``--debug``.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix. The message names the file and the fix."""

    exit_code = 1

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


class UsageError(UserError):
    """The command line itself is wrong (exit 2, like argparse)."""

    exit_code = 2

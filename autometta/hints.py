"""Commands autometta tells a user to run, written once so that each of them works as given.

A plain ``git stash`` also stashes the tracked ``state/state.yaml`` and
``state/budget.json``: the queue vanishes (every stage ``unqueued``) until
``git stash pop``, and a tick run meanwhile works from the older, committed
state (and then the pop conflicts with what it wrote).
So where a message says to set files aside, it names a command that leaves
``state/`` where it is: the files themselves when there are few, else every
change but ``state/``.
"""

from __future__ import annotations

import shlex
from typing import Sequence

from .paths import STATE_DIRNAME

#: Up to this many files are named in the stash command; more get the pathspec form.
NAMED = 20


def stash(paths: Sequence[str]) -> str:
    """``git stash push`` for ``paths`` (untracked ones too), never touching ``state/``."""
    if paths and len(paths) <= NAMED:
        named = " ".join(shlex.quote(_literal(p)) for p in paths)
        return f"git stash push --include-untracked -- {named}"
    return f"git stash push --include-untracked -- . ':!{STATE_DIRNAME}'"


def _literal(path: str) -> str:
    """A pathspec naming exactly ``path``: one that git would read as a pattern or as magic is marked literal."""
    return f":(literal){path}" if path.startswith(":") or any(ch in path for ch in "*?[\\") else path


def set_aside(paths: Sequence[str]) -> str:
    """The hint's words: commit them, or stash them with a command that keeps ``state/``."""
    return (f"commit them, or set them aside with `{stash(paths)}` (a plain `git stash` would also take "
            f"{STATE_DIRNAME}/state.yaml, and the queue with it)")


def listed(paths: Sequence[str], shown: int = 10) -> str:
    """``a, b, c and 4 more``."""
    return ", ".join(paths[:shown]) + (f" and {len(paths) - shown} more" if len(paths) > shown else "")

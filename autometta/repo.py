""":class:`RepoContext`: one repo as the tick and the commands see it (its paths, manifest, host).

Kept apart from :mod:`autometta.agents.dispatch` (which re-exports it), and a plain
class rather than a dataclass, so a tick that finds its repos idle builds one
each without importing what starts agents, or ``dataclasses`` (which costs an
idle tick more than all of its own work).
"""

from __future__ import annotations

import os
from pathlib import Path

from .paths import HomePaths, RepoPaths

TYPE_CHECKING = False  # not typing's: an idle tick and status import no typing (tests/test_startup.py)
if TYPE_CHECKING:
    from typing import Any, Dict, Mapping, Optional


class RepoContext:
    """What dispatching needs to know about one repo and the host."""

    def __init__(self, paths: RepoPaths, home: Optional[HomePaths] = None, config: Optional[Dict[str, Any]] = None,
                 manifest: Optional[Dict[str, Any]] = None, environ: Optional[Mapping[str, str]] = None,
                 workdir: Optional[Path] = None, max_parallel: int = 1, isolation: str = "worktree") -> None:
        self.paths = paths
        self.home = home
        self.config: Dict[str, Any] = {} if config is None else config
        self.manifest: Dict[str, Any] = {} if manifest is None else manifest
        self.environ: Mapping[str, str] = dict(os.environ) if environ is None else environ
        #: Where agents work: the stage's worktree; None for the repo itself (``isolation: tree``).
        self.workdir = workdir
        #: Stages in flight at once (subscriber or manifest ``max_parallel``), each in a worktree of its own.
        self.max_parallel = max_parallel
        #: The manifest's ``isolation``: ``worktree`` (the default) or ``tree`` (autometta.git.isolation).
        self.isolation = isolation

    def replace(self, **changes: Any) -> "RepoContext":
        """A copy with ``changes`` (as ``dataclasses.replace`` would make)."""
        return RepoContext(**{**vars(self), **changes})

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and vars(other) == vars(self)

    def __repr__(self) -> str:
        return f"RepoContext({', '.join(f'{k}={v!r}' for k, v in vars(self).items() if k != 'environ')})"

    @property
    def repo(self) -> Path:
        return self.paths.root

    @property
    def work(self) -> Path:
        """The working tree the stage's agents change, judge and commit."""
        return self.workdir or self.paths.root


def home_of(ctx: Any) -> HomePaths:
    """The controller home of a repo context: its own, else the one its environment names."""
    return ctx.home if getattr(ctx, "home", None) is not None else HomePaths.from_env(getattr(ctx, "environ", None))

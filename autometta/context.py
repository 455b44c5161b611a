""":class:`RepoContext`: one repo as the tick and the commands see it (its paths, manifest, host).

Kept apart from :mod:`autometta.dispatch` (which re-exports it) so a tick that
finds a repo idle builds one without importing what starts agents.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

from .paths import HomePaths, RepoPaths


@dataclass
class RepoContext:
    """What dispatching needs to know about one repo and the host."""

    paths: RepoPaths
    home: Optional[HomePaths] = None
    config: Dict[str, Any] = field(default_factory=dict)
    manifest: Dict[str, Any] = field(default_factory=dict)
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    #: Where agents work: the stage's worktree; None for the repo itself (``isolation: tree``).
    workdir: Optional[Path] = None
    #: Stages in flight at once (subscriber or manifest ``max_parallel``), each in a worktree of its own.
    max_parallel: int = 1
    #: The manifest's ``isolation``: ``worktree`` (the default) or ``tree`` (autometta.isolation).
    isolation: str = "worktree"

    @property
    def repo(self) -> Path:
        return self.paths.root

    @property
    def work(self) -> Path:
        """The working tree the stage's agents change, judge and commit."""
        return self.workdir or self.paths.root

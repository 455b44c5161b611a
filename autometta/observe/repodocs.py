"""A repo's state.yaml and budget.json as a view reads them: as their schemas allow them, or None and why.

Every view (status, the tickers, the dashboard, the report, a stage's review) reads them so: a file that
cannot be read makes its repo show as unreadable, never a failed view.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from ..paths import RepoPaths

TYPE_CHECKING = False  # not typing's: status imports no typing (tests/test_startup.py)
if TYPE_CHECKING:
    from typing import Any, Dict, Optional, Tuple


def read_repo(paths: RepoPaths) -> Tuple[Optional[Dict[str, Any]], Optional[Dict[str, Any]], Dict[str, str]]:
    """``(state, budget, problems)``: state.yaml and budget.json as their schemas allow them.

    A file that is missing is None; one that cannot be read is None too, and
    ``problems`` (``"state"``/``"budget"`` -> one line naming the file) says
    why, for the view to show the repo as unreadable (its other repos still
    display): :func:`repo_needs`.
    """
    problems: Dict[str, str] = {}
    return read_state(paths, problems), read_budget(paths, problems), problems


def _read(which: str, path: Path, load: Any, paths: RepoPaths,
          problems: Optional[Dict[str, str]]) -> Optional[Dict[str, Any]]:
    if not (path.exists() or path.is_symlink()):
        return None
    try:
        return load(paths)
    except UserError as exc:
        if problems is not None:
            problems[which] = exc.message
        return None


def read_state(paths: RepoPaths, problems: Optional[Dict[str, str]] = None) -> Optional[Dict[str, Any]]:
    """state.yaml as its schema allows it, or None (why, as ``problems["state"]``)."""
    from ..books import state

    return _read("state", paths.state_yaml, state.load_state, paths, problems)


def read_budget(paths: RepoPaths, problems: Optional[Dict[str, str]] = None) -> Optional[Dict[str, Any]]:
    """budget.json as its schema allows it, or None (why, as ``problems["budget"]``)."""
    from ..books import budget

    return _read("budget", paths.budget, budget.load_budget, paths, problems)

"""``autometta --version``: the version and the commit this copy was built from.

* pyz: the commit ``build_pyz.py`` recorded in ``autometta/_build.json``;
* checkout: ``git rev-parse HEAD`` of the repo whose top level holds this package,
  with ``-dirty`` when the package or its data trees have uncommitted changes;
* anything else (an installed package, no git): ``commit unknown``.

:func:`describe` never raises: a version string is not worth a crash.
"""

from __future__ import annotations

import json
import os

TYPE_CHECKING = False  # not typing's: ``--version`` imports no more than it needs
if TYPE_CHECKING:
    from typing import Optional, Tuple

from . import __version__

BUILD_INFO_NAME = "_build.json"
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_GIT_TIMEOUT = 5.0


def _build_info() -> Optional[Tuple[str, bool]]:
    """(commit, dirty) from the build-info file the pyz carries, else None."""
    loader = globals().get("__loader__")
    prefix = getattr(loader, "prefix", None)
    data: Optional[bytes] = None
    if getattr(loader, "archive", None) is not None and isinstance(prefix, str):
        prefix = prefix.replace(os.sep, "/")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        try:
            data = loader.get_data(prefix + BUILD_INFO_NAME)  # type: ignore[union-attr]
        except OSError:
            return None
    else:
        try:
            with open(os.path.join(_PACKAGE_DIR, BUILD_INFO_NAME), "rb") as handle:
                data = handle.read()
        except OSError:
            return None
    info = json.loads(data.decode("utf-8"))
    commit = info.get("commit")
    if not isinstance(commit, str) or not commit:
        return None
    return commit, bool(info.get("dirty"))


def _git(cwd: str, *args: str) -> Optional[str]:
    import subprocess  # a checkout only: the pyz reads its build info

    env = {k: v for k, v in os.environ.items() if k not in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE")}
    proc = subprocess.run(
        ["git", "-C", cwd, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        timeout=_GIT_TIMEOUT,
    )
    if proc.returncode != 0:
        return None
    return proc.stdout.decode("utf-8", "replace")


def _checkout_info() -> Optional[Tuple[str, bool]]:
    """(commit, dirty) when this package sits at the top of a git work tree.

    Only the work tree whose top level is the package's parent counts: a venv's
    site-packages that happens to lie inside some other repo must not report
    that repo's commit.
    """
    parent = os.path.dirname(_PACKAGE_DIR)
    if not os.path.isdir(parent):  # e.g. inside a zip that has no build info
        return None
    out = _git(parent, "rev-parse", "--show-toplevel", "--verify", "HEAD")
    if not out:
        return None
    lines = out.splitlines()
    if len(lines) != 2 or not os.path.samefile(lines[0], parent):
        return None
    commit = lines[1].strip()[:12]
    if not commit:
        return None
    package = os.path.basename(_PACKAGE_DIR)
    status = _git(parent, "status", "--porcelain", "--untracked-files=normal", "--", package, "templates", "schemas")
    dirty = bool(status and status.strip())
    return commit, dirty


def commit_info() -> Tuple[str, bool]:
    """(commit, dirty) for this copy; ("unknown", False) when nobody recorded it."""
    for probe in (_build_info, _checkout_info):
        try:
            found = probe()
        except Exception:  # noqa: BLE001 - describe() must never fail
            found = None
        if found is not None:
            return found
    return "unknown", False


def describe() -> str:
    """``autometta <version> (commit <sha>[-dirty])`` or ``... (commit unknown)``."""
    try:
        commit, dirty = commit_info()
        return f"autometta {__version__} (commit {commit}{'-dirty' if dirty else ''})"
    except Exception:  # noqa: BLE001
        return f"autometta {__version__} (commit unknown)"

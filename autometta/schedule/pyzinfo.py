"""What a built pyz says about itself, and whether it is older than its checkout.

``build_pyz.py`` stores ``autometta/_build.json`` in the archive:
``{"commit", "dirty", "version"}`` and, for builds made in a checkout,
``"source"`` (that checkout's path). :func:`freshness` compares the
recorded commit with the checkout's ``HEAD`` now.
"""

from __future__ import annotations

import json
import os
import zipfile
from typing import TYPE_CHECKING, Any, Dict, NamedTuple, Optional

if TYPE_CHECKING:
    import subprocess

BUILD_INFO = "autometta/_build.json"
ENTRY_POINT = "autometta/cli.py"


def read_build_info(path: str) -> Optional[Dict[str, Any]]:
    """The build info of an autometta pyz at ``path``; None when it is not one."""
    try:
        if not os.path.isfile(path) or not zipfile.is_zipfile(path):
            return None
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if ENTRY_POINT not in names:
                return None
            if BUILD_INFO not in names:
                return {}
            data = json.loads(archive.read(BUILD_INFO).decode("utf-8"))
    except (OSError, zipfile.BadZipFile, ValueError, UnicodeDecodeError, RecursionError):
        return None
    return data if isinstance(data, dict) else {}


def sha256_file(path: str) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


def describe(info: Dict[str, Any]) -> str:
    """``0.1.0 (commit abc123def456[-dirty])`` as ``--version`` would print it."""
    commit = info.get("commit") or "unknown"
    return f"{info.get('version') or '?'} (commit {commit}{'-dirty' if info.get('dirty') else ''})"


def _git(cwd: str, *args: str) -> Optional[subprocess.CompletedProcess]:
    import shutil
    import subprocess

    if shutil.which("git") is None:
        return None
    env = {k: v for k, v in os.environ.items() if k not in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE")}
    try:
        return subprocess.run(["git", "-C", cwd, *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, universal_newlines=True, env=env, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None


def ledger_source(path: str) -> Optional[str]:
    """The checkout ``build_pyz.py`` noted for this pyz's bytes, if any."""
    from .. import files
    from ..errors import UserError
    from ..paths import build_ledger

    try:
        data = files.read_json(build_ledger())
        source = data.get(sha256_file(path)) if isinstance(data, dict) else None
    except (OSError, UserError):
        return None
    return source if isinstance(source, str) else None


class Freshness(NamedTuple):  # not a dataclass: status runs the schedule checks, and dataclasses is slow to import
    status: str  # PASS | WARN
    detail: str


def freshness(path: str, info: Optional[Dict[str, Any]] = None) -> Freshness:
    """Is the pyz at ``path`` built from its checkout's current HEAD?"""
    info = read_build_info(path) if info is None else info
    if info is None:
        return Freshness("WARN", f"{path} is not an autometta pyz")
    built = describe(info)
    commit = info.get("commit")
    source = info.get("source") or ledger_source(path)
    if not commit or commit == "unknown" or not source:
        return Freshness("PASS", f"{path} {built}")
    if not os.path.isdir(source):
        return Freshness("PASS", f"{path} {built}; its checkout {source} is gone")
    head_proc = _git(source, "rev-parse", "--verify", "HEAD")
    if head_proc is None or head_proc.returncode != 0:
        return Freshness("PASS", f"{path} {built}")
    head = head_proc.stdout.strip()[:12]
    if head.startswith(commit) or commit.startswith(head):
        return Freshness("PASS", f"{path} {built}, the checkout's HEAD")
    fix = f"rebuild with 'python3 {os.path.join(source, 'build_pyz.py')}'"
    default_output = os.path.join(source, "dist", "autometta.pyz")
    if os.path.realpath(path) != os.path.realpath(default_output):
        fix += f" and copy {default_output} over {path}"
    ancestor = _git(source, "merge-base", "--is-ancestor", commit, head)
    if ancestor is not None and ancestor.returncode == 0:
        return Freshness("WARN", f"{path} is older than its checkout: built from {commit}, "
                                 f"{source} is at {head}; {fix}")
    return Freshness("WARN", f"{path} was built from {commit}, which is not in the history of "
                             f"{source} (now at {head}); {fix}")

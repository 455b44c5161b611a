"""What ``check-deps`` looks for, found with ``shutil.which`` only.

The bash version made every tool mandatory even on a one-family host
(§15.15); here only git is required, and each optional tool says what is lost
without it.
"""

from __future__ import annotations

import shutil
import sys
from typing import List, Mapping, NamedTuple, Optional, Tuple

MIN_PYTHON = (3, 9)


class Dep(NamedTuple):  # not a dataclass: status runs the schedule checks, and dataclasses is slow to import
    name: str
    status: str  # PASS | WARN | MISSING
    detail: str
    path: Optional[str] = None

    def line(self) -> str:
        return f"{self.status} {self.name} {self.detail}".rstrip()


#: (tool, required?, what it is for); the families' CLIs come after git (:func:`tools`).
GIT = ("git", True, "commits accepted stages and snapshots state")
OTHERS = (
    ("tmux", False, "the attach viewer"),
    ("op", False, "resolves op:// secrets for api billing"),
    ("op-fetch", False, "the bash version's secret wrapper, used when present"),
)


def tools() -> List[Tuple[str, bool, str]]:
    """Every tool looked for: git, each registered family's CLI (:attr:`Family.checked_dep`), then the rest."""
    from .families import FAMILIES

    clis = [(f.executable, False, f"runs {f.name}-family workers and verifiers")
            for f in FAMILIES.values() if f.checked_dep]
    return [GIT, *clis, *OTHERS]


def check(path: Optional[str] = None, system: Optional[str] = None) -> List[Dep]:
    found: List[Dep] = []
    version = sys.version_info[:3]
    py = ".".join(str(v) for v in version)
    if version[:2] >= MIN_PYTHON:
        found.append(Dep("python3", "PASS", f"version {py}", sys.executable))
    else:
        found.append(Dep("python3", "MISSING", f"version {py}; 3.9 or newer required", sys.executable))
    for tool, required, purpose in tools():
        where = shutil.which(tool, path=path)
        if where:
            found.append(Dep(tool, "PASS", where, where))
        elif required:
            found.append(Dep(tool, "MISSING", f"required: {purpose}"))
        else:
            found.append(Dep(tool, "WARN", f"not found: {purpose}"))
    import platform

    scheduler = "launchctl" if (system or platform.system()) == "Darwin" else "crontab"
    where = shutil.which(scheduler, path=path)
    found.append(Dep(scheduler, "PASS" if where else "WARN",
                     where or f"not found: the tick cannot be scheduled with {scheduler}", where))
    return found


def ok(deps: List[Dep]) -> bool:
    return all(d.status != "MISSING" for d in deps)


def search_path(env: Mapping[str, str]) -> Optional[str]:
    return env.get("PATH")

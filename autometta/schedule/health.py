"""Is the tick scheduled, and does what is scheduled still exist and match its checkout?

Used by ``check-deps`` (every line) and ``status`` (only the warnings). It
never raises: a health check that crashes is worse than none.
"""

from __future__ import annotations

import os
import shutil
from typing import List, Optional

from .. import home
from .. import schedule as base
from ..deps import Dep
from ..errors import UserError
from . import Scheduled, find_scheduled, pyz_of, pyzinfo

REINSTALL = {
    "cron": "autometta install-cron",
    "systemd": "autometta install-systemd",
}


def _fix(entry: Scheduled) -> str:
    if entry.kind == "launchd":
        return f"autometta install-launchagent {entry.repo or 'REPO'}"
    return REINSTALL.get(entry.kind, "autometta install-cron")


def pyz_behind(command: str) -> Optional[str]:
    """The pyz an ``autometta`` found on PATH runs: itself, or the one beside a Homebrew wrapper."""
    real = os.path.realpath(command)
    if pyzinfo.read_build_info(real) is not None:
        return real
    beside = os.path.normpath(os.path.join(os.path.dirname(real), "..", "libexec", "autometta.pyz"))
    if pyzinfo.read_build_info(beside) is not None:
        return beside
    return None


def pyz_checks() -> List[Dep]:
    candidates = []
    root = home.install_root()
    if os.path.isfile(root):
        candidates.append(root)
    for name in ("autometta", "autometta.pyz"):
        found = shutil.which(name)
        if found:
            pyz = pyz_behind(found)
            if pyz:
                candidates.append(pyz)
    out: List[Dep] = []
    seen = set()
    for path in candidates:
        key = os.path.realpath(path)
        if key in seen:
            continue
        seen.add(key)
        fresh = pyzinfo.freshness(path)
        out.append(Dep("autometta-pyz", fresh.status, fresh.detail, path))
    return out


def schedule_checks() -> List[Dep]:
    try:
        entries = find_scheduled()
    except UserError as exc:
        return [Dep("schedule", "WARN", f"cannot tell what runs the tick: {exc.message}")]
    if not entries:
        if base.platform_name() == "darwin":
            fix = "run 'autometta install-launchagent REPO' for each repo (or 'autometta install-cron')"
        else:
            fix = "run 'autometta install-cron' (or 'autometta install-systemd')"
        return [Dep("schedule", "WARN", f"nothing runs the tick; {fix}")]
    out: List[Dep] = []
    for entry in entries:
        what = entry.describe()
        if not entry.managed:
            out.append(Dep("schedule", "PASS", f"{what}; not managed by autometta"))
            continue
        argv = entry.argv
        if not argv:
            out.append(Dep("schedule", "WARN", f"{what} runs no command autometta can read; "
                                               f"run '{_fix(entry)}' again"))
            continue
        missing = [a for a in argv[:2] if os.path.isabs(a) and not os.path.exists(a)]
        pyz = pyz_of(argv)
        if missing:
            out.append(Dep("schedule", "WARN", f"{what} runs {missing[0]}, which no longer exists; "
                                               f"run '{_fix(entry)}' again from the autometta you want"))
        elif pyz:
            fresh = pyzinfo.freshness(pyz)
            out.append(Dep("schedule", fresh.status, f"{what} runs {fresh.detail}", pyz))
        else:
            out.append(Dep("schedule", "PASS", f"{what} runs {' '.join(argv[:3])}"))
    return out


def checks() -> List[Dep]:
    try:
        return pyz_checks() + schedule_checks()
    except Exception as exc:  # noqa: BLE001 - never let a health check break check-deps or status
        return [Dep("schedule", "WARN", f"health check failed: {exc}")]


def warnings() -> List[Dep]:
    return [d for d in checks() if d.status != "PASS"]

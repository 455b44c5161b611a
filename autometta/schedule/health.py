"""Is the tick scheduled, and does what is scheduled still exist and match its checkout?

Used by ``check-deps`` (every line) and ``status`` (only the warnings). It
never raises: a health check that crashes is worse than none.
"""

from __future__ import annotations

import os
import shutil
from typing import List, Optional, Sequence, Tuple

from .. import home
from ..deps import Dep
from ..errors import UserError
from ..paths import build_ledger
from . import invocation as base
from . import pyzinfo
from .lookup import find_scheduled
from .scheduled import Scheduled, pyz_of

#: What runs the tick, or why that cannot be told (the message of find_scheduled's UserError).
Found = Tuple[List[Scheduled], Optional[str]]

#: Names the pyz checks look for on PATH.
ON_PATH = ("autometta", "autometta.pyz")

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
    for name in ON_PATH:
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


def scheduled_or_error() -> Found:
    """What runs the tick (find_scheduled), or why it cannot be told."""
    try:
        return find_scheduled(), None
    except UserError as exc:
        return [], exc.message


def schedule_checks(found: Optional[Found] = None) -> List[Dep]:
    entries, error = scheduled_or_error() if found is None else found
    if error is not None:
        return [Dep("schedule", "WARN", f"cannot tell what runs the tick: {error}")]
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


def checks(found: Optional[Found] = None) -> List[Dep]:
    """Every line: the pyz checks, then what runs the tick (``found``, else looked up now)."""
    try:
        return pyz_checks() + schedule_checks(found)
    except Exception as exc:  # noqa: BLE001 - never let a health check break check-deps or status
        return [Dep("schedule", "WARN", f"health check failed: {exc}")]


def warnings(found: Optional[Found] = None) -> List[Dep]:
    return [d for d in checks(found) if d.status != "PASS"]


def watched(entries: Sequence[Scheduled]) -> List[str]:
    """The files and folders whose change can change what checks() says (autometta.schedulememo).

    The running pyz, the build ledger, every folder on PATH and what the pyz
    checks found there, the systemd units and LaunchAgents and their folders,
    the crontab's spool file where the user may look at it, and the interpreter
    and pyz each schedule entry runs. Not seen: a crontab edited by hand where
    its spool cannot be read, a commit in the checkout a pyz was built from.
    """
    from . import cron, launchd, systemd

    out = [home.install_root(), str(build_ledger())]
    for folder in os.environ.get("PATH", os.defpath).split(os.pathsep):
        out.append(folder or ".")
        for name in ON_PATH:
            real = os.path.realpath(os.path.join(folder or ".", name))
            out += [real, os.path.normpath(os.path.join(os.path.dirname(real), "..", "libexec", "autometta.pyz"))]
    units = systemd.unit_dir()
    out += [str(units), str(units / systemd.SERVICE), str(units / systemd.TIMER), str(launchd.agents_dir())]
    out += [str(path) for path in launchd.agent_plists()]
    out += cron.spool_files()
    for entry in entries:
        out += [arg for arg in entry.argv[:2] if os.path.isabs(arg)]
    return list(dict.fromkeys(out))

"""Prune the controller's logs: ``<home>/log/tick-YYYY-MM-DD.log`` and the crash logs
``crash-YYYYMMDDTHHMMSSZ[-N].log`` (autometta.crash) older than ``log_retention_days``
(config.yaml, default 30) are deleted at the end of a tick.

The tick log rotates by name (one file per local day, see ``HomePaths.tick_log``);
this removes the old days, so a host that ticks every minute for a year keeps a
bounded folder, however often a bug leaves a crash log. Only files named like
one of those two are touched.
"""

from __future__ import annotations

import time
from pathlib import Path

from .paths import HomePaths

TYPE_CHECKING = False  # not typing's: an idle tick and status import no typing (tests/test_startup.py)
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Optional

DEFAULT_DAYS = 30


def _day(name: str) -> Optional[str]:
    """``YYYY-MM-DD`` of a tick log's file name ``tick-YYYY-MM-DD.log`` or a crash log's, else None (no regular
    expression to compile: every tick looks)."""
    if name.startswith("crash-"):
        return _crash_day(name)
    if len(name) != 19 or not name.startswith("tick-") or not name.endswith(".log"):
        return None
    day = name[5:15]
    if day[4] != "-" or day[7] != "-" or not (day[:4] + day[5:7] + day[8:]).isdecimal():
        return None
    return day


def _crash_day(name: str) -> Optional[str]:
    """The UTC day of ``crash-YYYYMMDDTHHMMSSZ.log`` (or ``...Z-N.log``), else None."""
    stamp, rest = name[6:22], name[22:]
    if len(stamp) != 16 or stamp[8] != "T" or stamp[15] != "Z" or not (stamp[:8] + stamp[9:15]).isdecimal():
        return None
    if rest != ".log" and not (rest.startswith("-") and rest.endswith(".log") and rest[1:-4].isdecimal()):
        return None
    return f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}"


def retention_days(config: Dict[str, Any]) -> int:
    value = config.get("log_retention_days")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return DEFAULT_DAYS
    return value


def prune_logs(hp: HomePaths, config: Dict[str, Any], now: Optional[float] = None,
               log: Optional[Callable[[str], None]] = None) -> List[Path]:
    """Delete tick logs whose day is more than ``log_retention_days`` before today; return them."""
    days = retention_days(config)
    now = time.time() if now is None else now
    cutoff = time.strftime("%Y-%m-%d", time.localtime(now - days * 86400))
    removed: List[Path] = []
    try:
        entries = sorted(hp.log_dir.iterdir())
    except OSError:
        return removed
    for entry in entries:
        day = _day(entry.name)
        if day is None or day >= cutoff or not entry.is_file() or entry.is_symlink():
            continue
        try:
            entry.unlink()
        except OSError as exc:
            if log is not None:
                log(f"cannot prune old log {entry} ({exc.strerror})")
            continue
        removed.append(entry)
    return removed

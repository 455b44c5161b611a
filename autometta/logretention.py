"""Prune the controller's daily logs: ``<home>/log/tick-YYYY-MM-DD.log`` older than
``log_retention_days`` (config.yaml, default 30) are deleted at the end of a tick.

The tick log rotates by name (one file per local day, see ``HomePaths.tick_log``);
this removes the old days, so a host that ticks every minute for a year keeps a
bounded folder. Only files named like a tick log are touched.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from .paths import HomePaths

TYPE_CHECKING = False  # not typing's: an idle tick and status import no typing (tests/test_startup.py)
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Optional

DEFAULT_DAYS = 30
_NAME = re.compile(r"^tick-(\d{4})-(\d{2})-(\d{2})\.log$")


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
        match = _NAME.match(entry.name)
        if not match or "-".join(match.groups()) >= cutoff or not entry.is_file() or entry.is_symlink():
            continue
        try:
            entry.unlink()
        except OSError as exc:
            if log is not None:
                log(f"cannot prune old log {entry} ({exc.strerror})")
            continue
        removed.append(entry)
    return removed

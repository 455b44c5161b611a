"""Timestamps as the bash version writes them: UTC, seconds, a trailing Z."""

from __future__ import annotations

import time

TYPE_CHECKING = False  # not typing's: an idle tick and status import no typing (tests/test_startup.py)
if TYPE_CHECKING:
    from typing import Optional

FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def now_iso(now: Optional[float] = None) -> str:
    return time.strftime(FORMAT, time.gmtime(time.time() if now is None else now))


def parse_iso(text: str) -> Optional[float]:
    """Epoch seconds for ``YYYY-MM-DDTHH:MM:SSZ`` (or with an offset); None if unparsable."""
    if not isinstance(text, str) or not text:
        return None
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    import datetime as _dt  # not at import: an idle tick parses no time, and datetime is slow to import

    try:
        parsed = _dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=_dt.timezone.utc)
    return parsed.timestamp()


def is_date(year: int, month: int, day: int) -> bool:
    """Whether ``year-month-day`` is a calendar date (years 1 to 9999), as ``datetime.date`` would accept it."""
    if not (1 <= year <= 9999 and 1 <= month <= 12):
        return False
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    return 1 <= day <= _MONTH_DAYS[month - 1] + (1 if month == 2 and leap else 0)


def age(seconds: float, hour_minutes: bool = False) -> str:
    """A duration as the views show it: ``42s``, ``5m``, ``3h`` (``3h07m`` with ``hour_minutes``), ``2d``."""
    s = int(max(0, seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m" if hour_minutes else f"{s // 3600}h"
    return f"{s // 86400}d"

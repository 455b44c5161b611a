"""Timestamps as the bash version writes them: UTC, seconds, a trailing Z."""

from __future__ import annotations

import datetime as _dt
import time
from typing import Optional

FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def now_iso(now: Optional[float] = None) -> str:
    return time.strftime(FORMAT, time.gmtime(time.time() if now is None else now))


def parse_iso(text: str) -> Optional[float]:
    """Epoch seconds for ``YYYY-MM-DDTHH:MM:SSZ`` (or with an offset); None if unparsable."""
    if not isinstance(text, str) or not text:
        return None
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    try:
        parsed = _dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=_dt.timezone.utc)
    return parsed.timestamp()

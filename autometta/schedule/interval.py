"""How often the installed schedule runs the tick, read from what is installed.

The crontab line's time fields (ours or a foreign line that runs the tick),
the systemd timer's ``OnUnitActiveSec``, the LaunchAgent's ``StartInterval``.
The parsers are pure; :func:`tick_interval` reads what is installed (``crontab
-l`` among it: only the dashboard's generation asks, never an idle tick) and
never raises.
"""

from __future__ import annotations

import re
from typing import List, Optional, Tuple

from .scheduled import Scheduled

_NAMED = {"@hourly": 3600, "@daily": 86400, "@midnight": 86400, "@weekly": 7 * 86400}
_UNITS = {"": 1, "s": 1, "sec": 1, "second": 1, "seconds": 1, "m": 60, "min": 60, "minute": 60,
          "minutes": 60, "h": 3600, "hr": 3600, "hour": 3600, "hours": 3600, "d": 86400, "day": 86400,
          "days": 86400}


def _every(field: str, span: int) -> Optional[List[int]]:
    """The values a cron field takes within ``span`` (60 minutes, 24 hours); None when not simple."""
    if field == "*":
        return list(range(span))
    step = re.fullmatch(r"\*/(\d+)", field)
    if step and int(step.group(1)) > 0:
        return list(range(0, span, int(step.group(1))))
    if re.fullmatch(r"\d+(,\d+)*", field):
        values = sorted({int(v) for v in field.split(",")})
        return values if all(v < span for v in values) else None
    return None


def _widest_gap(values: List[int], span: int) -> int:
    """The longest wait between two runs, wrapping around ``span``."""
    gaps = [b - a for a, b in zip(values, values[1:])] + [values[0] + span - values[-1]]
    return max(gaps)


def cron_seconds(line: str) -> Optional[int]:
    """The longest wait between two runs of a crontab line (``*/5 * * * * cmd`` -> 300); None if unknown."""
    fields = line.split()
    if not fields:
        return None
    if fields[0].startswith("@"):
        return _NAMED.get(fields[0])
    if len(fields) < 5 or fields[2:5] != ["*", "*", "*"]:
        return None  # days of the month or week: not a steady interval
    minutes, hours = _every(fields[0], 60), _every(fields[1], 24)
    if minutes is None or hours is None:
        return None
    if fields[1] == "*":
        return _widest_gap(minutes, 60) * 60
    if len(minutes) == 1:
        return _widest_gap(hours, 24) * 3600
    return None


def systemd_seconds(timer: str) -> Optional[int]:
    """``OnUnitActiveSec=`` of a timer unit's text, in seconds (``5min``, ``300``, ``1h 30min``)."""
    for line in timer.splitlines():
        if line.strip().startswith("OnUnitActiveSec="):
            total = 0
            for number, unit in re.findall(r"(\d+)\s*([a-z]*)", line.split("=", 1)[1].strip().lower()):
                if unit not in _UNITS:
                    return None
                total += int(number) * _UNITS[unit]
            return total or None
    return None


def seconds_of(entry: Scheduled) -> Optional[int]:
    """How often ``entry`` runs the tick; None when it cannot be told."""
    from pathlib import Path

    try:
        if entry.kind in ("cron", "cron-foreign"):
            return cron_seconds(entry.detail)
        if entry.kind == "systemd":
            where = Path(entry.where)
            timer = where if where.suffix == ".timer" else where.with_suffix(".timer")
            return systemd_seconds(timer.read_text(encoding="utf-8"))
        if entry.kind == "launchd":
            from .launchd import read_plist

            value = (read_plist(Path(entry.where)) or {}).get("StartInterval")
            return int(value) if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None
    except (OSError, ValueError):
        return None
    return None


def tick_interval() -> Optional[Tuple[int, str]]:
    """(seconds, what runs it) for the first installed schedule with a known interval, else None."""
    from .lookup import find_scheduled

    try:
        entries = find_scheduled()
    except Exception:  # noqa: BLE001 - a page's staleness check must not fail on a schedule it cannot read
        return None
    for entry in entries:
        seconds = seconds_of(entry)
        if seconds:
            return seconds, entry.describe()
    return None

"""What runs the tick now: every backend's entries, read from the crontab and the unit and plist files.

Above the backends (``cron``, ``systemd``, ``launchd``): each reads only its own
(``scheduled()``); an install that must not schedule the tick twice is handed
what the others found (their ``others`` argument).
"""

from __future__ import annotations

from typing import List, Sequence

from .scheduled import Scheduled


def find_scheduled(kinds: Sequence[str] = ("cron", "systemd", "launchd")) -> List[Scheduled]:
    """Everything that already runs the tick, read from the crontab and the unit/plist files."""
    from . import cron, launchd, systemd  # when asked: importing lookup (health does) loads none

    found: List[Scheduled] = []
    if "cron" in kinds:
        found += cron.scheduled()
    if "systemd" in kinds:
        found += systemd.scheduled()
    if "launchd" in kinds:
        found += launchd.scheduled()
    return found


#: The backends, in the order their entries are listed (and the first one refused is named).
KINDS = ("cron", "systemd", "launchd")


def others_than(kind: str) -> List[Scheduled]:
    """What the backends other than ``kind`` schedule now: what its install must not schedule again."""
    return find_scheduled([k for k in KINDS if k != kind])

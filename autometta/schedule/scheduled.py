"""One thing that runs the tick (:class:`Scheduled`: our cron block, a foreign crontab line, a systemd
timer, a LaunchAgent), and the refusal to schedule the tick twice.

Each backend (``cron``, ``systemd``, ``launchd``) reads its own as ``scheduled()``;
:func:`autometta.schedule.lookup.find_scheduled` asks them all.
"""

from __future__ import annotations

from typing import Dict, List, NamedTuple, Optional, Sequence

from ..errors import UserError
from .invocation import TICK_ARGS


class Scheduled(NamedTuple):
    """One thing that runs the tick: our cron block, a foreign cron line, a unit, a plist."""

    kind: str  # cron | cron-foreign | systemd | launchd
    where: str
    argv: List[str] = []
    detail: str = ""
    repo: Optional[str] = None

    @property
    def managed(self) -> bool:
        return self.kind != "cron-foreign"

    def describe(self) -> str:
        if self.kind == "cron-foreign":
            return f"{self.where} runs the tick ('{self.detail}')"
        if self.kind == "cron":
            return f"the autometta block in your crontab ({self.where})"
        if self.kind == "systemd":
            return f"the systemd user timer {self.where}"
        return f"the LaunchAgent {self.where}"


def refuse_if_scheduled(others: List[Scheduled], fix_for: Dict[str, str]) -> None:
    """One clear line when something else already runs the tick."""
    if not others:
        return
    first = others[0]
    fix = fix_for.get(first.kind, "remove it first")
    more = f" (and {len(others) - 1} more)" if len(others) > 1 else ""
    raise UserError(f"the tick is already scheduled by {first.describe()}{more}; {fix}")


def pyz_of(argv: Sequence[str]) -> Optional[str]:
    """The pyz a scheduled ``[python, pyz, tick, ...]`` runs; None for ``-m autometta`` or a binary."""
    if len(argv) >= 2 and argv[1] != "-m" and argv[1] not in TICK_ARGS:
        return argv[1]
    return None



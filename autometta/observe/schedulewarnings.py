"""The schedule's warnings: ``status`` shows the remembered ones (:mod:`autometta.schedulememo`) while
what they depend on is unchanged; ``check-deps`` checks afresh (:func:`check`) and remembers anew.

Nothing of :mod:`autometta.schedule` is imported until a check runs: a ``status`` whose memo holds runs no
``crontab -l`` and opens no pyz.
"""

from __future__ import annotations

from ..schedulememo import recall, remember

TYPE_CHECKING = False  # not typing's: status imports no typing (tests/test_startup.py)
if TYPE_CHECKING:
    from typing import List, Optional

    from ..deps import Dep


def check() -> List[Dep]:
    """Every line of the schedule's health, checked now; its warnings are remembered for ``status``."""
    from ..schedule import health

    try:
        found: Optional[health.Found] = health.scheduled_or_error()
    except Exception:  # noqa: BLE001 - checks() says what failed
        found = None
    checked = health.checks(found)
    if found is not None:
        try:
            watched = health.watched(found[0])
        except Exception:  # noqa: BLE001 - not remembered: checked again next time
            return checked
        remember([d.line() for d in checked if d.status != "PASS"], watched)
    return checked


def warnings() -> List[str]:
    """``status``'s schedule warnings: remembered ones while they hold, else a fresh check."""
    lines = recall()
    if lines is None:
        lines = [d.line() for d in check() if d.status != "PASS"]
    return lines

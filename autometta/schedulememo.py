"""``status``'s schedule warnings, remembered between runs (``check-deps`` always checks afresh).

This module keeps the memo (:func:`recall`, :func:`remember`, :func:`forget`);
:mod:`autometta.observe.schedulewarnings` checks and asks it.

``status`` runs many times a day; what its schedule warnings say (nothing
runs the tick, the scheduled interpreter or pyz is gone, a pyz is older than
its checkout) changes rarely, and finding out costs a ``crontab -l`` and
opening pyz archives, more than the rest of ``status``. So the warnings of the
last check are kept in ``$XDG_CACHE_HOME/autometta/schedule-health.json``
(beside the bytecode cache) with the state (modification time, size, inode)
of every file and folder the check read or looked for
(:func:`autometta.schedule.health.watched`), and ``status`` shows them again
while none of those changed, ``PATH`` and the home folders are the same, and
they are under :data:`MAX_AGE` old. Otherwise it checks and remembers anew.

What no stat can see: a crontab edited by hand (a user cannot look at the
spool file), and a commit in the checkout a pyz was built from; ``status``
sees those within the hour. autometta's own crontab writes forget the memo at
once (:func:`forget`), and ``check-deps`` rewrites it. A memo that cannot be
read or written is ignored: ``status`` then checks every time, as it did.
"""

from __future__ import annotations

import os
import time

from . import files

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, List, Optional, Sequence

#: Seconds a remembered check is shown for at most.
MAX_AGE = 3600
FORMAT = 1
#: What the check depends on beside the files it looked at.
_ENV = ("PATH", "HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME")


def memo_path() -> str:
    from .bytecache import cache_root

    return os.path.join(os.path.dirname(cache_root()), "schedule-health.json")


def _state(path: str) -> Optional[List[int]]:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return [st.st_mtime_ns, st.st_size, st.st_ino]


def _context() -> Dict[str, str]:
    return {name: os.environ.get(name, "") for name in _ENV}


def recall(now: Optional[float] = None) -> Optional[List[str]]:
    """The remembered warnings, or None when there are none to trust."""
    now = time.time() if now is None else now
    try:
        path = memo_path()
        uid = os.getuid()
        for st in (os.stat(path), os.stat(os.path.dirname(path))):
            if st.st_uid != uid or st.st_mode & 0o022:
                return None  # someone else could have written it
        doc = files.read_json(path)
        if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("context") != _context():
            return None
        checked, lines, watched = doc.get("checked_at"), doc.get("warnings"), doc.get("watched")
        if not isinstance(checked, (int, float)) or not 0 <= now - checked < MAX_AGE:
            return None
        if not isinstance(lines, list) or not all(isinstance(line, str) for line in lines):
            return None
        if not isinstance(watched, dict) or any(_state(path) != seen for path, seen in watched.items()):
            return None
        return lines
    except Exception:  # noqa: BLE001 - missing, unreadable or not ours: check again
        return None


def remember(lines: Sequence[str], watched: Sequence[str], now: Optional[float] = None) -> None:
    """Keep ``lines`` until one of ``watched`` changes or :data:`MAX_AGE` passes. Never raises."""
    doc = {"format": FORMAT, "checked_at": time.time() if now is None else now, "context": _context(),
           "watched": {path: _state(path) for path in watched}, "warnings": list(lines)}
    try:
        path = memo_path()
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        files.write_json(path, doc, mode=0o600)
    except Exception:  # noqa: BLE001 - a memo that cannot be kept costs a check next time, nothing more
        pass


def forget() -> None:
    try:
        os.unlink(memo_path())
    except OSError:
        pass


__all__ = ["MAX_AGE", "memo_path", "recall", "remember", "forget"]

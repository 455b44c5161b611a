"""Named fault points, armed only by the reliability tests.

``point(name, detail)`` is a no-op unless ``AUTOMETTA_FAULT`` is set. When it
is, it holds one or more comma-separated specs::

    <name>[@<detail>][:<n>][:<action>]

``name`` is a point (``atomic_write.before``, ``spawn.after``, ...); ``@detail``
narrows it to one file or role (``atomic_write.after@state.yaml``); ``n`` is
the hit that fires (default 1, counted per process); ``action`` is ``kill``
(default: SIGKILL this process, as a power cut or the OOM killer would),
``kill+<seconds>`` (the same after a pause there, so what the process started
moves on meanwhile), ``enospc`` or ``erofs`` (raise the OSError a full or
read-only disk raises, at the n-th hit and every one after), ``bug`` (raise the
KeyError a bug would, at the n-th hit only: what :mod:`autometta.crash` is for).

Points in the product (see :data:`POINTS`) sit before and after every state
write, agent spawn, stage commit and state snapshot, so a test can stop a tick
anywhere inside a transition and check that the next tick recovers; one sits in
the runner, once the agent it supervises has started (``runner.started@<exit
record's name>``; the runner's environment is the agent's, so a test arms it
through ``env.pass``).
"""

from __future__ import annotations

import errno
import os

TYPE_CHECKING = False  # not typing's: an idle tick and status import no typing (tests/test_startup.py)
if TYPE_CHECKING:
    from typing import Dict, List, Optional, Tuple

ENV = "AUTOMETTA_FAULT"

#: Every point the product calls, in the order a transition meets them.
POINTS = (
    "spawn.before", "spawn.after", "runner.started",
    "commit.before", "commit.after",
    "atomic_write.before", "atomic_write.during", "atomic_write.after",
    "snapshot.before", "snapshot.after",
    "lane.created", "lane.rebased", "lane.landed",
)

_ERRNOS = {"enospc": errno.ENOSPC, "erofs": errno.EROFS}

_hits: Dict[str, int] = {}
_parsed: Optional[Tuple[str, List[Tuple[str, int, str]]]] = None


def _specs(raw: str) -> List[Tuple[str, int, str]]:
    global _parsed
    if _parsed is not None and _parsed[0] == raw:
        return _parsed[1]
    out = []
    for item in raw.split(","):
        parts = item.strip().split(":")
        if not parts[0]:
            continue
        nth, action = 1, "kill"
        for extra in parts[1:]:
            if extra.isdigit():
                nth = int(extra)
            elif extra:
                action = extra.lower()
        out.append((parts[0], nth, action))
    _parsed = (raw, out)
    return out


def point(name: str, detail: str = "") -> None:
    """Fire the fault armed for ``name`` (or ``name@detail``), if any."""
    raw = os.environ.get(ENV)
    if not raw:
        return
    for spec, nth, action in _specs(raw):
        if spec != name and spec != f"{name}@{detail}":
            continue
        _hits[spec] = _hits.get(spec, 0) + 1
        if action in _ERRNOS:
            if _hits[spec] >= nth:  # a full disk stays full
                code = _ERRNOS[action]
                raise OSError(code, os.strerror(code))
            continue
        if action == "bug":
            if _hits[spec] == nth:
                raise KeyError(f"fault {spec}")
            continue
        if _hits[spec] == nth:
            import signal

            if action.startswith("kill+"):
                import time

                try:
                    time.sleep(max(0.0, float(action[len("kill+"):])))
                except ValueError:
                    pass
            os.kill(os.getpid(), signal.SIGKILL)

"""Follow the controller log across days (``autometta log --follow``).

The tick writes ``<home>/log/tick-YYYY-MM-DD.log``, a new file each local
day. ``tail -f`` on one file goes quiet at midnight (the bash viewer's bug,
§15.24); :class:`Follower` prints what is new in the current file and moves
to the next day's file as soon as it appears, after draining the old one.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable, List, Optional

from ..paths import HomePaths


def latest_log(hp: HomePaths) -> Optional[Path]:
    try:
        logs = sorted(p for p in hp.log_dir.iterdir() if p.name.startswith("tick-") and p.name.endswith(".log"))
    except OSError:
        return None
    return logs[-1] if logs else None


def tail_lines(path: Path, count: int) -> List[str]:
    """The last ``count`` lines of ``path`` (reads at most the last 1 MB)."""
    if count <= 0:
        return []
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 1024 * 1024))
            data = handle.read()
    except OSError:
        return []
    return data.decode("utf-8", errors="replace").splitlines()[-count:]


class Follower:
    """Yields new log text on each :meth:`poll`; switches to the next day's file when it exists."""

    def __init__(self, hp: HomePaths, clock: Callable[[], float] = time.time) -> None:
        self.hp = hp
        self.clock = clock
        self.current: Optional[Path] = None
        self.offset = 0
        self._partial = b""

    def start(self, lines: int) -> str:
        """Begin at the newest log; returns its last ``lines`` lines (or a note that there is none)."""
        today = self.hp.tick_log(self.clock())
        self.current = today if today.exists() else latest_log(self.hp)
        if self.current is None:
            return f"(no tick log yet in {self.hp.log_dir}; waiting for the first tick)\n"
        try:
            self.offset = self.current.stat().st_size
        except OSError:
            self.offset = 0
        shown = tail_lines(self.current, lines)
        return "".join(line + "\n" for line in shown)

    def _read_new(self) -> str:
        if self.current is None:
            return ""
        try:
            size = self.current.stat().st_size
        except OSError:
            return ""
        if size < self.offset:  # truncated or replaced: start again from its beginning
            self.offset, self._partial = 0, b""
        if size == self.offset:
            return ""
        try:
            with open(self.current, "rb") as handle:
                handle.seek(self.offset)
                data = handle.read(size - self.offset)
        except OSError:
            return ""
        self.offset += len(data)
        data = self._partial + data
        cut = data.rfind(b"\n") + 1
        self._partial = data[cut:]
        return data[:cut].decode("utf-8", errors="replace")

    def poll(self) -> str:
        """What was appended since the last poll, and the switch to a newer day's file."""
        out = self._read_new()
        today = self.hp.tick_log(self.clock())
        newest = today if today.exists() else latest_log(self.hp)
        if newest is not None and newest != self.current and (self.current is None or newest.name > self.current.name):
            if self._partial:
                out += self._partial.decode("utf-8", errors="replace") + "\n"
            self.current, self.offset, self._partial = newest, 0, b""
            out += f"--- {newest.name} ---\n" + self._read_new()
        return out

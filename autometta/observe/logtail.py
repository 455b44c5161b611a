"""Follow the controller log across days (``autometta log --follow``), all of it or one repo's.

The tick writes ``<home>/log/tick-YYYY-MM-DD.log``, a new file each local
day. ``tail -f`` on one file goes quiet at midnight (the bash viewer's bug,
§15.24); :class:`Follower` prints what is new in the current file and moves
to the next day's file as soon as it appears, after draining the old one.

With a repo (:class:`RepoFilter`) only that repo's lines are shown, without
their ``[<repo>]`` tag: the lines the tick tagged with it, and untagged
lines that name its path (written before lines were tagged, or by a part of
the tick that is not about one repo, such as ``error in <repo>: ...``).
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Callable, List, Optional

from .. import files
from ..paths import HomePaths

#: A line's time stamp and the space after it: ``2026-11-26T08:00:00Z ``.
_STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z ")


class RepoFilter:
    """Keeps the lines about one repo (given as its real path); see the module docstring."""

    def __init__(self, repo: str) -> None:
        from ..ticklog import tag

        self.tag = tag(repo) + " "
        self.names = re.compile(re.escape(repo) + r"(?![\w.-])")

    def line(self, line: str) -> Optional[str]:
        stamp = _STAMP.match(line)
        if stamp is None:
            return line if self.names.search(line) else None
        rest = line[stamp.end():]
        if rest.startswith(self.tag):
            return line[:stamp.end()] + rest[len(self.tag):]
        if rest.startswith("[") and "] " in rest:  # another repo's line; it may name ours, but is not about it
            return None
        return line if self.names.search(rest) else None

    def lines(self, lines: List[str]) -> List[str]:
        return [shown for shown in (self.line(x) for x in lines) if shown is not None]

    def text(self, text: str) -> str:
        return "".join(line + "\n" for line in self.lines(text.splitlines()))


def latest_log(hp: HomePaths) -> Optional[Path]:
    try:
        logs = sorted(p for p in hp.log_dir.iterdir() if p.name.startswith("tick-") and p.name.endswith(".log"))
    except OSError:
        return None
    return logs[-1] if logs else None


def tail_lines(path: Path, count: int, keep: Optional[RepoFilter] = None) -> List[str]:
    """The last ``count`` lines of ``path`` (those ``keep`` keeps; reads at most the last 1 MB)."""
    if count <= 0:
        return []
    try:
        with files.open_regular(path) as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 1024 * 1024))
            data = handle.read()
    except OSError:
        return []
    lines = data.decode("utf-8", errors="replace").splitlines()
    if keep is not None:
        lines = keep.lines(lines)
    return lines[-count:]


class Follower:
    """Yields new log text on each :meth:`poll`; switches to the next day's file when it exists."""

    def __init__(self, hp: HomePaths, clock: Callable[[], float] = time.time,
                 keep: Optional[RepoFilter] = None) -> None:
        self.hp = hp
        self.clock = clock
        self.keep = keep
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
        shown = tail_lines(self.current, lines, self.keep)
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
            with files.open_regular(self.current) as handle:
                handle.seek(self.offset)
                data = handle.read(size - self.offset)
        except OSError:
            return ""
        self.offset += len(data)
        data = self._partial + data
        cut = data.rfind(b"\n") + 1
        self._partial = data[cut:]
        text = data[:cut].decode("utf-8", errors="replace")
        return self.keep.text(text) if self.keep is not None else text

    def poll(self) -> str:
        """What was appended since the last poll, and the switch to a newer day's file."""
        out = self._read_new()
        today = self.hp.tick_log(self.clock())
        newest = today if today.exists() else latest_log(self.hp)
        if newest is not None and newest != self.current and (self.current is None or newest.name > self.current.name):
            if self._partial:
                rest = self._partial.decode("utf-8", errors="replace") + "\n"
                out += self.keep.text(rest) if self.keep is not None else rest
            self.current, self.offset, self._partial = newest, 0, b""
            out += f"--- {newest.name} ---\n" + self._read_new()
        return out

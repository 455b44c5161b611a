"""An agent's log as the runner writes it: the agent's output, masked line by line.

The runner gives the agent a pipe for stdout and stderr instead of the log
file, and a :class:`Pump` thread copies what comes through into the log,
masked (:mod:`autometta.redact`: the run's resolved secrets and every key
shape). Whole lines are written as they complete, and an unfinished line's
safe part after :data:`IDLE_FLUSH` seconds, so the log streams as before and
claude's ``stream-json`` and codex's ``--json`` lines stay whole and
parseable; a secret split across two reads is still masked.

The values come from :func:`autometta.agents.spawn.launch` through a pipe the
runner inherits (:func:`read_values`), never through argv (which every user
can read) or a file. An agent may also write into its log file directly;
:func:`scrub` masks that in place once the run is over.

Standard library plus :mod:`autometta.redact`: the runner imports this.
"""

from __future__ import annotations

import json
import os
import select
import threading
import time
from typing import List, Optional

from ..files import open_unfollowed
from ..redact import LineStream, Redactor, scrub_fd

#: Seconds an unfinished line waits before its safe part is written.
IDLE_FLUSH = 0.5
#: Seconds the runner waits, once the agent and its group are gone, for the pipe to reach its end
#: (a process that left the group may still hold it open).
DRAIN_SECONDS = 2.0
#: Most bytes of secret values launch hands over (they must fit a pipe's buffer before the runner reads).
VALUES_LIMIT = 8192


def encode_values(values: List[str]) -> bytes:
    payload = json.dumps(sorted(set(v for v in values if isinstance(v, str) and v))).encode("utf-8")
    if len(payload) > VALUES_LIMIT:
        raise ValueError(f"{len(payload)} bytes of secret values; at most {VALUES_LIMIT} are handed to the runner")
    return payload


def read_values(fd: Optional[int]) -> List[str]:
    """The secret values in ``fd`` (a JSON list), read to its end; the fd is closed. [] without one."""
    if fd is None:
        return []
    chunks = []
    try:
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    except OSError:
        return []
    finally:
        try:
            os.close(fd)
        except OSError:
            pass
    try:
        doc = json.loads(b"".join(chunks).decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return []
    return [v for v in doc if isinstance(v, str)] if isinstance(doc, list) else []


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except InterruptedError:
            continue
        except OSError:
            return  # a full disk: the output is lost, the pipe still drains
        view = view[written:]


class Pump(threading.Thread):
    """Copies the agent's pipe (``source``) into the log (``log_fd``), masked; closes ``source`` at its end."""

    def __init__(self, source: int, log_fd: int, redactor: Redactor) -> None:
        super().__init__(name="agent-log", daemon=True)
        self.source = source
        self.log_fd = log_fd
        self.redactor = redactor
        self._stop_at: Optional[float] = None

    def run(self) -> None:
        stream = LineStream(self.redactor)
        try:
            while True:
                if self._stop_at is not None and time.monotonic() >= self._stop_at:
                    break
                try:
                    ready, _, _ = select.select([self.source], [], [], IDLE_FLUSH)
                except InterruptedError:
                    continue
                if not ready:
                    if stream.pending:
                        _write_all(self.log_fd, stream.partial())
                    if self._stop_at is not None:
                        break
                    continue
                try:
                    data = os.read(self.source, 65536)
                except InterruptedError:
                    continue
                except OSError:
                    break
                if not data:
                    break
                _write_all(self.log_fd, stream.feed(data))
        finally:
            _write_all(self.log_fd, stream.close())
            try:
                os.close(self.source)
            except OSError:
                pass

    def finish(self, timeout: float = DRAIN_SECONDS) -> None:
        """Wait for the pipe's end; past ``timeout``, write what came and stop reading."""
        self.join(timeout)
        if self.is_alive():
            self._stop_at = time.monotonic()
            self.join(IDLE_FLUSH + 1.0)


def scrub(path: str, log_fd: int, redactor: Redactor) -> bool:
    """Mask, in place, what the agent wrote into its log file itself; True if anything was masked.

    Only the file the runner has open on ``log_fd``: a path the agent
    replaced (a symlink to another file, a new file) is left alone.
    """
    fd = open_unfollowed(path, os.O_RDWR)
    if fd is None:
        return False
    try:
        ours, there = os.fstat(log_fd), os.fstat(fd)
        if (ours.st_dev, ours.st_ino) != (there.st_dev, there.st_ino):
            return False
        return scrub_fd(fd, redactor)
    except OSError:
        return False
    finally:
        os.close(fd)


#: Logs larger than this are read from their tail only (usage events are at the end).
LOG_READ_LIMIT = 64 * 1024 * 1024


def read_log(path: "os.PathLike[str]") -> str:
    """An agent's log as text (its tail past :data:`LOG_READ_LIMIT`); "" when it cannot be read."""
    from ..files import open_regular

    try:
        size = os.stat(path).st_size
        with open_regular(path) as handle:  # an agent's own file: never a FIFO that blocks
            if size > LOG_READ_LIMIT:
                handle.seek(size - LOG_READ_LIMIT)
            return handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""

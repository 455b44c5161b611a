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
from typing import List, Optional, Tuple, Union

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


class Sink:
    """The log file as the runner writes it: each byte written is also hashed, so a byte that something
    else (the agent itself) wrote there shows at the end (:func:`forged`). The pump's thread and the
    runner's notes write through one sink."""

    def __init__(self, fd: int) -> None:
        import hashlib

        self.fd = fd
        self._hash = hashlib.sha256()
        self._lock = threading.Lock()
        self._sealed = False

    def seal(self) -> None:
        """No more writes: the log is final (a pump still draining a pipe someone holds open writes nothing)."""
        with self._lock:
            self._sealed = True

    def write(self, data: bytes) -> None:
        with self._lock:
            if self._sealed:
                return
            view = memoryview(data)
            while view:
                try:
                    written = os.write(self.fd, view)
                except InterruptedError:
                    continue
                except OSError:
                    return  # a full disk: the output is lost (and not counted as written), the pipe still drains
                self._hash.update(view[:written])
                view = view[written:]

    def hexdigest(self) -> str:
        with self._lock:
            return self._hash.hexdigest()


def _fd_digest(fd: int) -> str:
    """SHA-256 of the whole file open on ``fd`` (read with pread: the fd's own offset is left alone)."""
    import hashlib

    h = hashlib.sha256()
    offset = 0
    while True:
        chunk = os.pread(fd, 1 << 20, offset)
        if not chunk:
            return h.hexdigest()
        h.update(chunk)
        offset += len(chunk)


def _ours(path: str, sink: Sink) -> Tuple[Optional[int], Optional[str]]:
    """The file at ``path`` opened for reading if it is the one ``sink`` writes, else (None, why)."""
    fd = open_unfollowed(path, os.O_RDONLY)
    if fd is None:
        return None, "its log is gone or was replaced by something that is not a file"
    try:
        ours, there = os.fstat(sink.fd), os.fstat(fd)
    except OSError as exc:
        os.close(fd)
        return None, f"its log cannot be read ({exc.strerror})"
    if (ours.st_dev, ours.st_ino) != (there.st_dev, there.st_ino):
        os.close(fd)
        return None, "its log was replaced by another file"
    return fd, None


def forged(path: str, sink: Sink) -> Optional[str]:
    """Why the log at ``path`` is not (only) what the runner wrote through ``sink``, or None.

    Called once the run is over and before :func:`scrub`: an agent that
    wrote into its log (a usage line, a session id, a limit message) or put
    another file at its path would have the tick read what it chose.
    """
    fd, why = _ours(path, sink)
    if fd is None:
        return why
    try:
        return None if _fd_digest(fd) == sink.hexdigest() else "something other than its runner wrote into its log"
    except OSError as exc:
        return f"its log cannot be read ({exc.strerror})"
    finally:
        os.close(fd)


def digest(path: str, sink: Sink) -> Optional[str]:
    """SHA-256 of the log at ``path`` as it is now (scrubbed), if it is still the runner's file; else None."""
    fd, _ = _ours(path, sink)
    if fd is None:
        return None
    try:
        return _fd_digest(fd)
    except OSError:
        return None
    finally:
        os.close(fd)


class Pump(threading.Thread):
    """Copies the agent's pipe (``source``) into the log (``log``: a :class:`Sink`, or a file descriptor),
    masked; closes ``source`` at its end."""

    def __init__(self, source: int, log: Union[int, Sink], redactor: Redactor) -> None:
        super().__init__(name="agent-log", daemon=True)
        self.source = source
        self.sink = log if isinstance(log, Sink) else Sink(log)
        self.log_fd = self.sink.fd
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
                        self.sink.write(stream.partial())
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
                self.sink.write(stream.feed(data))
        finally:
            self.sink.write(stream.close())
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


def run_log(path: "os.PathLike[str]", record: Optional[dict]) -> Tuple[str, Optional[str]]:
    """A finished run's log as text, and why nothing in it is to be trusted (None when it can be).

    ``record`` is the run's exit record: its runner says whether the log is
    only what it wrote (``log_forged``) and what it left there
    (``log_sha256``); a log with other bytes now was changed after the run.
    A record without either (the bash version's, an older autometta's, no
    log) makes no claim: the log is read as before.
    """
    record = record or {}
    why = record.get("log_forged")
    if isinstance(why, str) and why:
        return "", why
    sha = record.get("log_sha256")
    if not isinstance(sha, str):
        return read_log(path), None
    import hashlib

    from ..files import open_regular

    try:
        with open_regular(path) as handle:
            data = handle.read()
    except OSError:
        return "", "its log is gone"
    if hashlib.sha256(data).hexdigest() != sha:
        return "", "its log changed after its run ended"
    return data[-LOG_READ_LIMIT:].decode("utf-8", errors="replace"), None

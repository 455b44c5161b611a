"""Durable file primitives: the one atomic write, the one lock, JSON I/O.

Every state write in autometta goes through :func:`atomic_write`: a temp file
in the same folder, fsync, rename, fsync of the folder. A reader therefore
sees the old document or the new one, never half of either, even across a
power cut. Locks are ``fcntl.flock`` on a lock file, released by the kernel
when the holder dies, so a crashed tick can never wedge a repo.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator, Optional, Union

from . import faults
from .errors import UserError

Data = Union[str, bytes]

#: Files larger than this are refused on read: no state file is ever this big,
#: and reading a runaway log or a hostile 10 GB file into memory is not an option.
MAX_DOCUMENT_BYTES = 8 * 1024 * 1024


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(str(folder), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(
    path: Union[str, Path],
    data: Data,
    *,
    mode: Optional[int] = None,
    durable: bool = True,
) -> None:
    """Replace ``path`` with ``data`` atomically.

    ``mode`` defaults to the existing file's mode, else 0o644. A symlink at
    ``path`` is replaced, never written through. ``durable=False`` skips the
    fsyncs, for a cache rewritten often whose loss costs nothing (readers
    still see the old file or the new one, never a torn one).
    """
    target = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    if mode is None:
        try:
            st = os.lstat(target)
            mode = st.st_mode & 0o777 if not os.path.islink(target) else 0o644
        except FileNotFoundError:
            mode = 0o644
    folder = target.parent
    try:
        faults.point("atomic_write.before", target.name)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=str(folder))
    except OSError as exc:
        raise _write_error(target, exc) from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        faults.point("atomic_write.during", target.name)  # written, not yet renamed into place
        os.replace(tmp, str(target))
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise _write_error(target, exc) from exc
    if durable:
        _fsync_dir(folder)
    faults.point("atomic_write.after", target.name)


def _write_error(target: Path, exc: OSError) -> UserError:
    reason = {
        errno.ENOSPC: "the disk is full",
        errno.EROFS: "the file system is read-only",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.ENOENT: "its folder does not exist",
    }.get(exc.errno or 0, exc.strerror or str(exc))
    return UserError(f"{target}: cannot write ({reason}); the previous version is unchanged")


def read_bytes(path: Union[str, Path], *, limit: int = MAX_DOCUMENT_BYTES) -> bytes:
    """Read a whole document, refusing anything larger than ``limit``."""
    target = Path(path)
    try:
        with open(target, "rb") as handle:
            data = handle.read(limit + 1)
    except FileNotFoundError:
        raise UserError(f"{target}: file not found") from None
    except IsADirectoryError:
        raise UserError(f"{target}: is a folder, expected a file") from None
    except OSError as exc:
        raise UserError(f"{target}: cannot read ({exc.strerror})") from exc
    if len(data) > limit:
        raise UserError(f"{target}: larger than {limit} bytes; this is not a file autometta wrote")
    return data


def read_text(path: Union[str, Path], *, limit: int = MAX_DOCUMENT_BYTES) -> str:
    data = read_bytes(path, limit=limit)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text (byte {exc.start}); restore it from its .bak or git") from None


def dump_json(obj: Any) -> str:
    """The JSON layout autometta writes: two-space indent, trailing newline."""
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


def parse_json(text: str, source: Union[str, Path]) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{source}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg})") from None
    except RecursionError:
        raise UserError(f"{source}: JSON nested too deeply to be a file autometta wrote") from None


def read_json(path: Union[str, Path]) -> Any:
    return parse_json(read_text(path), path)


def write_json(path: Union[str, Path], obj: Any, **kwargs: Any) -> None:
    atomic_write(path, dump_json(obj), **kwargs)


class LockBusy(UserError):
    """Another process holds the lock."""


@contextlib.contextmanager
def locked(path: Union[str, Path], *, timeout: float = 0.0) -> Iterator[int]:
    """Hold an exclusive ``flock`` on ``path`` (created if needed).

    Waits up to ``timeout`` seconds, then raises :class:`LockBusy`. The lock
    file records the holder's pid for humans; the kernel, not the pid, decides
    who holds it, so a dead holder never blocks anyone.
    """
    target = Path(path)
    try:
        fd = os.open(str(target), os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
    except OSError as exc:
        raise UserError(f"{target}: cannot open lock file ({exc.strerror})") from exc
    try:
        deadline = time.monotonic() + timeout
        delay = 0.01
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise UserError(f"{target}: cannot lock ({exc.strerror})") from exc
                if time.monotonic() >= deadline:
                    raise LockBusy(f"{target}: held by another process") from None
                time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
                delay = min(delay * 2, 0.2)
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        yield fd
    finally:
        os.close(fd)


def ensure_dir(path: Union[str, Path], mode: int = 0o755) -> Path:
    target = Path(path)
    try:
        target.mkdir(parents=True, exist_ok=True, mode=mode)
    except FileExistsError:
        raise UserError(f"{target}: exists and is not a folder") from None
    except OSError as exc:
        raise UserError(f"{target}: cannot create folder ({exc.strerror})") from exc
    return target

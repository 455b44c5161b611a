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
import re
import stat
import sys
import time
from pathlib import Path

from . import faults
from .errors import UserError

TYPE_CHECKING = False  # not typing's: an idle tick and status import no typing (tests/test_startup.py)
if TYPE_CHECKING:
    from typing import Any, BinaryIO, Iterator, Optional, Tuple, Union

    Data = Union[str, bytes]

#: Files larger than this are refused on read: no state file is ever this big,
#: and reading a runaway log or a hostile 10 GB file into memory is not an option.
MAX_DOCUMENT_BYTES = 8 * 1024 * 1024

#: Deepest nesting of lists and mappings a JSON or YAML document may have. autometta's own
#: files nest five levels at most; a deeper one is broken or hostile, and would overflow the
#: stack of every reader that walks it (the schema check, the views, ``json.dumps``).
MAX_DEPTH = 64


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
        fd, tmp = _temp_file(folder, target.name)
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


#: How a temporary file is opened: created here, ours alone, not through a symlink (as ``tempfile.mkstemp``).
_TEMP_FLAGS = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def _temp_file(folder: Path, name: str) -> Tuple[int, str]:
    """``(fd, path)`` of a new empty file ``.<name>.<random>.tmp`` in ``folder``, mode 0600: what
    ``tempfile.mkstemp`` makes, without importing tempfile (and the shutil, random, bz2 and lzma it
    imports), which costs a run that writes one small file more than the write."""
    for _ in range(100):
        tmp = os.path.join(str(folder), f".{name}.{os.urandom(6).hex()}.tmp")
        try:
            return os.open(tmp, _TEMP_FLAGS, 0o600), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no unused temporary file name", str(folder))


def sha256_hex(data: bytes) -> str:
    """``hashlib.sha256(data).hexdigest()``, from the interpreter's own SHA-256 where it has one: importing
    hashlib loads OpenSSL, which costs an idle tick more than its work (tests/test_startup.py)."""
    for name in ("_sha2", "_sha256") if sys.version_info >= (3, 12) else ("_sha256", "_sha2"):
        try:
            return __import__(name).sha256(data).hexdigest()  # what hashlib falls back to without OpenSSL
        except (ImportError, AttributeError):
            continue
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _write_error(target: Path, exc: OSError) -> UserError:
    reason = {
        errno.ENOSPC: "the disk is full",
        errno.EROFS: "the file system is read-only",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.ENOENT: "its folder does not exist",
    }.get(exc.errno or 0, exc.strerror or str(exc))
    return UserError(f"{target}: cannot write ({reason}); the previous version is unchanged")


def read_bytes(path: Union[str, Path], *, limit: int = MAX_DOCUMENT_BYTES, follow: bool = True) -> bytes:
    """Read a whole document, refusing anything larger than ``limit``.

    Only a regular file is read: a folder, a FIFO (whose open would wait for a
    writer forever) or a device is refused. ``follow=False`` refuses a symlink
    too, naming it: for files an agent writes, which must not make autometta
    read ``/etc/shadow`` or ``~/.ssh/id_rsa`` on its behalf.
    """
    target = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    if not follow:
        flags |= getattr(os, "O_NOFOLLOW", 0)
        if os.path.islink(target):
            raise UserError(f"{target}: is a symlink (to {os.readlink(target)}); refused, "
                            "an agent's file must be a plain file")
    try:
        fd = os.open(str(target), flags)
    except FileNotFoundError:
        raise UserError(f"{target}: file not found") from None
    except IsADirectoryError:
        raise UserError(f"{target}: is a folder, expected a file") from None
    except OSError as exc:
        if not follow and exc.errno == errno.ELOOP:
            raise UserError(f"{target}: is a symlink; refused, an agent's file must be a plain file") from None
        raise UserError(f"{target}: cannot read ({exc.strerror})") from exc
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise UserError(f"{target}: is a folder, expected a file")
        if not stat.S_ISREG(info.st_mode):
            raise UserError(f"{target}: is not a regular file (a pipe or a device); refused")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1024 * 1024, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        data = b"".join(chunks)
    except OSError as exc:
        raise UserError(f"{target}: cannot read ({exc.strerror})") from exc
    finally:
        os.close(fd)
    if len(data) > limit:
        raise UserError(f"{target}: larger than {limit} bytes; this is not a file autometta wrote")
    return data


def open_regular(path: Union[str, Path]) -> BinaryIO:
    """``open(path, "rb")`` for a log or another file read in part: a folder, a FIFO (whose open
    would wait for a writer forever) or a device is refused with an ``OSError``, as a missing file is."""
    fd = os.open(str(path), os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def open_unfollowed(path: Union[str, Path], flags: int) -> Optional[int]:
    """A file descriptor on ``path`` (``flags``, e.g. ``os.O_RDWR``) that follows no symlink, waits for no
    FIFO's writer and is not inherited; None when it cannot be opened. For a file an agent can reach."""
    extra = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        return os.open(str(path), flags | extra)
    except OSError:
        return None


def open_fresh(path: Union[str, Path], mode: int = 0o600) -> int:
    """A file descriptor on ``path`` emptied, for appending: an agent's log, about to be written anew.

    The log's folder is one an agent can write, so whatever it left at the
    path is not followed: a FIFO (opening it for writing waits for a reader
    forever: the tick hung), a symlink (it would send the truncation and the
    log to a file elsewhere) or a hard link to another file is removed first,
    and the file opened is checked to be a plain one before it is emptied.
    ``OSError`` if it cannot be (one put back meanwhile, a folder).
    """
    target = str(path)
    try:
        st = os.lstat(target)
        if not stat.S_ISDIR(st.st_mode) and (not stat.S_ISREG(st.st_mode) or st.st_nlink > 1):
            os.unlink(target)
    except FileNotFoundError:
        pass
    flags = (os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
             | getattr(os, "O_CLOEXEC", 0))
    fd = os.open(target, flags, mode)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink > 1:
            raise OSError(errno.EINVAL, "not a plain file of its own (a pipe, a device or a hard link)", target)
        os.ftruncate(fd, 0)
        os.fchmod(fd, mode)  # an older file of another mode: the agent's log is the user's alone
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_text(path: Union[str, Path], *, limit: int = MAX_DOCUMENT_BYTES, follow: bool = True) -> str:
    data = read_bytes(path, limit=limit, follow=follow)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text (byte {exc.start}); restore it from its .bak or git") from None


def dump_json(obj: Any) -> str:
    """The JSON layout autometta writes: two-space indent, trailing newline."""
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


#: compiled on first use (``re`` keeps them): only a document with many brackets, or an escaped NUL, needs them
_JSON_NESTING = r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]'


def _too_deep(text: str, limit: int) -> Optional[int]:
    """Offset of the first ``[`` or ``{`` nested deeper than ``limit`` (strings skipped), or None."""
    if text.count("[") + text.count("{") <= limit:
        return None
    depth = 0
    for match in re.finditer(_JSON_NESTING, text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > limit:
                return match.start()
        elif token in "]}":
            depth -= 1
    return None


_ESCAPED_NUL = r"(?<!\\)(?:\\\\)*\\u0000"


def _nul_at(text: str) -> Optional[int]:
    """Offset of a NUL character, raw or escaped as ``\\u0000`` in a string, or None."""
    raw = text.find("\0")
    if raw >= 0:
        return raw
    if "\\u0000" not in text:
        return None
    match = re.search(_ESCAPED_NUL, text)
    return None if match is None else match.end() - 6


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON value")


def parse_json(text: str, source: Union[str, Path], *, max_depth: int = MAX_DEPTH) -> Any:
    """A JSON document, or a one-line :class:`UserError` naming ``source`` and the line.

    Nesting deeper than ``max_depth`` is refused before parsing (see
    :data:`MAX_DEPTH`), and so are ``NaN`` and ``Infinity``, which are not
    JSON, and NUL characters, which no path, identity or message may hold
    (the operating system refuses them in a path or an argument).
    """
    deep = _too_deep(text, max_depth)
    if deep is not None:
        line = text.count("\n", 0, deep) + 1
        col = deep - (text.rfind("\n", 0, deep) + 1) + 1
        raise UserError(f"{source}:{line}:{col}: nested more than {max_depth} levels deep; "
                        "no file autometta reads nests like this (restore it, or delete it)") from None
    nul = _nul_at(text)
    if nul is not None:
        line = text.count("\n", 0, nul) + 1
        col = nul - (text.rfind("\n", 0, nul) + 1) + 1
        raise UserError(f"{source}:{line}:{col}: holds a NUL character; no file autometta reads does "
                        "(restore it, or delete it)")
    try:
        return json.loads(text, parse_constant=_not_json)
    except json.JSONDecodeError as exc:
        raise UserError(f"{source}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg})") from None
    except (ValueError, RecursionError) as exc:  # NaN, an integer of thousands of digits
        raise UserError(f"{source}: not valid JSON ({exc})") from None


def read_json(path: Union[str, Path], *, limit: int = MAX_DOCUMENT_BYTES, follow: bool = True) -> Any:
    return parse_json(read_text(path, limit=limit, follow=follow), path)


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
            # the pid in one width, over the last holder's: truncating the file each time would cost the
            # file system a journal entry per lock (every tick takes two per repo)
            record = f"{os.getpid():<10}\n".encode()
            os.pwrite(fd, record, 0)
            if os.fstat(fd).st_size != len(record):
                os.ftruncate(fd, len(record))
        yield fd
    finally:
        os.close(fd)


def is_dir(path: Union[str, Path]) -> bool:
    """``Path.is_dir`` for a path read from a file: False, not an error, for a name too long for the system."""
    try:
        return Path(path).is_dir()
    except (OSError, ValueError):
        return False


def is_file(path: Union[str, Path]) -> bool:
    """``Path.is_file``, False for a path the system cannot even look up (see :func:`is_dir`)."""
    try:
        return Path(path).is_file()
    except (OSError, ValueError):
        return False


def ensure_dir(path: Union[str, Path], mode: int = 0o755) -> Path:
    target = Path(path)
    try:
        target.mkdir(parents=True, exist_ok=True, mode=mode)
    except FileExistsError:
        raise UserError(f"{target}: exists and is not a folder") from None
    except OSError as exc:
        raise UserError(f"{target}: cannot create folder ({exc.strerror})") from exc
    return target

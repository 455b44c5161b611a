"""Waiting for what has no handle to wait on: a condition polled, a child process reaped, a FIFO written.

The timeouts are for a machine under load (CI runs three suites at once on
two cores): they only bound how long a test that already failed takes to say
so, never how long a passing one takes.
"""

from __future__ import annotations

import os
import select
import time
from pathlib import Path
from typing import Callable, Optional


def wait_for(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    """Poll ``predicate`` (for facts with no handle to wait on) until true or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(0.02)


def wait_child(pid: int, timeout: float = 30.0) -> Optional[int]:
    """Block until our child ``pid`` exits and reap it; its wait status (None if already reaped)."""
    if hasattr(os, "pidfd_open"):
        try:
            fd = os.pidfd_open(pid)
        except OSError:
            fd = -1
        if fd >= 0:
            try:
                ready, _, _ = select.select([fd], [], [], timeout)
            finally:
                os.close(fd)
            assert ready, f"pid {pid} still running after {timeout}s"
    deadline = time.monotonic() + timeout
    while True:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return None
        if done:
            return status
        assert time.monotonic() < deadline, f"pid {pid} still running after {timeout}s"
        time.sleep(0.02)


def read_fifo(path: Path, timeout: float = 120.0) -> str:
    """What a process writes into the FIFO ``path`` (``printf x > fifo``): the sign that it got there.

    Like ``open(path).read()``, but a writer that never comes (killed before it got there, or it
    took another branch) fails the test after ``timeout`` instead of hanging the whole run. We hold a
    write end ourselves, so no end-of-file comes before the data does.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    ours = os.open(path, os.O_WRONLY | os.O_NONBLOCK)  # never blocks: the read end is open
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
        assert ready, f"nothing was written into {path} within {timeout}s"
        data = b""
        while True:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            data += chunk
        return data.decode("utf-8", "replace")
    finally:
        os.close(ours)
        os.close(fd)

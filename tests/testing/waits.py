"""Waiting for what has no handle to wait on: a condition polled, a child process reaped."""

from __future__ import annotations

import os
import select
import time
from typing import Callable, Optional


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
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

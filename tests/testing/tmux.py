"""tmux for the tests: a private server per test (the ``socket`` fixture is in tests/observe/conftest.py),
commands on it, and a pane re-read until it shows what is awaited."""

from __future__ import annotations

import shutil
import subprocess
import time
from typing import Callable

import pytest

needs_tmux = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (tests/run.sh installs it)")


def t(socket: str, *args: str) -> str:
    return subprocess.run(["tmux", "-L", socket, *args], check=True, capture_output=True, text=True).stdout


def eventually(read: Callable[[], str], *wanted: str, timeout: float = 20.0) -> str:
    """Re-read a pane until it shows every ``wanted`` text: a pane has no handle to wait on."""
    deadline = time.monotonic() + timeout
    while True:
        text = read()
        if all(w in text for w in wanted):
            return text
        if time.monotonic() > deadline:
            raise AssertionError(f"pane never showed {wanted!r}; it shows:\n{text}")
        time.sleep(0.1)

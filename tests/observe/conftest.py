"""Fixtures for the observe tests (tests/observe/test_topapp.py has a socket fixture of its own)."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid

import pytest

from autometta.observe import tmux


@pytest.fixture
def socket(monkeypatch):
    """A tmux server of this test's own (``tmux -L <name>``), for autometta and the test; killed after."""
    name = f"autometta-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("AUTOMETTA_TMUX_SOCKET", name)
    monkeypatch.delenv("TMUX", raising=False)
    monkeypatch.delenv(tmux.SESSION_ENV, raising=False)
    yield name
    if shutil.which("tmux"):
        subprocess.run(["tmux", "-L", name, "kill-server"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

"""Fixtures for the reliability suite (the shared ``setup`` lives in tests/conftest.py)."""

from __future__ import annotations

import os
import signal

import pytest


@pytest.fixture(autouse=True)
def _no_strays(tmp_path):
    """Whatever a test started is gone afterwards, even when the product failed to stop it (Linux: /proc).

    A process counts as the test's when it works in the test's folder (an agent, an escapee, git and its hook).
    """
    yield
    if not os.path.isdir("/proc"):
        return
    top = os.path.realpath(tmp_path)
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            cwd = os.readlink(f"/proc/{name}/cwd")
        except OSError:
            continue
        if cwd == top or cwd.startswith(top + os.sep):
            try:
                os.kill(int(name), signal.SIGKILL)
            except OSError:
                pass


#: How the stage runs: its own worktree one at a time (the default), two lanes at once, or in the repo's tree.
MODES = {"serial": "", "lanes": "max_parallel: 2\n", "tree": "isolation: tree\n"}


@pytest.fixture(params=list(MODES))
def lanes(request, setup):
    """The mode's name; the repo's manifest says it."""
    manifest = setup[0] / ".autometta.local.yaml"
    manifest.write_text(manifest.read_text() + MODES[request.param])
    return request.param

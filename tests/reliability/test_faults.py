"""The fault points themselves: inert unless armed; armed, they fire at the n-th hit."""

from __future__ import annotations

import errno
import subprocess
import sys

import pytest

from autometta import faults
from tests.testing.env import ROOT


@pytest.fixture(autouse=True)
def _fresh():
    faults._hits.clear()
    yield
    faults._hits.clear()


def test_unarmed_points_do_nothing(monkeypatch):
    monkeypatch.delenv(faults.ENV, raising=False)
    for name in faults.POINTS:
        faults.point(name, "state.yaml")


def test_errno_fault_fires_from_the_nth_hit_and_stays(monkeypatch):
    monkeypatch.setenv(faults.ENV, "atomic_write.before@budget.json:2:enospc")
    faults.point("atomic_write.before", "state.yaml")  # another file: not counted
    faults.point("atomic_write.before", "budget.json")  # hit 1
    for _ in range(2):
        with pytest.raises(OSError) as caught:
            faults.point("atomic_write.before", "budget.json")
        assert caught.value.errno == errno.ENOSPC


def test_kill_fault_sigkills_the_process():
    code = ("import os; os.environ['AUTOMETTA_FAULT'] = 'spawn.after:2'\n"
            "from autometta import faults\n"
            "faults.point('spawn.after'); print('first', flush=True)\n"
            "faults.point('spawn.after'); print('second', flush=True)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=str(ROOT), capture_output=True, text=True)
    assert proc.returncode == -9 and proc.stdout == "first\n"

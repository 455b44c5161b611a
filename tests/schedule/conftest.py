"""Fixtures for the schedule tests; the helpers are in tests/testing/schedulers.py."""

from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path

import pytest

from tests.testing.schedulers import (FAKE_CRONTAB, REAL_CRONTAB, ROOT, SCRATCH_USER, Crontab, can_use_real,
                                      write_tool)


@pytest.fixture
def bin_dir(tmp_path, monkeypatch) -> Path:
    """A private bin/ first on PATH; HOME and XDG_CONFIG_HOME private too, so the
    user's own LaunchAgents and systemd units are neither seen nor touched."""
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", f"{folder}:{os.environ.get('PATH', '/usr/bin:/bin')}")
    (tmp_path / "user-home").mkdir(exist_ok=True)
    monkeypatch.setenv("HOME", str(tmp_path / "user-home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "user-home" / ".config"))
    return folder


@pytest.fixture(params=["fake", "real"])
def crontab(request, bin_dir, tmp_path, monkeypatch):
    if request.param == "fake":
        monkeypatch.setenv("FAKE_CRONTAB_FILE", str(tmp_path / "crontab.txt"))
        write_tool(bin_dir, "crontab", FAKE_CRONTAB)
        yield Crontab("fake", bin_dir)
        return
    reason = can_use_real()
    if reason:
        pytest.skip(reason)
    wrapper = bin_dir / "crontab"
    wrapper.write_text(f'#!/bin/sh\nexec {REAL_CRONTAB} -u {SCRATCH_USER} "$@"\n')
    wrapper.chmod(0o755)
    lock = open("/tmp/autometta-tests-crontab.lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    table = Crontab("real", bin_dir)
    saved = table.read()
    try:
        table.remove()
        yield table
    finally:
        if saved is None:
            table.remove()
            assert table.read() is None
        else:
            table.write(saved)
            assert table.read() == saved, "the scratch crontab was not restored byte for byte"
        lock.close()


@pytest.fixture(scope="session")
def built_pyz(tmp_path_factory) -> Path:
    """A pyz built from this checkout (its build info names this checkout as its source)."""
    sys.path.insert(0, str(ROOT))
    import build_pyz

    out = tmp_path_factory.mktemp("pyz") / "autometta.pyz"
    build_pyz.build(str(out), root=str(ROOT))
    return out


@pytest.fixture
def controller(run, home_dir) -> Path:
    res = run("init-host")
    assert res.code == 0, res.err
    return home_dir

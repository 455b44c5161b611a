"""check-deps and status: is the tick scheduled, and is what runs it current?"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autometta.schedule import invocation as schedule
from tests.testing.schedulers import FAKE_CRONTAB, ROOT, write_tool

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"]



def _git(repo: Path, *args: str) -> str:
    return subprocess.run(GIT + ["-C", str(repo), *args], check=True, stdout=subprocess.PIPE,
                          universal_newlines=True).stdout.strip()


@pytest.fixture
def checkout(tmp_path) -> Path:
    """A small autometta checkout of its own (a frozen copy of this one), committed."""
    dest = tmp_path / "checkout"
    dest.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for tree in ("autometta", "templates", "schemas"):
        shutil.copytree(ROOT / tree, dest / tree, ignore=ignore)
    shutil.copy2(ROOT / "build_pyz.py", dest / "build_pyz.py")
    _git(dest, "init", "-q")
    _git(dest, "add", "-A")
    _git(dest, "commit", "-qm", "snapshot")
    return dest


def _build(checkout: Path) -> Path:
    subprocess.run([sys.executable, str(checkout / "build_pyz.py")], check=True, stdout=subprocess.DEVNULL,
                   cwd=str(checkout))
    return checkout / "dist" / "autometta.pyz"


@pytest.fixture
def fake_cron(bin_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_CRONTAB_FILE", str(tmp_path / "crontab.txt"))
    monkeypatch.setattr(schedule, "platform_name", lambda: "linux")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "user-home"))
    write_tool(bin_dir, "crontab", FAKE_CRONTAB)


def _lines(out: str, name: str):
    return [line for line in out.splitlines() if line.split()[1:2] == [name]]


def test_the_pyz_on_path_is_current_then_older_than_its_checkout(run, checkout, bin_dir, fake_cron, tmp_path):
    pyz = _build(checkout)
    installed = tmp_path / "installed" / "autometta"
    installed.parent.mkdir()
    shutil.copy(pyz, installed)
    (bin_dir / "autometta").symlink_to(installed)
    res = run("check-deps")
    assert res.code == 0, res.out
    built = _git(checkout, "rev-parse", "HEAD")[:12]
    assert _lines(res.out, "autometta-pyz") == [
        f"PASS autometta-pyz {installed} {json.loads(_zip_info(installed))['version']} (commit {built}), "
        f"the checkout's HEAD"]

    _git(checkout, "commit", "-q", "--allow-empty", "-m", "newer")
    head = _git(checkout, "rev-parse", "HEAD")[:12]
    res = run("check-deps")
    assert res.code == 0  # a warning, not a failure
    (line,) = _lines(res.out, "autometta-pyz")
    assert line.startswith(f"WARN autometta-pyz {installed} is older than its checkout: built from {built}, "
                           f"{os.path.realpath(checkout)} is at {head};")
    assert f"python3 {os.path.realpath(checkout)}/build_pyz.py" in line and f"over {installed}" in line

    _git(checkout, "checkout", "-q", "--orphan", "elsewhere")
    _git(checkout, "commit", "-qm", "unrelated")
    (line,) = _lines(run("check-deps").out, "autometta-pyz")
    assert "which is not in the history of" in line


def _zip_info(pyz: Path) -> str:
    import zipfile

    with zipfile.ZipFile(pyz) as archive:
        return archive.read("autometta/_build.json").decode()


def test_a_scheduled_pyz_that_is_gone_is_a_warning_in_check_deps_and_status(
        run, controller, fake_cron, built_pyz, tmp_path):
    doomed = tmp_path / "doomed" / "autometta.pyz"
    doomed.parent.mkdir()
    shutil.copy(built_pyz, doomed)
    assert run("install-cron", "--pyz", str(doomed)).code == 0
    assert any(line.startswith("PASS schedule the autometta block in your crontab")
               for line in run("check-deps").out.splitlines())
    doomed.unlink()
    res = run("check-deps")
    assert res.code == 0
    (line,) = _lines(res.out, "schedule")
    assert line == (f"WARN schedule the autometta block in your crontab (crontab line 2) runs {doomed}, "
                    f"which no longer exists; run 'autometta install-cron' again from the autometta you want")
    status = run("status")
    assert status.code == 0 and line in status.err
    assert line in json.loads(run("status", "--json").out)["schedule_warnings"]


def test_a_systemd_unit_running_a_stale_pyz_is_a_warning(run, controller, fake_cron, checkout, tmp_path):
    pyz = _build(checkout)
    assert run("install-systemd", "--pyz", str(pyz), "--no-start").code == 0
    _git(checkout, "commit", "-q", "--allow-empty", "-m", "newer")
    (line,) = _lines(run("check-deps").out, "schedule")
    assert line.startswith("WARN schedule the systemd user timer ") and "is older than its checkout" in line


def test_nothing_scheduled_is_a_warning(run, controller, fake_cron):
    (line,) = _lines(run("check-deps").out, "schedule")
    assert line.startswith("WARN schedule nothing runs the tick; run 'autometta install-cron'")


def test_a_foreign_cron_line_counts_as_scheduled(run, controller, fake_cron, tmp_path):
    Path(os.environ["FAKE_CRONTAB_FILE"]).write_text("*/5 * * * * autometta tick\n")
    (line,) = _lines(run("check-deps").out, "schedule")
    assert line.startswith("PASS schedule crontab line 1 runs the tick") and "not managed" in line

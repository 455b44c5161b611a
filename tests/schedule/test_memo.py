"""status remembers its schedule warnings (autometta/schedulememo.py) while what they depend on is unchanged."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from autometta import schedulememo
from autometta.schedule import invocation as schedule
from tests.testing.schedulers import FAKE_CRONTAB, calls, write_tool


NOTHING = "WARN schedule nothing runs the tick; run 'autometta install-cron' (or 'autometta install-systemd')"


@pytest.fixture
def fake_cron(bin_dir, tmp_path, monkeypatch) -> Path:
    """The fake crontab on PATH (it logs each call); returns the file it keeps the table in."""
    table = tmp_path / "crontab.txt"
    monkeypatch.setenv("FAKE_CRONTAB_FILE", str(table))
    monkeypatch.setattr(schedule, "platform_name", lambda: "linux")
    write_tool(bin_dir, "crontab", FAKE_CRONTAB)
    return table


def _warnings(run) -> list:
    res = run("status", "--json")
    assert res.code == 0, res.err
    return json.loads(res.out)["schedule_warnings"]


def _crontab_reads(bin_dir: Path) -> int:
    return sum(1 for args in calls(bin_dir, "crontab") if args == ["-l"])


def test_a_second_status_asks_crontab_nothing_and_says_the_same(run, controller, fake_cron, bin_dir):
    first = _warnings(run)
    assert NOTHING in first and _crontab_reads(bin_dir) == 1
    assert _warnings(run) == first
    res = run("status")
    assert res.code == 0 and NOTHING in res.err
    assert _crontab_reads(bin_dir) == 1  # remembered
    memo = Path(schedulememo.memo_path())
    assert memo.parent == Path(os.environ["XDG_CACHE_HOME"]) / "autometta"
    assert memo.stat().st_mode & 0o777 == 0o600


def test_a_scheduled_pyz_removed_is_seen_at_once(run, controller, fake_cron, built_pyz, tmp_path, bin_dir):
    doomed = tmp_path / "doomed" / "autometta.pyz"
    doomed.parent.mkdir()
    shutil.copy(built_pyz, doomed)
    assert run("install-cron", "--pyz", str(doomed)).code == 0
    assert _warnings(run) == []
    reads = _crontab_reads(bin_dir)
    assert _warnings(run) == [] and _crontab_reads(bin_dir) == reads
    doomed.unlink()
    (line,) = _warnings(run)  # the pyz the crontab runs is watched: checked again
    assert line.startswith("WARN schedule the autometta block in your crontab") and "no longer exists" in line
    assert _crontab_reads(bin_dir) == reads + 1


def test_autometta_s_crontab_writes_forget_it_and_check_deps_rewrites_it(run, controller, fake_cron, built_pyz):
    assert NOTHING in _warnings(run)
    assert run("install-cron", "--pyz", str(built_pyz)).code == 0
    assert _warnings(run) == []  # seen at once: install-cron forgot the memo
    fake_cron.write_text("")  # by hand, as 'crontab -e' would: a user cannot stat the spool file
    assert _warnings(run) == []  # not seen yet (within the hour)
    run("check-deps")
    assert NOTHING in _warnings(run)  # check-deps checked afresh and remembered


def test_an_hour_later_it_is_checked_again(run, controller, fake_cron, built_pyz, monkeypatch, bin_dir):
    assert run("install-cron", "--pyz", str(built_pyz)).code == 0
    assert _warnings(run) == []
    fake_cron.write_text("")
    real = schedulememo.time.time
    monkeypatch.setattr(schedulememo.time, "time", lambda: real() + schedulememo.MAX_AGE)
    assert NOTHING in _warnings(run)


@pytest.mark.parametrize("spoil", ["corrupt", "not-json", "others-may-write", "another-path", "future"])
def test_a_memo_not_to_be_trusted_is_checked_again(run, controller, fake_cron, bin_dir, monkeypatch, tmp_path,
                                                   spoil):
    first = _warnings(run)
    memo = Path(schedulememo.memo_path())
    doc = json.loads(memo.read_text())
    lie = dict(doc, warnings=["WARN schedule a lie"])
    if spoil == "corrupt":
        memo.write_bytes(memo.read_bytes()[:40])
    elif spoil == "not-json":
        memo.write_bytes(b"\xff\x00" * 100)
    elif spoil == "others-may-write":
        memo.write_text(json.dumps(lie))
        memo.chmod(0o622)
    elif spoil == "another-path":
        memo.write_text(json.dumps(lie))
        monkeypatch.setenv("PATH", os.environ["PATH"] + os.pathsep + str(tmp_path / "more-bin"))
    elif spoil == "future":
        memo.write_text(json.dumps(dict(lie, checked_at=doc["checked_at"] + 600)))
    assert _warnings(run) == first
    assert _crontab_reads(bin_dir) == 2


def test_an_unwritable_cache_checks_every_time(run, controller, fake_cron, bin_dir, tmp_path, monkeypatch):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    first = _warnings(run)
    assert NOTHING in first and _warnings(run) == first
    assert _crontab_reads(bin_dir) == 2

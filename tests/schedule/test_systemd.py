"""install-systemd / uninstall-systemd: unit files, systemd-analyze verify, systemctl calls."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from autometta.schedule import invocation as schedule
from autometta.schedule import systemd
from tests.testing.schedulers import FAKE_CRONTAB, calls, write_tool

ANALYZE = shutil.which("systemd-analyze")



@pytest.fixture
def units(tmp_path, monkeypatch, bin_dir) -> Path:
    monkeypatch.setattr(schedule, "platform_name", lambda: "linux")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("FAKE_CRONTAB_FILE", str(tmp_path / "crontab.txt"))
    write_tool(bin_dir, "crontab", FAKE_CRONTAB)
    write_tool(bin_dir, "systemctl", "if os.environ.get('FAKE_SYSTEMCTL_FAIL'):\n"
                                     "    sys.stderr.write('Failed to connect to bus: No medium found\\n')\n"
                                     "    sys.exit(1)\n")
    return tmp_path / "xdg" / "systemd" / "user"


def _settings(text: str, key: str):
    return [line.split("=", 1)[1] for line in text.splitlines() if line.startswith(key + "=")]


def test_units_are_written_and_systemctl_enables_the_timer(run, controller, units, bin_dir, built_pyz,
                                                           home_dir):
    res = run("install-systemd", "--pyz", str(built_pyz))
    assert res.code == 0, res.err
    service = (units / "autometta-tick.service").read_text()
    timer = (units / "autometta-tick.timer").read_text()
    argv = systemd.exec_start(service)
    assert argv[1:] == [str(built_pyz), "tick", "--quiet"]
    assert argv[0] == schedule.default_interpreter()
    assert _settings(service, "Type") == ["oneshot"]
    assert _settings(service, "KillMode") == ["process"]
    envs = _settings(service, "Environment")
    assert envs[0].startswith("PATH=") and f"PHAT_CONTROLLER_HOME={home_dir}" in envs
    assert _settings(timer, "OnUnitActiveSec") == ["5min"]
    assert _settings(timer, "Unit") == ["autometta-tick.service"]
    assert _settings(timer, "WantedBy") == ["timers.target"]
    assert calls(bin_dir, "systemctl") == [["--user", "daemon-reload"],
                                          ["--user", "enable", "--now", "autometta-tick.timer"]]
    assert "PASS systemd timer enabled autometta-tick.timer (every 5 min" in res.out

    again = run("install-systemd", "--pyz", str(built_pyz))
    assert again.code == 0 and again.out.count("unchanged") == 2
    assert calls(bin_dir, "systemctl")[2:] == [["--user", "daemon-reload"],
                                              ["--user", "enable", "--now", "autometta-tick.timer"]]
    assert run("install-systemd", "--pyz", str(built_pyz), "--interval", "7").code == 0
    assert _settings((units / "autometta-tick.timer").read_text(), "OnUnitActiveSec") == ["7min"]
    assert calls(bin_dir, "systemctl")[-1] == ["--user", "restart", "autometta-tick.timer"]


def test_units_default_to_home_config_without_xdg(run, controller, units, built_pyz, tmp_path, monkeypatch):
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "me"))
    assert run("install-systemd", "--pyz", str(built_pyz), "--no-start").code == 0
    assert (tmp_path / "me" / ".config" / "systemd" / "user" / "autometta-tick.timer").is_file()


@pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze not installed (Debian: apt-get install systemd)")
def test_units_pass_systemd_analyze_verify_even_with_odd_paths(run, controller, units, built_pyz, tmp_path):
    odd = tmp_path / 'a dir %h $HOME "q"' / "autometta.pyz"
    odd.parent.mkdir()
    shutil.copy(built_pyz, odd)
    res = run("install-systemd", "--pyz", str(odd), "--no-start", "--interval", "3")
    assert res.code == 0, res.err
    service, timer = units / "autometta-tick.service", units / "autometta-tick.timer"
    assert systemd.exec_start(service.read_text())[1] == str(odd)
    proc = subprocess.run([ANALYZE, "verify", str(service), str(timer)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    complaints = [line for line in proc.stderr.splitlines() if "autometta-tick" in line]
    assert complaints == []
    # the checker does catch a broken unit, so silence above means something
    broken = tmp_path / "broken.service"
    broken.write_text(service.read_text().replace("KillMode=process", "KillMode=bogus"))
    proc = subprocess.run([ANALYZE, "verify", str(broken)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=120)
    assert "bogus" in proc.stderr


def test_a_failing_systemctl_is_one_line_naming_the_fix(run, controller, units, built_pyz, monkeypatch):
    monkeypatch.setenv("FAKE_SYSTEMCTL_FAIL", "1")
    res = run("install-systemd", "--pyz", str(built_pyz))
    assert res.code == 1
    assert "systemctl --user daemon-reload failed" in res.err and str(units) in res.err
    assert len([line for line in res.err.splitlines() if not line.startswith("NOTE ")]) == 1
    assert (units / "autometta-tick.timer").is_file()


def test_without_systemctl_the_units_are_written_with_a_note(run, controller, units, built_pyz, bin_dir,
                                                             monkeypatch):
    (bin_dir / "systemctl").unlink()
    monkeypatch.setenv("PATH", str(bin_dir))
    res = run("install-systemd", "--pyz", str(built_pyz))
    assert res.code == 0, res.err
    assert "systemctl not found" in res.err and "enable --now autometta-tick.timer" in res.err
    assert (units / "autometta-tick.service").is_file()


def test_uninstall_disables_and_deletes(run, controller, units, bin_dir, built_pyz):
    assert run("install-systemd", "--pyz", str(built_pyz)).code == 0
    res = run("uninstall-systemd")
    assert res.code == 0, res.err
    assert not list(units.iterdir())
    assert calls(bin_dir, "systemctl")[-2:] == [["--user", "disable", "--now", "autometta-tick.timer"],
                                               ["--user", "daemon-reload"]]
    assert "nothing to remove" in run("uninstall-systemd").out


def test_refuses_when_cron_already_runs_the_tick(run, controller, units, built_pyz):
    assert run("install-cron", "--pyz", str(built_pyz)).code == 0
    res = run("install-systemd", "--pyz", str(built_pyz))
    assert res.code == 1 and "crontab" in res.err and "uninstall-cron" in res.err
    assert not units.exists()


def test_macos_says_linux_only(run, controller, units, built_pyz, monkeypatch):
    monkeypatch.setattr(schedule, "platform_name", lambda: "darwin")
    for command in ("install-systemd", "uninstall-systemd"):
        res = run(command)
        assert res.code == 1 and "Linux-only" in res.err


def test_dry_run_prints_both_units(run, controller, units, built_pyz):
    res = run("install-systemd", "--pyz", str(built_pyz), "--dry-run")
    assert res.code == 0
    assert "[Service]" in res.out and "[Timer]" in res.out and not units.exists()

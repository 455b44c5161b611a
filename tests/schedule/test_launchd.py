"""install-launchagent / uninstall-launchagent: the macOS path, on any system.

The platform check is replaced (``autometta.schedule.invocation.platform_name``), HOME
points at a temp folder (so LaunchAgents live in a temp
``~/Library/LaunchAgents``), and ``launchctl`` is a fake on PATH that
records its argv. The plist is parsed back with plistlib, key by key.
"""

from __future__ import annotations

import os
import plistlib
import stat
from pathlib import Path

import pytest

from autometta import home as home_module
from autometta.schedule import invocation as schedule
from tests.testing.repos import make_repo
from tests.testing.schedulers import FAKE_CRONTAB, calls, write_tool

BASH_LINE = '*/5 * * * * autometta tick >> "$HOME/.phat-controller/log/cron.log" 2>&1\n'
LAUNCHCTL = """\
if os.environ.get("FAKE_LAUNCHCTL_FAIL") and args[:1] == ["bootstrap"]:
    sys.stderr.write("Bootstrap failed: 5: Input/output error\\n")
    sys.exit(5)
sys.exit(0)
"""



@pytest.fixture
def mac(monkeypatch, tmp_path, bin_dir, built_pyz):
    """A pretend Mac: darwin platform, temp HOME, fake launchctl and crontab, this pyz running."""
    monkeypatch.setattr(schedule, "platform_name", lambda: "darwin")
    user_home = tmp_path / "user-home"
    user_home.mkdir(exist_ok=True)
    monkeypatch.setenv("HOME", str(user_home))
    monkeypatch.setenv("FAKE_CRONTAB_FILE", str(tmp_path / "crontab.txt"))
    monkeypatch.setattr(home_module, "install_root", lambda: str(built_pyz))
    write_tool(bin_dir, "launchctl", LAUNCHCTL)
    write_tool(bin_dir, "crontab", FAKE_CRONTAB)
    return user_home / "Library" / "LaunchAgents"


def _repo(tmp_path: Path, run, name: str = "my_repo.x") -> Path:
    repo = make_repo(tmp_path / name)
    return Path(os.path.realpath(repo))


def test_linux_says_macos_only(run, controller, tmp_path, monkeypatch):
    monkeypatch.setattr(schedule, "platform_name", lambda: "linux")
    for command in (("install-launchagent", str(tmp_path)), ("uninstall-launchagent", str(tmp_path))):
        res = run(*command)
        assert res.code == 1 and "macOS-only" in res.err and "install-cron" in res.err


def test_subscribe_on_macos_installs_the_agent_and_the_plist_reads_back(run, controller, mac, bin_dir,
                                                                         built_pyz, tmp_path, home_dir):
    repo = _repo(tmp_path, run)
    res = run("subscribe", str(repo))
    assert res.code == 0, res.err
    label = "com.autometta.tick.my_repo.x"  # '_' is fine in a label (bash refused it, §15.27)
    plist = mac / f"{label}.plist"
    assert f"PASS launchagent label {label}" in res.out and f"PASS launchagent plist {plist}" in res.out
    assert stat.S_IMODE(plist.stat().st_mode) == 0o644
    with open(plist, "rb") as handle:
        doc = plistlib.load(handle)
    assert set(doc) == {"Label", "ProgramArguments", "RunAtLoad", "AbandonProcessGroup", "StartInterval",
                        "WorkingDirectory", "StandardOutPath", "StandardErrorPath", "EnvironmentVariables"}
    assert doc["Label"] == label
    assert doc["ProgramArguments"][0] == schedule.default_interpreter()
    assert doc["ProgramArguments"][1:] == [str(built_pyz), "tick", "--repo", str(repo), "--quiet"]
    assert doc["RunAtLoad"] is True
    assert doc["AbandonProcessGroup"] is True
    assert doc["StartInterval"] == 300
    assert doc["WorkingDirectory"] == str(repo)
    assert doc["StandardOutPath"] == str(repo / "state" / "logs" / "launchagent.out.log")
    assert doc["StandardErrorPath"] == str(repo / "state" / "logs" / "launchagent.err.log")
    env = doc["EnvironmentVariables"]
    assert set(env) == {"PATH", "PHAT_CONTROLLER_HOME"} and env["PHAT_CONTROLLER_HOME"] == str(home_dir)
    assert str(bin_dir) not in env["PATH"].split(":")  # launchctl/crontab folders are not tool folders
    dirs = env["PATH"].split(":")
    assert set(dirs) >= {"/opt/homebrew/bin", "/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"}
    assert dirs[-1] == "/sbin" and len(dirs) == len(set(dirs))
    assert calls(bin_dir, "launchctl") == [["bootstrap", f"gui/{os.getuid()}", str(plist)]]


def test_reinstall_boots_out_first_and_changes_the_interval(run, controller, mac, bin_dir, tmp_path):
    repo = _repo(tmp_path, run)
    assert run("subscribe", str(repo)).code == 0
    res = run("install-launchagent", str(repo), "--interval", "60")
    assert res.code == 0, res.err
    plist = mac / "com.autometta.tick.my_repo.x.plist"
    uid = os.getuid()
    assert calls(bin_dir, "launchctl")[1:] == [
        ["bootout", f"gui/{uid}/com.autometta.tick.my_repo.x"],
        ["bootstrap", f"gui/{uid}", str(plist)],
    ]
    assert plistlib.loads(plist.read_bytes())["StartInterval"] == 60


def test_install_removes_the_managed_cron_tick_and_names_repos_left_without_one(
        run, controller, mac, bin_dir, built_pyz, tmp_path, monkeypatch):
    monkeypatch.setattr(schedule, "platform_name", lambda: "linux")
    other = _repo(tmp_path, run, "other")
    repo = _repo(tmp_path, run)
    assert run("subscribe", str(other)).code == 0 and run("subscribe", str(repo)).code == 0
    assert run("install-cron", "--pyz", str(built_pyz)).code == 0
    table = Path(os.environ["FAKE_CRONTAB_FILE"])
    table.write_text("# mine\n" + BASH_LINE + table.read_text() + "0 1 * * * /bin/true\n")
    monkeypatch.setattr(schedule, "platform_name", lambda: "darwin")
    res = run("install-launchagent", str(repo))
    assert res.code == 0, res.err
    assert "PASS removed the autometta-managed cron tick" in res.out
    assert table.read_text() == "# mine\n0 1 * * * /bin/true\n"
    assert f"cron no longer ticks {other}" in res.err


def test_refuses_when_a_hand_written_cron_line_runs_the_tick(run, controller, mac, tmp_path):
    repo = _repo(tmp_path, run)
    Path(os.environ["FAKE_CRONTAB_FILE"]).write_text("*/5 * * * * /usr/bin/python3 /opt/autometta.pyz tick\n")
    res = run("subscribe", str(repo))
    assert res.code == 0 and "PASS launchagent skipped: cron already runs the tick" in res.out
    res = run("install-launchagent", str(repo))
    assert res.code == 1 and "crontab line 1" in res.err and "crontab -e" in res.err
    assert not (mac / "com.autometta.tick.my_repo.x.plist").exists()


def test_uninstall_boots_out_and_deletes(run, controller, mac, bin_dir, tmp_path):
    repo = _repo(tmp_path, run)
    assert run("subscribe", str(repo)).code == 0
    res = run("uninstall-launchagent", str(repo))
    assert res.code == 0, res.err
    assert res.out.strip() == "PASS launchagent removed com.autometta.tick.my_repo.x"
    assert not (mac / "com.autometta.tick.my_repo.x.plist").exists()
    assert calls(bin_dir, "launchctl")[-1] == ["bootout", f"gui/{os.getuid()}/com.autometta.tick.my_repo.x"]
    assert "nothing to remove" in run("uninstall-launchagent", str(repo)).out


def test_labels_are_sanitised_and_two_repos_with_one_name_get_two_labels(run, controller, mac, tmp_path):
    first = _repo(tmp_path / "a", run, "my app (copy)")
    second = _repo(tmp_path / "b", run, "my app (copy)")
    assert run("subscribe", str(first)).code == 0 and run("subscribe", str(second)).code == 0
    labels = sorted(p.stem for p in mac.glob("*.plist"))
    assert labels[0] == "com.autometta.tick.my-app-copy"
    assert labels[1].startswith("com.autometta.tick.my-app-copy-") and len(labels) == 2
    dirs = {plistlib.loads((mac / f"{label}.plist").read_bytes())["WorkingDirectory"] for label in labels}
    assert dirs == {str(first), str(second)}


def test_a_failed_bootstrap_is_one_clear_line(run, controller, mac, tmp_path, monkeypatch):
    repo = _repo(tmp_path, run)
    monkeypatch.setenv("FAKE_LAUNCHCTL_FAIL", "1")
    res = run("subscribe", str(repo))
    assert res.code == 0 and "WARN launchagent not installed" in res.out  # subscribing still worked
    res = run("install-launchagent", str(repo))
    assert res.code == 1 and "launchctl bootstrap" in res.err and "plutil -lint" in res.err
    assert len([line for line in res.err.splitlines() if not line.startswith("NOTE ")]) == 1


def test_an_unsubscribed_repo_is_refused(run, controller, mac, tmp_path):
    repo = _repo(tmp_path, run)
    res = run("install-launchagent", str(repo))
    assert res.code == 1 and "not subscribed" in res.err and "autometta subscribe" in res.err


def test_dry_run_prints_the_plist(run, controller, mac, bin_dir, tmp_path):
    repo = _repo(tmp_path, run)
    assert run("subscribe", str(repo)).code == 0
    before = calls(bin_dir, "launchctl")
    res = run("install-launchagent", str(repo), "--interval", "90", "--dry-run")
    assert res.code == 0, res.err
    doc = plistlib.loads(res.out.encode())
    assert doc["StartInterval"] == 90
    assert calls(bin_dir, "launchctl") == before
    assert plistlib.loads((mac / "com.autometta.tick.my_repo.x.plist").read_bytes())["StartInterval"] == 300


def test_unsubscribe_on_macos_removes_the_repos_agent(run, controller, mac, bin_dir, built_pyz, tmp_path):
    repo = _repo(tmp_path, run)
    assert run("subscribe", str(repo)).code == 0
    assert list(mac.glob("*.plist"))
    res = run("unsubscribe", str(repo))
    assert res.code == 0 and "launchagent removed" in res.out
    assert list(mac.glob("*.plist")) == []

"""install-cron / uninstall-cron against a real crontab (scratch user) and a fake one."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

import pytest

from autometta.errors import UserError
from autometta.schedule import cron
from autometta.schedule.invocation import default_interpreter, find_pyz, stable_path
from tests.testing.repos import make_repo
from tests.testing.schedulers import write_tool

FOREIGN = (
    b"# my jobs\n"
    b'MAILTO=""\n'
    b"\n"
    b"  \t\n"
    b'0 3 * * *\techo "a\\%b" >/dev/null   \n'
    b"@reboot /bin/true\n"
    b"# last\n"
)
BASH_LINE = b'*/5 * * * * autometta tick >> "$HOME/.phat-controller/log/cron.log" 2>&1\n'



def _block(table: bytes) -> bytes:
    match = re.search(rb"# >>> autometta tick.*?\n(.*?)# <<< autometta tick <<<\n", table, re.S)
    assert match, table
    return match.group(0)


def _line(table: bytes) -> str:
    return _block(table).decode().splitlines()[1]


def test_install_twice_change_interval_uninstall_leaves_other_lines_byte_for_byte(
        run, crontab, controller, built_pyz, home_dir):
    crontab.write(FOREIGN)
    res = run("install-cron", "--pyz", str(built_pyz))
    assert res.code == 0, res.err
    first = crontab.read()
    assert first.startswith(FOREIGN)
    assert first.count(b"# >>> autometta tick") == 1 and first.endswith(b"# <<< autometta tick <<<\n")
    line = _line(first)
    assert line.startswith("*/5 * * * * PATH=")
    argv = cron.parse_command(line)
    assert argv == [default_interpreter(), str(built_pyz), "tick", "--quiet"]
    assert os.path.isabs(argv[0]) and "shims" not in argv[0]
    assert line.endswith(f">> {shlex.quote(str(home_dir / 'log' / 'cron.log'))} 2>&1")
    assert "PASS cron entry installed (every 5 min)" in res.out

    again = run("install-cron", "--pyz", str(built_pyz))
    assert again.code == 0 and "PASS cron entry unchanged" in again.out
    assert crontab.read() == first

    ten = run("install-cron", "--pyz", str(built_pyz), "--interval", "10")
    assert ten.code == 0 and "replaced" in ten.out
    second = crontab.read()
    assert second.startswith(FOREIGN) and _line(second).startswith("*/10 * * * * ")
    assert second.count(b"autometta tick:") == 1

    gone = run("uninstall-cron")
    assert gone.code == 0 and "PASS cron entry removed" in gone.out
    assert crontab.read() == FOREIGN
    assert "nothing to remove" in run("uninstall-cron").out


def test_uninstall_removes_a_crontab_that_held_only_the_block(run, crontab, controller, built_pyz):
    assert crontab.read() is None  # no crontab to begin with
    assert run("install-cron", "--pyz", str(built_pyz)).code == 0
    assert crontab.read() is not None
    dry = run("uninstall-cron", "--dry-run")
    assert dry.code == 0 and "(no crontab: it held only the autometta block)" in dry.out
    gone = run("uninstall-cron")
    assert gone.code == 0 and "PASS cron entry removed (the crontab held nothing else" in gone.out
    assert crontab.read() is None  # none again, not an empty one
    assert "nothing to remove" in run("uninstall-cron").out


def test_block_keeps_its_place_between_other_lines(run, crontab, controller, built_pyz):
    head, tail = b"# head\n1 * * * * /bin/true\n", b"# tail\n2 * * * * /bin/false\n"
    assert run("install-cron", "--pyz", str(built_pyz)).code == 0
    block = _block(crontab.read())
    crontab.write(head + block + tail)
    assert run("install-cron", "--pyz", str(built_pyz), "--interval", "15").code == 0
    now = crontab.read()
    assert now.startswith(head) and now.endswith(tail) and b"*/15 * * * *" in now
    assert run("uninstall-cron").code == 0
    assert crontab.read() == head + tail


def test_a_last_line_without_newline_gets_one(run, crontab, controller, built_pyz):
    crontab.write(b"# no newline at the end")
    assert run("install-cron", "--pyz", str(built_pyz)).code == 0
    assert crontab.read().startswith(b"# no newline at the end\n# >>> autometta tick")
    assert run("uninstall-cron").code == 0
    assert crontab.read() == b"# no newline at the end\n"


def test_refuses_when_the_bash_line_already_runs_the_tick(run, crontab, controller, built_pyz):
    crontab.write(FOREIGN + BASH_LINE)
    res = run("install-cron", "--pyz", str(built_pyz))
    assert res.code == 1
    assert len(res.err.strip().splitlines()) == 1
    assert "crontab line 8 already runs the tick" in res.err and "--replace-existing" in res.err
    assert crontab.read() == FOREIGN + BASH_LINE

    res = run("install-cron", "--pyz", str(built_pyz), "--replace-existing")
    assert res.code == 0, res.err
    assert "PASS cron removed line 8" in res.out
    table = crontab.read()
    assert table.startswith(FOREIGN) and BASH_LINE not in table and b"# >>> autometta tick" in table


def test_uninstall_leaves_a_line_it_did_not_write(run, crontab, controller):
    mine = b"*/10 * * * * /usr/bin/python3 /opt/tools/autometta.pyz tick\n"
    crontab.write(FOREIGN + mine)
    res = run("uninstall-cron")
    assert res.code == 0
    assert "nothing to remove" in res.out
    assert "crontab line 8 also runs the tick" in res.err and "left alone" in res.err
    assert crontab.read() == FOREIGN + mine


def test_dry_run_prints_the_new_crontab_and_changes_nothing(run, crontab, controller, built_pyz):
    crontab.write(FOREIGN)
    res = run("install-cron", "--pyz", str(built_pyz), "--dry-run")
    assert res.code == 0, res.err
    assert res.out.encode().startswith(FOREIGN) and "# >>> autometta tick" in res.out
    assert crontab.read() == FOREIGN
    assert run("uninstall-cron", "--dry-run").out.encode() == FOREIGN.rstrip(b"\n") + b"\n"


def test_the_installed_line_runs_the_tick_as_cron_would(run, crontab, built_pyz, tmp_path, monkeypatch):
    """Spaces and % in the paths survive crontab quoting; cron's bare environment is enough."""
    odd_home = tmp_path / "odd home %d"
    monkeypatch.setenv("PHAT_CONTROLLER_HOME", str(odd_home))
    assert run("init-host").code == 0
    repo = make_repo(tmp_path / "a repo")
    assert run("subscribe", str(repo)).code == 0
    assert run("install-cron", "--pyz", str(built_pyz)).code == 0
    line = _line(crontab.read())
    command = line.split(None, 5)[5]
    assert "%" not in command.replace("\\%", "")  # every % escaped, or cron would cut the line there
    command = command.replace("\\%", "%")
    proc = subprocess.run(["/bin/sh", "-c", command], cwd="/",
                          env={"HOME": str(tmp_path), "LOGNAME": "tester", "SHELL": "/bin/sh",
                               "PATH": "/usr/bin:/bin"},
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (odd_home / "log" / "cron.log").is_file()
    assert list((odd_home / "log").glob("tick-*.log")), "the scheduled tick did not run"
    assert f"PHAT_CONTROLLER_HOME={shlex.quote(str(odd_home))}".replace("%", "\\%") in line


@pytest.mark.parametrize("interval,spec", [
    ("1", "* * * * *"), ("5", "*/5 * * * *"), ("30", "*/30 * * * *"),
    ("60", "0 * * * *"), ("120", "0 */2 * * *"), ("1440", "0 0 * * *"),
])
def test_interval_becomes_cron_fields(interval, spec):
    assert cron.spec_for(int(interval)) == spec


@pytest.mark.parametrize("interval", ["7", "0", "-5", "90", "x"])
def test_uneven_or_bad_intervals_are_usage_errors(run, crontab, controller, built_pyz, interval):
    res = run("install-cron", "--pyz", str(built_pyz), "--interval", interval)
    assert res.code == 2
    assert crontab.read() is None


@pytest.mark.parametrize("line,runs_tick", [
    ('*/5 * * * * autometta tick >> "$HOME/.phat-controller/log/cron.log" 2>&1', True),
    ("*/5 * * * * /usr/local/bin/autometta tick", True),
    ("*/5 * * * * python3 /home/me/bin/autometta.pyz tick --quiet", True),
    ("*/5 * * * * '/usr/bin/python3' '/x y/autometta.pyz' tick", True),
    ("*/5 * * * * cd /x && python3 -m autometta tick", True),
    ("*/5 * * * * autometta --debug tick", True),
    ("*/5 * * * * /opt/autometta/scripts/tick.sh", True),
    ("*/5 * * * * autometta status", False),
    ("*/5 * * * * autometta ticker --once", False),
    ("# */5 * * * * autometta tick", False),
    ("AUTOMETTA=autometta tick", False),
    ("0 1 * * * /usr/bin/backup --tick", False),
])
def test_recognises_lines_that_run_the_tick(line, runs_tick):
    assert bool(cron.foreign_tick_lines(cron.parse_table(line + "\n"))) is runs_tick


def test_unbalanced_markers_are_one_clear_error(run, crontab, controller, built_pyz):
    crontab.write(FOREIGN + cron.BEGIN.encode() + b"\n* * * * * /bin/true\n")
    res = run("install-cron", "--pyz", str(built_pyz))
    assert res.code == 1 and "unbalanced" in res.err and "crontab -e" in res.err


def test_without_crontab_says_what_to_install(run, controller, built_pyz, tmp_path, monkeypatch):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    res = run("install-cron", "--pyz", str(built_pyz))
    assert res.code == 1 and "crontab not found" in res.err and "install-systemd" in res.err


def test_needs_the_controller_home(run, crontab, built_pyz):
    res = run("install-cron", "--pyz", str(built_pyz))
    assert res.code == 1 and "init-host" in res.err


def test_refuses_when_a_systemd_timer_runs_the_tick(run, crontab, controller, built_pyz, tmp_path,
                                                    monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    units = tmp_path / "cfg" / "systemd" / "user"
    units.mkdir(parents=True)
    (units / "autometta-tick.timer").write_text("[Timer]\n")
    res = run("install-cron", "--pyz", str(built_pyz))
    assert res.code == 1 and "systemd user timer" in res.err and "uninstall-systemd" in res.err
    assert crontab.read() is None


# ------------------------------------------------------------------ which interpreter, which pyz


def test_shim_interpreters_are_refused(run, crontab, controller, built_pyz, tmp_path):
    shim = tmp_path / ".pyenv" / "shims" / "python3"
    shim.parent.mkdir(parents=True)
    shim.write_text('#!/usr/bin/env bash\nexec pyenv exec python3 "$@"\n')
    shim.chmod(0o755)
    res = run("install-cron", "--pyz", str(built_pyz), "--python", str(shim))
    assert res.code == 1 and "shim" in res.err and "pyenv which python3" in res.err
    wrapper = tmp_path / "mypython"
    wrapper.write_text('#!/bin/sh\nexec /usr/bin/python3 "$@"\n')
    wrapper.chmod(0o755)
    assert "shim" in run("install-cron", "--pyz", str(built_pyz), "--python", str(wrapper)).err
    assert crontab.read() is None


def test_explicit_interpreter_is_used_as_given(run, crontab, controller, built_pyz):
    real = os.path.realpath(sys.executable)
    assert run("install-cron", "--pyz", str(built_pyz), "--python", real).code == 0
    assert cron.parse_command(_line(crontab.read()))[0] == real


def test_a_venv_python_is_traced_back_to_its_base_interpreter(tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    base = os.path.realpath(sys.executable)
    (venv / "bin" / "python3").symlink_to(base)
    (venv / "bin" / "python").symlink_to("python3")
    got = default_interpreter(str(venv / "bin" / "python"), prefix=str(venv), base_prefix="/usr",
                              system_pythons=[])
    assert got == base


def test_a_version_managers_interpreter_gives_way_to_the_systems(tmp_path):
    managed = tmp_path / ".pyenv" / "versions" / "3.11.7" / "bin" / "python3"
    managed.parent.mkdir(parents=True)
    managed.write_bytes(b"\x7fELF not really")
    system = tmp_path / "usr-bin" / "python3"
    system.parent.mkdir()
    system.symlink_to(os.path.realpath(sys.executable))
    notes = []
    got = default_interpreter(str(managed), prefix="/p", base_prefix="/p", notes=notes,
                              system_pythons=[str(tmp_path / "missing"), str(system)])
    assert got == str(system) and "belongs to a version manager" in notes[0]
    notes = []
    got = default_interpreter(str(managed), prefix="/p", base_prefix="/p", notes=notes, system_pythons=[])
    assert got == str(managed) and "no system python3" in notes[0]


def test_a_shim_executable_resolves_or_is_refused(tmp_path):
    shims = tmp_path / "shims"
    shims.mkdir()
    (shims / "python3").write_text("#!/bin/sh\n")
    with pytest.raises(UserError, match="shim"):
        default_interpreter(str(shims / "python3"), prefix="/p", base_prefix="/p")


def test_homebrew_cellar_paths_become_opt_paths(tmp_path):
    cellar = tmp_path / "Cellar" / "python@3.12" / "3.12.1" / "bin" / "python3"
    opt = tmp_path / "opt" / "python@3.12" / "bin" / "python3"
    for p in (cellar, opt):
        p.parent.mkdir(parents=True)
        p.write_bytes(b"\x7fELF")
    assert stable_path(str(cellar)) == str(opt)
    assert stable_path("/usr/bin/python3") == "/usr/bin/python3"


def test_a_checkout_schedules_its_built_pyz_or_says_how_to_build_it(tmp_path, built_pyz):
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / "build_pyz.py").write_text("# builder\n")
    with pytest.raises(UserError, match=r"dist/autometta.pyz: not built.*build_pyz.py"):
        find_pyz(root=str(checkout))
    (checkout / "dist").mkdir()
    (checkout / "dist" / "autometta.pyz").write_bytes(built_pyz.read_bytes())
    pyz, notes = find_pyz(root=str(checkout))
    assert pyz == str(checkout / "dist" / "autometta.pyz")
    assert "running from the checkout" in notes[0]


def test_a_file_that_is_not_a_pyz_is_refused(run, crontab, controller, tmp_path):
    fake = tmp_path / "autometta.pyz"
    fake.write_text("not a zip")
    res = run("install-cron", "--pyz", str(fake))
    assert res.code == 1 and "not an autometta pyz" in res.err


def test_path_names_the_folders_where_the_tools_were_found(run, crontab, controller, built_pyz, bin_dir):
    for tool in ("claude", "codex", "tmux", "op"):
        write_tool(bin_dir, tool)
    assert run("install-cron", "--pyz", str(built_pyz)).code == 0
    line = _line(crontab.read())
    path_value = shlex.split(line.split(None, 5)[5])[0].split("=", 1)[1]
    dirs = path_value.split(":")
    assert dirs[0] == str(bin_dir) or str(bin_dir) in dirs
    assert os.path.dirname(subprocess.check_output(["sh", "-c", "command -v git"], text=True).strip()) in dirs
    assert dirs[-3:] == ["/bin", "/usr/sbin", "/sbin"]
    assert len(dirs) == len(set(dirs))

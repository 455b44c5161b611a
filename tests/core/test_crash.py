"""One error handler (autometta/crash.py): a user error is one line, a bug is one line and a crash log.

What a user sees: the line on stderr, the exit code, the crash log's contents
and where it is; inside the tick, the tick log's line and the other repos
going on. The bugs are real exceptions in real processes: a command whose
``run`` raises, and the ``bug`` fault (``AUTOMETTA_FAULT``) raising a KeyError
where the tick writes a repo's state.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from autometta import crash, faults, yamlsub
from autometta.errors import UNEXPECTED_EXIT, UserError
from autometta.paths import RepoPaths
from autometta.version import describe
from tests.testing.env import ROOT
from tests.testing.repos import make_repo
from tests.testing.tick_processes import await_all_runners, tick_process
from tests.testing.ticks import await_agents, commit_all, read_state, script_card, tick_once

LINE = re.compile(r"^autometta (\S+): unexpected error \((.+)\); details in (\S+/crash-\d{8}T\d{6}Z(?:-\d+)?\.log)$")


def _buggy(command: str, raised: str, *args: str, env: dict = None) -> subprocess.CompletedProcess:
    """``autometta <command> <args>`` in a process of its own, the command's ``run`` raising ``raised``."""
    code = (f"import sys, autometta.commands.{command} as m\n"
            f"def run(args):\n    raise {raised}\n"
            "m.run = run\n"
            "from autometta.cli import main\n"
            f"sys.exit(main([{command!r}, *sys.argv[1:]]))\n")
    return subprocess.run([sys.executable, "-c", code, *args], cwd=str(ROOT), capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}, timeout=60)


def _crash_logs(folder: Path) -> list:
    return sorted(folder.glob("crash-*.log")) if folder.is_dir() else []


def test_a_bug_is_one_line_exit_3_and_a_crash_log_with_traceback_version_platform(home_dir):
    res = _buggy("status", "KeyError('x')")
    assert res.returncode == UNEXPECTED_EXIT == 3
    assert len(res.stderr.splitlines()) == 1 and "Traceback" not in res.stderr, res.stderr
    said = LINE.match(res.stderr.strip())
    assert said and said.group(1) == "status" and said.group(2) == "KeyError: 'x'", res.stderr
    log = Path(said.group(3))
    assert log.parent == home_dir / "log" and _crash_logs(home_dir / "log") == [log]
    assert log.stat().st_mode & 0o777 == 0o600
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "KeyError: 'x'" in text
    assert 'File "<string>", line 3, in run' in text  # where it was raised: the command's run
    assert f"autometta: {describe()}" in text
    assert f"python: {sys.version.splitlines()[0]}" in text
    import platform

    assert f"platform: {platform.platform()}" in text
    assert "command: autometta status" in text


def test_a_user_error_stays_one_line_and_writes_no_crash_log(home_dir):
    res = _buggy("status", "__import__('autometta.errors').errors.UserError('card.md: no title; add one')")
    assert (res.returncode, res.stderr) == (1, "autometta status: card.md: no title; add one\n")
    usage = _buggy("status", "__import__('autometta.errors').errors.UsageError('--repo: no such repo')")
    assert (usage.returncode, usage.stderr) == (2, "autometta status: --repo: no such repo\n")
    assert _crash_logs(home_dir / "log") == []


def test_debug_shows_the_traceback_too(home_dir):
    res = _buggy("status", "KeyError('x')", env={"AUTOMETTA_DEBUG": "1"})
    assert res.returncode == 3
    assert res.stderr.startswith("Traceback (most recent call last)")
    assert LINE.match(res.stderr.splitlines()[-1]) and len(_crash_logs(home_dir / "log")) == 1


def test_a_secret_in_the_exception_is_masked_in_the_line_and_the_log(home_dir):
    key = "sk-ant-api03-" + "A" * 40
    res = _buggy("status", f"ValueError('bad token {key}')")
    assert res.returncode == 3 and key not in res.stderr and "bad token" in res.stderr
    [log] = _crash_logs(home_dir / "log")
    assert key not in log.read_text() and "bad token" in log.read_text()


def test_a_home_that_cannot_take_the_log_sends_it_to_the_temporary_folder(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("")
    temp = tmp_path / "tmp"
    temp.mkdir()
    res = _buggy("status", "KeyError('x')", env={"PHAT_CONTROLLER_HOME": str(blocked / "home"), "TMPDIR": str(temp)})
    said = LINE.match(res.stderr.strip())
    assert res.returncode == 3 and said and Path(said.group(3)).parent == temp, res.stderr
    assert "KeyError: 'x'" in Path(said.group(3)).read_text()


def test_a_long_or_many_line_message_stays_one_short_line(home_dir):
    res = _buggy("status", "RuntimeError('first\\nsecond ' + 'x' * 1000)")
    assert res.returncode == 3 and len(res.stderr.splitlines()) == 1
    said = LINE.match(res.stderr.strip())
    assert said and said.group(2).startswith("RuntimeError: first second xxx") and said.group(2).endswith("...")
    assert len(said.group(2)) == len("RuntimeError: ") + crash.SHOWN
    assert "x" * 1000 in Path(said.group(3)).read_text()


def test_two_crashes_in_one_second_keep_both_logs(home_dir):
    from autometta.paths import HomePaths

    first = crash.write(KeyError("a"), HomePaths(home_dir))
    second = crash.write(KeyError("b"), HomePaths(home_dir))
    assert first != second and "KeyError: 'a'" in first.read_text() and "KeyError: 'b'" in second.read_text()


def test_in_the_tick_a_repos_bug_is_logged_with_its_crash_file_and_the_other_repos_go_on(setup, run, tmp_path):
    repo, home, add = setup
    other = make_repo(tmp_path / "other")
    assert run("subscribe", str(other)).code == 0
    commit_all(other, "subscribe")
    add("01-a")
    card = script_card(other, "01-b")
    commit_all(other, "card")
    assert run("add-stage", str(other), str(card)).code == 0

    # the first state.yaml the tick writes (the first repo's, as it starts its worker) raises a KeyError
    result = tick_process(fault="atomic_write.before@state.yaml:1:bug")
    for r in (repo, other):
        await_all_runners(r)
    assert result.returncode == 1, result.stderr  # as for any repo's error: the tick did not crash
    statuses = {r: read_state(r)["stages"][0]["status"] for r in (repo, other)}
    [crashed] = [r for r, s in statuses.items() if s == "pending"]
    [went_on] = [r for r, s in statuses.items() if s != "pending"]
    assert statuses[went_on] in ("in_progress", "verifying", "completed")
    tick_log = "".join(p.read_text() for p in (home / "log").glob("tick-*.log"))
    said = re.search(rf"error in {re.escape(str(crashed))}: unexpected error \(KeyError: 'fault "
                     r"atomic_write.before@state.yaml'\); details in (\S+)$", tick_log, re.M)
    assert said, tick_log
    log = Path(said.group(1))
    assert log.parent == home / "log" and _crash_logs(home / "log") == [log]
    text = log.read_text()
    assert f"while: the tick's visit to {crashed}" in text and "Traceback (most recent call last)" in text
    assert "faults.py" in text and "'tick'" in text  # the process's argv
    assert "Traceback" not in result.stderr


def test_a_bug_in_an_agents_runner_leaves_its_crash_log_in_the_controller_home(setup, run, monkeypatch):
    """The tick's worker, under a runner that meets a bug once it started the agent: the home the tick knows
    (not the agent's environment, which names none) takes the crash log, and the run's record names it."""
    repo, home, add = setup
    manifest = RepoPaths(repo).manifest
    doc = yamlsub.loads(manifest.read_text())
    doc["env"] = {"pass": [faults.ENV]}  # the runner's environment is the worker's
    manifest.write_text(yamlsub.dumps(doc))
    monkeypatch.setenv(faults.ENV, "runner.started@01-a-worker.exit.json:bug")
    add("01-a", "exec sleep 60")
    tick_once(home)
    await_agents(repo)  # not a minute: the runner stopped the worker
    shown = json.loads(run("show", str(repo), "01-a", "--json").out)
    [worker] = [a for a in shown["agents"] if a["role"] == "worker"]
    said = re.match(r"^runner failed: KeyError\('fault runner.started@01-a-worker.exit.json'\); details in (\S+)$",
                    worker["error"])
    assert said, worker
    log = Path(said.group(1))
    assert log.parent == home / "log" and _crash_logs(home / "log") == [log]
    text = log.read_text()
    assert "while: the runner supervising" in text and "Traceback (most recent call last)" in text
    assert f"autometta: {describe()}" in text
    worker_log = RepoPaths(repo).log("01-a", "worker").read_text()
    assert f"autometta-runner: {worker['error']}; stopping the agent" in worker_log
    assert f"details in {log}" in run("show", str(repo), "01-a").out


def test_the_bug_fault_fires_once_at_its_hit(monkeypatch):
    monkeypatch.setenv(faults.ENV, "x.y:2:bug")
    faults._hits.clear()
    faults.point("x.y")
    try:
        faults.point("x.y")
    except KeyError as exc:
        assert exc.args == ("fault x.y",)
    else:
        raise AssertionError("the second hit did not raise")
    faults.point("x.y")
    faults._hits.clear()


def test_markers_are_declared_fields_of_the_errors():
    from autometta import auth, scan, verdicts
    from autometta.books import digests
    from autometta.git import gitops
    from autometta.agents import privilege, sandbox

    assert UserError("x").marker is None and UserError("x", marker="m").marker == "m"
    assert gitops.NotOnBranch("/r", detached=True).marker == gitops.DETACHED_HEAD
    assert gitops.NotOnBranch("/r", detached=False).marker == gitops.UNBORN_BRANCH
    for cls in (auth.RouteError, digests.StateTampered, privilege.ModeError, sandbox.SandboxError, scan.SecretInDiff,
                verdicts.Forged):
        assert isinstance(cls.marker, str) and cls.marker, cls

"""launch + runner with real processes: exit records, budgets, signals, survival, env, the pyz.

The runner is our child while the launching test process lives, so most tests
wait on its exit (a pidfd where the platform has one). Only processes that
are not ours (a grandchild, a runner whose launcher has exited) are waited
for by polling the process table or a file, with a bound.
"""

from __future__ import annotations

import json
import hashlib
import os
import pty
import re
import select
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from autometta.agents import spawn as launch_mod  # noqa: E402
from autometta.agents import liveness, processes, runner  # noqa: E402
from autometta.errors import UserError  # noqa: E402
from autometta.agents.spawn import CORRUPT, Launched, LaunchSpec, launch, read_exit  # noqa: E402
from tests.testing.waits import wait_child, wait_for  # noqa: E402

LINUX_PROC = os.path.exists(f"/proc/{os.getpid()}/stat")
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
KEYS = {"pid", "runner_pid", "exit_code", "signal", "started_at", "ended_at", "seconds", "timed_out", "error",
        "run_id", "log_sha256", "log_forged"}
#: an agent with a grandchild, which tells us the grandchild's pid through gc.pid
WITH_GRANDCHILD = "sleep 30 & echo $! > gc.tmp; mv gc.tmp gc.pid; wait"


def base_env(tmp_path: Path) -> Dict[str, str]:
    return {"PATH": os.environ.get("PATH", os.defpath), "HOME": str(tmp_path)}


def make_spec(tmp_path: Path, argv: List[str], *, env: Optional[Dict[str, str]] = None,
              budget: Optional[int] = None) -> LaunchSpec:
    return LaunchSpec(argv=argv, cwd=tmp_path, env=base_env(tmp_path) if env is None else env,
                      log_path=tmp_path / "agent.log", exit_path=tmp_path / "agent.exit.json",
                      budget_seconds=budget)


def run_agent(tmp_path: Path, argv: List[str], **kwargs) -> Tuple[Launched, dict, str]:
    """Launch, wait for the runner to exit, return (launched, exit record, log text)."""
    spec = make_spec(tmp_path, argv, **kwargs)
    launched = launch(spec)
    wait_child(launched.pid)
    log = spec.log_path.read_text() if spec.log_path.exists() else ""  # an agent may remove it
    record = read_exit(spec.exit_path)
    assert record is not None, f"no exit record; log:\n{log}"
    assert set(record) == KEYS
    return launched, record, log


def grandchild_pid(tmp_path: Path) -> int:
    wait_for(lambda: (tmp_path / "gc.pid").exists())
    return int((tmp_path / "gc.pid").read_text())


@pytest.fixture(autouse=True)
def _no_stray_groups():
    """Whatever a test launched is gone afterwards, even when it fails."""
    before = set(launch_mod._CHILDREN)
    yield
    for proc in set(launch_mod._CHILDREN) - before:
        liveness.signal_group(proc.pid, signal.SIGKILL)


# --------------------------------------------------------------------------- the record


def test_exit_code_log_and_run_time_are_recorded(tmp_path):
    before = time.time()
    launched, record, log = run_agent(tmp_path, ["sh", "-c", "echo hi; echo oops >&2; exit 3"])
    assert record["exit_code"] == 3
    assert record["signal"] is None
    assert record["timed_out"] is False
    assert record["error"] is None
    assert log == "hi\noops\n"
    assert 0 <= record["seconds"] < 10
    assert record["runner_pid"] == launched.pid == launched.pgid
    assert record["run_id"] == launched.run_id and len(launched.run_id) == 24  # the run's mark, unguessable
    assert isinstance(record["pid"], int) and record["pid"] != launched.pid
    assert ISO.match(record["started_at"]) and ISO.match(record["ended_at"])
    assert ISO.match(launched.started_at)
    assert before - liveness.START_TOLERANCE <= launched.started <= time.time() + liveness.START_TOLERANCE
    assert stat.S_IMODE(os.stat(tmp_path / "agent.log").st_mode) == 0o600
    assert not liveness.is_alive(launched.pid, launched.started)
    assert record["log_forged"] is None  # the log is what the runner wrote, and its digest says so
    assert record["log_sha256"] == hashlib.sha256(b"hi\noops\n").hexdigest()


FORGED_RESULT = '{"type":"result","total_cost_usd":0.0001,"usage":{"input_tokens":1,"output_tokens":1}}'


@pytest.mark.parametrize("how, why", [
    ("printf '%s\\n' '{line}' >> '{log}'", "something other than its runner wrote into its log"),
    ("rm '{log}'; printf '%s\\n' '{line}' > '{log}'", "its log was replaced by another file"),
    ("rm '{log}'; ln -s /dev/null '{log}'", "its log is gone or was replaced by something that is not a file"),
    ("rm '{log}'", "its log is gone or was replaced by something that is not a file"),
])
def test_an_agent_that_writes_its_own_log_is_found_out(tmp_path, how, why):
    """An agent (its shell tool) writes a usage line of its choosing into its log, or swaps the log: the
    record says so, and carries no digest for a reader to trust."""
    script = "echo working; " + how.format(log=tmp_path / "agent.log", line=FORGED_RESULT) + "; echo done"
    _, record, _ = run_agent(tmp_path, ["sh", "-c", script])
    assert record["exit_code"] == 0
    assert record["log_forged"] == why
    assert record["log_sha256"] is None


def test_the_log_is_truncated_and_made_private(tmp_path):
    log = tmp_path / "agent.log"
    log.write_text("an old run's log\n" * 100)
    log.chmod(0o644)
    _launched, record, text = run_agent(tmp_path, ["sh", "-c", "echo new"])
    assert record["exit_code"] == 0
    assert text == "new\n"
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


def test_a_stale_exit_record_is_removed_before_the_run(tmp_path):
    gate = tmp_path / "gate.fifo"
    os.mkfifo(gate)
    spec = make_spec(tmp_path, ["sh", "-c", "read line < gate.fifo; exit 5"])
    spec.exit_path.write_text(json.dumps({"exit_code": 0, "note": "from last week"}))
    launched = launch(spec)
    assert read_exit(spec.exit_path) is None  # the agent is blocked on the gate: no record yet
    with open(gate, "w") as handle:  # blocks until the agent opens its end
        handle.write("go\n")
    wait_child(launched.pid)
    assert read_exit(spec.exit_path)["exit_code"] == 5


def test_a_missing_command_is_exit_127_with_the_reason(tmp_path):
    _launched, record, log = run_agent(tmp_path, ["no-such-agent-cli", "-p", "hello"])
    assert record["exit_code"] == 127
    assert record["pid"] is None
    assert record["error"].startswith("could not start: no-such-agent-cli")
    assert record["error"] in log


def test_a_command_that_cannot_run_is_exit_126(tmp_path):
    script = tmp_path / "agent.sh"
    script.write_text("#!/bin/sh\necho never\n")
    script.chmod(0o644)
    _launched, record, log = run_agent(tmp_path, [str(script)])
    assert record["exit_code"] == 126
    assert record["error"].startswith("could not start:")
    assert "never" not in log


def test_stdin_is_dev_null(tmp_path):
    """``cat`` would wait forever on an open stdin; on /dev/null it ends at once."""
    _launched, record, log = run_agent(tmp_path, ["cat"])
    assert record["exit_code"] == 0
    assert log == ""
    if LINUX_PROC:
        _launched, record, log = run_agent(tmp_path, ["sh", "-c", "readlink /proc/self/fd/0"])
        assert log == "/dev/null\n"


# --------------------------------------------------------------------------- stopping


def test_the_budget_stops_the_agent_and_its_children(tmp_path):
    launched, record, log = run_agent(tmp_path, ["sh", "-c", WITH_GRANDCHILD], budget=1)
    grandchild = int((tmp_path / "gc.pid").read_text())
    assert record["timed_out"] is True
    assert record["signal"] == signal.SIGTERM
    assert record["exit_code"] is None
    assert 1.4 <= record["seconds"] < 10
    assert "autometta-runner: budget 1s x 1.5 exceeded" in log
    assert not liveness.is_alive(grandchild)
    assert not liveness.group_alive(launched.pgid)


RUNNER_GRACE_SCRIPT = "trap '' TERM; " + WITH_GRANDCHILD  # the agent and its child ignore SIGTERM


def test_the_budget_escalates_to_sigkill_and_the_runner_survives(tmp_path):
    exit_path = tmp_path / "exit.json"
    proc = subprocess.Popen(
        [sys.executable, "-I", "-c", launch_mod.BOOTSTRAP, launch_mod.import_root(),
         "--exit-file", str(exit_path), "--log", str(tmp_path / "agent.log"),
         "--budget-seconds", "0.5", "--kill-grace", "0.5", "--", "sh", "-c", RUNNER_GRACE_SCRIPT],
        cwd=str(tmp_path), stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        assert proc.wait(timeout=30) == 128 + signal.SIGKILL
    finally:
        liveness.signal_group(proc.pid, signal.SIGKILL)
    record = read_exit(exit_path)
    assert record["timed_out"] is True
    assert record["signal"] == signal.SIGKILL
    assert record["seconds"] >= 1.0
    assert "sending SIGKILL" in (tmp_path / "agent.log").read_text()
    assert not liveness.is_alive(int((tmp_path / "gc.pid").read_text()))
    assert not liveness.group_alive(proc.pid)


def test_the_tick_stops_runner_agent_and_grandchild_with_one_signal(tmp_path):
    spec = make_spec(tmp_path, ["sh", "-c", WITH_GRANDCHILD])
    launched = launch(spec)
    grandchild = grandchild_pid(tmp_path)
    assert os.getsid(launched.pid) == launched.pid  # its own session: the tick's exit cannot touch it
    assert os.getpgid(grandchild) == launched.pgid
    assert liveness.is_alive(launched.pid, launched.started)
    assert liveness.group_alive(launched.pgid)
    assert liveness.signal_group(launched.pgid, signal.SIGTERM)
    wait_child(launched.pid)
    record = read_exit(spec.exit_path)
    assert record["signal"] == signal.SIGTERM
    assert record["exit_code"] is None
    assert record["timed_out"] is False
    assert not liveness.is_alive(grandchild)
    assert not liveness.group_alive(launched.pgid)


def test_a_signal_to_the_runner_alone_is_passed_on_and_recorded(tmp_path):
    """The agent handles SIGTERM and exits 7; what it left running is stopped before the record."""
    spec = make_spec(tmp_path, ["sh", "-c", "trap 'exit 7' TERM; " + WITH_GRANDCHILD])
    launched = launch(spec)
    grandchild = grandchild_pid(tmp_path)
    os.kill(launched.pid, signal.SIGTERM)
    wait_child(launched.pid)
    record = read_exit(spec.exit_path)
    assert record["exit_code"] == 7
    assert record["signal"] == signal.SIGTERM
    log = spec.log_path.read_text() if spec.log_path.exists() else ""  # an agent may remove it
    assert "received SIGTERM" in log
    assert f"left running: {grandchild}" in log
    assert not liveness.is_alive(grandchild)
    assert not liveness.group_alive(launched.pgid)


# --------------------------------------------------------------------------- detached


SURVIVOR_PARENT = textwrap.dedent("""\
    import json, os, sys
    sys.path.insert(0, sys.argv[1])
    from pathlib import Path
    from autometta.agents.spawn import LaunchSpec, launch
    tmp = Path(sys.argv[2])
    spec = LaunchSpec(argv=["sh", "-c", "read line < gate.fifo; echo late > out.txt"], cwd=tmp,
                      env={"PATH": sys.argv[3]}, log_path=tmp / "agent.log", exit_path=tmp / "agent.exit.json")
    launched = launch(spec)
    print("LAUNCHED " + json.dumps(launched.__dict__), flush=True)
    sys.stdin.readline()  # the terminal: the test hangs it up
""")


def _read_line(fd: int, marker: bytes, timeout: float = 20.0) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while marker not in data or not data.split(marker, 1)[1].rstrip(b"\r").endswith(b"\n"):
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        assert ready, f"no {marker!r} line; got {data!r}"
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            chunk = b""
        assert chunk, f"terminal closed; got {data!r}"
        data += chunk
    return data.split(marker, 1)[1].splitlines()[0]


def test_the_agent_outlives_its_launcher_and_the_launchers_terminal_hangup(tmp_path):
    gate = tmp_path / "gate.fifo"
    os.mkfifo(gate)
    parent, terminal = pty.fork()
    if parent == 0:  # the launcher: a session leader with a controlling terminal
        try:
            os.execv(sys.executable, [sys.executable, "-I", "-c", SURVIVOR_PARENT, str(ROOT), str(tmp_path),
                                      os.environ.get("PATH", os.defpath)])
        finally:
            os._exit(127)
    try:
        launched = Launched(**json.loads(_read_line(terminal, b"LAUNCHED ")))
    finally:
        os.close(terminal)  # hang up the launcher's terminal
    status = wait_child(parent)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGHUP
    # the launcher is gone and its session hung up; the runner and the agent still run
    assert liveness.is_alive(launched.pid, launched.started)
    assert liveness.group_alive(launched.pgid)

    def open_gate() -> bool:
        try:
            fd = os.open(gate, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # ENXIO: the agent has not opened its end yet
            return False
        os.write(fd, b"go\n")
        os.close(fd)
        return True

    try:
        wait_for(open_gate)
        # not our child any more: the exit record is the only thing to wait on
        wait_for(lambda: read_exit(tmp_path / "agent.exit.json") is not None, timeout=20)
    finally:
        liveness.signal_group(launched.pgid, signal.SIGKILL)
    record = read_exit(tmp_path / "agent.exit.json")
    assert record["exit_code"] == 0
    assert record["runner_pid"] == launched.pid
    assert (tmp_path / "out.txt").read_text() == "late\n"


@pytest.mark.parametrize("extra", [{}, {"LC_CTYPE": "C"}, {"LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}],
                         ids=["no-locale", "c-locale", "utf8-locale"])
def test_the_agent_sees_exactly_the_given_environment(tmp_path, monkeypatch, extra):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("AUTOMETTA_LEAK", "from the tick")
    env = {**base_env(tmp_path), "AUTOMETTA_PROBE": "a b=c", **extra}
    launched, record, log = run_agent(tmp_path, ["env"], env=env)
    assert record["exit_code"] == 0
    seen = dict(line.split("=", 1) for line in log.splitlines())
    assert seen.pop("AUTOMETTA_RUN_ID") == launched.run_id  # the run's mark, added by launch
    assert seen == env  # no PYTHONPATH, nothing of the tick's, no LC_CTYPE from the interpreter


# --------------------------------------------------------------------------- errors and records


def test_launch_errors_name_the_problem(tmp_path, monkeypatch):
    with pytest.raises(UserError, match="does not exist"):
        launch(LaunchSpec(argv=["true"], cwd=tmp_path, env=base_env(tmp_path),
                          log_path=tmp_path / "missing" / "a.log", exit_path=tmp_path / "a.json"))
    with pytest.raises(UserError, match="cannot start"):
        launch(make_spec(tmp_path, ["true"]).__class__(
            argv=["true"], cwd=tmp_path / "no-such-dir", env=base_env(tmp_path),
            log_path=tmp_path / "a.log", exit_path=tmp_path / "a.json"))
    with pytest.raises(UserError, match="empty command"):
        launch(make_spec(tmp_path, []))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python"))
    with pytest.raises(UserError, match="cannot start"):
        launch(make_spec(tmp_path, ["true"]))


# --------------------------------------------------------------------------- a bug in the runner

#: The runner meets a bug (a KeyError, autometta.faults) just after it started the agent.
BUG = "runner.started@agent.exit.json:bug"
SAID = "runner failed: KeyError('fault runner.started@agent.exit.json')"
#: An agent that would run for a minute (a secret on its command line, which the runner's own argv holds).
SECRET = "s3cr3t-value-handed-to-the-runner"
LONG_AGENT = ["sh", "-c", f"echo {SECRET} >/dev/null; exec sleep 60"]


def _buggy_run(tmp_path: Path, home: Optional[Path]) -> Tuple[Launched, dict, str, Path]:
    """Launch :data:`LONG_AGENT` under a runner that meets :data:`BUG`; (launched, record, log, agent's TMPDIR)."""
    temp = tmp_path / "agent-tmp"
    temp.mkdir()
    env = {**base_env(tmp_path), "TMPDIR": str(temp), "AUTOMETTA_FAULT": BUG}
    spec = make_spec(tmp_path, LONG_AGENT, env=env)
    spec.home, spec.secret_values = home, [SECRET]
    launched = launch(spec)
    status = wait_child(launched.pid)  # not a minute: the runner stopped its agent
    assert status is not None and os.waitstatus_to_exitcode(status) == 1
    record = read_exit(spec.exit_path)
    assert record is not None and record["pid"] and record["exit_code"] is None and record["signal"] is None
    # nothing of the run is left unsupervised: the agent was stopped
    wait_for(lambda: processes.find(processes.Run(mark=launched.run_id)) == [])
    return launched, record, spec.log_path.read_text(), temp


def test_a_bug_in_the_runner_leaves_a_crash_log_in_the_home_and_the_record_names_it(tmp_path):
    home = tmp_path / "controller-home"
    _, record, log, temp = _buggy_run(tmp_path, home)
    said = re.match(rf"^{re.escape(SAID)}; details in (\S+)$", record["error"])
    assert said, record["error"]
    crash_log = Path(said.group(1))
    assert crash_log.parent == home / "log" and list((home / "log").iterdir()) == [crash_log]
    assert re.fullmatch(r"crash-\d{8}T\d{6}Z\.log", crash_log.name)
    assert stat.S_IMODE(crash_log.stat().st_mode) == 0o600 and stat.S_IMODE((home / "log").stat().st_mode) == 0o700
    text = crash_log.read_text()
    assert "Traceback (most recent call last)" in text and "KeyError: 'fault runner.started@agent.exit.json'" in text
    assert "in run" in text and "runner.py" in text  # where it was raised: the runner's run
    assert f"while: the runner supervising sh (exit record {tmp_path / 'agent.exit.json'})" in text
    import platform

    from autometta.version import describe

    assert f"autometta: {describe()}" in text and f"platform: {platform.platform()}" in text
    assert f"python: {sys.version.splitlines()[0]}" in text
    assert "exec sleep 60" in text and SECRET not in text  # the runner's argv, masked as its log is
    assert log.splitlines()[-1] == f"autometta-runner: {record['error']}; stopping the agent"
    assert list(temp.iterdir()) == []


@pytest.mark.parametrize("home", ["none", "unwritable"])
def test_a_bug_in_the_runner_without_a_home_to_log_in_leaves_the_record_alone(tmp_path, home):
    """No home given, or one whose log folder takes no file: as before crash logs, never the agent's
    temporary folder or stderr (the agent's log)."""
    given = None
    if home == "unwritable":
        given = tmp_path / "controller-home"
        given.mkdir()
        (given / "log").write_text("not a folder")
    _, record, log, temp = _buggy_run(tmp_path, given)
    assert record["error"] == SAID
    assert log.splitlines() == [f"autometta-runner: {SAID}; stopping the agent"]  # no traceback in the agent log
    assert list(temp.iterdir()) == []


def test_read_exit(tmp_path):
    path = tmp_path / "x.exit.json"
    assert read_exit(path) is None
    path.write_text('{"exit_code": 0, "pid": 5}')
    assert read_exit(path) == {"exit_code": 0, "pid": 5}
    for junk in ("{half", "[]", '{"other": 1}', "\xff"):
        path.write_text(junk, encoding="latin-1")
        record = read_exit(path)
        assert record["exit_code"] is None and record["error"] == CORRUPT
        assert set(record) == KEYS


def test_runner_arguments():
    args = runner.parse_args(["--exit-file", "e.json", "--log=a.log", "--budget-seconds", "90",
                              "--kill-grace", "2.5", "--env-unset", "LC_CTYPE", "--env-set", "A=b=c",
                              "--home", "/h", "--", "claude", "--model", "x", "--"])
    assert (args.exit_file, args.log, args.budget, args.grace, args.home) == ("e.json", "a.log", 90.0, 2.5, "/h")
    assert args.env_unset == ["LC_CTYPE"] and args.env_set == {"A": "b=c"}
    assert args.command == ["claude", "--model", "x", "--"]
    for bad in (["--log", "a"], ["--exit-file", "e", "--log", "a", "--budget-seconds", "0"],
                ["--exit-file", "e", "--log", "a", "--kill-grace", "soon"], ["--exit-file", "e", "--log"],
                ["--exit-file", "e", "--log", "a", "--bogus", "--", "x"]):
        with pytest.raises(runner.ArgError):
            runner.parse_args(bad)


def test_runner_rejects_bad_arguments_with_exit_2(capsys):
    assert runner.main(["--log", "x"]) == 2
    assert "--exit-file and --log are required" in capsys.readouterr().err


def test_runner_args_undo_locale_coercion_without_leaking_values(tmp_path):
    spec = make_spec(tmp_path, ["agent"], env={"PATH": "/bin", "SECRET_KEY": "s3cret"}, budget=60)
    args = launch_mod.runner_args(spec)
    assert args[-2:] == ["--", "agent"]
    assert "--budget-seconds" in args and "60" in args
    assert ["--env-unset", "LC_CTYPE"] == args[args.index("--env-unset"):args.index("--env-unset") + 2]
    assert not any("s3cret" in a for a in args)  # argv is public; env values never go there


# --------------------------------------------------------------------------- the pyz


PYZ_LAUNCHER = textwrap.dedent("""\
    import sys
    pyz, tmp = sys.argv[1], sys.argv[2]
    sys.path.insert(0, pyz)
    from pathlib import Path
    import autometta
    from autometta.agents import spawn as launch
    assert autometta.__file__.startswith(pyz + "/"), autometta.__file__
    assert launch.import_root() == pyz, launch.import_root()
    spec = launch.LaunchSpec(argv=["sh", "-c", "echo from the pyz"], cwd=Path(tmp), env={"PATH": sys.argv[3]},
                             log_path=Path(tmp) / "agent.log", exit_path=Path(tmp) / "agent.exit.json")
    print(launch.launch(spec).pid)
""")


@pytest.mark.skipif(not (ROOT / "build_pyz.py").exists(), reason="no build_pyz.py")
def test_launch_from_the_built_pyz(tmp_path):
    pyz = tmp_path / "x.pyz"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    built = subprocess.run([sys.executable, str(ROOT / "build_pyz.py"), "--output", str(pyz)], cwd=str(ROOT),
                           env=clean, capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr
    work = tmp_path / "work"
    work.mkdir()
    # -I: neither the checkout nor PYTHONPATH is importable; only the pyz is
    done = subprocess.run([sys.executable, "-I", "-c", PYZ_LAUNCHER, str(pyz), str(work),
                           os.environ.get("PATH", os.defpath)],
                          cwd=str(work), env=clean, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    runner_pid = int(done.stdout)
    try:
        wait_for(lambda: read_exit(work / "agent.exit.json") is not None, timeout=20)
    finally:
        liveness.signal_group(runner_pid, signal.SIGKILL)
    record = read_exit(work / "agent.exit.json")
    assert record["exit_code"] == 0, (work / "agent.log").read_text()
    assert record["runner_pid"] == runner_pid
    assert (work / "agent.log").read_text() == "from the pyz\n"


def test_relative_paths_are_taken_from_the_launchers_folder(tmp_path, monkeypatch):
    """The runner works in spec.cwd; log and exit paths given relative to us must still land here."""
    (tmp_path / "state").mkdir()
    (tmp_path / "repo").mkdir()
    monkeypatch.chdir(tmp_path)
    spec = LaunchSpec(argv=["sh", "-c", "echo in; pwd"], cwd=Path("repo"), env=base_env(tmp_path),
                      log_path=Path("state/a.log"), exit_path=Path("state/a.exit.json"))
    launched = launch(spec)
    wait_child(launched.pid)
    assert read_exit(tmp_path / "state" / "a.exit.json")["exit_code"] == 0
    assert (tmp_path / "state" / "a.log").read_text() == f"in\n{(tmp_path / 'repo').resolve()}\n"


def test_self_argv_runs_autometta_from_anywhere(tmp_path):
    import subprocess as sp

    from autometta.agents.spawn import self_argv

    out = sp.run(self_argv("--version"), cwd=str(tmp_path), capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert out.returncode == 0 and out.stdout.startswith("autometta ")

"""The agent registry, the heartbeat and watch, against real processes.

Long-lived agents are ``cat`` (or a small Python script) reading a pipe:
they end when the test closes the pipe, so nothing waits by sleeping. Log
ages are set with ``os.utime``; the heartbeat is asked "as of" a moment,
exactly as the tick asks it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional

import pytest

from autometta.agents import liveness, registry
from autometta.agents.spawn import LaunchSpec, launch
from autometta.observe import heartbeat, settings
from autometta.observe.heartbeat import Observed, classify, outcome_of
from autometta.paths import RepoPaths
from autometta.timeutil import now_iso
from tests.testing.cli import run_process

STREAM_EVENT = '{"type":"system","subtype":"init","model":"claude-sonnet-4-6"}\n'
CONF = settings.Settings(stall_seconds=300, quiet_seconds=60)


class Agents:
    """Live children to register; all are ended at teardown."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.procs: List[subprocess.Popen] = []

    def cat(self) -> subprocess.Popen:
        proc = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
        self.procs.append(proc)
        return proc

    def writes_only_at_exit(self, log: Path) -> subprocess.Popen:
        """Like plain ``claude -p``: silent while it works, its whole output at the end."""
        code = f"import sys; sys.stdin.read(); open({str(log)!r}, 'a').write('All done.\\n')"
        proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE)
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for proc in self.procs:
            if proc.stdin and not proc.stdin.closed:
                proc.stdin.close()
            proc.wait(timeout=10)


@pytest.fixture
def agents(tmp_path):
    a = Agents(tmp_path)
    yield a
    a.close()


@pytest.fixture
def paths(tmp_path) -> RepoPaths:
    (tmp_path / "repo" / "state" / "logs").mkdir(parents=True)
    return RepoPaths(tmp_path / "repo")


def log_file(paths: RepoPaths, name: str, text: str = "", age: Optional[float] = None, now: float = 0.0) -> Path:
    path = paths.logs / f"{name}.log"
    path.write_text(text)
    if age is not None:
        os.utime(path, (now - age, now - age))
    return path


def enrol(paths: RepoPaths, pid: int, log: Path, *, family: str = "codex", budget: int = 0,
          started: Optional[float] = "real", stage: str = "05-work", role: str = "worker") -> None:
    start = liveness.start_time(pid) if started == "real" else started
    registry.register(paths, pid=pid, started=start, started_at=now_iso(), role=role, family=family,
                      identity=f"{family} agent", card_path=f"/cards/{stage}.md", log_path=str(log),
                      budget_seconds=budget, stage_id=stage)


# --------------------------------------------------------------------------- the pure rules


@pytest.mark.parametrize("seen,budget,elapsed,state,flags", [
    (Observed(True, 10, 0), 0, 5, "running", []),
    (Observed(True, 10, 0), 600, 5, "running", []),
    (Observed(True, 10, -100), 0, 200, "quiet", []),          # silent 100 s: quiet, not yet stuck
    (Observed(True, 10, -301), 0, 400, "stuck", ["silent"]),  # past the stall threshold
    (Observed(True, 10, -301, log_streams=False), 0, 400, "quiet", []),  # plain claude: no wolf cried
    (Observed(True, None, None, log_streams=False), 0, 400, "quiet", []),
    (Observed(True, None, None), 0, 400, "running", []),      # no log to judge by
    (Observed(True, 10, 0), 60, 61, "over-budget", ["over-budget"]),
    (Observed(True, 10, -301), 60, 400, "over-budget", ["silent", "over-budget"]),
    (Observed(True, 10, -301, log_streams=False), 60, 400, "over-budget", ["over-budget"]),
    (Observed(False, 10, -301), 60, 400, "exited", []),
    # the runner is gone without a record, processes of its run still run: nothing stops them at the budget
    (Observed(False, 10, -301, unsupervised=(41, 42)), 60, 400, "unsupervised", ["unsupervised"]),
    (Observed(False, 10, 0, unsupervised=(41,)), 0, 5, "unsupervised", ["unsupervised"]),
])
def test_classify(seen, budget, elapsed, state, flags):
    now = 10_000.0
    if seen.log_mtime is not None:
        seen.log_mtime += now
    doc = {"pid": 1, "budget_seconds": budget, "process_start": now - elapsed, "started_at": "2020-01-01T00:00:00Z"}
    out = classify(doc, seen, now, 300, 60)
    assert (out["state"], out["flags"]) == (state, flags)
    assert out["elapsed_seconds"] == elapsed
    assert out["reason"]


@pytest.mark.parametrize("record,stage_status,outcome", [
    ({"exit_code": 0, "signal": None, "timed_out": False, "error": None}, None, "ok"),
    ({"exit_code": 3, "signal": None, "timed_out": False, "error": None}, "stalled", "failed"),
    ({"exit_code": None, "signal": 9, "timed_out": False, "error": None}, None, "killed"),
    ({"exit_code": None, "signal": 15, "timed_out": True, "error": None}, None, "timed-out"),
    ({"exit_code": 127, "signal": None, "timed_out": False, "error": "could not start: x"}, None, "not-started"),
    (None, "completed", "completed"),
    (None, "verifier_failed", "verifier_failed"),
    (None, "in_progress", "exited"),
    (None, None, "exited"),
])
def test_outcome(record, stage_status, outcome):
    out = outcome_of(record, stage_status)
    assert out["outcome"] == outcome
    assert out["reason"]


def test_settings_env_beats_config_and_bad_values_name_their_source():
    conf = settings.load({"observe": {"stall_seconds": 120, "quiet_seconds": 30}}, {"PHAT_CONTROLLER_HEARTBEAT_STALL": "45"})
    assert (conf.stall_seconds, conf.quiet_seconds, conf.watch_poll_seconds) == (45, 30, 60)
    with pytest.raises(Exception, match="PHAT_CONTROLLER_WATCH_POLL"):
        settings.load({}, {"PHAT_CONTROLLER_WATCH_POLL": "soon"})
    with pytest.raises(Exception, match="observe.stall_secs"):
        settings.load({"observe": {"stall_secs": 1}}, {})


# --------------------------------------------------------------------------- real processes


def test_heartbeat_classifies_real_agents(paths, agents, tmp_path):
    now = time.time() + 5  # "as of" five seconds from now, so a 1-second budget is spent
    live, quiet, stuck, over, stranger = (agents.cat() for _ in range(5))
    enrol(paths, live.pid, log_file(paths, "live", "working\n", age=2, now=now))
    enrol(paths, quiet.pid, log_file(paths, "quiet", "thinking\n", age=100, now=now))
    enrol(paths, stuck.pid, log_file(paths, "stuck", "hung\n", age=1000, now=now))
    enrol(paths, over.pid, log_file(paths, "over", "busy\n", age=1, now=now), budget=1)
    # a pid that a stranger now holds: right pid, wrong process start time
    enrol(paths, stranger.pid, log_file(paths, "stranger", "x\n", age=1, now=now),
          started=liveness.start_time(stranger.pid) - 1000, stage="06-gone")
    # an agent that has exited, through the real runner, with an exit record
    spec = LaunchSpec(argv=["sh", "-c", "echo trying; exit 3"], cwd=tmp_path, env=dict(os.environ),
                      log_path=paths.log("07-done", "worker"), exit_path=paths.exit_record("07-done", "worker"))
    ran = launch(spec)
    os.waitpid(ran.pid, 0)
    registry.register(paths, pid=ran.pid, started=ran.started, started_at=ran.started_at, role="worker",
                      family="script", identity="Script", card_path="/cards/07-done.md",
                      log_path=str(spec.log_path), budget_seconds=60, stage_id="07-done")

    report = heartbeat.check(paths, CONF, now)

    states = {row["pid"]: row["state"] for row in report["entries"]}
    assert states == {live.pid: "running", quiet.pid: "quiet", stuck.pid: "stuck", over.pid: "over-budget"}
    flags = {row["pid"]: row["flags"] for row in report["entries"]}
    assert flags[stuck.pid] == ["silent"] and flags[over.pid] == ["over-budget"] and flags[live.pid] == []
    on_disk = json.loads(paths.heartbeat.read_text())
    assert on_disk["active_count"] == 4
    assert on_disk["counts"] == {"running": 1, "quiet": 1, "stuck": 1, "over-budget": 1, "unsupervised": 0,
                                 "exited": 2}
    # both gone ones moved to recent-agents with a meaningful outcome; the stranger was never touched
    assert sorted(p.name for p in paths.recent_agents.iterdir()) == sorted(
        [f"{stranger.pid}-06-gone.json", f"{ran.pid}-07-done.json"])
    done = json.loads((paths.recent_agents / f"{ran.pid}-07-done.json").read_text())
    assert (done["outcome"], done["exit_code"], done["alive"]) == ("failed", 3, False)
    gone = json.loads((paths.recent_agents / f"{stranger.pid}-06-gone.json").read_text())
    assert gone["outcome"] == "exited"
    assert stranger.poll() is None  # the heartbeat never kills
    assert sorted(p.name for p in paths.active_agents.iterdir()) == sorted(
        f"{p.pid}.json" for p in (live, quiet, stuck, over))


def test_bash_era_entry_without_start_time_is_not_fooled_by_a_later_process(paths, agents):
    proc = agents.cat()
    log = log_file(paths, "old", "x\n")
    # registered (by bash) long before this process started: the pid was reused
    registry.register(paths, pid=proc.pid, started=None, started_at=now_iso(time.time() - 3600), role="worker",
                      family="codex", identity="Codex", card_path="/c/05-a.md", log_path=str(log), budget_seconds=0)
    assert heartbeat.check(paths, CONF, time.time())["exited"][0]["pid"] == proc.pid
    # registered after it started (a manual dispatch registered a moment later): it is the agent
    registry.register(paths, pid=proc.pid, started=None, started_at=now_iso(), role="worker",
                      family="codex", identity="Codex", card_path="/c/05-a.md", log_path=str(log), budget_seconds=0)
    assert heartbeat.check(paths, CONF, time.time())["entries"][0]["state"] == "running"


def test_claude_log_that_writes_only_at_exit_is_never_called_stuck(paths, agents):
    now = time.time()
    log = log_file(paths, "claude-plain", "", age=1000, now=now)
    proc = agents.writes_only_at_exit(log)
    enrol(paths, proc.pid, log, family="claude", budget=3600)
    row = heartbeat.check(paths, CONF, now)["entries"][0]
    assert (row["state"], row["flags"], row["log_streams"]) == ("quiet", [], False)
    # a claude log that streams (stream-json) and then goes silent is stuck, like any other
    streaming = log_file(paths, "claude-stream", STREAM_EVENT, age=1000, now=now)
    other = agents.cat()
    enrol(paths, other.pid, streaming, family="claude")
    rows = {r["pid"]: r for r in heartbeat.check(paths, CONF, now)["entries"]}
    assert rows[other.pid]["state"] == "stuck" and rows[other.pid]["log_streams"] is True
    # the plain one writes its output and exits: exited, with the log it wrote
    proc.stdin.close()
    proc.wait(timeout=10)
    report = heartbeat.check(paths, CONF, time.time())
    gone = next(r for r in report["exited"] if r["pid"] == proc.pid)
    assert gone["log_size"] == len("All done.\n")


# --------------------------------------------------------------------------- the commands


def test_register_agent_and_heartbeat_commands(paths, agents, run, tmp_path):
    proc = agents.cat()
    log = log_file(paths, "manual", "started\n")
    card = tmp_path / "05-manual.md"
    args = [str(paths.root), str(proc.pid), "worker", "codex", "Codex GPT-5.5 <codex-gpt-5-5@local>", str(card), str(log)]
    res = run("register-agent", *args, "900")
    assert res.code == 0, res.err
    assert res.out.strip() == str(paths.active_agents / f"{proc.pid}.json")
    doc = json.loads((paths.active_agents / f"{proc.pid}.json").read_text())
    assert (doc["budget_seconds"], doc["stage_id"], doc["card_path"]) == (900, "05-manual", str(card))
    assert abs(doc["process_start"] - liveness.start_time(proc.pid)) < 1
    assert run("register-agent", *args).code == 0  # idempotent per pid
    assert len(list(paths.active_agents.iterdir())) == 1

    res = run("heartbeat", str(paths.root))
    assert res.code == 0
    assert "1 running agent(s) (1 running)" in res.out
    assert f"{proc.pid}" in res.out and "05-manual" in res.out

    proc.stdin.close()
    proc.wait(timeout=10)
    res = run("heartbeat", str(paths.root), "--json")
    assert res.code == 0
    report = json.loads(res.out)
    assert report["active_count"] == 0 and report["exited"][0]["outcome"] == "exited"
    assert (paths.recent_agents / f"{proc.pid}-05-manual.json").exists()


def test_heartbeat_on_a_folder_autometta_does_not_know_exits_1(run, tmp_path, home_dir, repo):
    assert run("init-host").code == 0
    res = run("heartbeat", str(repo))  # a git repo, but neither subscribed nor with registered agents
    assert res.code == 1 and "not a subscribed repo and no agent was ever registered there" in res.err
    assert not (repo / "state").exists()  # and nothing was written there
    assert run("heartbeat", str(tmp_path / "gone")).code == 1
    assert run("subscribe", str(repo)).code == 0
    res = run("heartbeat", str(repo))
    assert res.code == 0 and "0 running agent(s)" in res.out


@pytest.mark.parametrize("args,message", [
    (["abc", "worker"], "non-numeric pid"),
    (["123", "panellist"], "unknown role"),
])
def test_register_agent_refuses_bad_input(paths, run, args, message):
    res = run("register-agent", str(paths.root), args[0], args[1], "codex", "Codex", "/c/05-x.md", "/tmp/x.log")
    assert res.code == 1 and message in res.err
    assert not paths.active_agents.exists()


# --------------------------------------------------------------------------- watch


def watch_env(**extra: str) -> dict:
    env = {"PHAT_CONTROLLER_WATCH_POLL": "0.05", "PHAT_CONTROLLER_WATCH_STALL_GRACE": "0.2"}
    env.update(extra)
    return env


def test_watch_exits_0_when_the_agent_exits(paths, agents):
    now = time.time()
    log = log_file(paths, "claude-plain", "", age=1000, now=now)
    proc = agents.writes_only_at_exit(log)  # silent all along, yet never escalated
    enrol(paths, proc.pid, log, family="claude", budget=3600)
    watcher = subprocess.Popen([sys.executable, "-m", "autometta", "watch", str(paths.root), str(proc.pid), "w1"],
                               cwd=str(Path(__file__).resolve().parents[2]), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
                                    **watch_env(PHAT_CONTROLLER_HEARTBEAT_STALL="1")})
    first = watcher.stdout.readline()
    assert first.startswith(f"watch: w1 pid={proc.pid} repo=")
    assert "quiet" in watcher.stdout.readline()  # it has been observed at least once
    proc.stdin.close()
    proc.wait(timeout=10)
    out, err = watcher.communicate(timeout=30)
    assert watcher.returncode == 0, err
    assert f"watch: w1 pid={proc.pid} exited: exited" in out
    assert "STUCK" not in err
    assert (paths.recent_agents / f"{proc.pid}-05-work.json").exists()


def test_watch_exits_2_when_stuck_past_the_grace(paths, agents):
    proc = agents.cat()
    log = log_file(paths, "hung", "started\n", age=1000, now=time.time())
    enrol(paths, proc.pid, log)
    res = run_process("watch", str(paths.root), str(proc.pid), "hung-worker",
                      env=watch_env(PHAT_CONTROLLER_HEARTBEAT_STALL="1"))
    assert res.code == 2, res.out + res.err
    assert f"STUCK: hung-worker pid={proc.pid} stuck past the grace window (0.2s)" in res.err
    assert proc.poll() is None  # never killed


def test_watch_bad_input_is_3(paths, agents):
    res = run_process("watch", str(paths.root), "12x", env=watch_env())
    assert res.code == 3 and "non-numeric pid" in res.err
    proc = agents.cat()  # alive, but nobody registered it
    res = run_process("watch", str(paths.root), str(proc.pid), env=watch_env())
    assert res.code == 3 and "is not registered" in res.err
    res = run_process("watch", str(paths.root), env=watch_env())
    assert res.code == 3
    res = run_process("watch", str(paths.root), "1", "a", "b", env=watch_env())
    assert res.code == 3

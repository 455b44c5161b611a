"""What a human sees in the tickers (agents, status --watch), the log follower and the report."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time


from autometta.observe.logtail import Follower
from autometta.paths import HomePaths
from tests.testing.cli import run_process
from tests.testing.env import ROOT
from tests.testing.repos import make_repo
from tests.testing.ticks import (
    PASS_WORKER,
    await_agents,
    read_state,
    run_until_quiet,
    tick_once,
    verifier_writes,
)
from tests.testing.waits import wait_for

ESC = "\x1b"


USAGE = "echo 'autometta-usage: {\"input_tokens\": 1200, \"output_tokens\": 80, \"cost_usd\": 0.25}'"


def busy_repo(setup, tmp_path):
    """A repo with one failed stage (verdict FAIL) and a worker running now."""
    repo, home, add = setup
    add("01-check", "printf 'x\\n' > out.txt && printf '%s' "
                    "'{\"stage_id\":\"01-check\",\"status\":\"pass\",\"deliverables\":[\"out.txt\"],\"notes\":\"ok\"}'"
                    " > \"$AUTOMETTA_HANDOFF\"", verifier_writes("01-check", "FAIL"))
    run_until_quiet(home, repo)  # the FAILed work stays in the stage's worktree, for review
    go = tmp_path / "go"
    add("02-build", f"{USAGE}; echo 'compiling module 7'; while [ ! -e '{go}' ]; do sleep 0.05; done; "
        + PASS_WORKER.replace("{id}", "02-build"))
    tick_once(home)
    log = repo / "state" / "logs" / "02-build-worker.log"
    wait_for(lambda: "compiling" in (log.read_text() if log.exists() else ""))  # the agent's own output, no handle
    return repo, home, go


def test_agent_ticker_shows_agents_alerts_and_fits_80_columns(setup, tmp_path, run):
    repo, home, go = busy_repo(setup, tmp_path)
    try:
        res = run_process("ticker", str(repo), "--once", env={"COLUMNS": "80"})
        assert res.code == 0, res.err
        lines = res.out.splitlines()
        assert all(len(line) <= 80 for line in lines)
        assert ESC not in res.out  # not a terminal: plain lines
        text = res.out
        assert "NEEDS YOU (1)" in text
        assert "01-check: verifier_failed" in text and "FAIL 1: hello" in text
        assert "    -> autometta requeue /" in text  # cut to the pane; whole in --json
        row = next(line for line in lines if "02-build" in line and "worker" in line)
        assert re.search(r"worker\s+script\s+02-build\s+\d+s\s+1.3k tok\s+running", row), row
        assert "> compiling module 7" in text
        assert "in_progress  02-build" in text
        view = json.loads(run_process("ticker", str(repo), "--json").out)
        agent = view["repos"][0]["active"][0]
        assert (agent["tokens"], agent["cost_usd"], agent["state"]) == (1280, 0.25, "running")
        (need,) = view["repos"][0]["needs_you"]
        assert (need["kind"], need["stage_id"], need["command"]) == (
            "verifier_failed", "01-check", f"autometta requeue {repo} 01-check")
    finally:
        go.touch()
        await_agents(repo)
    run_until_quiet(home, repo)
    # alerts clear when resolved: the failed stage re-queued, the counter reset by a pass
    assert run("requeue", str(repo), "01-check").code == 0
    res = run_process("ticker", str(repo), "--once")
    assert "01-check: verifier_failed" not in res.out
    assert "NEEDS YOU" not in res.out
    assert re.search(r"worker\s+script\s+02-build\s+ok \[completed\]", res.out)


def test_status_watch_once_shows_the_repo_and_recent_completions(setup, tmp_path):
    repo, home, add = setup
    add("01-hello")
    run_until_quiet(home, repo)
    other = make_repo(tmp_path / "other")
    assert run_process("subscribe", str(other)).code == 0
    res = run_process("status", "--watch", "--once", "--repo", str(repo), env={"COLUMNS": "80"})
    assert res.code == 0, res.err
    assert all(len(line) <= 80 for line in res.out.splitlines())
    assert "controller: last tick" in res.out and "(ok)" in res.out
    assert re.search(r"^proj\s+-\s+idle", res.out, re.M)
    assert "other" not in res.out  # scoped to the repo
    sha = read_state(repo)["stages"][0]["commit"][:10]
    assert re.search(rf"proj\s+01-hello\s+{sha}\s+\d+s ago", res.out)
    assert run_process("status", "--watch", "--json").code == 2  # JSON is not redrawn


def test_ticker_redraws_in_place_and_stops_cleanly_on_ctrl_c(setup):
    repo, home, add = setup
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "autometta", "ticker", str(repo)], stdin=slave, stdout=slave,
                            stderr=slave, cwd=str(ROOT), close_fds=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "PHAT_CONTROLLER_TICKER_INTERVAL": "0.1",
                                 "TERM": "xterm"},
                            # Ctrl-C as a terminal sends it, even where this test runs in a background job
                            # (bash starts those with SIGINT ignored, and a child inherits that)
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 20
    while seen.count(b"SCHEDULED") < 2:  # two frames drawn
        ready, _, _ = select.select([master], [], [], max(0.0, deadline - time.monotonic()))
        assert ready, f"no second frame: {seen!r}"
        seen += os.read(master, 65536)
    proc.send_signal(signal.SIGINT)
    # Keep reading while it stops: a full pty would block its last write (the cursor given back) forever.
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            chunk = os.read(master, 65536)
            if not chunk:
                break
            seen += chunk
    except OSError:  # EIO once the child side is closed
        pass
    assert proc.wait(timeout=10) == 0
    os.close(master)
    text = seen.decode("utf-8", "replace")
    assert "\x1b[H" in text and "\x1b[K" in text  # redrawn in place, each line cleared
    assert "\x1b[?25h" in text[text.rfind("SCHEDULED"):]  # the cursor is given back at the end
    assert "Traceback" not in text


def test_log_follow_rolls_to_the_next_day(tmp_path):
    hp = HomePaths(tmp_path / "home")
    hp.log_dir.mkdir(parents=True)
    day1 = time.mktime((2026, 11, 26, 23, 59, 0, 0, 0, -1))
    clock = [day1]
    first = hp.tick_log(day1)
    first.write_text("a\nb\n")
    follower = Follower(hp, clock=lambda: clock[0])
    assert follower.start(lines=1) == "b\n"
    with open(first, "a") as handle:
        handle.write("c\n")
    assert follower.poll() == "c\n"
    clock[0] = day1 + 120  # past midnight, local time
    second = hp.tick_log(clock[0])
    assert second != first
    with open(first, "a") as handle:
        handle.write("d\n")
    second.write_text("e\n")
    assert follower.poll() == f"d\n--- {second.name} ---\ne\n"
    with open(second, "a") as handle:
        handle.write("f\n")
    assert follower.poll() == "f\n"


def test_report_says_what_landed_stopped_and_needs_you(setup, run):
    repo, home, add = setup
    add("01-hello", worker_cmd=f"{USAGE}; " + PASS_WORKER.replace("{id}", "01-hello"))
    add("02-broken", worker_cmd="exit 3")
    run_until_quiet(home, repo)
    res = run("report", "--json")
    assert res.code == 0, res.err
    doc = json.loads(res.out)
    r = doc["repos"][0]
    sha = read_state(repo)["stages"][0]["commit"]
    assert r["landed"] == [{"stage": "01-hello", "commit": sha, "completed_at": r["landed"][0]["completed_at"],
                            "subject": "01-hello: Say hello", "tokens": 1280, "cost_usd": 0.25}]
    assert r["stopped"][0]["stage"] == "02-broken" and r["stopped"][0]["status"] == "stalled"
    assert any(x["command"] == f"autometta requeue {repo} 02-broken" for x in r["needs_you"])
    assert r["spend"]["window_cost_usd"] == 0.25
    text = run("report").out
    assert f"proj  01-hello  {sha[:12]}  01-hello: Say hello" in text
    assert "NEEDS YOU (1)" in text and "02-broken: stalled" in text
    assert "$0.25" in text
    assert run("report", "--since", "soon").code == 2
    old = run("report", "--since", "2999-01-01T00:00:00Z", "--json")
    assert json.loads(old.out)["totals"]["landed"] == 0

"""Notifications: a configured command and a webhook each get every event exactly once.

Whole ticks with real git and script-family agents raise the events; a
local HTTP server on 127.0.0.1 plays the webhook.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import List

import pytest

from autometta.observe import events
from autometta.paths import HomePaths, RepoPaths
from tests.testing.ticks import (
    PASS_WORKER,
    await_agents,
    read_state,
    run_until_quiet,
    tick_once,
    verifier_writes,
)


class Hook:
    """A webhook receiver on 127.0.0.1: ``bodies`` it accepted, ``posts`` (status, body) of every POST.

    ``status`` is what it answers (change it to bring the webhook up or down);
    with ``hang`` set it answers nothing until ``release()``.
    """

    def __init__(self, status: int = 200, hang: bool = False) -> None:
        self.bodies: List[dict] = []
        self.posts: List[tuple] = []
        self.status = status
        self.released = threading.Event()
        if not hang:
            self.released.set()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length))
                hook.posts.append((hook.status, body))
                hook.released.wait(30)
                if 200 <= hook.status < 300:
                    hook.bodies.append(body)
                self.send_response(hook.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def release(self) -> None:
        self.released.set()

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook():
    h = Hook()
    yield h
    h.close()


def configure(home: Path, **notify) -> None:
    lines = ["version: 1", "notify:"]
    for key, value in notify.items():
        lines.append(f"  {key}: {json.dumps(value)}")
    (home / "config.yaml").write_text("\n".join(lines) + "\n")


def received_by_command(path: Path) -> List[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_each_event_reaches_command_and_webhook_exactly_once(setup, hook, tmp_path, monkeypatch):
    repo, home, add = setup
    inbox = tmp_path / "inbox.jsonl"
    configure(home, command=f"{{ cat; echo; }} >> '{inbox}'", webhook=hook.url, timeout=10)
    monkeypatch.setenv("PHAT_CONTROLLER_HEARTBEAT_STALL", "0")  # any agent seen running counts as stuck
    go = tmp_path / "go"
    add("01-wait", f"while [ ! -e '{go}' ]; do sleep 0.05; done; " + PASS_WORKER.replace("{id}", "01-wait"))
    add("02-fail", "printf '%s' '{\"stage_id\":\"02-fail\",\"status\":\"fail\",\"deliverables\":[],\"notes\":\"no way\"}'"
                   " > \"$AUTOMETTA_HANDOFF\"")
    add("03-stall", "true")
    add("04-vfail", "printf 'x\\n' > other.txt && printf '%s' "
                    "'{\"stage_id\":\"04-vfail\",\"status\":\"pass\",\"deliverables\":[\"other.txt\"],\"notes\":\"done\"}'"
                    " > \"$AUTOMETTA_HANDOFF\"", verifier_writes("04-vfail", "FAIL"))

    tick_once(home)  # claims 01-wait; its worker waits for us
    tick_once(home)  # the worker runs on, silent: agent_stuck
    tick_once(home)  # still stuck: no second notification
    go.touch()
    await_agents(repo)
    run_until_quiet(home, repo)  # 01 completes, 02 fails, 03 stalls, 04 fails verification: queue drained
    assert [s["status"] for s in read_state(repo)["stages"]] == ["completed", "failed", "stalled", "verifier_failed"]
    add("05-next")  # three failures in a row: the next tick halts the repo (failure-cap)
    run_until_quiet(home, repo)
    for _ in range(3):  # halted: ticks raise nothing new
        tick_once(home)

    by_command = received_by_command(inbox)
    by_hook = hook.bodies
    kinds = [e["kind"] for e in by_command]
    assert sorted(kinds) == sorted(["agent_stuck", "stage_completed", "stage_failed", "stage_stalled",
                                    "stage_verifier_failed", "queue_drained", "repo_halted"])
    assert [e["id"] for e in by_hook] == [e["id"] for e in by_command]
    assert len({e["id"] for e in by_command}) == len(by_command)
    journal = events.journal(HomePaths(home))
    assert [e["id"] for e in journal] == [e["id"] for e in by_command]
    assert all(e["delivery"] == {"command": "ok", "webhook": "ok"} for e in journal)
    first = {e["kind"]: e for e in by_command}
    assert first["stage_completed"]["needs_human"] is False and first["repo_halted"]["needs_human"] is True
    assert first["repo_halted"]["reason"] == "failure-cap"
    assert first["stage_failed"]["summary"] == "proj: stage 02-fail failed (no way); needs you (autometta requeue after a look)"
    assert first["agent_stuck"]["stage_id"] == "01-wait" and first["agent_stuck"]["role"] == "worker"
    assert first["stage_completed"]["commit"]
    drained = first["queue_drained"]  # what still needs a person, not "needs_human: false"
    assert drained["needs_human"] is True
    assert [(n["stage_id"], n["status"]) for n in drained["needs_you"]] == [
        ("02-fail", "failed"), ("03-stall", "stalled"), ("04-vfail", "verifier_failed")]
    assert drained["needs_you"][0]["command"] == f"autometta requeue {repo} 02-fail"  # as every view says it
    assert drained["summary"] == ("proj: queue drained (4 stages: 1 completed; 3 need you: 02-fail failed, "
                                  "03-stall stalled, 04-vfail verifier_failed)")
    log = "".join(p.read_text() for p in (home / "log").glob("tick-*.log"))
    assert "notify: stage_failed" in log and "command ok, webhook ok" in log


def test_a_failing_webhook_or_command_is_logged_and_the_tick_goes_on(setup, tmp_path):
    repo, home, add = setup
    dead = Hook()
    url = dead.url
    dead.close()  # nothing listens there now
    configure(home, command="echo 'cannot deliver' >&2; exit 4", webhook=url, timeout=5)
    add("01-hello")
    kinds = run_until_quiet(home, repo)
    assert "error" not in kinds
    assert read_state(repo)["stages"][0]["status"] == "completed"
    journal = events.journal(HomePaths(home))
    assert {e["kind"] for e in journal} == {"stage_completed", "queue_drained"}
    assert journal[1]["needs_human"] is False and journal[1]["needs_you"] == []  # all landed: nothing for you
    assert journal[1]["summary"] == "proj: queue drained (1 stage: 1 completed)"
    delivery = journal[0]["delivery"]
    assert delivery["command"] == "error: exit 4: cannot deliver"
    assert delivery["webhook"].startswith("error: 127.0.0.1:")
    log = "".join(p.read_text() for p in (home / "log").glob("tick-*.log"))
    assert "notify: stage_completed" in log and "command error: exit 4" in log


def test_a_command_past_its_timeout_is_killed(tmp_path):
    home = HomePaths(tmp_path / "home")
    home.root.mkdir()
    repo = RepoPaths(tmp_path / "repo")
    event = events.build_event(repo, "repo_halted", {"reason": "token-cap", "halted_at": "2026-11-26T00:00:00Z"}, 0)
    events.publish(home, event, {"notify": {"command": "sleep 30", "timeout": 0.3}})
    assert events.journal(home)[0]["delivery"] == {"command": "error: timed out after 0.3s (killed)"}
    assert events.publish(home, event, {"notify": {"command": "true"}}) is False  # once only
    assert len(events.journal(home)) == 1


def test_event_ids_name_the_occurrence(tmp_path):
    repo = RepoPaths(tmp_path / "r")
    a = events.event_id(repo, "stage_completed", {"stage_id": "05-x", "started_at": "2026-01-01T00:00:00Z"})
    b = events.event_id(repo, "stage_completed", {"stage_id": "05-x", "started_at": "2026-01-02T00:00:00Z"})
    assert a != b and a == f"stage_completed:{repo.root}:05-x:2026-01-01T00:00:00Z"
    stuck = events.event_id(repo, "agent_stuck", {"agent_id": "42-1000", "state": "stuck"})
    assert stuck == events.event_id(repo, "agent_stuck", {"agent_id": "42-1000", "state": "over-budget"})


# ------------------------------------------------------------------ an undelivered webhook


def webhook_states(home: Path) -> List[str]:
    return [e["delivery"].get("webhook") for e in events.journal(HomePaths(home))]


def test_a_webhook_that_was_down_gets_each_event_once_on_a_later_tick(setup):
    repo, home, add = setup
    hook = Hook(status=503)
    try:
        configure(home, webhook=hook.url, timeout=5)
        add("01-one")
        add("02-two")
        run_until_quiet(home, repo)
        raised = events.journal(HomePaths(home))
        assert [e["kind"] for e in raised] == ["stage_completed", "stage_completed", "queue_drained"]
        assert all(e["delivery"]["webhook"].startswith("error: ") and e["retry_at"] for e in raised)
        assert len(hook.posts) == 2  # 02-two's tick also drained the queue: that event did not wait on it again
        assert raised[2]["delivery"]["webhook"].startswith("error: not tried: the webhook failed earlier in this tick")
        tick_once(home)  # inside the back-off: nothing is posted
        assert len(hook.posts) == 2
        now = time.time()
        tick_once(home, now=now + 90)  # due, still down: one post, and the tick stops there
        assert len(hook.posts) == 3 and hook.posts[-1][1]["id"] == raised[0]["id"]
        assert events.journal(HomePaths(home))[0]["attempts"] == {"webhook": 2}
        hook.status = 200  # the webhook is back
        tick_once(home, now=now + 3600)
        assert sorted(b["id"] for b in hook.bodies) == sorted(e["id"] for e in raised)  # each once
        assert webhook_states(home) == ["ok", "ok", "ok"]
        assert all(b["kind"] == e["kind"] and "delivery" not in b for b, e in zip(hook.bodies, raised))
        for later in (2, 30):
            tick_once(home, now=now + later * 3600)
        assert len(hook.bodies) == 3 and not (home / ".events-pending").exists()
        log = "".join(p.read_text() for p in (home / "log").glob("tick-*.log"))
        assert "webhook error: HTTP 503" in log and "webhook ok (attempt 3)" in log
    finally:
        hook.close()


def test_a_webhook_that_hangs_holds_a_retry_pass_for_one_timeout_only(tmp_path):
    home = HomePaths(tmp_path / "home")
    home.root.mkdir()
    repo = RepoPaths(tmp_path / "repo")
    hook = Hook(status=503)
    try:
        config = {"notify": {"webhook": hook.url, "timeout": 0.5}}
        for n in range(4):
            event = events.build_event(repo, "repo_halted", {"reason": f"r{n}", "halted_at": f"2026-01-0{n + 1}"},
                                       time.time())
            events.new_tick()
            assert events.publish(home, event, config)
        assert len(hook.posts) == 4 and all(e["retry_at"] for e in events.journal(home))
        hook.status, hook.released = 200, threading.Event()  # up again, but it now answers nothing
        events.new_tick()
        started = time.monotonic()
        assert events.retry_undelivered(home, config, now=time.time() + 3600) == 0
        assert time.monotonic() - started < 10 and len(hook.posts) == 5  # one post, timed out; no storm
        assert events.journal(home)[0]["delivery"]["webhook"].startswith("error: 127.0.0.1:")
        hook.release()
        events.new_tick()
        assert events.retry_undelivered(home, config, now=time.time() + 7200) == 4
        # (the post that timed out reached the receiver after all: a receiver dedupes by id)
        assert {b["id"] for b in hook.bodies} == {e["id"] for e in events.journal(home)}
        assert [e["delivery"]["webhook"] for e in events.journal(home)] == ["ok"] * 4
    finally:
        hook.close()


def test_an_event_whose_delivery_was_cut_short_is_never_sent_twice_by_itself(tmp_path, run, home_dir):
    inbox = tmp_path / "inbox.jsonl"
    home = HomePaths(home_dir)
    assert run("init-host").code == 0
    repo = RepoPaths(tmp_path / "repo")
    # a real tick process killed while its notify command runs (the command kills it)
    script = (
        "from pathlib import Path\n"
        "from autometta.observe import events\n"
        "from autometta.paths import HomePaths, RepoPaths\n"
        f"home, repo = HomePaths(Path({str(home_dir)!r})), RepoPaths(Path({str(repo.root)!r}))\n"
        "event = events.build_event(repo, 'repo_halted', {'reason': 'token-cap', 'halted_at': 'x'}, 0)\n"
        "events.publish(home, event, {'notify': {'command': 'kill -KILL $PPID', 'timeout': 30}})\n"
        "print('not reached')\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=str(Path(events.__file__).parents[2])))
    assert proc.returncode == -9 and "not reached" not in proc.stdout
    [cut] = events.journal(home)
    assert cut["delivery"] == {"command": "sending"}
    (home_dir / "config.yaml").write_text(f"version: 1\nnotify:\n  command: \"cat >> '{inbox}'\"\n")
    tick_once(home_dir)  # the next tick says so, and runs nothing again
    [cut] = events.journal(home)
    ref = events.ref_of(cut["id"])
    assert cut["delivery"]["command"].startswith("unknown: the tick stopped while delivering")
    assert f"autometta events --resend {ref}" in cut["delivery"]["command"] and not inbox.exists()
    listed = run("events", "--undelivered")
    assert listed.code == 0 and f"{ref}  " in listed.out and "repo_halted" in listed.out
    assert "command unknown: the tick stopped" in listed.out
    resent = run("events", "--resend", ref[:6])
    assert resent.code == 0 and f"{ref} repo_halted: command ok" in resent.out
    assert [json.loads(x)["id"] for x in inbox.read_text().splitlines()] == [cut["id"]]
    again = run("events", "--resend", ref)
    assert again.code == 0 and "nothing resent" in again.out and len(inbox.read_text().splitlines()) == 1
    assert run("events", "--undelivered").out.startswith("no undelivered events")
    doc = json.loads(run("events", "--json", "--since", "1h").out)
    assert doc == []  # raised at time 0: outside the last hour
    doc = json.loads(run("events", "--json").out)
    assert doc[0]["ref"] == ref and doc[0]["delivery"] == {"command": "ok"} and doc[0]["undelivered"] is False
    bad = run("events", "--resend", "zzzz")
    assert bad.code == 1 and "no event 'zzzz'" in bad.err


def test_two_ticks_retrying_at_once_post_each_event_once(tmp_path):
    home = HomePaths(tmp_path / "home")
    home.root.mkdir()
    repo = RepoPaths(tmp_path / "repo")
    hook = Hook(status=500)
    try:
        config = {"notify": {"webhook": hook.url, "timeout": 5}}
        for n in range(3):
            events.new_tick()
            events.publish(home, events.build_event(repo, "repo_halted", {"reason": f"r{n}", "halted_at": "x"},
                                                    time.time()), config)
        hook.status = 200
        script = ("import sys, time\n"
                  "from pathlib import Path\n"
                  "from autometta.observe import events\n"
                  "from autometta.paths import HomePaths\n"
                  f"print(events.retry_undelivered(HomePaths(Path({str(home.root)!r})), {config!r}, "
                  "now=time.time() + 3600))\n")
        env = dict(os.environ, PYTHONPATH=str(Path(events.__file__).parents[2]))
        procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
                 for _ in range(2)]
        counts = sorted(int(p.communicate(timeout=60)[0]) for p in procs)
        assert sum(counts) == 3  # between them, each event once
        assert sorted(b["id"] for b in hook.bodies) == sorted(e["id"] for e in events.journal(home))
        assert [e["delivery"]["webhook"] for e in events.journal(home)] == ["ok"] * 3
    finally:
        hook.close()

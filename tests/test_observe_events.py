"""Notifications: a configured command and a webhook each get every event exactly once.

Whole ticks with real git and script-family agents raise the events; a
local HTTP server on 127.0.0.1 plays the webhook.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import List

import pytest

from autometta.observe import events
from autometta.paths import HomePaths, RepoPaths
from tests.tickkit import (
    PASS_WORKER,
    await_agents,
    read_state,
    run_until_quiet,
    tick_once,
    verifier_writes,
)


class Hook:
    """A webhook receiver on 127.0.0.1 that records every JSON body POSTed to it."""

    def __init__(self, status: int = 200) -> None:
        self.bodies: List[dict] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                hook.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
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

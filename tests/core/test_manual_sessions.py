"""Runs by hand record their agent sessions (issue 19): ``dispatch``, ``verify`` and ``accept`` keep each worker
and verifier run's session in ``state/logs/<id>-oneshot.json``, always cold (``fallback: by_hand``), and ``show``
and ``status --json`` list them. Real git and the script family, which is told its session id (``AUTOMETTA_SESSION_ID``)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import uuid

import pytest

from autometta import families, manual, resume, sessions
from autometta.agents import dispatch as agent_dispatch
from tests.testing.env import ROOT
from tests.testing.repos import make_repo
from tests.testing.ticks import commit_all, script_card, verifier_writes

SID = "01-hello"
#: Each agent prints the session id it was told, and what it spent as the script family reports it.
SAYS = ("echo \"session=$AUTOMETTA_SESSION_ID continuation=${AUTOMETTA_CONTINUATION:-no}\" && "
        "echo 'autometta-usage: {\"input_tokens\": %d, \"output_tokens\": 5, \"cache_read_tokens\": 100}'")
WORKER_CMD = (SAYS % 40) + " && printf 'hello\\n' > hello.txt && printf '%s' " \
    f"'{{\"stage_id\":\"{SID}\",\"status\":\"pass\",\"deliverables\":[\"hello.txt\"],\"notes\":\"done\"}}' " \
    "> \"$AUTOMETTA_HANDOFF\""


def _told(repo, role: str) -> str:
    """The session id the agent was told, from its log."""
    found = re.findall(r"session=(\S*)", (repo / "state" / "logs" / f"{SID}-{role}.log").read_text())
    assert len(found) == 1 and found[0], found
    return found[0]


def _card(repo):
    card = script_card(repo, SID, worker_cmd=WORKER_CMD, verifier_cmd=(SAYS % 60) + " && " + verifier_writes(SID))
    commit_all(repo, "card")
    return card


@pytest.mark.parametrize("wait", [True, False])
def test_dispatch_verify_accept_record_both_sessions_and_show_lists_them(run, tmp_path, wait):
    repo = make_repo(tmp_path / "r")
    card = _card(repo)
    if wait:
        for cmd in ("dispatch", "verify"):
            res = run(cmd, str(card), "--wait")
            assert res.code == 0, res.out + res.err
    else:  # detached: verify reads the worker's end, accept the verifier's
        os.waitpid(json.loads(run("dispatch", str(card), "--json").out)["pid"], 0)
        os.waitpid(json.loads(run("verify", str(card), "--json").out)["pid"], 0)
    res = run("accept", str(card))
    assert res.code == 0 and "committed" in res.out, res.out + res.err

    worker, verifier = _told(repo, "worker"), _told(repo, "verifier")
    assert worker != verifier and all(uuid.UUID(s) for s in (worker, verifier))  # chosen up front
    record = json.loads((repo / "state" / "logs" / f"{SID}-oneshot.json").read_text())
    assert [(s["role"], s["id"], s["ended"]) for s in record["sessions"]] == [("worker", worker, True),
                                                                             ("verifier", verifier, True)]
    res = run("show", str(repo), SID, "--json")  # exit 1: no state.yaml record (a stage run by hand)
    shown = json.loads(res.out)["sessions"]
    assert [(s["role"], s["id"], s["resumed"], s["fallback"], s["family"], s["loop"]) for s in shown] == [
        ("worker", worker, False, "by_hand", "script", 1), ("verifier", verifier, False, "by_hand", "script", 1)]
    assert [(s["tokens"], s["cache_read_tokens"]) for s in shown] == [(45, 100), (65, 100)]  # cache reads apart
    assert not any("reported" in s or "ended" in s for s in shown)
    text = run("show", str(repo), SID).out
    assert f"session loop 1: {worker} new (cold: by_hand)" in text
    assert f"session loop 1: {verifier} new (cold: by_hand)" in text


def test_a_worker_dispatched_again_never_resumes_and_starts_a_new_record(run, tmp_path):
    repo = make_repo(tmp_path / "r")
    card = _card(repo)
    assert run("dispatch", str(card), "--wait").code == 0
    first = _told(repo, "worker")
    assert run("dispatch", str(card), "--wait").code == 0
    second = _told(repo, "worker")
    assert second != first
    record = json.loads((repo / "state" / "logs" / f"{SID}-oneshot.json").read_text())
    assert [(s["id"], s["resumed"], s["fallback"]) for s in record["sessions"]] == [(second, False, "by_hand")]
    assert "continuation=no" in (repo / "state" / "logs" / f"{SID}-worker.log").read_text()


def test_verifying_twice_keeps_the_workers_session_and_adds_a_verifier_run(run, tmp_path):
    repo = make_repo(tmp_path / "r")
    card = _card(repo)
    for cmd in ("dispatch", "verify", "verify"):
        assert run(cmd, str(card), "--wait").code == 0
    record = json.loads((repo / "state" / "logs" / f"{SID}-oneshot.json").read_text())
    assert [s["role"] for s in record["sessions"]] == ["worker", "verifier", "verifier"]
    assert record["sessions"][-1]["id"] == _told(repo, "verifier") != record["sessions"][1]["id"]


def test_a_session_record_changed_behind_automettas_back_is_not_listed(run, tmp_path):
    repo = make_repo(tmp_path / "r")
    card = _card(repo)
    assert run("dispatch", str(card), "--wait").code == 0
    path = repo / "state" / "logs" / f"{SID}-oneshot.json"
    doc = json.loads(path.read_text())
    doc["sessions"][0]["id"] = "forged"
    path.write_text(json.dumps(doc))  # as an agent could
    shown = json.loads(run("show", str(repo), SID, "--json").out)
    assert shown["sessions"] == [] and any("state_tampered" in p for p in shown["problems"])


def test_status_json_lists_the_sessions_by_hand_as_show_does_and_not_a_record_changed_behind_its_back(run, tmp_path):
    repo = make_repo(tmp_path / "r")
    assert run("init-host").code == 0 and run("subscribe", str(repo)).code == 0
    commit_all(repo, "subscribe")
    card = _card(repo)
    for cmd in ("dispatch", "verify"):
        assert run(cmd, str(card), "--wait").code == 0
    shown = json.loads(run("show", str(repo), SID, "--json").out)["sessions"]
    assert [s["role"] for s in shown] == ["worker", "verifier"]
    res = run("status", "--json")
    assert res.code == 0, res.err
    [row] = json.loads(res.out)["repos"]
    assert row["by_hand"] == [{"id": SID, "sessions": shown}] and row["lanes"] == []  # not the tick's
    # read without what runs stages (autometta.manual, dispatch and all they import): status stays light
    probe = ("import sys\nfrom autometta.cli import main\nassert main(['status', '--json']) == 0\n"
             "assert not {'autometta.manual', 'autometta.agents.dispatch'} & set(sys.modules)\n")
    child = subprocess.run([sys.executable, "-c", probe], cwd=str(ROOT), capture_output=True, text=True, timeout=60,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert child.returncode == 0 and f'"id": "{SID}"' in child.stdout, child.stderr

    path = repo / "state" / "logs" / f"{SID}-oneshot.json"
    doc = json.loads(path.read_text())
    doc["sessions"][0]["id"] = "forged-session-id"
    path.write_text(json.dumps(doc))  # as an agent could
    res = run("status", "--json")
    assert res.code == 0 and "forged-session-id" not in res.out
    [row] = json.loads(res.out)["repos"]
    [entry] = row["by_hand"]
    assert entry["id"] == SID and entry["sessions"] == [] and "state_tampered" in entry["problem"]


def test_a_claude_worker_started_by_hand_gets_the_session_id_recorded(run, tmp_path, monkeypatch):
    """The argv a by-hand claude worker is started with carries ``--session-id <uuid>``, the id recorded
    (the process started is ``true``: no claude runs)."""
    repo = make_repo(tmp_path / "r")
    card = script_card(repo, SID, worker="Claude Sonnet 4.6 <claude@local>")
    commit_all(repo, "card")
    started = []
    real_launch = agent_dispatch.launch

    def launch(spec):
        started.append(list(spec.argv))
        return real_launch(dataclasses.replace(spec, argv=["true"]))

    monkeypatch.setattr(agent_dispatch, "launch", launch)
    monkeypatch.setattr(manual, "preflight", lambda *a, **k: None)  # no claude login needed to build it
    shot = manual.load(str(card))
    manual.dispatch(shot, wait=True)
    [argv] = started
    chosen = argv[argv.index("--session-id") + 1]
    assert str(uuid.UUID(chosen)) == chosen and "--resume" not in argv
    [entry] = json.loads((repo / "state" / "logs" / f"{SID}-oneshot.json").read_text())["sessions"]
    assert (entry["id"], entry["family"], entry["resumed"], entry["fallback"]) == (chosen, "claude", False,
                                                                                  "by_hand")


def test_by_hand_plans_a_cold_session_whatever_ran_before(tmp_path):
    """sessions.prepare(by_hand=True): never a resume, for a worker with an earlier session too."""
    repo = make_repo(tmp_path / "r")
    card = script_card(repo, SID, worker="Claude Sonnet 4.6 <claude@local>")
    commit_all(repo, "card")
    shot = manual.load(str(card))
    before = {"role": "worker", "loop": 1, "id": str(uuid.uuid4()), "family": "claude", "model": None,
              "route": None, "resumed": False}
    stage = dict(shot.stage, sessions=[before])
    for role in ("worker", "verifier"):
        session = sessions.prepare(shot.ctx, stage, shot.card, role, by_hand=True)
        assert session is not None and session.plan == resume.by_hand() and session.plan.resume is None
    session = sessions.prepare(shot.ctx, stage, shot.card, "worker", by_hand=True)
    argv = sessions.command(families.get("claude"), session, "worker", "do it", model=session.model,
                            repo=repo, card=shot.card)
    assert argv[:4] == ["claude", "-p", "--session-id", session.new_id] and "--resume" not in argv


def test_the_records_sessions_are_the_states_shape():
    """schemas/oneshot-record.json's ``sessions`` items are state.json's (no $ref in our schema subset)."""
    from autometta import resources

    def items(name):
        doc = json.loads(resources.read_text(f"schemas/{name}.json"))
        found = []

        def walk(node):
            if isinstance(node, dict):
                if isinstance(node.get("properties"), dict) and "sessions" in node["properties"]:
                    found.append(node["properties"]["sessions"]["items"])
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)

        walk(doc)
        [one] = found
        return one

    assert items("oneshot-record") == items("state")

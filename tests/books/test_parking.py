"""Usage-limit parking with whole ticks: a limit parks its billing route for every repo on this host (the script
family is a route of its own), ticks before the reset do nothing, the next resumes."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from autometta.git import gitops
from tests.testing.ticks import (PASS_WORKER, await_agents, commit_all, read_budget, read_state,
                                 run_until_quiet, script_card, stage, tick_once, verifier_writes)

SID = "01-hello"


def parks(home):
    return json.loads((home / "parked.json").read_text())["routes"]


def test_a_usage_limit_parks_the_route_until_the_reset(run, setup, tmp_path):
    repo, home, _ = setup
    reset = int(time.time()) + 3 * 3600
    flag = tmp_path / "limited-once"
    worker = (f"if [ ! -f {flag} ]; then touch {flag}; echo 'Claude AI usage limit reached|{reset}'; exit 1; fi; "
              + PASS_WORKER.replace("{id}", SID))
    card = script_card(repo, SID, worker)
    commit_all(repo)
    assert run("add-stage", str(repo), str(card)).code == 0

    tick_once(home)  # claim + worker
    await_agents(repo)
    [outcome] = tick_once(home)
    assert "hit a usage limit" in outcome.message
    until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(reset + 60))
    park = parks(home)["script"]
    assert park["until"] == until and "usage limit reached" in park["reason"] and park["repo"] == str(repo)
    assert stage(repo, SID)["status"] == "in_progress" and stage(repo, SID)["parked_until"] == until
    assert read_state(repo).get("parked_until") is None  # the route is parked, not the repo
    assert read_budget(repo)["consecutive_failures"] == 0

    shown = run("status")  # what needs you says it, with its until and what to do (nothing)
    assert " parked" in shown.out  # the repo's status cell
    needs = shown.out.split("NEEDS YOU (1)\n", 1)[1]
    assert needs.startswith(f"  {repo.name}  script parked until {until} for every repo on this host (worker hit a "
                            "usage limit")
    assert f"met by {SID} in {repo})" in needs.splitlines()[0]
    assert needs.splitlines()[1].strip() == "-> nothing to do: it resumes by itself then; the other family keeps working"
    doc = json.loads(run("status", "--json").out)
    [item] = doc["needs_you"]
    assert doc["repos"][0]["parked_until"] == until and doc["repos"][0]["needs_you"] == [
        {k: v for k, v in item.items() if k != "name"}]
    assert (item["kind"], item["route"], item["until"], item["stage_id"], item["name"]) == (
        "parked", "script", until, SID, repo.name)
    assert json.loads(run("status", "--watch", "--once", "--json").out)["needs_you"] == [item]

    before = (repo / "state" / "state.yaml").read_text(), (repo / "state" / "budget.json").read_text()
    def nothing(*a, **k):
        raise AssertionError("a parked repo must start no process and call no git")

    monkeypatch = pytest.MonkeyPatch()  # its own: undoing it leaves the test's controller home set
    monkeypatch.setattr(gitops, "_run", nothing)
    monkeypatch.setattr(subprocess, "Popen", nothing)
    for _ in range(3):  # no retry storm: ticks before the reset do nothing
        [outcome] = tick_once(home)
        assert outcome.kind == "wait" and outcome.message.startswith(f"stage {SID} worker waits for its usage limit")
    monkeypatch.undo()
    assert ((repo / "state" / "state.yaml").read_text(), (repo / "state" / "budget.json").read_text()) == before

    [outcome] = tick_once(home, now=reset + 61)  # the first tick after the reset resumes by itself
    assert "dispatching the worker again" in outcome.message
    assert stage(repo, SID)["parked_until"] is None and stage(repo, SID)["worker_pid"]
    await_agents(repo)
    run_until_quiet(home, repo)
    assert stage(repo, SID)["status"] == "completed"
    assert read_budget(repo)["consecutive_failures"] == 0


def test_a_verifier_usage_limit_parks_and_is_not_an_attempt(run, setup, tmp_path):
    repo, home, _ = setup
    flag = tmp_path / "verifier-limited-once"
    verifier = (f"if [ ! -f {flag} ]; then touch {flag}; "
                "echo 'You\u2019ve hit your usage limit. Upgrade to Pro or try again later.'; exit 1; fi; "
                + verifier_writes(SID))
    card = script_card(repo, SID, None, verifier)
    commit_all(repo)
    assert run("add-stage", str(repo), str(card)).code == 0
    now = time.time()
    for _ in range(3):  # claim, reap + verifier, verifier limited
        tick_once(home, now=now)
        await_agents(repo)
    until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 1800))
    assert stage(repo, SID)["parked_until"] == until and parks(home)["script"]["until"] == until
    assert "verifier hit a usage limit" in parks(home)["script"]["reason"]
    [outcome] = tick_once(home, now=now + 1801)
    assert "dispatching the verifier again" in outcome.message
    assert stage(repo, SID)["verifier_attempts"] == 1
    await_agents(repo)
    run_until_quiet(home, repo)
    assert stage(repo, SID)["status"] == "completed"


# ------------------------------------------------------------------ account-wide: every repo, one family

def _fake_cli(bin_dir, name, calls, flag=None, reset=None):
    """A stand-in ``claude``/``codex`` that notes each call; with ``flag``, its first call for 01-a hits the limit."""
    limit = (f'if [ "$AUTOMETTA_STAGE_ID" = 01-a ] && [ ! -f {flag} ]; then touch {flag}; '
             f"echo 'Claude AI usage limit reached|{reset}'; exit 1; fi\n") if flag else ""
    path = bin_dir / name
    path.write_text(f"""#!/bin/sh
echo "$AUTOMETTA_STAGE_ID $AUTOMETTA_ROLE" >> {calls}
{limit}if [ "$AUTOMETTA_ROLE" = worker ]; then
  printf 'hello\\n' > hello.txt
  printf '{{"stage_id":"%s","status":"pass","deliverables":["hello.txt"],"notes":"done"}}' "$AUTOMETTA_STAGE_ID" > "$AUTOMETTA_HANDOFF"
else
  printf '{{"stage_id":"%s","verifier_identity":"x","verifier_invocation":"sh","ran_at":"2026-11-26T00:00:00Z","criteria":[{{"id":1,"name":"hello","verdict":"PASS","evidence":"hello.txt:1"}}],"additional_findings":"","overall":"PASS"}}' "$AUTOMETTA_STAGE_ID" > "$AUTOMETTA_ARTEFACT"
fi
""")
    path.chmod(0o755)


CLAUDE = "Claude Sonnet 4.6 <claude-sonnet-4-6@local>"
CODEX = "Codex GPT-5.5 <codex-gpt-5-5@local>"


def test_a_usage_limit_parks_the_family_for_every_repo_and_the_other_family_keeps_working(run, tmp_path, home_dir,
                                                                                          monkeypatch):
    import os

    from tests.testing.repos import make_repo

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    reset = int(time.time()) + 120
    _fake_cli(bin_dir, "claude", calls, flag=tmp_path / "limited", reset=reset)
    _fake_cli(bin_dir, "codex", calls)
    for name in list(os.environ):
        if name.startswith(("AUTOMETTA_", "OP_REF_", "CLAUDE_", "CODEX_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("HOME", str(tmp_path / "user-home"))
    monkeypatch.setenv("IS_SANDBOX", "1")
    assert run("init-host").code == 0
    a, b = make_repo(tmp_path / "a"), make_repo(tmp_path / "b")
    for repo in (a, b):
        assert run("subscribe", str(repo)).code == 0
        commit_all(repo, "subscribe")

    def add(repo, stage_id, worker, verifier):
        card = script_card(repo, stage_id, worker=worker, verifier=verifier, worker_budget="10 minutes",
                           verifier_budget="10 minutes")
        commit_all(repo, f"card {stage_id}")
        assert run("add-stage", str(repo), str(card)).code == 0

    def tick(now=None):
        out = tick_once(home_dir, now=now)
        await_agents(a)
        await_agents(b)
        return out

    add(a, "01-a", CLAUDE, CODEX)
    tick()  # a: claim, claude worker
    tick()  # a: the worker hit the limit: claude's subscription is parked for every repo
    until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(reset + 60))
    assert parks(home_dir)["claude subscription"]["until"] == until
    assert calls.read_text().splitlines() == ["01-a worker"]

    add(b, "01-b", CLAUDE, CODEX)  # claude works it: waits, without a call
    add(b, "02-b", CODEX, CLAUDE)  # codex works it: claimed past 01-b
    outcomes = {o.repo: o for o in tick()}
    assert "02-b" in outcomes[str(b)].message and "claimed" in outcomes[str(b)].message
    tick()  # b: the codex worker handed off; its claude verifier waits
    assert stage(b, "02-b")["status"] == "in_progress" and stage(b, "01-b")["status"] == "pending"
    assert calls.read_text().splitlines() == ["01-a worker", "02-b worker"]
    log = "".join(p.read_text() for p in (home_dir / "log").glob("tick-*.log"))
    assert "stage 02-b waits to start its verifier; claude subscription is parked until" in log

    # every view lists the park once, under the repo that met it: status, report, the dashboard
    line = f"claude subscription parked until {until} for every repo on this host (worker hit a usage limit"
    shown = run("status").out
    assert shown.count(line) == 1 and f"  a  {line}" in shown
    report = run("report").out
    assert report.count(line) == 1 and f"  a  {line}" in report
    assert run("dashboard").code == 0
    data = json.loads((home_dir / "dashboard" / "data.json").read_text())
    assert [(i["name"], i["kind"], i["route"], i["until"]) for i in data["needs_you"]] == [
        ("a", "parked", "claude subscription", until)]
    # b's own view (status --repo b) lists the park a met: it holds b too
    alone = json.loads(run("status", "--repo", str(b), "--json").out)
    assert [(i["name"], i["route"], i["repo"]) for i in alone["needs_you"]] == [
        ("(this host)", "claude subscription", str(a))]
    assert f"(this host)  {line}" in run("status", "--repo", str(b)).out

    for _ in range(8):  # after the reset every stage runs to the end, a's claude worker first
        tick(now=reset + 61)
    assert [stage(a, "01-a")["status"], stage(b, "01-b")["status"], stage(b, "02-b")["status"]] == ["completed"] * 3
    assert sorted(calls.read_text().splitlines()[2:]) == ["01-a verifier", "01-a worker", "01-b verifier",
                                                          "01-b worker", "02-b verifier"]

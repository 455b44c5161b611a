"""Usage-limit parking with whole ticks: a limit parks the repo, ticks before the reset do nothing, the next resumes."""

from __future__ import annotations

import json
import subprocess
import time


from autometta import gitops
from tests.tickkit import (PASS_WORKER, await_agents, commit_all, read_budget, read_state, run_until_quiet,
                           script_card, stage, tick_once, verifier_writes)

SID = "01-hello"


def test_a_usage_limit_parks_the_repo_until_the_reset(run, setup, tmp_path, monkeypatch):
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
    doc = read_state(repo)
    until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(reset + 60))
    assert doc["parked_until"] == until and "usage limit reached" in doc["park_reason"]
    assert stage(repo, SID)["status"] == "in_progress"
    assert read_budget(repo)["consecutive_failures"] == 0

    shown = run("status")
    assert f"parked until {until}" in shown.out and " parked" in shown.out
    assert json.loads(run("status", "--json").out)["repos"][0]["parked_until"] == until

    before = (repo / "state" / "state.yaml").read_text(), (repo / "state" / "budget.json").read_text()
    def nothing(*a, **k):
        raise AssertionError("a parked repo must start no process and call no git")

    monkeypatch.setattr(gitops, "_run", nothing)
    monkeypatch.setattr(subprocess, "Popen", nothing)
    for _ in range(3):  # no retry storm: ticks before the reset do nothing
        [outcome] = tick_once(home)
        assert outcome.kind == "wait" and outcome.message.startswith(f"parked {repo} until {until}")
    monkeypatch.undo()
    assert ((repo / "state" / "state.yaml").read_text(), (repo / "state" / "budget.json").read_text()) == before

    [outcome] = tick_once(home, now=reset + 61)  # the first tick after the reset resumes by itself
    assert "dispatching the worker again" in outcome.message
    doc = read_state(repo)
    assert doc["parked_until"] is None and doc["park_reason"] is None
    assert stage(repo, SID)["worker_pid"]
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
    doc = read_state(repo)
    assert doc["parked_until"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 1800)), doc
    assert "verifier hit a usage limit" in doc["park_reason"]
    [outcome] = tick_once(home, now=now + 1801)
    assert "dispatching the verifier again" in outcome.message
    assert stage(repo, SID)["verifier_attempts"] == 1
    await_agents(repo)
    run_until_quiet(home, repo)
    assert stage(repo, SID)["status"] == "completed"

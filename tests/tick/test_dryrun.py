"""Plan mode: ``tick --dry-run`` prints, per repo, what the next tick would do, and touches nothing."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Dict, Tuple

import pytest

from autometta import yamlsub
from autometta.git import gitops
from tests.testing.repos import make_repo
from tests.testing.ticks import await_agents, commit_all, read_state, script_card, stage, tick_once


def snapshot(*roots: Path) -> Dict[str, Tuple[int, bytes]]:
    """Every file and folder under ``roots`` (git's own files included): mode and bytes."""
    out: Dict[str, Tuple[int, bytes]] = {}
    for root in roots:
        for folder, dirs, names in os.walk(root):
            for name in dirs + names:
                path = Path(folder) / name
                st = os.lstat(path)
                data = path.read_bytes() if path.is_file() and not path.is_symlink() else b""
                out[str(path)] = (st.st_mode, data)
    return out


@pytest.fixture
def forbid():
    """``forbid()``: from now on any process started or git run fails the test; ``forbid.undo()`` ends that
    (and only that: the test's own environment, its controller home, stays)."""
    monkeypatch = pytest.MonkeyPatch()

    def refuse(*args, **kwargs):
        raise AssertionError(f"plan mode started a process: {args[:1]}")

    def install() -> None:
        for name in ("fork", "posix_spawn", "posix_spawnp", "execv", "execve", "system"):
            if hasattr(os, name):
                monkeypatch.setattr(os, name, refuse)
        monkeypatch.setattr(subprocess, "Popen", refuse)
        monkeypatch.setattr(gitops, "_run", refuse)

    install.undo = monkeypatch.undo  # type: ignore[attr-defined]
    yield install
    monkeypatch.undo()


def set_config(home: Path, **values) -> None:
    path = home / "config.yaml"
    config = yamlsub.loads(path.read_text())
    config.update(values)
    path.write_text(yamlsub.dumps(config))


def test_dry_run_alone_plans_every_repo_and_touches_nothing(setup, run, tmp_path, forbid):
    repo, home, add = setup
    add("01-hello")
    add("02-next")
    busy = make_repo(tmp_path / "busy")
    assert run("subscribe", str(busy)).code == 0
    commit_all(busy, "subscribe")
    card = script_card(busy, "05-b")
    commit_all(busy, "card")
    assert run("add-stage", str(busy), str(card)).code == 0
    tick_once(home, repo=str(busy))  # claim 05-b and start its worker
    await_agents(busy)
    idle = make_repo(tmp_path / "idle")
    assert run("subscribe", str(idle)).code == 0
    commit_all(idle, "subscribe")

    before = snapshot(repo, busy, idle, home)
    forbid()
    res = run("tick", "--dry-run")
    forbid.undo()
    assert res.code == 0, res.err
    assert snapshot(repo, busy, idle, home) == before  # byte for byte: no file, lock, log, ref or object
    out = res.out
    assert out.startswith("autometta tick --dry-run: what the next tick would do (max_per_fire 20;")
    proj = out[out.index(f"\n{repo}  [takes a turn]\n"):]
    assert f"claimed 01-hello for {repo}; dispatching worker Script Worker <script-worker@local> in its worktree" \
        in proj
    assert "    would create the worktree .autometta/worktrees/01-hello on branch autometta/01-hello" in proj
    assert ("    would start the worker for 01-hello: Script Worker <script-worker@local> (family script, "
            "no billing route, the CLI's default model)") in proj
    assert "02-next" not in proj.split(f"\n{busy}")[0]  # max_parallel 1: one claim
    assert (f"stage 05-b worker envelope status=pass, proceeding to verifier dispatch (attempt 1)\n"
            "    would book the worker's run of 05-b in the spend ledger (0 tokens") in out
    assert "    would start the verifier for 05-b: Script Checker <script-checker@local>" in out
    assert f"\n{idle}\n  idle {idle}: no pending stage" in out
    assert "error" not in out

    tick_once(home)  # the tick then does what the plan said
    assert stage(repo, "01-hello")["status"] == "in_progress" and stage(repo, "02-next")["status"] == "pending"
    assert stage(busy, "05-b")["verifier_pid"]
    await_agents(repo)
    await_agents(busy)


def test_the_plan_names_billing_route_model_and_permission(setup, run, tmp_path, monkeypatch):
    repo, home, _ = setup
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "claude").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "claude").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("IS_SANDBOX", "1")
    monkeypatch.delenv("AUTOMETTA_CLAUDE_MODE", raising=False)
    card = script_card(repo, "01-hello", worker="Claude Sonnet 4.6 <claude-sonnet-4-6@local>",
                       verifier="Codex GPT-5.5 <codex-gpt-5-5@local>")
    commit_all(repo, "card")
    assert run("add-stage", str(repo), str(card)).code == 0
    res = run("tick", "--dry-run", "--json")
    assert res.code == 0, res.err
    [plan] = json.loads(res.out)["repos"]
    assert plan["repo"] == str(repo) and plan["worked"] is True
    assert ("  would start the worker for 01-hello: Claude Sonnet 4.6 <claude-sonnet-4-6@local> (family claude, "
            "billing: claude subscription, from default, model claude-sonnet-4-6, permission acceptEdits (default))"
            ) in plan["lines"]


def test_the_plan_follows_max_per_fire_and_says_who_waits(run, tmp_path, home_dir):
    assert run("init-host").code == 0
    repos = []
    for name in ("a", "b"):
        repo = make_repo(tmp_path / name)
        assert run("subscribe", str(repo)).code == 0
        card = script_card(repo, f"01-{name}")
        commit_all(repo, "card")
        assert run("add-stage", str(repo), str(card)).code == 0
        repos.append(repo)
    set_config(home_dir, max_per_fire=1)
    out = run("tick", "--dry-run").out
    assert f"\n{repos[0]}  [takes a turn]\n  claimed 01-a" in out
    assert f"\n{repos[1]}\n  waits: max_per_fire (1) is taken by the repos above; its turn comes on a later tick" in out
    tick_once(home_dir)
    await_agents(repos[0])
    out = run("tick", "--dry-run").out  # b's turn now: a has had one
    assert f"\n{repos[1]}  [takes a turn]\n  claimed 01-b" in out and f"\n{repos[0]}\n  waits: max_per_fire" in out


def test_the_plan_says_a_lane_would_land(setup, run, forbid):
    repo, home, add = setup
    add("01-hello")
    tick_once(home)  # claim, worker
    await_agents(repo)
    tick_once(home)  # verifier
    await_agents(repo)
    before = snapshot(repo, home)
    forbid()
    out = run("tick", "--dry-run").out
    forbid.undo()
    assert snapshot(repo, home) == before
    assert "stage 01-hello PASS: committing worker output on autometta/01-hello; queued to merge" in out
    assert "    would commit 01-hello's changes on autometta/01-hello as '01-hello: Say hello'" in out
    assert "stage 01-hello merging onto" in out
    assert "    would fast-forward " in out and "to 01-hello's commit and remove its worktree and branch" in out
    assert read_state(repo)["stages"][0]["status"] == "in_progress"
    tick_once(home)
    assert stage(repo, "01-hello")["status"] == "completed"


def test_dry_run_still_goes_with_repair_and_not_with_reset_halt(setup, run):
    assert run("tick", "--repair", "--dry-run").code == 0
    assert run("tick", "--reset-halt", "--dry-run").code == 2
    assert run("tick", "--json").code == 2


def test_the_plan_says_books_changed_in_flight_would_halt_the_repo(setup, run, forbid):
    repo, home, add = setup
    add("01-hello")
    tick_once(home)  # claim, worker: a stage in flight
    await_agents(repo)
    budget = repo / "state" / "budget.json"
    budget.write_text(budget.read_text().replace('"clock_ticks_used": 1', '"clock_ticks_used": 0'))  # as an agent would
    before = snapshot(repo, home)
    forbid()
    out = run("tick", "--dry-run").out
    forbid.undo()
    assert snapshot(repo, home) == before  # the books, the changed file and its digest all as they were
    assert ("books: state/budget.json changed behind autometta's back while a stage was in flight: would set the "
            "changed file(s) aside, put back the last copies autometta wrote and halt the repo (state_tampered: "
            "state/budget.json)") in out
    [outcome] = tick_once(home)  # the tick does what the plan said
    assert outcome.kind == "halt" and "state_tampered: state/budget.json" in outcome.message

"""Billing routes in whole ticks: agents get their route's credentials, a broken route stops the stage,
and no resolved secret lands in anything the tick writes.

Stand-ins for ``claude`` and ``codex`` on PATH save the environment they were
started with and play the worker (claude) and the verifier (codex); a fake
``op`` plays 1Password.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from autometta import secrets, ticklog
from autometta.tick import loop as tick
from autometta.paths import HomePaths
from tests.testing.billing import (
    ANTHROPIC_KEY,
    OPENAI_KEY,
    codex_home,
    files_holding,
    read_env_dump,
    refs_file,
    world,  # noqa: F401 - the fixture
)
from tests.testing.ticks import git_history, run_until_quiet, stage


def tick_log(home: Path) -> str:
    return "".join(p.read_text() for p in sorted((home / "log").glob("tick-*.log")))


def test_api_routes_end_to_end_and_no_secret_in_anything_the_tick_wrote(world, tmp_path, monkeypatch):
    repo, home, reports, add = world
    sibling = codex_home(tmp_path / "codex-api")
    monkeypatch.setenv("AUTOMETTA_CLAUDE_MODE", "api")
    monkeypatch.setenv("AUTOMETTA_CODEX_MODE", "api")
    monkeypatch.setenv("AUTOMETTA_CODEX_HOME", str(sibling))
    add("01-hello")
    run_until_quiet(home, repo)
    s = stage(repo, "01-hello")
    assert (s["status"], s["stall_marker"]) == ("completed", None) and s["commit"]

    worker = read_env_dump(reports / "worker.env")
    assert worker["ANTHROPIC_API_KEY"] == ANTHROPIC_KEY
    assert "OPENAI_API_KEY" not in worker and "CODEX_HOME" not in worker
    verifier = read_env_dump(reports / "verifier.env")
    assert verifier["OPENAI_API_KEY"] == OPENAI_KEY and verifier["CODEX_HOME"] == str(sibling)
    assert "ANTHROPIC_API_KEY" not in verifier

    values = [ANTHROPIC_KEY, OPENAI_KEY]
    assert files_holding([repo, home], values) == []  # state, logs, prompts, registry, tick log, worktree
    history = git_history(repo)  # the PASS commit and the state snapshots
    assert not any(v in history for v in values)
    # the tick resolved them (and would mask them in every line it writes)
    assert secrets.redact(f"x {ANTHROPIC_KEY} {OPENAI_KEY}") == "x ****wxyz ****abcd"
    log = tick_log(home)
    assert "worker pid" in log and "started for 01-hello (billing: claude api, from env)" in log
    assert "started for 01-hello (billing: codex api, from env)" in log


def test_subscription_routes_strip_stray_keys(world):
    repo, home, reports, add = world
    add("01-hello")
    run_until_quiet(home, repo)
    assert stage(repo, "01-hello")["status"] == "completed"
    for role in ("worker", "verifier"):
        seen = read_env_dump(reports / f"{role}.env")
        assert not {"ANTHROPIC_API_KEY", "OPENAI_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN"} & set(seen), role
    assert not (reports.parent / "op-calls").exists()  # nothing fetched
    assert "started for 01-hello (billing: claude subscription, from default)" in tick_log(home)


def test_placeholder_stops_the_stage_before_the_worker_starts(world, monkeypatch):
    repo, home, reports, add = world
    monkeypatch.delenv("AUTOMETTA_LOCAL_REFS")
    monkeypatch.setenv("AUTOMETTA_CLAUDE_MODE", "api")
    add("01-hello")
    kinds = run_until_quiet(home, repo)
    s = stage(repo, "01-hello")
    assert kinds[0] == "stalled" and s["status"] == "stalled" and not s.get("worker_pid")
    assert s["stall_marker"].startswith("auth_route_failed: claude api mode: OP_REF_ANTHROPIC_API_KEY is still "
                                        "the placeholder op://YOUR_VAULT/anthropic-api-key/credential")
    assert not (reports / "worker.env").exists()
    assert "stage 01-hello cannot start: auth_route_failed: claude api mode" in tick_log(home)


def test_unresolvable_reference_stops_the_stage_at_launch(world, tmp_path, monkeypatch):
    repo, home, reports, add = world
    refs_file(tmp_path / "refs.sh", OP_REF_ANTHROPIC_API_KEY="op://Private/Gone/credential")
    monkeypatch.setenv("AUTOMETTA_CLAUDE_MODE", "api")
    add("01-hello")
    run_until_quiet(home, repo)
    s = stage(repo, "01-hello")
    assert s["status"] == "stalled" and not s.get("worker_pid")
    assert s["stall_marker"].startswith("auth_route_failed: claude api mode: could not resolve "
                                        "op://Private/Gone/credential (OP_REF_ANTHROPIC_API_KEY): `op read` exited 1")
    assert not (reports / "worker.env").exists()
    assert "could not start the worker for 01-hello: auth_route_failed: " in tick_log(home)


@pytest.mark.parametrize("mode", [None, "chatgpt"])
def test_codex_verifier_refused_without_an_api_key_home(world, tmp_path, monkeypatch, mode):
    repo, home, reports, add = world
    sibling = codex_home(tmp_path / "codex-api", mode=mode)
    monkeypatch.setenv("AUTOMETTA_CODEX_MODE", "api")
    monkeypatch.setenv("AUTOMETTA_CODEX_HOME", str(sibling))
    add("01-hello")
    run_until_quiet(home, repo)
    s = stage(repo, "01-hello")
    assert (reports / "worker.env").exists() and not (reports / "verifier.env").exists()
    assert s["status"] == "stalled"
    assert s["stall_marker"].startswith(f"auth_route_failed: codex api mode needs CODEX_HOME {sibling} "
                                        "logged in with an API key")
    assert "codex login --with-api-key" in tick_log(home)


def test_tick_log_masks_a_resolved_secret(tmp_path):
    secrets.forget()
    secrets.register(ANTHROPIC_KEY)
    try:
        ticklog.TickLog(HomePaths(tmp_path), echo=False)(f"oops {ANTHROPIC_KEY}")
    finally:
        secrets.forget()
    text = "".join(p.read_text() for p in (tmp_path / "log").glob("tick-*.log"))
    assert text.endswith(" oops ****wxyz\n") and ANTHROPIC_KEY not in text

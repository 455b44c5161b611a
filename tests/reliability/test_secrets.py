"""Secrets and file modes after a full api-mode run (fake ``op``, stand-in claude and codex)."""

from __future__ import annotations

import os
import stat
from pathlib import Path


from tests.authkit import ANTHROPIC_KEY, OPENAI_KEY, codex_home, files_holding
from tests.test_auth_tick import git_history, world  # noqa: F401  (the fixture)
from tests.tickkit import run_until_quiet, stage


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def _api_run(world, tmp_path, monkeypatch):  # noqa: F811
    repo, home, reports, add = world
    monkeypatch.setenv("AUTOMETTA_CLAUDE_MODE", "api")
    monkeypatch.setenv("AUTOMETTA_CODEX_MODE", "api")
    monkeypatch.setenv("AUTOMETTA_CODEX_HOME", str(codex_home(tmp_path / "codex-api")))
    add("01-hello")
    run_until_quiet(home, repo)
    assert stage(repo, "01-hello")["status"] == "completed"
    return repo, home


def test_no_secret_anywhere_and_state_is_private(world, tmp_path, monkeypatch):  # noqa: F811
    repo, home = _api_run(world, tmp_path, monkeypatch)
    values = [ANTHROPIC_KEY, OPENAI_KEY]
    assert files_holding([repo, home], values) == []
    assert not any(v in git_history(repo) for v in values)
    state = repo / "state"
    loose = []
    for folder in (state, state / "logs", state / "verifiers", state / "handoffs", home / "log"):
        if _mode(folder) & 0o077:
            loose.append(f"{folder} {oct(_mode(folder))}")
    # files the product writes; envelopes and verdicts are the agents' own, private by their 0700 folders
    for path in [state / "state.yaml", state / "state.yaml.bak", state / "budget.json",
                 *sorted((state / "logs").iterdir())]:
        if path.exists() and _mode(path) & 0o077:
            loose.append(f"{path} {oct(_mode(path))}")
    assert loose == []


def test_controller_logs_are_private(world, tmp_path, monkeypatch):  # noqa: F811
    _repo, home = _api_run(world, tmp_path, monkeypatch)
    loose = [f"{p} {oct(_mode(p))}" for p in sorted((home / "log").iterdir()) if _mode(p) & 0o077]
    assert loose == []

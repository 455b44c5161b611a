"""The checkout the tests run from, and an environment kept apart from the real home and git config."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def isolate_env(monkeypatch, root: Path) -> None:
    """The controller home, git config and per-user state under ``root``, not the real ones."""
    monkeypatch.setenv("PHAT_CONTROLLER_HOME", str(root / "controller-home"))
    monkeypatch.setenv("XDG_STATE_HOME", str(root / "xdg-state"))  # the pyz build ledger
    monkeypatch.setenv("XDG_CACHE_HOME", str(root / "xdg-cache"))  # the pyz's bytecode cache
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(root / "gitconfig"))
    for key, value in (("GIT_AUTHOR_NAME", "Test Human"), ("GIT_AUTHOR_EMAIL", "human@example.com"),
                       ("GIT_COMMITTER_NAME", "Test Human"), ("GIT_COMMITTER_EMAIL", "human@example.com")):
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AUTOMETTA_DEBUG", raising=False)

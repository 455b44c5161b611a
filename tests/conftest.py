"""Shared fixtures: a private controller home, scratch git repos, a CLI runner."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from autometta import cli  # noqa: E402

CARD = """\
# Stage card {stage_id}: {title}

## Metadata
- **Authored:** 2026-11-26
- **Orchestrator:** Human <me@example.com>
- **Worker:** {worker}
- **Verifier:** {verifier}
- **Verifier panel:** false
- **Pairing rationale:** cross-family by default

## Objective
Make the thing.

## Inputs (read these in your own context)
- `README.md`

## Deliverables
- `out/{stage_id}.txt`

## Acceptance criteria
1. The file exists.

## Budget
- Worker wall-clock: 10 minutes
- Verifier wall-clock: 5 minutes
"""


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


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path, monkeypatch):
    """No test reads or writes the real ~/.phat-controller or git config."""
    isolate_env(monkeypatch, tmp_path)


@pytest.fixture
def home_dir(tmp_path) -> Path:
    return tmp_path / "controller-home"


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def run(capsys):
    """Run the CLI in-process: ``run("status", "--json")`` -> Result."""

    def _run(*args: str) -> Result:
        capsys.readouterr()
        try:
            code = cli.main(list(args))
        except SystemExit as exc:  # argparse usage errors and --help
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        err = captured.err
        if code == 3 and "; details in " in err:  # a bug (autometta/crash.py): its traceback, for the failing test
            crash_log = Path(err.rsplit("; details in ", 1)[1].split()[0])
            err += crash_log.read_text() if crash_log.is_file() else ""
        return Result(code, captured.out, err)

    return _run


def run_process(*args: str, cwd: Optional[Path] = None, env: Optional[dict] = None) -> Result:
    """Run ``python -m autometta`` in a child process, for real exit codes and streams."""
    import os

    proc = subprocess.run([sys.executable, "-m", "autometta", *args], cwd=str(cwd or ROOT),
                          env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
                          capture_output=True, text=True, timeout=60)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def make_repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    (path / "README.md").write_text("hello\n")
    subprocess.run(["git", "-C", str(path), "add", "."], check=True)
    subprocess.run(["git", "-C", str(path), "commit", "-qm", "init"], check=True)
    return path


@pytest.fixture
def repo(tmp_path) -> Path:
    return make_repo(tmp_path / "myrepo")


def write_card(repo: Path, stage_id: str, *, title: str = "Do a thing",
               worker: str = "Claude Sonnet 4.6 <claude-sonnet-4-6@local>",
               verifier: str = "Codex GPT-5.5 <codex-gpt-5-5@local>",
               folder: str = "docs/stages", text: Optional[str] = None) -> Path:
    card = repo / folder / f"{stage_id}.md"
    card.parent.mkdir(parents=True, exist_ok=True)
    card.write_text(text if text is not None else
                    CARD.format(stage_id=stage_id, title=title, worker=worker, verifier=verifier))
    return card


@pytest.fixture
def setup(run, tmp_path, home_dir):
    """(repo, home, add): a subscribed repo; ``add(id, ...)`` writes, commits and queues a script card."""
    from tests.tickkit import commit_all, script_card

    repo = make_repo(tmp_path / "proj")
    assert run("init-host").code == 0
    assert run("subscribe", str(repo)).code == 0
    commit_all(repo, "subscribe")

    def add(stage_id, *args, **kw):
        card = script_card(repo, stage_id, *args, **kw)
        commit_all(repo, f"card {stage_id}")
        res = run("add-stage", str(repo), str(card))
        assert res.code == 0, res.err
        return card

    return repo, home_dir, add

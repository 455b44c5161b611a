"""Shared fixtures: a private controller home, scratch git repos, a CLI runner.

Plain helpers (make_repo, write_card, run_process, ...) are in tests/testing/."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.testing.cli import Result
from tests.testing.env import ROOT, isolate_env
from tests.testing.repos import make_repo

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from autometta import cli  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path, monkeypatch):
    """No test reads or writes the real ~/.phat-controller or git config."""
    isolate_env(monkeypatch, tmp_path)


@pytest.fixture
def home_dir(tmp_path) -> Path:
    return tmp_path / "controller-home"


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


@pytest.fixture
def repo(tmp_path) -> Path:
    return make_repo(tmp_path / "myrepo")


@pytest.fixture
def setup(run, tmp_path, home_dir):
    """(repo, home, add): a subscribed repo; ``add(id, ...)`` writes, commits and queues a script card."""
    from tests.testing.ticks import commit_all, script_card

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

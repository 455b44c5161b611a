"""The books' copies in the controller home never hold a secret, and a masked copy still restores cleanly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autometta import secrets
from autometta.books import digests
from autometta.paths import RepoPaths

KEY = "hunter2-books-shapeless-9999-wxyz"


@pytest.fixture
def repo(tmp_path, monkeypatch):
    monkeypatch.setenv("PHAT_CONTROLLER_HOME", str(tmp_path / "home"))
    root = tmp_path / "proj"
    (root / "state" / "verifiers").mkdir(parents=True)
    secrets.forget()
    secrets.register(KEY)
    yield RepoPaths(root)
    secrets.forget()


def test_a_verdict_quoting_a_key_is_kept_masked_and_put_back_masked(repo, tmp_path):
    verdict = repo.root / "state" / "verifiers" / "01-a.json"
    digests.write_text(repo, verdict, json.dumps({"headline": f"all good, {KEY}"}))
    state_text = "version: 1\ncurrent_stage: 01-a\nstages:\n  - id: 01-a\n    status: in_progress\n"
    digests.write_files(repo, [(repo.state_yaml, state_text)], in_flight=["01-a"])
    record = next((tmp_path / "home" / "books").glob("*.json"))
    assert KEY not in record.read_text() and "****wxyz" in record.read_text()

    verdict.write_text('{"headline": "forged"}')  # an agent rewrites it while 01-a is in flight
    lines = []
    found = digests.audit(repo, lines.append)
    assert found.tampered == ["state/verifiers/01-a.json"]
    assert json.loads(verdict.read_text()) == {"headline": "all good, ****wxyz"}
    assert KEY not in record.read_text()
    again = digests.audit(repo, lines.append)  # what was put back is recorded as autometta's
    assert again.tampered == [] and again.accepted == []

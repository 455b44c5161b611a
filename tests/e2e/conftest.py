"""The real agent CLIs, shared by every e2e test (skipped with a reason when unavailable)."""

from __future__ import annotations

import os
from typing import Dict

import pytest

from tests.testing.agent_clis import ensure_clis, unavailable_reason


@pytest.fixture(scope="session")
def clis() -> Dict[str, str]:
    if os.environ.get("AUTOMETTA_SKIP_E2E") == "1":
        pytest.skip("AUTOMETTA_SKIP_E2E=1")
    found = ensure_clis()
    if found is None:
        pytest.skip(f"real agent CLIs unavailable: {unavailable_reason()}")
    return found


@pytest.fixture(autouse=True)
def _agent_tmpdir(tmp_path, monkeypatch):
    """A TMPDIR of the test's own, beside the agents' homes (not around them).

    codex uses bubblewrap when it is installed and then needs its
    ``codex-linux-sandbox`` helper, which it refuses to create under a home
    inside the temporary directory; pytest's tmp_path is inside /tmp.
    """
    tmp = tmp_path / "tmp"
    tmp.mkdir(exist_ok=True)
    monkeypatch.setenv("TMPDIR", str(tmp))

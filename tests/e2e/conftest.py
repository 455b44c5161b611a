"""The real agent CLIs, shared by every e2e test (skipped with a reason when unavailable)."""

from __future__ import annotations

import os
from typing import Dict

import pytest

from tests.support.agent_clis import ensure_clis, unavailable_reason


@pytest.fixture(scope="session")
def clis() -> Dict[str, str]:
    if os.environ.get("AUTOMETTA_SKIP_E2E") == "1":
        pytest.skip("AUTOMETTA_SKIP_E2E=1")
    found = ensure_clis()
    if found is None:
        pytest.skip(f"real agent CLIs unavailable: {unavailable_reason()}")
    return found

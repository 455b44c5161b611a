"""The built pyz for tests that run it as a user would (``python3 autometta.pyz ...``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def pyz(tmp_path_factory) -> Path:
    """``build_pyz.py`` run on this checkout, once per test session (not noted in the build ledger)."""
    out = tmp_path_factory.mktemp("pyz") / "autometta.pyz"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    built = subprocess.run([sys.executable, str(ROOT / "build_pyz.py"), "--output", str(out), "--no-source"],
                           cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr
    return out

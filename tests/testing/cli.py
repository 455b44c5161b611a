"""autometta's CLI as a user runs it: the result of a run, and a run in a child process."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from tests.testing.env import ROOT


@dataclass
class Result:
    code: int
    out: str
    err: str


def run_process(*args: str, cwd: Optional[Path] = None, env: Optional[dict] = None) -> Result:
    """Run ``python -m autometta`` in a child process, for real exit codes and streams."""
    proc = subprocess.run([sys.executable, "-m", "autometta", *args], cwd=str(cwd or ROOT),
                          env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
                          capture_output=True, text=True, timeout=60)
    return Result(proc.returncode, proc.stdout, proc.stderr)

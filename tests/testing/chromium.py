"""Headless Chromium, where installed (tests/run.sh installs Debian's), to render the pages autometta writes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Dict, Optional

import pytest


def chromium() -> Optional[str]:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


needs_chromium = pytest.mark.skipif(chromium() is None,
                                    reason="Chromium is not installed (tests/run.sh installs Debian's chromium)")


#: Flags of every headless run: no GPU, no network chatter, console messages on stderr.
HEADLESS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
            "--enable-logging=stderr", "--v=0"]


def dom(url: str, profile: Path) -> str:
    """The page at ``url`` after its scripts ran (``--dump-dom``), asserting it logged nothing to the console
    (no script error, no blocked asset)."""
    res = subprocess.run([str(chromium()), *HEADLESS, f"--user-data-dir={profile}", "--dump-dom", url],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    console = [line for line in res.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
    assert console == [], console
    return res.stdout


def screenshot(url: str, path: Path, profile: Path, size: str = "1280,1400", min_bytes: int = 10_000,
               env: Optional[Dict[str, str]] = None) -> Path:
    """A PNG of the page at ``url`` in a ``size`` window, asserted to be one (and not a blank one)."""
    res = subprocess.run([str(chromium()), *HEADLESS, f"--user-data-dir={profile}", "--hide-scrollbars",
                          f"--window-size={size}", f"--screenshot={path}", url],
                         capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > min_bytes
    return path

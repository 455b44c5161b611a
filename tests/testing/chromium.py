"""Headless Chromium, where installed (tests/run.sh installs Debian's), to render the pages autometta writes."""

from __future__ import annotations

import shutil
from typing import Optional

import pytest


def chromium() -> Optional[str]:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


needs_chromium = pytest.mark.skipif(chromium() is None,
                                    reason="Chromium is not installed (tests/run.sh installs Debian's chromium)")

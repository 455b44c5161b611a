"""The runtime is the standard library only, and every module compiles on 3.9."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "autometta"

# sys.stdlib_module_names exists from 3.10; on 3.9 this test runs on the newer interpreters in CI.
STDLIB = set(getattr(sys, "stdlib_module_names", ())) | {"__future__"}


def _imports(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


@pytest.mark.skipif(not hasattr(sys, "stdlib_module_names"), reason="needs sys.stdlib_module_names (Python 3.10+)")
def test_no_third_party_imports():
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for lineno, module in _imports(path):
            top = module.split(".")[0]
            if top not in STDLIB and top != "autometta":
                bad.append(f"{path.relative_to(PACKAGE.parent)}:{lineno}: {module}")
    assert bad == []


def test_every_module_uses_postponed_annotations():
    """3.9 cannot evaluate ``X | None`` at runtime; the future import keeps hints safe."""
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        code = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        if len(code) > 3 and "from __future__ import annotations" not in text:
            missing.append(str(path.relative_to(PACKAGE.parent)))
    assert missing == []

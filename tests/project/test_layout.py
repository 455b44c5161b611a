"""The tests mirror the package: a newcomer finds the test of a module from its path.

autometta/<pkg>/<mod>.py is tested in tests/<pkg>/test_<mod>[_<aspect>].py, a top-level
autometta/<mod>.py in tests/core/; tests/project/ checks the project as a whole; tests/reliability/
and tests/e2e/ are the fault and real-CLI suites. What tests share is a fixture in a conftest.py or a
helper in tests/testing/, never an import of a conftest or of another test module (the e2e
tests share their own). (/work/team/tests18_move.py moved them.)
"""

from __future__ import annotations

import ast

from tests.testing.env import ROOT

TESTS = ROOT / "tests"
OWN = {"core", "project", "reliability", "e2e", "testing", "data"}  # folders that mirror no subpackage


def test_no_test_module_lies_flat_in_tests():
    flat = sorted(p.name for p in TESTS.glob("*.py") if p.name not in ("__init__.py", "conftest.py"))
    assert flat == [], "put them in the folder of the module they test (tests/<pkg>/ or tests/core/), " \
                       "helpers in tests/testing/"


def test_every_test_folder_mirrors_a_subpackage_and_is_a_package():
    for folder in sorted(p for p in TESTS.iterdir() if p.is_dir() and p.name != "__pycache__"):
        if folder.name not in OWN:
            assert (ROOT / "autometta" / folder.name / "__init__.py").is_file(), \
                f"tests/{folder.name}/ mirrors no package of autometta/"
        if folder.name != "data":
            # basenames repeat across folders (tests/verify/test_tick.py): each is a package of its own
            assert (folder / "__init__.py").is_file(), f"tests/{folder.name}/ needs an __init__.py"


def test_no_module_imports_a_conftest_or_another_test_module():
    bad = []
    for path in sorted(TESTS.rglob("*.py")):
        folder = path.relative_to(TESTS).parts[0]
        if folder == "data":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            names = ([node.module or ""] if isinstance(node, ast.ImportFrom)
                     else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            for name in names:
                last = name.split(".")[-1]
                if last == "conftest" or (last.startswith("test_") and not name.startswith("tests.e2e.")):
                    bad.append(f"{path.relative_to(ROOT)}:{node.lineno}: {name}")
    assert bad == [], "fixtures come from conftest.py by themselves; what tests share lives in tests/testing/"

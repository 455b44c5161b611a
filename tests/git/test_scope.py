"""Scope and protected paths (autometta.git.scope): the pure rules, the card bullet, the lint."""

from __future__ import annotations

import pytest

from autometta import cardlint
from autometta.card import parse_card_text
from autometta.git import scope

CARD = "docs/stages/01-a.md"


def rules(deliverables=("src/app.py",), may=(), acceptance=()):
    return scope.Rules(card=CARD, deliverables=tuple(deliverables), may_also_change=tuple(may),
                       acceptance_files=tuple(acceptance))


# ------------------------------------------------------------------ globs

@pytest.mark.parametrize("path, pattern, expected", [
    ("src/app.py", "src/app.py", True),
    ("src/app.py", "src/app.pyc", False),
    ("src/app.py", "src", True),  # a folder covers what is in it
    ("src/app.py", "src/", True),
    ("srcx/app.py", "src", False),
    ("src/app.py", "src/*.py", True),
    ("src/pkg/app.py", "src/*.py", False),  # * stays in one segment
    ("src/pkg/app.py", "src/*", True),  # ... but a folder it names covers its files
    ("src/pkg/app.py", "src/**/*.py", True),
    ("src/app.py", "src/**/*.py", True),  # ** is zero or more segments
    ("a/b/c/d.lock", "**/*.lock", True),
    ("d.lock", "**/*.lock", True),
    ("docs/a.md", "docs/**", True),
    ("docs", "docs/**", False),
    ("x/__pycache__/m.cpython-311.pyc", "**/__pycache__/**", True),
    ("file1.txt", "file?.txt", True),
    ("file10.txt", "file?.txt", False),
    ("a.txt", "[ab].txt", True),
    ("c.txt", "[!ab].txt", True),
    ("a.txt", "[!ab].txt", False),
    ("a.txt", "/abs/a.txt", False),
    ("a.txt", "../a.txt", False),
    ("a.txt", "./a.txt", True),
    ("a+b(1).txt", "a+b(1).txt", True),
])
def test_matches(path, pattern, expected):
    assert scope.matches(path, pattern) is expected


# ------------------------------------------------------------------ what is protected

@pytest.mark.parametrize("path, expected", [
    ("tests/test_app.py", True), ("test/x.js", True), ("pkg/tests/data.json", True),
    ("src/__tests__/App.jsx", True), ("testdata/golden.txt", True),
    ("test_app.py", True), ("app_test.py", True), ("conftest.py", True), ("pkg/app_test.go", True),
    ("web/app.test.ts", True), ("web/app.spec.js", True), ("lib/app_spec.rb", True),
    ("src/AppTest.java", True), ("scripts/test_install.sh", True), ("t/basic.bats", True),
    ("src/app.py", False), ("docs/testing.md", False), ("latest/app.py", False), ("contest.py", False),
    ("docs/spec/format.md", False), ("tests.md", False), ("test", False),
    ("tests/__pycache__/test_app.cpython-311.pyc", False),  # a cache, not a test (still out of scope)
])
def test_is_test_file(path, expected):
    assert scope.is_test_file(path) is expected


@pytest.mark.parametrize("path, expected", [
    (".github/workflows/ci.yml", True), (".github/actions/setup/action.yml", True), (".gitlab-ci.yml", True),
    (".ci/run", True), (".circleci/config.yml", True), ("Jenkinsfile", True), ("build/Jenkinsfile", True),
    (".travis.yml", True), ("azure-pipelines.yml", True), (".buildkite/pipeline.yml", True),
    (".github/CODEOWNERS", False), ("ci.md", False), ("src/ci/run.py", False),
])
def test_is_ci_config(path, expected):
    assert scope.is_ci_config(path) is expected


@pytest.mark.parametrize("command, expected", [
    (None, []),
    ("make test", ["Makefile", "makefile", "GNUmakefile", "make", "test"]),
    ("sh ./scripts/check.sh && python3 -m pytest -q tests/test_x.py::test_y --cov=src",
     ["sh", "scripts/check.sh", "python3", "pytest", "tests/test_x.py", "src"]),
    ("bash -c 'cd web && npm test'", ["bash", "cd", "web", "npm", "test"]),
    ("test -s demo/numbers.txt", ["test", "demo/numbers.txt"]),
    ("printf 'one two\\nthree\\n' | python3 wordcount.py | grep -qx '2 3'",
     ["printf", "one two\\nthree\\n", "python3", "wordcount.py", "grep", "2 3"]),
    ("FOO=1 ./run.sh > out.log 2>&1 && cat <in.txt >>all.log", ["1", "run.sh", "cat", "in.txt"]),
    ("python3 -m unittest discover -s tests -v", ["python3", "unittest", "discover", "tests"]),
    ("cat /etc/passwd ../outside", ["cat"]),
    ("unbalanced 'quote", ["unbalanced", "'quote"]),
])
def test_command_paths(command, expected):
    assert [p for p in scope.command_paths(command) if p not in ("-c",)] == expected


# ------------------------------------------------------------------ classify: the table

CASES = [
    # (what changed, rules, protected, out of scope)
    (["src/app.py"], rules(), [], []),
    ([], rules(), [], []),
    (["src/app.py", "README.md"], rules(), [], ["README.md"]),
    (["README.md"], rules(may=["*.md"]), [], []),
    (["docs/a/b.md"], rules(may=["*.md"]), [], ["docs/a/b.md"]),
    (["docs/a/b.md"], rules(may=["docs/**"]), [], []),
    (["src/app.py", "src/util.py"], rules(deliverables=["src/"]), [], []),
    # the card itself: always protected, whatever the card says
    ([CARD], rules(), [CARD], []),
    ([CARD], rules(deliverables=[CARD]), [CARD], []),
    ([CARD], rules(may=["**"]), [CARD], []),
    # tests the card does not name, even under a glob that allows them
    (["tests/test_app.py"], rules(), ["tests/test_app.py"], []),
    (["tests/test_app.py"], rules(may=["tests/**"]), ["tests/test_app.py"], []),
    (["tests/test_app.py"], rules(deliverables=["tests/"]), ["tests/test_app.py"], []),
    (["tests/test_app.py"], rules(deliverables=["src/app.py", "tests/test_app.py"]), [], []),
    (["tests/test_new.py"], rules(may=["tests/test_new.py"]), [], []),  # named exactly: asked for
    # CI configuration
    ([".github/workflows/ci.yml"], rules(may=["**"]), [".github/workflows/ci.yml"], []),
    ([".github/workflows/ci.yml"], rules(deliverables=[".github/workflows/ci.yml"]), [], []),
    # the acceptance command's own files (and folders), even when a glob allows them
    (["scripts/check.sh"], rules(may=["scripts/**"], acceptance=["scripts/check.sh"]), ["scripts/check.sh"], []),
    (["checks/new.sh"], rules(may=["**"], acceptance=["checks/"]), ["checks/new.sh"], []),
    (["scripts/check.sh"], rules(deliverables=["scripts/check.sh"], acceptance=["scripts/check.sh"]), [], []),
    (["Makefile"], rules(acceptance=["Makefile"]), ["Makefile"], []),
    # both kinds: each listed under its own
    (["src/app.py", "notes.md", "tests/test_app.py"], rules(), ["tests/test_app.py"], ["notes.md"]),
    # a cache written by running the tests is out of scope, not a test
    (["tests/__pycache__/t.cpython-311.pyc"], rules(), [], ["tests/__pycache__/t.cpython-311.pyc"]),
    (["tests/__pycache__/t.cpython-311.pyc"], rules(may=["**/__pycache__/**"]), [], []),
]


@pytest.mark.parametrize("changed, rule, protected, out_of_scope", CASES)
def test_classify(changed, rule, protected, out_of_scope):
    found = scope.classify(changed, rule)
    assert (found.protected, found.out_of_scope) == (protected, out_of_scope)
    assert found.ok is (not protected and not out_of_scope)


def test_the_marker_names_the_worse_kind_and_the_files():
    found = scope.classify(["b.md", "tests/t.py", "a.md"], rules())
    assert found.marker == scope.PROTECTED_MARKER
    assert found.text() == "protected_path_changed: tests/t.py"
    found = scope.classify([f"f{i}.md" for i in range(8)], rules())
    assert found.text() == "out_of_scope_change: f0.md, f1.md, f2.md, f3.md, f4.md and 3 more"
    assert scope.classify(["src/app.py"], rules()).text() is None


def test_protected_kind_says_why():
    r = rules(acceptance=["run.sh"])
    assert [scope.protected_kind(p, r) for p in (CARD, "run.sh", ".gitlab-ci.yml", "tests/a.py", "src/a.py")] \
        == ["card", "acceptance command", "CI config", "test", None]


# ------------------------------------------------------------------ the card bullet and the lint

TEXT = """\
# Stage card 01-a: Add the app

## Metadata
- **Worker:** Claude Sonnet 4.6 <claude-sonnet-4-6@local>
- **Verifier:** Codex GPT-5.5 <codex-gpt-5-5@local>
- **Acceptance command:** `sh check.sh`

## Objective
Add it.

## Inputs
- `README.md`

## Deliverables
- `src/app.py`
{extra}

## Constraints
None.

## Acceptance criteria
1. It works.

## Out of scope
Nothing else.

## Budget
- Worker wall-clock: 10 minutes
- Verifier wall-clock: 5 minutes
"""


def card(extra=""):
    return parse_card_text(TEXT.format(extra=extra), "docs/stages/01-a.md")


def test_the_bullet_is_read_and_its_globs_are_not_deliverables():
    c = card("- **May also change:** `docs/**`, `*.lock` (lock files the tools rewrite)")
    assert c.may_also_change == ["docs/**", "*.lock"]
    assert c.deliverables == ["src/app.py"]
    assert card().may_also_change == []
    assert card("- **May also change:** docs/**, *.lock").may_also_change == ["docs/**", "*.lock"]


def lint(tmp_path, extra="", files=()):
    (tmp_path / "README.md").write_text("x\n")
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x\n")
    path = tmp_path / "docs" / "stages" / "01-a.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(TEXT.format(extra=extra))
    return [(f.rule, f.severity, f.message) for f in cardlint.lint_card(path, tmp_path) if f.rule == "scope"]


def test_lint_knows_the_bullet(tmp_path):
    assert lint(tmp_path, "- **May also change:** `docs/**`") == []
    [(rule, severity, message)] = lint(tmp_path, "- **May also change:** `/etc/passwd`")
    assert severity == cardlint.ERROR and "absolute or leaves the repo" in message
    [(_, severity, message)] = lint(tmp_path, "- **May also change:** `../x/**`")
    assert severity == cardlint.ERROR
    [(_, severity, message)] = lint(tmp_path, "- **May also change:** `**`")
    assert severity == cardlint.WARNING and "allows every file" in message
    [(_, severity, message)] = lint(tmp_path, "- **May also change:**")
    assert severity == cardlint.ERROR and "lists nothing" in message


def test_lint_warns_when_a_deliverable_is_the_acceptance_commands_own_file(tmp_path):
    [(_, severity, message)] = lint(tmp_path, "- `check.sh`", files=["check.sh"])
    assert severity == cardlint.WARNING and "change the check that judges it" in message
    (tmp_path / "fresh").mkdir()
    assert lint(tmp_path / "fresh", "- `check.sh`") == []  # not there yet: the stage writes it


def test_scope_is_a_listed_rule():
    assert "scope" in cardlint.RULES


# ------------------------------------------------------------------ the shipped cards

def test_the_example_backlog_lands_inside_its_scope(tmp_path):
    """Each examples/agents card, in a repo set up as examples/README.md says, with the work it asks for."""
    from autometta.repo import RepoContext
    from autometta.paths import HomePaths, RepoPaths
    from autometta import card as cards
    from autometta.git import scopegate
    from tests.testing.env import ROOT
    from tests.testing.repos import make_repo
    from tests.testing.ticks import commit_all

    repo = make_repo(tmp_path / "wc")
    (repo / ".gitignore").write_text("__pycache__/\n")
    stages = repo / "docs" / "stages"
    stages.mkdir(parents=True)
    for card in (ROOT / "examples" / "agents").glob("*.md"):
        (stages / card.name).write_text(card.read_text())
    commit_all(repo, "wordcount backlog")
    ctx = RepoContext(paths=RepoPaths(repo), home=HomePaths(tmp_path / "home"), config={}, manifest={})
    work = {
        "01-wordcount-cli": {"wordcount.py": "import sys\n"},
        "02-wordcount-tests": {"tests/test_wordcount.py": "import unittest\n"},
        "03-wordcount-docs": {"README.md": "hello\n\n## Word count\n"},
    }
    for stage_id, written in sorted(work.items()):
        for name, text in written.items():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            (repo / name).write_text(text)
        for cache in ("__pycache__/wordcount.cpython-311.pyc", "tests/__pycache__/t.cpython-311.pyc"):
            (repo / cache).parent.mkdir(parents=True, exist_ok=True)  # what running the tests leaves
            (repo / cache).write_bytes(b"\0")
        card = cards.parse_card(stages / f"{stage_id}.md")
        found = scopegate.finding(ctx, {"id": stage_id}, card)
        assert found.ok, (stage_id, found)
        commit_all(repo, stage_id)
    # and a stray edit would have been caught
    (repo / "wordcount.py").write_text("import os\n")
    found = scopegate.finding(ctx, {"id": "03-wordcount-docs"}, cards.parse_card(stages / "03-wordcount-docs.md"))
    assert found.text() == "out_of_scope_change: wordcount.py"

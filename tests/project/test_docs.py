"""The docs cannot rot: their runnable examples run, and every marker the code can write is explained.

A fenced block whose info string is ``sh runnable`` is run: each page's
blocks in order, in one ``bash -euo pipefail`` process, in an empty folder,
with a scratch ``HOME`` and ``autometta`` on ``PATH`` (this checkout, or the
pyz named by ``AUTOMETTA_DOCS_PYZ``). Every block must finish with exit 0.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List, Set

import pytest

from autometta import cardlint, families
from autometta.agents.roles import ROLES
from autometta.books import budget, state

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
_FENCE_RE = re.compile(r"^```sh runnable[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)


def runnable_blocks(page: Path) -> List[str]:
    return [match.group(1) for match in _FENCE_RE.finditer(page.read_text())]


PAGES = sorted(p for p in DOCS.glob("*.md") if runnable_blocks(p))


def test_the_docs_have_runnable_examples():
    names = {p.name for p in PAGES}
    assert {"dispatch-contract.md", "setup.md", "stage-cards.md"} <= names


def _shim(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shim = folder / "autometta"
    pyz = os.environ.get("AUTOMETTA_DOCS_PYZ")
    if pyz:
        body = f'exec "{sys.executable}" "{pyz}" "$@"\n'
    else:
        body = f'PYTHONPATH="{ROOT}" exec "{sys.executable}" -m autometta "$@"\n'
    shim.write_text("#!/bin/sh\n" + body)
    shim.chmod(0o755)
    return folder


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_runnable_examples_exit_zero(page, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    home = tmp_path / "home"
    home.mkdir()
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("AUTOMETTA_", "PHAT_CONTROLLER_", "CLAUDE_", "CODEX_", "PYTHON"))}
    env.update(HOME=str(home), PATH=f"{_shim(tmp_path / 'bin')}{os.pathsep}{os.environ.get('PATH', '')}",
               GIT_CONFIG_GLOBAL=str(tmp_path / "gitconfig"), GIT_CONFIG_NOSYSTEM="1")
    script = "set -euo pipefail\n" + "\n".join(runnable_blocks(page))
    proc = subprocess.run(["bash", "-c", script], cwd=str(work), env=env, capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 0, f"{page.name} examples failed:\n{proc.stdout}\n{proc.stderr}"
    if page.name == "dispatch-contract.md":
        assert proc.stdout.strip().splitlines()[-3:] == [
            "Script Worker <script-worker@local>", "01-hello: Say hello",
            "Co-Authored-By: Script Checker <script-checker@local>"]


# ---------------------------------------------------------------- every marker is documented

PACKAGE = ROOT / "autometta"


def _source(name: str) -> str:
    return (PACKAGE / name).read_text()


def _family_names_in(path: Path) -> List[str]:
    """The ``name = "..."`` of the family classes a module defines (all families for base.py)."""
    if path.name == "base.py":
        return sorted(families.FAMILIES)
    return re.findall(r'^\s+name = "([a-z]+)"', path.read_text(), re.M)


def emitted_markers() -> Set[str]:
    """Every halt reason and stall marker the code can write, read from the code itself."""
    found: Set[str] = {reason for reason, _counter, _cap, _optional in budget.CAPS}
    found.update(state.STATUSES)
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text()
        # a constant documented as a marker: "#: ... marker ..." above NAME = "some_marker"
        for comment, value in re.findall(r'^#:([^\n]*)\n[A-Z_]+(?:: str)? = "([a-z]+(?:_[a-z]+)+)"$', text, re.M):
            if "marker" in comment.lower():
                found.add(value)
        found.update(re.findall(r'\bhalt(?:_reason)?="([a-z-]+)"', text))
        found.update(re.findall(r'\bfinish=\("[a-z_]+", "([a-z_]+)"\)', text))
        found.update(re.findall(r'\bstall_marker="([a-z_]+)"', text))
        found.update(re.findall(r'^[A-Z_]*MARKER(?:: str)? = "([a-z_]+)"', text, re.M))
        for suffix in re.findall(r'f"\{self\.name\}_([a-z_]+)"', text):
            found.update(f"{name}_{suffix}" for name in _family_names_in(path))
        if path.name in ("tick.py", "manual.py", "dispatch.py", "provision.py", "envelope.py") \
                or path.parent.name in ("verify", "tick"):
            found.update(re.findall(r'\bor "([a-z]+_[a-z_]+)"', text))
            found.update(re.findall(r'f"([a-z]+(?:_[a-z]+)+): ', text))
            for prefix in re.findall(r'f"([a-z_]+)_\{env\.kind\}"', text):
                found.update(f"{prefix}_{kind}" for kind in ("fail", "partial"))
            for suffix in re.findall(r'\bor f"\{(?:role|arg|first)\}_([a-z_]+)"', text):
                found.update(f"{role}_{suffix}" for role in ROLES)
    return found


def test_the_marker_scan_finds_what_we_know_is_there():
    markers = emitted_markers()
    known = {"token-cap", "cost-cap", "wall-clock-cap", "tick-cap", "failure-cap", "dirty-working-tree",
             "invalid-stage-id", "state-corrupt", "worker_timeout",
             "worker_envelope_missing_after_exit", "worker_envelope_invalid", "worker_envelope_fail",
             "acceptance_failed", "verifier_attempt_cap", "stage_card_missing", "verifier_modified_tree",
             "verifier_fail", "verifier_artefact_wrong_stage", "verifier_overall_malformed",
             "verifier_artefact_invalid", "worker_spawn_failed", "verifier_spawn_failed", "commit_failed",
             "claude_cli_missing", "codex_cli_missing", "script_cli_missing",
             "claude_refused_root_without_is_sandbox", "claude_usage_limit", "codex_auth_error",
             "repair_orphaned_in_progress", "unknown_family", "pending", "verifier_failed",
             "setup_spawn_failed", "postmerge_spawn_failed", "worktree_setup_failed", "worktree_missing",
             "post_merge_acceptance_failed", "worktree_failed", "merge_failed", "transition_failed",
             "detached_head", "unborn_branch", "tree_claim_failed", "secret_in_diff", "secret_blocked"}
    assert known <= markers, sorted(known - markers)


def test_every_halt_reason_and_stall_marker_is_in_troubleshooting():
    text = (DOCS / "troubleshooting.md").read_text()
    missing = sorted(m for m in emitted_markers() if f"`{m}`" not in text)
    assert missing == [], f"document these in docs/troubleshooting.md: {missing}"


def test_every_lint_rule_is_in_the_stage_card_docs():
    text = (DOCS / "stage-cards.md").read_text()
    assert [rule for rule in cardlint.RULES if f"| `{rule}` |" not in text] == []


def test_doc_links_point_at_files_that_exist():
    for page in DOCS.glob("*.md"):
        for target in re.findall(r"\]\(([^)#:]+\.md)\)", page.read_text()):
            assert (page.parent / target).is_file(), f"{page.name} links to missing {target}"


def test_the_scan_patterns_parse_as_python():
    # the marker scan reads source text; make sure it reads real modules, not stale paths
    for name in ("tick/decide.py", "tick/loop.py", "envelope.py", "agents/dispatch.py", "repair.py"):
        ast.parse(_source(name))

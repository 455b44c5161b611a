"""A fourth family from one module under tests/ (tests/testing/kiwi_family.py), registered and run like the others.

The registry is all that learns of it: a stage with a Kiwi worker and a Kiwi
verifier is written by new-card, passes lint-card, runs through the tick and
by hand (dispatch, verify, accept), and status, show and report tell of it,
its tokens read by its own parser, its model from its own table. No file
under autometta/ names it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autometta import families
from tests.testing.repos import make_repo
from tests.testing.kiwi_family import CHECKER, MODEL, WORKER, Kiwi
from tests.testing.ticks import await_agents, commit_all, git, read_budget, run_until_quiet, stage, tick_once

TITLE = "Say hello the kiwi way"
PACKAGE = Path(__file__).resolve().parents[2] / "autometta"


@pytest.fixture
def kiwi():
    family = families.register(Kiwi())
    yield family
    families.FAMILIES.pop(family.name)


def new_card(run, repo: Path) -> Path:
    """``new-card --worker kiwi``: the family's default identities, its partner as the verifier."""
    res = run("new-card", str(repo), "01-kiwi", TITLE, "--worker", "kiwi")
    assert res.code == 0, res.err
    card = Path(res.out.splitlines()[0])
    text = card.read_text()
    assert f"- **Worker:** {WORKER}" in text and f"- **Verifier:** {CHECKER}" in text
    card.write_text(f"""# Stage card 01-kiwi: {TITLE}

## Metadata
- **Worker:** {WORKER}
- **Verifier:** {CHECKER}
- **Pairing rationale:** a made-up family checking itself, for the test

## Deliverables
- `hello.txt`

## Acceptance criteria
1. hello.txt says hello from kiwi.

## Budget
- Worker wall-clock: 1 minute
- Verifier wall-clock: 1 minute
""")
    assert run("lint-card", str(card)).code == 0
    commit_all(repo, "card 01-kiwi")
    return card


def test_nothing_under_autometta_names_the_fourth_family():
    named = [str(p) for p in PACKAGE.rglob("*.py") if "kiwi" in p.read_text().lower()]
    assert named == []


def test_the_family_is_known_by_its_identities(kiwi):
    assert families.family_of(WORKER) == "kiwi" and families.for_identity(CHECKER) is kiwi
    assert families.family_of("Claude Opus 4.8") == "claude"  # the others keep theirs
    assert "mention Kiwi" in families.naming_hint()


def test_a_kiwi_stage_runs_through_the_tick_and_shows_in_status(kiwi, setup, run):
    repo, home, _ = setup
    card = new_card(run, repo)
    assert run("add-stage", str(repo), str(card)).code == 0
    tick_once(home)
    doc = json.loads(run("status", "--json").out)["repos"][0]
    assert (doc["stage"], doc["status"], doc["lanes"][0]["phase"]) == ("01-kiwi", "in_progress", "worker")
    assert "stage 01-kiwi: worker (pid" in run("status").out
    await_agents(repo)
    run_until_quiet(home, repo)

    assert stage(repo, "01-kiwi")["status"] == "completed"
    assert git(repo, "log", "-1", "--format=%an <%ae>%n%s%n%b").strip().splitlines() == [
        WORKER, f"01-kiwi: {TITLE}", f"Co-Authored-By: {CHECKER}"]
    assert git(repo, "show", "HEAD:hello.txt") == "hello from kiwi\n"
    # its own parser read its spend: 1200 + 80 by the worker, 300 + 20 by the verifier
    assert read_budget(repo)["tokens_spent"] == 1600
    status = json.loads(run("status", "--json").out)
    assert status["repos"][0]["tokens_spent"] == 1600 and status["completed"][0]["stage"] == "01-kiwi"
    shown = json.loads(run("show", str(repo), "01-kiwi", "--json").out)
    assert [(a["role"], a["family"], a["usage"]["tokens"], a["final_message"]) for a in shown["agents"]] == [
        ("worker", "kiwi", 1280, "kiwi worker done"), ("verifier", "kiwi", 320, "kiwi verifier done")]
    report = json.loads(run("report", "--json").out)
    assert [(m["family"], m["model"], m["tokens"], m["runs"]) for m in report["by_model"]] == [
        ("kiwi", MODEL, 1600, 2)]


def test_a_kiwi_stage_runs_by_hand(kiwi, run, tmp_path):
    repo = make_repo(tmp_path / "plain")
    card = new_card(run, repo)
    dispatched = run("dispatch", str(card), "--wait")
    assert dispatched.code == 0, dispatched.out + dispatched.err
    assert "handoff status=pass; 1280 tokens" in dispatched.out
    verified = run("verify", str(card), "--wait")
    assert verified.code == 0, verified.out + verified.err
    assert f"01-kiwi: PASS by {CHECKER}" in verified.out
    accepted = run("accept", str(card))
    assert accepted.code == 0, accepted.err
    assert git(repo, "log", "-1", "--format=%an <%ae>|%s").strip() == f"{WORKER}|01-kiwi: {TITLE}"
    assert git(repo, "show", "HEAD:hello.txt") == "hello from kiwi\n"

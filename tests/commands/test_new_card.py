"""``autometta new-card``: the template filled with a cross-family pair, TODO text the lint catches."""

from __future__ import annotations

import re

import pytest

from autometta import cardlint
from autometta.card import parse_card
from tests.testing.repos import make_repo


@pytest.fixture
def repo(tmp_path):
    return make_repo(tmp_path / "proj")


def card_of(repo, stage_id="03-login"):
    return repo / "docs" / "stages" / f"{stage_id}.md"


@pytest.mark.parametrize("args, worker, verifier", [
    ([], "Claude Sonnet 4.6 <claude-sonnet-4-6@local>", "Codex GPT-5.5 <codex-gpt-5-5@local>"),
    (["--worker", "codex"], "Codex GPT-5.5 <codex-gpt-5-5@local>", "Claude Sonnet 4.6 <claude-sonnet-4-6@local>"),
    (["--worker", "Claude Opus 4.8 <claude-opus-4-8@local>"], "Claude Opus 4.8 <claude-opus-4-8@local>",
     "Codex GPT-5.5 <codex-gpt-5-5@local>"),
    (["--worker", "Codex GPT-5.3 <codex-gpt-5-3@local>", "--verifier", "claude"],
     "Codex GPT-5.3 <codex-gpt-5-3@local>", "Claude Sonnet 4.6 <claude-sonnet-4-6@local>"),
])
def test_identities_default_to_a_cross_family_pair(run, repo, args, worker, verifier):
    res = run("new-card", str(repo), "03-login", "Add a login form", *args)
    assert res.code == 0, res.err
    assert res.out.splitlines()[0] == str(card_of(repo))
    card = parse_card(card_of(repo))
    assert (card.worker, card.verifier, card.title) == (worker, verifier, "Add a login form")
    assert card.pairing_reason.startswith("Cross-family")
    assert (card.worker_budget_seconds, card.verifier_budget_seconds) == (1200, 600)


def test_the_new_card_fails_the_lint_only_on_its_todo_lines_until_they_are_written(run, repo):
    assert run("new-card", str(repo), "03-login", "Add a login form").code == 0
    path = card_of(repo)
    findings = cardlint.lint_card(path, repo)
    assert {f.rule for f in findings} == {"placeholder"}
    assert [f.line for f in findings] == [n for n, line in enumerate(path.read_text().splitlines(), 1)
                                         if line.startswith(("- TODO(autometta)", "1. TODO(autometta)", "TODO("))]
    filled = {
        "TODO(autometta): the goal in one or two sentences.": "Add a login form.",
        "- TODO(autometta): each file the worker should read": "- `README.md`\n<!-- ",
        "- TODO(autometta): each file the worker creates": "- `src/login.py`\n<!-- ",
        "- TODO(autometta): the hard rules": "- Standard library only.\n<!-- ",
        "1. TODO(autometta): a check": "1. `src/login.py` exists.\n<!-- ",
        "- TODO(autometta): what the worker": "- Everything else.\n<!-- ",
    }
    text = path.read_text()
    for old, new in filled.items():
        text = re.sub(re.escape(old) + r"(.*)", lambda m, new=new: new + (m.group(1) + " -->" if "<!--" in new else ""),
                      text)
    path.write_text(text)
    assert cardlint.lint_card(path, repo) == [], [str(f) for f in cardlint.lint_card(path, repo)]
    assert run("lint-card", str(path)).code == 0


def test_same_family_needs_a_reason_and_the_optional_bullets(run, repo):
    res = run("new-card", str(repo), "04-same", "Same family", "--worker", "claude", "--verifier",
              "Claude Opus 4.8 <claude-opus-4-8@local>", "--depends-on", "01-a, 02-b",
              "--acceptance-command", "make test", "--max-loops", "2", "--worker-budget", "1h 30m")
    assert res.code == 0, res.err
    card = parse_card(card_of(repo, "04-same"))
    assert card.depends_on == ["01-a", "02-b"] and card.acceptance_command == "make test" and card.max_loops == 2
    assert card.worker_budget_seconds == 5400
    pairing = [f for f in cardlint.lint_card(card.path, repo) if f.rule in ("pairing", "placeholder")
               and f.line == card.meta_lines["pairing_reason"]]
    assert pairing and "TODO(autometta)" in card.pairing_reason


def test_script_cards_get_command_lines_to_fill(run, repo):
    assert run("new-card", str(repo), "05-script", "Scripted", "--worker", "script").code == 0
    card = parse_card(card_of(repo, "05-script"))
    assert card.worker.startswith("Script Worker") and card.verifier.startswith("Script Checker")
    assert "TODO(autometta)" in card.worker_command and "TODO(autometta)" in card.verifier_command
    assert not card.pairing_reason.startswith("TODO")


def test_refuses_to_overwrite_and_bad_arguments(run, repo):
    assert run("new-card", str(repo), "03-login", "Add a login form").code == 0
    before = card_of(repo).read_text()
    res = run("new-card", str(repo), "03-login", "Another")
    assert res.code == 1 and "already exists" in res.err and card_of(repo).read_text() == before
    assert run("new-card", str(repo), "Bad Id", "x").code == 1
    assert run("new-card", str(repo), "06-x", "x", "--worker", "gemini").code == 2
    assert run("new-card", str(repo), "06-x", "x", "--worker-budget", "soon").code == 2
    assert run("new-card", str(repo), "06-x", "   ").code == 2
    assert not card_of(repo, "06-x").exists()

"""The card lint: one breaking and one passing card per rule, the CLI, and add-stage refusing errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autometta import cardlint, render, resources
from autometta.card import parse_card
from tests.testing.repos import make_repo

ROOT = Path(__file__).resolve().parents[2]

GOOD = """\
# Stage card 02-login: Add a login form

## Metadata

- **Authored:** 2026-11-26
- **Orchestrator:** Human <me@example.com>
- **Worker:** Claude Sonnet 4.6 <claude-sonnet-4-6@local>
- **Verifier:** Codex GPT-5.5 <codex-gpt-5-5@local>
- **Verifier panel:** false
- **Pairing rationale:** cross-family
- **Depends on:** 01-setup
- **Max loops:** 2
- **Acceptance command:** `python3 -m unittest`

## Objective

Add a login form.

## Inputs (read these in your own context)

- `README.md`
- `src/app.py`

## Deliverables

- `src/login.py`: the form.

## Constraints

- Standard library only.

## Acceptance criteria

1. `src/login.py` exists.
2. The tests pass.

## Out of scope

- Anything else.

## Budget

- **Worker wall-clock:** 20 minutes
- **Verifier wall-clock:** 10 minutes
"""

SETUP = GOOD.replace("02-login: Add a login form", "01-setup: Set up").replace(
    "- **Depends on:** 01-setup\n", "").replace("- `src/app.py`\n", "").replace(
    "`src/login.py`: the form.", "`src/app.py`: the app.")


@pytest.fixture
def repo(tmp_path):
    repo = make_repo(tmp_path / "proj")
    stages = repo / "docs" / "stages"
    stages.mkdir(parents=True)
    (stages / "01-setup.md").write_text(SETUP)
    return repo


def lint(repo: Path, text: str, name: str = "02-login"):
    card = repo / "docs" / "stages" / f"{name}.md"
    card.write_text(text)
    return cardlint.lint_card(card, repo)


def rules(findings, severity=cardlint.ERROR):
    return sorted({f.rule for f in findings if f.severity == severity})


def test_the_good_card_is_clean(repo):
    assert lint(repo, GOOD) == []
    assert lint(repo, SETUP, "01-setup") == []


# Each rule: a change to GOOD that breaks it, as an error or a warning.
BREAKS = [
    ("id", cardlint.ERROR, lambda t: t.replace("# Stage card 02-login:", "# Stage card 03-other:")),
    ("id", cardlint.WARNING, lambda t: t.replace("# Stage card 02-login: Add a login form", "# Add a login form")),
    ("identity", cardlint.ERROR, lambda t: t.replace("- **Worker:** Claude Sonnet 4.6 <claude-sonnet-4-6@local>\n", "")),
    ("identity", cardlint.ERROR, lambda t: t.replace("Codex GPT-5.5 <codex-gpt-5-5@local>", "the operator")),
    ("pairing", cardlint.ERROR, lambda t: t.replace("Codex GPT-5.5 <codex-gpt-5-5@local>", "Claude Opus 4.8")
     .replace("- **Pairing rationale:** cross-family\n", "")),
    ("placeholder", cardlint.ERROR, lambda t: t.replace("Add a login form.", "<<objective>>")),
    ("placeholder", cardlint.ERROR, lambda t: t.replace("Add a login form.", "TODO(autometta): the goal.")),
    ("sections", cardlint.ERROR, lambda t: t.replace("## Acceptance criteria", "## Checks")),
    ("sections", cardlint.ERROR, lambda t: t.replace("## Deliverables", "## Outputs")),
    ("sections", cardlint.WARNING, lambda t: t.replace("## Out of scope", "## Not this time")),
    ("script", cardlint.ERROR, lambda t: t.replace("Claude Sonnet 4.6 <claude-sonnet-4-6@local>", "Script Worker")),
    ("paths", cardlint.ERROR, lambda t: t.replace("- `README.md`", "- `docs/missing.md`")
     .replace("- **Depends on:** 01-setup\n", "")),
    ("paths", cardlint.WARNING, lambda t: t.replace("- `README.md`", "- `docs/missing.md`")),
    ("paths", cardlint.ERROR, lambda t: t.replace("`src/login.py`: the form.", "`/opt/app/login.py`")),
    ("paths", cardlint.ERROR, lambda t: t.replace("`src/login.py`: the form.", "`../elsewhere/login.py`")),
    ("home-path", cardlint.ERROR, lambda t: t.replace("- `README.md`", "- `/Users/alice/proj/README.md`")),
    ("home-path", cardlint.ERROR, lambda t: t.replace("python3 -m unittest", "python3 ~/bin/check.py")),
    ("home-path", cardlint.ERROR, lambda t: t + "\n```sh\ncd /home/bob/proj\n```\n"),
    ("budget", cardlint.ERROR, lambda t: t.replace("20 minutes", "about an afternoon")),
    ("budget", cardlint.ERROR, lambda t: t.replace("20 minutes", "-5 minutes")),
    ("budget", cardlint.WARNING, lambda t: t.replace("- **Verifier wall-clock:** 10 minutes\n", "")),
    ("criteria", cardlint.ERROR, lambda t: t.replace("1. `src/login.py` exists.\n2. The tests pass.",
                                                     "- `src/login.py` exists.\n- The tests pass.")),
    ("criteria", cardlint.WARNING, lambda t: t.replace("2. The tests pass.", "3. The tests pass.")),
    ("max-loops", cardlint.ERROR, lambda t: t.replace("- **Max loops:** 2", "- **Max loops:** lots")),
    ("resume", cardlint.ERROR, lambda t: t.replace("- **Max loops:** 2", "- **Max loops:** 2\n- **Resume:** perhaps")),
    ("resume", cardlint.ERROR, lambda t: t.replace("- **Max loops:** 2", "- **Max loops:** 2\n- **Resume:** over budget")),
    ("permissions", cardlint.ERROR, lambda t: t.replace("- **Max loops:** 2", "- **Max loops:** 2\n"
                                                        "- **Permission mode:** claude yolo")),
    ("permissions", cardlint.ERROR, lambda t: t.replace("- **Max loops:** 2", "- **Max loops:** 2\n"
                                                        "- **Permission mode:** anything goes")),
    ("depends", cardlint.ERROR, lambda t: t.replace("- **Depends on:** 01-setup", "- **Depends on:** 01-setup, 02-login")),
    ("depends", cardlint.WARNING, lambda t: t.replace("- **Depends on:** 01-setup", "- **Depends on:** 01-setup, 07-nope")),
    ("scope", cardlint.ERROR, lambda t: t.replace("`src/login.py`: the form.",
                                                  "`src/login.py`: the form.\n- **May also change:** `/etc/**`")),
    ("scope", cardlint.WARNING, lambda t: t.replace("`src/login.py`: the form.",
                                                    "`src/login.py`: the form.\n- **May also change:** `**`")),
]


@pytest.mark.parametrize("rule, severity, breaks", BREAKS, ids=[f"{r}-{s}-{i}" for i, (r, s, _) in enumerate(BREAKS)])
def test_each_rule_fires_on_the_card_that_breaks_it(repo, rule, severity, breaks):
    text = breaks(GOOD)
    assert text != GOOD
    findings = lint(repo, text)
    assert rule in rules(findings, severity), [str(f) for f in findings]
    others = [f for f in findings if f.rule != rule and f.severity == cardlint.ERROR]
    assert others == [] or rule in ("identity", "script", "pairing"), [str(f) for f in others]


def test_every_rule_has_a_breaking_case():
    assert {rule for rule, _, _ in BREAKS} == set(cardlint.RULES)


def test_bad_file_name_is_an_id_error(repo):
    card = repo / "docs" / "stages" / "Login Form.md"
    card.write_text(GOOD)
    findings = cardlint.lint_card(card, repo)
    assert any(f.rule == "id" and "stage id" in f.message for f in findings)


def test_input_delivered_by_a_dependency_is_fine_only_with_depends_on(repo):
    text = GOOD.replace("- `README.md`", "- `src/app.py`")  # 01-setup delivers src/app.py
    assert lint(repo, text) == []
    no_dep = text.replace("- **Depends on:** 01-setup\n", "")
    assert rules(lint(repo, no_dep)) == ["paths"]
    undelivered = GOOD.replace("- `README.md`", "- `src/other.py`")  # depends on 01-setup, which does not list it
    assert rules(lint(repo, undelivered)) == [] and rules(lint(repo, undelivered), "warning") == ["paths"]


def test_glob_input_must_match_something(repo):
    assert lint(repo, GOOD.replace("- `README.md`", "- `*.md`")) == []
    no_dep = GOOD.replace("- **Depends on:** 01-setup\n", "")
    assert rules(lint(repo, no_dep.replace("- `README.md`", "- `*.rst`").replace("- `src/app.py`\n", ""))) == ["paths"]


def test_comments_and_code_spans_are_not_checked(repo):
    text = GOOD.replace("Add a login form.", "Add a login form. <!-- <<objective>> /home/x/y TODO(autometta) -->\n"
                                             "Templates write `<<stage-id>>` slots.")
    assert lint(repo, text) == []


def test_finding_format_and_line_numbers(repo):
    text = GOOD.replace("Add a login form.", "<<objective>>")
    [finding] = lint(repo, text)
    line = text.splitlines().index("<<objective>>") + 1
    assert str(finding) == (f"{repo}/docs/stages/02-login.md:{line}: placeholder: unfilled placeholder "
                            "<<objective>>; replace it before queueing the card")
    warning = [f for f in lint(repo, GOOD.replace("## Out of scope", "## Later")) if f.severity == "warning"][0]
    assert ": sections: warning: no '## Out of scope' section" in str(warning)


def test_several_parse_errors_are_all_reported(repo):
    text = GOOD.replace("20 minutes", "-5 minutes").replace("10 minutes", "0 minutes").replace("2\n", "lots\n", 1)
    findings = lint(repo, text)
    assert [f.rule for f in findings if f.severity == "error"] == ["max-loops", "budget", "budget"]
    assert all(f.line for f in findings if f.severity == "error")


def test_outside_a_repo_inputs_are_not_checked(tmp_path):
    card = tmp_path / "02-login.md"
    card.write_text(GOOD.replace("- `README.md`", "- `nowhere.md`"))
    assert rules(cardlint.lint_card(card)) == []


# ---------------------------------------------------------------- shipped cards


def test_example_and_demo_cards_pass():
    cards = sorted((ROOT / "examples").rglob("*.md")) + sorted((ROOT / "templates" / "demo").glob("*.md"))
    cards = [c for c in cards if c.name != "README.md"]
    assert len(cards) >= 6
    for card in cards:
        assert cardlint.errors(cardlint.lint_card(card, ROOT)) == [], card


def test_example_agent_cards_have_no_warnings_in_a_fresh_repo(tmp_path):
    repo = make_repo(tmp_path / "wc")
    stages = repo / "docs" / "stages"
    stages.mkdir(parents=True)
    for card in (ROOT / "examples" / "agents").glob("*.md"):
        (stages / card.name).write_text(card.read_text())
    for card in sorted(stages.glob("*.md")):
        assert cardlint.lint_card(card, repo) == [], card


def test_the_stage_card_template_rendered_with_real_values_passes(repo):
    values = {
        "stage-id": "02-login", "stage-title": "Add a login form", "date-authored": "2026-11-26",
        "orchestrator-identity": "Human <me@example.com>",
        "worker-identity": "Codex GPT-5.5 <codex-gpt-5-5@local>",
        "verifier-identity": "Claude Sonnet 4.6 <claude-sonnet-4-6@local>",
        "pairing-rationale": "cross-family", "optional-metadata": "- **Depends on:** 01-setup",
        "objective": "Add a login form.", "inputs": "- `README.md`", "deliverables": "- `src/login.py`",
        "constraints": "- None beyond the card.", "acceptance-criteria": "1. `src/login.py` exists.",
        "out-of-scope": "- The rest.", "worker-budget": "20 minutes", "verifier-budget": "10 minutes",
        "verifier-handoff": "As the prompt says.", "family-notes": "None.",
    }
    text = render.render(resources.read_text("templates/stage-card.md"), values, keep_comments=True)
    assert lint(repo, text) == []
    card = parse_card(repo / "docs" / "stages" / "02-login.md")
    assert (card.title, card.worker_budget_seconds, card.depends_on) == ("Add a login form", 1200, ["01-setup"])


# ---------------------------------------------------------------- the command


def test_lint_card_command_exit_codes_and_json(run, repo):
    good = repo / "docs" / "stages" / "02-login.md"
    good.write_text(GOOD)
    res = run("lint-card", str(good))
    assert res.code == 0 and res.out == "" and "1 card: 0 errors, 0 warnings" in res.err
    bad = repo / "docs" / "stages" / "03-bad.md"
    bad.write_text(GOOD.replace("02-login", "03-bad").replace("Add a login form.", "<<objective>>"))
    res = run("lint-card", str(good), str(bad))
    assert res.code == 1
    assert res.out.splitlines() == [f"{bad}:{GOOD.splitlines().index('Add a login form.') + 1}: placeholder: "
                                    "unfilled placeholder <<objective>>; replace it before queueing the card"]
    data = json.loads(run("lint-card", "--json", str(bad)).out)
    assert data[0]["rule"] == "placeholder" and data[0]["severity"] == "error" and data[0]["line"] > 1
    warn_only = repo / "docs" / "stages" / "04-warn.md"
    warn_only.write_text(GOOD.replace("02-login", "04-warn").replace("## Out of scope", "## Later"))
    res = run("lint-card", str(warn_only))
    assert res.code == 0 and "warning:" in res.out


def test_lint_card_names_a_bad_resume_line_under_its_own_rule(run, repo):
    card = repo / "docs" / "stages" / "02-login.md"
    text = GOOD.replace("- **Max loops:** 2", "- **Max loops:** 2\n- **Resume:** over budget")
    card.write_text(text)
    res = run("lint-card", str(card))
    line = text.splitlines().index("- **Resume:** over budget") + 1
    assert res.code == 1 and res.out.splitlines() == [
        f"{card}:{line}: resume: Resume 'over budget' is not yes or no; write it like '- **Resume:** no'"]
    assert "resume " in run("lint-card", "--rules").out


def test_lint_card_rules_and_usage(run):
    res = run("lint-card", "--rules")
    assert res.code == 0 and [line.split()[0] for line in res.out.splitlines()] == list(cardlint.RULES)
    assert run("lint-card").code == 2


def test_add_stage_refuses_a_card_with_a_lint_error_and_prints_warnings(run, repo):
    assert run("init-host").code == 0 and run("subscribe", str(repo)).code == 0
    bad = repo / "docs" / "stages" / "02-login.md"
    bad.write_text(GOOD.replace("- `README.md`", "- `docs/missing.md`").replace("- **Depends on:** 01-setup\n", ""))
    res = run("add-stage", str(repo), str(bad))
    assert res.code == 1 and "paths: input 'docs/missing.md' does not exist" in res.err
    bad.write_text(GOOD.replace("## Out of scope", "## Later"))
    res = run("add-stage", str(repo), str(bad))
    assert res.code == 0 and "warning: no '## Out of scope' section" in res.err and "added: 02-login" in res.err

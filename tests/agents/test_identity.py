from __future__ import annotations

import pytest

from autometta.errors import UserError
from autometta.families import family_of
from autometta.agents.identity import git_author, parse_identity, slugify


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Codex GPT-5.3 <codex-gpt-5-3@local>", ("Codex GPT-5.3", "codex-gpt-5-3@local")),
        ("Claude Opus 4.8 <claude-opus-4-8@local>", ("Claude Opus 4.8", "claude-opus-4-8@local")),
        ("  Claude   Sonnet 4.6   <claude-sonnet-4-6@local>  ", ("Claude Sonnet 4.6", "claude-sonnet-4-6@local")),
        (
            "Claude Opus 4.7 <claude-opus-4-7@local> (same-family build by exception)",
            ("Claude Opus 4.7", "claude-opus-4-7@local"),
        ),
        (
            "Codex GPT-5.3 (`codex exec --sandbox workspace-write`, stdin from /dev/null)",
            ("Codex GPT-5.3", None),
        ),
        ("Claude Sonnet 4.6 (Task sub-agent)", ("Claude Sonnet 4.6", None)),
        ("Script echo", ("Script echo", None)),
        ("(design-only; orchestrator-authored prose)", ("(design-only; orchestrator-authored prose)", None)),
        ("<bot@local> Robot", ("Robot", "bot@local")),
        ("", ("", None)),
        ("<<worker-identity>>", ("<<worker-identity>>", None)),
    ],
)
def test_parse_identity(text, expected):
    assert parse_identity(text) == expected


@pytest.mark.parametrize(
    "identity, family",
    [
        # The bash rule, case-sensitive substrings.
        ("Codex GPT-5.3 <codex-gpt-5-3@local>", "codex"),
        ("OpenAI GPT-5", "codex"),
        ("ChatGPT reviewer", "codex"),
        ("Codex", "codex"),
        ("Claude Opus 4.8 <claude-opus-4-8@local>", "claude"),
        ("Claude Sonnet 4.6 (Task sub-agent)", "claude"),
        ("Codex with Claude notes", "codex"),  # bash checks Codex/GPT first
        # Bash precedence is never overridden by the lower-case extension.
        ("Claude Opus <codex-reviewer@local>", "claude"),
        # Superset: lower-case words bash left unknown.
        ("codex-mini", "codex"),
        ("gpt-5.3 <gpt@local>", "codex"),
        ("opus <claude-opus@local>", "claude"),
        ("CLAUDE opus", "claude"),
        ("reviewer (codex)", "codex"),
        # Script family for tests and demos, checked first.
        ("Script echo <script@local>", "script"),
        ("script fake worker", "script"),
        ("Script pretending to be Claude", "script"),
        ("Scripted Claude", "claude"),
        # Unknown.
        ("deferred to operator review at commit", None),
        ("(design-only; orchestrator-authored prose)", None),
        ("Gemini 2.5 Pro", None),
        ("chatgpt", None),  # lower-case only counts as a word start
        ("", None),
        (None, None),
    ],
)
def test_family_of(identity, family):
    assert family_of(identity) == family


@pytest.mark.parametrize(
    "identity, author",
    [
        ("Codex GPT-5.3 <codex-gpt-5-3@local>", "Codex GPT-5.3 <codex-gpt-5-3@local>"),
        ("Claude Opus 4.8 <claude-opus-4-8@local>", "Claude Opus 4.8 <claude-opus-4-8@local>"),
        ("Codex GPT-5.3", "Codex GPT-5.3 <codex-gpt-5-3@local>"),
        ("Claude Sonnet 4.6 (Task sub-agent)", "Claude Sonnet 4.6 <claude-sonnet-4-6@local>"),
        ("Script echo", "Script echo <script-echo@local>"),
        ("<bot@local>", "bot <bot@local>"),
        ("Evil\nName <x@local>", "Evil Name <x@local>"),
    ],
)
def test_git_author(identity, author):
    assert git_author(identity) == author


@pytest.mark.parametrize("identity", ["", "   ", "***", "(  )"])
def test_git_author_refuses_nameless(identity):
    with pytest.raises(UserError) as info:
        git_author(identity)
    assert "git author" in str(info.value)


def test_slugify():
    assert slugify("Claude Opus 4.8") == "claude-opus-4-8"
    assert slugify("  --Codex__GPT 5.3-- ") == "codex-gpt-5-3"

"""The agent families: argv, models, and reading real CLI output (tests/data/cli/)."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from autometta import families
from autometta.card import parse_card_text
from autometta.errors import UserError
from autometta.families.base import matches_env_name
from autometta.families.claude import parse_claude_log
from autometta.families.codex import parse_codex_log
from autometta.families.models import resolve_model
from autometta.families.usage import Usage
from autometta.agents.privilege import Permission

CLI = Path(__file__).resolve().parents[1] / "data" / "cli"
REPO = Path("/work/repo")
PROMPT = "Do stage 05-x."
ROOT_MARKER = "claude_refused_root_without_is_sandbox"
BYPASS = Permission(family="claude", mode="bypass", source="test")

SCRIPT_CARD = """\
# Stage card 05-x: Script demo

## Metadata
- **Worker:** Script Runner <script-runner@local>
- **Verifier:** Script Checker <script-checker@local>
- **Worker command:** `printf 'hi\\n' > out/05-x.txt`
- **Verifier command:** ``printf '{"overall": "PASS"}' > state/verifiers/05-x.json``
"""


def card(text: str = SCRIPT_CARD):
    return parse_card_text(text, REPO / "docs" / "stages" / "05-x.md")


def fixture(name: str) -> str:
    return (CLI / name).read_text()


# -- argv --------------------------------------------------------------------

@pytest.mark.parametrize("family, role, model, argv", [
    ("claude", "worker", "claude-opus-4-8",
     ["claude", "-p", "--model", "claude-opus-4-8", "--output-format", "stream-json", "--verbose",
      "--permission-mode", "acceptEdits", "--", PROMPT]),
    ("claude", "verifier", "claude-sonnet-4-6",
     ["claude", "-p", "--model", "claude-sonnet-4-6", "--output-format", "stream-json", "--verbose",
      "--permission-mode", "acceptEdits", "--", PROMPT]),
    ("claude", "worker", None,
     ["claude", "-p", "--output-format", "stream-json", "--verbose", "--permission-mode", "acceptEdits", "--",
      PROMPT]),
    ("codex", "worker", "gpt-5.3",
     ["codex", "exec", "-C", "/work/repo", "--sandbox", "workspace-write", "--json", "-m", "gpt-5.3", PROMPT]),
    ("codex", "verifier", "gpt-5.5",
     ["codex", "exec", "-C", "/work/repo", "--sandbox", "workspace-write", "--json", "-m", "gpt-5.5", PROMPT]),
    ("codex", "worker", None,
     ["codex", "exec", "-C", "/work/repo", "--sandbox", "workspace-write", "--json", PROMPT]),
    ("script", "worker", None, ["/bin/sh", "-c", "printf 'hi\\n' > out/05-x.txt"]),
    ("script", "verifier", "ignored",
     ["/bin/sh", "-c", """printf '{"overall": "PASS"}' > state/verifiers/05-x.json"""]),
])
def test_command(family, role, model, argv):
    assert families.get(family).command(role, PROMPT, model=model, repo=REPO, card=card()) == argv


@pytest.mark.parametrize("family", ["claude", "codex", "script"])
def test_command_rejects_unknown_role(family):
    with pytest.raises(ValueError):
        families.get(family).command("reviewer", PROMPT, model=None, repo=REPO, card=card())


@pytest.mark.parametrize("role, label", [("worker", "Worker"), ("verifier", "Verifier")])
def test_script_without_a_command_names_the_card_and_the_fix(role, label):
    with pytest.raises(UserError) as info:
        families.get("script").command(role, PROMPT, model=None, repo=REPO, card=card("# Stage card 05-x: t\n"))
    assert str(info.value) == (f"{REPO}/docs/stages/05-x.md: a Script {role} runs the card's shell command; "
                               f"add '- **{label} command:** `<command>`' under ## Metadata")


# -- registry and small facts ------------------------------------------------------

@pytest.mark.parametrize("identity, family", [
    ("Claude Opus 4.8 <claude-opus-4-8@local>", "claude"),
    ("Codex GPT-5.3 <codex-gpt-5-3@local>", "codex"),
    ("GPT-5.5", "codex"),
    ("Script Runner <script-runner@local>", "script"),
])
def test_for_identity(identity, family):
    assert families.for_identity(identity) is families.FAMILIES[family]
    assert families.for_identity(identity).name == family


def test_unknown_family_and_identity_are_user_errors():
    with pytest.raises(UserError, match="unknown agent family 'gemini'; known: claude, codex, script"):
        families.get("gemini")
    with pytest.raises(UserError, match="identity 'Gemini Pro' names no known agent family"):
        families.for_identity("Gemini Pro")


def test_every_family_streams_and_lists_no_secret():
    for family in families.FAMILIES.values():
        assert family.streams is True
        for role in ("worker", "verifier"):
            for pattern in family.env_names(role):
                assert pattern not in family.secret_names
    assert families.get("claude").env_names("worker") == (
        "IS_SANDBOX", "ANTHROPIC_BASE_URL", "CLAUDE_CONFIG_DIR", "CLAUDE_CODE_*")
    assert families.get("codex").env_names("verifier") == ("CODEX_HOME", "OPENAI_BASE_URL")
    assert families.get("script").env_names("worker") == ()


@pytest.mark.parametrize("pattern, name, matches", [
    ("CLAUDE_CODE_*", "CLAUDE_CODE_MAX_RETRIES", True),
    ("CLAUDE_CODE_*", "CLAUDE_CONFIG_DIR", False),
    ("IS_SANDBOX", "IS_SANDBOX", True),
    ("IS_SANDBOX", "IS_SANDBOX_X", False),
])
def test_matches_env_name(pattern, name, matches):
    assert matches_env_name(pattern, name) is matches


# -- models ------------------------------------------------------------------

@pytest.mark.parametrize("identity, family, overrides, model", [
    ("Claude Opus 4.8 <claude-opus-4-8@local>", "claude", {}, "claude-opus-4-8"),
    ("Claude Sonnet 4.6", "claude", {}, "claude-sonnet-4-6"),
    ("Claude Haiku 4.5 <claude-haiku-4-5@local>", "claude", {}, "claude-haiku-4-5"),
    ("Claude Opus 4.7 <claude-opus-4-7@local> (same-family build)", "claude", {}, "claude-opus-4-7"),
    ("Claude Opus 4", "claude", {}, "claude-opus-4-0"),
    ("Claude Opus", "claude", {}, "claude-opus-4-8"),
    ("Claude Sonnet <claude@local>", "claude", {}, "claude-sonnet-4-6"),
    ("claude haiku", "claude", {}, "claude-haiku-4-5"),
    ("Claude <claude-opus-4-8@local>", "claude", {}, "claude-opus-4-8"),
    ("Claude <claude-sonnet@local>", "claude", {}, "claude-sonnet-4-6"),
    ("Claude Opus 4.8 <claude-sonnet-4-6@local>", "claude", {}, "claude-opus-4-8"),  # the name wins
    ("Codex GPT-5.3 <codex-gpt-5-3@local>", "codex", {}, "gpt-5.3"),
    ("GPT-5.5", "codex", {}, "gpt-5.5"),
    ("gpt-5.1-codex-max", "codex", {}, "gpt-5.1-codex-max"),
    ("Codex GPT-5.3 (`codex exec ...`, stdin from /dev/null)", "codex", {}, "gpt-5.3"),
    ("Codex <codex@local>", "codex", {}, None),
    ("Script Runner <script-runner@local>", "script", {}, None),
    # overrides: the identity's name, then a tier word for a tier without a version
    ("Claude Opus 4.8 <claude-opus-4-8@local>", "claude", {"Claude Opus 4.8": "opus-on-bedrock"}, "opus-on-bedrock"),
    ("claude  opus 4.8", "claude", {"Claude Opus 4.8": "opus-on-bedrock"}, "opus-on-bedrock"),
    ("Claude Opus", "claude", {"opus": "claude-opus-5-0"}, "claude-opus-5-0"),
    ("Claude Sonnet", "claude", {"Sonnet": "claude-sonnet-5-0"}, "claude-sonnet-5-0"),
    ("Claude Opus 4.8", "claude", {"opus": "claude-opus-5-0"}, "claude-opus-4-8"),
    ("Claude Code <claude-code@local>", "claude", {"Claude Code": "claude-sonnet-4-6"}, "claude-sonnet-4-6"),
    ("Codex <codex@local>", "codex", {"Codex": "gpt-5.5"}, "gpt-5.5"),
    ("Codex GPT-5.3", "codex", {"Codex GPT-5.3": "gpt-5.3-codex"}, "gpt-5.3-codex"),
])
def test_resolve_model(identity, family, overrides, model):
    assert resolve_model(identity, family, overrides) == model


@pytest.mark.parametrize("identity", ["Claude Code <claude-code@local>", "Claude", "Claude Mythos 5"])
def test_unknown_claude_tier_is_an_error_naming_the_fix(identity):
    with pytest.raises(UserError) as info:
        resolve_model(identity, "claude", {"opus": "x"})
    message = str(info.value)
    assert message.startswith(f"identity {identity!r} names no Claude model tier (Opus, Sonnet or Haiku)")
    assert "under 'models:' in config.yaml" in message


# -- reading logs ------------------------------------------------------------------

@pytest.mark.parametrize("family, name, final", [
    ("claude", "claude-stream.jsonl", "done"),
    ("claude", "claude-result.json", "nothing to do"),
    ("claude", "claude-429.jsonl", None),
    ("claude", "claude-401.jsonl", None),
    ("claude", "claude-usage-limit.jsonl", None),
    ("claude", "claude-401.txt", None),
    ("claude", "claude-root-refusal.txt", None),
    ("codex", "codex-exec.jsonl", "done"),
    ("codex", "codex-429.jsonl", None),
    ("codex", "codex-401.jsonl", None),
    ("codex", "codex-exec-plain.stderr", None),
])
def test_final_message(family, name, final):
    assert families.get(family).final_message(fixture(name)) == final


def test_final_message_with_stderr_lines_in_the_log_and_several_messages():
    warning = "WARNING: proceeding, even though we could not create PATH aliases\n"
    codex = fixture("codex-exec.jsonl").replace('{"type":"turn.completed"', warning + '{"type":"turn.completed"')
    first = json.dumps({"type": "item.completed", "item": {"id": "i", "type": "agent_message", "text": "thinking"}})
    assert families.get("codex").final_message(warning + first + "\n" + codex) == "done"
    verdict = json.dumps({"overall": "PASS", "criteria": []})
    claude = fixture("claude-stream.jsonl").replace('"result":"done"', '"result":' + json.dumps(verdict))
    assert families.get("claude").final_message("stray stderr line\n" + claude) == verdict


def test_parse_usage_delegates_to_the_usage_parsers():
    assert families.get("claude").parse_usage(fixture("claude-stream.jsonl")) == parse_claude_log(
        fixture("claude-stream.jsonl"))
    assert families.get("codex").parse_usage(fixture("codex-exec.jsonl")) == Usage(
        input_tokens=3300, output_tokens=115, cache_read_tokens=1300)
    assert families.get("codex").parse_usage(fixture("codex-exec-plain.stderr")) == parse_codex_log(
        fixture("codex-exec-plain.stderr"))


def _billing_error() -> str:
    event = {"type": "assistant", "error": "billing_error", "message": {
        "model": "<synthetic>", "role": "assistant", "content": [{"type": "text", "text": "Credit balance is too low"}]}}
    return json.dumps(event) + "\n" + json.dumps({"type": "result", "is_error": True, "result": "Credit balance is too low"})


def _claude_success_saying(words: str) -> str:
    return fixture("claude-stream.jsonl").replace('"result":"done"', '"result":' + json.dumps(words))


@pytest.mark.parametrize("family, exit_code, log, marker", [
    # claude
    ("claude", 1, fixture("claude-root-refusal.txt"), ROOT_MARKER),
    ("claude", None, fixture("claude-root-refusal.txt"), ROOT_MARKER),
    ("claude", 1, fixture("claude-401.jsonl"), "claude_auth_error"),
    ("claude", None, fixture("claude-401.jsonl"), "claude_auth_error"),
    ("claude", 1, fixture("claude-401.txt"), "claude_auth_error"),
    ("claude", 1, fixture("claude-not-logged-in.jsonl"), "claude_auth_error"),
    ("claude", 1, "Not logged in · Please run /login\n", "claude_auth_error"),
    ("claude", 1, "Failed to authenticate. API Error: 401 authentication error\n", "claude_auth_error"),
    ("claude", 1, fixture("claude-429.jsonl"), "claude_usage_limit"),
    ("claude", 1, fixture("claude-usage-limit.jsonl"), "claude_usage_limit"),
    ("claude", 1, _billing_error(), "claude_usage_limit"),
    ("claude", 127, "", "claude_cli_missing"),
    ("claude", None, "sh: 1: claude: not found\n", "claude_cli_missing"),
    ("claude", None, "bash: line 1: claude: command not found\n", "claude_cli_missing"),
    ("claude", 0, fixture("claude-stream.jsonl"), None),
    ("claude", None, fixture("claude-stream.jsonl"), None),
    ("claude", 0, fixture("claude-401.jsonl"), None),  # exit 0: the CLI says it ran
    ("claude", None, _claude_success_saying("Not logged in · Please run /login"), None),
    ("claude", None, _claude_success_saying("API Error: 401 while testing the client"), None),
    ("claude", 1, "something else went wrong\n", None),
    ("claude", None, "", None),
    # codex
    ("codex", 1, fixture("codex-401.jsonl"), "codex_auth_error"),
    ("codex", None, fixture("codex-401.jsonl"), "codex_auth_error"),
    ("codex", 1, fixture("codex-401-plain.stderr"), "codex_auth_error"),
    ("codex", 1, fixture("codex-missing-key.jsonl"), "codex_auth_error"),
    ("codex", 1, fixture("codex-429.jsonl"), "codex_usage_limit"),
    ("codex", 1, fixture("codex-429-rate.jsonl"), "codex_usage_limit"),
    ("codex", 1, fixture("codex-429-plain.stderr"), "codex_usage_limit"),
    ("codex", 127, "", "codex_cli_missing"),
    ("codex", 0, fixture("codex-exec.jsonl"), None),
    ("codex", None, fixture("codex-exec-plain.stderr"), None),
    ("codex", 1, fixture("claude-root-refusal.txt"), None),
    ("codex", None, "ERROR: unexpected status 500 Internal Server Error\n", None),
    ("codex", None, "exec\nERROR: unexpected status 401 Unauthorized: from a test\ncodex\ndone\ntokens used\n9\n", None),
    # script
    ("script", 127, "sh: 1: make-it: not found\n", "script_cli_missing"),
    ("script", 1, "boom\n", None),
])
def test_diagnose(family, exit_code, log, marker):
    assert families.get(family).diagnose(exit_code, log) == marker


# -- preflight ---------------------------------------------------------------------

@pytest.fixture
def bin_dir(tmp_path) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir()
    for name in ("claude", "codex"):
        (folder / name).write_text("#!/bin/sh\nexit 0\n")
        os.chmod(folder / name, 0o755)
    return folder


@pytest.mark.parametrize("env, settings, euid, marker", [
    ({}, None, 0, ROOT_MARKER),
    ({}, None, 1000, None),
    ({"IS_SANDBOX": "1"}, None, 0, None),
    ({"IS_SANDBOX": "true"}, None, 0, ROOT_MARKER),  # claude wants exactly "1"
    ({"IS_SANDBOX": "0"}, None, 0, ROOT_MARKER),
    ({}, {"env": {"IS_SANDBOX": "1"}}, 0, None),
    ({}, {"env": {"IS_SANDBOX": 1}}, 0, None),
    ({}, {"env": {"IS_SANDBOX": True}}, 0, ROOT_MARKER),  # String(true) is "true"
    ({"IS_SANDBOX": "0"}, {"env": {"IS_SANDBOX": "1"}}, 0, None),  # the settings file wins
    ({"IS_SANDBOX": "1"}, {"env": {"IS_SANDBOX": "0"}}, 0, ROOT_MARKER),
    ({}, {"env": {"OTHER": "1"}}, 0, ROOT_MARKER),
    ({}, {"IS_SANDBOX": "1"}, 0, ROOT_MARKER),  # only the env object counts
    ({}, "not json", 0, ROOT_MARKER),
    ({"CLAUDE_CODE_BUBBLEWRAP": "yes"}, None, 0, None),
    ({"CLAUDE_CODE_BUBBLEWRAP": "0"}, None, 0, ROOT_MARKER),
    ({}, {"env": {"CLAUDE_CODE_BUBBLEWRAP": "1"}}, 0, None),
])
def test_claude_preflight_as_root(tmp_path, bin_dir, env, settings, euid, marker):
    """Only bypass (--dangerously-skip-permissions) is refused as root, and only outside autometta's sandbox."""
    home = tmp_path / "home"
    if settings is not None:
        (home / ".claude").mkdir(parents=True)
        text = settings if isinstance(settings, str) else json.dumps(settings)
        (home / ".claude" / "settings.json").write_text(text)
    env = dict(env, PATH=str(bin_dir), HOME=str(home))
    claude = families.get("claude")
    assert claude.preflight(env, euid, home, BYPASS) == marker
    assert claude.preflight(env, euid, home, replace(BYPASS, sandbox="bwrap")) is None
    assert claude.preflight(env, euid, home) is None  # the default, acceptEdits, runs as root
    for mode in ("acceptEdits", "auto", "dontAsk"):
        assert claude.preflight(env, euid, home, replace(BYPASS, mode=mode)) is None


def test_claude_preflight_reads_settings_from_claude_config_dir(tmp_path, bin_dir):
    home, config = tmp_path / "home", tmp_path / "config"
    for folder in (home / ".claude", config):
        folder.mkdir(parents=True)
    (home / ".claude" / "settings.json").write_text(json.dumps({"env": {"IS_SANDBOX": "1"}}))
    env = {"PATH": str(bin_dir), "CLAUDE_CONFIG_DIR": str(config)}
    assert families.get("claude").preflight(env, 0, home, BYPASS) == ROOT_MARKER
    (config / "settings.json").write_text(json.dumps({"env": {"IS_SANDBOX": "1"}}))
    assert families.get("claude").preflight(env, 0, home, BYPASS) is None


@pytest.mark.parametrize("family", ["claude", "codex"])
@pytest.mark.parametrize("euid", [0, 1000])
def test_preflight_cli_missing(tmp_path, family, euid):
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {"PATH": str(empty), "IS_SANDBOX": "1"}
    assert families.get(family).preflight(env, euid, tmp_path) == f"{family}_cli_missing"


def test_preflight_passes_when_the_cli_is_on_the_agents_path(tmp_path, bin_dir):
    env = {"PATH": os.pathsep.join(["/nonexistent", str(bin_dir)]), "IS_SANDBOX": "1"}
    assert families.get("claude").preflight(env, 0, tmp_path) is None
    assert families.get("codex").preflight(env, 0, tmp_path) is None  # codex runs as root
    assert families.get("script").preflight({"PATH": "/nonexistent"}, 0, tmp_path) is None


# -- the script family --------------------------------------------------------------

@pytest.mark.parametrize("log, usage", [
    ('autometta-usage: {"input_tokens": 1200, "output_tokens": 80, "cost_usd": 0.01}\n',
     Usage(input_tokens=1200, output_tokens=80, cost_usd=0.01)),
    ('autometta-usage: {"input_tokens": 1}\nwork\n  autometta-usage: {"input_tokens": 5, "output_tokens": 2}\n',
     Usage(input_tokens=5, output_tokens=2)),
    ('autometta-usage: {"input_tokens": 5}\nautometta-usage: {broken\n', Usage(input_tokens=5)),
    ('autometta-usage: {"cache_read_tokens": 9, "cache_write_tokens": 3, "output_tokens": -4, "cost_usd": "x"}\n',
     Usage(cache_read_tokens=9, cache_write_tokens=3)),
    ("no usage here\n", None),
    ("echo autometta-usage: is not at the start\n", None),
])
def test_script_parse_usage(log, usage):
    assert families.get("script").parse_usage(log) == usage


@pytest.mark.parametrize("log, final", [
    ('working\n{"overall": "PASS"}\n\n', '{"overall": "PASS"}'),
    ('verdict\nautometta-usage: {"input_tokens": 1}\n', "verdict"),
    ("\n\n", None),
    ("", None),
])
def test_script_final_message(log, final):
    assert families.get("script").final_message(log) == final

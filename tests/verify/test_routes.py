"""Verifier routes as tables: transport choice, the panel's vote table, panel config, usage lines, prices."""

from __future__ import annotations

import itertools
import json

import pytest

from autometta.errors import UserError
from autometta.families import FAMILIES
from autometta.families.usage import Usage
from autometta.tick import outcomes
from autometta.verify import panel, request, transport


# ------------------------------------------------------------------ transport choice

@pytest.mark.parametrize("family,env,manifest,expected", [
    ("claude", {}, {}, ("cli", "default")),
    ("claude", {"AUTOMETTA_CLAUDE_TRANSPORT": "api"}, {}, ("api", "env AUTOMETTA_CLAUDE_TRANSPORT")),
    ("claude", {"AUTOMETTA_CLAUDE_TRANSPORT": "sdk"}, {}, ("api", "env AUTOMETTA_CLAUDE_TRANSPORT")),
    ("claude", {"AUTOMETTA_CLAUDE_TRANSPORT": "CLI"}, {"verifier": {"claude": {"transport": "api"}}},
     ("cli", "env AUTOMETTA_CLAUDE_TRANSPORT")),
    ("claude", {}, {"verifier": {"claude": {"transport": "sdk"}}}, ("api", "manifest verifier.claude.transport")),
    ("claude", {"AUTOMETTA_CLAUDE_TRANSPORT": ""}, {"verifier": {"claude": {"transport": "api"}}},
     ("api", "manifest verifier.claude.transport")),
    ("codex", {"AUTOMETTA_CODEX_TRANSPORT": "api"}, {}, ("api", "env AUTOMETTA_CODEX_TRANSPORT")),
    ("codex", {"AUTOMETTA_CLAUDE_TRANSPORT": "api"}, {}, ("cli", "default")),
    ("codex", {}, {"verifier": {"codex": {"transport": "api"}, "claude": {"transport": "cli"}}},
     ("api", "manifest verifier.codex.transport")),
    ("script", {"AUTOMETTA_SCRIPT_TRANSPORT": "api"}, {}, ("cli", "default")),
])
def test_transport_env_then_manifest_then_cli(family, env, manifest, expected):
    route = transport.transport_for(family, env, manifest)
    assert (route.transport, route.provenance) == expected
    assert route.describe() == f"transport {expected[0]} from {expected[1]}"


def test_a_bad_transport_names_where_it_came_from():
    with pytest.raises(UserError) as info:
        transport.transport_for("claude", {"AUTOMETTA_CLAUDE_TRANSPORT": "grpc"}, {})
    assert str(info.value).startswith("AUTOMETTA_CLAUDE_TRANSPORT: verifier transport 'grpc' is not one of cli, api")
    with pytest.raises(UserError) as info:
        transport.transport_for("codex", {}, {"verifier": {"codex": {"transport": "web"}}}, "/r/.autometta.local.yaml")
    assert str(info.value).startswith("/r/.autometta.local.yaml: verifier.codex.transport: verifier transport 'web'")


@pytest.mark.parametrize("env,card,expected", [
    ({}, False, None), ({}, True, "card"), ({"AUTOMETTA_VERIFIER_PANEL": "1"}, False, "env AUTOMETTA_VERIFIER_PANEL"),
    ({"AUTOMETTA_VERIFIER_PANEL": "0"}, True, "card"), ({"AUTOMETTA_VERIFIER_PANEL": "0"}, False, None),
])
def test_panel_on_by_card_or_env(env, card, expected):
    assert transport.panel_enabled(env, card) == expected


# ------------------------------------------------------------------ the vote table, exhaustively

def expected_outcome(votes):
    passes, fails = votes.count("PASS"), votes.count("FAIL")
    if passes + fails < 2 or passes == fails:
        return None
    return "PASS" if passes > fails else "FAIL"


ALL_VOTES = list(itertools.product(("PASS", "FAIL", None), repeat=3))


def test_the_table_has_every_combination():
    assert len(ALL_VOTES) == 27


@pytest.mark.parametrize("votes", ALL_VOTES, ids=lambda v: "-".join(x or "none" for x in v))
def test_vote_table(votes):
    t = outcomes.tally(list(votes))
    assert t.overall == expected_outcome(list(votes))
    assert (t.passes, t.fails, t.no_votes, t.votes) == (votes.count("PASS"), votes.count("FAIL"),
                                                       votes.count(None), 3 - votes.count(None))
    # the tick's own recount of a synthesis agrees with the panel's
    doc = {"overall": t.overall or "FAIL", "quorum": {"required": 2, "achieved": t.votes},
           "panellists": [{"id": i, "identity": "x", "artefact_path": None, "overall": v} for i, v in enumerate(votes)]}
    problem = outcomes.panel_problem(doc)
    if t.overall is None:
        assert problem is not None and problem[0] == "verifier_panel_no_quorum"
        assert problem[1] == f"verifier_panel_no_quorum: {t.reason}"
    else:
        assert problem is None


@pytest.mark.parametrize("votes,reason", [
    (("PASS", "PASS", "PASS"), "majority PASS (3 PASS, 0 FAIL, 0 no-vote)"),
    (("PASS", "FAIL", "PASS"), "majority PASS (2 PASS, 1 FAIL, 0 no-vote)"),
    (("FAIL", None, "FAIL"), "majority FAIL (0 PASS, 2 FAIL, 1 no-vote)"),
    (("PASS", "FAIL", None), "no majority: tied vote (1 PASS, 1 FAIL, 1 no-vote)"),
    (("PASS", None, None), "no quorum: 1 of 2 votes needed (1 PASS, 0 FAIL, 2 no-vote)"),
    ((None, None, None), "no quorum: 0 of 2 votes needed (0 PASS, 0 FAIL, 3 no-vote)"),
])
def test_vote_reasons_read_well(votes, reason):
    assert outcomes.tally(list(votes)).reason == reason


def test_a_synthesis_whose_overall_disagrees_with_its_votes_fails():
    doc = {"overall": "PASS", "quorum": {"required": 2, "achieved": 3},
           "panellists": [{"overall": "FAIL"}, {"overall": "FAIL"}, {"overall": "PASS"}]}
    status, marker = outcomes.panel_problem(doc)
    assert status == "verifier_failed"
    assert marker == "verifier_panel_inconsistent: overall 'PASS' but the panellists' majority FAIL " \
                     "(1 PASS, 2 FAIL, 0 no-vote)"


def test_a_single_verifier_artefact_is_no_panel():
    assert outcomes.panel_problem({"overall": "PASS", "criteria": []}) is None
    assert outcomes.panel_problem(None) is None


# ------------------------------------------------------------------ panel composition

def members(config, env=None, manifest=None):
    return panel.panel_members(config, env or {}, manifest or {}, "/h/config.yaml")


def test_default_panel_is_the_bash_one():
    got = [(m.index, m.name, m.identity, m.family, m.route.transport, m.route.provenance) for m in members({})]
    assert got == [
        (0, "opus", "Claude Opus 4.8 <claude-opus-4-8@local>", "claude", "api", "panel default"),
        (1, "sonnet", "Claude Sonnet 4.6 <claude-sonnet-4-6@local>", "claude", "api", "panel default"),
        (2, "codex", "Codex GPT-5.3 <codex-gpt-5-3@local>", "codex", "cli", "panel default"),
    ]


def test_configured_panel_member_without_transport_takes_its_family_route():
    config = {"panel": [
        {"identity": "Claude Haiku 4.5 <claude-haiku-4-5@local>"},
        {"name": "gpt", "identity": "Codex GPT-5.5", "transport": "sdk", "model": "gpt-5.5-pro"},
        {"name": "check", "identity": "Script Check <check@local>", "command": "true"},
    ]}
    got = members(config, {"AUTOMETTA_CLAUDE_TRANSPORT": "api"})
    assert [(m.name, m.route.transport, m.route.provenance, m.model) for m in got] == [
        ("claude-haiku-4-5", "api", "env AUTOMETTA_CLAUDE_TRANSPORT", None),
        ("gpt", "api", "panel config", "gpt-5.5-pro"),
        ("check", "cli", "default", None),
    ]


@pytest.mark.parametrize("panel_value,message", [
    ([], "/h/config.yaml: panel must be a list of 3 members"),
    ("opus", "/h/config.yaml: panel must be a list of 3 members"),
    ([{"identity": "Claude Opus 4.8"}] * 2 + ["x"], "/h/config.yaml: panel[1]: name 'claude-opus-4-8' is used twice"),
    ([{"identity": "A robot"}, {}, {}], "/h/config.yaml: panel[0]: identity 'A robot' names no agent family"),
    ([{"name": "x"}, {}, {}], "/h/config.yaml: panel[0]: identity is missing"),
    ([{"identity": "Claude Opus", "colour": "red"}, {}, {}], "/h/config.yaml: panel[0]: unknown key 'colour'"),
    ([{"identity": "Claude Opus", "name": "Big One"}, {}, {}], "/h/config.yaml: panel[0]: name 'Big One' must be"),
    ([{"identity": "Script X", "transport": "api", "command": "true"}, {}, {}],
     "/h/config.yaml: panel[0]: a script member has no API transport"),
    ([{"identity": "Script X"}, {}, {}], "/h/config.yaml: panel[0]: a Script member runs a shell command"),
    ([{"identity": "Claude Opus", "command": "true"}, {}, {}], "/h/config.yaml: panel[0]: command is only for Script"),
    ([{"identity": "Claude Opus", "transport": "carrier-pigeon"}, {}, {}],
     "/h/config.yaml: panel[0].transport: verifier transport 'carrier-pigeon'"),
])
def test_panel_config_errors_name_the_entry(panel_value, message):
    with pytest.raises(UserError) as info:
        members({"panel": panel_value})
    assert str(info.value).startswith(message)


# ------------------------------------------------------------------ usage lines and prices

@pytest.mark.parametrize("family", ["claude", "codex", "script"])
@pytest.mark.parametrize("cost", [0.0421, None])
def test_usage_line_reads_back_through_the_family_parser(family, cost):
    usage = Usage(input_tokens=1200, output_tokens=400, cache_read_tokens=7000, cache_write_tokens=3000)
    log = "verify-api: some progress\n" + request.usage_event(family, usage, cost, "claude-sonnet-4-6") + "\n"
    got = FAMILIES[family].parse_usage(log)
    assert (got.input_tokens, got.output_tokens, got.cache_read_tokens, got.cache_write_tokens) == (1200, 400, 7000, 3000)
    assert got.cost_usd == cost
    assert got.total_tokens == 1200 + 3000 + 400


def test_usage_line_is_no_verdict():
    line = request.usage_event("claude", Usage(input_tokens=1), 0.1)
    assert FAMILIES["claude"].final_message(line) is None
    assert json.loads(line)["type"] == "result"


@pytest.mark.parametrize("model,expected", [
    ("claude-sonnet-4-6", (1_000_000 * 3 + 1_000_000 * 3.75 + 1_000_000 * 0.30 + 1_000_000 * 15) / 1e6),
    ("claude-opus-4-8", 5 + 6.25 + 0.5 + 25),
    ("claude-opus-4-1-20250805", 15 + 18.75 + 1.5 + 75),
    ("claude-haiku-4-5", 1 + 1.25 + 0.1 + 5),
    ("gpt-5.5", 1.25 + 0 + 0.125 + 10),
    ("gpt-5-mini", 0.25 + 0 + 0.025 + 2),
    ("mystery-model", None),
])
def test_price_table(model, expected):
    million = Usage(input_tokens=10**6, output_tokens=10**6, cache_read_tokens=10**6, cache_write_tokens=10**6)
    got = request.cost_usd(model, million)
    assert got == (None if expected is None else pytest.approx(expected))
    if expected is not None:
        assert request.cost_usd(model, million, batch=True) == pytest.approx(expected / 2)


# ------------------------------------------------------------------ the internal commands

def test_internal_commands_run_but_are_not_listed(run, tmp_path):
    listing = run("--help")
    assert "panel" in listing.out and "retro-grade" in listing.out
    assert "_verify-api" not in listing.out + listing.err and "_panel-run" not in listing.out + listing.err
    res = run("_panel-run", str(tmp_path / "no-plan.json"))
    assert res.code == 2 and res.out.strip() == "" and "no-plan.json" in res.err

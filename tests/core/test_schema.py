"""The schema validator and the schemas in ``schemas/``."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from autometta import schema
from autometta.errors import UserError

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_DIR = ROOT / "schemas"
SCHEMA_FILES = sorted(SCHEMA_DIR.glob("*.json"))
SCHEMA_NAMES = [p.stem for p in SCHEMA_FILES]

EXPECTED_SCHEMAS = {
    "active-agent",
    "budget",
    "config",
    "handoff-envelope",
    "manifest",
    "state",
    "subscriber",
    "verifier",
    "verifier-panel",
}


@pytest.fixture(autouse=True)
def _fresh_cache():
    schema._CACHE.clear()
    yield
    schema._CACHE.clear()


def _schema_file(name):
    return json.loads((SCHEMA_DIR / f"{name}.json").read_text(encoding="utf-8"))


def _subschemas(node, where="#"):
    """(pointer, subschema) for the node and every schema under it."""
    yield where, node
    if not isinstance(node, dict):
        return
    for name, sub in (node.get("properties") or {}).items():
        yield from _subschemas(sub, f"{where}/properties/{name}")
    for keyword in ("additionalProperties", "items"):
        if isinstance(node.get(keyword), dict):
            yield from _subschemas(node[keyword], f"{where}/{keyword}")


# --- the schema files themselves ---------------------------------------------------


def test_every_expected_schema_exists():
    assert EXPECTED_SCHEMAS <= set(SCHEMA_NAMES)


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=SCHEMA_NAMES)
def test_schema_file_is_well_formed(path):
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert doc["$id"] == f"https://autometta.dev/schemas/{path.stem}.json"
    assert doc["title"]
    assert doc["description"]
    assert doc["type"] == "object"
    assert schema.unknown_keywords(doc) == []


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=SCHEMA_NAMES)
def test_required_fields_are_declared_and_defaults_are_valid(path):
    doc = json.loads(path.read_text(encoding="utf-8"))
    for where, node in _subschemas(doc):
        if not isinstance(node, dict):
            continue
        for name in node.get("required", []):
            assert name in node.get("properties", {}), f"{where}: required {name!r} not in properties"
        bare = {k: v for k, v in node.items() if k not in ("default", "examples")}
        if "default" in node:
            assert schema.errors(node["default"], bare) == [], f"{where}: default breaks its own schema"
        for example in node.get("examples", []):
            assert schema.errors(example, bare) == [], f"{where}: example breaks its own schema"


def test_unknown_keywords_walks_nested_schemas():
    doc = {
        "type": "object",
        "maxProperties": 3,
        "properties": {
            "a/b": {"type": "array", "items": {"type": "int", "uniqueItems": True}},
            "when": {"type": "string", "format": "email"},
        },
        "additionalProperties": {"multipleOf": 4},
    }
    assert schema.unknown_keywords(doc) == [
        "#: unknown keyword 'maxProperties'",
        "#/properties/a~1b/items: unknown keyword 'uniqueItems'",
        "#/properties/a~1b/items: unknown type 'int'",
        "#/properties/when: unknown format 'email'",
        "#/additionalProperties: unknown keyword 'multipleOf'",
    ]


def test_known_keywords():
    assert isinstance(schema.KNOWN_KEYWORDS, frozenset)
    assert {"type", "required", "properties", "additionalProperties", "enum", "const", "pattern",
            "items", "minimum", "maximum", "minItems", "maxItems", "minLength", "maxLength", "format", "$schema",
            "$id", "title", "description", "default", "examples", "$comment"} == schema.KNOWN_KEYWORDS


# --- the validator, keyword by keyword ---------------------------------------------

KEYWORD_CASES = [
    # (id, schema, passing instance, failing instance, expected errors for the failing one)
    ("type-string", {"type": "string"}, "x", 3, ["$: expected string, got integer 3"]),
    ("type-integer", {"type": "integer"}, 3, "3", ["$: expected integer, got string '3'"]),
    ("type-integer-float-whole", {"type": "integer"}, 3.0, 3.5, ["$: expected integer, got number 3.5"]),
    ("type-integer-not-bool", {"type": "integer"}, 0, True, ["$: expected integer, got boolean true"]),
    ("type-number", {"type": "number"}, 2.5, None, ["$: expected number, got null"]),
    ("type-number-not-bool", {"type": "number"}, 1, False, ["$: expected number, got boolean false"]),
    ("type-number-not-nan", {"type": "number"}, 1e308, float("nan"), ["$: expected number, got non-finite number nan"]),
    ("type-boolean", {"type": "boolean"}, False, 0, ["$: expected boolean, got integer 0"]),
    ("type-null", {"type": "null"}, None, "", ["$: expected null, got string ''"]),
    ("type-object", {"type": "object"}, {}, [], ["$: expected object, got array"]),
    ("type-array", {"type": "array"}, [], {}, ["$: expected array, got object"]),
    ("type-list", {"type": ["string", "null"]}, None, 1, ["$: expected string or null, got integer 1"]),
    ("required", {"type": "object", "required": ["a", "b"]}, {"a": 1, "b": 2}, {},
     ["$: missing required field 'a'", "$: missing required field 'b'"]),
    ("properties", {"properties": {"n": {"type": "integer"}}}, {"n": 1, "other": "x"}, {"n": "1"},
     ["$.n: expected integer, got string '1'"]),
    ("additionalProperties-false", {"properties": {"status": {}}, "additionalProperties": False},
     {"status": 1}, {"status": 1, "stauts": 2, "zzz": 3},
     ["$: unknown field 'stauts' (did you mean 'status'?)", "$: unknown field 'zzz'"]),
    ("additionalProperties-schema", {"additionalProperties": {"type": "object"}}, {"codex": {}},
     {"codex": "api"}, ["$.codex: expected object, got string 'api'"]),
    ("additionalProperties-true", {"additionalProperties": True}, {"x": 1}, None, None),
    ("enum", {"enum": ["pending", "in_progress"]}, "pending", "done",
     ["$: 'done' is not one of pending, in_progress"]),
    ("enum-with-null", {"type": ["string", "null"], "enum": ["PASS", "FAIL", None]}, None, "pass",
     ["$: 'pass' is not one of PASS, FAIL, null"]),
    ("enum-bool-is-not-int", {"enum": [1, 2]}, 1.0, True, ["$: true is not one of 1, 2"]),
    ("const", {"const": 2}, 2, 3, ["$: must be 2, got 3"]),
    ("const-string", {"const": "x"}, "x", "y", ["$: must be 'x', got 'y'"]),
    ("pattern", {"type": "string", "pattern": "^[0-9]{2}[a-z]*-[a-z0-9-]+$"}, "05a-hardening", "5-x",
     ["$: '5-x' does not match ^[0-9]{2}[a-z]*-[a-z0-9-]+$"]),
    ("pattern-is-search", {"pattern": "b"}, "abc", "xyz", ["$: 'xyz' does not match b"]),
    ("pattern-ignores-non-strings", {"pattern": "^a$"}, 5, "b", ["$: 'b' does not match ^a$"]),
    ("items", {"items": {"type": "string"}}, ["a", "b"], ["a", 2, None],
     ["$[1]: expected string, got integer 2", "$[2]: expected string, got null"]),
    ("minimum", {"minimum": 0}, 0, -1, ["$: -1 is less than the minimum 0"]),
    ("maximum", {"maximum": 2}, 2, 2.5, ["$: 2.5 is greater than the maximum 2"]),
    ("minItems", {"minItems": 1}, [1], [], ["$: expected at least 1 item, got 0"]),
    ("maxItems", {"maxItems": 3}, [1, 2, 3], [1, 2, 3, 4], ["$: expected at most 3 items, got 4"]),
    ("minLength", {"minLength": 1}, "a", "", ["$: expected at least 1 character, got 0"]),
    ("minLength-plural", {"minLength": 3}, "abc", "ab", ["$: expected at least 3 characters, got 2"]),
    ("maxLength", {"maxLength": 3, "pattern": "^a"}, "abc", "bbbb", ["$: expected at most 3 characters, got 4"]),
    ("format-date-time", {"type": "string", "format": "date-time"}, "2026-01-31T09:30:00Z", "2026-01-31",
     ["$: '2026-01-31' is not a date-time like 2025-01-31T09:30:00Z"]),
    ("annotations", {"$schema": "x", "$id": "y", "title": "t", "description": "d", "default": 1,
                     "examples": [1], "$comment": "c"}, "anything", None, None),
]


@pytest.mark.parametrize("case", KEYWORD_CASES, ids=[c[0] for c in KEYWORD_CASES])
def test_keyword(case):
    _id, sch, good, bad, expected = case
    assert schema.errors(good, sch) == []
    if expected is not None:
        assert schema.errors(bad, sch) == expected
    else:
        assert schema.errors(bad, sch) == []


@pytest.mark.parametrize(
    "text, ok",
    [
        ("1970-01-01T00:00:00Z", True),
        ("2026-11-26T13:46:00.123Z", True),
        ("2026-11-26T13:46:00+01:00", True),
        ("2026-11-26T13:46:00-05:30", True),
        ("2016-12-31T23:59:60Z", True),
        ("2024-02-29T00:00:00Z", True),
        ("2026-11-26T13:46:00.5-23:59", True),
        ("2026-11-26T13:46:00.5.5Z", False),
        ("2026-11-26T13:46:00.5", False),
        ("2026-11-26T1\u0663:46:00Z", False),  # an Arabic-Indic digit is no [0-9]
        ("2026-11-26T13:46:00+01:0\u0663", False),
        ("2026-11-26T13:46:00+01:60", False),
        ("2026-11-26T13:46:00Z+01:00", False),
        ("2023-02-29T00:00:00Z", False),
        ("2026-13-01T00:00:00Z", False),
        ("2026-11-26T24:00:00Z", False),
        ("2026-11-26T13:60:00Z", False),
        ("2026-11-26T13:46:00", False),
        ("2026-11-26 13:46:00Z", False),
        ("2026-11-26T13:46:00+0100", False),
        ("2026-11-26T13:46:00+24:00", False),
        ("2026-11-26T13:46Z", False),
        ("2026-11-26T13:46:00.Z", False),
        ("2026-11-26T13:46:00Z\n", False),
        ("", False),
    ],
)
def test_date_time_format(text, ok):
    assert (schema.errors(text, {"format": "date-time"}) == []) is ok


def test_format_only_applies_to_strings():
    assert schema.errors(None, {"type": ["string", "null"], "format": "date-time"}) == []


def test_type_failure_stops_other_checks_of_that_value():
    sch = {"type": "string", "enum": ["a"], "minLength": 3}
    assert schema.errors(5, sch) == ["$: expected string, got integer 5"]


def test_paths_nest_and_quote_odd_keys():
    sch = {"properties": {"stages": {"items": {"properties": {"status": {"enum": ["pending"]}}}}},
           "additionalProperties": {"type": "integer"}}
    doc = {"stages": [{"status": "pending"}, {"status": "pending"}, {"status": "done"}], "odd key": "x"}
    assert schema.errors(doc, sch) == [
        "$[\"odd key\"]: expected integer, got string 'x'",
        "$.stages[2].status: 'done' is not one of pending",
    ]


def test_all_errors_collected_in_fixed_order():
    sch = {
        "type": "object",
        "required": ["z", "a"],
        "additionalProperties": False,
        "properties": {"b": {"type": "integer"}, "c": {"type": "string"}, "z": {}, "a": {}},
    }
    doc = {"c": 1, "extra": True, "b": "x"}
    expected = [
        "$: missing required field 'z'",
        "$: missing required field 'a'",
        "$.b: expected integer, got string 'x'",
        "$.c: expected string, got integer 1",
        "$: unknown field 'extra'",
    ]
    assert schema.errors(doc, sch) == expected
    reordered = {"b": "x", "extra": True, "c": 1}
    assert schema.errors(reordered, sch) == expected


def test_long_values_are_shortened_to_one_line():
    problems = schema.errors("line one\n" + "x" * 200, {"type": "integer"})
    assert len(problems) == 1
    assert "\n" not in problems[0]
    assert problems[0].startswith("$: expected integer, got string 'line one\\nxxx")
    assert problems[0].endswith("...'")
    assert len(problems[0]) < 120


# --- fixtures shaped like the bash version's files ------------------------------------

WORKER = "Codex GPT-5.3 <codex-gpt-5-3@local>"
VERIFIER = "Claude Opus 4.8 <claude-opus-4-8@local>"

BASH_INITIAL_STATE = {
    "version": 1,
    "current_stage": None,
    "stages": [],
    "last_tick_at": "1970-01-01T00:00:00Z",
    "tick_count": 0,
    "clock_tick_budget_remaining": 100,
    "halted": False,
    "halt_reason": None,
}

BASH_POPULATED_STATE = {
    **BASH_INITIAL_STATE,
    "current_stage": "05a-hardening",
    "stages": [
        {  # completed: every field the bash version ever writes
            "id": "01-bootstrap",
            "status": "completed",
            "worker": WORKER,
            "verifier": VERIFIER,
            "started_at": "2026-11-20T10:00:00Z",
            "worker_pid": None,
            "verifier_pid": None,
            "verifier_artefact": "state/verifiers/01-bootstrap.json",
            "verifier_attempts": 1,
            "completed_at": "2026-11-20T10:41:07Z",
            "stall_marker": None,
            "commit": "0123456789abcdef0123456789abcdef01234567",
            "worker_tokens": 117339,
            "verifier_tokens": 20211,
            "tokens": 137550,
        },
        {
            "id": "02-parser",
            "status": "failed",
            "worker": WORKER,
            "verifier": VERIFIER,
            "started_at": "2026-11-21T10:00:00Z",
            "worker_pid": None,
            "verifier_pid": None,
            "verifier_artefact": None,
            "verifier_attempts": 0,
            "completed_at": None,
            "stall_marker": "could not find the grammar file",
            "worker_tokens": 5000,
            "tokens": 5000,
        },
        {"id": "03-stall", "status": "stalled", "worker": WORKER, "verifier": VERIFIER,
         "stall_marker": "worker_envelope_missing_after_exit"},
        {"id": "04-vf", "status": "verifier_failed", "worker": WORKER, "verifier": VERIFIER},
        {"id": "04b-panel", "status": "verifier_panel_no_quorum", "worker": WORKER, "verifier": VERIFIER},
        {
            "id": "05a-hardening",
            "status": "in_progress",
            "worker": WORKER,
            "verifier": VERIFIER,
            "started_at": "2026-11-26T13:00:00Z",
            "worker_pid": 4242,
            "verifier_pid": None,
            "verifier_artefact": None,
            "verifier_attempts": 0,
            "completed_at": None,
        },
        {  # straight from add-stage
            "id": "06-docs",
            "status": "pending",
            "worker": "",
            "verifier": "",
            "started_at": None,
            "worker_pid": None,
            "verifier_pid": None,
            "verifier_artefact": None,
            "verifier_attempts": 0,
            "completed_at": None,
        },
    ],
}

AUTOMETTA_STAGE = {
    "id": "07-ported",
    "status": "merge_conflict",
    "worker": WORKER,
    "verifier": VERIFIER,
    "started_at": "2026-11-26T13:00:00Z",
    "worker_pid": 4242,
    "worker_started": 1764162000.25,
    "verifier_pid": 4300,
    "verifier_started": None,
    "worker_cost_usd": 0.5,
    "verifier_cost_usd": 0,
    "cost_usd": 0.5,
    "worker_seconds": 300,
    "verifier_seconds": 60,
    "worker_tree": "/tmp/autometta-trees/07-ported",
    "acceptance": None,
    "loops": 2,
}

BASH_DEFAULT_BUDGET = {
    "version": 1,
    "token_cap_total": 1000000,
    "tokens_spent": 0,
    "wall_clock_cap_seconds": 3600,
    "wall_clock_elapsed_seconds": 0,
    "clock_tick_cap": 100,
    "clock_ticks_used": 0,
    "consecutive_failure_cap": 3,
    "consecutive_failures": 0,
    "halted": False,
    "halt_reason": None,
    "halted_at": None,
}

BASH_SUBSCRIBER = {
    "repo_path": "/Users/me/src/widget",
    "manifest_path": "/Users/me/src/widget/.autometta.local.yaml",
    "weight": 100,
    "enabled": True,
}

BASH_CONFIG = {
    "version": 1,
    "autometta_root": "/opt/homebrew/Cellar/autometta/0.4.0/libexec",
    "max_per_fire": 20,
    "default_weight": 100,
    "log_level": "info",
}

BASH_MANIFEST = {
    "version": 1,
    "autometta_root": "/opt/autometta",
    "state_dir": "state",
    "stage_card_globs": ["docs/stages/*.md", "examples/self-host/*.md"],
    "templates_mode": "upstream",
    "auth": {"codex": {"mode": "api"}, "claude": {"mode": "subscription"}},
    "verifier": {"claude": {"transport": "sdk"}},
}

ENVELOPE = {
    "stage_id": "05a-hardening",
    "status": "pass",
    "deliverables": ["src/widget.py", "tests/test_widget.py"],
    "notes": "Hardened the parser; all five criteria believed met.",
    "failed_acceptance": [],
    "worker_identity": WORKER,
}

CRITERION = {"id": 1, "name": "Parser rejects NUL", "verdict": "PASS", "evidence": "src/widget.py:42"}

VERDICT = {
    "stage_id": "05a-hardening",
    "verifier_identity": VERIFIER,
    "verifier_invocation": "claude -p --permission-mode acceptEdits",
    "ran_at": "2026-11-26T13:40:00Z",
    "criteria": [CRITERION, dict(CRITERION, id=2, verdict="FAIL", evidence="")],
    "additional_findings": "",
    "overall": "FAIL",
}

PANEL = {
    "stage_id": "05a-hardening",
    "verifier_identity": "spawn-verifier-panel.sh <panel@local>",
    "verifier_invocation": "spawn-verifier-panel.sh /repo/docs/stages/05a-hardening.md /repo",
    "ran_at": "2026-11-26T13:40:00Z",
    "criteria": [],
    "additional_findings": "[Panel synthesis — majority PASS] ",
    "overall": "PASS",
    "panellists": [
        {"id": 0, "identity": "Claude Opus 4.8 <claude-opus-4-8@local>",
         "artefact_path": "state/verifiers/05a-hardening.panel/opus.json", "overall": "PASS"},
        {"id": 1, "identity": "Claude Sonnet 4.6 <claude-sonnet-4-6@local>",
         "artefact_path": "state/verifiers/05a-hardening.panel/sonnet.json", "overall": "PASS"},
        {"id": 2, "identity": WORKER, "artefact_path": None, "overall": None},
    ],
    "quorum": {"required": 2, "achieved": 2},
}

ACTIVE_AGENT = {
    "agent_id": "4242-1764162000",
    "pid": 4242,
    "role": "worker",
    "family": "codex",
    "identity": WORKER,
    "card_path": "/repo/docs/stages/05a-hardening.md",
    "log_path": "/repo/state/logs/05a-hardening-worker.log",
    "budget_seconds": 0,
    "started_at": "2026-11-26T13:00:00Z",
}

VALID_DOCS = [
    ("state", BASH_INITIAL_STATE),
    ("state", {"version": 1, "current_stage": None, "stages": []}),
    ("state", BASH_POPULATED_STATE),
    ("state", dict(BASH_INITIAL_STATE, stages=[AUTOMETTA_STAGE], current_stage="07-ported")),
    ("budget", BASH_DEFAULT_BUDGET),
    ("budget", dict(BASH_DEFAULT_BUDGET, halted=True, halt_reason="tick-cap", halted_at="2026-11-26T13:00:00Z",
                    cost_usd_spent=1.25, cost_cap_usd=None)),
    ("budget", dict(BASH_DEFAULT_BUDGET, cost_cap_usd=20)),
    ("subscriber", BASH_SUBSCRIBER),
    ("subscriber", {"repo_path": "/srv/repo"}),
    ("subscriber", dict(BASH_SUBSCRIBER, max_parallel=2, enabled=False)),
    ("config", BASH_CONFIG),
    ("config", dict(BASH_CONFIG, notify={"slack": "x"}, models={})),
    ("manifest", {"version": 1, "autometta_root": "/opt/autometta", "state_dir": "state",
                  "stage_card_globs": ["docs/stages/*.md", "examples/self-host/*.md"],
                  "templates_mode": "upstream"}),
    ("manifest", BASH_MANIFEST),
    ("manifest", {"stage_card_globs": None, "future": {"x": 1}, "auth": {"gemini": {"mode": "api"}}}),
    ("handoff-envelope", ENVELOPE),
    ("handoff-envelope", {k: ENVELOPE[k] for k in ("stage_id", "status", "deliverables", "notes")}),
    ("verifier", VERDICT),
    ("verifier", dict(VERDICT, headline="Harden the widget parser", ran_at="yesterday afternoon")),
    ("verifier-panel", PANEL),
    ("verifier-panel", dict(PANEL, criteria=[CRITERION], headline="x")),
    ("active-agent", ACTIVE_AGENT),
    ("active-agent", dict(ACTIVE_AGENT, role="verifier", process_start=1764162000.5, stage_id="05a-hardening")),
]


@pytest.mark.parametrize("name, doc", VALID_DOCS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(VALID_DOCS)])
def test_documents_shaped_like_the_bash_version_validate(name, doc):
    assert schema.errors(doc, _schema_file(name)) == []


def _with(doc, path, value):
    """A deep copy of ``doc`` with ``path`` (keys and indexes) set to ``value``; ``...`` deletes."""
    out = copy.deepcopy(doc)
    node = out
    for step in path[:-1]:
        node = node[step]
    if value is ...:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return out


INVALID_DOCS = [
    ("state", _with(BASH_INITIAL_STATE, ["stages"], {}), "$.stages: expected array, got object"),
    ("state", _with(BASH_INITIAL_STATE, ["version"], ...), "$: missing required field 'version'"),
    ("state", _with(BASH_INITIAL_STATE, ["current_stage"], 5), "$.current_stage: expected string or null, got integer 5"),
    ("state", _with(BASH_INITIAL_STATE, ["halted"], "false"), "$.halted: expected boolean, got string 'false'"),
    ("state", _with(BASH_INITIAL_STATE, ["typo"], 1), "$: unknown field 'typo'"),
    ("state", _with(BASH_POPULATED_STATE, ["stages", 2, "status"], "done"),
     "$.stages[2].status: 'done' is not one of pending, in_progress, completed, failed, stalled, "
     "verifier_failed, verifier_panel_no_quorum, merge_conflict, secret_blocked, stopped"),
    ("state", _with(BASH_POPULATED_STATE, ["stages", 2, "status"], "parked"),
     "$.stages[2].status: 'parked' is not one of pending, in_progress, completed, failed, stalled, "
     "verifier_failed, verifier_panel_no_quorum, merge_conflict, secret_blocked, stopped"),
    ("state", _with(BASH_POPULATED_STATE, ["stages", 0, "id"], "Bootstrap"),
     "$.stages[0].id: 'Bootstrap' does not match ^[0-9]{2}[a-z]*-[a-z0-9-]+$"),
    ("state", _with(BASH_POPULATED_STATE, ["stages", 5, "worker_pid"], "4242"),
     "$.stages[5].worker_pid: expected integer or null, got string '4242'"),
    ("state", _with(BASH_POPULATED_STATE, ["stages", 0, "started_at"], "26/11/2026"),
     "$.stages[0].started_at: '26/11/2026' is not a date-time like 2025-01-31T09:30:00Z"),
    ("state", _with(BASH_POPULATED_STATE, ["stages", 0, "commit"], "HEAD"),
     "$.stages[0].commit: 'HEAD' does not match ^[0-9a-f]{7,64}$"),
    ("state", _with(BASH_POPULATED_STATE, ["stages", 0, "tokens"], -1),
     "$.stages[0].tokens: -1 is less than the minimum 0"),
    ("state", _with(BASH_POPULATED_STATE, ["stages", 6, "worker"], ...),
     "$.stages[6]: missing required field 'worker'"),
    ("state", _with(BASH_POPULATED_STATE, ["stages", 6, "parked"], True),
     "$.stages[6]: unknown field 'parked' (did you mean 'parked_until'?)"),
    ("budget", _with(BASH_DEFAULT_BUDGET, ["tokens_spent"], 1.5), "$.tokens_spent: expected integer, got number 1.5"),
    ("budget", _with(BASH_DEFAULT_BUDGET, ["clock_tick_cap"], ...), "$: missing required field 'clock_tick_cap'"),
    ("budget", _with(BASH_DEFAULT_BUDGET, ["halted_at"], "now"), "$.halted_at: 'now' is not a date-time like 2025-01-31T09:30:00Z"),
    ("budget", _with(BASH_DEFAULT_BUDGET, ["cost_cap_usd"], -1), "$.cost_cap_usd: -1 is less than the minimum 0"),
    ("budget", _with(BASH_DEFAULT_BUDGET, ["halted"], None), "$.halted: expected boolean, got null"),
    ("subscriber", _with(BASH_SUBSCRIBER, ["enabled"], "true"), "$.enabled: expected boolean, got string 'true'"),
    ("subscriber", _with(BASH_SUBSCRIBER, ["weight"], "100"), "$.weight: expected integer, got string '100'"),
    ("subscriber", _with(BASH_SUBSCRIBER, ["repo_path"], ...), "$: missing required field 'repo_path'"),
    ("subscriber", _with(BASH_SUBSCRIBER, ["max_parallel"], 0), "$.max_parallel: 0 is less than the minimum 1"),
    ("subscriber", _with(BASH_SUBSCRIBER, ["wieght"], 1), "$: unknown field 'wieght' (did you mean 'weight'?)"),
    ("config", _with(BASH_CONFIG, ["log_level"], "loud"), "$.log_level: 'loud' is not one of debug, info, warning, error"),
    ("config", _with(BASH_CONFIG, ["max_per_fire"], "20"), "$.max_per_fire: expected integer, got string '20'"),
    ("manifest", _with(BASH_MANIFEST, ["auth", "codex", "mode"], "key"),
     "$.auth.codex.mode: 'key' is not one of subscription, api"),
    ("manifest", _with(BASH_MANIFEST, ["verifier", "claude", "transport"], "http"),
     "$.verifier.claude.transport: 'http' is not one of cli, api, sdk"),
    ("manifest", _with(BASH_MANIFEST, ["stage_card_globs"], "docs/*.md"),
     "$.stage_card_globs: expected array or null, got string 'docs/*.md'"),
    ("manifest", _with(BASH_MANIFEST, ["stage_card_globs", 1], 7), "$.stage_card_globs[1]: expected string, got integer 7"),
    ("handoff-envelope", _with(ENVELOPE, ["status"], "PASS"), "$.status: 'PASS' is not one of pass, fail, partial"),
    ("handoff-envelope", _with(ENVELOPE, ["deliverables", 1], "/etc/passwd"),
     "$.deliverables[1]: '/etc/passwd' does not match ^[^/]"),
    ("handoff-envelope", _with(ENVELOPE, ["notes"], ""), "$.notes: expected at least 1 character, got 0"),
    ("handoff-envelope", _with(ENVELOPE, ["failed_acceptance"], [0]), "$.failed_acceptance[0]: 0 is less than the minimum 1"),
    ("handoff-envelope", _with(ENVELOPE, ["summary"], "x"), "$: unknown field 'summary'"),
    ("verifier", _with(VERDICT, ["criteria"], []), "$.criteria: expected at least 1 item, got 0"),
    ("verifier", _with(VERDICT, ["criteria", 1, "verdict"], "pass"), "$.criteria[1].verdict: 'pass' is not one of PASS, FAIL"),
    ("verifier", _with(VERDICT, ["criteria", 0, "id"], "1"), "$.criteria[0].id: expected integer, got string '1'"),
    ("verifier", _with(VERDICT, ["verifier_identity"], ""), "$.verifier_identity: expected at least 1 character, got 0"),
    ("verifier", _with(VERDICT, ["overall"], ...), "$: missing required field 'overall'"),
    ("verifier", _with(VERDICT, ["headline"], None), "$.headline: expected string, got null"),
    ("verifier-panel", _with(PANEL, ["panellists"], PANEL["panellists"][:2]), "$.panellists: expected at least 3 items, got 2"),
    ("verifier-panel", _with(PANEL, ["panellists", 2, "id"], 3), "$.panellists[2].id: 3 is greater than the maximum 2"),
    ("verifier-panel", _with(PANEL, ["panellists", 1, "overall"], "ABSTAIN"),
     "$.panellists[1].overall: 'ABSTAIN' is not one of PASS, FAIL, null"),
    ("verifier-panel", _with(PANEL, ["quorum", "achieved"], ...), "$.quorum: missing required field 'achieved'"),
    ("active-agent", _with(ACTIVE_AGENT, ["role"], "panellist"), "$.role: 'panellist' is not one of worker, verifier, acceptance, setup, postmerge"),
    ("active-agent", _with(ACTIVE_AGENT, ["pid"], "4242"), "$.pid: expected integer, got string '4242'"),
    ("active-agent", _with(ACTIVE_AGENT, ["agent_id"], "4242"), "$.agent_id: '4242' does not match ^[0-9]+-[0-9]+$"),
    ("active-agent", _with(ACTIVE_AGENT, ["alive"], True), "$: unknown field 'alive'"),
]


@pytest.mark.parametrize("name, doc, first", INVALID_DOCS, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(INVALID_DOCS)])
def test_wrongly_typed_documents_fail_at_the_right_path(name, doc, first):
    assert schema.errors(doc, _schema_file(name)) == [first]


# --- load_schema and check -------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED_SCHEMAS))
def test_load_schema_reads_through_resources(name):
    assert schema.load_schema(name) == _schema_file(name)


def test_load_schema_is_cached_and_returns_copies(monkeypatch):
    from autometta import resources

    calls = []
    real = resources.read_text

    def counting(relpath):
        calls.append(relpath)
        return real(relpath)

    monkeypatch.setattr(resources, "read_text", counting)
    first = schema.load_schema("budget")
    first["properties"].clear()
    second = schema.load_schema("budget")
    schema.check(BASH_DEFAULT_BUDGET, "budget", "state/budget.json")
    assert calls == ["schemas/budget.json"]
    assert second == _schema_file("budget")


def test_load_schema_of_unknown_name_is_a_user_error():
    with pytest.raises(UserError, match="schemas/no-such-thing.json"):
        schema.load_schema("no-such-thing")


def test_check_passes_valid_document():
    assert schema.check(BASH_INITIAL_STATE, "state", "/repo/state/state.yaml") is None


def test_check_names_source_path_and_schema():
    doc = _with(BASH_POPULATED_STATE, ["stages", 2, "status"], "done")
    with pytest.raises(UserError) as caught:
        schema.check(doc, "state", "/repo/state/state.yaml")
    message = str(caught.value)
    assert message == (
        "/repo/state/state.yaml: $.stages[2].status: 'done' is not one of pending, in_progress, completed, "
        "failed, stalled, verifier_failed, verifier_panel_no_quorum, merge_conflict, secret_blocked, stopped; "
        "see schemas/state.json"
    )
    assert caught.value.exit_code == 1


def test_check_counts_the_other_errors_and_stays_on_one_line():
    doc = _with(BASH_DEFAULT_BUDGET, ["tokens_spent"], "lots\nof them")
    doc["halted"] = "no"
    doc["extra"] = 1
    with pytest.raises(UserError) as caught:
        schema.check(doc, "budget", Path("/repo/state/budget.json"))
    message = str(caught.value)
    assert message.startswith("/repo/state/budget.json: $: unknown field 'extra' (and 2 more); ")
    assert message.endswith("; see schemas/budget.json")
    assert "\n" not in message

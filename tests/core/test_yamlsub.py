"""autometta.yamlsub: the YAML subset, against the files the bash version writes."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

from autometta.errors import UserError
from autometta.yamlsub import YAMLError, dumps, loads

DATA = Path(__file__).resolve().parents[1] / "data" / "yaml"

STATE = {
    "version": 1,
    "current_stage": "05a-phat-controller-hardening",
    "stages": [
        {
            "id": "05a-phat-controller-hardening",
            "status": "in_progress",
            "worker": "Codex GPT-5.3 <codex-gpt-5-3@local>",
            "verifier": "Claude Opus 4.8 <claude-opus-4-8@local>",
            "started_at": "2026-05-01T10:00:00Z",
            "worker_pid": 12345,
            "verifier_pid": None,
            "verifier_artefact": None,
            "verifier_attempts": 0,
            "completed_at": None,
            "stall_marker": "notes with: a colon",
        }
    ],
    "last_tick_at": "1970-01-01T00:00:00Z",
    "tick_count": 0,
    "clock_tick_budget_remaining": 100,
    "halted": False,
    "halt_reason": None,
}

QUEUE = {
    "version": 1,
    "current_stage": None,
    "stages": [
        {
            "id": "01-bootstrap",
            "status": "completed",
            "worker": "Claude Opus 4.8 <claude-opus-4-8@local>",
            "verifier": "Codex GPT-5.3 <codex-gpt-5-3@local>",
            "started_at": "2026-04-30T08:00:00Z",
            "worker_pid": None,
            "verifier_pid": None,
            "verifier_artefact": "state/verifier/01-bootstrap.json",
            "verifier_attempts": 1,
            "completed_at": "2026-04-30T09:12:44Z",
        },
        {
            "id": "02b-stalled-one",
            "status": "stalled",
            "worker": "Codex GPT-5.3 <codex-gpt-5-3@local>",
            "verifier": "Claude Opus 4.8 <claude-opus-4-8@local>",
            "started_at": "2026-04-30T10:00:00Z",
            "worker_pid": 4242,
            "verifier_pid": None,
            "verifier_artefact": None,
            "verifier_attempts": 0,
            "completed_at": None,
            "stall_marker": 'worker overran its wall-clock budget\nlast output: "Running tests..."',
        },
        {
            "id": "03-pending",
            "status": "pending",
            "worker": "Codex GPT-5.3 <codex-gpt-5-3@local>",
            "verifier": "Claude Opus 4.8 <claude-opus-4-8@local>",
        },
    ],
    "last_tick_at": "2026-05-01T10:05:00Z",
    "tick_count": 42,
    "clock_tick_budget_remaining": 58,
    "halted": True,
    "halt_reason": "operator: paused for review",
}

SUBSCRIBER = {
    "repo_path": "/Users/me/code/x",
    "manifest_path": "/Users/me/code/x/.autometta.local.yaml",
    "weight": 100,
    "enabled": True,
}

MANIFEST = {
    "version": 1,
    "autometta_root": "/opt/autometta",
    "state_dir": "state",
    "stage_card_globs": ["docs/stages/*.md", "examples/self-host/*.md"],
    "templates_mode": "upstream",
    "auth": {"codex": {"mode": "api"}, "claude": {"mode": "subscription"}},
    "verifier": {"claude": {"transport": "cli"}},
}

CONFIG = {
    "version": 1,
    "autometta_root": "/opt/autometta",
    "max_per_fire": 20,
    "default_weight": 100,
    "log_level": "info",
}


# --- the corpus: files shaped like the bash version's -------------------------


@pytest.mark.parametrize(
    "name, expected",
    [
        ("state-yq.yaml", STATE),
        ("state-pyyaml.yaml", STATE),
        ("state-yq-queue.yaml", QUEUE),
        ("subscriber.yaml", SUBSCRIBER),
        ("manifest.yaml", MANIFEST),
        ("config.yaml", CONFIG),
    ],
)
def test_corpus_loads_exactly(name, expected):
    value = loads((DATA / name).read_text(encoding="utf-8"), source=name)
    assert value == expected
    assert list(value) == list(expected)  # key order is kept


def test_state_dumps_as_yq_does():
    yq = (DATA / "state-yq.yaml").read_text(encoding="utf-8")
    # yq single-quotes this one string; we always double-quote.
    assert dumps(STATE) == yq.replace("'notes with: a colon'", '"notes with: a colon"')
    plain = dict(STATE, stages=[dict(STATE["stages"][0], stall_marker="notes")])
    assert dumps(plain) == yq.replace("'notes with: a colon'", "notes")


def test_queue_dumps_as_yq_does():
    yq = (DATA / "state-yq-queue.yaml").read_text(encoding="utf-8")
    # yq leaves out the '---' and single-quotes the halt reason; we always double-quote.
    assert dumps(QUEUE) == yq.replace("---\n", "", 1).replace("'operator: paused for review'",
                                                              '"operator: paused for review"')


def test_config_dumps_byte_for_byte():
    assert dumps(CONFIG) == (DATA / "config.yaml").read_text(encoding="utf-8").replace(
        '"/opt/autometta"', "/opt/autometta")


def test_hand_edited_variants():
    assert loads("stage_card_globs: [docs/stages/*.md, \"x/*.md\", 3]  # flow\n") == {
        "stage_card_globs": ["docs/stages/*.md", "x/*.md", 3]}
    assert loads("globs: [\n  a,\n  'b',  # comment\n]\nempty: []\nnone: {}\n") == {
        "globs": ["a", "b"], "empty": [], "none": {}}
    assert loads("auth:\n  codex:\n    mode: api\n\n\n  claude:\n      mode: cli\n") == {
        "auth": {"codex": {"mode": "api"}, "claude": {"mode": "cli"}}}
    assert loads("a:\r\n  - x\r\n  - y\r\n") == {"a": ["x", "y"]}
    assert loads("\ufeffa: 1\n") == {"a": 1}
    assert loads("---\na: 1\n...\n# done\n") == {"a": 1}
    assert loads("--- # start\na: 1\n") == {"a": 1}


def test_empty_documents_are_none():
    assert loads("") is None
    assert loads("# only a comment\n\n") is None
    assert loads("---\n") is None


# --- loading -------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, value",
    [
        ("null", None), ("Null", None), ("NULL", None), ("~", None), ("", None),
        ("true", True), ("True", True), ("TRUE", True), ("false", False), ("False", False), ("FALSE", False),
        ("0", 0), ("42", 42), ("-5", -5), ("+7", 7), ("0x1F", 31), ("0o17", 15),
        ("123456789012345678901234567890", 123456789012345678901234567890),
        ("1.5", 1.5), ("-0.5", -0.5), ("1e3", 1000.0), ("1.0e-05", 1e-05), (".5", 0.5), ("1.", 1.0),
        (".inf", math.inf), ("-.Inf", -math.inf), ("+.INF", math.inf),
        ("yes", "yes"), ("no", "no"), ("on", "on"), ("off", "off"), ("y", "y"), ("tRUE", "tRUE"),
        ("08", "08"), ("007", "007"), ("1_000", "1_000"), ("0b101", "0b101"), ("12:00", "12:00"),
        ("0X1F", "0X1F"), ("-0x1F", "-0x1F"), ("1.2.3", "1.2.3"),
        ("2026-01-01", "2026-01-01"), ("2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z"),
        ("05a-phat-controller-hardening", "05a-phat-controller-hardening"),
        ("http://x:8080/a#b", "http://x:8080/a#b"), ("a:b", "a:b"), ("a#b", "a#b"),
    ],
)
def test_plain_scalars_resolve_with_the_core_schema(text, value):
    assert loads(f"k: {text}\n") == {"k": value}
    assert loads(f"- {text}\n") == [value]


def test_nan_loads():
    assert math.isnan(loads("k: .nan\n")["k"])
    assert math.isnan(loads("k: .NaN\n")["k"])


def test_quoted_scalars_are_strings():
    doc = loads("a: \"true\"\nb: '1'\nc: \"\"\nd: ''\ne: 'it''s'\n"
                "f: \"tab\\tnew\\nline \\u00e9 \\x41 \\U0001F600 \\\\ \\\"\"\n")
    assert doc == {"a": "true", "b": "1", "c": "", "d": "", "e": "it's", "f": 'tab\tnew\nline é A 😀 \\ "'}


def test_keys_are_strings():
    assert loads("1: a\ntrue: b\nnull: c\n\"q: k\": d\n'': e\n") == {
        "1": "a", "true": "b", "null": "c", "q: k": "d", "": "e"}


def test_comments():
    text = ("# head\na: 1 # trailing\nb: 'x' # after quote\nc: x#not-a-comment\n"
            "  # indented comment\nd:  # nothing\n")
    assert loads(text) == {"a": 1, "b": "x", "c": "x#not-a-comment", "d": None}


def test_multi_line_plain_scalars_fold():
    assert loads("a: one\n  two\n\n  three\nb: x\n") == {"a": "one two\nthree", "b": "x"}
    assert loads("- one\n  two\n- three\n") == ["one two", "three"]
    assert loads("s:\n  - a\n    - b\n") == {"s": ["a - b"]}  # YAML folds it into the scalar
    assert loads("a:\n  long value\n  continued\n") == {"a": "long value continued"}


def test_multi_line_quoted_scalars_fold():
    assert loads('a: "one\n  two\n\n  three \\\n  four"\n') == {"a": "one two\nthree four"}
    assert loads("a: 'one\n  two'\n") == {"a": "one two"}


@pytest.mark.parametrize(
    "text, value",
    [
        ("k: |\n  a\n  b\n", "a\nb\n"),
        ("k: |-\n  a\n  b\n", "a\nb"),
        ("k: |+\n  a\n\n\nn: 1\n", "a\n\n\n"),
        ("k: |\n  a\n\n\nn: 1\n", "a\n"),
        ("k: |\n\n  a\n   indented\n  # not a comment\n", "\na\n indented\n# not a comment\n"),
        ("k: >\n  one\n  two\n\n  three\n    kept\n  four\n", "one two\nthree\n  kept\nfour\n"),
        ("k: >-\n  one\n  two\n", "one two"),
        ("k: |2\n    two extra\n  base\n", "  two extra\nbase\n"),
        ("k: |-2\n    x\n", "  x"),
        ("k: |\n  last line has no break", "last line has no break"),
        ("k: |\nn: 1\n", ""),
        ("- |\n  item\n- >\n  folded\n  item\n", None),
    ],
)
def test_block_scalars(text, value):
    doc = loads(text)
    if value is None:
        assert doc == ["item\n", "folded item\n"]
    else:
        assert doc["k"] == value


def test_nesting_styles():
    text = (
        "top:\n"
        "  - - a\n"
        "    - b\n"
        "  - key: value\n"
        "    list:\n"
        "    - 1\n"
        "    - 2\n"
        "    after: x\n"
        "  -\n"
        "    late: item\n"
        "  - # comment\n"
        "  -\n"
        "indentless:\n"
        "- x\n"
        "- y: z\n"
        "  w: v\n"
        "end: .\n"
    )
    assert loads(text) == {
        "top": [["a", "b"], {"key": "value", "list": [1, 2], "after": "x"}, {"late": "item"}, None, None],
        "indentless": ["x", {"y": "z", "w": "v"}],
        "end": ".",
    }


def test_top_level_sequence_and_scalar():
    assert loads("- a\n- 1\n") == ["a", 1]
    assert loads("just text\n") == "just text"
    assert loads('"quoted"\n') == "quoted"
    assert loads("[1, 2]\n") == [1, 2]
    assert loads("{}\n") == {}


# --- refusals ------------------------------------------------------------------


REFUSALS = [
    # (document, line, col, what the message says was found)
    ("a: 1\nb: 2\nc: 3\ndefault: &base\n  x: 1\n", 4, 10, "found an anchor '&base'"),
    ("a: 1\nb: *a\n", 2, 4, "found an alias '*a'"),
    ("- &x item\n", 1, 3, "found an anchor '&x'"),
    ("a: !!str 5\n", 1, 4, "found a tag '!!str'"),
    ("- !foo x\n", 1, 3, "found a tag '!foo'"),
    ("!foo\na: 1\n", 1, 1, "found a tag '!foo'"),
    ("a: 1\n---\nb: 2\n", 2, 1, "found a second document ('---')"),
    ("---\na: 1\n--- \nb: 2\n", 3, 1, "found a second document ('---')"),
    ("a: 1\n...\nb: 2\n", 3, 1, "found content after the document end marker '...'"),
    ("a: 1\n... x\n", 2, 5, "found content after the document end marker '...'"),
    ("--- a: 1\n", 1, 5, "found content on the '---' line"),
    ("%YAML 1.2\n---\na: 1\n", 1, 1, "found a directive '%YAML'"),
    ("a: {b: 1}\n", 1, 4, "found a flow mapping '{b: 1}'"),
    ("{b: 1}\n", 1, 1, "found a flow mapping '{b: 1}'"),
    ("a: 1\n{b: 1}: 2\n", 2, 1, "found a flow mapping '{b: 1}: 2'"),
    ("a: [x, {b: 1}]\n", 1, 8, "found a flow mapping '{b: 1}]'"),
    ("a: [x, b: 1]\n", 1, 9, "found a 'key: value' pair inside a flow sequence"),
    ("a: [x, ? y]\n", 1, 8, "found a complex key ('? ')"),
    ("a: [x,, y]\n", 1, 7, "found an empty entry in a flow sequence"),
    ("a: [x, y\n", 1, 4, "found an unterminated flow sequence '['"),
    ("a: [x, y\nb: 1\n", 2, 1, "found 'b' where ',' or ']' was expected"),
    ("a: [x] y\n", 1, 8, "found unexpected text 'y' after ']'"),
    ("? a\n: 1\n", 1, 1, "found a complex key ('? ')"),
    ("a: 1\n? b\n", 2, 1, "found a complex key ('? ')"),
    ("a:\n\tb: 1\n", 2, 1, "found a tab character in the indentation"),
    ("a:\n  \tb: 1\n", 2, 3, "found a tab character in the indentation"),
    ("a: 1\nb: 2\na: 3\n", 3, 1, "found duplicate key 'a' (first on line 1)"),
    ("s:\n  - id: x\n    n: 1\n    id: y\n", 4, 5, "found duplicate key 'id' (first on line 2)"),
    ("a:\n    b: 1\n  c: 2\n", 3, 3, "found unexpected indentation"),
    ("a: 1\n  b: 2\n", 2, 3, "found 'b: 2' indented under a key that already has a value"),
    ("s:\n  - a\n  # c\n   - b\n", 4, 4, "found unexpected indentation"),
    ("items:\n  - a\n  b: 1\n", 3, 3, "found 'b: 1' where a sequence item ('- ') was expected"),
    ("- a\nb: 1\n", 2, 1, "found 'b: 1' where a sequence item ('- ') was expected"),
    ("a: 1\n- b\n", 2, 1, "found a sequence item ('- ') where a mapping key was expected"),
    ("a: 1\njust text\n", 2, 1, "found 'just text' where a 'key: value' entry was expected"),
    ("a: 1\nkey:value\n", 2, 1, "found 'key:value' where a 'key: value' entry was expected"),
    ("a: b: c\n", 1, 5, "found ': ' inside the plain value 'b: c'"),
    ("a: - b\n", 1, 4, "found a sequence item ('- ') on the same line as its key"),
    ('a: 1\nb: "abc\nc: 2\n', 2, 4, "found an unterminated double-quoted string"),
    ("a: 'abc\n", 1, 4, "found an unterminated single-quoted string"),
    ('a: "x" y\n', 1, 8, "found unexpected text 'y' after '\"'"),
    ('a: "x"# no space\n', 1, 7, "found unexpected text '# no space' after '\"'"),
    ('a: "bad \\q escape"\n', 1, 9, "found an invalid escape '\\q'"),
    ('a: "\\u12"\n', 1, 5, "found an invalid escape '\\u12\"'"),
    ("a: @x\n", 1, 4, "found reserved character '@'"),
    ("a: `x`\n", 1, 4, "found reserved character '`'"),
    ("a: |x\n", 1, 4, "found an invalid block scalar header '|x'"),
    ("a: >1+2\n", 1, 4, "found an invalid block scalar header '>1+2'"),
    ("a: ]\n", 1, 4, "found unexpected ']'"),
    (": x\n", 1, 1, "found ':' with no key before it"),
    ("a: 1\n  # c\n b: 2\n", 3, 2, "found unexpected indentation"),
    ("  a: 1\nb: 2\n", 2, 1, "found more content after the document's top-level value"),
]


@pytest.mark.parametrize("text, line, col, found", REFUSALS)
def test_refusals_point_at_the_offending_token(text, line, col, found):
    with pytest.raises(YAMLError) as info:
        loads(text, source="state/state.yaml")
    message = str(info.value)
    assert message.startswith(f"state/state.yaml:{line}:{col}: {found}")
    assert "; " in message and "\n" not in message
    assert (info.value.line, info.value.col) == (line, col)


def test_refusal_message_is_exact():
    text = "a: 1\nb: 2\nc: 3\ndefault: &base\n  x: 1\n"
    with pytest.raises(YAMLError) as info:
        loads(text, source="state/state.yaml")
    assert str(info.value) == (
        "state/state.yaml:4:10: found an anchor '&base'; "
        "anchors and aliases are not supported (write the value out in full)")
    assert isinstance(info.value, UserError) and info.value.exit_code == 1
    with pytest.raises(YAMLError, match=r"^<string>:3:1: found duplicate key 'a' \(first on line 1\); "
                                        r"each key may appear only once in a mapping$"):
        loads("a: 1\nb: 2\na: 3\n")


# --- dumping -------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["yes", "no", "on", "off", "y", "n", "Y", "N", "Yes", "OFF", "true", "False", "null", "Null", "~", "",
     "1.0", "08", "0b101", "1_000", "12:00", "1:30:00", "0x1F", "0o17", ".inf", "-.inf", ".nan", "1e3",
     "42", "-1", "+1", "2026-01-01T00:00:00Z", "2026-01-01", "2026-1-1 10:00:00", "<<", "=",
     "-", "- x", "-x", "?", "? x", ":", ":x", ",x", "[x]", "]", "{x}", "}", "#x", "&a", "*a", "!a",
     "|", ">", "'x", "%x", "@x", "`x", " lead", "trail ", " ", "a: b", "a #b", "key:", "...", "...x"],
)
def test_lookalike_strings_are_double_quoted(text):
    out = dumps({"k": text})
    assert out.startswith('k: "') and out.endswith('"\n')
    assert loads(out) == {"k": text}
    assert dumps({text: 1}).startswith('"')


@pytest.mark.parametrize(
    "text",
    ["05a-phat-controller-hardening", "Codex GPT-5.3 <codex-gpt-5-3@local>", "docs/stages/*.md",
     "/opt/autometta", "info", "a:b", "a#b", "1.2.3", "it's", 'say "hi"', "a\\b", "é", "日本語", "😀",
     "x - y", "a, b", "a [b]", "yes please", "null value", "v1.0", ".", "+", "=x"],
)
def test_ordinary_strings_stay_plain(text):
    assert dumps({"k": text}) == f"k: {text}\n"
    assert loads(dumps({"k": text})) == {"k": text}


def test_escapes_in_double_quotes():
    assert dumps("tab\there") == '"tab\\there"\n'
    assert dumps('"q\\') == '"\\"q\\\\"\n'
    assert dumps("\x00\x07\x1b\x7f\x85\u2028\u2029\ufeff") == '"\\0\\a\\e\\x7F\\N\\L\\P\\uFEFF"\n'
    assert dumps("a\r\nb") == '"a\\r\\nb"\n'


@pytest.mark.parametrize(
    "value, text",
    [
        ("a\nb", "k: |-\n  a\n  b\n"),
        ("a\nb\n", "k: |\n  a\n  b\n"),
        ("a\n\n", "k: |+\n  a\n\n"),
        ("\na\n  b", "k: |-\n\n  a\n    b\n"),
        ("a\n\nb", "k: |-\n  a\n\n  b\n"),
        (" a\nb", 'k: " a\\nb"\n'),  # a leading space would need an indentation indicator
        ("a \nb", 'k: "a \\nb"\n'),  # trailing spaces do not survive editors
        ("a\tb\nc", 'k: "a\\tb\\nc"\n'),
        ("a\r\nb", 'k: "a\\r\\nb"\n'),
        ("\n", 'k: "\\n"\n'),
        ("\n\n", 'k: "\\n\\n"\n'),
    ],
)
def test_multi_line_strings(value, text):
    assert dumps({"k": value}) == text
    assert loads(text) == {"k": value}


def test_block_scalars_in_lists_and_at_the_top():
    assert dumps(["a\nb", {"k": "c\nd\n"}]) == "- |-\n  a\n  b\n- k: |\n    c\n    d\n"
    assert dumps("a\nb") == "|-\n  a\n  b\n"
    assert loads(dumps("a\nb")) == "a\nb"


@pytest.mark.parametrize(
    "value, text",
    [
        (None, "null"), (True, "true"), (False, "false"), (0, "0"), (-12, "-12"), (10**30, str(10**30)),
        (3.0, "3.0"), (1.5, "1.5"), (-0.0, "-0.0"), (1e-05, "1.0e-05"), (1e16, "1.0e+16"),
        (2.5e-300, "2.5e-300"), (math.inf, ".inf"), (-math.inf, "-.inf"), (math.nan, ".nan"),
        ({}, "{}"), ([], "[]"),
    ],
)
def test_scalar_forms(value, text):
    assert dumps({"k": value}) == f"k: {text}\n"
    assert dumps(value) == f"{text}\n"
    back = loads(f"k: {text}\n")["k"]
    if isinstance(value, float) and math.isnan(value):
        assert math.isnan(back)
    else:
        assert back == value and type(back) is type(value)


def test_layout():
    doc = {"a": {"b": {"c": 1}}, "l": [[1, [2, 3]], {"x": [], "w": {"z": None}}, []], "e": {}}
    assert dumps(doc) == (
        "a:\n"
        "  b:\n"
        "    c: 1\n"
        "l:\n"
        "  - - 1\n"
        "    - - 2\n"
        "      - 3\n"
        "  - x: []\n"
        "    w:\n"
        "      z: null\n"
        "  - []\n"
        "e: {}\n"
    )
    assert dumps([]) == "[]\n" and dumps({}) == "{}\n" and dumps("x") == "x\n"


@pytest.mark.parametrize(
    "bad", [{1: "a"}, {"a": {1, 2}}, {"a": object()}, (1, 2), {"a": (1,)}, b"x", {None: 1}])
def test_unsupported_types_raise_type_error(bad):
    with pytest.raises(TypeError):
        dumps(bad)


# --- round trips ---------------------------------------------------------------

NASTY = [
    "yes", "no", "on", "off", "y", "n", "Y", "N", "true", "True", "FALSE", "null", "Null", "~", "",
    "1.0", "08", "0b101", "1_000", "12:00", "0x1F", "0o17", ".inf", "-.inf", ".nan", "1e3", "1.", "+1",
    "2026-01-01T00:00:00Z", "2026-01-01", "-", "- x", "-x", "?", "? x", ":", ":x", "a:", "a: b", "a #b",
    "a#b", "#x", ",x", "[x]", "]", "{x}", "}", "&a", "*a", "!a", "|", "|-", ">", "'x", '"x', "%x", "@x",
    "`x", " x", "x ", " ", "\t", "a\tb", "a\\b", '"', "'", "it's", 'say "hi"', "é", "日本語", "😀",
    "a\nb", "a\n", "a\n\n", "\n", "\nx", "x\n\n\n", " x\ny", "x \ny", "a\r\nb", "\x00", "\x7f", "\x85",
    "\u2028", "\ufeff", "\xa0", "---", "...", "--- x", "<<", "=", "key:value", "http://x:8080/a#b",
    "x\n y", "x\n\ty", "- a\n- b", "foo # bar\nbaz", "x\n#y\n", "a\n  b\n", "x\n\n y", "  ",
]
ALPHABET = "ab :#-'\"\\\n\t{}[],&*!|>%@`?~.0123456789é😀\r_xXeE+"


def _string(rng: random.Random) -> str:
    if rng.random() < 0.4:
        return rng.choice(NASTY)
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 12)))


def _value(rng: random.Random, depth: int = 0):
    roll = rng.random()
    if depth < 4 and roll < 0.25:
        return {_string(rng): _value(rng, depth + 1) for _ in range(rng.randint(0, 4))}
    if depth < 4 and roll < 0.45:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    kind = rng.randint(0, 9)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.randint(-10**20, 10**20) if rng.random() < 0.3 else rng.randint(-100, 100)
    if kind == 3:  # no nan: it never equals itself
        return rng.choice([0.0, -0.0, 1.5, 1e-5, 1e16, -2.5e300, math.inf, -math.inf, 3.0, 5e-324,
                           rng.uniform(-1e6, 1e6)])
    return _string(rng)


def _documents(count: int, seed: int):
    rng = random.Random(seed)
    return [_value(rng) for _ in range(count)]


def test_round_trip_property():
    for doc in _documents(3000, seed=20260501):
        text = dumps(doc)
        back = loads(text, allow_nul=True)  # a NUL is refused by default (test_nul_is_refused)
        assert back == doc, text
        assert dumps(back) == text  # same key order, same layout


def test_round_trip_nan():
    back = loads(dumps({"x": [math.nan, {"y": math.nan}]}))
    assert math.isnan(back["x"][0]) and math.isnan(back["x"][1]["y"])


def test_pyyaml_reads_what_we_write():
    """YAML 1.1 readers (PyYAML, old yq) get the same values: the quoting rules hold."""
    yaml = pytest.importorskip("yaml")
    for doc in _documents(1500, seed=7):
        text = dumps(doc)
        assert yaml.safe_load(text) == doc, text
    assert yaml.safe_load(dumps(STATE)) == STATE
    assert yaml.safe_load(dumps(QUEUE)) == QUEUE


def test_we_read_what_pyyaml_writes():
    """PyYAML's layout: lists at their key's indentation, single quotes, folded long lines."""
    yaml = pytest.importorskip("yaml")
    long = {"notes": "a long line of words that PyYAML folds at its width " * 3, "q": "x: y " * 12,
            "lines": "one\ntwo\n", "list": [["a", "b"], {"c": "d"}, "It's 1.5"]}
    for doc in [STATE, QUEUE, SUBSCRIBER, MANIFEST, CONFIG, long]:
        for text in (yaml.safe_dump(doc, sort_keys=False, allow_unicode=True),
                     yaml.safe_dump(doc, sort_keys=False, indent=4, width=20)):
            assert loads(text) == doc, text


@pytest.mark.parametrize("text,where", [
    ("a: " + "[" * 64 + "]" * 64, "1:67"),
    ("".join("  " * i + "- \n" for i in range(70)), "65:129"),
    ("x:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(70)), "65:129"),
    ("a: " + "[" * 100000 + "]" * 100000, "1:67"),
])
def test_nesting_deeper_than_the_bound_is_refused_at_its_line(text, where):
    with pytest.raises(YAMLError) as err:
        loads(text, "f.yaml")
    assert str(err.value).startswith(f"f.yaml:{where}: found lists or mappings nested more than 64 levels deep")


def test_nesting_at_the_bound_is_read():
    assert loads("[" * 64 + "]" * 64) is not None


@pytest.mark.parametrize("text,where", [
    ('a: "x\\0"', "1:6"), ('a: "\\x00"', "1:5"), ('a: "\\u0000"', "1:5"), ('a: "\\U00000000"', "1:5"),
    ("a: b\nc: x\0y", "2:5"),
])
def test_nul_is_refused(text, where):
    with pytest.raises(YAMLError) as err:
        loads(text, "f.yaml")
    assert str(err.value).startswith(f"f.yaml:{where}: found ")
    assert "NUL" in str(err.value)
    assert loads(text, allow_nul=True) is not None


def test_quoted_scalars_end_where_the_yaml_patterns_say():
    """_quote_end scans without regular expressions (start-up): the same answer as the patterns it replaced,
    for every string of up to 6 characters from quotes, backslashes and others."""
    import itertools
    import re

    from autometta import yamlsub

    patterns = {'"': re.compile(r'"(?:[^"\\]|\\.)*"'), "'": re.compile(r"'(?:[^']|'')*'")}
    for size in range(7):
        for chars in itertools.product(['"', "'", "\\", "a", " ", "\u2028"], repeat=size):
            for quote in patterns:
                line = "k: " + quote + "".join(chars)
                match = patterns[quote].match(line, 3)
                assert yamlsub._quote_end(line, 3) == (match.end() - 1 if match else -1), line


@pytest.mark.parametrize("text, value", [
    ("0", 0), ("-0", 0), ("+12", 12), ("007", "007"), ("1_000", "1_000"), ("+", "+"), ("0x1F", 31),
    ("0o17", 15), ("1.5", 1.5), ("-.inf", -float("inf")), ("1e3", 1000.0),
])
def test_plain_numbers(text, value):
    assert loads(f"a: {text}\n") == {"a": value}


def test_line_breaks_cr_lf_and_crlf():
    assert loads("a: 1\r\nb: 2\rc: 3\nd: 4") == {"a": 1, "b": 2, "c": 3, "d": 4}

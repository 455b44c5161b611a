"""The API transports (Anthropic Messages, OpenAI Responses) against a local HTTP server.

The server checks the exact request and answers with valid, invalid and
error responses; the verifier is autometta's own ``_verify-api`` command, as
the tick starts it. What a user sees: the verdict file (or its
``.invalid.json``), the log lines, the exit code, and the usage line the
tick's parsers read.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autometta import schema
from autometta.families import FAMILIES
from autometta.families.usage import Usage
from autometta.verify import request
from tests.testing.repos import make_repo
from tests.testing.fake_api import (FAKE_ANTHROPIC_KEY, FAKE_OPENAI_KEY, FakeAPI, Reply, anthropic_message, api_error,
                                    openai_response, verdict_doc)

SID = "03-greet"
IDENTITY = "Claude Sonnet 4.6 <claude-sonnet-4-6@local>"
INVOCATION = "autometta _verify-api (Anthropic Messages API, model claude-sonnet-4-6; transport api from env X)"

CARD = """\
# Stage card 03-greet: Greet

## Metadata
- **Worker:** Script Worker <script-worker@local>
- **Verifier:** Claude Sonnet 4.6 <claude-sonnet-4-6@local>

## Inputs (read these in your own context)
- `README.md`
- `notes/*.md`
- `../outside.txt`
- `missing.md`

## Deliverables
- `hello.txt`

## Acceptance criteria
1. hello.txt says hello.
"""


@pytest.fixture
def fake():
    server = FakeAPI()
    yield server
    server.close()


@pytest.fixture
def world(tmp_path, monkeypatch, fake):
    repo = make_repo(tmp_path / "proj")
    card = repo / "docs" / "stages" / f"{SID}.md"
    card.parent.mkdir(parents=True)
    card.write_text(CARD)
    (repo / "notes").mkdir()
    (repo / "notes" / "a.md").write_text("note a\n")
    import subprocess

    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", "card"], check=True)
    # the worker's changes: one tracked edit, one untracked file, and state/ noise that must not show
    (repo / "README.md").write_text("hello\nworld\n")
    (repo / "hello.txt").write_text("hello\n")
    (repo / "state" / "logs").mkdir(parents=True)
    (repo / "state" / "logs" / "secret-ish.log").write_text("STATE-NOISE\n")
    (tmp_path / "outside.txt").write_text("OUTSIDE-SECRET\n")
    for name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_BASE_URL", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ANTHROPIC_API_KEY", FAKE_ANTHROPIC_KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.base)
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_OPENAI_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", fake.base + "/v1")
    return repo, card


def verify_api(run, repo: Path, card: Path, api: str = "anthropic", model: str = "claude-sonnet-4-6",
               family: str = "claude", stage_id: str = SID, *extra: str):
    out = repo / "state" / "verifiers" / f"{stage_id}.json"
    res = run("_verify-api", "--api", api, "--family", family, "--stage-id", stage_id, "--card", str(card),
              "--repo", str(repo), "--out", str(out), "--model", model, "--identity", IDENTITY,
              "--invocation", INVOCATION, "--worker", "Script Worker <script-worker@local>", "--timeout", "1",
              *extra)
    return res, out


# ------------------------------------------------------------------ Anthropic

def test_anthropic_request_is_exact_and_a_valid_answer_becomes_the_verdict(run, world, fake):
    repo, card = world
    fake.on("/v1/messages", Reply(200, anthropic_message(json.dumps(verdict_doc(SID, headline="Greet")))))
    res, out = verify_api(run, repo, card)
    assert res.code == 0, res.err
    [seen] = fake.seen
    assert (seen.method, seen.path) == ("POST", "/v1/messages")
    assert seen.headers["x-api-key"] == FAKE_ANTHROPIC_KEY
    assert seen.headers["anthropic-version"] == "2023-06-01"
    assert seen.headers["content-type"] == "application/json"
    assert "authorization" not in seen.headers
    body = seen.body
    assert body["model"] == "claude-sonnet-4-6" and body["max_tokens"] == 8192
    [message] = body["messages"]
    static, stage = message["content"]
    assert message["role"] == "user"
    assert static["cache_control"] == {"type": "ephemeral"} and "cache_control" not in stage
    assert set(static) == {"type", "text", "cache_control"} and static["type"] == stage["type"] == "text"
    # the static block: rubric with labels, instructions, the schema; nothing stage-specific
    assert "## Verdict schema (schemas/verifier.json)" in static["text"]
    assert '"additionalProperties": false' in static["text"] and '"overall"' in static["text"]
    assert "your whole reply is the verdict" in static["text"]
    assert "{stage_id}" in static["text"] and SID not in static["text"] and str(repo) not in static["text"]
    # the stage block: context, numbered card, diff with untracked files and without state/, inputs
    text = stage["text"]
    assert f"- `{{stage_id}}`: {SID}" in text and f"- `{{verifier_invocation}}`: {INVOCATION}" in text
    assert "### docs/stages/03-greet.md\n1: # Stage card 03-greet: Greet" in text
    assert "+++ b/hello.txt" in text and "+world" in text and "STATE-NOISE" not in text
    assert "### README.md\n1: hello\n2: world" in text and "### notes/a.md\n1: note a" in text
    assert "### ../outside.txt\n(outside the repo; not attached)" in text and "OUTSIDE-SECRET" not in text
    assert "### missing.md\n(does not exist in the working tree)" in text
    # the verdict: schema-valid, bookkeeping set by autometta, headline kept
    doc = json.loads(out.read_text())
    assert schema.errors(doc, schema.load_schema("verifier")) == []
    assert (doc["stage_id"], doc["verifier_identity"], doc["verifier_invocation"]) == (SID, IDENTITY, INVOCATION)
    assert doc["overall"] == "PASS" and doc["headline"] == "Greet" and doc["ran_at"].endswith("Z")
    assert f"verify-api: verdict PASS written to {out}" in res.out
    assert FAKE_ANTHROPIC_KEY not in res.out + res.err
    # the usage line the claude parser reads: cache tokens and cost from the price table
    usage = FAMILIES["claude"].parse_usage(res.out)
    assert (usage.input_tokens, usage.cache_write_tokens, usage.cache_read_tokens, usage.output_tokens) == \
        (1200, 3000, 0, 400)
    assert usage.cost_usd == request.cost_usd("claude-sonnet-4-6", Usage(1200, 400, 0, 3000))
    assert usage.cost_usd == pytest.approx((1200 * 3 + 3000 * 3.75 + 400 * 15) / 1e6)


def test_the_static_block_is_the_same_for_every_stage_so_it_caches(run, world, fake):
    repo, card = world
    other = card.with_name("04-other.md")
    other.write_text(CARD.replace("03-greet", "04-other"))
    fake.on("/v1/messages", lambda seen: Reply(200, anthropic_message(json.dumps(verdict_doc("03-greet")))))
    verify_api(run, repo, card)
    verify_api(run, repo, other, "anthropic", "claude-sonnet-4-6", "claude", "04-other")
    first, second = (s.body["messages"][0]["content"] for s in fake.seen)
    assert first[0] == second[0] and first[1] != second[1]


def test_a_fail_verdict_exits_1(run, world, fake):
    repo, card = world
    fake.on("/v1/messages", Reply(200, anthropic_message("```json\n" + json.dumps(verdict_doc(SID, "FAIL")) + "\n```")))
    res, out = verify_api(run, repo, card)
    assert res.code == 1 and json.loads(out.read_text())["overall"] == "FAIL"


@pytest.mark.parametrize("answer,why", [
    ("It looks fine to me.", "the answer is not one JSON object with an 'overall' field"),
    (json.dumps({k: v for k, v in verdict_doc(SID).items() if k != "criteria"}), "$: missing required field 'criteria'"),
    (json.dumps(verdict_doc(SID, notes="extra")), "notes"),
    (json.dumps(verdict_doc(SID, overall="MAYBE")), "'MAYBE' is not one of PASS, FAIL"),
])
def test_an_invalid_answer_is_kept_aside_and_is_no_verdict(run, world, fake, answer, why):
    repo, card = world
    fake.on("/v1/messages", Reply(200, anthropic_message(answer)))
    res, out = verify_api(run, repo, card)
    assert res.code == 3
    assert not out.exists()
    kept = json.loads(out.with_name(out.name + ".invalid.json").read_text())
    assert why in kept["errors"][0]
    assert "verify-api: invalid answer (" in res.err and ".invalid.json" in res.err
    assert FAMILIES["claude"].parse_usage(res.out).output_tokens == 400  # spent all the same


@pytest.mark.parametrize("reply,shown", [
    (Reply(400, api_error("invalid_request_error", "max_tokens: too big")),
     "Anthropic Messages API: HTTP 400: invalid_request_error: max_tokens: too big; not retried"),
    (Reply(401, api_error("authentication_error", "invalid x-api-key")),
     "Anthropic Messages API: HTTP 401: authentication_error: invalid x-api-key; not retried"),
    (Reply(429, api_error("rate_limit_error", "slow down"), {"retry-after": "30"}),
     "Anthropic Messages API: HTTP 429: rate_limit_error: slow down (retry-after 30s); not retried"),
    (Reply(529, api_error("overloaded_error", "Overloaded")),
     "Anthropic Messages API: HTTP 529: overloaded_error: Overloaded; not retried"),
    (Reply(500, "<html>bad gateway</html>"), "Anthropic Messages API: HTTP 500: <html>bad gateway</html>; not retried"),
    (Reply(hang=True), "Anthropic Messages API: no answer: timed out after 1s (POST "),
])
def test_http_errors_are_reported_once_and_never_retried(run, world, fake, reply, shown):
    repo, card = world
    fake.on("/v1/messages", reply)
    res, out = verify_api(run, repo, card)
    assert res.code == 4
    assert shown in res.err
    assert len(fake.seen) == 1
    assert not out.exists() and not out.with_name(out.name + ".invalid.json").exists()
    assert FAMILIES["claude"].parse_usage(res.out) is None


def test_no_key_fails_closed_before_any_request(run, world, fake, monkeypatch):
    repo, card = world
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    res, out = verify_api(run, repo, card)
    assert res.code == 2 and fake.seen == []
    assert "ANTHROPIC_API_KEY is not in the verifier's environment" in res.err
    assert "auth.claude.mode: api" in res.err


def test_diff_and_inputs_are_cut_at_their_limits(run, world, fake):
    repo, card = world
    (repo / "big.txt").write_text("x" * 5000 + "\n")
    fake.on("/v1/messages", Reply(200, anthropic_message(json.dumps(verdict_doc(SID)))))
    verify_api(run, repo, card, "anthropic", "claude-sonnet-4-6", "claude", SID,
               "--max-diff-chars", "1000", "--max-input-chars", "8")
    text = fake.seen[0].body["messages"][0]["content"][1]["text"]
    assert "[... diff cut here:" in text and "big.txt" in text.split("```diff")[1][:2000]  # named in --stat
    assert "### README.md\n1: hello\n2: wo\n[... file cut here after 8 characters]" in text
    assert "### notes/a.md\n(not attached: the inputs' size limit of 8 characters is reached)" in text


# ------------------------------------------------------------------ OpenAI

def test_openai_request_is_exact_and_usage_counts_cached_tokens(run, world, fake):
    repo, card = world
    fake.on("/v1/responses", Reply(200, openai_response(json.dumps(verdict_doc(SID)))))
    res, out = verify_api(run, repo, card, "openai", "gpt-5.5", "codex")
    assert res.code == 0, res.err
    [seen] = fake.seen
    assert (seen.method, seen.path) == ("POST", "/v1/responses")
    assert seen.headers["authorization"] == f"Bearer {FAKE_OPENAI_KEY}"
    assert seen.headers["content-type"] == "application/json" and "x-api-key" not in seen.headers
    body = seen.body
    assert body["model"] == "gpt-5.5" and body["store"] is False
    assert body["prompt_cache_key"] == "autometta-verifier"
    assert "## Verdict schema (schemas/verifier.json)" in body["instructions"]
    [item] = body["input"]
    assert item["role"] == "user" and item["content"][0]["type"] == "input_text"
    assert f"- `{{stage_id}}`: {SID}" in item["content"][0]["text"]
    fmt = body["text"]["format"]
    assert (fmt["type"], fmt["name"], fmt["strict"]) == ("json_schema", "verifier_verdict", False)
    assert "$schema" not in fmt["schema"] and "$id" not in fmt["schema"]
    assert fmt["schema"]["required"] == schema.load_schema("verifier")["required"]
    doc = json.loads(out.read_text())
    assert doc["overall"] == "PASS" and doc["verifier_invocation"] == INVOCATION
    usage = FAMILIES["codex"].parse_usage(res.out)
    assert (usage.input_tokens, usage.cache_read_tokens, usage.output_tokens) == (1000, 4000, 300)
    assert usage.cost_usd == pytest.approx((1000 * 1.25 + 4000 * 0.125 + 300 * 10) / 1e6)


@pytest.mark.parametrize("reply,code,shown", [
    (Reply(400, {"error": {"message": "Invalid schema", "type": "invalid_request_error", "code": None}}), 4,
     "OpenAI Responses API: HTTP 400: invalid_request_error: Invalid schema; not retried"),
    (Reply(429, {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}},
           {"retry-after": "7"}), 4,
     "OpenAI Responses API: HTTP 429: requests: Rate limit reached (retry-after 7s); not retried"),
    (Reply(503, {"error": {"message": "overloaded", "type": "server_error"}}), 4,
     "OpenAI Responses API: HTTP 503: server_error: overloaded; not retried"),
    (Reply(hang=True), 4, "OpenAI Responses API: no answer: timed out after 1s"),
    (Reply(200, openai_response("not json at all")), 3, "verify-api: invalid answer (the answer is not one JSON"),
])
def test_openai_errors_and_invalid_answers(run, world, fake, reply, code, shown):
    repo, card = world
    fake.on("/v1/responses", reply)
    res, out = verify_api(run, repo, card, "openai", "gpt-5.5", "codex")
    assert res.code == code and shown in res.err
    assert len(fake.seen) == 1 and not out.exists()


def test_openai_refusal_is_an_invalid_answer(run, world, fake):
    repo, card = world
    reply = openai_response("")
    reply["output"][1]["content"] = [{"type": "refusal", "refusal": "I can't help with that."}]
    fake.on("/v1/responses", Reply(200, reply))
    res, out = verify_api(run, repo, card, "openai", "gpt-5.5", "codex")
    assert res.code == 3 and "stop=refused: I can't help with that." in res.out

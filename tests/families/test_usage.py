"""Tokens, cost and usage limits from agent logs: real CLI output (tests/data/cli/, made by
``AUTOMETTA_REGEN_CLI_FIXTURES=1 pytest tests/e2e``) and the bash version's text formats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autometta.families.claude import parse_claude_log
from autometta.families.codex import parse_codex_log
from autometta.families.usage import Usage, UsageLimit, detect_usage_limit, find_usage_limit

CLI = Path(__file__).resolve().parents[1] / "data" / "cli"


def sample(name: str) -> str:
    return (CLI / name).read_text(encoding="utf-8")


# -- Usage ---------------------------------------------------------------------

def test_total_tokens_counts_fresh_input_cache_writes_and_output_but_not_cache_reads():
    usage = Usage(input_tokens=1000, output_tokens=50, cache_read_tokens=9000, cache_write_tokens=300)
    assert usage.total_tokens == 1350
    assert Usage(unsplit_tokens=117339).total_tokens == 117339
    assert Usage().total_tokens == 0


# -- claude --------------------------------------------------------------------

def test_claude_stream_json_log_uses_the_result_event():
    usage = parse_claude_log(sample("claude-stream.jsonl"))
    assert usage == Usage(input_tokens=3300, output_tokens=115, cache_read_tokens=1300, cache_write_tokens=300,
                          cost_usd=pytest.approx(0.01314))
    assert usage.total_tokens == 3715


def test_claude_json_output_single_object():
    usage = parse_claude_log(sample("claude-result.json"))
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_tokens, usage.cache_write_tokens) == (
        1000, 50, 200, 300)
    assert usage.cost_usd == pytest.approx(0.004935)


def test_claude_json_output_pretty_printed_or_as_an_array_of_events():
    final = json.loads(sample("claude-result.json"))
    assert parse_claude_log(json.dumps(final, indent=2)).input_tokens == 1000
    events = [json.loads(line) for line in sample("claude-stream.jsonl").splitlines()]
    assert parse_claude_log(json.dumps(events)).input_tokens == 3300  # --output-format json --verbose


def test_claude_last_result_event_wins():
    log = sample("claude-result.json") + sample("claude-stream.jsonl")
    assert parse_claude_log(log).input_tokens == 3300


def test_claude_log_cut_short_counts_each_assistant_message_once():
    lines = [line for line in sample("claude-stream.jsonl").splitlines() if '"type":"result"' not in line]
    repeated = lines + lines[1:2]  # the same message id again: not counted twice
    usage = parse_claude_log("\n".join(repeated))
    assert (usage.input_tokens, usage.cache_read_tokens, usage.cache_write_tokens) == (3300, 1300, 300)
    assert usage.output_tokens == 3  # only the first chunk's count: an undercount
    assert usage.cost_usd is None


def test_claude_error_result_counts_zero_and_costs_nothing():
    assert parse_claude_log(sample("claude-429.jsonl")) == Usage(cost_usd=0.0)


@pytest.mark.parametrize("log, expected", [
    ("Total tokens: 117,339 prompt+output\n", 117339),
    ("cache: write=10 read=20 input=30 output=40\nTotal tokens: 70\n", 70),
    ("Total tokens: 5\nmore work\nTotal tokens: 1,234,567\ntrailing\n", 1234567),  # last match wins
    ("[verifier] Total tokens:   42 (approx)", 42),
    ("Total tokens: 1 2", 12),  # the bash scan skips spaces between digits
])
def test_claude_bash_era_total_tokens_line(log, expected):
    assert parse_claude_log(log) == Usage(unsplit_tokens=expected)


@pytest.mark.parametrize("log", ["", "hello\n", "Total tokens: none\n", sample("claude-root-refusal.txt"), "{not json"])
def test_claude_nothing_to_count(log):
    assert parse_claude_log(log) is None


# -- codex ---------------------------------------------------------------------

def test_codex_json_log_sums_turn_completed():
    usage = parse_codex_log(sample("codex-exec.jsonl"))
    assert usage == Usage(input_tokens=3300, output_tokens=115, cache_read_tokens=1300)
    assert usage.cost_usd is None
    assert usage.total_tokens == 3415  # the same as plain mode's "tokens used"


def test_codex_several_turns_are_added_up():
    turn = ('{"type":"turn.completed","usage":{"input_tokens":100,"cached_input_tokens":40,'
            '"cache_write_input_tokens":10,"output_tokens":5,"reasoning_output_tokens":2}}\n')
    assert parse_codex_log(turn + "noise\n" + turn) == Usage(input_tokens=100, output_tokens=10,
                                                               cache_read_tokens=80, cache_write_tokens=20)


def test_codex_plain_mode_stderr():
    assert parse_codex_log(sample("codex-exec-plain.stderr")) == Usage(unsplit_tokens=3415)


@pytest.mark.parametrize("log, expected", [
    ("tokens used\n2,580\n", 2580),
    ("codex\ndone\n  tokens used  \n 12,345,678 \n", 12345678),
    ("tokens used\n100\nlater\ntokens used\n2,580\n", 2580),  # last match wins
])
def test_codex_bash_era_tokens_used(log, expected):
    assert parse_codex_log(log) == Usage(unsplit_tokens=expected)


@pytest.mark.parametrize("log", ["", "tokens used\n", "tokens used: 12\n", "tokens used\nnone\n",
                                 sample("codex-429.jsonl"), sample("codex-429-plain.stderr")])
def test_codex_nothing_to_count(log):
    assert parse_codex_log(log) is None


# -- usage limits --------------------------------------------------------------

@pytest.mark.parametrize("name, kind, resets_at", [
    ("claude-usage-limit.jsonl", "usage", "2030-03-17T17:46:40Z"),
    ("claude-429.jsonl", "rate", None),
    ("codex-429.jsonl", "usage", "Mar 17th, 2030 5:46 PM"),
    ("codex-429-plain.stderr", "usage", "Mar 17th, 2030 5:46 PM"),
    ("codex-429-rate.jsonl", "rate", None),
])
def test_usage_limit_in_real_output(name, kind, resets_at):
    limit = find_usage_limit(sample(name))
    assert (limit.kind, limit.resets_at) == (kind, resets_at)
    assert detect_usage_limit(sample(name)) == (resets_at or "")


@pytest.mark.parametrize("text, expected", [
    # claude plain -p prints only the message (subscription)
    ("You've hit your session limit · resets 3:50pm (UTC)\n", UsageLimit(
        "usage", "You've hit your session limit · resets 3:50pm (UTC)", "3:50pm (UTC)")),
    ("You've hit your weekly limit · resets Nov 29, 1:50pm (Europe/Paris)", UsageLimit(
        "usage", "You've hit your weekly limit · resets Nov 29, 1:50pm (Europe/Paris)", "Nov 29, 1:50pm (Europe/Paris)")),
    ("You've hit your Opus limit", UsageLimit("usage", "You've hit your Opus limit", None)),
    # claude 2.1.332 names the window
    ("You've hit your 5-hour limit · resets 6:29pm (UTC)", UsageLimit(
        "usage", "You've hit your 5-hour limit · resets 6:29pm (UTC)", "6:29pm (UTC)")),
    # claude before 2.x
    ("Claude AI usage limit reached|1900000000", UsageLimit(
        "usage", "Claude AI usage limit reached|1900000000", "2030-03-17T17:46:40Z")),
    # claude with an API key
    ("API Error: Request rejected (429) · rate limit error", UsageLimit(
        "rate", "API Error: Request rejected (429) · rate limit error", None)),
    # codex plain mode, per plan
    ("ERROR: You\u2019ve hit your usage limit. Upgrade to Plus to continue using Codex "
     "(https://chatgpt.com/explore/plus), or try again at 3:50 PM.", UsageLimit(
        "usage", "You\u2019ve hit your usage limit. Upgrade to Plus to continue using Codex "
        "(https://chatgpt.com/explore/plus), or try again at 3:50 PM.", "3:50 PM")),
    ("ERROR: You\u2019ve hit your usage limit. Try again later.", UsageLimit(
        "usage", "You\u2019ve hit your usage limit. Try again later.", None)),
    ("ERROR: Quota exceeded. Check your plan and billing details.", UsageLimit(
        "usage", "Quota exceeded. Check your plan and billing details.", None)),
    ("ERROR: exceeded retry limit, last status: 429 Too Many Requests", UsageLimit(
        "rate", "exceeded retry limit, last status: 429 Too Many Requests", None)),
])
def test_usage_limit_messages(text, expected):
    assert find_usage_limit(text) == expected


@pytest.mark.parametrize("name", ["claude-stream.jsonl", "claude-result.json", "claude-root-refusal.txt",
                                  "codex-exec.jsonl", "codex-exec-plain.stderr"])
def test_no_usage_limit_in_successful_or_unrelated_output(name):
    assert find_usage_limit(sample(name)) is None
    assert detect_usage_limit(sample(name)) is None


def test_a_limit_sentence_early_in_a_plain_log_is_not_a_limit():
    """A worker that cat-ed a file quoting the message did not hit the limit."""
    log = "exec\ncat notes.txt\nYou've hit your session limit · resets 3pm\n" + "working\n" * 20 + "tokens used\n5\n"
    assert find_usage_limit(log) is None


def test_a_codex_run_that_finished_quoting_the_limit_is_not_a_limit():
    log = "codex\nThe docs say: You\u2019ve hit your usage limit. Try again later.\ntokens used\n1,234\n"
    assert find_usage_limit(log) is None


def test_a_limit_quoted_in_a_tool_result_is_not_a_limit():
    tool_result = {"type": "user", "message": {"role": "user", "content": [
        {"type": "tool_result", "content": "You've hit your session limit · resets 3pm"}]}}
    log = json.dumps(tool_result) + "\n" + sample("claude-stream.jsonl").splitlines()[-1]
    assert find_usage_limit(log) is None


def test_a_later_successful_result_clears_an_earlier_limit():
    log = sample("claude-usage-limit.jsonl") + sample("claude-stream.jsonl")
    assert find_usage_limit(log) is None
    assert find_usage_limit(sample("claude-stream.jsonl") + sample("claude-usage-limit.jsonl")).kind == "usage"


@pytest.mark.parametrize("printed, expected", [
    ((18, 17, 0), (17, 18, 17)),  # codex printed "try again at 6:17 PM" at 6:17: that is now, not tomorrow
    ((18, 17, 59), (17, 18, 17)),
    ((18, 16, 10), (17, 18, 17)),
    ((18, 18, 0), (18, 18, 17)),  # that minute is over: tomorrow's
])
def test_a_time_of_day_reset_in_the_minute_it_was_printed_is_today(printed, expected):
    import datetime

    from autometta.families.usage import reset_epoch

    now = datetime.datetime(2030, 3, 17, *printed).timestamp()
    day, hour, minute = expected
    assert reset_epoch("6:17 PM", now) == datetime.datetime(2030, 3, day, hour, minute).timestamp()

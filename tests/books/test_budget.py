"""Lifetime spend survives resets: --reset-halt zeroes the counter a cap compares, never the lifetime total."""

from __future__ import annotations

import json

import pytest

from autometta.books import budget as budgets
from tests.testing.ticks import PASS_WORKER, read_budget, run_until_quiet, stage, verifier_writes

SID = "01-hello"


def _usage(tokens: int, cost: float) -> str:
    return (f"printf 'autometta-usage: {{\"input_tokens\": {tokens}, \"output_tokens\": 0, "
            f"\"cost_usd\": {cost}}}\\n'")


def _set(repo, **fields):
    path = repo / "state" / "budget.json"
    doc = json.loads(path.read_text())
    doc.update(fields)
    path.write_text(json.dumps(doc, indent=2))


def test_reset_after_a_token_cap_halt_keeps_the_lifetime_spend(setup, run):
    repo, home, add = setup
    add(SID, worker_cmd=f"{_usage(600, 0.5)} && {PASS_WORKER.replace('{id}', SID)}",
        verifier_cmd=f"{_usage(300, 0.25)} && {verifier_writes(SID)}")
    add("02-again", worker_cmd=f"{_usage(700, 0.5)} && {PASS_WORKER.replace('{id}', '02-again')}",
        verifier_cmd=f"{_usage(100, 0.25)} && {verifier_writes('02-again')}")
    _set(repo, token_cap_total=1500)
    run_until_quiet(home, repo)
    b = read_budget(repo)
    assert (b["halted"], b["halt_reason"]) == (True, "token-cap"), b
    assert b["tokens_spent"] == b["lifetime_tokens"] == 1600  # 01 (900) and 02's worker (700)
    assert b["lifetime_cost_usd"] == pytest.approx(1.25)

    assert run("tick", "--reset-halt").code == 0
    b = read_budget(repo)
    assert b["halted"] is False and b["tokens_spent"] == 0  # only what tripped is reset
    assert b["cost_usd_spent"] == pytest.approx(1.25)
    assert b["lifetime_tokens"] == 1600 and b["lifetime_cost_usd"] == pytest.approx(1.25)

    report = json.loads(run("report", "--json").out)
    spend = report["repos"][0]["spend"]
    assert spend["tokens_spent"] == 0 and spend["lifetime_tokens"] == 1600
    assert "lifetime 1.6k tokens" in run("report").out
    data = json.loads(run("dashboard", "--json").out)
    assert data["repos"][0]["lifetime_tokens"] == 1600 and data["repos"][0]["tokens_spent"] == 0
    assert data["totals"]["lifetime_tokens"] == 1600
    row = json.loads(run("status", "--json").out)["repos"][0]
    assert row["lifetime_tokens"] == 1600

    run_until_quiet(home, repo)  # 02's verifier runs now, and counts in both
    assert stage(repo, "02-again")["status"] == "completed"
    b = read_budget(repo)
    assert b["tokens_spent"] == 100 and b["lifetime_tokens"] == 1700
    assert b["lifetime_wall_clock_seconds"] >= b["wall_clock_elapsed_seconds"]


@pytest.mark.parametrize("reason,counter,value", [
    ("token-cap", "tokens_spent", 1000000),
    ("cost-cap", "cost_usd_spent", 12.5),
    ("wall-clock-cap", "wall_clock_elapsed_seconds", 3600),
])
def test_a_bash_era_budget_keeps_its_spend_through_a_reset(setup, run, reason, counter, value):
    """A budget.json without lifetime fields (the bash version's): the reset moves the spend there first."""
    repo, home, add = setup
    _set(repo, **{counter: value, "halted": True, "halt_reason": reason, "halted_at": "2026-11-26T00:00:00Z",
                  "cost_cap_usd": 10.0})
    assert run("tick", "--reset-halt").code == 0
    b = read_budget(repo)
    assert b[counter] == 0 and not b["halted"]
    lifetime = {c: t for t, c in budgets.LIFETIME}[counter]
    assert b[lifetime] == pytest.approx(value)
    for field, original in budgets.DEFAULTS.items():  # the bash fields are all still there
        assert field in b


def test_lifetime_is_never_below_the_counter():
    assert budgets.lifetime({"tokens_spent": 50, "lifetime_tokens": 20})["lifetime_tokens"] == 50
    b = dict(budgets.DEFAULTS, tokens_spent=10)
    budgets.spend(b, tokens=5, cost_usd=0.5, seconds=3)
    assert (b["tokens_spent"], b["lifetime_tokens"]) == (15, 15)
    assert (b["cost_usd_spent"], b["lifetime_cost_usd"]) == (0.5, 0.5)
    assert (b["wall_clock_elapsed_seconds"], b["lifetime_wall_clock_seconds"]) == (3, 3)


def test_a_run_by_hand_counts_in_the_lifetime_too(setup, run):
    """The spend ledger folds a run started by hand into the caps' counters on the next tick; the
    lifetime totals grow with it, and a reset after it keeps it."""
    from tests.testing.ticks import commit_all, script_card, tick_once

    repo, home, _ = setup
    card = script_card(repo, SID, worker_cmd=f"{_usage(400, 0.5)} && {PASS_WORKER.replace('{id}', SID)}")
    commit_all(repo, "card")
    assert run("dispatch", "--wait", str(card)).code == 0
    _set(repo, halted=True, halt_reason="token-cap", halted_at="2026-11-26T00:00:00Z")
    tick_once(home)  # halted: it only folds the ledger into budget.json
    b = read_budget(repo)
    assert b["tokens_spent"] == b["lifetime_tokens"] == 400, b
    assert run("tick", "--reset-halt").code == 0
    b = read_budget(repo)
    assert b["tokens_spent"] == 0 and b["lifetime_tokens"] == 400 and b["lifetime_cost_usd"] == pytest.approx(0.5)

"""tick/bookkeeping: what a transition writes into state and budget, as tables. No files, no processes."""

from __future__ import annotations

import copy
from typing import Any, Dict

import pytest

from autometta import verdicts
from autometta.agents import runs
from autometta.agents.roles import ROLES
from autometta.books.budget import initial_budget
from autometta.books.state import initial_state, new_stage
from autometta.families.usage import Usage
from autometta.tick import bookkeeping as bk
from autometta.timeutil import now_iso

NOW = 1_900_000_000.0
SID = "01-thing"


def stage(**fields: Any) -> Dict[str, Any]:
    out = new_stage(SID, "Claude Sonnet 4.6 <claude-sonnet-4-6@local>", "Codex GPT-5.5 <codex-gpt-5-5@local>")
    out.update(fields)
    return out


def test_the_cleared_fields_name_the_run_marks_and_verdict_fields_as_their_modules_do():
    assert set(verdicts.FIELDS) == set(bk.VERDICT_RUN_FIELDS)
    assert {runs.key(role) for role in (*ROLES, runs.COMMIT)} | {"commit_from"} == set(bk.RUN_KEYS)


@pytest.mark.parametrize("before", [
    {},  # a fresh pending stage
    {"status": "failed", "stall_marker": "verifier_fail", "stopped_at": "2026-01-01T00:00:00Z", "worker_pid": 4,
     "worker_tree": "abc", "loops": 3, "verifier_attempts": 2, "worktree": "/w", "branch": "autometta/01-thing",
     "merge": "queued", "claim_head": "deadbeef", "worker_run_id": "r1", "commit_run_id": "r2",
     "verifier_run_artefact": "state/verifiers/x.json", "acceptance": "pass", "commit": "c0ffee"},  # requeued
])
def test_a_claim_clears_what_an_earlier_run_left(before):
    s = stage(**before)
    bk.claim(s, NOW)
    assert s["status"] == "in_progress" and s["started_at"] == now_iso(NOW) and s["verifier_attempts"] == 0
    assert [key for key in before if key not in ("status", "verifier_attempts") and s[key] is not None] == []


def test_a_claim_leaves_fields_it_does_not_know_and_adds_none():
    s = stage(notes="kept", worker_tokens=7)
    keys = set(s)
    bk.claim(s, NOW)
    assert s["notes"] == "kept" and s["worker_tokens"] == 7 and set(s) == keys | {"started_at", "verifier_attempts"}


def test_a_rebrief_clears_the_round_and_counts_the_loop():
    s = stage(worker_tree="t", verifier_tree="v", worker_exit=0, verifier_artefact="a", acceptance="pass",
              verifier_run_artefact="r", verifier_dispatched_at="d", verifier_attempts=2, worktree="/w", commit=None)
    bk.rebrief(s, 2)
    assert s["loops"] == 2 and s["verifier_attempts"] == 0 and s["worktree"] == "/w"
    assert all(s[key] is None for key in ("worker_tree", "verifier_tree", "worker_exit", "verifier_artefact",
                                           "acceptance", "verifier_run_artefact", "verifier_dispatched_at"))


@pytest.mark.parametrize("role,attempts", [("worker", 0), ("verifier", 3), ("acceptance", 0), ("setup", 0)])
def test_a_started_run_is_recorded_and_a_verifier_counts_an_attempt(role, attempts):
    s = stage(verifier_attempts=2 if role == "verifier" else 0)
    bk.started(s, role, 4242, NOW)
    assert (s[f"{role}_pid"], s[f"{role}_started"], s["verifier_attempts"]) == (4242, NOW, attempts)


@pytest.mark.parametrize("role,usage,before,after", [
    ("worker", Usage(input_tokens=100, output_tokens=20, cost_usd=0.5), {},
     {"worker_seconds": 30, "worker_tokens": 120, "tokens": 120, "worker_cost_usd": 0.5, "cost_usd": 0.5,
      "worker_exit": 0}),
    ("verifier", Usage(input_tokens=10, output_tokens=5), {"worker_tokens": 120, "verifier_seconds": 5},
     {"verifier_seconds": 35, "verifier_tokens": 15, "tokens": 135}),
    ("verifier", None, {"verifier_seconds": 5}, {"verifier_seconds": 35}),  # no usage line: seconds only
    ("worker", Usage(input_tokens=1, output_tokens=1, cost_usd=0.1234567), {"worker_cost_usd": 0.1, "verifier_cost_usd": 0.2},
     {"worker_cost_usd": 0.223457, "cost_usd": 0.423457, "worker_tokens": 2, "tokens": 2, "worker_seconds": 30,
      "worker_exit": 0}),
    ("acceptance", Usage(input_tokens=9, cost_usd=9.0), {}, {}),  # a command has no tokens or seconds of its own on the stage
])
def test_accounting_adds_the_run_to_the_stage_and_clears_its_pid(role, usage, before, after):
    s = stage(**before, **{f"{role}_pid": 7, f"{role}_started": NOW, f"{role}_run_id": "r"})
    expected = dict(s, **after, **{f"{role}_pid": None, f"{role}_started": None, f"{role}_run_id": None})
    bk.account(s, role, 30, usage if role in ("worker", "verifier") else None, exit_code=0)
    assert s == expected


@pytest.mark.parametrize("status,marker,failures,current,merge", [
    ("completed", None, 0, None, None),
    ("failed", "verifier_fail", 3, None, None),
    ("stalled", "worker_timeout", 3, SID, "queued"),  # the repo's current stage is cleared, a queued merge too
    ("merge_conflict", "merge_conflict: a.py", 3, "99-other", "checking"),  # another current stage stays
])
def test_finishing_a_stage(status, marker, failures, current, merge):
    doc, budget = initial_state(), initial_budget()
    budget["consecutive_failures"] = 2
    s = stage(status="in_progress", merge=merge)
    doc["stages"].append(s)
    doc["current_stage"] = current
    bk.finish(doc, budget, s, status, marker, NOW)
    assert (s["status"], s["stall_marker"], s["merge"]) == (status, marker, None)
    assert s.get("completed_at" if status == "completed" else "stopped_at") == now_iso(NOW)
    assert budget["consecutive_failures"] == failures
    assert doc["current_stage"] == (None if current in (None, SID) else current)


def test_finishing_without_a_stage_clears_the_current_one_and_counts():
    doc, budget = initial_state(), initial_budget()
    doc["current_stage"] = SID
    bk.finish(doc, budget, None, "stalled", "x", NOW)
    assert doc["current_stage"] is None and budget["consecutive_failures"] == 1


def test_a_halt_is_written_to_both_documents():
    doc, budget = initial_state(), initial_budget()
    bk.halt(doc, budget, "token-cap", NOW)
    assert (budget["halted"], budget["halt_reason"], budget["halted_at"]) == (True, "token-cap", now_iso(NOW))
    assert (doc["halted"], doc["halt_reason"]) == (True, "token-cap")


@pytest.mark.parametrize("cap,used,remaining", [(100, 0, 99), (100, 99, 0), (100, 150, 0), (None, 5, "as it was")])
def test_a_transition_spends_a_clock_tick(cap, used, remaining):
    doc, budget = initial_state(), initial_budget()
    budget.update(clock_tick_cap=cap, clock_ticks_used=used)
    before = copy.deepcopy(doc)
    bk.transition(doc, budget, NOW)
    assert budget["clock_ticks_used"] == used + 1
    assert doc["tick_count"] == (before.get("tick_count") or 0) + 1 and doc["last_tick_at"] == now_iso(NOW)
    assert doc["clock_tick_budget_remaining"] == (before["clock_tick_budget_remaining"] if cap is None else remaining)

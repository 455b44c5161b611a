"""decide(): every branch, as a table. No files, no processes, no git."""

from __future__ import annotations

import subprocess
import sys
from typing import List, Optional

import pytest

from autometta.books.budget import initial_budget
from autometta.families.usage import Usage
from autometta.tick import decide as d
from autometta.tick.outcomes import Artefact, Envelope
from tests.testing.decisions import (CLAUDE, CODEX, FAIL_DOC, LANE, NOW, PARKED, PASS_DOC, ROUTES, SID,
                                     effects, exited, facts, inflight, lane, limited, running, state_with)


# ------------------------------------------------------------------ caps and halts

@pytest.mark.parametrize("field,value,reason", [
    ("tokens_spent", 1000000, "token-cap"),
    ("wall_clock_elapsed_seconds", 3600, "wall-clock-cap"),
    ("clock_ticks_used", 100, "tick-cap"),
    ("consecutive_failures", 3, "failure-cap"),
    ("cost_usd_spent", 5.0, "cost-cap"),
    ("token_cap_total", None, "token-cap"),  # a missing required cap counts as reached, as under jq
])
def test_caps_halt_with_the_canonical_reason(field, value, reason):
    b = initial_budget()
    b[field] = value
    if reason == "cost-cap":
        b["cost_cap_usd"] = 5.0
    dec = d.decide(facts(budget=b))
    assert dec.halt == reason and dec.effects == []
    assert dec.message == f"halted /r due to {reason}"


def test_cost_cap_absent_means_no_cap():
    b = initial_budget()
    b["cost_usd_spent"] = 1e9
    assert d.decide(facts(budget=b)).halt is None


def test_already_halted_is_a_quiet_noop():
    b = initial_budget()
    b.update(halted=True, halt_reason="tick-cap")
    dec = d.decide(facts(budget=b))
    assert not dec.transition and dec.halt is None
    assert dec.message == "halted /r (reason already recorded: tick-cap)"


def test_caps_are_checked_before_anything_else():
    doc = state_with("in_progress", SID, worker_pid=5)
    b = initial_budget()
    b["clock_ticks_used"] = 100
    dec = d.decide(facts(doc, budget=b, cur=inflight(doc, artefact=Artefact("verdict", "PASS"))))
    assert dec.halt == "tick-cap"


# ------------------------------------------------------------------ idle

def test_no_pending_stage_is_idle_and_needs_no_git():
    def boom():
        raise AssertionError("an idle repo must not ask git")

    f = facts(state_with("completed"))
    f.dirty = boom
    dec = d.decide(f)
    assert not dec.transition and dec.message == "idle /r: no pending stage"


def test_claim_dispatches_worker():
    """decide() claims into the repo's own tree (isolation: tree): what is already changed is recorded first."""
    dec = d.decide(facts(pending=d.Pending(SID, worker="W"), dirty=[]))
    assert effects(dec) == [f"claim:{SID}", "record_claim", "launch:worker"]
    assert dec.transition


def test_a_serial_claim_goes_into_a_worktree_of_its_own():
    f = facts(pending=d.Pending(SID, worker="W"))
    dec = d.decide_claim(f)
    assert effects(dec) == [f"claim:{SID}", "worktree", "launch:worker"]
    assert dec.message == f"claimed {SID} for /r; dispatching worker W in its worktree"  # no lanes at max_parallel 1
    f.in_tree = True
    assert effects(d.decide_claim(f)) == [f"claim:{SID}", "record_claim", "launch:worker"]


def test_missing_card_keeps_the_stage_pending_without_spending_a_tick():
    dec = d.decide(facts(pending=d.Pending(SID, card_found=False), dirty=[]))
    assert not dec.transition and dec.effects == [] and "stage card missing" in dec.message


@pytest.mark.parametrize("in_tree", [False, True])
def test_a_dirty_tree_does_not_stop_a_claim_and_is_not_asked(in_tree):
    def boom():
        raise AssertionError("a claim does not look at the user's tree")

    f = facts(pending=d.Pending(SID))
    f.dirty, f.in_tree = boom, in_tree
    dec = d.decide_claim(f)
    assert dec.halt is None and effects(dec)[0] == f"claim:{SID}"


def test_preflight_failure_stalls_without_spawning():
    dec = d.decide(facts(pending=d.Pending(SID, preflight="claude_cli_missing"), dirty=[]))
    assert effects(dec) == [f"claim:{SID}"] and dec.finish == ("stalled", "claude_cli_missing")


def test_invalid_pending_id_halts():
    dec = d.decide(facts(pending=d.Pending("../x"), dirty=[]))
    assert dec.halt == "invalid-stage-id"


# ------------------------------------------------------------------ in flight: ids and records

def test_invalid_current_stage_halts():
    doc = state_with("in_progress", "Bad Id")
    assert d.decide(facts(doc, cur=d.InFlight(stage=None))).halt == "invalid-stage-id"


def test_current_stage_without_record_is_cleared():
    doc = state_with("pending", "02-ghost")
    dec = d.decide(facts(doc, cur=d.InFlight(stage=None)))
    assert effects(dec) == ["clear_current"] and dec.transition


# ------------------------------------------------------------------ the worker

def test_worker_running_waits_without_a_transition():
    doc = state_with("in_progress", SID, worker_pid=42)
    dec = d.decide(facts(doc, cur=inflight(doc, worker=running())))
    assert not dec.transition and dec.effects == []
    assert dec.message == f"worker 42 for {SID} still running, skipping verifier dispatch"


def test_worker_over_budget_plus_half_is_stopped():
    doc = state_with("in_progress", SID, worker_pid=42)
    dec = d.decide(facts(doc, cur=inflight(doc, worker=running(elapsed=901), worker_budget=600)))
    assert effects(dec) == ["kill:worker", "account:worker"] and dec.finish == ("stalled", "worker_timeout")
    assert "budget 600s + 50% grace" in dec.message


def test_worker_at_exactly_the_threshold_still_runs():
    doc = state_with("in_progress", SID, worker_pid=42)
    dec = d.decide(facts(doc, cur=inflight(doc, worker=running(elapsed=900), worker_budget=600)))
    assert not dec.transition


def test_a_claimed_stage_whose_worker_never_started_starts_it_never_the_verifier():
    doc = state_with("in_progress", SID, worker_pid=None)
    dec = d.decide(facts(doc, cur=inflight(doc)))
    assert effects(dec) == ["launch:worker"] and dec.finish is None
    assert dec.effects[-1] == d.Launch("worker")


def test_a_claimed_stage_without_worker_or_card_stalls():
    doc = state_with("in_progress", SID, worker_pid=None)
    dec = d.decide(facts(doc, cur=inflight(doc, card_found=False)))
    assert dec.finish == ("stalled", "stage_card_missing")


@pytest.mark.parametrize("envelope,finish,extra", [
    (Envelope("missing"), ("stalled", "worker_envelope_missing_after_exit"), []),
    (Envelope("invalid", error="bad"), ("stalled", "worker_envelope_invalid"), ["quarantine:envelope"]),
    (Envelope("fail", notes="could not"), ("failed", "could not"), []),
    (Envelope("partial", notes="half"), ("failed", "half"), []),
])
def test_worker_reaped_envelope_outcomes(envelope, finish, extra):
    doc = state_with("in_progress", SID, worker_pid=42)
    dec = d.decide(facts(doc, cur=inflight(doc, worker=exited(), envelope=envelope)))
    assert effects(dec) == ["account:worker", "record_tree"] + extra
    assert dec.finish == finish


def test_missing_envelope_marker_names_the_cli_cause():
    doc = state_with("in_progress", SID, worker_pid=42)
    dec = d.decide(facts(doc, cur=inflight(doc, worker=exited(1), worker_diagnosis="claude_refused_root_without_is_sandbox")))
    assert dec.finish == ("stalled", "claude_refused_root_without_is_sandbox")


def test_worker_pass_dispatches_verifier_in_the_same_tick():
    doc = state_with("in_progress", SID, worker_pid=42)
    dec = d.decide(facts(doc, cur=inflight(doc, worker=exited(), envelope=Envelope("pass"))))
    assert effects(dec) == ["account:worker", "record_tree", "launch:verifier"]
    assert "(attempt 1)" in dec.message


def test_worker_pass_with_acceptance_runs_it_first():
    doc = state_with("in_progress", SID, worker_pid=42)
    dec = d.decide(facts(doc, cur=inflight(doc, worker=exited(), envelope=Envelope("pass"),
                                           acceptance_command="make test")))
    assert effects(dec) == ["account:worker", "record_tree", "launch:acceptance"]


def test_worker_spend_that_crosses_a_cap_halts_before_the_verifier():
    doc = state_with("in_progress", SID, worker_pid=42)
    b = initial_budget()
    b["tokens_spent"] = 999_000
    dec = d.decide(facts(doc, budget=b, cur=inflight(doc, worker=exited(usage=Usage(input_tokens=5000)),
                                                     envelope=Envelope("pass"))))
    assert dec.halt == "token-cap" and effects(dec) == ["account:worker", "record_tree"]
    assert dec.transition


def test_worker_seconds_count_toward_the_wall_clock_cap():
    doc = state_with("in_progress", SID, worker_pid=42)
    b = initial_budget()
    b["wall_clock_elapsed_seconds"] = 3590
    dec = d.decide(facts(doc, budget=b, cur=inflight(doc, worker=exited(seconds=20), envelope=Envelope("pass"))))
    assert dec.halt == "wall-clock-cap"


# ------------------------------------------------------------------ acceptance

def reaped(**fields):
    base = dict(worker_pid=None, worker_tree="t1", worker_exit=0)
    base.update(fields)
    return state_with("in_progress", SID, **base)


def test_acceptance_running_waits():
    doc = reaped(acceptance_pid=7)
    dec = d.decide(facts(doc, cur=inflight(doc, acceptance_command="make", acceptance=running(pid=7))))
    assert not dec.transition


def test_acceptance_failure_fails_the_stage_without_a_verifier():
    doc = reaped(acceptance_pid=7)
    dec = d.decide(facts(doc, cur=inflight(doc, acceptance_command="make", acceptance=exited(2, pid=7))))
    assert dec.finish == ("failed", "acceptance_failed") and "launch:verifier" not in effects(dec)


def test_acceptance_pass_dispatches_verifier():
    doc = reaped(acceptance_pid=7)
    dec = d.decide(facts(doc, cur=inflight(doc, acceptance_command="make", acceptance=exited(0, pid=7))))
    assert effects(dec) == ["account:acceptance", "set", "launch:verifier"]


def test_acceptance_over_verifier_budget_is_stopped():
    doc = reaped(acceptance_pid=7)
    dec = d.decide(facts(doc, cur=inflight(doc, acceptance_command="make", verifier_budget=100,
                                           acceptance=running(elapsed=151, pid=7))))
    assert effects(dec) == ["kill:acceptance", "account:acceptance"] and dec.finish == ("failed", "acceptance_failed")


def test_acceptance_not_started_after_reap_is_started():
    doc = reaped()
    dec = d.decide(facts(doc, cur=inflight(doc, acceptance_command="make")))
    assert effects(dec) == ["launch:acceptance"]


# ------------------------------------------------------------------ the verifier

def test_verifier_running_waits():
    doc = reaped(verifier_pid=9, verifier_attempts=1)
    dec = d.decide(facts(doc, cur=inflight(doc, verifier=running(pid=9))))
    assert not dec.transition and "verifier 9" in dec.message


def test_verifier_over_its_own_budget_is_stopped_and_retried_later():
    doc = reaped(verifier_pid=9, verifier_attempts=1)
    dec = d.decide(facts(doc, cur=inflight(doc, verifier_budget=60, verifier=running(elapsed=91, pid=9))))
    assert effects(dec) == ["kill:verifier", "account:verifier"] and dec.finish is None and dec.transition


def test_verifier_timeout_on_last_attempt_stalls():
    doc = reaped(verifier_pid=9, verifier_attempts=3)
    dec = d.decide(facts(doc, cur=inflight(doc, verifier_budget=60, verifier=running(elapsed=91, pid=9))))
    assert dec.finish == ("stalled", "verifier_attempt_cap")


@pytest.mark.parametrize("attempts,expected", [(1, "launch:verifier"), (2, "launch:verifier"), (3, None)])
def test_dead_verifier_without_artefact_retries_up_to_three(attempts, expected):
    doc = reaped(verifier_pid=9, verifier_attempts=attempts)
    dec = d.decide(facts(doc, cur=inflight(doc, verifier=exited(1, pid=9))))
    if expected:
        assert effects(dec) == ["account:verifier", expected]
        assert f"(attempt {attempts + 1})" in dec.message
    else:
        assert dec.finish == ("stalled", "verifier_attempt_cap")
        assert dec.message == f"verifier attempt cap (3) reached for {SID} without artefact, marking stalled"


def test_verifier_verdict_given_as_final_message_is_saved_and_applied():
    doc = reaped(verifier_pid=9, verifier_attempts=1)
    art = Artefact("verdict", "PASS", doc={"overall": "PASS"})
    dec = d.decide(facts(doc, cur=inflight(doc, verifier=exited(0, pid=9), message_artefact=art,
                                           tree_now=lambda: "t1")))
    assert effects(dec) == ["account:verifier", "save_artefact", "commit"] and dec.finish == ("completed", None)


def test_card_missing_at_verifier_dispatch_stalls_and_clears():
    doc = reaped()
    dec = d.decide(facts(doc, cur=inflight(doc, card_found=False)))
    assert dec.finish == ("stalled", "stage_card_missing")


# ------------------------------------------------------------------ verdicts

def test_pass_commits():
    doc = reaped(verifier_pid=None, verifier_attempts=1)
    dec = d.decide(facts(doc, cur=inflight(doc, artefact=Artefact("verdict", "PASS"), tree_now=lambda: "t1",
                                           headline="Add the thing")))
    assert dec.effects == [d.Commit("Add the thing")] and dec.finish == ("completed", None)


def test_verdict_beats_a_stall():
    doc = reaped(verifier_pid=9, verifier_attempts=1)
    dec = d.decide(facts(doc, cur=inflight(doc, verifier=running(elapsed=10**6, pid=9),
                                           artefact=Artefact("verdict", "PASS"), tree_now=lambda: "t1")))
    assert effects(dec) == ["kill:verifier", "account:verifier", "commit"]


def test_pass_with_a_changed_tree_is_verifier_modified_tree():
    doc = reaped(verifier_attempts=1)
    dec = d.decide(facts(doc, cur=inflight(doc, artefact=Artefact("verdict", "PASS"), tree_now=lambda: "t2")))
    assert dec.finish == ("verifier_failed", "verifier_modified_tree") and "commit" not in effects(dec)


def test_fail_is_verifier_failed():
    doc = reaped(verifier_attempts=1)
    dec = d.decide(facts(doc, cur=inflight(doc, artefact=Artefact("verdict", "FAIL"))))
    assert dec.finish == ("verifier_failed", "verifier_fail") and dec.effects == []


def test_malformed_overall_is_verifier_failed():
    doc = reaped(verifier_attempts=1)
    art = Artefact("verdict", "FAIL", problem="verifier_overall_malformed: 'MAYBE'")
    dec = d.decide(facts(doc, cur=inflight(doc, artefact=art)))
    assert dec.finish == ("verifier_failed", "verifier_overall_malformed: 'MAYBE'")


def test_half_written_artefact_with_live_verifier_is_not_a_verdict():
    doc = reaped(verifier_pid=9, verifier_attempts=1)
    dec = d.decide(facts(doc, cur=inflight(doc, verifier=running(pid=9), artefact=Artefact("partial"))))
    assert not dec.transition and dec.finish is None


def test_half_written_artefact_of_a_dead_verifier_is_quarantined_and_retried():
    doc = reaped(verifier_pid=9, verifier_attempts=1)
    dec = d.decide(facts(doc, cur=inflight(doc, verifier=exited(0, pid=9), artefact=Artefact("partial"))))
    assert effects(dec) == ["quarantine:artefact", "account:verifier", "launch:verifier"]


def test_every_status_and_kind_is_reachable():
    """The table above covers every terminal status the tick writes."""
    seen = {"completed", "failed", "stalled", "verifier_failed"}
    from autometta.books.state import TERMINAL
    assert seen <= set(TERMINAL)


# ------------------------------------------------------------------ verifier panel (autometta.verify)

def _panel_doc(overall, votes):
    return {"overall": overall, "quorum": {"required": 2, "achieved": sum(v is not None for v in votes)},
            "panellists": [{"id": i, "identity": "p", "artefact_path": None, "overall": v} for i, v in enumerate(votes)]}


@pytest.mark.parametrize("overall,votes,alive,expected_effects,finish", [
    ("PASS", ["PASS", "PASS", None], False, ["account:verifier", "save_artefact", "commit"], ("completed", None)),
    ("FAIL", ["FAIL", "PASS", "FAIL"], False, ["account:verifier", "save_artefact"],
     ("verifier_failed", "verifier_fail")),
    ("FAIL", ["PASS", None, None], False, ["account:verifier", "save_artefact"],
     ("verifier_panel_no_quorum", "verifier_panel_no_quorum: no quorum: 1 of 2 votes needed (1 PASS, 0 FAIL, 2 no-vote)")),
    ("FAIL", ["PASS", "FAIL", None], False, ["account:verifier", "save_artefact"],
     ("verifier_panel_no_quorum", "verifier_panel_no_quorum: no majority: tied vote (1 PASS, 1 FAIL, 1 no-vote)")),
    ("PASS", ["FAIL", "FAIL", "PASS"], False, ["account:verifier", "save_artefact"],
     ("verifier_failed", "verifier_panel_inconsistent: overall 'PASS' but the panellists' majority FAIL "
                         "(1 PASS, 2 FAIL, 0 no-vote)")),
])
def test_panel_synthesis_is_recounted(overall, votes, alive, expected_effects, finish):
    doc = reaped(verifier_pid=9, verifier_attempts=1)
    art = Artefact("verdict", overall, doc=_panel_doc(overall, votes))
    proc = running(pid=9) if alive else exited(0, pid=9)
    dec = d.decide(facts(doc, cur=inflight(doc, verifier=proc, artefact=art, tree_now=lambda: "t1")))
    assert dec.finish == finish
    assert effects(dec) == expected_effects
    from autometta.books.state import TERMINAL
    assert finish[0] in TERMINAL


def test_a_verdict_from_a_live_verifier_waits_for_it_to_exit():
    doc = reaped(verifier_pid=9, verifier_attempts=1)
    dec = d.decide(facts(doc, cur=inflight(doc, verifier=running(elapsed=5, pid=9),
                                           artefact=Artefact("verdict", "PASS"), tree_now=lambda: "t1")))
    assert not dec.transition and dec.finish is None and "waiting for it to exit" in dec.message


# ------------------------------------------------------------------ dependencies (Depends on)

def test_a_waiting_stage_is_passed_over_for_the_first_claimable_one():
    queue = [d.Pending("02-later", waits_for=["03-base"]), d.Pending("03-base", worker="W")]
    f = facts(dirty=[])
    f.queue = queue
    dec = d.decide_claim(f)
    assert effects(dec) == ["claim:03-base", "worktree", "launch:worker"]


def test_every_pending_stage_waiting_is_idle_and_needs_no_git():
    def boom():
        raise AssertionError("a repo whose stages all wait must not ask git")

    f = facts()
    f.queue = [d.Pending("02-later", waits_for=["01-base (failed)"]), d.Pending("03-more", waits_for=["02-later"])]
    f.dirty = boom
    dec = d.decide(f)
    assert not dec.transition and dec.effects == [] and dec.halt is None
    assert dec.message == ("idle /r: 2 pending stage(s) wait for their dependencies "
                           "(02-later waits for 01-base (failed); 03-more waits for 02-later)")


def test_waiting_stages_do_not_hide_the_one_to_claim_into_the_tree():
    f = facts(dirty=["x.txt"])
    f.queue = [d.Pending("02-later", waits_for=["03-base"]), d.Pending("03-base")]
    assert effects(d.decide(f)) == ["claim:03-base", "record_claim", "launch:worker"]


# ------------------------------------------------------------------ re-brief loops (Max loops)


@pytest.mark.parametrize("loops,max_loops,rebrief", [
    (None, 1, None),  # default: today's behaviour
    (None, 2, 2),
    (2, 3, 3),
    (3, 3, None),  # the last loop stops as today
])
def test_verifier_fail_rebriefs_while_loops_are_left(loops, max_loops, rebrief):
    doc = reaped(verifier_pid=9, verifier_attempts=1, loops=loops)
    art = Artefact("verdict", "FAIL", doc=FAIL_DOC)
    dec = d.decide(facts(doc, cur=inflight(doc, verifier=exited(0, pid=9), artefact=art, max_loops=max_loops)))
    if rebrief is None:
        assert dec.finish == ("verifier_failed", "verifier_fail")
        assert effects(dec) == ["account:verifier", "save_artefact"]
        return
    assert dec.finish is None and dec.transition and dec.effects[-1] == d.Launch("worker")
    assert [type(e) for e in dec.effects] == [d.Account, d.SaveArtefact, d.Rebrief, d.Launch]
    brief = dec.effects[2].brief
    assert brief == {"loop": rebrief, "of": max_loops, "reason": "verifier_fail", "verdict": FAIL_DOC}
    assert f"re-briefing the worker (loop {rebrief} of {max_loops})" in dec.message


def test_acceptance_failure_rebriefs_while_loops_are_left():
    doc = reaped(acceptance_pid=7)
    dec = d.decide(facts(doc, cur=inflight(doc, acceptance_command="make test", acceptance=exited(2, pid=7),
                                           max_loops=2)))
    assert [type(e) for e in dec.effects] == [d.Account, d.Rebrief, d.Launch]
    assert dec.effects[1].brief == {"loop": 2, "of": 2, "reason": "acceptance_failed", "verdict": {"exit_code": 2}}


def test_other_verifier_problems_do_not_rebrief():
    doc = reaped(verifier_pid=9, verifier_attempts=1)
    art = Artefact("verdict", "MAYBE", problem="verifier_overall_malformed")
    dec = d.decide(facts(doc, cur=inflight(doc, verifier=exited(0, pid=9), artefact=art, max_loops=3)))
    assert dec.finish == ("verifier_failed", "verifier_overall_malformed")


def test_a_rebrief_that_would_cross_a_cap_halts_and_keeps_the_verdict():
    b = initial_budget()
    b["tokens_spent"] = b["token_cap_total"] - 10
    doc = reaped(verifier_pid=9, verifier_attempts=1)
    art = Artefact("verdict", "FAIL", doc=FAIL_DOC)
    dec = d.decide(facts(doc, budget=b, cur=inflight(doc, verifier=exited(0, pid=9, usage=Usage(100, 0, 0)),
                                                     artefact=art, max_loops=2)))
    assert dec.halt == "token-cap" and effects(dec) == ["account:verifier", "save_artefact"] and dec.finish is None


# ------------------------------------------------------------------ usage-limit parking

from autometta.families.usage import UsageLimit  # noqa: E402
from autometta.timeutil import now_iso, parse_iso  # noqa: E402


def test_a_worker_that_hit_a_usage_limit_parks_its_billing_route_without_failing():
    doc = state_with("in_progress", SID, worker_pid=42)
    f = facts(doc, cur=inflight(doc, worker=limited(exited(1)), routes=ROUTES))
    f.now = NOW
    dec = d.decide(f)
    assert dec.finish is None and dec.halt is None and dec.transition
    assert dec.effects == [d.Park("2030-03-17T18:01:00Z", "worker hit a usage limit: You've hit your session limit",
                                  CLAUDE)]
    assert "parked claude subscription until 2030-03-17T18:01:00Z for every repo on this host" in dec.message


@pytest.mark.parametrize("limit,until", [
    (UsageLimit("usage", "limit", None), NOW + d.DEFAULT_PARK_SECONDS),  # no reset given: the back-off
    (UsageLimit("usage", "limit", "whenever"), NOW + d.DEFAULT_PARK_SECONDS),
    (UsageLimit("usage", "limit", "2020-01-01T00:00:00Z"), NOW + d.DEFAULT_PARK_SECONDS),  # a reset in the past
    (UsageLimit("rate", "429", None), NOW + d.RATE_PARK_SECONDS),
    (UsageLimit("usage", "limit", "Mar 17th, 2030 7:00 PM"), None),
])
def test_park_time(limit, until):
    got = d.park_until(limit, NOW, d.DEFAULT_PARK_SECONDS)
    if until is None:
        assert got > NOW + 3600
    else:
        assert got == until


def _local(hour: int, minute: int, second: int = 0) -> float:
    import datetime
    return datetime.datetime(2030, 3, 17, hour, minute, second).timestamp()  # the CLI prints local time


@pytest.mark.parametrize("printed,now,until", [
    # codex's "try again at 6:17 PM" printed at 6:17: 6:17 today (plus the grace minute), not tomorrow
    ((18, 17, 0), (18, 17, 40), (18, 18)),
    ((18, 17, 59), (18, 17, 59), (18, 18)),
    ((18, 17, 30), (18, 29, 0), (18, 18)),  # read by a tick twelve minutes later: still today's 6:17
    ((18, 10, 0), (18, 10, 0), (18, 18)),  # a reset still to come
    ((18, 18, 0), (18, 18, 0), None),  # printed once that minute is over: tomorrow's 6:17
])
def test_a_reset_given_as_a_time_of_day_is_read_against_when_it_was_printed(printed, now, until):
    limit = UsageLimit("usage", "You've hit your usage limit. try again at 6:17 PM.", "6:17 PM")
    got = d.park_until(limit, _local(*now), d.DEFAULT_PARK_SECONDS, printed_at=_local(*printed))
    if until is None:
        assert got == _local(18, 18) + 86400
    else:
        assert got == _local(*until)


def test_same_minute_reset_from_a_whole_tick_reading():
    """The end of the run (its exit record) is when the CLI printed the limit."""
    doc = state_with("in_progress", SID, worker_pid=42)
    proc = limited(exited(1), UsageLimit("usage", "try again at 6:17 PM.", "6:17 PM"))
    import dataclasses

    proc = dataclasses.replace(proc, exit={**(proc.exit or {}), "ended_at": now_iso(_local(18, 17, 20))})
    f = facts(doc, cur=inflight(doc, worker=proc, routes=ROUTES))
    f.now = _local(18, 21)
    [park] = d.decide(f).effects
    until, route = park.until, park.route
    assert (type(park), route) == (d.Park, CLAUDE)
    assert parse_iso(until) == _local(18, 18)


@pytest.mark.parametrize("parks,route,now,held", [
    ({}, CLAUDE, NOW, False),
    (PARKED, CLAUDE, NOW, True),
    (PARKED, CODEX, NOW, False),  # the other family keeps working
    (PARKED, "claude api", NOW, False),  # the same family on another billing route too
    (PARKED, CLAUDE, NOW + 3600, False),  # run out
    ({CLAUDE: {"until": "not a time"}}, CLAUDE, NOW, False),
    (PARKED, None, NOW, False),  # a command: no billing route
])
def test_which_route_is_parked(parks, route, now, held):
    from autometta.books import parking

    assert (parking.active(parks, route, now) is not None) is held


def test_a_later_park_wins_and_expired_parks_are_dropped():
    from autometta.books import parking

    later = parking.merged(PARKED, CLAUDE, "2030-03-17T19:00:00Z", "again", repo="/a", now=NOW)
    assert later[CLAUDE]["until"] == "2030-03-17T19:00:00Z" and later[CLAUDE]["repo"] == "/a"
    assert parking.merged(later, CLAUDE, "2030-03-17T18:30:00Z", "sooner", now=NOW) == later
    both = parking.merged(PARKED, CODEX, "2030-03-17T18:30:00Z", "codex", now=NOW)
    assert sorted(both) == [CLAUDE, CODEX]
    assert sorted(parking.merged(both, CODEX, "2030-03-17T20:00:00Z", "x", now=NOW + 3600)) == [CODEX]


def test_a_stage_waits_for_its_own_limit_to_reset_and_asks_no_git():
    def boom():
        raise AssertionError("a parked stage must not ask git")

    doc = state_with("in_progress", SID, worker_pid=42, parked_until="2030-03-17T18:01:00Z")
    f = facts(doc, cur=inflight(doc, worker=limited(exited(1)), tree_now=boom, routes=ROUTES))
    f.now = NOW
    dec = d.decide(f)
    assert not dec.transition and dec.effects == []
    assert dec.message == (f"stage {SID} worker waits for its usage limit to reset (claude subscription parked "
                           "until 2030-03-17T18:01:00Z)")


def test_a_parked_route_holds_every_start_on_it_and_nothing_else():
    # the claim of a stage whose worker bills to the parked route waits ...
    f = facts(state_with("pending"))
    f.queue, f.parks, f.now = [d.Pending(SID, worker="W", route=CLAUDE)], PARKED, NOW
    dec = d.decide_claim(f)
    assert not dec.transition and dec.effects == []
    assert dec.message == ("idle /r: 1 pending stage(s) wait for a parked billing route "
                           f"({SID} waits for claude subscription, parked until 2030-03-17T18:01:00Z)")
    # ... and a stage behind it whose worker is of the other family is claimed instead
    f.queue = [d.Pending(SID, worker="W", route=CLAUDE), d.Pending("02-next", worker="C", route=CODEX)]
    assert effects(d.decide_claim(f)) == ["claim:02-next", "worktree", "launch:worker"]
    # a verifier on the parked route is not started; the decision is taken again next tick
    doc = state_with("in_progress", SID, worker_pid=42, worktree="/w", branch="b", base="main")
    c = inflight(doc, worker=exited(0), envelope=Envelope("pass"), tree_now=lambda: "t", lane=True,
                 routes={"worker": CODEX, "verifier": CLAUDE})
    f = facts(doc, cur=c)
    f.parks, f.now = PARKED, NOW
    dec = d.decide_lane(f, SID)
    assert not dec.transition and dec.effects == []
    assert dec.message == (f"stage {SID} waits to start its verifier; claude subscription is parked until "
                           "2030-03-17T18:01:00Z (worker hit a usage limit: x; met in /other)")
    c.routes = {"worker": CLAUDE, "verifier": CODEX}  # the other family's verifier starts
    assert effects(d.decide_lane(f, SID))[-1] == "launch:verifier"


def test_after_the_reset_the_worker_runs_again_on_the_same_tree():
    doc = state_with("in_progress", SID, worker_pid=42, parked_until="2030-03-17T18:01:00Z")
    f = facts(doc, cur=inflight(doc, worker=limited(exited(1, usage=Usage(10, 0, 0))), routes=ROUTES))
    f.now = NOW + 3600
    dec = d.decide(f)
    assert effects(dec) == ["account:worker", f"unpark:{CLAUDE}", "set", "set", "launch:worker"]
    assert d.Set("worker_exit", None) in dec.effects and dec.effects[-1] == d.Launch("worker")
    # another repo met the limit again meanwhile: the route's later park holds it
    f.parks = {CLAUDE: {"until": "2030-03-17T20:00:00Z", "reason": "again"}}
    dec = d.decide(f)
    assert not dec.transition and dec.effects == []
    assert "claude subscription is parked until 2030-03-17T20" in dec.message


def test_a_verifier_that_hit_a_limit_parks_then_runs_again_without_spending_an_attempt():
    doc = reaped(verifier_pid=9, verifier_attempts=2)
    f = facts(doc, cur=inflight(doc, verifier=limited(exited(1, pid=9)), routes=ROUTES))
    f.now = NOW
    [park] = d.decide(f).effects
    assert (type(park), park.route) == (d.Park, CODEX)
    doc["stages"][0]["parked_until"] = "2030-03-17T18:01:00Z"
    f.now = NOW + 3600
    dec = d.decide(f)
    assert effects(dec) == ["account:verifier", f"unpark:{CODEX}", "set", "set", "launch:verifier"]
    assert d.Set("verifier_attempts", 1) in dec.effects


def test_a_limit_with_an_envelope_is_no_limit():
    doc = state_with("in_progress", SID, worker_pid=42)
    f = facts(doc, cur=inflight(doc, worker=limited(exited(1)), envelope=Envelope("pass"), tree_now=lambda: "t"))
    f.now = NOW
    assert effects(d.decide(f))[:2] == ["account:worker", "record_tree"]


def test_an_expired_repo_park_an_earlier_autometta_recorded_is_cleared_by_the_next_transition():
    doc = state_with("pending")
    doc.update(parked_until="2030-03-17T18:01:00Z", park_reason="r")
    f = facts(doc, pending=d.Pending(SID, worker="W"), dirty=[])
    f.now = NOW
    assert not d.decide(f).transition  # still holds the repo until then
    f.now = NOW + 3600
    dec = d.decide(f)
    assert effects(dec) == ["unpark", f"claim:{SID}", "record_claim", "launch:worker"] and dec.kind == "launch"


# ------------------------------------------------------------------ parallel lanes


def claim(queue: List[d.Pending], in_flight: int = 0, setup: Optional[str] = None, budget=None) -> d.Decision:
    f = facts(budget=budget)
    f.queue, f.max_parallel, f.lanes_in_flight, f.setup_command = queue, 3, in_flight, setup
    return d.decide_claim(f)


@pytest.mark.parametrize("queue,setup,expected,transition", [
    ([d.Pending(SID, worker="W")], None, ["claim:01-thing", "worktree", "launch:worker"], True),
    ([d.Pending(SID, worker="W")], "npm ci", ["claim:01-thing", "worktree", "launch:setup"], True),
    ([d.Pending(SID, preflight="claude_cli_missing: no claude")], None, ["claim:01-thing"], True),
    ([d.Pending(SID, card_found=False)], None, [], False),
    ([d.Pending(SID, waits_for=["00-first"])], None, [], False),
    ([], None, [], False),
])
def test_lane_claims(queue, setup, expected, transition):
    dec = claim(queue, setup=setup)
    assert effects(dec) == expected and dec.transition is transition
    assert "worktree" not in effects(dec) or "lane 1 of 3" in dec.message


def test_a_lane_claim_needs_no_clean_tree_and_is_gated_by_the_caps():
    b = initial_budget()
    b["clock_ticks_used"] = b["clock_tick_cap"]
    assert claim([d.Pending(SID, worker="W")], budget=b).halt == "tick-cap"


def test_a_lane_claim_reports_what_waits():
    dec = claim([d.Pending(SID, waits_for=["00-first"])], in_flight=2)
    assert "2 of 3 lanes busy" in dec.message and "01-thing waits for 00-first" in dec.message


@pytest.mark.parametrize("setup,expected,finish", [
    (d.Proc(), ["launch:setup"], None),
    (d.Proc(pid=5, alive=True, elapsed=10), [], None),
    (d.Proc(pid=5, alive=True, elapsed=10_000), ["kill:setup", "account:setup"], ("failed", "worktree_setup_failed")),
    (d.Proc(pid=5, exit={"exit_code": 0}), ["account:setup", "set", "launch:worker"], None),
    (d.Proc(pid=5, exit={"exit_code": 2}), ["account:setup"], ("failed", "worktree_setup_failed")),
])
def test_lane_setup_runs_before_the_worker(setup, expected, finish):
    doc = state_with("in_progress", setup_pid=5 if setup.pid else None, **LANE)
    dec = d.decide_lane(lane(doc, setup_command="cp ../.env .", setup=setup), SID)
    assert effects(dec) == expected and dec.finish == finish


def test_lane_pass_commits_on_its_branch_and_queues_the_merge():
    doc = state_with("in_progress", verifier_pid=9, verifier_attempts=1, worker_tree="t", **LANE)
    f = lane(doc, artefact=Artefact("verdict", overall="PASS", doc={"overall": "PASS"}), verifier=d.Proc(pid=9),
             tree_now=lambda: "t")
    dec = d.decide_lane(f, SID)
    assert effects(dec) == ["account:verifier", "save_artefact", "set", "commit"]
    assert dec.finish is None and dec.kind == "commit"
    assert d.Set("merge", "queued") in dec.effects


@pytest.mark.parametrize("merge,fields,kw,dirty,expected,finish,halt", [
    ("queued", {}, {}, [], ["merge:False", "land"], None, None),
    ("queued", {}, {"acceptance_command": "make test"}, ["x"], ["merge:False", "set", "launch:postmerge"], None, None),
    # the base did not move since the worktree was cut: the tree checked is the tree that lands
    ("queued", {}, {"acceptance_command": "make test", "recheck": lambda: False}, [], ["merge:True", "land"],
     None, None),
    ("queued", {}, {"acceptance_command": "make test", "recheck": lambda: False}, ["a.txt"], [], None,
     "dirty-working-tree"),
    ("queued", {}, {}, ["notes.txt"], [], None, "dirty-working-tree"),
    ("queued", {}, {"merge_busy": True}, [], [], None, None),
    ("checking", {}, {}, [], ["launch:postmerge"], None, None),
    ("checking", {"postmerge_pid": 7}, {"postmerge": d.Proc(pid=7, alive=True, elapsed=5)}, [], [], None, None),
    ("checking", {"postmerge_pid": 7}, {"postmerge": d.Proc(pid=7, exit={"exit_code": 0})}, [],
     ["account:postmerge", "land"], None, None),
    ("checking", {"postmerge_pid": 7}, {"postmerge": d.Proc(pid=7, exit={"exit_code": 0})}, ["notes.txt"],
     ["account:postmerge"], None, "dirty-working-tree"),
    ("checking", {"postmerge_pid": 7}, {"postmerge": d.Proc(pid=7, exit={"exit_code": 1})}, [],
     ["account:postmerge"], ("failed", "post_merge_acceptance_failed"), None),
    ("checking", {"postmerge_pid": 7}, {"postmerge": d.Proc(pid=7, alive=True, elapsed=10_000)}, [],
     ["kill:postmerge", "account:postmerge"], ("failed", "post_merge_acceptance_failed"), None),
])
def test_lane_merges_one_at_a_time(merge, fields, kw, dirty, expected, finish, halt):
    doc = state_with("in_progress", merge=merge, **LANE, **fields)
    dec = d.decide_lane(lane(doc, dirty=dirty, **kw), SID)
    assert effects(dec) == expected and dec.finish == finish and dec.halt == halt
    if kw.get("merge_busy"):
        assert not dec.transition and "waits for its turn" in dec.message


def test_a_lane_without_its_worktree_is_stalled_and_its_agents_stopped():
    doc = state_with("in_progress", worker_pid=4, **LANE)
    dec = d.decide_lane(lane(doc, worktree_missing=True, worker=d.Proc(pid=4, alive=True, elapsed=1)), SID)
    assert effects(dec) == ["kill:worker", "account:worker"] and dec.finish == ("stalled", "worktree_missing")


def test_a_parked_repo_claims_nothing():
    doc = state_with()
    doc["parked_until"] = "2999-01-01T00:00:00Z"
    f = facts(doc)
    f.queue, f.max_parallel = [d.Pending(SID, worker="W")], 3
    dec = d.decide_claim(f)
    assert not dec.transition and dec.message.startswith("parked")


# ------------------------------------------------------------------ supervision: orphans, lost runners, a commit

@pytest.mark.parametrize("lanes", [False, True], ids=["serial", "lanes"])
@pytest.mark.parametrize("fields,kw,expected,finish,transition", [
    # a run an interrupted tick started and never recorded: adopted, never started again
    ({"worker_pid": None}, {"orphans": {"worker": (9, 1.0)}}, ["adopt"], None, True),
    # a recorded runner gone without an exit record, its run's processes still there: stopped, the stage stalls
    ({"worker_pid": 4}, {"worker": d.Proc(pid=4, lost=True), "worker_leftover": "pid 9"}, ["kill:worker", "account:worker"],
     ("stalled", "runner_lost"), True),
    ({"verifier_pid": 5, "worker_exit": 0}, {"verifier": d.Proc(pid=5, lost=True)},
     ["kill:verifier", "account:verifier"], ("stalled", "runner_lost"), True),
    ({"acceptance_pid": 6, "worker_exit": 0}, {"acceptance_command": "true", "acceptance": d.Proc(pid=6, lost=True)},
     ["kill:acceptance", "account:acceptance"], ("stalled", "runner_lost"), True),
    # a dead runner that left its record is an ordinary exit, not a lost one
    ({"worker_pid": 4}, {"worker": d.Proc(pid=4, exit={"exit_code": 0})}, ["account:worker", "record_tree"],
     ("stalled", "worker_envelope_missing_after_exit"), True),
    # the stage's commit, started by a killed tick, still runs: wait; past the commit timeout: stop it
    ({"worker_exit": 0}, {"commit_running": 3.0, "artefact": Artefact("verdict", "PASS")}, [], None, False),
    ({"worker_exit": 0}, {"commit_running": d.COMMIT_SECONDS + 1.0, "artefact": Artefact("verdict", "PASS")},
     ["kill:commit"], None, True),
])
def test_runs_the_tick_did_not_see_end(lanes, fields, kw, expected, finish, transition):
    doc = state_with("in_progress", None if lanes else SID, **(LANE if lanes else {}), **fields)
    if lanes:
        dec = d.decide_lane(lane(doc, **kw), SID)
    else:
        dec = d.decide(facts(doc, cur=inflight(doc, **kw)))
    assert [e.split(":")[0] if e.startswith("adopt") else e for e in effects(dec)] == expected, dec.message
    assert dec.finish == finish and dec.transition == transition


# ------------------------------------------------------------------ one step, in the tree and in a lane


#: (stage fields, in-flight facts, effects, finish, transition): the same step for a stage in the repo's own tree
#: (decide, current_stage) and for one in a worktree of its own (decide_lane).
STEPS = [
    # the worker
    ({"worker_pid": 42}, {"worker": running()}, [], None, False),
    ({"worker_pid": 42}, {"worker": running(elapsed=901)}, ["kill:worker", "account:worker"],
     ("stalled", "worker_timeout"), True),
    ({"worker_pid": 42}, {"worker": exited(), "envelope": Envelope("missing")}, ["account:worker", "record_tree"],
     ("stalled", "worker_envelope_missing_after_exit"), True),
    ({"worker_pid": 42}, {"worker": exited(), "envelope": Envelope("missing"), "worker_diagnosis": "worker_timeout"},
     ["account:worker", "record_tree"], ("stalled", "worker_timeout"), True),
    ({"worker_pid": 42}, {"worker": exited(), "envelope": Envelope("invalid", error="x")},
     ["account:worker", "record_tree", "quarantine:envelope"], ("stalled", "worker_envelope_invalid"), True),
    ({"worker_pid": 42}, {"worker": exited(), "envelope": Envelope("fail", notes="no")},
     ["account:worker", "record_tree"], ("failed", "no"), True),
    ({"worker_pid": 42}, {"worker": exited(), "envelope": Envelope("pass")},
     ["account:worker", "record_tree", "launch:verifier"], None, True),
    ({"worker_pid": 42}, {"worker": exited(), "envelope": Envelope("pass"), "acceptance_command": "make test"},
     ["account:worker", "record_tree", "launch:acceptance"], None, True),
    ({"worker_pid": 42}, {"worker": exited(), "envelope": Envelope("pass"), "scope": lambda: "out_of_scope_change: x"},
     ["account:worker", "record_tree"], ("failed", "out_of_scope_change: x"), True),
    ({"worker_pid": 42}, {"worker": exited(), "envelope": Envelope("pass"), "worker_leftover": "pid 7 still runs"},
     ["account:worker", "record_tree"], None, True),  # the verifier waits for what the worker left running
    ({"worker_pid": 42}, {"worker": limited(exited(1)), "routes": ROUTES, "envelope": Envelope("missing")},
     ["park"], None, True),
    # acceptance
    ({"worker_tree": "t1", "worker_exit": 0, "acceptance_pid": 7},
     {"acceptance_command": "make test", "acceptance": exited(2, pid=7)}, ["account:acceptance"],
     ("failed", "acceptance_failed"), True),
    ({"worker_tree": "t1", "worker_exit": 0, "acceptance_pid": 7},
     {"acceptance_command": "make test", "acceptance": exited(0, pid=7)}, ["account:acceptance", "set", "launch:verifier"],
     None, True),
    # the verifier
    ({"worker_tree": "t1", "verifier_pid": 9, "verifier_attempts": 1}, {"verifier": running(pid=9)}, [], None, False),
    ({"worker_tree": "t1", "verifier_pid": 9, "verifier_attempts": 3}, {"verifier": running(elapsed=901, pid=9)},
     ["kill:verifier", "account:verifier"], ("stalled", "verifier_attempt_cap"), True),
    ({"worker_tree": "t1", "verifier_pid": 9, "verifier_attempts": 1}, {"verifier": exited(pid=9)},
     ["account:verifier", "launch:verifier"], None, True),
    ({"worker_tree": "t1", "verifier_pid": 9, "verifier_attempts": 1},
     {"verifier": exited(pid=9), "artefact": Artefact("verdict", overall="FAIL", doc=FAIL_DOC)},
     ["account:verifier", "save_artefact"], ("verifier_failed", "verifier_fail"), True),
    ({"worker_tree": "t1", "verifier_pid": 9, "verifier_attempts": 1},
     {"verifier": exited(pid=9), "artefact": Artefact("verdict", overall="PASS", doc=PASS_DOC), "tree_now": lambda: "t2"},
     ["account:verifier", "save_artefact", "set"], ("verifier_failed", "verifier_modified_tree"), True),
    # what the tick itself finds
    ({"verifier_pid": 9, "worker_tree": "t1"}, {"verifier": running(pid=9), "forged": "written before its run"},
     ["kill:verifier", "account:verifier"], ("failed", "verdict_forged: written before its run"), True),
    ({"worker_pid": 42}, {"worker": d.Proc(pid=42, lost=True), "worker_leftover": "pid 9"},
     ["kill:worker", "account:worker"],
     ("stalled", "runner_lost"), True),
    ({"worker_pid": None}, {"orphans": {"worker": (4242, NOW)}}, ["adopt"], None, True),
    ({"worker_tree": "t1", "verifier_pid": None}, {"commit_running": 10.0}, [], None, False),
    ({"worker_tree": "t1", "verifier_pid": None}, {"commit_running": 10_000.0}, ["kill:commit"], None, True),
]


def _effect_names(dec: d.Decision) -> List[str]:
    return [e.name if isinstance(e, (d.Park, d.Adopt)) else n for e, n in zip(dec.effects, effects(dec))]


@pytest.mark.parametrize("fields,kw,expected,finish,transition", STEPS)
@pytest.mark.parametrize("where", ["tree", "lane"])
def test_one_step_of_a_stage_in_flight(where, fields, kw, expected, finish, transition):
    if where == "tree":
        doc = state_with("in_progress", SID, **fields)
        dec = d.decide(facts(doc, cur=inflight(doc, **kw)))
    else:
        doc = state_with("in_progress", **LANE, **fields)
        dec = d.decide_lane(lane(doc, **kw), SID)
    assert (_effect_names(dec), dec.finish, dec.transition) == (expected, finish, transition)
    assert not dec.stops_repo and dec.halt is None


@pytest.mark.parametrize("where", ["tree", "lane"])
def test_a_pass_commits_in_the_tree_and_queues_a_lane_to_merge(where):
    fields, kw = {"worker_tree": "t1", "verifier_pid": 9, "verifier_attempts": 1}, {
        "verifier": exited(pid=9), "artefact": Artefact("verdict", overall="PASS", doc=PASS_DOC),
        "tree_now": lambda: "t1", "headline": "Add the thing"}
    if where == "tree":
        doc = state_with("in_progress", SID, **fields)
        dec = d.decide(facts(doc, cur=inflight(doc, **kw)))
        assert effects(dec) == ["account:verifier", "save_artefact", "commit"] and dec.finish == ("completed", None)
    else:
        doc = state_with("in_progress", **LANE, **fields)
        dec = d.decide_lane(lane(doc, **kw), SID)
        assert effects(dec) == ["account:verifier", "save_artefact", "set", "commit"] and dec.finish is None
        assert d.Set("merge", "queued") in dec.effects
    assert dec.commits and not dec.merges and dec.effects[-1] == d.Commit("Add the thing")


# ------------------------------------------------------------------ the gate, before anything else

#: (budget, state, message, halt): the repo does nothing else this tick, whichever way it is entered.
GATES = [
    ({"halted": True, "halt_reason": "tick-cap"}, {}, "halted /r (reason already recorded: tick-cap)", None),
    ({"clock_ticks_used": 100}, {}, "halted /r due to tick-cap", "tick-cap"),
    ({"consecutive_failures": 3}, {}, "halted /r due to failure-cap", "failure-cap"),
    ({}, {"parked_until": "2030-03-17T18:01:00Z", "park_reason": "usage limit"},
     "parked /r until 2030-03-17T18:01:00Z (usage limit)", None),
]


@pytest.mark.parametrize("budget_fields,state_fields,message,halt", GATES)
@pytest.mark.parametrize("entry", ["tree", "lane", "claim"])
def test_the_gate_stops_the_repo_whichever_way_it_is_entered(entry, budget_fields, state_fields, message, halt):
    b = initial_budget()
    b.update(budget_fields)
    if entry == "tree":
        doc = state_with("in_progress", SID, worker_pid=42)
        f = facts(doc, budget=b, cur=inflight(doc, worker=running()))
    elif entry == "lane":
        f = lane(state_with("in_progress", worker_pid=42, **LANE), worker=running())
        f.budget = b
    else:
        f = facts(budget=b)
        f.queue = [d.Pending(SID, worker="W")]
    f.state.update(state_fields)
    f.now = NOW
    dec = {"tree": d.decide, "lane": lambda f: d.decide_lane(f, SID), "claim": d.decide_claim}[entry](f)
    assert (dec.message, dec.halt, dec.effects, dec.stops_repo) == (message, halt, [], True)
    assert dec.transition is bool(halt)


def test_a_park_that_has_run_out_is_cleared_by_the_next_transition_and_stops_nothing():
    f = facts()
    f.state.update(parked_until="2030-03-17T18:01:00Z", park_reason="usage limit")
    f.queue, f.now = [d.Pending(SID, worker="W")], NOW + 3600
    dec = d.decide_claim(f)
    assert effects(dec) == ["unpark", f"claim:{SID}", "worktree", "launch:worker"] and not dec.stops_repo


# ------------------------------------------------------------------ claims

P = d.Pending

#: (queue, in_tree, setup, parks, claimed effects, finish, halt, transition)
CLAIMS = [
    ([P(SID, worker="W")], False, None, {}, [f"claim:{SID}", "worktree", "launch:worker"], None, None, True),
    ([P(SID, worker="W")], True, None, {}, [f"claim:{SID}", "record_claim", "launch:worker"], None, None, True),
    ([P(SID, worker="W")], False, "npm ci", {}, [f"claim:{SID}", "worktree", "launch:setup"], None, None, True),
    ([P(SID, worker="W")], True, "npm ci", {}, [f"claim:{SID}", "record_claim", "launch:worker"], None, None, True),
    ([P(SID, preflight="codex_cli_missing")], False, None, {}, [f"claim:{SID}"], ("stalled", "codex_cli_missing"),
     None, True),
    ([P(SID, card_found=False)], False, None, {}, [], None, None, False),
    ([P("1-bad", worker="W")], False, None, {}, [], None, "invalid-stage-id", True),
    ([P(SID, waits_for=["00-first"]), P("02-next", worker="W")], False, None, {},
     ["claim:02-next", "worktree", "launch:worker"], None, None, True),
    ([P(SID, waits_for=["00-first"])], False, None, {}, [], None, None, False),
    ([P(SID, worker="W", route=CLAUDE)], False, None, PARKED, [], None, None, False),
    ([P(SID, worker="W", route=CLAUDE), P("02-next", worker="C", route=CODEX)], True, None, PARKED,
     ["claim:02-next", "record_claim", "launch:worker"], None, None, True),
    ([P(SID, worker="W", route=CODEX)], False, None, PARKED, [f"claim:{SID}", "worktree", "launch:worker"], None,
     None, True),
    ([], False, None, {}, [], None, None, False),
]


@pytest.mark.parametrize("queue,in_tree,setup,parks,expected,finish,halt,transition", CLAIMS)
def test_what_a_claim_does(queue, in_tree, setup, parks, expected, finish, halt, transition):
    f = facts()
    f.queue, f.in_tree, f.setup_command, f.parks, f.now = queue, in_tree, setup, parks, NOW
    dec = d.decide_claim(f)
    assert (effects(dec), dec.finish, dec.halt, dec.transition) == (expected, finish, halt, transition)
    assert not dec.stops_repo


# ------------------------------------------------------------------ what decide imports

#: Everything of autometta's that importing the decision brings in: none of it reads or writes a file, starts a
#: process or runs git at import, and decide calls only its pure functions (budget's and parking's files are
#: read by their own functions, which import what they need when called).
PURE = {"autometta", "autometta.agents", "autometta.books", "autometta.git", "autometta.tick", "autometta.tick.decide", "autometta.tick.outcomes", "autometta.books.budget",
        "autometta.books.parking", "autometta.hints", "autometta.paths", "autometta.agents.roles", "autometta.git.scope",
        "autometta.stageid", "autometta.stagerecord", "autometta.timeutil", "autometta.resume"}


def test_decide_imports_nothing_that_does_io():
    code = ("import sys, autometta.tick.decide; "
            "print(' '.join(sorted(m for m in sys.modules if m == 'autometta' or m.startswith('autometta.')))); "
            "print(' '.join(m for m in ('subprocess', 'shutil', 'tempfile') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    ours, stdlib = out.split("\n")[:2]
    assert set(ours.split()) == PURE, sorted(set(ours.split()) ^ PURE)
    assert stdlib.split() == []

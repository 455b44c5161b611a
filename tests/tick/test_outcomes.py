"""tick/outcomes: how a run ends the stage, one reading for the tick and the by-hand runs, as tables."""

from __future__ import annotations

from typing import Optional

import pytest

from autometta.tick import outcomes
from autometta.tick.outcomes import Artefact, Envelope


@pytest.mark.parametrize("env,diagnosis,expected", [
    (Envelope("pass"), None, None),
    (Envelope("missing"), None, ("stalled", "worker_envelope_missing_after_exit", "missing")),
    (Envelope("missing"), "claude_usage_limit", ("stalled", "claude_usage_limit", "missing")),
    (Envelope("missing"), "worker_timeout", ("stalled", "worker_timeout", "missing")),
    (Envelope("invalid", error="bad json"), "worker_timeout", ("stalled", "worker_envelope_invalid", "invalid")),
    (Envelope("fail", notes="tests do not pass"), None, ("failed", "tests do not pass", "fail")),
    (Envelope("fail"), None, ("failed", "worker_envelope_fail", "fail")),
    (Envelope("partial"), None, ("failed", "worker_envelope_partial", "partial")),
])
def test_what_a_workers_handoff_does_to_the_stage(env, diagnosis, expected):
    got = outcomes.worker(env, diagnosis)
    assert (None if got is None else (got.status, got.marker, got.why)) == expected


CRITERIA_PASS = [{"id": 1, "name": "works", "verdict": "PASS", "evidence": "ran it"}]
CRITERIA_FAIL = [{"id": 1, "name": "works", "verdict": "FAIL", "evidence": "it does not"}]


def verdict(overall: str, criteria=CRITERIA_PASS, problem: str = "", **doc) -> Artefact:
    return Artefact("verdict", overall=overall, problem=problem, doc=dict(overall=overall, criteria=criteria, **doc))


def panel(overall: str, *votes: Optional[str]) -> Artefact:
    return verdict(overall, panellists=[{"overall": v} for v in votes], quorum={"required": 2})


@pytest.mark.parametrize("art,changed,expected", [
    (verdict("PASS"), False, ("completed", None, "pass")),
    (verdict("PASS"), True, ("verifier_failed", "verifier_modified_tree", "modified_tree")),
    (verdict("FAIL", CRITERIA_FAIL), False, ("verifier_failed", "verifier_fail", "fail")),
    (verdict("FAIL", CRITERIA_FAIL, problem="verifier_artefact_wrong_stage"), False,
     ("verifier_failed", "verifier_artefact_wrong_stage", "fail")),
    (verdict("PASS", CRITERIA_FAIL), False, ("verifier_failed", "verifier_inconsistent", "problem")),
    (verdict("FAIL", CRITERIA_PASS), True, ("verifier_failed", "verifier_inconsistent", "problem")),
    (panel("PASS", "PASS", "PASS", None), False, ("completed", None, "pass")),
    (panel("PASS", "PASS", None, None), False, ("verifier_panel_no_quorum", "verifier_panel_no_quorum", "problem")),
    (panel("PASS", "FAIL", "FAIL", "PASS"), False, ("verifier_failed", "verifier_panel_inconsistent", "problem")),
])
def test_what_a_verdict_does_to_the_stage(art, changed, expected):
    asked = []
    got = outcomes.verdict(art, lambda: asked.append(1) or changed)
    assert (got.status, (got.marker or "").split(":")[0] or None, got.why) == expected
    assert asked == ([1] if expected[2] in ("pass", "modified_tree") else [])  # the tree (a git call): a PASS only


@pytest.mark.parametrize("effect,role,marker,secret,expected", [
    ("launch", "worker", None, False, ("stalled", "worker_spawn_failed")),
    ("launch", "postmerge", None, False, ("stalled", "postmerge_spawn_failed")),
    ("launch", "verifier", "claude_cli_missing", False, ("stalled", "claude_cli_missing")),
    ("worktree", None, None, False, ("stalled", "worktree_failed")),
    ("worktree", None, "detached_head", False, ("stalled", "detached_head")),
    ("record_claim", None, None, False, ("stalled", "tree_claim_failed")),
    ("merge", None, None, False, ("failed", "merge_failed")),
    ("land", None, None, False, ("failed", "merge_failed")),
    ("commit", None, None, False, ("verifier_failed", "commit_failed")),
    ("commit", None, "out_of_scope_change", False, ("failed", "out_of_scope_change")),
    ("commit", None, "protected_path_changed", False, ("failed", "protected_path_changed")),
    ("commit", None, "secret_in_diff", True, ("secret_blocked", "secret_in_diff")),
])
def test_what_a_failed_effect_does_to_the_stage(effect, role, marker, secret, expected):
    assert outcomes.failed_effect(effect, role, marker, secret) == expected


@pytest.mark.parametrize("files,marker", [
    (["a.py"], "merge_conflict: a.py"),
    ([f"f{n}" for n in range(12)], "merge_conflict: " + ", ".join(f"f{n}" for n in range(10)) + " ..."),
])
def test_a_merge_conflict_names_its_first_ten_files(files, marker):
    assert outcomes.merge_conflict(files) == ("merge_conflict", marker)

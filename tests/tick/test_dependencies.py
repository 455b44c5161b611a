"""Depends on: what a stage waits for, cycles refused at add-stage, and the tick's claim order."""

from __future__ import annotations

import json

import pytest

from autometta.books import state
from tests.testing.ticks import commit_all, git, read_state, run_until_quiet, script_card, stage


def _doc(**statuses):
    doc = state.initial_state()
    for stage_id, status in statuses.items():
        record = state.new_stage(stage_id.replace("_", "-"), "W <w@local>", "V <v@local>")
        record["status"] = status
        doc["stages"].append(record)
    return doc


@pytest.mark.parametrize("depends_on,expected", [
    ([], []),
    (["01-a"], []),
    (["01-a", "02-b"], ["02-b"]),
    (["02"], ["02-b"]),  # a short reference resolves to the one id it starts
    (["03-c"], ["03-c (failed)"]),
    (["04-d"], ["04-d"]),
    (["09-gone"], ["09-gone (not queued)"]),
])
def test_unmet_dependencies(depends_on, expected):
    doc = _doc(**{"01_a": "completed", "02_b": "pending", "03_c": "failed", "04_d": "in_progress"})
    assert state.unmet_dependencies(depends_on, doc) == expected


def _write(repo, stage_id, depends_on=None):
    body = (f"printf '%s\\n' {stage_id} > {stage_id}.txt && printf '%s' "
            f"'{{\"stage_id\":\"{stage_id}\",\"status\":\"pass\",\"deliverables\":[\"{stage_id}.txt\"],"
            f"\"notes\":\"done\"}}' > \"$AUTOMETTA_HANDOFF\"")
    return script_card(repo, stage_id, body, depends_on=depends_on)


def test_add_stage_refuses_a_cycle_with_its_path(run, setup):
    repo, _, _ = setup
    a = _write(repo, "01-a", depends_on="03-c")
    _write(repo, "02-b", depends_on="01-a")
    _write(repo, "03-c", depends_on="02-b")
    commit_all(repo)
    res = run("add-stage", str(repo), str(a))
    assert res.code == 1
    assert "the dependencies form a cycle: 01-a -> 03-c -> 02-b -> 01-a" in res.err
    assert read_state(repo)["stages"] == []
    res = run("lint-card", str(a))
    assert res.code == 1 and "01-a -> 03-c -> 02-b -> 01-a" in res.out + res.err


def test_add_stage_refuses_an_unknown_dependency(run, setup):
    repo, _, _ = setup
    a = _write(repo, "01-a", depends_on="07-nowhere")
    commit_all(repo)
    res = run("add-stage", str(repo), str(a))
    assert res.code == 1 and "depends on '07-nowhere', but no card" in res.err
    assert read_state(repo)["stages"] == []


def test_serial_tick_claims_the_first_stage_whose_dependencies_completed(run, setup):
    repo, home, _ = setup
    cards = [_write(repo, "01-top", depends_on="02-left, 03-right"), _write(repo, "02-left", depends_on="03-right"),
             _write(repo, "03-right")]
    commit_all(repo)
    for card in cards:
        res = run("add-stage", str(repo), str(card))
        assert res.code == 0, res.err

    listed = run("list-cards", str(repo)).out.splitlines()
    assert listed[0].endswith("\twaits for 02-left, 03-right") and listed[1].endswith("\twaits for 03-right")
    assert listed[2].split("\t")[1] == "pending" and listed[2].count("\t") == 2
    rows = json.loads(run("list-cards", str(repo), "--json").out)
    assert rows[0]["waits_for"] == ["02-left", "03-right"] and rows[2]["waits_for"] == []
    status = run("status")
    assert "01-top waits for 02-left, 03-right" in status.out and "02-left waits for 03-right" in status.out
    assert json.loads(run("status", "--json").out)["repos"][0]["waiting"]["02-left"] == ["03-right"]

    run_until_quiet(home, repo, limit=40)
    done = ["03-right", "02-left", "01-top"]
    assert all(stage(repo, s)["status"] == "completed" for s in done), read_state(repo)
    landed = git(repo, "log", "--format=%s", "-3").splitlines()[::-1]
    assert [line.split(":")[0] for line in landed] == done, landed
    assert "waits for" not in run("status").out


def test_a_failed_dependency_keeps_its_dependant_waiting(run, setup):
    repo, home, _ = setup
    base = script_card(repo, "01-base", "exit 3")
    top = _write(repo, "02-top", depends_on="01-base")
    commit_all(repo)
    for card in (base, top):
        assert run("add-stage", str(repo), str(card)).code == 0
    run_until_quiet(home, repo)
    assert stage(repo, "01-base")["status"] == "stalled"
    assert stage(repo, "02-top")["status"] == "pending"
    assert "02-top waits for 01-base (stalled)" in run("status").out
    log = "".join(p.read_text() for p in (home / "log").glob("tick-*.log"))
    assert "02-top waits for 01-base (stalled)" in log

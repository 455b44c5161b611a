"""What a human sees of parallel lanes: status (table, --json, --watch), the tickers, the dashboard, report.

Every state here is written by hand (no tick runs): three lanes in flight in
different phases, a stage stopped on a merge conflict, one pending.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, Dict

import pytest

from autometta.books import state
from autometta.observe import dashboard, events, lanes, report, settings
from autometta.paths import HomePaths, RepoPaths
from tests.testing.lanes import edit_stages, lane

PIDS = {"setup_pid": None, "worker_pid": None, "acceptance_pid": None, "verifier_pid": None,
        "postmerge_pid": None}


@pytest.fixture
def lanes_repo(setup):
    """(repo, home): max_parallel 3, lanes 01-a (worker), 02-b (verifier), 03-c (merging); 04-d merge_conflict."""
    repo, home, add = setup
    for stage_id in ("01-a", "02-b", "03-c", "04-d", "05-e"):
        add(stage_id)
    with open(repo / ".autometta.local.yaml", "a", encoding="utf-8") as handle:
        handle.write("max_parallel: 3\n")
    edit_stages(repo, {
        "01-a": lane(repo, "01-a", worker_pid=4242, worker_started=1.0),
        "02-b": lane(repo, "02-b", verifier_pid=4343, verifier_started=1.0, acceptance="pass"),
        "03-c": lane(repo, "03-c", merge="checking", merge_onto="abc123", postmerge_pid=4444,
                     postmerge_started=1.0),
        "04-d": lane(repo, "04-d", status="merge_conflict", stall_marker="merge_conflict: src/x.py, src/y.py"),
    })
    return repo, home


def status_json(run) -> Dict[str, Any]:
    res = run("status", "--json")
    assert res.code == 0, res.err
    return json.loads(res.out)["repos"][0]


# ---------------------------------------------------------------- the phase of a lane


@pytest.mark.parametrize("fields,phase,pid", [
    ({"setup_pid": 11}, "setup", 11),
    ({"worker_pid": 12}, "worker", 12),
    ({"acceptance_pid": 13}, "acceptance", 13),
    ({"verifier_pid": 14}, "verifier", 14),
    ({"merge": "queued"}, "merge queued", None),
    ({"merge": "checking"}, "merging", None),
    ({"merge": "checking", "postmerge_pid": 15}, "merging", 15),
    ({}, "waiting", None),
])
def test_a_lane_phase_is_read_from_its_stage_fields(fields, phase, pid):
    row = lanes.lane_row(lane(Path("/r"), "01-a", id="01-a", **fields))
    assert (row["phase"], row["pid"]) == (phase, pid)
    assert set(row) == {"id", "phase", "worktree", "branch", "base", "pid", "sessions", *PIDS}


def test_lane_stages_are_in_progress_with_a_worktree(tmp_path):
    doc = {"current_stage": None, "stages": [
        lane(tmp_path, "01-a", id="01-a", worker_pid=1),
        {"id": "02-b", "status": "in_progress"},  # serial: no worktree
        lane(tmp_path, "03-c", id="03-c", status="merge_conflict"),  # stopped, worktree kept
        {"id": "04-d", "status": "pending"},
    ]}
    assert [s["id"] for s in lanes.lane_stages(doc)] == ["01-a"]
    assert lanes.in_flight_ids(doc) == "01-a"
    assert lanes.in_flight_ids(dict(doc, current_stage="02-b")) == "02-b"
    assert lanes.in_flight_ids({"stages": []}) is None


# ---------------------------------------------------------------- status


def test_status_lists_every_lane_and_what_it_is_doing(lanes_repo, run):
    res = run("status")
    assert res.code == 0, res.err
    row = next(line for line in res.out.splitlines() if line.startswith("proj "))
    assert row.split()[1:5] == ["01-a,", "02-b,", "03-c", "in_progress"]
    lines = res.out.splitlines()
    assert "proj: lane 01-a: worker (pid 4242), autometta/01-a onto main" in lines
    assert "proj: lane 02-b: verifier (pid 4343), autometta/02-b onto main" in lines
    assert "proj: lane 03-c: merging (pid 4444), autometta/03-c onto main" in lines
    assert not any("lane 04-d" in line for line in lines)  # stopped: counted in the queue, not a lane
    assert lines.index("NEEDS YOU (1)") < lines.index(row)  # ... and it leads, waiting for a person
    assert "  proj  04-d: merge_conflict: src/x.py, src/y.py" in lines


def test_status_json_has_lanes_and_max_parallel(lanes_repo, run):
    repo, _ = lanes_repo
    row = status_json(run)
    assert (row["stage"], row["status"], row["max_parallel"]) == ("01-a, 02-b, 03-c", "in_progress", 3)
    assert row["lanes"][0] == dict(PIDS, id="01-a", phase="worker", pid=4242, worker_pid=4242,
                                   worktree=f"{repo}/.autometta/worktrees/01-a", branch="autometta/01-a",
                                   base="main", sessions=[])
    assert [(x["id"], x["phase"], x["pid"]) for x in row["lanes"]] == [
        ("01-a", "worker", 4242), ("02-b", "verifier", 4343), ("03-c", "merging", 4444)]
    assert row["lanes"][2]["postmerge_pid"] == 4444
    assert "worker_pid" not in row  # serial only: each lane has its own


def test_a_merge_conflict_counts_in_the_queue(lanes_repo, run):
    assert "merge_conflict" in state.STATUSES and "merge_conflict" in state.TERMINAL
    queue = status_json(run)["queue"]
    assert (queue["in_progress"], queue["merge_conflict"], queue["pending"]) == (3, 1, 1)


def test_a_parked_repo_still_lists_its_lanes(lanes_repo, run):
    repo, _ = lanes_repo
    paths = RepoPaths(repo)
    doc = state.load_state(paths)
    doc.update(parked_until="2999-01-01T00:00:00Z", park_reason="usage limit")
    state.save_state(paths, doc)
    row = status_json(run)
    assert row["status"] == "parked" and len(row["lanes"]) == 3
    assert "proj: lane 01-a: worker (pid 4242)" in run("status").out


def test_a_serial_stage_in_its_worktree_shows_as_the_stage_in_flight(setup, run):
    repo, _, add = setup
    add("01-a")
    add("02-b")
    edit_stages(repo, {"01-a": lane(repo, "01-a", worker_pid=77, worker_started=1.0)})
    row = status_json(run)
    assert (row["stage"], row["status"], row["worker_pid"], row["max_parallel"]) == ("01-a", "in_progress", 77, 1)
    assert [lane["phase"] for lane in row["lanes"]] == ["worker"]
    out = run("status").out
    assert "proj: stage 01-a: worker (pid 77), autometta/01-a onto main" in out and "proj: lane" not in out
    assert "01-a" in run("status", "--watch", "--once").out
    cards = run("list-cards", str(repo))
    assert cards.code == 0 and "in_progress" in cards.out
    report = run("report").out
    assert "IN FLIGHT (1 lane)" in report and "proj  01-a: worker (pid 77)" in report


def test_a_stage_in_the_repos_own_tree_has_no_lanes(setup, run):
    repo, _, add = setup
    add("01-a")
    edit_stages(repo, {"01-a": {"status": "in_progress", "worker_pid": 77}})
    paths = RepoPaths(repo)
    doc = state.load_state(paths)
    doc["current_stage"] = "01-a"
    state.save_state(paths, doc)
    row = status_json(run)
    assert (row["stage"], row["status"], row["worker_pid"], row["lanes"], row["max_parallel"]) == (
        "01-a", "in_progress", 77, [], 1)
    assert "proj: lane" not in run("status").out


def test_max_parallel_from_the_subscriber_file(setup, run, home_dir):
    sub = home_dir / "subscribers" / "proj.yaml"
    sub.write_text(sub.read_text() + "max_parallel: 2\n")
    assert status_json(run)["max_parallel"] == 2


def test_status_reads_files_only(lanes_repo, run, monkeypatch):
    from autometta.schedule import health

    def no_subprocess(*args, **kwargs):
        raise AssertionError(f"status ran a subprocess: {args}")

    monkeypatch.setattr(health, "warnings", list)  # the schedule check may ask crontab; not a repo's
    monkeypatch.setattr(subprocess, "Popen", no_subprocess)
    assert run("status").code == 0
    assert len(status_json(run)["lanes"]) == 3


# ---------------------------------------------------------------- the tickers


def test_status_watch_shows_the_lanes_under_the_table(lanes_repo, run):
    res = run("status", "--watch", "--once")
    assert res.code == 0, res.err
    assert "  proj: lane 01-a: worker (pid 4242), autometta/01-a onto main" in res.out.splitlines()
    assert "01-a, 02-b, 03-c" in res.out


def test_agent_ticker_says_what_each_lane_is_doing(lanes_repo, run):
    repo, _ = lanes_repo
    res = run("ticker", str(repo), "--once")
    assert res.code == 0, res.err
    lines = res.out.splitlines()
    for text in ("  in_progress  01-a  lane: worker", "  in_progress  02-b  lane: verifier",
                 "  in_progress  03-c  lane: merging", "  pending      05-e"):
        assert text in lines, text
    assert any("04-d: merge_conflict: src/x.py, src/y.py" in line for line in lines)  # the marker names the status


# ---------------------------------------------------------------- dashboard and report


def test_dashboard_shows_a_badge_per_lane(lanes_repo, home_dir):
    hp = HomePaths(home_dir)
    data = dashboard.collect(hp, settings.from_home(hp))
    repo = data["repos"][0]
    assert repo["current_stage"] is None
    assert [(x["id"], x["phase"]) for x in repo["lanes"]] == [("01-a", "worker"), ("02-b", "verifier"),
                                                              ("03-c", "merging")]
    assert any(a.startswith("04-d: merge_conflict: src/x.py") for a in repo["alerts"])
    page = dashboard.render_html(data)
    assert '<span class="badge s-in_progress" title="autometta/01-a onto main in ' in page
    assert ">01-a: worker</span>" in page and ">03-c: merging</span>" in page
    assert '<span class="badge s-pending">idle</span>' not in page


def test_report_has_the_lanes_and_where_a_merge_conflict_waits(lanes_repo, run, home_dir):
    repo, _ = lanes_repo
    hp = HomePaths(home_dir)
    events.emit(hp, RepoPaths(repo), "stage_merge_conflict", {  # as the tick raises it
        "stage_id": "04-d", "status": "merge_conflict", "marker": "merge_conflict: src/x.py, src/y.py"})
    (event,) = events.journal(hp)
    res = run("report", "--json")
    assert res.code == 0, res.err
    entry = json.loads(res.out)["repos"][0]
    assert entry["in_flight"] == "01-a, 02-b, 03-c"
    assert [x["phase"] for x in entry["lanes"]] == ["worker", "verifier", "merging"]
    assert entry["stopped"] == [{"stage": "04-d", "status": "merge_conflict",
                                 "why": "merge_conflict: src/x.py, src/y.py", "at": event["at"]}]
    (need,) = [x for x in entry["needs_you"] if x["stage_id"] == "04-d"]
    assert (need["kind"], need["summary"]) == ("merge_conflict", "04-d: merge_conflict: src/x.py, src/y.py")
    assert need["note"] == f"after you resolve it on autometta/04-d in {repo}/.autometta/worktrees/04-d and commit"
    assert need["command"] == f"autometta requeue --retry-merge {repo} 04-d"
    assert need["look"] == f"autometta show {repo} 04-d"
    text = run("report").out
    assert "04-d  merge_conflict: src/x.py, src/y.py" in text  # the marker already names the status
    assert "IN FLIGHT (3 lanes)" in text and "proj  03-c: merging" in text


def test_report_in_flight_is_current_stage_when_serial(setup, home_dir):
    repo, _, add = setup
    add("01-a")
    edit_stages(repo, {"01-a": {"status": "in_progress"}})
    paths = RepoPaths(repo)
    doc = state.load_state(paths)
    doc["current_stage"] = "01-a"
    state.save_state(paths, doc)
    hp = HomePaths(home_dir)
    entry = report.build(hp, settings.from_home(hp), 0.0)["repos"][0]
    assert (entry["in_flight"], entry["lanes"]) == ("01-a", [])

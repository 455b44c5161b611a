"""Whole ticks with real git, real processes and the script family."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autometta import files
from autometta.agents import liveness
from autometta.git import gitops
from autometta.paths import RepoPaths
from tests.testing.repos import make_repo
from tests.testing.tick_processes import await_pid
from tests.testing.ticks import (CHECKER, WORKER, await_agents, commit_all, git, read_budget, read_state,
                                 run_until_quiet, script_card, stage, tick_once, verdict, verifier_writes)
from tests.testing.waits import read_fifo


def tick_log(home: Path) -> str:
    return "".join(p.read_text() for p in sorted((home / "log").glob("tick-*.log")))


def test_pass_commits_with_author_and_coauthor(setup):
    repo, home, add = setup
    add("01-hello", verifier_cmd=verifier_writes("01-hello", headline="Greet the world"))
    kinds = run_until_quiet(home, repo)
    assert kinds[:3] == ["launch", "launch", "completed"]  # committed on its branch, landed in the same tick
    s = stage(repo, "01-hello")
    assert s["status"] == "completed" and s["completed_at"] and s["commit"]
    log = git(repo, "log", "-1", "--format=%an <%ae>%n%s%n%(trailers:key=Co-Authored-By,valueonly)")
    assert log.strip().splitlines() == [WORKER, "01-hello: Greet the world", CHECKER]
    assert git(repo, "rev-parse", "HEAD").strip() == s["commit"]
    assert "hello.txt" in git(repo, "show", "--name-only", "--format=", "HEAD")
    assert git(repo, "status", "--porcelain", "--", ".", ":(exclude)state") == ""
    b = read_budget(repo)
    assert b["clock_ticks_used"] == 4 and b["consecutive_failures"] == 0  # claim, verifier, commit, land
    assert b["wall_clock_elapsed_seconds"] >= 0
    assert read_state(repo)["current_stage"] is None and read_state(repo)["tick_count"] == 4
    assert git(repo, "rev-parse", "--verify", "refs/heads/phat-controller/state").strip()
    text = tick_log(home)
    assert "claimed 01-hello" in text and "PASS: committed worker output" in text


def test_headline_falls_back_to_the_card_title(setup):
    repo, home, add = setup
    add("01-hello", title="Write the greeting")
    run_until_quiet(home, repo)
    assert git(repo, "log", "-1", "--format=%s").strip() == "01-hello: Write the greeting"


def test_idle_tick_spends_nothing_and_calls_no_git(setup, monkeypatch):
    repo, home, _ = setup
    before = (repo / "state" / "state.yaml").stat().st_mtime_ns, (repo / "state" / "budget.json").read_bytes()

    def no_git(*a, **k):
        raise AssertionError("idle tick called git")

    monkeypatch.setattr(gitops, "_run", no_git)
    for _ in range(3):
        tick_once(home)
    assert (repo / "state" / "state.yaml").stat().st_mtime_ns == before[0]
    assert (repo / "state" / "budget.json").read_bytes() == before[1]


@pytest.mark.parametrize("worker_cmd,status,marker", [
    ("printf '%s' '{\"stage_id\":\"01-hello\",\"status\":\"fail\",\"deliverables\":[],\"notes\":\"no way\"}' "
     "> \"$AUTOMETTA_HANDOFF\"", "failed", "no way"),
    ("true", "stalled", "worker_envelope_missing_after_exit"),
    ("printf 'not json' > \"$AUTOMETTA_HANDOFF\"", "stalled", "worker_envelope_invalid"),
])
def test_worker_outcomes(setup, worker_cmd, status, marker):
    repo, home, add = setup
    add("01-hello", worker_cmd)
    run_until_quiet(home, repo)
    s = stage(repo, "01-hello")
    assert (s["status"], s["stall_marker"]) == (status, marker)
    assert read_budget(repo)["consecutive_failures"] == 1
    assert s.get("verifier_attempts") == 0  # no verifier spent on a failed worker
    if marker == "worker_envelope_invalid":
        assert (repo / "state" / "handoffs" / "01-hello.invalid.json").read_text() == "not json"


def tree_mode(repo: Path) -> None:
    with open(repo / ".autometta.local.yaml", "a") as handle:
        handle.write("isolation: tree\n")


@pytest.mark.parametrize("isolation", ["worktree", "tree"])
def test_verifier_fail_leaves_the_tree_for_review(setup, isolation):
    repo, home, add = setup
    if isolation == "tree":
        tree_mode(repo)
    add("01-hello", verifier_cmd=verifier_writes("01-hello", "FAIL"))
    run_until_quiet(home, repo)
    s = stage(repo, "01-hello")
    assert s["status"] == "verifier_failed"
    work = Path(s["worktree"]) if isolation == "worktree" else repo  # the stage's worktree is kept for review
    assert (work / "hello.txt").exists() and "hello.txt" in git(work, "status", "--porcelain")
    assert (repo / "hello.txt").exists() is (isolation == "tree")
    assert git(repo, "log", "-1", "--format=%s").strip() == "card 01-hello"


def test_verifier_crash_three_times_stalls(setup):
    repo, home, add = setup
    add("01-hello", verifier_cmd="exit 3")
    run_until_quiet(home, repo)
    s = stage(repo, "01-hello")
    assert (s["status"], s["stall_marker"], s["verifier_attempts"]) == ("stalled", "verifier_attempt_cap", 3)


def test_verdict_as_final_message_is_saved(setup):
    repo, home, add = setup
    add("01-hello", verifier_cmd=f"printf '%s\\n' '{verdict('01-hello')}'")
    run_until_quiet(home, repo)
    assert stage(repo, "01-hello")["status"] == "completed"
    saved = json.loads((repo / "state" / "verifiers" / "01-hello.json").read_text())
    assert saved["overall"] == "PASS"


def test_verifier_that_changes_the_tree_fails_the_stage(setup):
    repo, home, add = setup
    add("01-hello", verifier_cmd="printf 'tampered\\n' >> hello.txt && " + verifier_writes("01-hello"))
    run_until_quiet(home, repo)
    s = stage(repo, "01-hello")
    assert (s["status"], s["stall_marker"]) == ("verifier_failed", "verifier_modified_tree")


def test_acceptance_gate(setup):
    repo, home, add = setup
    add("01-hello", acceptance="grep -q hello hello.txt")
    add("02-other", acceptance="grep -q goodbye hello.txt")
    run_until_quiet(home, repo)
    assert stage(repo, "01-hello")["status"] == "completed"
    assert stage(repo, "01-hello")["acceptance"] == "pass"
    # the next stage needs a clean tree; hello.txt is committed already
    run_until_quiet(home, repo)
    s = stage(repo, "02-other")
    assert (s["status"], s["stall_marker"]) == ("failed", "acceptance_failed")
    assert s["verifier_attempts"] == 0
    assert (repo / "state" / "logs" / "02-other-acceptance.log").exists()


def test_stall_stops_the_whole_process_group(setup, tmp_path):
    repo, home, add = setup
    ready = tmp_path / "ready"
    os.mkfifo(ready)
    add("01-hello", f"sleep 300 & sleep 300 & printf x > '{ready}'; wait", worker_budget="10 seconds")
    tick_once(home)
    pid = stage(repo, "01-hello")["worker_pid"]
    read_fifo(ready)  # the worker and both its sleeps run (a stop before that would never start them)
    group = liveness.group_members(pid)
    assert len(group) >= 4, group  # the runner, the shell and the two sleeps
    tick_once(home, now=time.time() + 16)  # past 10 s + 50%
    s = stage(repo, "01-hello")
    assert (s["status"], s["stall_marker"]) == ("stalled", "worker_timeout")
    for member in group:
        await_pid(member)
        assert not liveness.is_alive(member)
    assert not liveness.group_alive(pid)


@pytest.mark.parametrize("field,value,reason,counter_reset", [
    ("tokens_spent", 1000000, "token-cap", "tokens_spent"),
    ("wall_clock_elapsed_seconds", 3600, "wall-clock-cap", "wall_clock_elapsed_seconds"),
    ("clock_ticks_used", 100, "tick-cap", "clock_ticks_used"),
    ("consecutive_failures", 3, "failure-cap", "consecutive_failures"),
])
def test_every_cap_halts_and_reset_halt_clears_the_counter(setup, run, field, value, reason, counter_reset):
    repo, home, add = setup
    add("01-hello")
    path = repo / "state" / "budget.json"
    b = json.loads(path.read_text())
    b[field] = value
    path.write_text(json.dumps(b))
    tick_once(home)
    b = read_budget(repo)
    assert b["halted"] is True and b["halt_reason"] == reason and b["halted_at"]
    assert stage(repo, "01-hello")["status"] == "pending"
    assert f"halted {repo.resolve()} due to {reason}" in tick_log(home) or f"due to {reason}" in tick_log(home)
    tick_once(home)
    assert f"reason already recorded: {reason}" in tick_log(home)
    assert run("tick", "--reset-halt").code == 0
    b = read_budget(repo)
    assert b["halted"] is False and b[counter_reset] == 0
    tick_once(home)
    assert stage(repo, "01-hello")["status"] == "in_progress"
    await_agents(repo)


def test_cost_cap(setup):
    repo, home, add = setup
    add("01-hello", worker_cmd=("printf 'autometta-usage: {\"input_tokens\": 10, \"output_tokens\": 5, "
                                "\"cost_usd\": 0.75}\\n'; " + PASS_WORKER_01))
    path = repo / "state" / "budget.json"
    b = json.loads(path.read_text())
    b["cost_cap_usd"] = 0.5
    path.write_text(json.dumps(b))
    run_until_quiet(home, repo)
    b = read_budget(repo)
    assert b["cost_usd_spent"] == pytest.approx(0.75) and b["tokens_spent"] == 15
    assert b["halted"] and b["halt_reason"] == "cost-cap"
    s = stage(repo, "01-hello")
    assert s["worker_tokens"] == 15 and s["worker_cost_usd"] == pytest.approx(0.75)
    assert s["verifier_attempts"] == 0  # the cap gated the verifier dispatch


PASS_WORKER_01 = ("printf 'hello\\n' > hello.txt && printf '%s' "
                  "'{\"stage_id\":\"01-hello\",\"status\":\"pass\",\"deliverables\":[\"hello.txt\"],\"notes\":\"done\"}' "
                  "> \"$AUTOMETTA_HANDOFF\"")


@pytest.mark.parametrize("isolation", ["worktree", "tree"])
def test_a_dirty_tree_neither_stops_the_claim_nor_lands_in_the_commit(setup, isolation):
    repo, home, add = setup
    if isolation == "tree":
        tree_mode(repo)
    add("01-hello")
    (repo / "scratch.txt").write_text("operator edit\n")
    (repo / "README.md").write_text("hello, edited\n")
    run_until_quiet(home, repo)
    assert not read_budget(repo)["halted"]
    assert stage(repo, "01-hello")["status"] == "completed"
    assert git(repo, "show", "--name-only", "--format=", "HEAD").split() == ["hello.txt"]
    assert sorted(gitops.dirty_paths(repo)) == ["README.md", "scratch.txt"]
    assert (repo / "README.md").read_text() == "hello, edited\n"


def test_corrupt_state_is_restored_from_backup(setup):
    repo, home, add = setup
    add("01-hello")
    add("02-more")  # the .bak mirrors the newest valid state: both stages
    (repo / "state" / "state.yaml").write_text("")
    tick_once(home)
    assert "restored from .bak" in tick_log(home)
    assert [p.read_text() for p in (repo / "state").glob("state.yaml.corrupt-*")] == [""]
    doc = read_state(repo)
    assert [s["id"] for s in doc["stages"]] == ["01-hello", "02-more"]
    await_agents(repo)


def test_corrupt_state_without_backup_halts(setup):
    repo, home, add = setup
    (repo / "state" / "state.yaml.bak").unlink()
    (repo / "state" / "state.yaml").write_text("stages: [oops\n")
    tick_once(home)
    b = read_budget(repo)
    assert b["halted"] and b["halt_reason"] == "state-corrupt"
    assert (repo / "state" / "state.yaml").read_text() == "stages: [oops\n"


def test_corrupt_budget_is_an_error_and_nothing_is_written(setup):
    repo, home, add = setup
    add("01-hello")
    (repo / "state" / "budget.json").write_text("{")
    before = (repo / "state" / "state.yaml").read_bytes()
    outcomes = tick_once(home)
    assert outcomes[0].error and "budget.json" in outcomes[0].message
    assert (repo / "state" / "state.yaml").read_bytes() == before


def test_one_repo_error_does_not_stop_the_others(setup, run, tmp_path):
    repo, home, add = setup
    other = make_repo(tmp_path / "other")
    assert run("subscribe", str(other), "--weight", "1").code == 0
    commit_all(other, "subscribe")
    (other / "state" / "budget.json").write_text("garbage")
    add("01-hello")
    outcomes = tick_once(home)
    assert [o.error for o in outcomes] == [True, False]
    assert stage(repo, "01-hello")["status"] == "in_progress"
    await_agents(repo)


def test_held_lock_skips_with_a_log_line(setup):
    repo, home, add = setup
    add("01-hello")
    with files.locked(RepoPaths(repo.resolve()).lock):
        outcomes = tick_once(home)
    assert outcomes[0].kind == "locked"
    assert "tick already in progress" in tick_log(home)
    assert stage(repo, "01-hello")["status"] == "pending"


def test_concurrent_ticks_claim_once(setup):
    repo, home, add = setup
    add("01-hello", "sleep 5; " + PASS_WORKER_01)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    ticks = [subprocess.Popen([sys.executable, "-m", "autometta", "tick", "--quiet"], env=env)
             for _ in range(8)]
    for t in ticks:
        assert t.wait(60) == 0
    s = stage(repo, "01-hello")
    assert s["status"] == "in_progress" and s["worker_pid"]
    assert read_budget(repo)["clock_ticks_used"] == 1
    active = list((repo / "state" / "active-agents").glob("*.json"))
    assert len(active) == 1
    liveness.signal_group(s["worker_pid"], signal.SIGKILL)


def test_bash_written_state_continues(setup):
    repo, home, add = setup
    add("01-hello")
    (repo / "state" / "state.yaml").write_text("""\
version: 1
current_stage: null
stages:
  - id: 01-hello
    status: pending
    worker: Script Worker <script-worker@local>
    verifier: Script Checker <script-checker@local>
    started_at: null
    worker_pid: null
    verifier_pid: null
    verifier_artefact: null
    verifier_attempts: 0
    completed_at: null
last_tick_at: "1970-01-01T00:00:00Z"
tick_count: 0
clock_tick_budget_remaining: 100
halted: false
halt_reason: null
""")
    run_until_quiet(home, repo)
    assert stage(repo, "01-hello")["status"] == "completed"


def test_requeue_archives_the_old_verdict(setup, run):
    repo, home, add = setup
    add("01-hello", verifier_cmd=verifier_writes("01-hello", "FAIL"))
    run_until_quiet(home, repo)
    assert not (repo / "hello.txt").exists()  # the rejected work is in the stage's worktree, not here
    res = run("requeue", str(repo), "01-hello")
    assert res.code == 0, res.err
    assert stage(repo, "01-hello")["status"] == "pending"
    assert not (repo / "state" / "verifiers" / "01-hello.json").exists()
    assert list((repo / "state" / "archive" / "01-hello").glob("*/verifiers/01-hello.json"))


def test_repair_dry_run_and_fix(setup, run):
    repo, home, add = setup
    add("01-hello")
    path = repo / "state" / "state.yaml"
    text = path.read_text().replace("current_stage: null", "current_stage: 01-hello")
    path.write_text(text)  # current_stage set, but the stage is still pending
    res = run("tick", "--repair", "--dry-run")
    assert res.code == 0 and "would current_stage 01-hello is pending; clear current_stage" in res.out
    assert path.read_text() == text
    res = run("tick", "--repair")
    assert res.code == 0 and "clear current_stage" in res.out
    assert read_state(repo)["current_stage"] is None


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_bash_in_flight_stage_with_a_verdict_is_committed(setup):
    """A stage the bash tick left mid-verification: its verdict and text-format log are absorbed."""
    repo, home, add = setup
    script_card(repo, "05a-bash-era", worker="Codex GPT-5.3 <codex-gpt-5-3@local>",
                       verifier="Claude Opus 4.8 <claude-opus-4-8@local>")
    commit_all(repo, "card")
    (repo / "hello.txt").write_text("hello\n")  # the bash worker's uncommitted output
    pid = _dead_pid()
    (repo / "state" / "state.yaml").write_text(f"""\
version: 1
current_stage: 05a-bash-era
stages:
  - id: 05a-bash-era
    status: in_progress
    worker: Codex GPT-5.3 <codex-gpt-5-3@local>
    verifier: Claude Opus 4.8 <claude-opus-4-8@local>
    started_at: "2026-05-01T10:00:00Z"
    worker_pid: null
    verifier_pid: {pid}
    verifier_artefact: state/verifiers/05a-bash-era.json
    verifier_attempts: 1
    completed_at: null
    worker_tokens: 117339
    tokens: 117339
last_tick_at: "1970-01-01T00:00:00Z"
tick_count: 0
clock_tick_budget_remaining: 100
halted: false
halt_reason: null
""")
    (repo / "state" / "verifiers" / "05a-bash-era.json").write_text(verdict("05a-bash-era").replace(
        CHECKER, "Claude Opus 4.8 <claude-opus-4-8@local>"))
    (repo / "state" / "logs" / "05a-bash-era-verifier.log").write_text("...\nTotal tokens: 2,000 prompt+output\n")
    tick_once(home)
    s = stage(repo, "05a-bash-era")
    assert s["status"] == "completed" and s["commit"]
    assert s["verifier_tokens"] == 2000 and s["tokens"] == 119339
    assert read_budget(repo)["tokens_spent"] == 2000
    log = git(repo, "log", "-1", "--format=%an <%ae>|%(trailers:key=Co-Authored-By,valueonly)").strip()
    assert log == "Codex GPT-5.3 <codex-gpt-5-3@local>|Claude Opus 4.8 <claude-opus-4-8@local>"


def test_bash_in_flight_worker_that_died_is_reaped(setup):
    repo, home, add = setup
    add("01-hello", verifier_cmd=verifier_writes("01-hello"))
    pid = _dead_pid()
    path = repo / "state" / "state.yaml"
    text = path.read_text().replace("current_stage: null", "current_stage: 01-hello")
    text = text.replace("status: pending", "status: in_progress").replace("worker_pid: null", f"worker_pid: {pid}")
    text = text.replace("started_at: null", 'started_at: "2026-05-01T10:00:00Z"')
    path.write_text(text)
    (repo / "hello.txt").write_text("hello\n")
    (repo / "state" / "handoffs" / "01-hello.json").write_text(
        '{"stage_id":"01-hello","status":"pass","deliverables":["hello.txt"],"notes":"bash era"}')
    run_until_quiet(home, repo)
    assert stage(repo, "01-hello")["status"] == "completed"

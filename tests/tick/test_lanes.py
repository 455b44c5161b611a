"""Parallel lanes with real git: worktrees, one merge at a time, conflicts, setup, cleanup."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import List

import pytest

from autometta.git import gitops, worktrees
from tests.testing.lanes import _envelope, parallel, writes
from tests.testing.ticks import (CHECKER, WORKER, commit_all, git, read_budget, read_state, run_until_quiet,
                                 stage, tick_once, await_agents)


def barrier(stage_id: str, folder: Path, count: int) -> str:
    """A worker that only succeeds if ``count`` workers are running at once (it waits for the others)."""
    return (f"touch '{folder}/{stage_id}'; n=0; while [ $(ls '{folder}' | wc -l) -lt {count} ] && [ $n -lt 400 ]; "
            f"do sleep 0.05; n=$((n+1)); done; [ $(ls '{folder}' | wc -l) -ge {count} ] && " + writes(stage_id, f"{stage_id}.txt"))


def tick_log(home: Path) -> List[str]:
    lines: List[str] = []
    for log in sorted((home / "log").glob("tick-*.log")):
        lines += log.read_text().splitlines()
    return lines


def dirty(repo: Path) -> List[str]:
    return gitops.dirty_paths(repo)  # outside state/, which the tick itself writes


def lanes_left(repo: Path) -> List[str]:
    return [line for line in git(repo, "worktree", "list", "--porcelain").splitlines()
            if line.startswith("worktree ")][1:] + worktrees.lane_branches(repo)


def test_three_at_once_then_the_dependent_one_lands_linear(setup, tmp_path):
    repo, home, add = setup
    parallel(repo, 3)
    meet = tmp_path / "barrier"
    meet.mkdir()
    for sid in ("01-a", "02-b", "03-c"):
        add(sid, barrier(sid, meet, 3), acceptance=f"test -f {sid}.txt")
    add("04-d", writes("04-d", "d.txt"), depends_on="01-a, 02-b")
    start = git(repo, "rev-parse", "HEAD").strip()

    first = tick_once(home)
    await_agents(repo)
    doc = read_state(repo)
    running = [s["id"] for s in doc["stages"] if s["status"] == "in_progress"]
    assert running == ["01-a", "02-b", "03-c"] and doc["current_stage"] is None
    for sid in running:  # each in its own worktree on its own branch, from the same tip
        s = stage(repo, sid)
        assert s["branch"] == f"autometta/{sid}" and s["base"] == "master"
        assert Path(s["worktree"]) == repo / ".autometta" / "worktrees" / sid
        assert git(Path(s["worktree"]), "rev-parse", "HEAD").strip() == start
    assert "claimed" in first[0].message
    assert dirty(repo) == []  # the lanes folder hides itself

    kinds = run_until_quiet(home, repo, limit=40)
    assert kinds[-1] == "wait"
    doc = read_state(repo)
    assert [s["status"] for s in doc["stages"]] == ["completed"] * 4
    # the barrier only opens with all three workers alive at once
    assert sorted(os.listdir(meet)) == ["01-a", "02-b", "03-c"]

    log = git(repo, "log", "--format=%H %P|%an <%ae>|%s|%(trailers:key=Co-Authored-By,valueonly)",
              f"{start}..master").strip().splitlines()
    log = [line for line in log if line.strip()]  # the trailer value ends in a newline of its own
    assert len(log) == 4
    assert all(len(line.split("|")[0].split()) == 2 for line in log)  # one parent each: linear
    subjects = [line.split("|")[2] for line in reversed(log)]
    assert [s.split(":")[0] for s in subjects] == ["01-a", "02-b", "03-c", "04-d"]
    assert all(line.split("|")[1] == WORKER and line.split("|")[3].strip() == CHECKER for line in log)
    for name in ("01-a.txt", "02-b.txt", "03-c.txt", "d.txt"):
        assert (repo / name).is_file()  # the base branch is checked out: the files followed
    assert dirty(repo) == []
    assert lanes_left(repo) == []
    assert all(s["worktree"] is None and s["commit"] for s in doc["stages"])

    lines = tick_log(home)
    claim_d = next(i for i, line in enumerate(lines) if "claimed 04-d" in line)
    for sid in ("01-a", "02-b"):
        assert next(i for i, line in enumerate(lines) if f"stage {sid} landed on master" in line) < claim_d


def test_a_conflict_leaves_base_at_the_first_merge_and_the_second_for_review(setup):
    repo, home, add = setup
    parallel(repo, 2)
    add("01-a", writes("01-a", "shared.txt", "from a"))
    add("02-b", writes("02-b", "shared.txt", "from b"))
    run_until_quiet(home, repo, limit=20)

    first, second = stage(repo, "01-a"), stage(repo, "02-b")
    assert first["status"] == "completed"
    assert second["status"] == "merge_conflict" and second["stall_marker"] == "merge_conflict: shared.txt"
    assert git(repo, "rev-parse", "master").strip() == first["commit"]
    assert (repo / "shared.txt").read_text() == "from a\n"
    kept = Path(second["worktree"])  # intact for review: its own commit on its own branch
    assert (kept / "shared.txt").read_text() == "from b\n"
    assert git(kept, "status", "--porcelain") == ""
    assert git(repo, "log", "-1", "--format=%s", "autometta/02-b").startswith("02-b: ")
    assert read_budget(repo)["consecutive_failures"] == 1
    from autometta.observe import events
    from autometta.paths import HomePaths
    (raised,) = [e for e in events.journal(HomePaths(home)) if e["kind"] == "stage_merge_conflict"]
    assert raised["stage_id"] == "02-b" and "conflicts in shared.txt" in raised["message"]
    assert "--retry-merge" in raised["summary"]

    # re-queued, it starts afresh from the new tip and the old lane is replaced
    from autometta import cli
    assert cli.main(["requeue", str(repo), "02-b"]) == 0
    (repo / "docs" / "stages" / "02-b.md").write_text(
        (repo / "docs" / "stages" / "02-b.md").read_text().replace("shared.txt", "b.txt"))
    commit_all(repo, "02-b writes its own file")
    run_until_quiet(home, repo, limit=20)
    assert stage(repo, "02-b")["status"] == "completed"
    assert lanes_left(repo) == []


def test_acceptance_failing_on_the_merged_result_keeps_base(setup):
    repo, home, add = setup
    parallel(repo, 2)
    add("01-b", writes("01-b", "b.txt"))  # lands first (queue order) ...
    add("02-a", writes("02-a", "a.txt"), acceptance="test ! -f b.txt")  # ... and breaks this one's acceptance
    run_until_quiet(home, repo, limit=20)
    a, b = stage(repo, "02-a"), stage(repo, "01-b")
    assert b["status"] == "completed" and a["status"] == "failed"
    assert a["stall_marker"] == "post_merge_acceptance_failed"
    assert a["acceptance"] == "pass"  # it passed alone, in its own worktree
    assert git(repo, "rev-parse", "master").strip() == b["commit"]
    assert not (repo / "a.txt").exists()
    assert "exited 1 on the merged result" in "\n".join(tick_log(home))
    assert (repo / "state" / "logs" / "02-a-postmerge.log").exists()
    assert Path(a["worktree"]).is_dir()

    # merged again as it is, it is checked again (its branch sits on the new tip now) and fails again
    from autometta import cli
    assert cli.main(["requeue", str(repo), "02-a", "--retry-merge"]) == 0
    run_until_quiet(home, repo, limit=20)
    a = stage(repo, "02-a")
    assert (a["status"], a["stall_marker"]) == ("failed", "post_merge_acceptance_failed")
    assert git(repo, "rev-parse", "master").strip() == b["commit"]


def test_worktree_setup_runs_first_and_its_failure_fails_the_stage(setup):
    repo, home, add = setup
    (repo / ".env").write_text("SECRET_PORT=4100\n")  # untracked: the worktree lacks it until setup copies it
    (repo / ".gitignore").write_text(".env\n")
    commit_all(repo, "ignore .env")
    parallel(repo, 2, worktree={"setup": f"cp '{repo}/.env' .env"})
    add("01-a", "grep -q 4100 .env && " + writes("01-a", "a.txt"))
    run_until_quiet(home, repo, limit=20)
    assert stage(repo, "01-a")["status"] == "completed"
    assert (repo / "state" / "logs" / "01-a-setup.log").exists()

    manifest = repo / ".autometta.local.yaml"
    manifest.write_text(manifest.read_text().replace(f"cp '{repo}/.env' .env", "exit 3"))
    add("02-b", writes("02-b", "b.txt"))
    run_until_quiet(home, repo, limit=20)
    s = stage(repo, "02-b")
    assert s["status"] == "failed" and s["stall_marker"] == "worktree_setup_failed"
    assert s["worker_pid"] is None and not (repo / "state" / "handoffs" / "02-b.json").exists()


def _tick_until(home: Path, repo: Path, sid: str, field: str, value=None) -> None:
    for _ in range(20):
        tick_once(home)
        await_agents(repo)
        if (stage(repo, sid).get(field) == value) if value is not None else stage(repo, sid).get(field):
            return
    raise AssertionError(f"{sid} never reached {field}: {value}")


def test_an_unmoved_base_needs_no_recheck(setup):
    repo, home, add = setup
    add("01-a", writes("01-a", "a.txt"), acceptance="test -f a.txt")
    run_until_quiet(home, repo)
    assert stage(repo, "01-a")["status"] == "completed"
    assert not (repo / "state" / "logs" / "01-a-postmerge.log").exists()  # the tree it checked is what lands


def test_base_moving_during_the_recheck_rebases_again(setup):
    repo, home, add = setup
    parallel(repo, 2)
    add("01-a", writes("01-a", "a.txt"), acceptance="test -f a.txt")
    _tick_until(home, repo, "01-a", "verifier_pid")
    (repo / "first.txt").write_text("before the merge\n")
    commit_all(repo, "the user commits before the merge")  # the merged result is new: it is checked again
    _tick_until(home, repo, "01-a", "merge", "checking")
    (repo / "user.txt").write_text("meanwhile\n")
    commit_all(repo, "the user commits meanwhile")
    user = git(repo, "rev-parse", "HEAD").strip()
    tick_once(home)  # the recheck passed, but master moved: back in the queue
    assert stage(repo, "01-a")["status"] == "in_progress" and stage(repo, "01-a")["merge"] == "queued"
    assert git(repo, "rev-parse", "master").strip() == user
    run_until_quiet(home, repo, limit=20)
    a = stage(repo, "01-a")
    assert a["status"] == "completed"
    assert git(repo, "rev-parse", "master^").strip() == user and git(repo, "rev-parse", "master").strip() == a["commit"]


def test_a_change_to_the_stage_s_files_in_the_main_tree_halts_before_landing(setup):
    repo, home, add = setup
    parallel(repo, 2)
    (repo / "scratch.txt").write_text("the user's work in progress\n")
    add("01-a", writes("01-a", "a.txt"))  # add() commits everything: dirty it again after
    (repo / "scratch.txt").write_text("more of it\n")  # unrelated: neither blocks nor lands
    (repo / "a.txt").write_text("the user's own a.txt\n")  # the file the stage writes
    run_until_quiet(home, repo, limit=20)
    b = read_budget(repo)
    assert b["halted"] and b["halt_reason"] == "dirty-working-tree"
    said = "\n".join(tick_log(home))
    assert "(a.txt)" in said and "scratch.txt" not in said
    a = stage(repo, "01-a")
    assert a["status"] == "in_progress" and a["merge"] == "queued"
    assert (repo / "scratch.txt").read_text() == "more of it\n"
    assert (repo / "a.txt").read_text() == "the user's own a.txt\n"

    (repo / "a.txt").unlink()
    from autometta import cli
    assert cli.main(["tick", "--reset-halt", "--repo", str(repo)]) == 0
    run_until_quiet(home, repo, limit=20)
    assert stage(repo, "01-a")["status"] == "completed"
    assert (repo / "a.txt").read_text() == "01-a\n"
    assert (repo / "scratch.txt").read_text() == "more of it\n"
    assert git(repo, "show", "--name-only", "--format=", "HEAD").split() == ["a.txt"]
    assert dirty(repo) == ["scratch.txt"]


def test_max_parallel_one_runs_in_a_worktree_too(setup):
    repo, home, add = setup
    add("01-a", writes("01-a", "a.txt"))
    add("02-b", writes("02-b", "b.txt"))
    tick_once(home)
    doc = read_state(repo)
    assert doc["current_stage"] is None
    assert [s["status"] for s in doc["stages"]] == ["in_progress", "pending"]  # one at a time
    a = stage(repo, "01-a")
    assert a["branch"] == "autometta/01-a" and Path(a["worktree"]) == repo / ".autometta" / "worktrees" / "01-a"
    await_agents(repo)
    run_until_quiet(home, repo)
    assert [s["status"] for s in read_state(repo)["stages"]] == ["completed", "completed"]
    assert git(repo, "log", "--format=%s", "-2").splitlines() == ["02-b: Say hello", "01-a: Say hello"]
    assert lanes_left(repo) == [] and dirty(repo) == []


def test_isolation_tree_uses_no_worktree(setup):
    repo, home, add = setup
    with open(repo / ".autometta.local.yaml", "a") as handle:
        handle.write("isolation: tree\n")
    add("01-a", writes("01-a", "a.txt"))
    tick_once(home)
    assert read_state(repo)["current_stage"] == "01-a"
    assert stage(repo, "01-a").get("worktree") is None
    assert not (repo / ".autometta").exists()
    await_agents(repo)
    run_until_quiet(home, repo)
    assert stage(repo, "01-a")["status"] == "completed"


def test_isolation_tree_refuses_parallel_stages(setup):
    repo, home, add = setup
    parallel(repo, 2)
    with open(repo / ".autometta.local.yaml", "a") as handle:
        handle.write("isolation: tree\n")
    add("01-a", writes("01-a", "a.txt"))
    [outcome] = tick_once(home)
    assert outcome.error and "isolation: tree" in outcome.message and "max_parallel is 2" in outcome.message
    assert stage(repo, "01-a")["status"] == "pending"


def test_lowering_max_parallel_lets_lanes_finish_then_runs_serially(setup):
    repo, home, add = setup
    parallel(repo, 2)
    add("01-a", writes("01-a", "a.txt"))
    add("02-b", writes("02-b", "b.txt"))
    add("03-c", writes("03-c", "c.txt"))
    tick_once(home)
    assert [s["status"] for s in read_state(repo)["stages"]] == ["in_progress", "in_progress", "pending"]
    manifest = repo / ".autometta.local.yaml"
    manifest.write_text(manifest.read_text().replace("max_parallel: 2", "max_parallel: 1"))
    await_agents(repo)
    run_until_quiet(home, repo, limit=30)
    assert [s["status"] for s in read_state(repo)["stages"]] == ["completed"] * 3
    c = stage(repo, "03-c")  # claimed once both lanes had landed
    assert c["started_at"] >= max(stage(repo, sid)["completed_at"] for sid in ("01-a", "02-b"))
    assert lanes_left(repo) == []


def test_caps_gate_every_claim(setup):
    repo, home, add = setup
    parallel(repo, 3)
    for sid in ("01-a", "02-b", "03-c"):
        add(sid, writes(sid, f"{sid}.txt"))
    budget = repo / "state" / "budget.json"
    doc = json.loads(budget.read_text())
    doc["clock_tick_cap"] = 2
    budget.write_text(json.dumps(doc))
    tick_once(home)
    await_agents(repo)
    statuses = [s["status"] for s in read_state(repo)["stages"]]
    assert statuses == ["in_progress", "in_progress", "pending"]
    assert read_budget(repo)["halt_reason"] == "tick-cap"
    before = read_state(repo)
    [again] = tick_once(home)
    assert again.message == f"halted {repo} (reason already recorded: tick-cap)" and again.kind == "wait"
    assert read_state(repo) == before


def test_repair_removes_orphaned_lanes_and_keeps_review_ones(setup, run, tmp_path):
    repo, home, add = setup
    parallel(repo, 2)
    add("01-a", writes("01-a", "same.txt", "a"))
    add("02-b", writes("02-b", "same.txt", "b"))
    run_until_quiet(home, repo, limit=20)
    assert stage(repo, "01-a")["status"] == "completed" and stage(repo, "02-b")["status"] == "merge_conflict"
    root = repo / ".autometta" / "worktrees"
    # orphans: a landed stage's lane that could not be removed, and a lane folder git forgot
    stray = root / "01-a"
    git(repo, "worktree", "add", "-q", "-b", "autometta/01-a", str(stray))
    gone = root / "07-gone"  # a lane whose stage record is gone: the default root is autometta's own
    git(repo, "worktree", "add", "-q", "-b", "autometta/07-gone", str(gone))
    leftover = root / "08-folder"  # a lane folder git forgot
    leftover.mkdir()
    git(repo, "branch", "autometta/02-b-old")  # a branch of no stage, with no lane: left alone
    foreign = tmp_path / "elsewhere"  # somebody's own worktree, outside the lanes
    git(repo, "worktree", "add", "-q", "-b", "mine", str(foreign))
    res = run("tick", "--repair", "--dry-run")
    assert res.code == 0 and stray.exists() and gone.exists() and leftover.exists()
    assert all(name in res.out for name in ("01-a", "07-gone", "08-folder"))
    res = run("tick", "--repair")
    assert res.code == 0
    assert not stray.exists() and not gone.exists() and not leftover.exists()
    branches = git(repo, "branch")
    assert "autometta/01-a" not in branches and "autometta/07-gone" not in branches
    assert foreign.exists() and "autometta/02-b-old" in branches and " mine" in branches
    assert (root / ".gitignore").is_file()
    kept = Path(stage(repo, "02-b")["worktree"])
    assert kept.is_dir() and "autometta/02-b\n" in git(repo, "branch") + "\n"


def test_repair_ignores_a_root_around_the_repo(setup, run, tmp_path):
    repo, home, add = setup
    parallel(repo, 2, worktree={"root": ".."})
    add("01-a", writes("01-a", "a.txt"))
    outcome = tick_once(home)[0]
    assert "or a folder around it" in outcome.message + "".join(tick_log(home))
    assert stage(repo, "01-a")["stall_marker"].startswith("worktree_failed")
    res = run("tick", "--repair")
    assert res.code == 0 and repo.is_dir() and "remove" not in res.out


def test_repair_leaves_other_folders_of_a_shared_root_alone(setup, run, tmp_path):
    repo, home, add = setup
    shared = tmp_path / "all-lanes"
    parallel(repo, 2, worktree={"root": str(shared)})
    add("01-a", writes("01-a", "a.txt"))
    run_until_quiet(home, repo, limit=20)
    other = shared / "01-other-repo-stage"  # another repo's lane in the same root
    other.mkdir(parents=True)
    leftover = shared / "01-a"  # this repo's landed stage left its folder
    leftover.mkdir()
    res = run("tick", "--repair")
    assert res.code == 0 and other.is_dir() and not leftover.exists()


def test_a_root_holding_project_files_is_refused(setup):
    repo, home, add = setup
    (repo / "docs" / "notes.md").parent.mkdir(exist_ok=True)
    (repo / "docs" / "notes.md").write_text("mine\n")
    parallel(repo, 2, worktree={"root": "docs"})
    add("01-a", writes("01-a", "a.txt"))
    tick_once(home)
    assert "holds files of the project" in stage(repo, "01-a")["stall_marker"]
    assert not (repo / "docs" / ".gitignore").exists()


def test_a_deleted_worktree_stalls_its_stage(setup):
    repo, home, add = setup
    parallel(repo, 2)
    add("01-a", writes("01-a", "a.txt"))
    tick_once(home)
    await_agents(repo)
    git(repo, "worktree", "remove", "--force", stage(repo, "01-a")["worktree"])
    tick_once(home)
    s = stage(repo, "01-a")
    assert s["status"] == "stalled" and s["stall_marker"] == "worktree_missing"


def test_idle_parallel_repo_calls_no_git(setup, monkeypatch):
    repo, home, add = setup
    parallel(repo, 3)
    before = (repo / "state" / "state.yaml").stat().st_mtime_ns

    def no_git(*a, **k):
        raise AssertionError("idle tick called git")

    monkeypatch.setattr(gitops, "_run", no_git)
    for _ in range(3):
        assert tick_once(home)[0].kind == "wait"
    assert (repo / "state" / "state.yaml").stat().st_mtime_ns == before


@pytest.mark.parametrize("root", ["lanes-here", "ABS"])
def test_worktree_root_is_configurable(setup, tmp_path, root):
    repo, home, add = setup
    where = str(tmp_path / "elsewhere") if root == "ABS" else root
    parallel(repo, 2, worktree={"root": where})
    add("01-a", writes("01-a", "a.txt"))
    tick_once(home)
    expected = Path(where) if root == "ABS" else repo / where
    assert Path(stage(repo, "01-a")["worktree"]) == expected / "01-a"
    if root != "ABS":
        assert dirty(repo) == []
    await_agents(repo)
    run_until_quiet(home, repo, limit=20)
    assert stage(repo, "01-a")["status"] == "completed" and lanes_left(repo) == []


def test_commits_the_worker_made_become_the_stage_s_one_commit(setup):
    repo, home, add = setup
    parallel(repo, 2)
    add("01-a", "printf 'one\\n' > a.txt && git add a.txt && git -c user.name=Bot -c user.email=bot@x commit -qm wip "
        "&& printf 'two\\n' > b.txt && " + _envelope("01-a", "a.txt"))
    start = git(repo, "rev-parse", "HEAD").strip()
    run_until_quiet(home, repo, limit=20)
    assert stage(repo, "01-a")["status"] == "completed"
    log = git(repo, "log", "--format=%an|%s", f"{start}..master").strip().splitlines()
    assert log == ["Script Worker|01-a: Say hello"]
    assert git(repo, "show", "--name-only", "--format=", "master").split() == ["a.txt", "b.txt"]


def test_a_limit_in_one_lane_parks_its_route_and_resumes_that_lane_once(setup, tmp_path):
    import time
    repo, home, add = setup
    parallel(repo, 2)
    reset = int(time.time()) + 3 * 3600
    flag = tmp_path / "limited-once"
    # 01-b finishes after 02-a hit its limit: its verifier started before the park, and it lands meanwhile
    add("01-b", f"n=0; while [ ! -f {flag} ] && [ $n -lt 400 ]; do sleep 0.05; n=$((n+1)); done; "
        + writes("01-b", "b.txt"))
    add("02-a", f"if [ ! -f {flag} ]; then touch {flag}; echo 'Claude AI usage limit reached|{reset}'; exit 1; fi; "
        + writes("02-a", "a.txt"))
    tick_once(home)
    await_agents(repo)
    tick_once(home)  # 01-b dispatches its verifier; 02-a parks the script family's route
    parked = stage(repo, "02-a")["parked_until"]
    routes = json.loads((home / "parked.json").read_text())["routes"]
    assert parked and routes["script"]["until"] == parked and read_state(repo).get("parked_until") is None
    await_agents(repo)
    message = tick_once(home)[0].message
    assert f"stage 02-a worker waits for its usage limit to reset (script parked until {parked})" in message
    assert stage(repo, "01-b")["status"] == "completed"  # a lane whose next step starts no agent goes on

    outcomes = tick_once(home, now=reset + 61)
    assert "script" not in json.loads((home / "parked.json").read_text())["routes"]  # the limit was served
    a = stage(repo, "02-a")
    assert a["parked_until"] is None and a["worker_pid"], outcomes[0].message
    assert "02-a usage limit has reset; dispatching the worker again" in outcomes[0].message
    await_agents(repo)
    run_until_quiet(home, repo, limit=20)
    assert [s["status"] for s in read_state(repo)["stages"]] == ["completed", "completed"]


def test_a_detached_head_stalls_one_claim_a_tick(setup):
    repo, home, add = setup
    parallel(repo, 3)
    for sid in ("01-a", "02-b", "03-c"):
        add(sid, writes(sid, f"{sid}.txt"))
    git(repo, "checkout", "-q", "--detach")
    tick_once(home)
    assert [s["status"] for s in read_state(repo)["stages"]] == ["stalled", "pending", "pending"]
    assert "HEAD is detached" in stage(repo, "01-a")["stall_marker"]
    assert read_budget(repo)["consecutive_failures"] == 1


def test_a_conflict_resolved_by_hand_lands_with_retry_merge(setup, run):
    repo, home, add = setup
    parallel(repo, 2)
    add("01-a", writes("01-a", "shared.txt", "from a"))
    add("02-b", writes("02-b", "shared.txt", "from b"))
    run_until_quiet(home, repo, limit=20)
    work = Path(stage(repo, "02-b")["worktree"])
    first = git(repo, "rev-parse", "master").strip()

    res = run("requeue", str(repo), "01-a", "--retry-merge")
    assert res.code == 1 and "is completed" in res.err
    # the operator resolves it in the kept worktree: rebase, keep both lines, continue
    proc = subprocess.run(["git", "-C", str(work), "rebase", "master"], capture_output=True, text=True)
    assert proc.returncode != 0
    res = run("requeue", str(repo), "02-b", "--retry-merge")
    assert res.code == 1 and "in the middle of" in res.err
    (work / "shared.txt").write_text("from a\nfrom b\n")
    git(work, "add", "shared.txt")
    subprocess.run(["git", "-C", str(work), "-c", "core.editor=true", "rebase", "--continue"], check=True,
                   capture_output=True)
    res = run("requeue", str(repo), "02-b", "--retry-merge")
    assert res.code == 0, res.err
    # what the operator wrote was judged by no verifier: it is checked again before it lands
    assert stage(repo, "02-b")["status"] == "in_progress" and "checked again" in res.err
    run_until_quiet(home, repo, limit=10)
    b = stage(repo, "02-b")
    assert b["status"] == "completed" and git(repo, "rev-parse", "master^").strip() == first
    assert (repo / "shared.txt").read_text() == "from a\nfrom b\n"
    assert git(repo, "log", "-1", "--format=%an|%s", "master").startswith("Script Worker|02-b: ")
    assert lanes_left(repo) == []
    assert run("tick", "--repair", "--dry-run").out == f"{repo}: nothing to repair\n"


def test_a_lane_is_re_briefed_in_its_own_worktree(setup, tmp_path):
    from tests.testing.ticks import verifier_writes
    repo, home, add = setup
    parallel(repo, 2)
    flag = tmp_path / "judged-once"
    verifier = (f"if [ -f {flag} ]; then {verifier_writes('01-a', 'PASS')}; "
                f"else touch {flag}; {verifier_writes('01-a', 'FAIL')}; fi")
    worker = "cat a.txt >> seen.txt 2>/dev/null; " + writes("01-a", "a.txt", "round")
    add("01-a", worker, verifier, max_loops=2)
    add("02-b", writes("02-b", "b.txt"))
    run_until_quiet(home, repo, limit=30)
    a = stage(repo, "01-a")
    assert a["status"] == "completed" and a["loops"] == 2
    assert (repo / "seen.txt").read_text() == "round\n"  # round two ran on round one's worktree
    assert "FAIL" in (repo / "state" / "rebriefs" / "01-a-2.md").read_text()
    assert stage(repo, "02-b")["status"] == "completed" and lanes_left(repo) == []

"""Never twice: kill the tick anywhere between "about to spawn" and "spawn recorded", and around the commit.

Each tick of a round is armed to die at the next point of :data:`POINTS`
(cycling), for every stage and role at once, after a random pause at that
point (so the run it just started may or may not have finished when the
tick dies); between ticks the round awaits the agents, or does not. Every
run writes ``<role> <stage>`` to a ledger outside the repo as it starts.

Afterwards every stage is completed; its worker, setup, acceptance command
and verifier each ran exactly once; its file holds its line once; it has
exactly one commit on the branch, the one its state.yaml records; never were
two runners of one stage and role alive at once. Serial, and lanes
(``max_parallel: 2``, with ``worktree.setup``).

``AUTOMETTA_RELIABILITY_REPEAT`` sets the rounds (bench/faults.py runs
more); ``AUTOMETTA_RELIABILITY_SEED`` replays one.
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from pathlib import Path
from typing import List

import pytest

from tests.testing.tick_processes import (assert_documents_valid, assert_one_runner_per_stage, await_all_runners,
                                          repeats, tick_process)
from tests.testing.ticks import git, read_state, stage

#: Where a tick can die around a spawn: before the claim (and the run's mark) is saved, after it, before
#: and after the runner is forked and its record written, and at the save that records the pid.
SPAWN_POINTS = ["atomic_write.before@state.yaml", "atomic_write.after@state.yaml", "spawn.before@{id}-{role}.exit.json",
                "atomic_write.before@{id}-{role}.runner.json", "atomic_write.after@{id}-{role}.runner.json",
                "spawn.after@{id}-{role}.exit.json", "atomic_write.before@state.yaml:2"]
#: ... and around the stage's commit (the commit claim is the first state.yaml write of its tick).
COMMIT_POINTS = ["commit.before", "commit.after"]
POINTS = SPAWN_POINTS + COMMIT_POINTS
ROLES_RUN = ("worker", "setup", "acceptance", "verifier", "postmerge")
#: A postmerge rerun runs only when the base moved meanwhile, and again when a landing is retried.
ONCE = ("worker", "setup", "acceptance", "verifier")


def _seed() -> int:
    given = os.environ.get("AUTOMETTA_RELIABILITY_SEED")
    return int(given) if given and given.isdigit() else random.randrange(1 << 30)


def _fault(point: str, ids: List[str], delay: float) -> str:
    action = f"kill+{delay:.3f}"
    if "{" not in point:
        return f"{point}:{action}"
    return ",".join(f"{point.format(id=sid, role=role)}:{action}" for sid in ids for role in ROLES_RUN)


def _worker(sid: str, ledger: Path) -> str:
    return (f"echo \"$AUTOMETTA_ROLE $AUTOMETTA_STAGE_ID\" >> '{ledger}'; printf '%s\\n' {sid} >> {sid}.txt && "
            f"printf '%s' '{{\"stage_id\":\"{sid}\",\"status\":\"pass\",\"deliverables\":[\"{sid}.txt\"],"
            f"\"notes\":\"done\"}}' > \"$AUTOMETTA_HANDOFF\"")


def _verifier(sid: str, ledger: Path) -> str:
    from tests.testing.ticks import verifier_writes

    return f"echo \"$AUTOMETTA_ROLE $AUTOMETTA_STAGE_ID\" >> '{ledger}'; " + verifier_writes(sid)


def _round(setup, tmp_path: Path, r: int, lanes: bool, seed: int) -> None:
    repo, home, add = setup
    rng = random.Random(seed)
    ledger = tmp_path / f"ledger-{r}.txt"
    ledger.touch()
    ids = [f"{r % 100:02d}{'abcd'[i]}-r{r}" for i in range(4 if lanes else 3)]
    start = git(repo, "rev-parse", "HEAD").strip()
    budget = repo / "state" / "budget.json"  # the rounds' transitions add up: each round gets the ticks it may use
    caps = json.loads(budget.read_text())
    caps["clock_tick_cap"] = (caps.get("clock_ticks_used") or 0) + 1000
    budget.write_text(json.dumps(caps, indent=2))
    for sid in ids:
        add(sid, _worker(sid, ledger), _verifier(sid, ledger),
            acceptance=f"echo \"$AUTOMETTA_ROLE $AUTOMETTA_STAGE_ID\" >> '{ledger}'; test \"$(cat {sid}.txt)\" = {sid}")
    if lanes:
        manifest = repo / ".autometta.local.yaml"
        manifest.write_text(manifest.read_text().split("max_parallel")[0] + "max_parallel: 2\nworktree:\n"
                            f"  setup: \"echo \\\"$AUTOMETTA_ROLE $AUTOMETTA_STAGE_ID\\\" >> '{ledger}'\"\n")
    where = f"seed {seed} round {r} ({'lanes' if lanes else 'serial'})"
    kills = 0
    for n in range(120):
        doc = read_state(repo)
        if all(s["status"] == "completed" for s in doc["stages"] if s["id"] in ids):
            break
        stopped = [s for s in doc["stages"] if s["id"] in ids and s["status"] not in ("pending", "in_progress")]
        assert all(s["status"] == "completed" for s in stopped), \
            (where, [(s["id"], s["status"], s.get("stall_marker")) for s in doc["stages"]])
        point = POINTS[n % len(POINTS)]
        fault = _fault(point, ids, rng.choice([0.0, rng.uniform(0.0, 0.15)])) if rng.random() < 0.85 else None
        done = tick_process(fault=fault)
        assert "Traceback" not in done.stderr, (where, fault, done.stderr[-3000:])
        kills += done.returncode == -9
        assert_documents_valid(repo)
        assert_one_runner_per_stage(repo)
        if rng.random() < 0.5:
            await_all_runners(repo)
    else:
        raise AssertionError(f"{where}: not settled: {[(s['id'], s['status']) for s in read_state(repo)['stages']]}")
    await_all_runners(repo)
    assert kills, f"{where}: no tick was killed"

    runs = Counter(tuple(line.split()) for line in ledger.read_text().splitlines() if line.strip())
    branch = "master"
    subjects = git(repo, "log", "--format=%s", f"{start}..{branch}").splitlines()
    for sid in ids:
        for role in ONCE:
            expected = 0 if role == "setup" and not lanes else 1
            assert runs[(role, sid)] == expected, (where, sid, role, runs)
        assert (repo / f"{sid}.txt").read_text() == f"{sid}\n", (where, sid)
        mine = [s for s in subjects if s.startswith(f"{sid}:")]
        assert len(mine) == 1, (where, sid, subjects)
        s = stage(repo, sid)
        assert s["commit"] == git(repo, "log", "-1", "--format=%H", f"--grep=^{sid}:", branch).strip(), (where, s)


@pytest.mark.parametrize("lanes", [False, True], ids=["serial", "lanes"])
def test_a_tick_killed_around_a_spawn_or_a_commit_never_runs_anything_twice(setup, tmp_path, lanes):
    for r in range(repeats(1)):
        _round(setup, tmp_path, r, lanes, _seed())

"""Rewritten books: an agent edits state/budget.json or state/state.yaml while it is in flight.

The tick must not honour it: it keeps the changed file for review, puts back
the last copy autometta wrote (from the controller home) and halts the repo
``state_tampered: <file>``. A person's edit while nothing is in flight is
accepted and logged. Each case runs serially and in lanes (``max_parallel: 2``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import List

import pytest

from tests.testing.repos import make_repo
from tests.testing.ticks import (PASS_WORKER, await_agents, commit_all, git, read_budget, read_state, run_until_quiet,
                                 script_card, stage, tick_once, verifier_writes)

MODES = ["serial", "lanes"]

#: A worker that edits the books, then does its real work and hands off.
STATE = '"$AUTOMETTA_REPO/state"'


def tampering(stage_id: str, edit: str) -> str:
    """A worker that waits for :func:`release` (the tick that started it has finished), edits, hands off."""
    wait = f"n=0; while [ ! -e {STATE}/go ] && [ $n -lt 1000 ]; do sleep 0.01; n=$((n+1)); done"
    return f"{wait}; {edit} && " + PASS_WORKER.replace("{id}", stage_id)


def release(repo: Path) -> None:
    """Let the waiting agent edit, then wait for it to exit."""
    (repo / "state" / "go").touch()
    await_agents(repo)


RAISE_CAPS = (f"sed -i -e 's/\"token_cap_total\": [0-9]*/\"token_cap_total\": 999999999/' "
              f"-e 's/\"clock_ticks_used\": [0-9]*/\"clock_ticks_used\": 0/' {STATE}/budget.json")


def lanes(repo: Path, mode: str) -> None:
    if mode == "lanes":
        manifest = repo / ".autometta.local.yaml"
        manifest.write_text(manifest.read_text() + "max_parallel: 2\n")


def tick_log(home: Path) -> List[str]:
    lines: List[str] = []
    for log in sorted((home / "log").glob("tick-*.log")):
        lines += log.read_text().splitlines()
    return lines


def kept_aside(repo: Path, name: str) -> List[Path]:
    return sorted((repo / "state").glob(f"{name}.tampered-*"))


@pytest.mark.parametrize("mode", MODES)
def test_an_agent_that_raises_its_caps_halts_the_repo_and_the_caps_stay(setup, mode, run):
    repo, home, add = setup
    lanes(repo, mode)
    add("01-a", tampering("01-a", RAISE_CAPS))
    before = read_budget(repo)
    tick_once(home)  # claim, start the worker
    release(repo)
    assert read_budget(repo)["token_cap_total"] == 999999999  # the agent really did rewrite it

    outcomes = tick_once(home)
    assert outcomes[0].kind == "halt", outcomes
    b = read_budget(repo)
    assert b["halted"] is True and b["halt_reason"] == "state_tampered: state/budget.json"
    assert b["token_cap_total"] == before["token_cap_total"]  # the last copy autometta wrote is back
    assert b["clock_ticks_used"] >= 1
    assert read_state(repo)["halt_reason"] == "state_tampered: state/budget.json"
    [aside] = kept_aside(repo, "budget.json")
    assert json.loads(aside.read_text())["token_cap_total"] == 999999999  # kept for review
    assert stage(repo, "01-a")["status"] == "in_progress"
    assert not stage(repo, "01-a").get("verifier_pid")  # nothing the agent did was acted on
    assert any("state_tampered" in line for line in tick_log(home))

    # a person reviews and lets it go on: the stage lands on the books autometta kept
    assert run("tick", "--reset-halt").code == 0
    run_until_quiet(home, repo)
    assert stage(repo, "01-a")["status"] == "completed"
    assert read_budget(repo)["token_cap_total"] == before["token_cap_total"]
    assert "01-a: Say hello" in git(repo, "log", "--format=%s")


@pytest.mark.parametrize("mode", MODES)
def test_an_agent_that_completes_another_stage_in_state_yaml_halts_the_repo(setup, mode):
    repo, home, add = setup
    lanes(repo, mode)
    edit = (f"sed -i 's/status: pending/status: completed/' {STATE}/state.yaml "
            f"&& cp {STATE}/state.yaml {STATE}/state.yaml.bak")
    add("01-a", tampering("01-a", edit))
    add("02-b", depends_on="01-a")  # waits, pending, while 01-a runs
    tick_once(home)
    release(repo)
    assert stage(repo, "02-b")["status"] == "completed"  # the agent's edit is on disk

    outcomes = tick_once(home)
    assert outcomes[0].kind == "halt", outcomes
    assert read_budget(repo)["halt_reason"] == "state_tampered: state/state.yaml, state/state.yaml.bak"
    assert stage(repo, "02-b")["status"] == "pending"
    assert stage(repo, "01-a")["status"] == "in_progress"
    assert (repo / "state" / "state.yaml").read_text() == (repo / "state" / "state.yaml.bak").read_text()
    assert kept_aside(repo, "state.yaml") and kept_aside(repo, "state.yaml.bak")
    # the next tick does not honour it either: still halted, still pending
    tick_once(home)
    assert stage(repo, "02-b")["status"] == "pending" and read_budget(repo)["halted"] is True


@pytest.mark.parametrize("mode", MODES)
def test_a_corrupted_state_yaml_in_flight_is_restored_from_the_books_not_from_an_edited_bak(setup, mode):
    repo, home, add = setup
    lanes(repo, mode)
    edit = (f"sed 's/status: pending/status: completed/' {STATE}/state.yaml > {STATE}/x "
            f"&& mv {STATE}/x {STATE}/state.yaml.bak && printf 'garbage: [' > {STATE}/state.yaml")
    add("01-a", tampering("01-a", edit))
    add("02-b", depends_on="01-a")
    tick_once(home)
    release(repo)
    assert tick_once(home)[0].kind == "halt"
    assert stage(repo, "02-b")["status"] == "pending"
    assert "state_tampered" in read_budget(repo)["halt_reason"]


@pytest.mark.parametrize("mode", MODES)
def test_a_by_hand_command_does_not_launder_an_agents_edit(setup, mode, run):
    repo, home, add = setup
    lanes(repo, mode)
    add("01-a", tampering("01-a", f"sed -i 's/status: pending/status: completed/' {STATE}/state.yaml"))
    add("02-b", depends_on="01-a")
    tick_once(home)
    release(repo)
    # a person queues another card before any tick has looked: refused, nothing written
    card = script_card(repo, "03-c")
    commit_all(repo, "card 03-c")
    res = run("add-stage", str(repo), str(card))
    assert res.code == 1 and "state_tampered" in res.err
    assert run("tick", "--reset-halt").code == 0  # nothing halted yet: nothing to reset, nothing written
    assert stage(repo, "02-b")["status"] == "completed"  # still the agent's file, not yet in the books
    assert tick_once(home)[0].kind == "halt"
    assert stage(repo, "02-b")["status"] == "pending"
    assert [s["id"] for s in read_state(repo)["stages"]] == ["01-a", "02-b"]


@pytest.mark.parametrize("mode", MODES)
def test_a_persons_edit_while_nothing_is_in_flight_is_accepted_and_logged(setup, mode):
    repo, home, add = setup
    lanes(repo, mode)
    budget = repo / "state" / "budget.json"
    doc = json.loads(budget.read_text())
    doc["token_cap_total"] = 5000000
    budget.write_text(json.dumps(doc, indent=2) + "\n")
    add("01-a")
    run_until_quiet(home, repo)
    assert stage(repo, "01-a")["status"] == "completed"
    b = read_budget(repo)
    assert b["halted"] is False and b["token_cap_total"] == 5000000
    accepted = [line for line in tick_log(home) if "accepted as a person's edit" in line]
    assert accepted and "state/budget.json" in accepted[0], tick_log(home)
    assert not kept_aside(repo, "budget.json")


def test_a_persons_edit_a_by_hand_command_finds_is_logged_under_its_repo(setup, run):
    repo, home, add = setup
    path = repo / "state" / "state.yaml"
    path.write_text(path.read_text() + "# a person's note\n")
    add("01-a")  # add-stage writes state.yaml over it: idle, so the edit is accepted, and said
    said = [line for line in tick_log(home) if "accepted as a person's edit" in line]
    assert said and f"[{repo}] books: state/state.yaml in {repo} changed outside autometta" in said[0], said
    assert "books: state/state.yaml" in run("log", "--repo", str(repo)).out


@pytest.mark.parametrize("mode", MODES)
def test_a_home_without_books_records_the_files_as_they_are(setup, mode):
    """A bash-version user's home (or a first run): nothing to compare with, so nothing is refused."""
    repo, home, add = setup
    lanes(repo, mode)
    add("01-a", tampering("01-a", RAISE_CAPS))
    tick_once(home)
    release(repo)
    for record in (home / "books").glob("*.json"):
        record.unlink()
    run_until_quiet(home, repo)
    assert stage(repo, "01-a")["status"] == "completed"
    assert any("no digests recorded" in line for line in tick_log(home))
    assert list((home / "books").glob("*.json"))


@pytest.mark.parametrize("mode", MODES)
def test_an_agent_that_deletes_the_budget_halts_the_repo_and_it_comes_back(setup, mode):
    repo, home, add = setup
    lanes(repo, mode)
    add("01-a", tampering("01-a", f"rm {STATE}/budget.json"))
    tick_once(home)
    release(repo)
    assert not (repo / "state" / "budget.json").exists()
    assert tick_once(home)[0].kind == "halt"
    assert read_budget(repo)["halt_reason"] == "state_tampered: state/budget.json"
    assert read_budget(repo)["clock_ticks_used"] >= 1  # the spend so far is not lost with the file


# ------------------------------------------------------------------ by hand

@pytest.mark.parametrize("isolation", ["worktree", "tree"])
def test_a_by_hand_verifier_that_rewrites_what_verify_recorded_is_not_trusted(run, tmp_path, isolation):
    """No tick audits state/ between 'verify' and 'accept': accept checks its record against the books.

    The verifier changes the tree it judges and blanks the tree verify
    recorded, so accept would find no tree to compare with (no
    verifier_modified_tree) and commit the verifier's change as the worker's.
    """
    repo = make_repo(tmp_path / "manual")
    if isolation == "tree":
        (repo / ".autometta.local.yaml").write_text("isolation: tree\n")
        (repo / ".gitignore").write_text(".autometta.local.yaml\n")
    record = "\"$AUTOMETTA_REPO/state/logs/01-a-oneshot.json\""
    # once verify has noted the verifier's pid (its last write before it waits), or autometta's own write
    # could land over the blanking and the test would see the verifier_modified_tree it hides
    blank = (f"until grep -q '\"verifier_pid\": [0-9]' {record}; do sleep 0.05; done && "
             f"sed -i 's/\"worker_tree\": \"[0-9a-f]*\"/\"worker_tree\": \"\"/' {record}")
    card = script_card(repo, "01-a", verifier_cmd=f"printf 'the verifier was here\\n' > hello.txt && {blank} && "
                                                  + verifier_writes("01-a"))
    commit_all(repo, "card")
    start = git(repo, "rev-parse", "HEAD").strip()
    assert run("dispatch", str(card), "--wait").code == 0
    said = "01-a-oneshot.json: changed since autometta wrote it, not by autometta (state_tampered)"
    res = run("verify", str(card), "--wait")  # reading the verdict, it reads its record again
    assert res.code == 1 and said in res.err, res.out + res.err
    assert '"worker_tree": ""' in (repo / "state" / "logs" / "01-a-oneshot.json").read_text()  # it really did
    res = run("accept", str(card))
    assert res.code == 1 and said in res.err, res.out + res.err
    assert git(repo, "rev-parse", "HEAD").strip() == start  # nothing committed
    if isolation == "tree":
        (repo / "hello.txt").unlink()  # reviewed: the checkout is clean again
    assert run("dispatch", str(card), "--wait").code == 0  # a new dispatch starts afresh

"""Spend that adds up: every run autometta starts, by the tick or by hand, panellists included, is booked once
in the spend ledger, to its repo, stage, role, family and model, with its day; the caps and the views read it."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from autometta import yamlsub
from autometta.books import ledger
from autometta.families.usage import Usage
from autometta.observe import dashboard, settings
from autometta.paths import HomePaths
from tests.testing.fake_api import script_verdict_command
from tests.testing.tick_processes import tick_process
from tests.testing.ticks import (PASS_WORKER, await_agents, commit_all, read_budget, run_until_quiet,
                                 script_card, stage, tick_once, verifier_writes)

SID = "01-hello"
TODAY = time.strftime("%Y-%m-%d", time.gmtime())


def usage_line(inp: int, out: int, cost: float) -> str:
    return f"printf 'autometta-usage: {{\"input_tokens\": {inp}, \"output_tokens\": {out}, \"cost_usd\": {cost}}}\\n'; "


def booked(home: Path):
    return ledger.entries(HomePaths(home))


def set_config(home: Path, **values) -> None:
    path = home / "config.yaml"
    config = yamlsub.loads(path.read_text())
    config.update(values)
    path.write_text(yamlsub.dumps(config))


MODELS = {"Script Worker": "model-w", "Script Checker": "model-v"}


def by_hand_card(repo: Path, stage_id: str = SID) -> Path:
    card = script_card(repo, stage_id, usage_line(100, 10, 0.1) + PASS_WORKER.replace("{id}", stage_id),
                       usage_line(200, 20, 0.2) + verifier_writes(stage_id))
    commit_all(repo, f"card {stage_id}")
    return card


def test_runs_by_hand_are_booked_once_and_count_against_the_caps(setup, run):
    repo, home, add = setup
    set_config(home, models=MODELS)
    card = by_hand_card(repo)
    assert run("dispatch", str(card), "--wait").code == 0
    assert run("verify", str(card), "--wait").code == 0
    rows = booked(home)
    assert [(e["stage"], e["role"], e["by"], e["family"], e["model"], e["tokens"], e["cost_usd"], e["day"])
            for e in rows] == [(SID, "worker", "hand", "script", "model-w", 110, 0.1, TODAY),
                               (SID, "verifier", "hand", "script", "model-v", 220, 0.2, TODAY)]
    assert all(e["repo"] == os.path.realpath(repo) and e["exit_code"] == 0 for e in rows)
    assert read_budget(repo)["tokens_spent"] == 0  # budget.json is the tick's to write

    b = read_budget(repo)
    b["token_cap_total"] = 300
    (repo / "state" / "budget.json").write_text(json.dumps(b))
    add("02-next")
    [outcome] = tick_once(home)  # the next tick counts them against the caps before it claims anything
    b = read_budget(repo)
    assert (b["tokens_spent"], b["cost_usd_spent"]) == (330, pytest.approx(0.3))
    assert b["ledger_offset"] == (home / "ledger").joinpath(HomePaths(home).ledger(repo).name).stat().st_size
    assert b["halted"] and b["halt_reason"] == "token-cap" and outcome.kind == "halt"
    tick_once(home)
    assert read_budget(repo)["tokens_spent"] == 330  # never twice

    report = json.loads(run("report", "--json").out)
    assert report["by_day"] == [{"date": TODAY, "tokens": 330, "cost_usd": pytest.approx(0.3), "runs": 2,
                                 "seconds": report["by_day"][0]["seconds"]}]
    assert [(m["model"], m["tokens"], m["runs"]) for m in report["by_model"]] == [("model-v", 220, 1),
                                                                                  ("model-w", 110, 1)]
    spend = report["repos"][0]["spend"]
    assert (spend["window_tokens"], spend["window_by_hand_runs"]) == (330, 2)
    text = run("report").out
    assert "SPEND PER DAY" in text and f"  {TODAY}     2 runs" in text and "model-v" in text
    assert "(2 runs by hand)" in text


def test_a_run_by_hand_nobody_waited_for_is_booked_by_the_next_tick(setup, run):
    repo, home, _ = setup
    card = by_hand_card(repo)
    res = run("dispatch", str(card), "--json")
    pid = json.loads(res.out)["pid"]
    os.waitpid(pid, 0)
    assert booked(home) == [] and len(list((home / "ledger" / "open").iterdir())) == 1
    tick_once(home)
    [entry] = booked(home)
    assert (entry["role"], entry["by"], entry["tokens"]) == ("worker", "hand", 110)
    assert list((home / "ledger" / "open").iterdir()) == []
    assert read_budget(repo)["tokens_spent"] == 110


@pytest.mark.parametrize("damage", [("drop", "repo"), ("set", "repo", 7), ("set", "environ", "x"),
                                    ("set", "info", {"family": "script", "model": [1]}), ("set", "stage", {})])
def test_a_note_of_a_run_by_hand_not_as_autometta_wrote_it_is_dropped_not_booked(setup, run, damage):
    """A note in <home>/ledger/open/ with a field gone or of the wrong type: the tick goes on, the note goes."""
    repo, home, _ = setup
    card = by_hand_card(repo)
    os.waitpid(json.loads(run("dispatch", str(card), "--json").out)["pid"], 0)
    [note] = (home / "ledger" / "open").iterdir()
    doc = json.loads(note.read_text())
    if damage[0] == "drop":
        del doc[damage[1]]
    else:
        doc[damage[1]] = damage[2]
    note.write_text(json.dumps(doc))
    outcomes = tick_once(home)
    assert [o.kind for o in outcomes if o.kind == "error"] == []
    assert booked(home) == [] and list((home / "ledger" / "open").iterdir()) == []


def test_a_panel_is_booked_per_panellist_with_its_own_model(setup, run):
    repo, home, add = setup
    seat = lambda n, inp, cost: script_verdict_command(SID, "PASS", {"input_tokens": inp, "output_tokens": 10,
                                                                    "cost_usd": cost})  # noqa: E731
    set_config(home, panel=[{"name": n, "identity": f"Script Panellist {n.upper()} <panel-{n}@local>",
                             "model": f"model-{n}", "command": seat(n, inp, cost)}
                            for n, inp, cost in (("a", 1000, 0.5), ("b", 2000, 0.25), ("c", 3000, 0.125))])
    card = add(SID, usage_line(100, 10, 0.1) + PASS_WORKER.replace("{id}", SID))
    card.write_text(card.read_text().replace("## Metadata\n", "## Metadata\n- **Verifier panel:** true\n"))
    commit_all(repo, "panel on")
    run_until_quiet(home, repo)
    assert stage(repo, SID)["status"] == "completed"
    rows = booked(home)
    panel = next(e for e in rows if e["family"] == "panel")
    seats = sorted((e["model"], e["tokens"], e["cost_usd"], e["parent"]) for e in rows if e.get("seat"))
    assert seats == [("model-a", 1010, 0.5, panel["key"]), ("model-b", 2010, 0.25, panel["key"]),
                     ("model-c", 3010, 0.125, panel["key"])]
    assert (panel["role"], panel["tokens"], panel["cost_usd"]) == ("verifier", 0, None)
    b = read_budget(repo)
    assert b["tokens_spent"] == 110 + 6030 and b["cost_usd_spent"] == pytest.approx(0.975)
    # the panellists ran inside the panel's time: counted once
    assert b["wall_clock_elapsed_seconds"] == sum(e["seconds"] for e in rows if not e["parent"])
    assert stage(repo, SID)["verifier_tokens"] == 6030  # the stage still shows the panel's whole spend
    data = dashboard.collect(HomePaths(home), settings.from_home(HomePaths(home)))
    assert {m["model"]: m["tokens"] for m in data["by_model"]} == {
        "model-a": 1010, "model-b": 2010, "model-c": 3010, "script (default model)": 110, "panel": 0}


def test_the_panel_command_books_its_panellists(setup, run):
    repo, home, _ = setup
    set_config(home, panel=[{"name": n, "identity": f"Script Panellist {n.upper()} <panel-{n}@local>",
                             "model": f"model-{n}",
                             "command": script_verdict_command(SID, "PASS", {"input_tokens": 7, "output_tokens": 3})}
                            for n in "abc"])
    by_hand_card(repo)
    assert run("panel", SID, str(repo)).code == 0
    rows = booked(home)
    assert sorted((e["model"], e["tokens"], e["by"], e["role"]) for e in rows) == [
        ("model-a", 10, "hand", "verifier"), ("model-b", 10, "hand", "verifier"), ("model-c", 10, "hand", "verifier")]
    tick_once(home)
    assert read_budget(repo)["tokens_spent"] == 30


def test_spend_per_day_includes_stages_that_failed(setup, run):
    repo, home, add = setup
    fail = usage_line(500, 50, 0.05) + ("printf '%s' '{\"stage_id\":\"01-hello\",\"status\":\"fail\","
                                        "\"deliverables\":[],\"notes\":\"no way\"}' > \"$AUTOMETTA_HANDOFF\"")
    add(SID, fail)
    run_until_quiet(home, repo)
    assert stage(repo, SID)["status"] == "failed"
    data = dashboard.collect(HomePaths(home), settings.from_home(HomePaths(home)))
    assert data["by_day"] == [{"date": TODAY, "tokens": 550, "cost_usd": 0.05, "runs": 1}]
    dashboard.generate(HomePaths(home), settings.from_home(HomePaths(home)))
    page = (home / "dashboard" / "index.html").read_text()
    assert "Spend per day" in page and "Spend per model" in page


def test_a_tick_killed_after_booking_books_nothing_twice(setup):
    repo, home, add = setup
    add(SID, usage_line(100, 10, 0.1) + PASS_WORKER.replace("{id}", SID),
        usage_line(200, 20, 0.2) + verifier_writes(SID))
    tick_once(home)  # claim, worker
    await_agents(repo)
    # the next tick books the worker, then is killed as it saves state.yaml before starting the verifier
    proc = tick_process("--quiet", fault="atomic_write.before@state.yaml")
    assert proc.returncode == -9, proc.stderr
    [entry] = booked(home)
    assert entry["role"] == "worker" and read_budget(repo)["tokens_spent"] == 0
    run_until_quiet(home, repo)
    assert stage(repo, SID)["status"] == "completed"
    rows = booked(home)
    assert sorted(e["role"] for e in rows) == ["verifier", "worker"]
    assert read_budget(repo)["tokens_spent"] == 330 and stage(repo, SID)["worker_tokens"] == 110


# ------------------------------------------------------------------ the file itself

def entry(key: str, repo: str, tokens: int = 10, **extra):
    return ledger.make_entry(key=key, repo=repo, stage_id=SID, role="worker", info={"family": "script"}, by="tick",
                             started_at="2026-12-04T10:00:00Z", ended_at="2026-12-04T10:01:00Z", seconds=60,
                             usage=Usage(input_tokens=tokens), **extra)


def test_a_key_is_booked_once_and_a_cut_line_is_skipped(tmp_path):
    hp = HomePaths(tmp_path / "home")
    repo = str(tmp_path / "r")
    assert ledger.book(hp, entry("a", repo)) and not ledger.book(hp, entry("a", repo, tokens=99))
    path = hp.ledger(repo)
    with open(path, "ab") as handle:  # a writer killed mid-line
        handle.write(b'{"key": "b", "repo": ')
    assert [e["key"] for e in ledger.entries(hp)] == ["a"]
    assert ledger.book(hp, entry("b", repo, tokens=5))  # the half line was no booking of "b"
    assert [(e["key"], e["tokens"]) for e in ledger.entries(hp)] == [("a", 10), ("b", 5)]
    budget = {"tokens_spent": 0}
    assert ledger.fold(hp, repo, budget) == 2 and budget["tokens_spent"] == 15
    assert budget["wall_clock_elapsed_seconds"] == 120 and budget["ledger_offset"] == path.stat().st_size
    assert ledger.fold(hp, repo, budget) == 0 and budget["tokens_spent"] == 15


def test_entries_an_agent_could_forge_are_not_read(tmp_path):
    hp = HomePaths(tmp_path / "home")
    repo = str(tmp_path / "r")
    ledger.book(hp, entry("a", repo))
    with open(hp.ledger(repo), "a") as handle:
        handle.write(json.dumps({"key": "x", "repo": repo, "tokens": -5}) + "\n")
        handle.write(json.dumps({"key": "y", "repo": repo, "tokens": "lots"}) + "\n")
        handle.write("[1, 2]\n")
    assert [e["key"] for e in ledger.entries(hp)] == ["a"]
    budget: dict = {}
    ledger.fold(hp, repo, budget)
    assert budget["tokens_spent"] == 10


def test_an_entry_without_a_count_counts_none(tmp_path):
    """valid() reads a missing tokens or seconds as 0; the fold does too (the fuzz test found a KeyError)."""
    hp = HomePaths(tmp_path / "home")
    repo = str(tmp_path / "r")
    ledger.book(hp, entry("a", repo))
    with open(hp.ledger(repo), "a") as handle:
        handle.write(json.dumps({"key": "x", "repo": repo, "tokens": 5}) + "\n")
        handle.write(json.dumps({"key": "y", "repo": repo, "seconds": 7}) + "\n")
    budget: dict = {}
    assert ledger.fold(hp, repo, budget) == 3
    assert (budget["tokens_spent"], budget["wall_clock_elapsed_seconds"]) == (15, 67)


def test_a_symlinked_ledger_is_not_written_through(tmp_path):
    hp = HomePaths(tmp_path / "home")
    repo = str(tmp_path / "r")
    target = tmp_path / "victim.txt"
    target.write_text("mine\n")
    hp.ledger_dir.mkdir(parents=True)
    hp.ledger(repo).symlink_to(target)
    with pytest.raises(ledger.UserError):
        ledger.book(hp, entry("a", repo))
    assert target.read_text() == "mine\n"

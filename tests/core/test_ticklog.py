"""The tick log: each repo's lines tagged, a repeated decision written once per change, ``log --repo``."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

from tests.testing.repos import make_repo
from tests.testing.ticks import PASS_WORKER, await_agents, commit_all, run_until_quiet, script_card, tick_once

STILL = re.compile(r"worker \d+ for 01-wait still running, skipping verifier dispatch")


def tick_log(home: Path) -> str:
    return "".join(p.read_text() for p in sorted((home / "log").glob("tick-*.log")))


def test_a_repeated_decision_is_written_once_and_counted_when_it_changes(setup, run, tmp_path):
    repo, home, add = setup
    go = tmp_path / "go"
    add("01-wait", f"while [ ! -e '{go}' ]; do sleep 0.05; done; " + PASS_WORKER.replace("{id}", "01-wait"))
    tick_once(home)  # claims 01-wait; its worker waits for us
    for _ in range(3):
        tick_once(home)
    res = run("tick")  # by hand: the decision is still shown on stderr
    assert res.code == 0 and STILL.search(res.err)
    lines = tick_log(home).splitlines()
    still = [line for line in lines if STILL.search(line)]
    assert len(still) == 1 and still[0][21:].startswith(f"[{repo}] worker ")  # once, tagged with the repo
    go.touch()
    await_agents(repo)
    run_until_quiet(home, repo)
    lines = tick_log(home).splitlines()
    still = [i for i, line in enumerate(lines) if STILL.search(line)]
    assert len(still) == 2
    count = lines[still[1]]
    assert re.search(r"\[.*\] \(worker \d+ for 01-wait still running, skipping verifier dispatch: 4 ticks since "
                     r"\d{4}-\d\d-\d\dT[\d:]+Z\)$", count), count
    assert "worker envelope status=pass" in lines[still[1] + 1]  # the change follows its count
    for _ in range(3):
        tick_once(home)
    idle = [line for line in tick_log(home).splitlines() if line.endswith(": no pending stage")]
    assert len(idle) == 1  # an idle repo says so once, not every tick


def test_log_repo_follows_one_repo(setup, run, tmp_path):
    repo, home, add = setup
    add("01-hello")
    other = make_repo(tmp_path / "other")
    assert run("subscribe", str(other)).code == 0
    commit_all(other, "subscribe")
    card = script_card(other, "02-elsewhere")
    commit_all(other, "card")
    assert run("add-stage", str(other), str(card)).code == 0
    run_until_quiet(home, repo)
    await_agents(other)
    with open(next((home / "log").glob("tick-*.log")), "a") as handle:  # lines from before tags existed
        handle.write(f"2026-01-01T00:00:00Z error in {repo}: an old untagged line\n")
        handle.write(f"2026-01-01T00:00:01Z error in {other}: not ours\n")
    everything = run("log", "-n", "500")
    assert f"[{repo}] claimed 01-hello" in everything.out and f"[{other}] claimed 02-elsewhere" in everything.out
    ours = run("log", "--repo", str(repo), "-n", "500")
    assert ours.code == 0, ours.err
    assert "claimed 01-hello" in ours.out and "01-hello PASS: committed" in ours.out
    assert f"error in {repo}: an old untagged line" in ours.out
    assert "02-elsewhere" not in ours.out and str(other) not in ours.out
    assert f"[{repo}]" not in ours.out  # every line is this repo's: the tag is left out
    assert all(re.match(r"^\d{4}-\d\d-\d\dT[\d:]+Z ", line) for line in ours.out.splitlines())
    assert run("log", "--repo", str(tmp_path / "nowhere")).code == 1


def test_a_quiet_tick_still_counts_as_the_controller_running(setup, run):
    repo, home, add = setup
    add("01-hello")
    run_until_quiet(home, repo)
    tick_once(home)  # idle, said before: no new line
    logs = list((home / "log").glob("tick-*.log"))
    size = sum(p.stat().st_size for p in logs)
    hours_ago = time.time() - 7200
    for p in logs:
        os.utime(p, (hours_ago, hours_ago))
    tick_once(home)
    assert sum(p.stat().st_size for p in logs) == size  # the log said nothing new
    view = json.loads(run("status", "--watch", "--once", "--json").out)
    assert view["controller"]["level"] == "ok", view["controller"]

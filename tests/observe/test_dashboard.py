"""The dashboard: one self-contained page, refreshed by the tick, rendered by headless Chromium."""

from __future__ import annotations

import json
import os
import re
import sys

import pytest

from tests.testing.cli import run_process
from tests.testing.repos import make_repo
from tests.testing.ticks import PASS_WORKER, await_agents, commit_all, run_until_quiet, script_card, tick_once
from tests.testing.worlds import building, fresh, run_ok
from tests.testing.chromium import dom as chromium_dom, needs_chromium, screenshot
from tests.testing.waits import wait_for

USAGE = "echo 'autometta-usage: {{\"input_tokens\": {n}, \"output_tokens\": 80, \"cost_usd\": {c}}}'"


def unstamped(page: str) -> str:
    """The page without its "data as of" line and stamp, which every tick renews."""
    page = re.sub(r"<!--freshness-->.*?<!--/freshness-->", "", page, flags=re.S)
    return re.sub(r'"data_as_of": "[^"]*"', "", page)


@pytest.fixture(scope="module")
def _fleet(tmp_path_factory):
    """Two subscribed repos; one landed two stages with spend, one failed a stage (built once: tests/testing/worlds.py)."""
    root = tmp_path_factory.mktemp("fleet")
    with building(root):
        repos = []
        for name, stages in (("alpha", (("01-parse", 1200, 0.25), ("02-render", 5400, 1.5))),
                             ("beta", (("01-broken", None, None),))):
            repo = make_repo(root / name)
            run_ok("init-host")
            run_ok("subscribe", str(repo))
            commit_all(repo, "subscribe")
            for stage_id, tokens, cost in stages:
                worker = (f"{USAGE.format(n=tokens, c=cost)}; " + PASS_WORKER.replace("{id}", stage_id)
                          if tokens else "exit 3")
                card = script_card(repo, stage_id, worker, title=f"Stage {stage_id}")
                commit_all(repo, f"card {stage_id}")
                run_ok("add-stage", str(repo), str(card))
            repos.append(repo)
        for repo in repos:
            run_until_quiet(root / "controller-home", repo)
    return root


@pytest.fixture
def fleet(_fleet, monkeypatch):
    """({"alpha": repo, "beta": repo}, home): a fresh copy of the module's fleet, this test's own."""
    root = fresh(_fleet, monkeypatch)
    return {"alpha": root / "alpha", "beta": root / "beta"}, root / "controller-home"


def test_the_tick_writes_the_page_and_rewrites_it_only_after_a_transition(fleet, run):
    repos, home = fleet
    page = home / "dashboard" / "index.html"
    assert page.exists()  # written by the ticks, nobody asked
    html = page.read_text()
    for text in ("alpha", "beta", "01-parse", "02-render", "01-broken", "stalled", "completed",
                 "Cost per stage", "$1.75", "<svg"):
        assert text in html, text
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", html)  # no network asset
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    data = json.loads(re.search(r'<script type="application/json" id="autometta-data">(.*?)</script>',
                                html, re.S).group(1))
    alpha = next(r for r in data["repos"] if r["name"] == "alpha")
    assert [s["status"] for s in alpha["stages"]] == ["completed", "completed"]
    assert alpha["cost_usd_spent"] == 1.75
    assert any("claimed 02-render" in line for line in alpha["last_ticks"])
    beta = next(r for r in data["repos"] if r["name"] == "beta")
    assert any("01-broken: stalled" in a for a in beta["alerts"])
    assert json.loads((home / "dashboard" / "data.json").read_text())["repos"][0]["name"] == "alpha"

    # every tick's heartbeat retired the agents that exited, each with its outcome
    assert not list((repos["beta"] / "state" / "active-agents").glob("*.json"))
    (gone,) = [json.loads(p.read_text()) for p in (repos["beta"] / "state" / "recent-agents").glob("*.json")]
    assert (gone["role"], gone["outcome"], gone["exit_code"], gone["reason"]) == ("worker", "failed", 3, "exit 3")
    outcomes = sorted(json.loads(p.read_text())["outcome"] for p in (repos["alpha"] / "state" / "recent-agents").glob("*.json"))
    assert outcomes == ["ok"] * 4  # two workers, two verifiers

    before, made = page.read_text(), (home / "dashboard" / "data.json").read_text()
    stamped = json.loads((home / "dashboard" / ".fresh.json").read_text())["as_of"]
    tick_once(home)  # idle everywhere: nothing changed, the page is only restamped
    assert (home / "dashboard" / "data.json").read_text() == made
    assert unstamped(page.read_text()) == unstamped(before)
    assert json.loads((home / "dashboard" / ".fresh.json").read_text())["as_of"] > stamped
    card = script_card(repos["alpha"], "03-more")
    commit_all(repos["alpha"], "card")
    assert run("add-stage", str(repos["alpha"]), str(card)).code == 0
    tick_once(home)  # a claim: the page follows
    await_agents(repos["alpha"])
    assert page.stat().st_mtime_ns != before
    assert "03-more" in page.read_text()


def test_dashboard_command_prints_the_page_path(fleet, run):
    repos, home = fleet
    res = run("dashboard")
    assert res.code == 0 and res.out.strip() == str(home / "dashboard" / "index.html")
    res = run("dashboard", "--json")
    assert [r["name"] for r in json.loads(res.out)["repos"]] == ["alpha", "beta"]


@pytest.mark.parametrize("blocked", ["data.json", ".fresh.json", "index.html"])
def test_a_dashboard_that_cannot_be_written_still_prints_its_json(fleet, run, blocked):
    """A folder where a file of the page goes: the one-line error names it, and --json still prints the data."""
    repos, home = fleet
    target = home / "dashboard" / blocked
    if target.exists():
        target.unlink()
    target.mkdir()
    res = run("dashboard", "--json")
    assert res.code == 1 and f"{target}: cannot write" in res.err and "Traceback" not in res.err
    assert [r["name"] for r in json.loads(res.out)["repos"]] == ["alpha", "beta"]
    res = run("dashboard")
    assert res.code == 1 and res.out == "" and f"{target}: cannot write" in res.err


@needs_chromium
def test_the_page_renders_in_headless_chromium_from_file_url(fleet, run, tmp_path):
    repos, home = fleet
    assert run("dashboard").code == 0
    url = (home / "dashboard" / "index.html").as_uri()
    page = chromium_dom(url, tmp_path / "profile1")  # the page logs nothing: no script error, no blocked asset
    for text in ("autometta dashboard", "alpha", "beta", "01-parse", "02-render", "01-broken"):
        assert text in page, text
    assert re.search(r'id="generated-ago"[^>]*>\d+s ago<', page)  # its script ran
    screenshot(url, tmp_path / "dashboard.png", tmp_path / "profile2", size="1280,1600")


def test_open_hands_the_page_to_the_platform_opener(fleet, tmp_path):
    repos, home = fleet
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    opened = tmp_path / "opened.txt"
    name = "open" if sys.platform == "darwin" else "xdg-open"
    (bin_dir / name).write_text(f"#!/bin/sh\nprintf '%s' \"$1\" > '{opened}.tmp' && mv '{opened}.tmp' '{opened}'\n")
    (bin_dir / name).chmod(0o755)
    res = run_process("dashboard", "--open", env={"PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert res.code == 0, res.err
    wait_for(opened.exists)  # the opener runs detached, as a browser would
    assert opened.read_text() == (home / "dashboard" / "index.html").as_uri()
    res = run_process("dashboard", "--open", env={"PATH": str(tmp_path / "empty")})
    assert res.code == 1 and f"{name} not found" in res.err

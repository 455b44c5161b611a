"""What needs you: one source (autometta.observe.needs) that status, the attach panes, the ticker,
the dashboard and its stage pages, and report all lead with; a dashboard that is never stale.

The real-tmux and headless-Chromium tests run one repo through real ticks into a stalled stage, a
merge conflict and a stuck agent, then find each of them on screen.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest

from autometta.books import state
from autometta.observe import dashboard, fresh, heartbeat, needs, settings
from autometta.paths import HomePaths, RepoPaths
from autometta.schedule import interval
from tests.testing.chromium import dom as chromium_dom, needs_chromium, screenshot
from tests.testing.cli import run_process
from tests.testing.lanes import edit_stages, lane, parallel, writes
from tests.testing.ticks import await_agents, run_until_quiet, stage, tick_once
from tests.testing.tmux import eventually, needs_tmux, t
from tests.testing.waits import wait_for

NOW = 1_800_000_000.0
REPO = "/srv/my repo"


# --------------------------------------------------------------------------- the one source, pure


def _stage(sid: str, status: str, **kw: Any) -> Dict[str, Any]:
    return dict(id=sid, status=status, worker="w", verifier="v", **kw)


@pytest.mark.parametrize("stage_fields,kind,command,note", [
    (dict(status="stalled", stall_marker="worker_no_envelope", stopped_at="2027-01-15T08:00:00Z"), "stalled",
     "autometta requeue '/srv/my repo' 01-a", None),
    (dict(status="failed", stall_marker="worker_envelope_fail"), "failed", "autometta requeue '/srv/my repo' 01-a",
     None),
    (dict(status="verifier_failed"), "verifier_failed", "autometta requeue '/srv/my repo' 01-a", None),
    (dict(status="merge_conflict", stall_marker="merge_conflict: x.py", worktree="/wt/01-a", branch="autometta/01-a"),
     "merge_conflict", "autometta requeue --retry-merge '/srv/my repo' 01-a",
     "after you resolve it on autometta/01-a in /wt/01-a and commit"),
    (dict(status="merge_conflict", stall_marker="merge_conflict: x.py"), "merge_conflict",  # no worktree kept
     "autometta requeue '/srv/my repo' 01-a", None),
    (dict(status="failed", stall_marker="post_merge_acceptance_failed: exit 1", worktree="/wt/01-a",
          branch="autometta/01-a"), "failed", "autometta requeue --retry-merge '/srv/my repo' 01-a",
     "after you fix autometta/01-a in /wt/01-a and commit"),
])
def test_a_stopped_stage_needs_you_with_the_command_that_addresses_it(stage_fields, kind, command, note):
    doc = {"stages": [_stage("01-a", **stage_fields)]}
    (item,) = needs.needs_you(REPO, doc, {}, now=NOW)
    assert (item.kind, item.stage_id, item.command, item.note) == (kind, "01-a", command, note)
    assert item.marker == stage_fields.get("stall_marker")
    assert item.since == stage_fields.get("stopped_at")
    assert item.look == "autometta show '/srv/my repo' 01-a"


def test_items_come_most_pressing_first_and_only_for_what_waits():
    doc = {"parked_until": "2027-01-15T10:00:00Z", "park_reason": "usage limit", "stages": [
        _stage("01-a", "completed"), _stage("02-b", "pending"), _stage("03-c", "in_progress"),
        _stage("04-d", "stalled", stall_marker="worker_timeout"), _stage("05-e", "merge_conflict"),
    ]}
    budget = {"halted": True, "halt_reason": "failure-cap", "halted_at": "2027-01-15T07:00:00Z"}
    agents = [{"pid": 41, "role": "worker", "state": "running", "stage_id": "03-c"},
              {"pid": 42, "role": "verifier", "state": "stuck", "stage_id": "03-c", "reason": "log silent for 9m",
               "log_mtime_age_seconds": 540},
              {"pid": 43, "role": "worker", "state": "over-budget", "stage_id": "02-b", "started_at": "x"}]
    items = needs.needs_you(REPO, doc, budget, agents, now=NOW)
    assert [(i.kind, i.stage_id) for i in items] == [
        ("halted", None), ("stalled", "04-d"), ("merge_conflict", "05-e"), ("stuck", "03-c"),
        ("over-budget", "02-b"), ("parked", None)]
    halted, stuck, parked = items[0], items[3], items[-1]
    assert (halted.marker, halted.since, halted.command) == (
        "failure-cap", "2027-01-15T07:00:00Z", "autometta tick --reset-halt --repo '/srv/my repo'")
    assert (stuck.pid, stuck.role, stuck.command, stuck.look) == (
        42, "verifier", "kill -TERM -42", "autometta show '/srv/my repo' 03-c")
    assert stuck.since == "2027-01-15T07:51:00Z"  # when its log last grew
    assert stuck.summary == "03-c: verifier pid 42 stuck (log silent for 9m)"
    assert stuck.fix() == "kill -TERM -42  (if it has hung)"
    assert (parked.until, parked.marker, parked.command) == ("2027-01-15T10:00:00Z", "usage limit", None)
    # a reset in the past is no park; an empty repo needs nothing
    assert [i.kind for i in needs.needs_you(REPO, dict(doc, parked_until="2020-01-01T00:00:00Z"), {}, now=NOW)] == [
        "stalled", "merge_conflict"]
    assert needs.needs_you(REPO, {"stages": []}, {}, now=NOW) == []
    assert set(needs.AGENT_STATES) == set(heartbeat.ALERT_STATES)
    assert set(needs.STOPPED) == set(state.TERMINAL) - {"completed"}


PARK = {"route": "claude subscription", "until": "2027-01-15T10:00:00Z", "reason": "worker hit a usage limit: x",
        "repo": REPO, "stage": "03-c", "since": "2027-01-15T08:00:00Z"}


@pytest.mark.parametrize("stage_until,parks,shown", [
    # the route's park, met by this repo's stage: one item, the route's, with its until and its stage
    ("2027-01-15T10:00:00Z", [PARK], [("claude subscription", "03-c", "2027-01-15T10:00:00Z",
                                       "claude subscription parked until 2027-01-15T10:00:00Z for every repo on this "
                                       "host (worker hit a usage limit: x; met by 03-c in /srv/my repo)")]),
    # the stage waits, the host's park is gone (cleared, or never written): the stage says it
    ("2027-01-15T10:00:00Z", [], [(None, "03-c", "2027-01-15T10:00:00Z",
                                   "03-c: waits for a usage limit to reset, until 2027-01-15T10:00:00Z")]),
    # a park another repo met is that repo's item, not this one's; a reset passed is no park
    (None, [dict(PARK, repo="/srv/other")], []),
    ("2020-01-01T00:00:00Z", [dict(PARK, until="2020-01-01T00:00:00Z")], []),
])
def test_a_parked_billing_route_needs_you_under_the_repo_that_met_it(stage_until, parks, shown):
    doc = {"stages": [_stage("03-c", "in_progress", parked_until=stage_until)]}
    items = needs.needs_you(REPO, doc, {}, now=NOW, parks=parks)
    assert [(i.route, i.stage_id, i.until, i.summary) for i in items] == shown
    for item in items:
        assert (item.kind, item.command) == ("parked", None) and item.note.startswith("nothing to do")
        assert item.look == "autometta show '/srv/my repo' 03-c"


def test_a_park_met_in_no_repo_a_view_lists_is_listed_on_its_own():
    other = dict(PARK, repo="/srv/gone", stage="01-x")
    assert [i.repo for i in needs.elsewhere([PARK, other], [REPO], NOW)] == ["/srv/gone"]
    assert needs.elsewhere([PARK, other], [REPO, "/srv/gone"], NOW) == []
    assert needs.elsewhere([dict(other, until="2020-01-01T00:00:00Z")], [], NOW) == []


def test_an_unsupervised_run_needs_you_with_autometta_stop():
    reason = "its runner is gone without an exit record; 2 process(es) of its run still running (51 52)"
    agents = [{"pid": 50, "role": "worker", "state": "unsupervised", "stage_id": "03-c", "reason": reason,
               "pids": [51, 52]},
              {"pid": 60, "role": "worker", "state": "unsupervised", "reason": reason, "pids": [61, True, "x"],
               "log_path": "/tmp/agent.log"}]
    staged, manual = needs.needs_you(REPO, {"stages": [_stage("03-c", "in_progress")]}, {}, agents, now=NOW)
    assert (staged.kind, staged.stage_id, staged.pid) == ("unsupervised", "03-c", 50)
    assert staged.fix() == ("autometta stop '/srv/my repo' 03-c  (or let the next tick stop it: the stage then "
                            "stalls runner_lost)")
    assert staged.summary == f"03-c: worker pid 50 unsupervised ({reason})"
    assert manual.command == "kill -TERM 61"  # no stage to stop: what is left of its run, by pid


def test_a_marker_sends_no_escape_to_the_terminal():
    doc = {"stages": [_stage("01-a", "stalled", stall_marker="worker_no_envelope: \x1b]0;owned\x07\x1b[2Jhi")]}
    text = "\n".join(needs.lines(needs.needs_you(REPO, doc, {}), "proj"))
    assert "\x1b" not in text and "\x07" not in text
    assert text.startswith("proj  01-a: stalled (worker_no_envelope: hi)")


def test_whatever_a_file_holds_the_function_answers():
    hostile = {"stages": [{"id": 7, "status": "stalled", "stall_marker": {"x": 1}, "worktree": ["a"]}, "junk", None],
               "parked_until": 12}
    (item,) = needs.needs_you(REPO, hostile, {"halted": False, "halt_reason": ["x"]}, [None, {"state": "stuck"}][:1])
    assert (item.kind, item.stage_id, item.marker) == ("stalled", "7", None)
    assert needs.needs_you(REPO, None, None) == [] and needs.needs_you(REPO, [], "x") == []  # type: ignore[arg-type]


# --------------------------------------------------------------------------- status: leads with it


@pytest.fixture
def waiting(setup):
    """Two stalled stages and a merge conflict, nothing in flight: on main, status said 'idle'."""
    repo, home, add = setup
    for sid in ("01-a", "02-b", "03-c", "04-d"):
        add(sid)
    edit_stages(repo, {
        "01-a": dict(status="stalled", stall_marker="worker_no_envelope", stopped_at="2027-01-15T08:00:00Z"),
        "02-b": dict(status="stalled", stall_marker="worker_timeout"),
        "03-c": lane(repo, "03-c", status="merge_conflict", stall_marker="merge_conflict: src/x.py"),
        "04-d": dict(status="completed"),
    })
    return repo, home


def test_status_leads_with_what_needs_you_not_idle(waiting, run):
    repo, _ = waiting
    res = run("status")
    assert res.code == 0, res.err
    lines = res.out.splitlines()
    row = next(line for line in lines if line.startswith("proj "))
    assert row.split()[1:5] == ["-", "needs", "you:", "3"]  # was: '-  idle  0/100  0/3'
    first = lines.index("NEEDS YOU (3)")
    assert first < lines.index(row)
    assert lines[first + 1].startswith("  proj  01-a: stalled (worker_no_envelope)  (since ")
    assert lines[first + 2] == f"      -> autometta requeue {repo} 01-a"
    assert f"  proj  02-b: stalled (worker_timeout)" in lines
    assert "  proj  03-c: merge_conflict: src/x.py" in lines
    assert (f"      -> autometta requeue --retry-merge {repo} 03-c  "
            f"(after you resolve it on autometta/03-c in {repo}/.autometta/worktrees/03-c and commit)") in lines


def test_status_json_is_one_shape_everywhere(waiting, run):
    repo, _ = waiting
    plain = run("status", "--json")
    watched = run("status", "--watch", "--once", "--json")
    assert plain.code == watched.code == 0, plain.err + watched.err
    one, two = json.loads(plain.out), json.loads(watched.out)
    assert set(one) == set(two) == {"checked_at", "home", "latest_log", "controller", "needs_you", "repos",
                                    "completed", "completed_limit", "schedule_warnings"}
    for doc in (one, two):
        doc.pop("checked_at")
        doc["controller"].pop("line")  # 'last tick 0s ago' may turn '1s ago' between the two
    assert one == two
    assert [(n["name"], n["kind"], n["stage_id"]) for n in one["needs_you"]] == [
        ("proj", "stalled", "01-a"), ("proj", "stalled", "02-b"), ("proj", "merge_conflict", "03-c")]
    assert one["repos"][0]["needs_you"][2]["command"] == f"autometta requeue --retry-merge {repo} 03-c"
    assert one["repos"][0]["status"] == "needs you: 3"
    scoped = json.loads(run("status", "--json", "--repo", str(repo)).out)
    assert set(scoped) == set(one) | {"checked_at"}


def test_the_attach_status_pane_leads_with_it(waiting):
    repo, _ = waiting
    res = run_process("status", "--watch", "--once", "--repo", str(repo), env={"COLUMNS": "200"})
    assert res.code == 0, res.err
    lines = res.out.splitlines()
    assert lines.index("NEEDS YOU (3)") < next(i for i, line in enumerate(lines) if line.startswith("repo "))
    assert "proj  02-b: stalled (worker_timeout)" in res.out and "idle" not in res.out


def test_report_and_ticker_read_the_same_items(waiting, run):
    repo, _ = waiting
    status = json.loads(run("status", "--json").out)["repos"][0]["needs_you"]
    ticker = json.loads(run("ticker", str(repo), "--json").out)["repos"][0]["needs_you"]
    report = json.loads(run("report", "--json").out)["repos"][0]["needs_you"]
    assert status == ticker == report
    text = run("report").out
    assert text.splitlines()[2] == "NEEDS YOU (3)"  # it leads
    assert f"      -> autometta requeue {repo} 02-b" in text


# --------------------------------------------------------------------------- a dashboard never stale


def blocked_worker(go: Path, sid: str) -> str:
    """A worker that says one line and then waits, silent, until ``go`` exists."""
    return f"echo 'reading the code'; while [ ! -e '{go}' ]; do sleep 0.05; done; " + writes(sid, f"{sid}.txt")


def await_log(log: Path, text: str) -> None:
    wait_for(lambda: text in (log.read_text() if log.exists() else ""))  # the agent's own output: no handle to wait on


def silence(log: Path, seconds: float = 900) -> None:
    """As if the agent's log last grew ``seconds`` ago."""
    then = time.time() - seconds
    os.utime(log, (then, then))


def page_data(home: Path) -> Dict[str, Any]:
    page = (home / "dashboard" / "index.html").read_text()
    return json.loads(re.search(r'<script type="application/json" id="autometta-data">(.*?)</script>', page,
                                re.S).group(1))


def test_a_stuck_agent_reaches_the_page_the_same_tick(setup, tmp_path):
    repo, home, add = setup
    go = tmp_path / "go"
    add("01-slow", blocked_worker(go, "01-slow"))
    try:
        tick_once(home)  # claimed, the worker started: the page shows it running
        log = repo / "state" / "logs" / "01-slow-worker.log"
        await_log(log, "reading the code")
        tick_once(home)
        (agent,) = page_data(home)["repos"][0]["agents"]
        assert agent["state"] == "running"
        silence(log)
        tick_once(home)  # state.yaml and budget.json unchanged; the heartbeat calls it stuck
        data = page_data(home)
        (agent,) = data["repos"][0]["agents"]
        assert agent["state"] == "stuck", agent  # on main: still 'running, log grew 0s ago'
        (item,) = data["needs_you"]
        assert (item["kind"], item["stage_id"], item["command"]) == ("stuck", "01-slow", f"kill -TERM -{agent['pid']}")
        html = (home / "dashboard" / "index.html").read_text()
        assert "01-slow: worker pid" in html and "stuck (log silent for" in html
        stage_page = next((home / "dashboard" / "stages").rglob("01-slow.html")).read_text()
        assert "Needs you (1)" in stage_page and "stuck (log silent for" in stage_page
    finally:
        go.touch()
        await_agents(repo)


def test_an_idle_tick_restamps_the_page_without_a_process(setup, monkeypatch):
    repo, home, add = setup
    add("01-hello")
    run_until_quiet(home, repo)
    hp = HomePaths(home)
    made, stamped = page_data(home), fresh.read_sidecar(hp)["as_of"]
    spawned: List[Any] = []
    real = subprocess.Popen.__init__

    def record(self, *args, **kw):
        spawned.append(args[0] if args else kw.get("args"))
        return real(self, *args, **kw)

    monkeypatch.setattr(subprocess.Popen, "__init__", record)
    assert dashboard.refresh(hp) is None  # nothing it shows changed: restamped, not rewritten
    monkeypatch.undo()
    assert spawned == []  # no git, no crontab, no process of any kind
    data = page_data(home)
    assert data["generated_at"] == made["generated_at"] and data["data_as_of"] >= made["data_as_of"]
    assert fresh.read_sidecar(hp)["as_of"] > stamped
    assert fresh.why_stale(hp, [], time.time()) is None


def test_a_park_reaching_its_reset_makes_the_page_stale(setup):
    repo, home, add = setup
    add("01-hello")
    paths = RepoPaths(repo)
    doc = state.load_state(paths)
    until = time.time() + 3600
    doc.update(parked_until=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(until)), park_reason="usage limit")
    state.save_state(paths, doc)
    hp = HomePaths(home)
    dashboard.generate(hp, settings.from_home(hp))
    subs = [type("S", (), {"repo_path": repo, "paths": paths})()]
    assert fresh.why_stale(hp, subs, time.time()) is None
    assert fresh.why_stale(hp, subs, until + 61) == "a park it shows has reached its reset"
    (hp.dashboard / ".fresh.json").unlink()
    assert fresh.why_stale(hp, subs, time.time()) == "the page has no freshness record"


def test_a_parked_route_or_a_run_booked_by_hand_makes_the_page_stale(setup):
    from autometta.books import ledger, parking

    repo, home, add = setup
    add("01-hello")
    hp = HomePaths(home)
    subs = [type("S", (), {"repo_path": repo, "paths": RepoPaths(repo)})()]

    def made_before():  # the page made from files older than it, a moment ago (mtimes have a resolution)
        long_ago = time.time() - 20
        for path in (hp.subscribers, hp.parks, RepoPaths(repo).state_yaml, RepoPaths(repo).budget):
            if path.exists():
                os.utime(path, (long_ago, long_ago))
        dashboard.generate(hp, settings.from_home(hp))
        fresh.write_sidecar(hp, dict(fresh.read_sidecar(hp), as_of=time.time() - 10))
        assert fresh.why_stale(hp, subs, time.time()) is None

    made_before()
    until = time.time() + 3600
    parking.park(hp, "claude subscription", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(until)), "limit",
                 repo=str(repo), stage="01-hello", now=time.time())
    assert fresh.why_stale(hp, subs, time.time()) == "the parked billing routes changed"
    made_before()  # the page shows the park, and is stale at its reset
    assert "claude subscription parked until" in hp.dashboard_page.read_text()
    assert fresh.why_stale(hp, subs, until + 61) == "a park it shows has reached its reset"
    ledger.book(hp, ledger.make_entry(key="k", repo=repo, stage_id="01-hello", role="worker", info={}, by="hand",
                                      started_at=None, ended_at=None, seconds=1))
    assert fresh.why_stale(hp, subs, time.time()) == "a run was booked in the spend ledger"


@pytest.mark.parametrize("line,seconds", [
    ("*/5 * * * * PATH=/bin autometta tick", 300), ("* * * * * autometta tick", 60),
    ("*/15 * * * * x", 900), ("0 * * * * x", 3600), ("0 */2 * * * x", 7200), ("0 0 * * * x", 86400),
    ("0,20,40 * * * * x", 1200), ("0,10 * * * * x", 3000), ("@hourly x", 3600), ("@reboot x", None),
    ("*/5 * * * 1-5 x", None), ("5-10 * * * * x", None), ("", None),
])
def test_the_tick_interval_is_read_from_a_crontab_line(line, seconds):
    assert interval.cron_seconds(line) == seconds


def test_the_tick_interval_is_read_from_a_systemd_timer():
    assert interval.systemd_seconds("[Timer]\nOnActiveSec=1min\nOnUnitActiveSec=5min\n") == 300
    assert interval.systemd_seconds("OnUnitActiveSec=1h 30min") == 5400
    assert interval.systemd_seconds("OnUnitActiveSec=90") == 90
    assert interval.systemd_seconds("OnUnitActiveSec=5fortnights") is None
    assert interval.systemd_seconds("[Timer]\n") is None


def test_the_interval_setting_wins_and_the_default_is_five_minutes(monkeypatch):
    assert fresh.interval(settings.load({}, {"AUTOMETTA_TICK_INTERVAL": "120"})) == (
        120, "observe.tick_interval_seconds")
    monkeypatch.setattr(interval, "tick_interval", lambda: None)
    assert fresh.interval(settings.load({}, {})) == (300, "the default (no installed schedule says)")
    monkeypatch.setattr(interval, "tick_interval", lambda: (600, "the autometta block in your crontab"))
    assert fresh.interval(settings.load({}, {}))[0] == 600


def test_an_old_page_says_so_in_red_when_written(setup, monkeypatch):
    repo, home, add = setup
    add("01-hello")
    monkeypatch.setenv("AUTOMETTA_TICK_INTERVAL", "60")
    hp = HomePaths(home)
    dashboard.generate(hp, settings.from_home(hp), now=time.time() - 1200)  # its data read 20 minutes ago
    html = hp.dashboard_page.read_text()
    assert re.search(r'<span id="freshness" class="stale"[^>]*data-limit="120"', html)
    assert "STALE: older than two tick intervals (1m each, from observe.tick_interval_seconds)" in html
    dashboard.generate(hp, settings.from_home(hp))
    assert '<span id="freshness" class="fresh"' in hp.dashboard_page.read_text()


# --------------------------------------------------------------------------- on screen: tmux and Chromium


@pytest.fixture
def troubled(setup, tmp_path, monkeypatch):
    """Real ticks: 02-b stopped on a merge conflict, 03-c stalled, 04-d's worker stuck (its log silent)."""
    repo, home, add = setup
    monkeypatch.setenv("AUTOMETTA_TICK_INTERVAL", "300")
    parallel(repo, 3)
    add("01-a", writes("01-a", "shared.txt", "from a"))
    add("02-b", writes("02-b", "shared.txt", "from b"))
    add("03-c", "echo 'giving up'; exit 3")
    run_until_quiet(home, repo)
    assert (stage(repo, "02-b")["status"], stage(repo, "03-c")["status"]) == ("merge_conflict", "stalled")
    go = tmp_path / "go"
    add("04-d", blocked_worker(go, "04-d"))
    try:
        tick_once(home)
        log = repo / "state" / "logs" / "04-d-worker.log"
        await_log(log, "reading the code")
        silence(log)
        tick_once(home)  # the heartbeat finds it stuck and tells; the page follows
        yield repo, home
    finally:
        go.touch()
        await_agents(repo)


@needs_tmux
def test_the_attach_panes_show_what_needs_you(troubled, socket):  # noqa: F811 - socket is a fixture
    repo, home = troubled
    res = run_process("attach", str(repo), "--ensure", env={"COLUMNS": "160"})
    assert res.code == 0, res.err
    panes = t(socket, "list-panes", "-t", "=autometta-proj:", "-F", "#{pane_id}").split()
    assert len(panes) == 3

    def pane(n: int) -> Callable[[], str]:
        return lambda: t(socket, "capture-pane", "-p", "-J", "-t", panes[n])

    status = eventually(pane(0), "NEEDS YOU (3)", "02-b: merge_conflict: shared.txt", "03-c: stalled",
                        "04-d: worker pid", "stuck (log silent for", "-> autometta requeue --retry-merge")
    assert status.index("NEEDS YOU (3)") < status.index("repo ")  # it leads the pane
    assert "idle" not in status
    eventually(pane(2), "NEEDS YOU (3)", "02-b: merge_conflict: shared.txt", "03-c: stalled", "04-d: worker pid",
               "stuck (log silent for")
    for n, name in ((0, "status"), (2, "ticker")):
        print(f"\n--- the {name} pane ---\n{pane(n)()}")


@needs_chromium
def test_the_dashboard_and_a_stage_page_show_what_needs_you(troubled, tmp_path, capsys):
    repo, home = troubled
    index = home / "dashboard" / "index.html"

    def dom(url: str, profile: str) -> str:
        return chromium_dom(url, tmp_path / profile)

    def shot(url: str, name: str, profile: str) -> Path:
        return screenshot(url, tmp_path / name, tmp_path / profile)

    page = dom(index.as_uri(), "p1")
    top = page[:page.index("<main>")]  # the header leads with it, before any repo's card
    for needle in ("Needs you (3)", "02-b: merge_conflict: shared.txt", "03-c: stalled", "04-d: worker pid",
                   "stuck (log silent for",
                   f"autometta requeue --retry-merge {repo} 02-b", f"autometta requeue {repo} 03-c"):
        assert needle in top, needle
    assert re.search(r'<span id="freshness" class="fresh"[^>]*>data as of [^<]*\(<span id="generated-ago"[^>]*>'
                     r'\d+s ago</span>\)', page)  # its script ran
    link = re.search(r'<a href="(stages/[^"]+/04-d\.html)">the stage</a>', page)
    assert link, "the stuck agent's item links to its stage's page"
    stage_url = (home / "dashboard" / link.group(1)).as_uri()
    stuck = dom(stage_url, "p2")
    for needle in ("Needs you (1)", "04-d: worker pid", "stuck (log silent for", "kill -TERM -"):
        assert needle in stuck, needle
    conflict = (home / "dashboard" / link.group(1).replace("04-d", "02-b")).read_text()  # as written
    assert "02-b: merge_conflict: shared.txt" in conflict and "--retry-merge" in conflict
    shots = [shot(index.as_uri(), "dashboard-needs-you.png", "p4"), shot(stage_url, "stage-04-d.png", "p5")]

    # a page left open (or opened from file:// after the tick stopped) turns red by its own script
    old = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
    left = tmp_path / "left-open.html"
    left.write_text(re.sub(r'data-at="[^"]*"', f'data-at="{old}"', index.read_text()))
    aged = dom(left.as_uri(), "p6")
    assert re.search(r'<span id="freshness" class="stale"', aged)
    assert "STALE: older than two tick intervals (5m each, from observe.tick_interval_seconds)" in aged
    assert re.search(r'id="generated-ago"[^>]*>1h ago<', aged)
    shots.append(shot(left.as_uri(), "dashboard-stale.png", "p7"))
    with capsys.disabled():
        print("\nscreenshots: " + ", ".join(str(p) for p in shots))

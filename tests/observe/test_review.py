"""``autometta show`` and the dashboard's stage pages: the review of one stage.

The timeline is pure and tested by table (the transcript readers are in
tests/families/test_transcript.py); the rest goes through real ticks of script-family stages (the ``setup`` fixture),
real git and, when it is installed, headless Chromium. The real claude and
codex CLIs are in tests/e2e/test_show_real_clis.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from autometta import yamlsub
from autometta.observe import review
from tests.testing.ticks import PASS_WORKER, await_agents, read_state, run_until_quiet, stage, tick_once
from tests.testing.chromium import dom as chromium_dom, needs_chromium, screenshot
from tests.testing.waits import wait_for

#: Key-shaped (redact.SHAPES anthropic_key), built so no scanner flags this file.
KEY = "sk-ant-" + "api03-" + "SHOWtestKEY0123456789-abcd"


# -- the timeline --------------------------------------------------------------------

def _run(role, start, end=None, **kw):
    return {"role": role, "started_at": start, "ended_at": end, **kw}


TIMELINE_CASES = [
    ("a stage landed in one second: pipeline order",
     {"started_at": "2026-01-01T00:00:00Z", "completed_at": "2026-01-01T00:00:01Z", "commit": "abcdef1234567"},
     [_run("verifier", "2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z", exit_code=0, seconds=0.4),
      _run("worker", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", exit_code=0, seconds=0.2)],
     {"overall": "PASS", "written_at": "2026-01-01T00:00:01Z"}, [],
     [("claimed", None, ""), ("worker spawned", 0, ""), ("worker exited", 0, "exit 0, ran 0.2s"),
      ("verifier spawned", 0, ""), ("verifier exited", 1, "exit 0, ran 0.4s"), ("verified", 0, "PASS"),
      ("landed", 0, "as abcdef123456")]),
    ("a worker stopped at its budget, the stall journaled, an older event left out",
     {"started_at": "2026-01-01T00:00:00Z"},
     [_run("worker", "2026-01-01T00:00:05Z", "2026-01-01T00:10:05Z", exit_code=None, timed_out=True, seconds=600)],
     {}, [{"at": "2025-12-31T00:00:00Z", "kind": "stage_failed", "summary": "old"},
          {"at": "2026-01-01T00:11:00Z", "kind": "stage_stalled", "summary": "stalled"}],
     [("claimed", None, ""), ("worker spawned", 5, ""), ("worker exited", 600, "stopped at its budget, ran 10m00s"),
      ("stage_stalled", 55, "stalled")]),
    ("a record older than the claim is marked",
     {"started_at": "2026-01-02T00:00:00Z"},
     [_run("verifier", "2026-01-01T00:00:00Z", "2026-01-01T00:00:09Z", exit_code=1, seconds=9)], {}, [],
     [("verifier spawned", None, "an earlier run"), ("verifier exited", 9, "exit 1, ran 9s (an earlier run)"),
      ("claimed", 86391, "")]),
    ("nothing known", {}, [], {}, [], []),
]


@pytest.mark.parametrize("what,stage_doc,runs,verdict,journal,expected", TIMELINE_CASES,
                         ids=[c[0] for c in TIMELINE_CASES])
def test_timeline(what, stage_doc, runs, verdict, journal, expected):
    got = review.timeline(stage_doc, runs, verdict, journal)
    assert [(e["event"], e["after_seconds"], e["detail"]) for e in got] == expected


# -- show, through real ticks --------------------------------------------------------

def test_show_reviews_a_landed_stage(setup, run):
    repo, home, add = setup
    add("01-hello", acceptance="test -s hello.txt && echo accepted")
    run_until_quiet(home, repo)
    sha = stage(repo, "01-hello")["commit"]
    res = run("show", str(repo), "01-hello", "--json")
    assert res.code == 0, res.err
    doc = json.loads(res.out)
    assert doc["problems"] == []
    assert (doc["status"], doc["card"]["title"], doc["card"]["criteria"]) == ("completed", "Say hello",
                                                                           ["hello.txt says hello."])
    assert doc["verdict"]["criteria"] == [{"id": 1, "criterion": "hello.txt says hello.", "name": "hello",
                                           "verdict": "PASS", "evidence": "hello.txt:1"}]
    (acceptance,) = doc["commands"]
    assert (acceptance["role"], acceptance["command"], acceptance["exit_code"], acceptance["tail"]) == (
        "acceptance", "test -s hello.txt && echo accepted", 0, ["accepted"])
    assert (doc["change"]["kind"], doc["change"]["commit"]) == ("commit", sha)
    assert "hello.txt | 1 +" in doc["change"]["diffstat"] and "+hello" in doc["change"]["diff"]
    assert doc["envelope"] == {"status": "pass", "notes": "done", "deliverables": ["hello.txt"]}
    assert [a["exit_code"] for a in doc["agents"]] == [0, 0]
    assert [e["event"] for e in doc["timeline"]] == [
        "claimed", "worker spawned", "worker exited", "acceptance spawned", "acceptance exited",
        "verifier spawned", "verifier exited", "verified", "landed"]

    text = run("show", str(repo), "01-hello").out
    for needle in ("01-hello  completed", "Say hello", "1  PASS  hello.txt says hello.", "evidence: hello.txt:1",
                   "ACCEPTANCE  `test -s hello.txt && echo accepted`  exit 0", "  | accepted",
                   f"CHANGE  commit {sha[:12]}  01-hello: Say hello", "hello.txt | 1 +", "TIMELINE", "landed",
                   "DIFF", "+hello"):
        assert needle in text, needle


def test_show_lists_a_script_agents_usage_and_output(setup, run):
    repo, home, add = setup
    usage = "echo 'autometta-usage: {\"input_tokens\": 1200, \"output_tokens\": 80, \"cost_usd\": 0.25}'"
    add("01-talk", f"echo working on it; {usage}; " + "printf 'hello\\n' > hello.txt && printf '%s' "
        "'{\"stage_id\":\"01-talk\",\"status\":\"pass\",\"deliverables\":[\"hello.txt\"],\"notes\":\"done\"}' "
        "> \"$AUTOMETTA_HANDOFF\"; echo all done")
    run_until_quiet(home, repo)
    doc = json.loads(run("show", str(repo), "01-talk", "--json").out)
    worker = doc["agents"][0]
    assert [s["text"] for s in worker["steps"]][0] == "working on it"
    assert worker["final_message"] == "all done"
    assert worker["booked"] == {"tokens": 1280, "cost_usd": 0.25, "seconds": 0}
    assert (worker["usage"]["input"], worker["usage"]["output"]) == (1200, 80)
    text = run("show", str(repo), "01-talk").out
    assert "1,280 tokens  (in 1,200, out 80)  $0.2500" in text and "final: all done" in text


def test_a_stage_in_flight_shows_its_worker_running_and_its_work_so_far(setup, run, tmp_path):
    repo, home, add = setup
    gate = tmp_path / "gate"
    os.mkfifo(gate)  # the worker waits on it: it runs until the test lets it go
    add("01-slow", f"echo started; printf 'draft\\n' > draft.txt; read go < '{gate}'; "
        + PASS_WORKER.replace("{id}", "01-slow"))
    tick_once(home)  # claimed, worker launched
    log = repo / "state" / "logs" / "01-slow-worker.log"
    wait_for(lambda: log.exists() and "started" in log.read_text())  # its first line, as the runner writes it
    try:
        doc = json.loads(run("show", str(repo), "01-slow", "--json").out)
        worker = doc["agents"][0]
        assert worker.get("running") and worker["steps"][0]["text"] == "started"
        assert doc["status"] == "in_progress" and doc["change"]["kind"] in ("tree", "worktree")
        assert [e["event"] for e in doc["timeline"]][:2] == ["claimed", "worker spawned"]
        assert "running since" in run("show", str(repo), "01-slow").out
    finally:
        try:
            fd = os.open(gate, os.O_WRONLY | os.O_NONBLOCK)  # ENXIO: nobody waits (the worker is gone)
            os.write(fd, b"go\n")
            os.close(fd)
        except OSError:
            pass
        await_agents(repo)


def test_a_stopped_stage_shows_what_it_left_masked(setup, run, home_dir):
    repo, home, add = setup
    leak = (f"printf 'token={KEY}\\n' > leak.txt; echo 'my key is {KEY}'; "
            f"printf 'wrote {KEY} myself\\n' >> \"$AUTOMETTA_REPO/state/logs/01-leak-worker.log\"; exit 3")
    add("01-leak", leak)
    run_until_quiet(home, repo)
    s = stage(repo, "01-leak")  # it wrote into its own log: nothing read from that log counts
    assert (s["status"], s["stall_marker"]) == (
        "failed", "agent_log_forged: worker: something other than its runner wrote into its log"), s
    res = run("show", str(repo), "01-leak", "--json")
    assert res.code == 0, res.err
    assert KEY not in res.out
    doc = json.loads(res.out)
    assert doc["change"]["kind"] in ("tree", "worktree")  # the checkout, or its worktree once every stage has one
    assert "leak.txt" in doc["change"]["diffstat"] and "+token=****abcd" in doc["change"]["diff"]
    assert doc["agents"][0]["exit_code"] == 3 and doc["verdict"]["missing"]
    assert "stage_failed" in [e["event"] for e in doc["timeline"]], doc["timeline"]
    text = run("show", str(repo), "01-leak").out
    assert KEY not in text and "****abcd" in text and "not landed" in text
    assert run("dashboard").code == 0
    for page in (home_dir / "dashboard").rglob("*.html"):
        assert KEY not in page.read_text(), page


def test_a_lane_that_did_not_land_shows_its_branch_and_worktree_against_the_base(setup, run):
    from tests.testing.lanes import parallel, writes

    repo, home, add = setup
    parallel(repo, 2)
    add("01-a", writes("01-a", "shared.txt", "from a"))
    add("02-b", writes("02-b", "shared.txt", "from b"))
    run_until_quiet(home, repo, limit=20)
    assert stage(repo, "02-b")["status"] == "merge_conflict"
    kept = stage(repo, "02-b")["worktree"]
    (Path(kept) / "notes.txt").write_text("left by hand\n")  # uncommitted, in the kept worktree
    doc = json.loads(run("show", str(repo), "02-b", "--json").out)
    change = doc["change"]
    assert (change["kind"], change["branch"], change["worktree"]) == ("worktree", "autometta/02-b", kept)
    assert "shared.txt" in change["diffstat"] and "notes.txt" in change["diffstat"]
    assert "+from b" in change["diff"] and "+left by hand" in change["diff"] and "+from a" not in change["diff"]
    assert doc["stall_marker"] == "merge_conflict: shared.txt"
    assert doc["agents"][0]["steps"] == [] or all(s["kind"] == "output" for s in doc["agents"][0]["steps"])
    subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", kept], check=True)
    change = json.loads(run("show", str(repo), "02-b", "--json").out)["change"]
    assert (change["kind"], change["branch"]) == ("branch", "autometta/02-b")
    assert "+from b" in change["diff"] and "notes.txt" not in change["diffstat"]
    assert "merge_conflict" in run("show", str(repo), "02-b").out


def test_missing_and_corrupt_pieces_are_shown_as_missing(setup, run, tmp_path):
    repo, home, add = setup
    card = add("01-hello")
    run_until_quiet(home, repo)
    logs = repo / "state" / "logs"
    (repo / "state" / "verifiers" / "01-hello.json").write_text('{"overall": "PASS", "criteria": "all good"')
    (logs / "01-hello-worker.exit.json").write_text("not json")
    (logs / "01-hello-verifier.log").write_bytes(b"\xff\xfe\x00binary\x00" * 100)
    os.unlink(card)
    doc = read_state(repo)
    doc["stages"][0]["commit"] = "0" * 40  # not in the repo
    (repo / "state" / "state.yaml").write_text(yamlsub.dumps(doc))
    res = run("show", str(repo), "01-hello", "--json")
    assert res.code == 0, res.err
    out = json.loads(res.out)
    problems = "\n".join(out["problems"])
    for needle in ("no card 01-hello.md", "01-hello.json: not (yet) a complete JSON document",
                   f"commit {'0' * 12} is not in"):
        assert needle in problems, (needle, problems)
    assert out["agents"][0]["error"] == "corrupt exit record"
    text = run("show", str(repo), "01-hello").out
    assert "MISSING" in text and "TIMELINE" in text

    (logs / "01-hello-worker.log").unlink()
    (logs / "01-hello-worker.log").mkdir()  # a folder where the log should be
    (repo / "state" / "state.yaml").write_text("stages: [unclosed\n")
    res = run("show", str(repo), "01-hello")
    assert res.code == 1 and "Traceback" not in res.err
    assert "state.yaml: cannot be read" in res.out and "MISSING" in res.out
    res = run("show", str(repo), "01-hello", "--json")
    assert res.code == 1 and json.loads(res.out)["stage_id"] == "01-hello"


def test_what_an_agent_did_to_its_log_cannot_reach_the_terminal_or_another_file(setup, run, tmp_path):
    repo, home, add = setup
    add("01-hello", "printf '\\033]0;owned\\007\\033[2Jclear\\n'; " + PASS_WORKER.replace("{id}", "01-hello"))
    run_until_quiet(home, repo)
    logs = repo / "state" / "logs"
    assert "\x1b" in (logs / "01-hello-worker.log").read_text()
    res = run("show", str(repo), "01-hello")
    assert res.code == 0 and "\x1b" not in res.out and "\x07" not in res.out and "clear" in res.out
    outside = tmp_path / "private.txt"
    outside.write_text("PRIVATE-LINE\n")
    (logs / "01-hello-worker.log").unlink()
    (logs / "01-hello-worker.log").symlink_to(outside)  # the agent swapped its log for a link
    (logs / "01-hello-verifier.log").unlink()
    os.mkfifo(logs / "01-hello-verifier.log")  # and a pipe nobody writes: reading it would wait forever
    res = run("show", str(repo), "01-hello", "--json")
    assert res.code == 0 and "PRIVATE-LINE" not in res.out
    problems = "\n".join(json.loads(res.out)["problems"])
    assert "01-hello-worker.log: not read (a symlink)" in problems
    assert "01-hello-verifier.log: not a regular file; not read" in problems


def test_show_refuses_a_stage_it_knows_nothing_of(setup, run):
    repo, home, add = setup
    res = run("show", str(repo), "07-nothing")
    assert res.code == 1 and "no stage 07-nothing" in res.err and res.out == ""
    res = run("show", str(repo), "../../etc")
    assert res.code == 1 and "must look like" in res.err


# -- the dashboard's stage pages -----------------------------------------------------

GIT_LOGGER = """#!/bin/sh
printf '%s\\n' "$*" >> "{log}"
exec "{git}" "$@"
"""


def test_stage_pages_are_linked_and_rebuilt_only_when_their_stage_changes(setup, run, tmp_path, monkeypatch):
    repo, home, add = setup
    add("01-hello")
    add("02-fails", "echo trying; exit 3")
    run_until_quiet(home, repo)
    index = (home / "dashboard" / "index.html").read_text()  # written by the ticks
    links = dict((m.group(2), m.group(1)) for m in re.finditer(r'<a href="(stages/[^"]+/(\d\d-[a-z-]+)\.html)"', index))
    assert set(links) == {"01-hello", "02-fails"}
    pages = {sid: home / "dashboard" / link for sid, link in links.items()}
    assert "hello.txt says hello." in pages["01-hello"].read_text()
    assert "02-fails" in pages["02-fails"].read_text() and "exit 3" in pages["02-fails"].read_text()
    stamps = {sid: p.stat().st_mtime_ns for sid, p in pages.items()}

    bin_dir, calls = tmp_path / "bin", tmp_path / "git-calls.log"
    bin_dir.mkdir()
    (bin_dir / "git").write_text(GIT_LOGGER.format(log=calls, git=shutil.which("git")))
    (bin_dir / "git").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    tick_once(home)  # idle: no page written, no git run
    assert not calls.exists() or calls.read_text() == ""
    assert {sid: p.stat().st_mtime_ns for sid, p in pages.items()} == stamps

    add("03-more")
    run_until_quiet(home, repo)  # transitions: the new stage gets its page, the others are left alone
    assert {sid: pages[sid].stat().st_mtime_ns for sid in stamps} == stamps
    assert stage(repo, "01-hello")["commit"][:12] not in calls.read_text()  # its commit never shown again
    assert "03-more" in (home / "dashboard" / "index.html").read_text()
    (more,) = [p for p in (home / "dashboard" / "stages").rglob("03-more.html")]
    assert "landed" in more.read_text()  # rebuilt as it moved: claimed, ..., landed


def test_pages_left_out_of_a_ticks_budget_are_built_later_and_unlinked_until_then(setup, run):
    from autometta.observe import dashboard, settings
    from autometta.paths import HomePaths

    repo, home, add = setup
    add("01-hello")
    run_until_quiet(home, repo)
    shutil.rmtree(home / "dashboard")  # a home from before stage pages: none exist yet
    hp = HomePaths(home)
    dashboard.generate(hp, settings.from_home(hp), page_seconds=-1)  # no time left for pages
    assert "stages/" not in (home / "dashboard" / "index.html").read_text()
    assert not list((home / "dashboard").rglob("01-hello.html"))
    dashboard.generate(hp, settings.from_home(hp), page_seconds=60)
    assert 'href="stages/' in (home / "dashboard" / "index.html").read_text()
    assert list((home / "dashboard").rglob("01-hello.html"))


@needs_chromium
def test_the_stage_page_renders_in_headless_chromium(setup, run, tmp_path, capsys):
    repo, home, add = setup
    add("01-hello", acceptance="test -s hello.txt && echo accepted")
    run_until_quiet(home, repo)
    assert run("dashboard").code == 0

    def dom(url: str, profile: str) -> str:
        return chromium_dom(url, tmp_path / profile)

    index = dom((home / "dashboard" / "index.html").as_uri(), "p1")
    link = re.search(r'<a href="(stages/[^"]+/01-hello\.html)"', index)
    assert link, "the stage row links to its page"
    page = home / "dashboard" / link.group(1)
    html = dom(page.as_uri(), "p2")
    sha = stage(repo, "01-hello")["commit"]
    for needle in ("01-hello", "Say hello", "hello.txt says hello.", "verdict PASS", "hello.txt:1",
                   "test -s hello.txt &amp;&amp; echo accepted", "accepted", sha[:12], "+hello", "landed",
                   'href="../../index.html"'):
        assert needle in html, needle
    shot = screenshot(page.as_uri(), tmp_path / "stage-page.png", tmp_path / "p3", size="1100,1600")
    with capsys.disabled():
        print(f"\nstage page screenshot: {shot}")

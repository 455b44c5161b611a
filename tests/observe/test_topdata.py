"""What autometta top reads (real ticks, real git), how cheaply, and how it runs a command."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autometta import files
from autometta.observe import activity, settings, topapp, topdata, topscreen as ts
from autometta.paths import HomePaths, RepoPaths
from tests.testing import top_repos
from tests.testing.repos import make_repo
from tests.testing.ticks import stage


def source(home: Path, scope=None) -> topdata.Source:
    hp = HomePaths(home)
    return topdata.Source(hp, settings.from_home(hp), scope, schedule=lambda: "cron")


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    """(home, repos): stalled, halted and an idle repo (its one stage landed), made once by real ticks for the
    tests that only read them."""
    tmp = tmp_path_factory.mktemp("three")
    home = tmp / "controller-home"
    with pytest.MonkeyPatch.context() as mp:
        for key, value in top_repos.isolated_env(tmp).items():
            mp.setenv(key, value)
        repos = top_repos.build(tmp, home, ["stalled", "halted"])
        idle = make_repo(tmp / "quiet")
        top_repos.subscribe(home, idle)
        top_repos.add(idle, "01-hello")
        top_repos.tick_until_quiet(home, [idle])
    assert stage(idle, "01-hello")["status"] == "completed"
    repos["idle"] = idle
    return home, repos


@pytest.fixture
def stalled(tmp_path, home_dir):
    """A stalled repo of this test's own, to change."""
    return top_repos.build(tmp_path, home_dir, ["stalled"])["stalled"]


def test_the_view_puts_what_needs_a_person_first(three):
    home_dir, repos = three
    src = source(home_dir)
    v = src.view()
    assert v["controller"]["schedule"] == "cron" and v["controller"]["last_tick"] > time.time() - 60
    names = [(r.name, r.stage_id) for r in ts.rows(v, 80)]
    assert names == [("halted", None), ("halted", "01-waits"), ("stalled", None), ("stalled", "01-quits"),
                     ("quiet", None), ("quiet", "01-hello")]
    halted = next(r for r in v["repos"] if r["name"] == "halted")
    assert [n["kind"] for n in halted["needs"]] == ["halted"]
    assert halted["needs"][0]["command"] == f"autometta tick --reset-halt --repo {repos['halted']}"
    stalled = next(r for r in v["repos"] if r["name"] == "stalled")
    (item,) = stalled["needs"]
    assert (item["kind"], item["stage_id"], item["marker"]) == ("stalled", "01-quits",
                                                                "worker_envelope_missing_after_exit")
    assert item["command"] == f"autometta requeue {repos['stalled']} 01-quits"


def test_a_refresh_of_idle_and_stopped_repos_runs_no_process_takes_no_lock_and_parses_nothing_again(
        three, monkeypatch):
    home_dir, repos = three
    src = source(home_dir)
    first = src.view()
    for r in ts.rows(first, 80):
        for tab in ("activity", "verdict", "log"):
            src.detail(r.repo, r.stage_id, tab)
    calls = []

    def no_process(*args, **kw):
        calls.append(args)
        raise AssertionError(f"a refresh started a process: {args}")

    def no_parse(*args, **kw):
        raise AssertionError("a file that did not change was parsed again")

    monkeypatch.setattr(subprocess.Popen, "__init__", no_process)
    monkeypatch.setattr(files, "locked", lambda *a, **kw: (_ for _ in ()).throw(AssertionError("locked")))
    monkeypatch.setattr("autometta.books.state.parse_state", no_parse)
    monkeypatch.setattr("autometta.books.budget.parse_budget", no_parse)
    paths = RepoPaths(repos["stalled"])
    fd = os.open(str(paths.lock), os.O_RDWR | os.O_CREAT)
    import fcntl

    fcntl.flock(fd, fcntl.LOCK_EX)  # a tick holds the repo: top still reads it
    try:
        for _ in range(3):
            again = src.view()
            for r in ts.rows(again, 80):
                for tab in ("activity", "verdict", "log"):
                    assert "error" not in src.detail(r.repo, r.stage_id, tab)
    finally:
        os.close(fd)
    assert calls == []
    assert [r["needs"] for r in again["repos"]] == [r["needs"] for r in first["repos"]]


def test_a_changed_state_is_read_again(stalled, home_dir, run):
    src = source(home_dir)
    assert [n["kind"] for n in src.view()["repos"][0]["needs"]] == ["stalled"]
    assert run("requeue", str(stalled), "01-quits").code == 0
    (repo,) = src.view()["repos"]
    assert repo["needs"] == [] and repo["stages"][0]["status"] == "pending"


def test_the_diff_tab_runs_git_only_when_shown(three, monkeypatch):
    home_dir, repos = three
    src = source(home_dir)
    started = []
    real = subprocess.Popen.__init__

    def counting(self, args, *a, **kw):
        started.append(list(args))
        return real(self, args, *a, **kw)

    src.view()
    monkeypatch.setattr(subprocess.Popen, "__init__", counting)
    src.view()
    assert started == []
    d = src.detail(str(repos["idle"]), "01-hello", "diff")
    assert d["kind"] == "commit" and "+hello" in d["diff"] and d["head"].startswith("commit ")
    assert started and all(os.path.basename(args[0]) == "git" for args in started)
    count = len(started)
    src.detail(str(repos["idle"]), "01-hello", "diff")  # shown again within DIFF_SECONDS: kept
    assert len(started) == count


def test_the_verdict_tab_has_the_needs_and_the_verdict(three):
    home_dir, repos = three
    src = source(home_dir)
    src.view()
    d = src.detail(str(repos["stalled"]), "01-quits", "verdict")
    assert [n["kind"] for n in d["needs"]] == ["stalled"] and d["status"] == "stalled"
    assert d["look"] == f"autometta show {repos['stalled']} 01-quits"
    d = src.detail(str(repos["idle"]), "01-hello", "verdict")
    assert d["overall"] == "PASS" and d["criteria"][0]["evidence"] == "hello.txt:1"
    d = src.detail(str(repos["halted"]), None, "verdict")
    assert [n["kind"] for n in d["needs"]] == ["halted"]


def test_the_log_tab_has_the_repo_s_lines_only(three):
    home_dir, repos = three
    src = source(home_dir)
    src.view()
    d = src.detail(str(repos["stalled"]), "01-quits", "log")
    assert any("worker exited without a handoff envelope" in line for line in d["lines"])
    assert not any("01-hello" in line for line in d["lines"])  # another repo's lines


def test_the_log_tab_follows_the_repo_s_lines(stalled, home_dir, run):
    src = source(home_dir)
    src.view()
    d = src.detail(str(stalled), "01-quits", "log")
    run("requeue", str(stalled), "01-quits")
    run("tick", "--repo", str(stalled))
    later = src.detail(str(stalled), "01-quits", "log")
    assert len(later["lines"]) > len(d["lines"]) and any("claimed 01-quits" in line for line in later["lines"][-5:])


def test_a_repo_given_by_path_is_the_only_one_shown(three):
    home_dir, repos = three
    src = source(home_dir, scope=str(repos["halted"]))
    v = src.view()
    assert [r["name"] for r in v["repos"]] == ["halted"] and v["scope"] == os.path.realpath(repos["halted"])


def test_spend_today_is_the_ledger_s_as_report_sums_it_read_again_only_when_it_changes(stalled, home_dir,
                                                                                      monkeypatch):
    from types import SimpleNamespace

    from autometta.books import ledger
    from autometta.timeutil import now_iso

    hp = HomePaths(home_dir)
    src = source(home_dir)
    first = src.view()["spend"]
    total = ledger.summarise(ledger.entries(hp, since=topdata._midnight(time.time())))["total"]
    assert (first["tokens"], first["runs"]) == (total["tokens"], total["runs"]) and first["runs"] >= 1  # the worker
    read = []
    real = ledger.entries
    monkeypatch.setattr(ledger, "entries", lambda *a, **kw: read.append(a) or real(*a, **kw))
    src.view()
    assert read == []  # nothing booked since: not read again
    entry = ledger.make_entry(key="01-quits/worker/1/by-hand", repo=stalled, stage_id="01-quits", role="worker",
                              info={"family": "claude"}, by="hand", started_at=now_iso(), ended_at=now_iso(),
                              seconds=3, usage=SimpleNamespace(total_tokens=1234, cost_usd=0.5))
    assert ledger.book(hp, entry)
    later = src.view()["spend"]
    assert read and (later["tokens"], later["runs"]) == (first["tokens"] + 1234, first["runs"] + 1)


@pytest.mark.parametrize("lines,expected", [
    (['{"type":"system","model":"claude-x"}',
      '{"type":"assistant","message":{"content":[{"type":"tool_use","name":"Read","input":{"file_path":"/r/a.py"}}]}}',
      '{"type":"user","message":{"content":[]}}', '{"type":"user","message":{"content":[]}}',
      '{"type":"assistant","message":{"content":[{"type":"text","text":"done"}]}}'],
     ["started (claude-x)", "Read a.py", "tool result", "says: done"]),
    (['{"type":"thread.started"}', '{"type":"item.completed","item":{"type":"command_execution",'
                                   '"command":"make test","exit_code":0}}', "plain words", "\x1b[31mred\x1b[0m"],
     ["started", "$ make test", "plain words", "red"]),
    ([], []),
])
def test_recent_activity_words_each_event_as_the_ticker_does(tmp_path, lines, expected):
    log = tmp_path / "w.log"
    log.write_text("".join(line + "\n" for line in lines))
    assert activity.recent(log) == expected
    assert activity.recent(tmp_path / "missing.log") == []


def test_recent_activity_of_a_deeply_nested_line_is_that_line_cut_short(tmp_path):
    log = tmp_path / "w.log"
    log.write_text('{"a":' * 20000 + "1" + "}" * 20000 + "\n" + '{"type":"assistant","message":{"content":['
                   '{"type":"text","text":"still here"}]}}\n')
    (deep, last) = activity.recent(log)
    assert deep.startswith('{"a":{"a":') and len(deep) <= 400 and last == "says: still here"


def test_recent_activity_of_a_large_log_skips_the_cut_line(tmp_path):
    log = tmp_path / "w.log"
    log.write_text("x" * (activity.RECENT_BYTES + 10) + "\nlast line\n")
    assert activity.recent(log) == ["last line"]


@pytest.mark.parametrize("text,code,expected", [
    ("requeued: 01-a (was stalled; 0 old file(s) archived)\n", 0, "requeued: 01-a (was stalled; 0 old file(s) archived)"),
    ("2026-12-04T19:04:37Z [/r] claimed 01-a\n2026-12-04T19:04:38Z [/r] worker pid 4 started\n", 0,
     "[r] worker pid 4 started  (+1 more line)"),
    ("autometta requeue: stage 01-a is completed\n", 1, "autometta requeue: stage 01-a is completed  (exit 1)"),
    ("", 0, "done (exit 0, nothing printed)"),
    ("\n", 2, "failed (exit 2, nothing printed)"),
])
def test_one_line(text, code, expected):
    assert topapp.one_line(text, code) == expected


def test_a_command_runs_here_through_its_own_function_and_nothing_reaches_the_terminal(stalled, capfd):
    code, line = topapp.run_action(ts.Action("r", "requeue", ("requeue", str(stalled), "01-quits")))
    assert (code, line) == (0, "requeued: 01-quits (was stalled; 0 old file(s) archived)")
    assert stage(stalled, "01-quits")["status"] == "pending"
    code, line = topapp.run_action(ts.Action("r", "requeue", ("requeue", str(stalled), "01-quits")))
    assert code == 1 and line == "autometta requeue: stage 01-quits is pending; only a stopped stage can be " \
                                 "re-queued  (exit 1)"
    code, line = topapp.run_action(ts.Action("x", "nothing", ("no-such-command",)))
    assert code == 2 and "invalid choice" in line
    with topapp._caught() as caught:
        os.system("echo from-a-child >&2; echo to-stdout")
        print("from python", file=sys.stderr)
    assert "from-a-child" in caught[0] and "to-stdout" in caught[0] and "from python" in caught[0]
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_a_view_that_fails_keeps_the_last_screen_and_says_why():
    from types import SimpleNamespace

    class Flaky:
        def __init__(self):
            self.calls = 0

        def view(self):
            self.calls += 1
            if self.calls > 1:
                raise ValueError("a file nobody foresaw")
            return {"repos": [], "now": 1.0}

    app = topapp.App(None, SimpleNamespace(A_NORMAL=0), Flaky(), ts.UI(), colour=False)
    app.read()
    first = app.view
    app.read()
    assert app.view is first
    assert app.ui.message == ("cannot read the files now (ValueError: a file nobody foresaw); showing what was "
                              "read before", "red")


@pytest.mark.parametrize("env,tty,size,wanted", [
    ({"TERM": "xterm"}, False, (80, 24), "needs a terminal"),
    ({"TERM": "dumb"}, True, (80, 24), "cannot draw on TERM=dumb"),
    ({}, True, (80, 24), "cannot draw on TERM=(unset)"),
    ({"TERM": "xterm"}, True, (79, 40), "terminal too small (79x40)"),
    ({"TERM": "xterm"}, True, (200, 23), "terminal too small (200x23)"),
])
def test_no_terminal_gets_one_line_naming_status_watch(monkeypatch, env, tty, size, wanted):
    from autometta.errors import UserError

    class Stream:
        def isatty(self):
            return tty

        def fileno(self):
            return 1

    monkeypatch.setattr(os, "get_terminal_size", lambda fd: os.terminal_size(size))
    with pytest.raises(UserError) as caught:
        topapp.check_terminal(env, Stream(), Stream())
    assert wanted in caught.value.message and "'autometta status --watch'" in caught.value.message
    assert "\n" not in caught.value.message

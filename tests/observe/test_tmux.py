"""The tmux viewer, created and read back with real tmux on a private server.

``AUTOMETTA_TMUX_SOCKET`` puts autometta and these tests on a tmux server of
their own (``tmux -L <name>``), killed at the end, so a developer's own
sessions are never touched.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, List

from autometta.observe import tmux
from tests.testing.cli import run_process
from tests.testing.repos import make_repo
from tests.testing.ticks import commit_all, run_until_quiet, script_card
from tests.testing.tmux import eventually, needs_tmux, t

def test_session_names_are_sanitised():
    assert tmux.session_name(Path("/x/My.Repo v2"), {}) == "autometta-my-repo-v2"
    assert tmux.session_name(Path("/x/..."), {}) == "autometta-repo"
    assert tmux.session_name(Path("/x/app"), {tmux.SESSION_ENV: "work.main:1"}) == "work-main-1"
    assert tmux.tmux_argv({tmux.SOCKET_ENV: "mine"}) == ["tmux", "-L", "mine"]
    assert tmux.tmux_argv({tmux.SOCKET_ENV: "/tmp/s"}) == ["tmux", "-S", "/tmp/s"]


def test_dry_run_prints_the_three_pane_commands(repo, home_dir, run):
    res = run("attach", str(repo), "--dry-run")
    assert res.code == 0, res.err
    lines = dict(line.split(": ", 1) for line in res.out.splitlines())
    assert lines["tmux session"] == "autometta-myrepo" and lines["repo"] == str(repo)
    python = os.path.abspath(os.sys.executable)
    for key, args in (("status pane", f"status --watch --repo {repo}"), ("log pane", f"log --follow --repo {repo}"),
                      ("ticker pane", f"ticker {repo}")):
        assert f"{python} -m autometta {args}" in lines[key]
        assert f"PHAT_CONTROLLER_HOME={home_dir}" in lines[key]


def test_without_tmux_attach_fails_and_ensure_warns(repo):
    env = {"PATH": "/nonexistent"}
    res = run_process("attach", str(repo), env=env)
    assert res.code == 1 and "tmux not found" in res.err
    res = run_process("attach", str(repo), "--ensure", env=env)
    assert res.code == 0 and res.err.startswith("WARN tmux not found")


@needs_tmux
def test_viewer_has_three_panes_showing_the_tickers_and_the_log(socket, run, tmp_path, home_dir):
    repo = make_repo(tmp_path / "web.app")
    assert run("init-host").code == 0 and run("subscribe", str(repo)).code == 0
    commit_all(repo, "subscribe")
    card = script_card(repo, "01-hello")
    commit_all(repo, "card")
    assert run("add-stage", str(repo), str(card)).code == 0
    other = make_repo(tmp_path / "other")  # its lines stay out of this repo's log pane
    assert run("subscribe", str(other)).code == 0
    commit_all(other, "subscribe")
    card = script_card(other, "02-elsewhere")
    commit_all(other, "card")
    assert run("add-stage", str(other), str(card)).code == 0
    run_until_quiet(home_dir, repo)
    assert "02-elsewhere" in "".join(p.read_text() for p in (home_dir / "log").glob("tick-*.log"))

    res = run_process("attach", str(repo), "--ensure")
    assert res.code == 0, res.err
    session = "autometta-web-app"  # '.' sanitised before tmux rewrites it
    assert res.out.strip() == f"PASS tmux viewer created {session}"
    panes: List[List[str]] = [line.split("\t") for line in t(
        socket, "list-panes", "-t", f"={session}:", "-F", "#{pane_id}\t#{pane_active}\t#{pane_start_command}"
    ).splitlines()]
    assert len(panes) == 3
    commands = [p[2] for p in panes]
    assert f"status --watch --repo {repo}" in commands[0]
    assert f"log --follow --repo {repo}" in commands[1]
    assert f"ticker {repo}" in commands[2]
    assert [p[1] for p in panes] == ["1", "0", "0"]  # the status pane is selected

    def pane(n: int) -> Callable[[str], str]:
        return lambda: t(socket, "capture-pane", "-p", "-t", panes[n][0])

    eventually(pane(0), "autometta status", "web.app", "idle", "COMPLETED", "01-hello")
    log_pane = eventually(pane(1), "Project: web.app", "claimed 01-hello")
    assert "02-elsewhere" not in log_pane and str(other) not in log_pane
    eventually(pane(2), "autometta agents", "== web.app", "ACTIVE (0)", "RECENT", "01-hello")

    assert run_process("attach", str(repo), "--ensure").out.strip() == f"PASS tmux viewer exists {session}"
    t(socket, "kill-pane", "-t", panes[2][0])
    assert run_process("attach", str(repo), "--ensure").out.strip() == f"PASS tmux ticker pane added to {session}"
    assert len(t(socket, "list-panes", "-t", f"={session}:").splitlines()) == 3


def test_panes_run_the_pyz_when_autometta_runs_from_one(monkeypatch, tmp_path, home_dir):
    pyz = tmp_path / "autometta.pyz"
    pyz.write_bytes(b"PK")
    monkeypatch.setattr(tmux, "import_root", lambda: str(pyz))
    monkeypatch.setenv("PHAT_CONTROLLER_TICKER_INTERVAL", "2")
    view = tmux.viewer(tmp_path, tmux.HomePaths(home_dir))
    python = os.path.abspath(os.sys.executable)
    assert f"env PHAT_CONTROLLER_HOME={home_dir} PHAT_CONTROLLER_TICKER_INTERVAL=2 {python} {pyz} ticker {tmp_path}" \
        in view.ticker
    assert "PYTHONPATH" not in view.ticker

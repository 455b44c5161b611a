"""``autometta top`` driven in real tmux: send-keys, capture-pane, the screen awaited (never a fixed sleep).

Repos are made by real ticks (:mod:`tests.testing.top_repos`): a running agent, a stalled
stage, a merge conflict and a halt. Each key's action is compared with its
command run on a twin repo: the same change to state.yaml, budget.json and
the files under state/, and the same one-line result.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

from autometta import cli, yamlsub
from tests.testing.cli import run_process
from tests.testing.ticks import await_agents, stage
from tests.testing import top_repos
from tests.testing.top_repos import Pane

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (tests/run.sh installs it)")

#: The pane's settings: a worker the test keeps waiting is not called stuck while the tests run.
CALM = {"PHAT_CONTROLLER_HEARTBEAT_STALL": "3600", "AUTOMETTA_HEARTBEAT_QUIET": "3600"}


def new_socket() -> str:
    return f"autometta-top-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def kill_server(socket: str) -> None:
    subprocess.run(["tmux", "-L", socket, "kill-server"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    left = Path(os.environ.get("TMUX_TMPDIR") or "/tmp") / f"tmux-{os.getuid()}" / socket
    if left.is_socket():  # tmux may leave its socket file behind
        left.unlink()


@pytest.fixture
def socket(monkeypatch):
    name = new_socket()
    monkeypatch.setenv("AUTOMETTA_TMUX_SOCKET", name)
    monkeypatch.delenv("TMUX", raising=False)
    yield name
    kill_server(name)


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """One home with the four repos, shared by the tests that only look (module-wide: made once)."""
    tmp = tmp_path_factory.mktemp("top")
    env = top_repos.isolated_env(tmp)
    release = tmp / "release"
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        repos = top_repos.build(tmp, tmp / "controller-home", ["running", "stalled", "conflict", "halted"],
                             release=release)
    yield env, repos
    release.touch()
    await_agents(repos["running"])


SGR = re.compile(r"\x1b\[([0-9;]*)m")


def colour_codes(text: str) -> set:
    """The SGR colour parameters in ``text`` (30-37, 40-47, 90-97, 38/48 extended), defaults (39, 49) aside."""
    codes = set()
    for params in SGR.findall(text):
        for p in params.split(";"):
            if p.isdigit() and (30 <= int(p) <= 38 or 40 <= int(p) <= 48 or 90 <= int(p) <= 107):
                codes.add(int(p))
    return codes


def foregrounds(capture: str) -> List[Tuple[str, set]]:
    """Each line's text and the foreground colours its characters are drawn in (capture-pane -e keeps a
    colour across lines until it changes)."""
    out, fg = [], None
    for raw in capture.split("\n"):
        used, text, at = set(), "", 0
        for match in SGR.finditer(raw):
            chunk = raw[at:match.start()]
            if chunk.strip() and fg is not None:
                used.add(fg)
            text += chunk
            for p in (match.group(1) or "0").split(";"):
                if p in ("0", "39", ""):
                    fg = None
                elif p.isdigit() and (30 <= int(p) <= 37 or 90 <= int(p) <= 97):
                    fg = int(p)
            at = match.end()
        if raw[at:].strip() and fg is not None:
            used.add(fg)
        out.append((text + raw[at:], used))
    return out


def list_rows(pane: Pane) -> List[str]:
    """The list region's lines (between the header and the tabs line)."""
    lines = pane.lines()
    end = next(n for n, line in enumerate(lines) if "1 activity" in line)
    return lines[3:end]


def repo_order(rows: List[str]) -> List[str]:
    return [row.split()[0] for row in rows if row and not row.startswith(" ")]


@pytest.mark.parametrize("width,height,colour", [(80, 24, True), (80, 24, False), (200, 50, True),
                                                 (200, 50, False)])
def test_what_needs_you_shows_first_and_the_tabs_show_activity_diff_and_verdict(scene, width, height, colour):
    env, repos = scene
    socket = new_socket()
    pane_env = dict(env, **CALM, **({} if colour else {"NO_COLOR": "1"}))
    pane = Pane(socket, ["top"], width, height, env=pane_env)
    try:
        first = pane.await_text("autometta top", "4 repos", "needs you: 3", "controller: last tick",
                                "spend today:", "1 activity", "q quit")
        assert all(len(line) <= width for line in first.splitlines())
        rows = list_rows(pane)
        # the halt, then the stopped stages (stalled before a merge conflict), each with its stage under it
        assert repo_order(rows)[:3] == ["halted", "stalled", "conflict"]
        assert rows[0].startswith("halted  HALTED: token-cap")
        assert rows[1].split()[:2] == ["01-waits", "pending"]
        assert rows[3].split()[:4] == ["!", "01-quits", "stalled", "worker_envelope_missing_after_exit"]
        assert rows[5].split()[:4] == ["!", "02-b", "merge_conflict", "merge_conflict:"]
        coloured = pane.screen(escapes=True)
        if colour:
            lines = foregrounds(coloured)
            assert next(used for text, used in lines if "! 01-quits" in text) == {31}  # it needs you: red
            assert next(used for text, used in lines if "HALTED" in text) == {31}
        else:
            assert colour_codes(coloured) == set()  # NO_COLOR: attributes only
            assert "\x1b[7m" in coloured or ";7m" in coloured or "[7;" in coloured  # the selection, reversed

        # the running agent: listed after what needs you, its activity read from its stream-json log
        pane.select("01-plans", "running")
        rows = list_rows(pane)
        assert repo_order(rows)[-1] == "running" and any(r.split()[:3] == [">", "01-plans", "worker"] for r in rows)
        pane.send("1")
        pane.await_text("worker (script) pid", "running", "started (claude-sonnet-4-6)", "Write plan.md",
                        "$ pytest -q tests/test_plan.py", "says: waiting for the release file")

        # the merge conflict: the diff of its kept worktree, its verdict with evidence and what to do
        pane.select("02-b", "conflict")
        pane.send("2")
        pane.await_text("autometta/02-b in", "shared.txt | 1 +", "+from b")
        pane.send("3")
        pane.await_text("needs you:", "02-b: merge_conflict: shared.txt  (since", "-> autometta requeue --retry-merge",
                        "verdict PASS by Script Checker", "PASS  hello.txt says hello.", "evidence: hello.txt:1")
        pane.send("4")
        pane.await_text("does not merge onto master: conflicts in shared")

        # enter: the detail takes the screen; esc gives the list back
        pane.send("Enter")
        pane.await_text(check=lambda text: len(list_rows(pane)) == 1)
        pane.send("Escape")
        pane.await_text(check=lambda text: len(list_rows(pane)) > 1)

        pane.send("?")
        pane.await_text("autometta top: keys", "runs: autometta requeue REPO STAGE_ID --retry-merge")
        pane.send("x")
        pane.await_text("1 activity")
        pane.send("q")
        pane.await_text("[exit 0]")
    finally:
        pane.close()
        kill_server(socket)


def test_a_stuck_agent_needs_you_before_what_runs(scene):
    env, repos = scene
    socket = new_socket()
    # a second of silence is stuck here: the running worker printed its events and now waits, silent
    pane = Pane(socket, ["top"], 200, 50, env=dict(env, PHAT_CONTROLLER_HEARTBEAT_STALL="1",
                                                    AUTOMETTA_HEARTBEAT_QUIET="1"))
    try:
        pane.await_text("needs you: 4", check=lambda text: " stuck " in text)
        rows = list_rows(pane)
        assert repo_order(rows) == ["halted", "stalled", "conflict", "running"]
        (row,) = [r for r in rows if "01-plans" in r]
        assert row.split()[:5] == ["!", "01-plans", "stuck", "worker", "pid"]
        pane.select("01-plans", "running")
        pane.send("3")
        pane.await_text("01-plans: worker pid", "-> kill -TERM -")
        pane.send("q")
        pane.await_text("[exit 0]")
    finally:
        pane.close()
        kill_server(socket)


#: Runs the rest of its command line with SIGHUP ignored, as nohup does.
NOHUP = [sys.executable, "-c", "import os, signal, sys; signal.signal(signal.SIGHUP, signal.SIG_IGN); "
                               "os.execv(sys.argv[1], sys.argv[1:])"]


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="finds the pane's command in /proc")
@pytest.mark.parametrize("prefix", [[], NOHUP], ids=["sighup", "no-sighup"])
def test_top_ends_when_its_terminal_goes_away(scene, prefix):
    env, _repos = scene
    socket = new_socket()
    pane = Pane(socket, ["top"], 80, 24, env=dict(env, **CALM), prefix=prefix)
    try:
        pane.await_text("q quit")
        pid = pane.command_pid()
        assert "autometta" in Path(f"/proc/{pid}/cmdline").read_text()
    finally:
        pane.close()  # the pane's terminal hangs up, as a closed window or ssh session does
    deadline = time.monotonic() + 30
    try:
        while os.path.exists(f"/proc/{pid}") and "zombie" not in _state(pid):
            assert time.monotonic() < deadline, f"top (pid {pid}) still runs on a terminal that is gone"
            time.sleep(0.05)
    finally:
        if os.path.exists(f"/proc/{pid}") and "zombie" not in _state(pid):
            os.kill(pid, signal.SIGKILL)  # a failed run leaves no process spinning
        kill_server(socket)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split("\n")[0]
    except (OSError, IndexError):
        return "zombie"


# --------------------------------------------------------------------------- the keys, against their commands

_ISO = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z")
_STAMP = re.compile(r"\d{8}T\d{6}Z")
_HEX = re.compile(r"\b[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}\b|\b[0-9a-f]{7,64}\b")  # a session id (uuid) too


def norm(value: Any, repo: Path) -> Any:
    if isinstance(value, str):
        value = value.replace(str(repo), "<repo>").replace(repo.name, "<repo>")
        return _HEX.sub("<hex>", _STAMP.sub("<stamp>", _ISO.sub("<time>", value)))
    return value


def flat(doc: Any, prefix: str = "") -> Dict[str, Any]:
    if isinstance(doc, dict):
        out: Dict[str, Any] = {}
        for key, value in doc.items():
            out.update(flat(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(doc, list):
        out = {}
        for n, value in enumerate(doc):
            out.update(flat(value, f"{prefix}[{n}]"))
        return out
    return {prefix: doc}


def snapshot(repo: Path) -> Dict[str, Any]:
    state_dir = repo / "state"
    listed = sorted(str(p.relative_to(state_dir)) for p in state_dir.rglob("*") if p.is_file())
    return {"state": flat(yamlsub.loads((state_dir / "state.yaml").read_text())),
            "budget": flat(json.loads((state_dir / "budget.json").read_text())),
            "files": listed}


#: Numbers that are each run's own (its pid, when it started, how long it ran, where its ledger line ends, which
#: moves with the length of those): compared as present or not.
_OWN = re.compile(r"(_pid|_started|seconds|_offset)$")


def masked(key: str, value: Any, repo: Path) -> Any:
    if _OWN.search(key) and isinstance(value, (int, float)) and not isinstance(value, bool):
        return "<number>"
    return norm(value, repo)


def change(before: Dict[str, Any], after: Dict[str, Any], repo: Path) -> Dict[str, Any]:
    """What changed, with the repo's path, times, stamps, ids, pids and durations made alike."""
    out: Dict[str, Any] = {}
    for part in ("state", "budget"):
        keys = set(before[part]) | set(after[part])
        out[part] = {k: (masked(k, before[part].get(k), repo), masked(k, after[part].get(k), repo))
                     for k in sorted(keys) if before[part].get(k) != after[part].get(k)
                     or (_OWN.search(k) and k in after[part])}  # a run's own: one that ran 0.4 s and one 0.6 s
    old, new = set(before["files"]), set(after["files"])
    out["files"] = {"gone": sorted(norm(f, repo) for f in old - new),
                    "new": sorted(norm(f, repo) for f in new - old)}
    return out


def by_cli(argv: List[str], capsys) -> Tuple[int, str]:
    capsys.readouterr()
    try:
        code = cli.main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    lines = [line for line in (captured.out + captured.err).splitlines() if line.strip()]
    return code, re.sub(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z ", "", lines[-1] if lines else "")


def press(pane: Pane, key: str, label: str) -> str:
    """Press an action key, check the question, answer y; the footer's result line."""
    pane.send(key)
    pane.await_text(f"{label}? y/N  runs: autometta ")
    pane.send("y")
    text = pane.await_text(f"{key}: ", check=lambda t: t.rstrip().splitlines()[-1].startswith(f"{key}: "))
    return text.rstrip().splitlines()[-1][len(key) + 2:].strip()


@pytest.mark.parametrize("kind,key,stage_id,label,argv", [
    ("stalled", "r", "01-quits", "requeue 01-quits in stalled-a", ["requeue", "{repo}", "01-quits"]),
    ("conflict", "m", "02-b", "merge 02-b in conflict-a again", ["requeue", "{repo}", "02-b", "--retry-merge"]),
    ("halted", "h", "", "reset the halt of halted-a", ["tick", "--reset-halt", "--repo", "{repo}"]),
])
def test_each_key_changes_state_exactly_as_its_command_does(tmp_path, home_dir, socket, capsys, kind, key,
                                                            stage_id, label, argv):
    # twins: "-a" for top, "-b" for the command
    repo_a = top_repos.build(tmp_path, home_dir, [kind], suffix="-a")[kind]
    repo_b = top_repos.build(tmp_path, home_dir, [kind], suffix="-b")[kind]
    pane = Pane(socket, ["top", str(repo_a)], 200, 50, env=CALM)
    try:
        pane.select(stage_id, repo_a.name)
        before_a = snapshot(repo_a)
        shown = press(pane, key, label)
        after_a = snapshot(repo_a)
    finally:
        pane.close()
    before_b = snapshot(repo_b)
    code, said = by_cli([arg.replace("{repo}", str(repo_b)) for arg in argv], capsys)
    after_b = snapshot(repo_b)
    assert code == 0, said
    assert norm(shown, repo_a) == norm(said, repo_b)
    ours, theirs = change(before_a, after_a, repo_a), change(before_b, after_b, repo_b)
    assert ours == theirs and (ours["state"] or ours["budget"])


def test_s_stops_the_stage_as_autometta_stop_does(tmp_path, home_dir, socket, capsys):
    if "stop" not in {name for _module, name, _summary in cli.COMMANDS}:
        pytest.skip("'autometta stop' (supervision) is not on this branch yet; 's' runs it once it is")
    releases = [tmp_path / "release-a", tmp_path / "release-b"]
    a = top_repos.build(tmp_path, home_dir, ["running"], release=releases[0], suffix="-a")["running"]
    b = top_repos.build(tmp_path, home_dir, ["running"], release=releases[1], suffix="-b")["running"]
    try:
        pane = Pane(socket, ["top", str(a)], 200, 50, env=CALM)
        try:
            pane.select("01-plans", a.name)
            before_a = snapshot(a)
            shown = press(pane, "s", f"stop 01-plans in {a.name}")
            after_a = snapshot(a)
        finally:
            pane.close()
        before_b = snapshot(b)
        code, said = by_cli(["stop", str(b), "01-plans"], capsys)
        after_b = snapshot(b)
        assert code == 0, said
        assert stage(a, "01-plans")["status"] == stage(b, "01-plans")["status"] != "in_progress"
        # the same line, up to the processes it found (their number and pids are the run's own)
        assert norm(shown, a).split(";")[0] == norm(said, b).split(";")[0]
        assert shown.startswith(f"stopped: 01-plans in {a} (was running: worker")
        ours, theirs = change(before_a, after_a, a), change(before_b, after_b, b)
        assert ours == theirs
    finally:
        for release in releases:
            release.touch()
        await_agents(a)
        await_agents(b)


def test_t_runs_one_tick_and_read_only_runs_nothing(tmp_path, home_dir, socket):
    repos = top_repos.build(tmp_path, home_dir, ["halted", "stalled"])
    pane = Pane(socket, ["top", "--read-only"], 80, 24, env=CALM)
    try:
        pane.await_text("READ-ONLY", "q quit")
        assert "r requeue" not in pane.screen()
        before = snapshot(repos["stalled"])
        pane.select("01-quits", "stalled")
        pane.send("r")
        pane.await_text("read-only: 'r' is off")
        pane.send("h")
        pane.await_text("read-only: 'h' is off")
        assert snapshot(repos["stalled"]) == before
        pane.send("q")
        pane.await_text("[exit 0]")
    finally:
        pane.close()
    assert cli.main(["tick", "--reset-halt"]) == 0
    pane = Pane(socket, ["top"], 200, 50, env=CALM)
    try:
        shown = press(pane, "t", "run one tick now")
        assert re.match(r"\[(halted|stalled)\] .*\(\+\d+ more lines\)$", shown), shown  # its last line
        assert stage(repos["halted"], "01-waits")["status"] == "in_progress"  # the halt was reset: it ran
    finally:
        pane.close()
        await_agents(repos["halted"])


def test_a_attaches_the_repo_s_tmux_viewer_and_comes_back(tmp_path, home_dir, socket):
    repos = top_repos.build(tmp_path, home_dir, ["stalled"])
    pane = Pane(socket, ["top"], 100, 30, env=dict(CALM, AUTOMETTA_TMUX_SOCKET=socket), inside_tmux=False)
    try:
        pane.select("", "stalled")
        pane.send("a")
        pane.await_text("attach the tmux viewer of stalled? y/N  runs: autometta attach ")
        pane.send("y")
        pane.await_text("autometta status", "NEEDS YOU (1)")  # the viewer's panes, in top's own pane
        assert "autometta-stalled" in pane.tmux("list-sessions", "-F", "#{session_name}")
        pane.send("C-b", "d")  # detach: the viewer's client ends and top has its terminal back
        pane.await_text("a: back from the tmux viewer of", "1 activity")
        pane.send("q")
        pane.await_text("[exit 0]")
    finally:
        pane.close()


def test_a_terminal_top_cannot_use_gets_one_line_naming_status_watch(tmp_path, home_dir, socket, run):
    assert run("init-host").code == 0
    res = run_process("top")  # no terminal
    assert res.code == 1 and res.out == ""
    assert res.err.strip() == ("autometta top: needs a terminal (stdin and stdout are not one); "
                               "'autometta status --watch' works on any terminal, or none")
    pane = Pane(socket, ["top"], 80, 24, env={"TERM": "dumb"})
    try:
        text = pane.await_text("[exit 1]")
        assert "autometta top: cannot draw on TERM=dumb; 'autometta status --watch'" in text.replace("\n", "")
    finally:
        pane.close()
    pane = Pane(socket, ["top"], 70, 20)
    try:
        text = pane.await_text("[exit 1]")
        assert ("autometta top: terminal too small (70x20); top needs 80x24 or more; 'autometta status --watch' "
                "fits any size") in text.replace("\n", "")
    finally:
        pane.close()
    # shrunk while it runs: the same line, until it is large enough again
    pane = Pane(socket, ["top"], 80, 24)
    try:
        pane.await_text("autometta top", "q quit")
        pane.tmux("resize-window", "-t", f"={pane.session}", "-x", "60", "-y", "20")
        pane.await_text("terminal too small (60x20)", "'autometta status --watch' fits any size")
        pane.tmux("resize-window", "-t", f"={pane.session}", "-x", "90", "-y", "26")
        pane.await_text("autometta top", "q quit")
        pane.send("q")
        pane.await_text("[exit 0]")
    finally:
        pane.close()

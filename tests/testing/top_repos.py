"""Repos in the states ``autometta top`` must show first, made by real ticks; and driving top in real tmux.

:func:`build` makes, in one controller home, any of:

* ``running``: a stage whose worker (a script playing claude: it prints stream-json
  events) is still running, until the test creates its release file;
* ``stalled``: a stage whose worker exited without a hand-off;
* ``conflict``: two parallel stages writing one file, the second left ``merge_conflict``
  in its kept worktree (with a PASS verdict and its own commit);
* ``halted``: a repo halted by its token cap, its stage still pending.

:class:`Pane` runs a command in a tmux pane of a private server (``tmux -L``)
and awaits what it shows (``capture-pane``), re-reading until it does: a
pane has nothing to wait on.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from autometta import cli
from tests.testing.env import ROOT
from tests.testing.repos import make_repo
from tests.testing.ticks import QUIET, await_agents, commit_all, read_budget, script_card, tick_once

#: stream-json events the running worker prints, as claude would (a system line, a tool call, a message).
EVENTS = [
    {"type": "system", "subtype": "init", "model": "claude-sonnet-4-6"},
    {"type": "assistant", "message": {"content": [
        {"type": "tool_use", "id": "t1", "name": "Write", "input": {"file_path": "notes/plan.md"}}]}},
    {"type": "user", "message": {"content": [{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}]}},
    {"type": "assistant", "message": {"content": [
        {"type": "tool_use", "id": "t2", "name": "Bash", "input": {"command": "pytest -q tests/test_plan.py"}}]}},
    {"type": "assistant", "message": {"content": [{"type": "text", "text": "waiting for the release file"}]}},
]


def envelope(stage_id: str, deliverable: str) -> str:
    return (f"printf '%s' '{{\"stage_id\":\"{stage_id}\",\"status\":\"pass\",\"deliverables\":[\"{deliverable}\"],"
            f"\"notes\":\"done\"}}' > \"$AUTOMETTA_HANDOFF\"")


def writes(stage_id: str, name: str, text: str) -> str:
    return f"printf '%s\\n' '{text}' > {name} && " + envelope(stage_id, name)


def running_worker(stage_id: str, release: Path) -> str:
    lines = " ".join(shlex.quote(json.dumps(e, separators=(",", ":"))) for e in EVENTS)
    return (f"printf '%s\\n' {lines}; while [ ! -e '{release}' ]; do sleep 0.1; done; "
            + writes(stage_id, "plan.txt", "planned"))


def subscribe(home: Path, repo: Path, parallel: int = 1) -> None:
    assert cli.main(["subscribe", str(repo)]) == 0
    if parallel > 1:
        manifest = repo / ".autometta.local.yaml"
        manifest.write_text(manifest.read_text() + f"max_parallel: {parallel}\n")
    commit_all(repo, "subscribe")


def add(repo: Path, stage_id: str, worker_cmd: Optional[str] = None, **kw) -> None:
    card = script_card(repo, stage_id, worker_cmd, **kw)
    commit_all(repo, f"card {stage_id}")
    assert cli.main(["add-stage", str(repo), str(card)]) == 0


def tick_until_quiet(home: Path, repos: Sequence[Path], limit: int = 30) -> None:
    """Tick every repo, await their agents, until a tick moves none of them."""
    for _ in range(limit):
        outcomes = tick_once(home)
        for repo in repos:
            await_agents(repo)
        if all(o.kind in QUIET for o in outcomes):
            return
    raise AssertionError(f"no quiet tick after {limit}")


def build(tmp: Path, home: Path, kinds: Sequence[str], release: Optional[Path] = None,
          suffix: str = "") -> Dict[str, Path]:
    """The repos named in ``kinds`` (running, stalled, conflict, halted), in one controller home."""
    if not home.is_dir():
        assert cli.main(["init-host"]) == 0
    repos: Dict[str, Path] = {}
    settled = []
    for kind in kinds:
        if kind == "running":
            continue
        repo = make_repo(tmp / f"{kind}{suffix}")
        subscribe(home, repo, parallel=2 if kind == "conflict" else 1)
        if kind == "stalled":
            add(repo, "01-quits", "true", title="Quit without a hand-off")
        elif kind == "conflict":
            add(repo, "01-a", writes("01-a", "shared.txt", "from a"), title="Write shared.txt one way")
            add(repo, "02-b", writes("02-b", "shared.txt", "from b"), title="Write shared.txt another way")
        elif kind == "halted":
            add(repo, "01-waits", title="Wait behind the halt")
            path = repo / "state" / "budget.json"
            budget = json.loads(path.read_text())
            budget["tokens_spent"] = budget["token_cap_total"]
            path.write_text(json.dumps(budget))
        repos[kind] = repo
        settled.append(repo)
    if settled:
        tick_until_quiet(home, settled)
    if "running" in kinds:
        assert release is not None
        repo = make_repo(tmp / f"running{suffix}")
        subscribe(home, repo)
        add(repo, "01-plans", running_worker("01-plans", release), title="Plan while the test waits",
            worker_budget="10 minutes")
        tick_once(home)
        repos["running"] = repo
    for kind, repo in repos.items():
        if kind == "halted":
            assert read_budget(repo)["halted"], kind
    return repos


def isolated_env(tmp: Path) -> Dict[str, str]:
    """The environment conftest gives each test, for a home made once for a module (or a tmux pane)."""
    return {"PHAT_CONTROLLER_HOME": str(tmp / "controller-home"), "XDG_STATE_HOME": str(tmp / "xdg-state"),
            "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": str(tmp / "gitconfig"),
            "GIT_AUTHOR_NAME": "Test Human", "GIT_AUTHOR_EMAIL": "human@example.com",
            "GIT_COMMITTER_NAME": "Test Human", "GIT_COMMITTER_EMAIL": "human@example.com"}


# --------------------------------------------------------------------------- tmux

def tmux_available() -> bool:
    return shutil.which("tmux") is not None


class Pane:
    """One tmux session (on a private server) running ``argv``, of ``width`` x ``height``."""

    def __init__(self, socket: str, argv: List[str], width: int = 80, height: int = 24,
                 env: Optional[Dict[str, str]] = None, python: Optional[str] = None,
                 inside_tmux: bool = True, prefix: Sequence[str] = ()) -> None:
        self.socket = socket
        self.session = f"top-{uuid.uuid4().hex[:6]}"
        keep = {k: v for k, v in os.environ.items() if k.startswith(("PHAT_", "AUTOMETTA_", "GIT_", "XDG_"))}
        keep.update(PYTHONPATH=str(ROOT), HOME=os.environ.get("HOME", "/tmp"), PATH=os.environ.get("PATH", ""),
                    LANG="C.UTF-8", LC_ALL="C.UTF-8")
        keep.update(env or {})
        command = ([f"{k}={v}" for k, v in sorted(keep.items())] + list(prefix)
                   + [python or sys.executable, "-m", "autometta"])
        # TERM is the pane's (tmux sets it) unless env names one; the pane keeps its last screen when
        # the command ends, so a test can read an exit's message
        script = ('env -i TERM="$TERM" ' + ('TMUX="$TMUX" ' if inside_tmux else "") + shlex.join(command + list(argv))
                  + '; echo "[exit $?]"; sleep 600')
        new = ["new-session", "-d", "-P", "-F", "#{pane_id}", "-s", self.session, "-c", str(ROOT),
               "-x", str(width), "-y", str(height), script]
        deadline = time.monotonic() + 20
        while True:
            # a server whose last session was just killed is still exiting: a new one starts once it is gone
            done = subprocess.run(["tmux", "-L", self.socket, *new], capture_output=True, text=True, timeout=30)
            if done.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"tmux new-session failed: {done.stderr.strip()}")
            time.sleep(0.05)
        self.pane = done.stdout.strip()
        self.tmux("set-option", "-t", f"={self.session}:", "status", "off")

    def tmux(self, *args: str) -> str:
        done = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=30)
        if done.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args[:2])} failed ({done.returncode}): {done.stderr.strip()}")
        return done.stdout

    def screen(self, escapes: bool = False) -> str:
        return self.tmux("capture-pane", "-p", *(["-e"] if escapes else []), "-t", self.pane)

    def lines(self) -> List[str]:
        return self.screen().splitlines()

    def send(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", self.pane, *keys)

    def await_text(self, *wanted: str, timeout: float = 60.0, escapes: bool = False,
                   check: Optional[Callable[[str], bool]] = None) -> str:
        """The screen, once it shows every ``wanted`` text (and ``check`` holds)."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen(escapes)
            if all(w in text for w in wanted) and (check is None or check(text)):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"the pane never showed {wanted!r}; it shows:\n{text}")
            time.sleep(0.05)  # re-read: a pane has nothing to wait on

    def tabs_line(self) -> str:
        """The line naming the tabs and the selected row."""
        return next((line for line in self.lines() if "1 activity" in line), "")

    def select(self, stage: str, repo: str, limit: int = 40) -> None:
        """Go to the list's first row, then down until the detail names ``stage in repo`` (``repo <name>``
        when ``stage`` is '')."""
        want = f"{stage} in {repo}" if stage else f"repo {repo}"
        self.await_text("1 activity")
        self.send("Home")

        def at_top(_text: str) -> bool:
            lines = self.lines()
            first = lines[3] if len(lines) > 3 else ""
            return bool(first) and not first.startswith(" ") and self.tabs_line().rstrip().endswith(
                f"repo {first.split()[0]}")

        self.await_text(check=at_top, timeout=20)
        for _ in range(limit):
            if self.tabs_line().rstrip().endswith(want):
                return
            before = self.tabs_line()
            self.send("j")
            self.await_text(check=lambda _text: self.tabs_line() != before, timeout=20)
        raise AssertionError(f"never selected {want}; the screen is:\n{self.screen()}")

    def command_pid(self, timeout: float = 30.0) -> int:
        """The pid of the command the pane runs (the pane's shell's child)."""
        shell = int(self.tmux("display-message", "-p", "-t", self.pane, "#{pane_pid}").strip())
        deadline = time.monotonic() + timeout
        while True:
            try:
                children = Path(f"/proc/{shell}/task/{shell}/children").read_text().split()
            except OSError:
                children = []
            if children:
                return int(children[0])
            if time.monotonic() > deadline:
                raise AssertionError(f"the pane's shell {shell} started nothing")
            time.sleep(0.05)

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-session", "-t", f"={self.session}"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

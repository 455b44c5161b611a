"""``autometta demo``: the whole loop in a scratch folder, with no credentials.

A temporary repo gets three stage cards of the deterministic ``script``
family; a temporary controller home subscribes it; ticks run until the
queue drains. What it prints is what a user would see the morning after:
the status table and a git log whose authors are the workers and whose
co-authors are the verifiers.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable, List, Optional

from . import resources
from .agents.liveness import is_alive
from .agents.roles import ROLES
from .books import state
from .commands.add_stage import add_stage
from .commands.init_host import init_host
from .commands.subscribe import subscribe
from .errors import UserError
from .git import gitops
from .observe import statusrows as status_cmd
from .paths import HomePaths, RepoPaths
from .tick.loop import run_tick

#: Enough for three stages of three transitions each, with room to spare.
MAX_TICKS = 30


def _git(repo: Path, *args: str) -> str:
    proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise UserError(f"git {' '.join(args)} failed in {repo}: {proc.stderr.strip()}")
    return proc.stdout


def _await_agents(paths: RepoPaths, deadline: float) -> None:
    """Wait for the agents this process launched (they are its children)."""
    doc = state.load_state(paths)
    for stage in doc["stages"]:
        for role in ROLES:
            pid = stage.get(f"{role}_pid")
            if not pid:
                continue
            try:
                os.waitpid(int(pid), 0)
            except ChildProcessError:  # not ours (or already reaped): poll its liveness instead
                while is_alive(int(pid), stage.get(f"{role}_started")) and time.monotonic() < deadline:
                    time.sleep(0.05)


def run_demo(folder: Optional[Path] = None, say: Callable[[str], None] = print, parallel: int = 1) -> Path:
    """Run the demo; ``parallel`` above 1 sets ``max_parallel`` so the stages run in worktrees at once."""
    base = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="autometta-demo-"))
    hp = HomePaths(base / "controller-home")
    previous = os.environ.get("PHAT_CONTROLLER_HOME")
    os.environ["PHAT_CONTROLLER_HOME"] = str(hp.root)  # the books (autometta.books.digests) live in the scratch home too
    try:
        return _run_demo(base, hp, say, parallel)
    finally:
        if previous is None:
            os.environ.pop("PHAT_CONTROLLER_HOME", None)
        else:
            os.environ["PHAT_CONTROLLER_HOME"] = previous


def _run_demo(base: Path, hp: HomePaths, say: Callable[[str], None], parallel: int) -> Path:
    repo = base / "demo-repo"
    if repo.exists():
        raise UserError(f"{repo}: already exists; give an empty --dir")
    repo.mkdir(parents=True)
    _git(repo, "init", "-q")
    _git(repo, "config", "user.name", "autometta demo")
    _git(repo, "config", "user.email", "demo@localhost")
    (repo / "README.md").write_text("A scratch repo made by `autometta demo`.\n")
    _git(repo, "add", "README.md")
    _git(repo, "commit", "-qm", "demo: initial commit")

    quiet: List[str] = []
    init_host(hp, say=quiet.append)
    subscribe(hp, str(repo), say=quiet.append)
    if parallel > 1:
        with open(repo / ".autometta.local.yaml", "a", encoding="utf-8") as handle:
            handle.write(f"max_parallel: {parallel}\n")
    cards = sorted(name for name in resources.list_dir("templates/demo") if name.endswith(".md"))
    stages = repo / "docs" / "stages"
    stages.mkdir(parents=True)
    for name in cards:
        (stages / name).write_text(resources.read_text(f"templates/demo/{name}"))
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "demo: subscribe and add three stage cards")
    for name in cards:
        add_stage(str(repo), str(stages / name))
    say(f"demo repo: {repo}")
    say(f"controller home: {hp.root}")
    say(f"queued: {', '.join(Path(c).stem for c in cards)}"
        + (f" (max_parallel {parallel}: each stage in a worktree of its own)" if parallel > 1 else ""))
    say("")

    paths = RepoPaths(Path(os.path.realpath(repo)))
    started = time.monotonic()
    deadline = started + 120
    for number in range(1, MAX_TICKS + 1):
        outcomes = run_tick(hp, echo=False)
        for outcome in outcomes:
            say(f"tick {number:>2}: {outcome.message}")
        _await_agents(paths, deadline)
        doc = state.load_state(paths)
        if all(s.get("status") not in ("pending", "in_progress") for s in doc["stages"]):
            break
        if any(o.error or o.kind == "halt" for o in outcomes):
            break
    say("")
    say(status_cmd.render_table(status_cmd.collect(hp)))
    say("")
    for stage in state.load_state(paths)["stages"]:
        say(f"  {stage['id']:<14} {stage['status']:<10} commit {str(stage.get('commit') or '-')[:12]}")
    say("")
    log = _git(repo, "log", "-z", "--format=%h%x1f%s%x1f%an <%ae>%x1f%(trailers:key=Co-Authored-By,valueonly)")
    for entry in filter(None, log.split("\0")):
        sha, subject, author, coauthors = (entry.split("\x1f") + ["", "", "", ""])[:4]
        say(f"{sha} {subject}")
        say(f"        author:    {author}")
        for coauthor in filter(None, (c.strip() for c in coauthors.splitlines())):
            say(f"        co-author: {coauthor}")
    say("")
    say(f"done in {time.monotonic() - started:.1f}s; snapshots on ref {gitops.STATE_REF}")
    say(f"look around: cd {repo} && git log --stat; remove it with: rm -rf {base}")
    return repo

"""Parallel lanes with the real ``claude`` and ``codex`` CLIs against the scripted model server.

A scratch repo says ``max_parallel: 2``; two independent stages are queued
(01: claude works and codex verifies; 02: the reverse, each writing its own
file). One tick claims both: each gets its own git worktree
``<repo>/.autometta/worktrees/<id>`` on branch ``autometta/<id>``, where its
agents run, while their handoff envelope and verdict go to the repo's own
``state/`` (``--add-dir`` of the role's own folder there, ``state/handoffs`` or
the verdict's, on both CLIs; for codex that makes the folder writable beside its
workspace-write sandbox). Ticks then run until
the repo is quiet and the test checks what a user would see: both stages
completed, the base branch linear with one commit per stage (author the
worker, ``Co-Authored-By`` the verifier), the files on the base branch, no
worktree or ``autometta/*`` branch left, the handoffs in the repo's state/.

The model server answers both workers' first request only once both have
asked (a rendezvous), so the two workers provably ran at the same time,
without any timing assertion: run one after the other, the first would wait
out :data:`RENDEZVOUS_SECONDS` and the test fails saying so.

A shell wrapper ahead of each CLI on PATH records, for every agent, its
environment, its argv (NUL-separated), its working directory and the files
of that directory when it started.

codex's workspace-write sandbox also lets a command write anywhere under
/tmp and $TMPDIR, where pytest's tmp_path lives, so the test turns those off
(:data:`STRICT_SANDBOX`): the repo's state/ is then writable for codex only
through ``--add-dir``, as for a repo outside /tmp.

Skips like tests/e2e/test_tick_real_clis.py: when the CLIs cannot be installed
(no npm, no registry) and when AUTOMETTA_SKIP_E2E=1.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from pathlib import Path
from typing import Dict, List, Set

import pytest

from autometta import yamlsub
from autometta.tick import loop as tick
from autometta.agents.logwriter import read_log
from autometta.paths import HomePaths, RepoPaths
from tests.testing.repos import CARD, make_repo
from tests.e2e.test_tick_real_clis import (
    CLAUDE,
    CODEX,
    DEADLINE,
    FAMILY,
    QUIET,
    _stop_group,
    agent_environment,
    agent_key,
    agent_pids,
    await_agents,
    env_names,
)
from tests.testing.model_server import ModelServer, Request, Turn, shell, text, verdict_path, write_file
from tests.testing.ticks import commit_all, git, read_state, stage as stage_of

#: stage id -> (worker, verifier, what the worker writes, the verifier's headline)
STAGES = {
    "01-claude-lane": (CLAUDE, CODEX, "Hello from Claude's lane.\n", "Claude writes in its lane"),
    "02-codex-lane": (CODEX, CLAUDE, "Hello from Codex's lane.\n", "Codex writes in its lane"),
}
ROLES = ("worker", "verifier")
CARD_BUDGET = "1 minute"
#: How long a worker's first model request waits for the other worker's: far above the ~1 s they need.
RENDEZVOUS_SECONDS = 60

#: Appended to codex's config.toml: only the workspace and the --add-dir folders stay writable.
STRICT_SANDBOX = """
[sandbox_workspace_write]
exclude_slash_tmp = true
exclude_tmpdir_env_var = true
"""

#: Saves what autometta started the agent with, then runs the real CLI in its place.
WRAPPER = """#!/bin/sh
tag="{dumps}/$AUTOMETTA_STAGE_ID-$AUTOMETTA_ROLE"
env > "$tag.env"
pwd -P > "$tag.cwd"
printf '%s\\0' "$@" > "$tag.argv"
find . -path ./.git -prune -o -type f -print | sort > "$tag.files"
exec "{real}" "$@"
"""


# -- the script ------------------------------------------------------------------

def envelope(stage_id: str, worker: str) -> str:
    return json.dumps({"stage_id": stage_id, "status": "pass", "deliverables": [f"out/{stage_id}.txt"],
                       "notes": "wrote the file in my lane", "worker_identity": worker})


def verdict(stage_id: str, verifier: str, headline: str) -> str:
    return json.dumps({
        "stage_id": stage_id, "verifier_identity": verifier,
        "verifier_invocation": f"autometta tick ({FAMILY[verifier]} cli)", "ran_at": "2026-11-26T00:00:00Z",
        "criteria": [{"id": 1, "name": "The file exists", "verdict": "PASS",
                      "evidence": f"out/{stage_id}.txt:1"}],
        "additional_findings": "", "overall": "PASS", "headline": headline,
    })


def sh_quote(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"


def build_script(repo: Path) -> Dict[str, List[Turn]]:
    """Each agent's turns, keyed like :func:`agent_key`.

    Deliverables go into the stage's worktree: claude by absolute path, codex by a path relative to
    its cwd (so the file lands there only if codex runs in the worktree). Handoffs and verdicts go
    to the repo's own state/, outside the worktree: claude by the absolute path its prompt names,
    the codex worker through ``$AUTOMETTA_HANDOFF`` in its sandboxed shell, the codex verifier with
    apply_patch and the absolute path (both need ``--add-dir <repo>/state`` to be writable).
    """
    paths = RepoPaths(repo)
    script: Dict[str, List[Turn]] = {}
    for stage_id, (worker, verifier, content, headline) in STAGES.items():
        lane = lane_path(repo, stage_id)
        handoff = str(paths.handoff(stage_id))
        if FAMILY[worker] == "claude":
            work = [write_file(str(lane / "out" / f"{stage_id}.txt"), content),
                    write_file(handoff, envelope(stage_id, worker))]
        else:
            work = [write_file(f"out/{stage_id}.txt", content),
                    shell(f"printf '%s' {sh_quote(envelope(stage_id, worker))} > \"$AUTOMETTA_HANDOFF\"")]
        script[f"{FAMILY[worker]}:worker:{stage_id}"] = work + [text("Wrote the file and the handoff.")]
        script[f"{FAMILY[verifier]}:verifier:{stage_id}"] = [
            write_file(verdict_path(stage_id), verdict(stage_id, verifier, headline)),  # as its prompt says
            text("Verdict written: PASS.")]
    return script


class Rendezvous:
    """Holds each worker's first model request until every worker has sent its own."""

    def __init__(self, workers: Set[str]) -> None:
        self.waiting = set(workers)
        self.arrived: List[str] = []
        self.timed_out: List[str] = []
        self._lock = threading.Lock()
        self._all_here = threading.Event()

    def key(self, request: Request) -> str:
        key = agent_key(request)
        if key in self.waiting and request.turn_index() == 0:
            with self._lock:
                if key not in self.arrived:
                    self.arrived.append(key)
                if set(self.arrived) >= self.waiting:
                    self._all_here.set()
            if not self._all_here.wait(RENDEZVOUS_SECONDS):
                self.timed_out.append(key)
        return key


# -- the repo ----------------------------------------------------------------------

def lane_path(repo: Path, stage_id: str) -> Path:
    return repo / ".autometta" / "worktrees" / stage_id


def write_cards(repo: Path) -> List[Path]:
    cards = []
    for stage_id, (worker, verifier, _, _) in STAGES.items():
        card_text = CARD.format(stage_id=stage_id, title=f"Stage {stage_id}", worker=worker,
                                verifier=verifier)
        card = repo / "docs" / "stages" / f"{stage_id}.md"
        card.parent.mkdir(parents=True, exist_ok=True)
        card.write_text(card_text.replace("10 minutes", CARD_BUDGET).replace("5 minutes", CARD_BUDGET))
        cards.append(card)
    return cards


def configure(repo: Path) -> None:
    """``max_parallel: 2`` and the gateway variables claude needs, in ``.autometta.local.yaml``."""
    path = RepoPaths(repo).manifest
    doc = yamlsub.loads(path.read_text())
    doc["max_parallel"] = 2
    doc["env"] = {"pass": ["ANTHROPIC_BASE_URL", "CLAUDE_CODE_OAUTH_TOKEN"]}
    path.write_text(yamlsub.dumps(doc))


def rewrap(clis: Dict[str, str], tmp_path: Path, dumps: Path) -> None:
    """agent_environment()'s wrappers, recording more; and codex's sandbox without its /tmp exception."""
    for name, real in clis.items():
        (tmp_path / "cli-wrappers" / name).write_text(WRAPPER.format(dumps=dumps, real=real))
    config = tmp_path / "codex-home" / "config.toml"
    config.write_text(config.read_text() + STRICT_SANDBOX)


def told_by_the_cli(request: Request, prompt: str) -> str:
    """A model request's text without autometta's prompt: what the CLI itself told the model."""
    body = json.dumps(request.body)
    escaped = json.dumps(prompt)[1:-1]
    assert escaped in body, "the prompt is not in the request as sent"
    return body.replace(escaped, "")


def argv_of(dumps: Path, stage_id: str, role: str) -> List[str]:
    return (dumps / f"{stage_id}-{role}.argv").read_text().split("\0")[:-1]


def tick_log(home: Path) -> List[str]:
    return [line for log in sorted((home / "log").glob("tick-*.log"))
            for line in log.read_text().splitlines()]


# -- the test ----------------------------------------------------------------------

def test_two_lanes_with_the_real_clis(clis, run, tmp_path, home_dir, monkeypatch):
    deadline = time.monotonic() + DEADLINE
    repo = Path(os.path.realpath(make_repo(tmp_path / "proj")))
    paths = RepoPaths(repo)
    state_dir = str(paths.state_dir)
    lanes = {stage_id: lane_path(repo, stage_id) for stage_id in STAGES}
    script = build_script(repo)
    rendezvous = Rendezvous({f"{FAMILY[w]}:worker:{s}" for s, (w, _, _, _) in STAGES.items()})

    with ModelServer(script, key=rendezvous.key) as server:
        dumps = agent_environment(monkeypatch, clis, server.url, tmp_path)
        rewrap(clis, tmp_path, dumps)
        assert run("init-host").code == 0
        result = run("subscribe", str(repo))
        assert result.code == 0, result.err
        configure(repo)
        cards = write_cards(repo)
        commit_all(repo, "subscribe and queue two independent stages")
        base_branch = git(repo, "rev-parse", "--abbrev-ref", "HEAD").strip()
        base = git(repo, "rev-parse", "HEAD").strip()
        for card in cards:
            result = run("add-stage", str(repo), str(card))
            assert result.code == 0, result.err

        outcomes: List[tick.Outcome] = []
        after_first: Dict[str, dict] = {}
        try:
            for _ in range(20):
                if time.monotonic() > deadline:
                    pytest.fail(f"the lanes did not finish in {DEADLINE}s: {[o.kind for o in outcomes]}")
                (outcome,) = tick.run_tick(HomePaths(home_dir), echo=False)
                outcomes.append(outcome)
                if len(outcomes) == 1:  # before any agent is reaped: what the first tick started
                    after_first = {s["id"]: dict(s) for s in read_state(repo)["stages"]}
                await_agents(repo, deadline)
                if outcome.kind in QUIET:
                    break
            else:
                pytest.fail(f"no quiet tick after 20: {[o.kind for o in outcomes]}")
        finally:
            for pid in agent_pids(repo):  # only on failure: a run the deadline cut short
                _stop_group(pid)
        requests = list(server.requests)
        problems = list(server.problems)

    lines = tick_log(home_dir)
    logs = {(s, r): read_log(paths.log(s, r)) for s in STAGES for r in ROLES}
    context = (f"tick outcomes {[(o.kind, o.message) for o in outcomes]}\nserver problems {problems}\n"
               f"rendezvous {rendezvous.arrived} timed out {rendezvous.timed_out}\n"
               + "tick log:\n" + "\n".join(lines[-60:]) + "\n"
               + "".join(f"--- {s} {r} log (tail)\n{t[-1500:]}\n" for (s, r), t in logs.items()))

    # Both stages completed and the repo went quiet; the script was played with nothing left over.
    state = read_state(repo)
    assert {s["id"]: s["status"] for s in state["stages"]} == dict.fromkeys(STAGES, "completed"), context
    assert outcomes[-1].kind in ("wait", "noop"), context
    assert problems == [], context
    model_posts = [r for r in requests if r.method == "POST" and r.api]
    assert sorted(agent_key(r) for r in model_posts) == sorted(
        key for key, turns in script.items() for _ in turns), context

    # The first tick claimed both stages into lanes and started both workers, each in its worktree;
    # no verifier yet, so neither worker had been reaped. Both then asked the model at the same time.
    assert outcomes[0].kind == "launch", context
    for stage_id, lane in lanes.items():
        first = after_first[stage_id]
        assert first["status"] == "in_progress" and first["worker_pid"], (stage_id, first)
        assert not first.get("verifier_pid"), (stage_id, first)
        assert (first["worktree"], first["branch"], first["base"]) == (
            str(lane), f"autometta/{stage_id}", base_branch), first
    first_tick = outcomes[0].message
    assert all(f"claimed {stage_id}" in first_tick for stage_id in STAGES), first_tick
    started = [next(i for i, line in enumerate(lines)
                    if f"worker pid {after_first[s]['worker_pid']} started for {s}" in line) for s in STAGES]
    reaped = [i for i, line in enumerate(lines) if "proceeding to verifier dispatch" in line]
    assert len(reaped) == 2 and max(started) < min(reaped), context
    assert rendezvous.timed_out == [] and len(rendezvous.arrived) == 2, context

    # Then: both verifiers at once, both PASSes committed on their branches, and the two merges
    # onto the base branch one tick apart (one merge per tick), queue order first: the first
    # accepted lane merges in the tick it was committed, the other waits for the next.
    kinds = [o.kind for o in outcomes]
    assert kinds == ["launch", "launch", "completed", "completed", "wait"], context
    assert all(f"stage {s} worker envelope status=pass, proceeding to verifier" in outcomes[1].message
               for s in STAGES), context
    assert all(f"stage {s} PASS: committing worker output on autometta/{s}; queued to merge"
               in outcomes[2].message for s in STAGES), context
    assert [[s for s in STAGES if f"stage {s} merging onto {base_branch}" in o.message]
            for o in outcomes[2:4]] == [[s] for s in STAGES], context

    # Each agent ran in its stage's worktree, with --add-dir for its own folder of <repo>/state (the
    # worker's hand-off folder, the verdict's folder) and no more, and was told (prompt and environment)
    # to hand off into the repo's state/, not the worktree's.
    for stage_id, (worker, verifier, _, _) in STAGES.items():
        lane = lanes[stage_id]
        for role, identity in (("worker", worker), ("verifier", verifier)):
            where = f"{stage_id} {role}"
            assert (dumps / f"{stage_id}-{role}.cwd").read_text().strip() == str(lane), where
            argv = argv_of(dumps, stage_id, role)
            pairs = list(zip(argv, argv[1:]))
            seen = env_names(dumps / f"{stage_id}-{role}.env")
            assert seen["AUTOMETTA_HANDOFF"] == str(paths.handoff(stage_id)), where
            run_artefact = repo / stage_of(repo, stage_id)["verifier_run_artefact"]  # made at its dispatch
            assert seen.get("AUTOMETTA_ARTEFACT") == (str(run_artefact) if role == "verifier" else None), where
            told = paths.handoff(stage_id) if role == "worker" else run_artefact
            assert ("--add-dir", str(told.parent)) in pairs, (where, argv[:-1])
            assert ("--add-dir", state_dir) not in pairs, (where, argv[:-1])
            if FAMILY[identity] == "codex":
                assert ("-C", str(lane)) in pairs, (where, argv[:-1])
                assert ("--sandbox", "workspace-write") in pairs, (where, argv[:-1])
            prompt = (paths.logs / f"{stage_id}-{role}.prompt.md").read_text()
            assert argv[-1] == prompt, where
            assert f"working tree of {lane}" in prompt, where
            assert f"`{told}`" in prompt, where
            # Beside the prompt, the CLI told the model it works in the worktree and may also use that
            # folder (claude: its system prompt; codex: environment context and writable roots).
            first = next(r for r in model_posts if agent_key(r) == f"{FAMILY[identity]}:{role}:{stage_id}")
            own = told_by_the_cli(first, prompt)
            assert str(lane) in own, (where, own[:3000])
            assert re.search(re.escape(str(told.parent)) + r"(?![\w/.-])", own), (where, own[:3000])
        # The verifier started on the worker's output in the worktree; the handoff was never there.
        at_verifier = (dumps / f"{stage_id}-verifier.files").read_text().split()
        assert f"./out/{stage_id}.txt" in at_verifier, at_verifier
        assert not [f for f in at_verifier
                    if f.startswith(("./state/handoffs/", "./state/verifiers/"))], at_verifier
        handed = json.loads(paths.handoff(stage_id).read_text())
        assert (handed["stage_id"], handed["worker_identity"]) == (stage_id, worker)
        judged = json.loads(paths.verifier_artefact(stage_id).read_text())
        assert (judged["stage_id"], judged["overall"]) == (stage_id, "PASS")

    # The base branch: linear, exactly one commit per stage on top of the starting commit, each by
    # its worker with the verifier as co-author, holding only its deliverable.
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD").strip() == base_branch
    assert git(repo, "rev-list", "--merges", f"{base}..HEAD") == ""
    log = git(repo, "log", "--reverse", f"{base}..HEAD",
              "--format=%H%x00%P%x00%an <%ae>%x00%s%x00%(trailers:key=Co-Authored-By,valueonly)%x01")
    commits = [entry.strip("\n").split("\0") for entry in log.split("\x01") if entry.strip()]
    assert len(commits) == len(STAGES), log
    parent = base
    by_stage = {}
    for sha, parents, author, subject, coauthor in commits:
        assert parents == parent, log  # one parent, the commit before it
        parent = sha
        stage_id = subject.split(":", 1)[0]
        by_stage[stage_id] = sha
        worker, verifier, content, headline = STAGES[stage_id]
        assert (author, subject, coauthor.strip()) == (worker, f"{stage_id}: {headline}", verifier), log
        assert git(repo, "show", "--name-only", "--format=", sha).split() == [f"out/{stage_id}.txt"]
        assert next(s for s in state["stages"] if s["id"] == stage_id)["commit"] == sha
    assert set(by_stage) == set(STAGES), log
    for stage_id, (_, _, content, _) in STAGES.items():
        assert git(repo, "show", f"HEAD:out/{stage_id}.txt") == content
        assert (repo / "out" / f"{stage_id}.txt").read_text() == content  # checked out: the files followed
    assert git(repo, "status", "--porcelain", "--", ".", ":(exclude)state") == ""

    # No lane left behind: no worktree (for git or on disk), no autometta/* branch.
    worktrees_listed = [line for line in git(repo, "worktree", "list", "--porcelain").splitlines()
                        if line.startswith("worktree ")]
    assert worktrees_listed == [f"worktree {repo}"], worktrees_listed
    assert git(repo, "branch", "--list", "autometta/*") == ""
    for stage_id, lane in lanes.items():
        assert not lane.exists(), lane
        stage = next(s for s in state["stages"] if s["id"] == stage_id)
        assert not stage.get("worktree") and not stage.get("merge"), stage
    assert any(f"landed on {base_branch}" in line for line in lines), context

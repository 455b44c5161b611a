"""Whole ticks with the real ``claude`` and ``codex`` CLIs inside ``sandbox: bwrap`` (and, in lanes, without).

Two stages (01: claude works, codex verifies; 02: the reverse) run through the
tick with the repo's manifest saying ``sandbox: bwrap``. Each worker, before
its real work, makes tool calls that write outside its tree: the user's
``~/.ssh``, the controller's ``state/budget.json``, and (when the agents work
in a worktree) the user's checkout; the claude verifier tries to rewrite the
worker's hand-off. The sandbox refuses every one of them (the files are
unchanged, claude's log shows "Read-only file system"), and both stages
still land their deliverables.

claude runs ``bypass`` there (the default under a sandbox), so the refusals
are the OS's, not claude's; autometta gives it ``IS_SANDBOX=1`` itself (this
test's environment has none). codex runs its own workspace-write sandbox
nested inside ours, or, in the second case, ``bypass`` with ours alone. In
the third, lanes without a sandbox, the same calls are refused by the CLIs
themselves (claude ``acceptEdits``, codex ``workspace-write``), since each
agent is given only its own folder of the repo's ``state/``.

Each agent's script is built from its own prompt when it first asks the
model: the tree it works in, its hand-off or verdict path. So the test does
not depend on where autometta puts worktrees or verdicts.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from pathlib import Path
from typing import Dict, List

import pytest

from autometta import yamlsub
from autometta.agents import sandbox
from autometta.agents.logwriter import read_log
from autometta.paths import RepoPaths
from tests.e2e.test_permission_modes import STRICT_SANDBOX
from tests.e2e.test_tick_real_clis import (CLAUDE, CODEX, DEADLINE, FAMILY, _stop_group, agent_environment,
                                           agent_key, agent_pids, env_names, tick_until_quiet, user_text)
from tests.testing.model_server import ModelServer, Request, Turn, shell, text, write_file
from tests.testing.repos import CARD, make_repo
from tests.testing.ticks import commit_all, git, read_state

STAGES = {
    "01-claude-boxed": (CLAUDE, CODEX, "Hello from Claude's box.\n", "Claude writes in its box"),
    "02-codex-boxed": (CODEX, CLAUDE, "Hello from Codex's box.\n", "Codex writes in its box"),
}
CARD_BUDGET = "1 minute"

#: Saves what autometta started the agent with (into a folder the sandbox lets it write), then runs the CLI.
WRAPPER = """#!/bin/sh
tag="{dumps}/$AUTOMETTA_STAGE_ID-$AUTOMETTA_ROLE"
env > "$tag.env"
printf '%s\\0' "$@" > "$tag.argv"
exec "{real}" "$@"
"""


def _bwrap_reason() -> str:
    ok, found = sandbox.available("bwrap")
    return "" if ok else found


needs_bwrap = pytest.mark.skipif(bool(_bwrap_reason()), reason=f"bwrap cannot run here: {_bwrap_reason()}")


def envelope(stage_id: str, worker: str) -> str:
    return json.dumps({"stage_id": stage_id, "status": "pass", "deliverables": [f"out/{stage_id}.txt"],
                       "notes": "wrote the file", "worker_identity": worker})


def verdict(stage_id: str, verifier: str, headline: str) -> str:
    return json.dumps({
        "stage_id": stage_id, "verifier_identity": verifier,
        "verifier_invocation": f"autometta tick ({FAMILY[verifier]} cli)", "ran_at": "2026-11-26T00:00:00Z",
        "criteria": [{"id": 1, "name": "The file exists", "verdict": "PASS", "evidence": f"out/{stage_id}.txt:1"}],
        "additional_findings": "", "overall": "PASS", "headline": headline,
    })


def sh_quote(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"


class Agents:
    """Builds each agent's turns from its prompt when it first asks the model (see the module docstring)."""

    def __init__(self, repo: Path, home: Path) -> None:
        self.repo, self.home = repo, home
        self.script: Dict[str, List[Turn]] = {}
        self.trees: Dict[str, Path] = {}
        self._lock = threading.Lock()

    def key(self, request: Request) -> str:
        key = agent_key(request)
        with self._lock:
            if key not in self.script and key.count(":") == 2:
                self.script[key] = self.turns(key, user_text(request))
        return key

    def turns(self, key: str, prompt: str) -> List[Turn]:
        api, role, stage_id = key.split(":")
        worker, verifier, content, headline = STAGES[stage_id]
        tree = Path(re.search(r"working tree of (\S+?)\.?\s", prompt).group(1))
        self.trees[key] = tree
        budget = self.repo / "state" / "budget.json"
        if role == "verifier":
            artefact = re.search(r"Your verdict goes to `([^`]+)`", prompt).group(1)
            turns = [write_file(artefact, verdict(stage_id, verifier, headline)), text("Verdict written: PASS.")]
            if api == "claude":  # the verifier may write its verdict, not the worker's hand-off
                handoff = RepoPaths(self.repo).handoff(stage_id)
                turns.insert(0, shell(f"echo forged > {handoff}"))
            return turns
        handoff = re.search(r"write the handoff file\s+`([^`]+)`", prompt).group(1)
        escapes = [shell(f"mkdir -p {self.home}/.ssh && echo key > {self.home}/.ssh/{api}"),
                   shell(f"echo '{{}}' > {budget}")]
        if tree != self.repo:
            escapes.append(shell(f"echo mine >> {self.repo}/README.md"))
        if api == "claude":
            work = [write_file(str(tree / "out" / f"{stage_id}.txt"), content),
                    write_file(handoff, envelope(stage_id, worker))]
        else:
            work = [write_file(f"out/{stage_id}.txt", content),
                    shell(f"printf '%s' {sh_quote(envelope(stage_id, worker))} > \"$AUTOMETTA_HANDOFF\"")]
        return escapes + work + [text("Wrote the file and the handoff.")]


def write_cards(repo: Path) -> List[Path]:
    cards = []
    for stage_id, (worker, verifier, _, _) in STAGES.items():
        card_text = CARD.format(stage_id=stage_id, title=f"Stage {stage_id}", worker=worker, verifier=verifier)
        card = repo / "docs" / "stages" / f"{stage_id}.md"
        card.parent.mkdir(parents=True, exist_ok=True)
        card.write_text(card_text.replace("10 minutes", CARD_BUDGET).replace("5 minutes", CARD_BUDGET))
        cards.append(card)
    return cards


def argv_of(dumps: Path, stage_id: str, role: str) -> List[str]:
    return (dumps / f"{stage_id}-{role}.argv").read_text().split("\0")[:-1]


@pytest.mark.parametrize("max_parallel, box, codex_mode", [
    pytest.param(1, "bwrap", None, marks=needs_bwrap), pytest.param(2, "bwrap", "bypass", marks=needs_bwrap),
    (2, "none", None)],
                         ids=["serial-codex-nested", "lanes-codex-bypass", "lanes-no-sandbox"])
def test_real_clis_are_refused_outside_and_land_their_work(clis, run, tmp_path, home_dir, monkeypatch,
                                                           max_parallel, box, codex_mode):
    """With bwrap, the OS refuses; without it (a lane), claude's acceptEdits and codex's own sandbox do,
    since each agent gets only its own folder of state/."""
    deadline = time.monotonic() + DEADLINE
    repo = Path(os.path.realpath(make_repo(tmp_path / "proj")))
    paths = RepoPaths(repo)
    agent_home = tmp_path / "agent-home"
    agents = Agents(repo, agent_home)

    with ModelServer(agents.script, key=agents.key) as server:
        dumps = agent_environment(monkeypatch, clis, server.url, tmp_path)
        for name, real in clis.items():
            (tmp_path / "cli-wrappers" / name).write_text(WRAPPER.format(dumps=dumps, real=real))
        monkeypatch.delenv("IS_SANDBOX")  # autometta says so itself, inside its sandbox; acceptEdits needs none
        if box == "none":  # tmp_path is under /tmp, which codex's workspace-write leaves writable
            config = tmp_path / "codex-home" / "config.toml"
            config.write_text(config.read_text() + STRICT_SANDBOX)
        assert run("init-host").code == 0
        result = run("subscribe", str(repo))
        assert result.code == 0, result.err
        doc = yamlsub.loads(paths.manifest.read_text())
        doc.update({"max_parallel": max_parallel, "sandbox": box, "sandbox_writable": [str(dumps)],
                    "env": {"pass": ["ANTHROPIC_BASE_URL", "CLAUDE_CODE_OAUTH_TOKEN"]}})
        if codex_mode:
            doc["permissions"] = {"codex": {"mode": codex_mode}}
        paths.manifest.write_text(yamlsub.dumps(doc))
        cards = write_cards(repo)
        commit_all(repo, "subscribe and queue two stages")
        base = git(repo, "rev-parse", "HEAD").strip()
        readme = (repo / "README.md").read_bytes()
        for card in cards:
            result = run("add-stage", str(repo), str(card))
            assert result.code == 0, result.err
        budget_before = None
        try:
            budget_before = paths.budget.read_text()
            outcomes = tick_until_quiet(home_dir, repo, deadline, limit=30)
        finally:
            for pid in agent_pids(repo):  # only on failure: a run the deadline cut short
                _stop_group(pid)
        problems = list(server.problems)

    logs = {(s, r): read_log(paths.log(s, r)) for s in STAGES for r in ("worker", "verifier")}
    context = (f"tick outcomes {[(o.kind, o.message) for o in outcomes]}\nserver problems {problems}\n"
               + "".join(f"--- {s} {r} log (tail)\n{t[-2500:]}\n" for (s, r), t in logs.items()))

    # Both stages landed their real work: one commit each, holding only its deliverable.
    state = read_state(repo)
    assert {s["id"]: s["status"] for s in state["stages"]} == dict.fromkeys(STAGES, "completed"), context
    assert problems == [], context
    landed = git(repo, "log", "--reverse", "--format=%s", f"{base}..HEAD").splitlines()
    assert sorted(landed) == sorted(f"{s}: {h}" for s, (_, _, _, h) in STAGES.items()), context
    for stage_id, (_, _, content, _) in STAGES.items():
        assert git(repo, "show", f"HEAD:out/{stage_id}.txt") == content
    assert git(repo, "diff", "--name-only", base, "HEAD").split() == [f"out/{s}.txt" for s in sorted(STAGES)]

    # Every write outside was refused: nothing in ~/.ssh, the books and the checkout as they were.
    assert not (agent_home / ".ssh").exists() or list((agent_home / ".ssh").iterdir()) == [], context
    assert paths.budget.read_text() != "{}\n" and json.loads(paths.budget.read_text()).get("tokens_spent"), context
    assert json.loads(budget_before)  # (the tick rewrote it since; it was never "{}")
    assert (repo / "README.md").read_bytes() == readme
    for stage_id in STAGES:
        handed = json.loads(paths.handoff(stage_id).read_text())
        assert handed["stage_id"] == stage_id, "the verifier rewrote the hand-off"
    claude_worker = logs["01-claude-boxed", "worker"]
    if box == "none":  # claude refused them itself
        denied = json.loads(claude_worker.strip().splitlines()[-1])["permission_denials"]
        assert len(denied) == 3, context
        assert len(json.loads(logs["02-codex-boxed", "verifier"].strip().splitlines()[-1])["permission_denials"]) == 1
        return
    assert claude_worker.count("Read-only file system") >= 2, context  # the OS said no, not claude
    assert "Read-only file system" in logs["02-codex-boxed", "verifier"], context  # the forged hand-off

    # What each agent was started with: inside the sandbox, with its private TMPDIR; claude in bypass
    # with IS_SANDBOX from autometta; codex nested (its own sandbox minus /tmp) or bypassed.
    for stage_id, (worker, verifier, _, _) in STAGES.items():
        for role, identity in (("worker", worker), ("verifier", verifier)):
            seen = env_names(dumps / f"{stage_id}-{role}.env")
            assert seen["TMPDIR"].startswith(f"{home_dir}/sandbox-tmp/"), seen["TMPDIR"]
            assert seen["TMPDIR"].endswith(f"-{stage_id}-{role}")
            argv = argv_of(dumps, stage_id, role)
            if FAMILY[identity] == "claude":
                assert seen.get("IS_SANDBOX") == "1"
                assert "--dangerously-skip-permissions" in argv
            elif codex_mode == "bypass":
                assert "--dangerously-bypass-approvals-and-sandbox" in argv
            else:
                assert ("--sandbox", "workspace-write") in list(zip(argv, argv[1:]))
                assert "sandbox_workspace_write.exclude_slash_tmp=true" in argv
    if max_parallel > 1:
        assert any(tree != repo for tree in agents.trees.values()), agents.trees

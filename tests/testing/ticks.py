"""Helpers for tests that run whole ticks: script-family cards, awaiting agents."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from autometta import yamlsub
from autometta.tick import loop as tick
from autometta.paths import HomePaths
from autometta.agents.roles import ROLES

WORKER = "Script Worker <script-worker@local>"
CHECKER = "Script Checker <script-checker@local>"

PASS_WORKER = ("printf 'hello\\n' > hello.txt && printf '%s' "
               "'{\"stage_id\":\"{id}\",\"status\":\"pass\",\"deliverables\":[\"hello.txt\"],\"notes\":\"done\"}' "
               "> \"$AUTOMETTA_HANDOFF\"")


def verdict(stage_id: str, overall: str = "PASS", headline: Optional[str] = None) -> str:
    doc: Dict[str, Any] = {
        "stage_id": stage_id, "verifier_identity": CHECKER, "verifier_invocation": "sh",
        "ran_at": "2026-11-26T00:00:00Z",
        "criteria": [{"id": 1, "name": "hello", "verdict": overall, "evidence": "hello.txt:1"}],
        "additional_findings": "", "overall": overall,
    }
    if headline:
        doc["headline"] = headline
    return json.dumps(doc)


def verifier_writes(stage_id: str, overall: str = "PASS", headline: Optional[str] = None) -> str:
    return f"printf '%s' '{verdict(stage_id, overall, headline)}' > \"$AUTOMETTA_ARTEFACT\""


def script_card(repo: Path, stage_id: str, worker_cmd: Optional[str] = None, verifier_cmd: Optional[str] = None,
                *, title: str = "Say hello", worker_budget: str = "1 minute", verifier_budget: str = "1 minute",
                acceptance: Optional[str] = None, worker: str = WORKER, verifier: str = CHECKER,
                depends_on: Optional[str] = None, max_loops: Optional[int] = None,
                deliverables: Sequence[str] = ("hello.txt",), may_also_change: Sequence[str] = ("*.txt",)) -> Path:
    """A script-family card. Its worker may change ``deliverables`` and, by default, any ``*.txt``
    at the top (the file most test workers write); pass ``may_also_change=()`` for a strict scope."""
    worker_cmd = worker_cmd if worker_cmd is not None else PASS_WORKER.replace("{id}", stage_id)
    verifier_cmd = verifier_cmd if verifier_cmd is not None else verifier_writes(stage_id)
    lines = [
        f"# Stage card {stage_id}: {title}", "", "## Metadata",
        f"- **Worker:** {worker}", f"- **Verifier:** {verifier}",
        "- **Pairing rationale:** deterministic test stage",
        f"- **Worker command:** `{worker_cmd}`", f"- **Verifier command:** `{verifier_cmd}`",
    ]
    if acceptance:
        lines.append(f"- **Acceptance command:** `{acceptance}`")
    if depends_on:
        lines.append(f"- **Depends on:** {depends_on}")
    if max_loops is not None:
        lines.append(f"- **Max loops:** {max_loops}")
    lines += ["", "## Deliverables", *[f"- `{d}`" for d in deliverables]]
    if may_also_change:
        lines.append("- **May also change:** " + ", ".join(f"`{g}`" for g in may_also_change))
    lines += ["", "## Acceptance criteria", "1. hello.txt says hello.", "",
              "## Budget", f"- Worker wall-clock: {worker_budget}", f"- Verifier wall-clock: {verifier_budget}", ""]
    card = repo / "docs" / "stages" / f"{stage_id}.md"
    card.parent.mkdir(parents=True, exist_ok=True)
    card.write_text("\n".join(lines))
    return card


def commit_all(repo: Path, message: str = "cards") -> None:
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", message], check=True)


def read_state(repo: Path) -> Dict[str, Any]:
    return yamlsub.loads((repo / "state" / "state.yaml").read_text())


def read_budget(repo: Path) -> Dict[str, Any]:
    return json.loads((repo / "state" / "budget.json").read_text())


def stage(repo: Path, stage_id: str) -> Dict[str, Any]:
    return next(s for s in read_state(repo)["stages"] if s["id"] == stage_id)


def await_agents(repo: Path) -> None:
    """Block until every agent the state records has exited (they are this process's children)."""
    for s in read_state(repo)["stages"]:
        for role in ROLES:
            pid = s.get(f"{role}_pid")
            if pid:
                try:
                    os.waitpid(int(pid), 0)
                except ChildProcessError:
                    pass


#: Outcome kinds of a tick that made no transition.
QUIET = ("idle", "wait", "noop", "halted", "halt", "none", "error", "locked")


def tick_once(home: Path, **kw) -> List[tick.Outcome]:
    return tick.run_tick(HomePaths(home), echo=False, **kw)


def run_until_quiet(home: Path, repo: Path, limit: int = 20) -> List[str]:
    """Tick, await agents, repeat until a tick makes no transition; returns the kinds."""
    kinds = []
    for _ in range(limit):
        outcomes = tick_once(home)
        kinds.append(outcomes[0].kind if outcomes else "none")
        await_agents(repo)
        if kinds[-1] in QUIET:
            return kinds
    raise AssertionError(f"no quiet tick after {limit}: {kinds}")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def git_history(repo: Path) -> str:
    """Every commit of every ref, patches included, as text."""
    return subprocess.run(["git", "-C", str(repo), "log", "-p", "--all", "--text"], check=True,
                          capture_output=True, text=True).stdout

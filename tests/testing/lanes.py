"""Parallel lanes for the tests: a repo set to ``max_parallel``, workers that write a file, a lane's fields."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict

from autometta.books import state
from autometta.paths import RepoPaths


def _envelope(stage_id: str, deliverable: str) -> str:
    return (f"printf '%s' '{{\"stage_id\":\"{stage_id}\",\"status\":\"pass\",\"deliverables\":[\"{deliverable}\"],"
            f"\"notes\":\"done\"}}' > \"$AUTOMETTA_HANDOFF\"")


def writes(stage_id: str, name: str, text: str = "") -> str:
    """A worker that writes ``name`` (``text`` or the stage id) and hands off."""
    return f"printf '%s\\n' '{text or stage_id}' > {name} && " + _envelope(stage_id, name)


def parallel(repo: Path, n: int = 3, **extra) -> None:
    """``max_parallel: n`` (and ``extra`` sections, e.g. ``worktree={"setup": ...}``) in the repo's manifest."""
    manifest = repo / ".autometta.local.yaml"
    text = manifest.read_text() + f"max_parallel: {n}\n"
    for key, value in extra.items():
        text += f"{key}:\n" + "".join(f"  {k}: {json.dumps(v)}\n" for k, v in value.items())
    manifest.write_text(text)


def lane(repo: Path, stage_id: str, **fields: Any) -> Dict[str, Any]:
    """The fields a lane in flight has, as the tick writes them."""
    out = dict(status="in_progress", started_at="2026-11-26T10:00:00Z",
               worktree=f"{repo}/.autometta/worktrees/{stage_id}", branch=f"autometta/{stage_id}", base="main")
    return dict(out, **fields)


def edit_stages(repo: Path, changes: Dict[str, Dict[str, Any]]) -> None:
    """Change stages' fields in state.yaml by hand: ``{stage_id: {field: value}}``."""
    paths = RepoPaths(repo)
    doc = state.load_state(paths)
    for stage in doc["stages"]:
        stage.update(changes.get(stage["id"], {}))
    state.save_state(paths, doc)

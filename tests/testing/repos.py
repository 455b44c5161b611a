"""Scratch git repos and stage cards for them."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Optional

CARD = """\
# Stage card {stage_id}: {title}

## Metadata
- **Authored:** 2026-11-26
- **Orchestrator:** Human <me@example.com>
- **Worker:** {worker}
- **Verifier:** {verifier}
- **Verifier panel:** false
- **Pairing rationale:** cross-family by default

## Objective
Make the thing.

## Inputs (read these in your own context)
- `README.md`

## Deliverables
- `out/{stage_id}.txt`

## Acceptance criteria
1. The file exists.

## Budget
- Worker wall-clock: 10 minutes
- Verifier wall-clock: 5 minutes
"""


def make_repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    (path / "README.md").write_text("hello\n")
    subprocess.run(["git", "-C", str(path), "add", "."], check=True)
    subprocess.run(["git", "-C", str(path), "commit", "-qm", "init"], check=True)
    return path


def write_card(repo: Path, stage_id: str, *, title: str = "Do a thing",
               worker: str = "Claude Sonnet 4.6 <claude-sonnet-4-6@local>",
               verifier: str = "Codex GPT-5.5 <codex-gpt-5-5@local>",
               folder: str = "docs/stages", text: Optional[str] = None) -> Path:
    card = repo / folder / f"{stage_id}.md"
    card.parent.mkdir(parents=True, exist_ok=True)
    card.write_text(text if text is not None else
                    CARD.format(stage_id=stage_id, title=title, worker=worker, verifier=verifier))
    return card

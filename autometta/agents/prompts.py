"""Worker and verifier prompts, rendered from ``templates/`` before dispatch.

A repo may override a template with its own ``templates/<name>.md`` (as in the
bash version); otherwise the bundled one is used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from .. import files, render, resources


def template(repo: Path, name: str) -> str:
    own = repo / "templates" / f"{name}.md"
    if own.is_file():
        return files.read_text(own)
    return resources.read_text(f"templates/{name}.md")


def build(repo: Path, name: str, values: Mapping[str, str]) -> str:
    return render.render(template(repo, name), values, source=f"templates/{name}.md")

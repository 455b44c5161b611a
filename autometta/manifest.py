"""The per-repo manifest ``.autometta.local.yaml`` (gitignored, hand-edited)."""

from __future__ import annotations

from pathlib import Path

from . import files
from . import home as _home
from .paths import RepoPaths

TYPE_CHECKING = False  # not typing's: an idle tick and status import no typing (tests/test_startup.py)
if TYPE_CHECKING:
    from typing import Any, Dict, Optional

DEFAULT_CARD_GLOBS = ["docs/stages/*.md", "examples/self-host/*.md"]


def initial_manifest(autometta_root: str) -> Dict[str, Any]:
    """What subscribe writes, as the bash version did (spec §3.3)."""
    return {
        "version": 1,
        "autometta_root": autometta_root,
        "state_dir": "state",
        "stage_card_globs": list(DEFAULT_CARD_GLOBS),
        "templates_mode": "upstream",
    }


def load_manifest(repo: RepoPaths, manifest_path: Optional[Path] = None) -> Dict[str, Any]:
    """The subscriber's ``manifest_path`` if it exists, else the repo's own; {} if none."""
    for candidate in (manifest_path, repo.manifest):
        if candidate is not None and files.is_file(candidate):
            data = _home.load_yaml_file(candidate, "manifest")
            return data if isinstance(data, dict) else {}
    return {}



def max_parallel(manifest: Dict[str, Any], subscriber_value: Any = None) -> int:
    """Stages in flight at once: the manifest's ``max_parallel``, else the subscriber file's, else 1."""
    for value in (manifest.get("max_parallel"), subscriber_value):
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
    return 1

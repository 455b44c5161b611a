"""The verifier panel in the controller's config.yaml, set by hand."""

from __future__ import annotations

from pathlib import Path
from typing import List

from autometta import yamlsub


def set_panel(home: Path, commands: List[str], names=("a", "b", "c")) -> None:
    """Panellists ``names`` (script family), each running its command of ``commands``."""
    config_path = home / "config.yaml"
    config = yamlsub.loads(config_path.read_text())
    config["panel"] = [{"name": n, "identity": f"Script Panellist {n.upper()} <panel-{n}@local>", "command": c}
                       for n, c in zip(names, commands)]
    config_path.write_text(yamlsub.dumps(config))

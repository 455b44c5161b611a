"""The processes a stage runs, each tracked in its state.yaml record as ``<role>_pid`` and ``<role>_started``.

worker and verifier are agents; acceptance, setup (a lane's ``worktree.setup``)
and postmerge (the acceptance command rerun on a lane's merged result) are
shell commands. Each has its log, exit record and runner record under
``state/logs/<id>-<role>.*``.
"""

from __future__ import annotations

ROLES = ("worker", "verifier", "acceptance", "setup", "postmerge")

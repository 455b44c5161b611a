"""The script family: a shell command from the card plays the agent, for tests and demos.

An identity starting with ``Script`` (``Script Runner <script-runner@local>``)
runs the card's own command for the role::

    - **Worker command:** `printf 'hi\\n' > out/05-x.txt`
    - **Verifier command:** `python3 tools/check.py > state/verifiers/05-x.json`

as ``/bin/sh -c <command>`` in the repo (the launcher sets the directory and
gives it ``stdin=/dev/null``). The prompt and the model are not used.

A script can exercise accounting by printing a line::

    autometta-usage: {"input_tokens": 1200, "output_tokens": 80, "cost_usd": 0.01}

(the last such line counts; ``cache_read_tokens`` and ``cache_write_tokens``
are read too). Its final message is its last non-empty line other than those.
Whether its log grows is unknowable, so ``streams`` is True: a silent script
looks stuck, as a silent agent would.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from ..card import Card
from ..errors import UserError
from .base import LEADING_WORD, Family, check_role
from .usage import Usage, count

SHELL = "/bin/sh"
USAGE_PREFIX = "autometta-usage:"
_LEADING_RE = re.compile(r"^\s*[Ss]cript\b")
_COUNTS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")


class Script(Family):
    name = "script"
    executable = SHELL
    streams = True

    identity_hint = "start with Script"

    partner = "script"  # deterministic on both sides: no model judges its own family's work
    runs_card_command = True

    def default_identity(self, role: str) -> str:
        return "Script Worker <script-worker@local>" if role == "worker" else "Script Checker <script-checker@local>"

    def identity_rank(self, identity: str) -> Optional[int]:
        """A leading word ``Script``/``script``, before any other family: ``Script fake Claude`` is a script."""
        return LEADING_WORD if _LEADING_RE.match(identity) else None

    def command(self, role: str, prompt: str, *, model: Optional[str], repo: Path, card: Card,
                extra_dirs: Sequence[Path] = (), permission: Optional[object] = None) -> List[str]:
        check_role(role)
        command = card.worker_command if role == "worker" else card.verifier_command
        if not command:
            label = role.capitalize()
            raise UserError(
                f"{card.path}: a Script {role} runs the card's shell command; add "
                f"'- **{label} command:** `<command>`' under ## Metadata"
            )
        return [SHELL, "-c", command]

    def parse_usage(self, log_text: str) -> Optional[Usage]:
        found = None
        for line in log_text.splitlines():
            line = line.strip()
            if not line.startswith(USAGE_PREFIX):
                continue
            try:
                values = json.loads(line[len(USAGE_PREFIX):])
            except ValueError:
                continue
            if isinstance(values, dict):
                found = values
        if found is None:
            return None
        usage = Usage(**{key: count(found.get(key)) for key in _COUNTS})
        cost = found.get("cost_usd")
        if isinstance(cost, (int, float)) and not isinstance(cost, bool) and cost >= 0:
            usage.cost_usd = float(cost)
        return usage

    def usage_line(self, usage: Usage, cost: Optional[float], model: str = "") -> str:
        counts: Dict[str, Any] = {key: getattr(usage, key) for key in _COUNTS}
        if cost is not None:
            counts["cost_usd"] = cost
        return f"{USAGE_PREFIX} {json.dumps(counts)}"

    def final_message(self, log_text: str) -> Optional[str]:
        lines = [line.strip() for line in log_text.splitlines()]
        lines = [line for line in lines if line and not line.startswith(USAGE_PREFIX)]
        return lines[-1] if lines else None

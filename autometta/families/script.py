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

Sessions (:mod:`autometta.sessions`): every run is told its session id
(``AUTOMETTA_SESSION_ID``).
A worker sent back to the same session runs the same command with
``AUTOMETTA_CONTINUATION=1``, ``AUTOMETTA_RESUME_SESSION=<id>`` and
``AUTOMETTA_CONTINUATION_OF`` (``rebrief`` or ``interrupted``); the prompt it
it is told is in ``state/logs/<id>-worker.prompt.md``. With
``AUTOMETTA_SCRIPT_SESSIONS`` set for autometta, a session exists only while the
file ``<folder>/<id>`` does; a last line ``autometta-resume-refused`` (and a
non-zero exit) plays a CLI that refused the id.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

from ..card import Card
from ..errors import UserError
from .base import LEADING_WORD, Family, check_role
from .usage import Usage, count

SHELL = "/bin/sh"
USAGE_PREFIX = "autometta-usage:"
REFUSED_LINE = "autometta-resume-refused"
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

    def new_session_id(self) -> Optional[str]:
        return str(uuid.uuid4())

    def command(self, role: str, prompt: str, *, model: Optional[str], repo: Path, card: Card,
                extra_dirs: Sequence[Path] = (), permission: Optional[object] = None,
                session_id: Optional[str] = None) -> List[str]:
        check_role(role)
        command = card.worker_command if role == "worker" else card.verifier_command
        if not command:
            label = role.capitalize()
            raise UserError(
                f"{card.path}: a Script {role} runs the card's shell command; add "
                f"'- **{label} command:** `<command>`' under ## Metadata"
            )
        return [SHELL, "-c", command]

    def resume_command(self, role: str, prompt: str, session_id: str, *, model: Optional[str], repo: Path,
                       card: Card, extra_dirs: Sequence[Path] = (),
                       permission: Optional[object] = None) -> Optional[List[str]]:
        """The same command; :meth:`session_env` tells it that it continues ``session_id``."""
        return self.command(role, prompt, model=model, repo=repo, card=card)

    def session_env(self, session_id: Optional[str], resumed: bool, of: str = "") -> Dict[str, str]:
        """``AUTOMETTA_SESSION_ID`` always; a continuation also gets ``AUTOMETTA_CONTINUATION=1``,
        ``AUTOMETTA_RESUME_SESSION`` (the same id) and ``AUTOMETTA_CONTINUATION_OF`` (``rebrief`` or
        ``interrupted``); the prompt it is told is in ``state/logs/<id>-worker.prompt.md``."""
        env = {"AUTOMETTA_SESSION_ID": session_id or ""}
        if resumed:
            env.update(AUTOMETTA_CONTINUATION="1", AUTOMETTA_RESUME_SESSION=session_id or "",
                       AUTOMETTA_CONTINUATION_OF=of)
        return env

    def session_available(self, env: Mapping[str, str], session_id: str) -> bool:
        """Without ``AUTOMETTA_SCRIPT_SESSIONS`` (in autometta's environment) a script's session is always there
        (it keeps none); with it, the session is the file ``<that folder>/<id>``, which the script keeps."""
        folder = env.get("AUTOMETTA_SCRIPT_SESSIONS")
        return True if not folder else (Path(folder) / session_id).is_file()

    def resume_refused(self, exit_code: Optional[int], log_text: str) -> bool:
        """A last line ``autometta-resume-refused`` (how a script plays a CLI that lost the session)."""
        return exit_code != 0 and any(line.strip() == REFUSED_LINE for line in log_text.splitlines()[-3:])

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

"""The claude family: Claude Code run headless, ``claude -p``.

Both roles run the same argv (the verifier writes its artefact with the Write
tool)::

    claude -p --model <id> [--add-dir <hand-off folder>] --output-format stream-json --verbose \
        --permission-mode acceptEdits [--allowedTools <rule>...] -- <prompt>

The permission mode is the stage's (:mod:`autometta.agents.privilege`):
``acceptEdits`` (the default), ``auto`` or ``dontAsk`` as
``--permission-mode``, with ``--allowedTools`` rules for the card's
acceptance command and allowed commands; ``bypass`` is
``--dangerously-skip-permissions`` (everything runs; the default under
``sandbox:``). Without any of these every tool call is denied and the run
still exits 0. ``--allowedTools`` takes any number of rules, so the prompt
follows ``--``. The working directory is the stage's tree; the launcher sets
it. ``stream-json`` makes the log grow as the agent works and ends it with a
``result`` event carrying usage, cost and the final text
(shared/spec/agent-clis.md). Every run gets ``--session-id <uuid>`` chosen up
front; a worker sent back continues it with ``claude -p --resume <uuid>`` and the
same flags (:mod:`autometta.resume`).

Measured with claude-code 2.1.197 (fixtures in tests/data/cli/):

* As root ``--dangerously-skip-permissions`` is refused, exit 1, with one stderr line,
  unless ``IS_SANDBOX`` is exactly ``1`` or ``CLAUDE_CODE_BUBBLEWRAP`` is
  truthy (``1``/``true``/``yes``/``on``). Either may come from the process
  environment or from the ``env`` object of the user settings file,
  ``$CLAUDE_CONFIG_DIR/settings.json`` (default ``~/.claude/settings.json``),
  and the settings file wins over the process environment. The repo's own
  ``.claude/settings*.json`` do not count: they are read after the check.
  The ``--permission-mode`` modes run as root without it (2.1.197, 2.1.332).
* A rejected key (HTTP 401/403) or no credentials at all ends the run, exit 1,
  with a synthetic ``assistant`` event marked ``"error": "authentication_failed"``
  and an ``is_error`` result: ``Invalid API key · Fix external API key``,
  ``Failed to authenticate. API Error: 401 ...``, ``Not logged in · Please run /login``.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple

from ..agents import privilege
from ..card import Card
from ..errors import UserError
from ..files import open_regular, read_json
from .base import (NAMED, TRANSCRIPT_LINES, WORD, Family, RouteKeys, autometta_event, check_role, json_events,
                   plain_tail)
from .transcript import Step, claude_transcript, plain_steps
from .usage import Usage, count, find_usage_limit, scan_number

PERMISSION_FLAG = "--dangerously-skip-permissions"
#: claude's stderr line (exit 1) for PERMISSION_FLAG as root outside a sandbox.
ROOT_REFUSAL = "--dangerously-skip-permissions cannot be used with root/sudo privileges"
ROOT_MARKER = "claude_refused_root_without_is_sandbox"

#: What claude prints (exit 1) when ``--resume`` names no session it has, or no id at all.
_RESUME_REFUSALS = ("No conversation found with session ID", "Error: --resume requires a valid session ID")
_SESSION_ID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_AUTH_ERRORS = ("authentication_failed", "oauth_org_not_allowed")
# What plain ``claude -p`` (the bash version's logs) prints as its only line when it cannot log in.
_AUTH_LINE_RE = re.compile(
    r"^(?:Invalid API key · |Not logged in · |OAuth token (?:revoked|has expired)"
    r"|(?:Failed to authenticate\. )?API Error: 40[13]\b)"
)
_TRUTHY = ("1", "true", "yes", "on")
_WORD_RE = re.compile(r"(?<![A-Za-z0-9])claude", re.IGNORECASE)
#: How much of a log's start is read to tell stream-json from plain text.
_HEAD_BYTES = 64 * 1024
_EVENT_LINE = re.compile(r'^\{\s*"type"\s*:')

#: What a Claude tier runs when the identity gives no version.
CLAUDE_DEFAULTS = {"opus": "claude-opus-4-8", "sonnet": "claude-sonnet-4-6", "haiku": "claude-haiku-4-5"}
# "Opus 4.8", "opus-4-8" (a slug), "Opus": tier, major, minor.
_TIER_RE = re.compile(r"(?<![a-z])(opus|sonnet|haiku)(?:[ -]?v?(\d+)(?:[.-](\d+))?)?(?![a-z\d.])", re.I)

if TYPE_CHECKING:  # pragma: no cover
    from ..agents.privilege import Permission



class Claude(Family):
    name = "claude"
    executable = "claude"
    streams = True
    secret_names = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN")

    identity_hint = "mention Claude"

    partner = "codex"
    api = "anthropic"
    permission_modes = ("acceptEdits", "auto", "dontAsk", "bypass")
    sandboxed_modes = {"bwrap": "bypass", "seatbelt": "bypass"}
    checked_dep = True
    api_key_names = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN")
    route = RouteKeys("ANTHROPIC_API_KEY", "OP_REF_ANTHROPIC_API_KEY",
                      "CLAUDE_CODE_OAUTH_TOKEN", "OP_REF_CLAUDE_CODE_OAUTH_TOKEN")

    def api_transport(self) -> Any:
        from . import claude_api

        return claude_api

    def default_identity(self, role: str) -> str:
        return "Claude Sonnet 4.6 <claude-sonnet-4-6@local>"

    def identity_rank(self, identity: str) -> Optional[int]:
        """``Claude`` anywhere (after codex's ``Codex``/``GPT``, as bash checked them), else a word ``claude...``."""
        if "Claude" in identity:
            return NAMED + 1
        return WORD + 1 if _WORD_RE.search(identity) else None

    def model(self, identity: str, name: str, email: Optional[str], table: Mapping[str, str]) -> Optional[str]:
        """The tier and version the identity names: ``Claude Opus 4.8`` runs ``claude-opus-4-8``.

        ``Claude Sonnet 4.6`` runs ``claude-sonnet-4-6``, ``Claude Haiku 4.5``
        ``claude-haiku-4-5``. A bare major version gets Anthropic's ``-0``
        alias (``Opus 4`` runs ``claude-opus-4-0``). A tier without a version
        runs ``table``'s entry for the tier word, else :data:`CLAUDE_DEFAULTS`.
        When the name names no tier, the email slug is read the same way
        (``Claude <claude-opus-4-8@local>``). An identity with no tier at all
        is an error: the bash version quietly ran ``sonnet`` (spec §15 item 14).
        """
        for source in (name, (email or "").split("@", 1)[0]):
            match = _TIER_RE.search(source)
            if match is None:
                continue
            tier, major, minor = match.group(1).lower(), match.group(2), match.group(3)
            if major is None:
                return table.get(tier, CLAUDE_DEFAULTS[tier])
            return f"claude-{tier}-{major}-{minor or 0}"
        raise UserError(
            f"identity {identity!r} names no Claude model tier (Opus, Sonnet or Haiku); name one in the "
            f"identity, or map it under 'models:' in config.yaml, e.g. '{name or identity}: claude-sonnet-4-6'"
        )

    def command(self, role: str, prompt: str, *, model: Optional[str], repo: Path, card: Card,
                extra_dirs: Sequence[Path] = (), permission: Optional["Permission"] = None,
                session_id: Optional[str] = None) -> List[str]:
        check_role(role)
        return self._argv(["--session-id", session_id] if session_id else [], prompt, model=model, repo=repo,
                          extra_dirs=extra_dirs, permission=permission)

    def _argv(self, session: List[str], prompt: str, *, model: Optional[str], repo: Path,
              extra_dirs: Sequence[Path], permission: Optional["Permission"]) -> List[str]:
        permission = permission or privilege.default(self.name)
        argv = [self.executable, "-p", *session]
        if model:
            argv += ["--model", model]
        for folder in extra_dirs:  # the hand-off folder, outside the stage's tree
            argv += ["--add-dir", str(folder)]
        argv += ["--output-format", "stream-json", "--verbose"]
        if permission.bypass:
            return argv + [PERMISSION_FLAG, "--", prompt]
        argv += ["--permission-mode", permission.mode]  # acceptEdits, auto or dontAsk: claude's own names
        rules = privilege.claude_rules(permission, (Path(repo), *map(Path, extra_dirs)))
        if rules:
            argv += ["--allowedTools", *rules]
        return argv + ["--", prompt]

    def new_session_id(self) -> Optional[str]:
        """A UUID, given as ``--session-id``: claude keeps it, and ``--resume`` takes it back."""
        return str(uuid.uuid4())

    def session_id(self, log_text: str) -> Optional[str]:
        """The ``session_id`` of the first ``system`` init or ``result`` event (claude prints it before the model
        or any tool runs)."""
        for event in json_events(log_text):
            if event.get("type") in ("system", "result") and isinstance(event.get("session_id"), str):
                return event["session_id"]
        return None

    def resume_command(self, role: str, prompt: str, session_id: str, *, model: Optional[str], repo: Path,
                       card: Card, extra_dirs: Sequence[Path] = (),
                       permission: Optional["Permission"] = None) -> Optional[List[str]]:
        """``claude -p --resume <id>`` and the same flags as :meth:`command`: claude re-sends the session's
        conversation with ``prompt`` as a new user message, under the same id (2.1.197, 2.1.332)."""
        check_role(role)
        return self._argv(["--resume", session_id], prompt, model=model, repo=repo, extra_dirs=extra_dirs,
                          permission=permission)

    def session_available(self, env: Mapping[str, str], session_id: str) -> bool:
        """``<config folder>/projects/<working directory, slugged>/<id>.jsonl`` exists (any project folder)."""
        if not _SESSION_ID_RE.match(session_id):
            return False
        return any(self.config_dirs(env)[0].glob(f"projects/*/{session_id}.jsonl"))

    def resume_refused(self, exit_code: Optional[int], log_text: str) -> bool:
        """``No conversation found with session ID: <id>`` (or an id it cannot read), exit 1."""
        if exit_code == 0:
            return False
        return any(line.startswith(_RESUME_REFUSALS) for line in plain_tail(log_text))

    def env_names(self, role: str) -> Tuple[str, ...]:
        check_role(role)
        return ("IS_SANDBOX", "ANTHROPIC_BASE_URL", "CLAUDE_CONFIG_DIR", "CLAUDE_CODE_*")

    def config_dirs(self, env: Mapping[str, str]) -> List[Path]:
        """``$CLAUDE_CONFIG_DIR``, else ``~/.claude`` (sessions, settings, a login's credentials).

        ``~/.claude.json`` beside it stays read-only in autometta's sandbox:
        claude writes it by rename, which a file bind cannot take, and runs
        without saving it (measured, 2.1.197 and 2.1.332).
        """
        if env.get("CLAUDE_CONFIG_DIR"):
            return [Path(env["CLAUDE_CONFIG_DIR"])]
        return [Path(env.get("HOME") or os.path.expanduser("~")) / ".claude"]

    def guarded_files(self, env: Mapping[str, str]) -> List[Path]:
        """Settings (hooks, permissions, env), instructions, and the commands, agents and hooks folders."""
        folder = self.config_dirs(env)[0]
        return [folder / name for name in ("settings.json", "settings.local.json", "CLAUDE.md", "commands",
                                           "agents", "hooks", "skills", "plugins")]

    def extra_env(self, permission: Optional["Permission"]) -> Dict[str, str]:
        """``IS_SANDBOX=1`` for bypass inside autometta's sandbox: it is one, and root needs it said."""
        return {"IS_SANDBOX": "1"} if permission is not None and permission.bypass and permission.sandboxed else {}

    def log_streams(self, log_path: Optional[Path]) -> bool:
        """``stream-json`` (what autometta runs) grows as the agent works; a log that does not start with its
        events (the bash version's plain ``claude -p``, written at exit) does not: only the budget calls it stuck."""
        return log_path is not None and _starts_with_events(log_path)

    def parse_usage(self, log_text: str) -> Optional[Usage]:
        return parse_claude_log(log_text)

    def usage_line(self, usage: Usage, cost: Optional[float], model: str = "") -> str:
        """A ``result`` event, as ``stream-json`` ends a run."""
        event: Dict[str, Any] = {"type": "result", "subtype": "success", "is_error": False, "usage": {
            "input_tokens": usage.input_tokens,
            "cache_creation_input_tokens": usage.cache_write_tokens,
            "cache_read_input_tokens": usage.cache_read_tokens,
            "output_tokens": usage.output_tokens}}
        return autometta_event(event, cost, model)

    def final_message(self, log_text: str) -> Optional[str]:
        """The last ``result`` event's ``result`` text; None when the run ended in error or never finished.

        Plain ``claude -p`` logs (the bash version's) are not read: their text
        cannot be told apart from anything else the agent printed.
        """
        final = None
        for event in json_events(log_text):
            if event.get("type") == "result":
                text = event.get("result")
                final = text if isinstance(text, str) and not event.get("is_error") else None
        return final

    def transcript(self, log_text: str, roots: Sequence[str] = ()) -> List[Step]:
        """The claude events' tool calls and messages (:func:`.transcript.claude_transcript`); else plain lines."""
        return claude_transcript(log_text, roots) or plain_steps(plain_tail(log_text, TRANSCRIPT_LINES))

    def diagnose(self, exit_code: Optional[int], log_text: str) -> Optional[str]:
        """``claude_refused_root_without_is_sandbox``, ``claude_cli_missing``,
        ``claude_usage_limit`` or ``claude_auth_error``; see the module docstring."""
        if exit_code == 0:
            return None
        tail = plain_tail(log_text)
        if any(ROOT_REFUSAL in line for line in tail):
            return ROOT_MARKER
        missing = super().diagnose(exit_code, log_text)
        if missing:
            return missing
        error = _api_error(log_text)
        if error == "billing_error" or find_usage_limit(log_text) is not None:
            return f"{self.name}_usage_limit"
        if error in _AUTH_ERRORS or any(_AUTH_LINE_RE.match(line) for line in tail):
            return f"{self.name}_auth_error"
        return None

    def preflight(self, env: Mapping[str, str], euid: int, home: Path,
                  permission: Optional["Permission"] = None) -> Optional[str]:
        """``claude_cli_missing``; ``claude_refused_root_without_is_sandbox`` for bypass as root
        outside autometta's sandbox without IS_SANDBOX (the other modes run as root)."""
        missing = super().preflight(env, euid, home, permission)
        if missing:
            return missing
        permission = permission or privilege.default(self.name)
        if euid == 0 and permission.bypass and not permission.sandboxed and not sandboxed(env, home):
            return ROOT_MARKER
        return None


def _api_error(log_text: str) -> Optional[str]:
    """The ``error`` of the last synthetic assistant event, unless a successful result followed."""
    error = None
    for event in json_events(log_text):
        kind = event.get("type")
        if kind == "assistant" and isinstance(event.get("error"), str):
            error = event["error"]
        elif kind == "result":
            if not event.get("is_error"):
                error = None
            elif error is None and event.get("api_error_status") in (401, 403):
                error = "authentication_failed"
    return error


def sandboxed(env: Mapping[str, str], home: Path) -> bool:
    """Whether claude, run as root with ``env`` and ``HOME=home``, accepts PERMISSION_FLAG."""
    effective = dict(env)
    effective.update(settings_env(env, home))
    return (effective.get("IS_SANDBOX") == "1"
            or effective.get("CLAUDE_CODE_BUBBLEWRAP", "").strip().lower() in _TRUTHY)


def _starts_with_events(path: Path) -> bool:
    try:
        with open_regular(path) as handle:  # an agent's log: never a FIFO that blocks
            head = handle.read(_HEAD_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return False
    for line in head.splitlines()[:50]:
        if _EVENT_LINE.match(line.strip()):
            return True
    return False


def settings_env(env: Mapping[str, str], home: Path) -> Dict[str, str]:
    """The ``env`` object of claude's user settings file, as the strings claude puts in its environment."""
    folder = Path(env["CLAUDE_CONFIG_DIR"]) if env.get("CLAUDE_CONFIG_DIR") else Path(home) / ".claude"
    try:
        settings = read_json(folder / "settings.json")
    except UserError:
        return {}
    values = settings.get("env") if isinstance(settings, dict) else None
    if not isinstance(values, dict):
        return {}
    return {str(k): _js_string(v) for k, v in values.items()}


def _js_string(value: object) -> str:
    """``String(value)`` in JavaScript, for the JSON scalars a settings file holds."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _last_total_tokens_line(text: str) -> Optional[int]:
    found = None
    for line in text.splitlines():
        if "Total tokens:" in line:
            number = scan_number(line.split("Total tokens:", 1)[1])
            if number is not None:
                found = number
    return found


def parse_claude_log(text: str) -> Optional[Usage]:
    """Usage from a claude log: the last ``result`` event, else the ``assistant`` events of a run cut
    short (one count per message id; output undercounted), else the last ``Total tokens:`` line.

    ``claude -p --output-format stream-json --verbose`` writes JSON Lines ending
    with a ``result`` event whose ``usage`` sums every request of the run
    (``input_tokens`` without cache, ``cache_creation_input_tokens``,
    ``cache_read_input_tokens``, ``output_tokens``) next to ``total_cost_usd``.
    The ``assistant`` events in between carry the usage of the reply's first
    chunk only (``output_tokens`` is 1), so they are a fallback for a log cut
    short, not a source. ``--output-format json`` prints the same ``result``
    object alone (or, with ``--verbose``, a JSON array of every event). The
    bash version's ``Total tokens: 117,339`` line is still read so old logs
    count; its number is kept unsplit (:attr:`Usage.unsplit_tokens`).
    """
    result = None
    partial: Dict[str, Dict[str, Any]] = {}
    for event in json_events(text):
        if event.get("type") == "result" and isinstance(event.get("usage"), dict):
            result = event
        elif event.get("type") == "assistant" and isinstance(event.get("message"), dict):
            message = event["message"]
            if isinstance(message.get("usage"), dict) and message.get("model") != "<synthetic>":
                partial[str(message.get("id") or len(partial))] = message["usage"]
    if result is not None:
        usage = _claude_usage(result["usage"])
        cost = _run_cost(result)
        usage.cost_usd = float(cost) if isinstance(cost, (int, float)) and not isinstance(cost, bool) else None
        return usage
    if partial:
        total = Usage()
        for counts in partial.values():
            one = _claude_usage(counts)
            total.input_tokens += one.input_tokens
            total.output_tokens += one.output_tokens
            total.cache_read_tokens += one.cache_read_tokens
            total.cache_write_tokens += one.cache_write_tokens
        return total
    number = _last_total_tokens_line(text)
    return Usage(unsplit_tokens=number) if number is not None else None


def _run_cost(result: Dict[str, Any]) -> Any:
    """What this run cost: ``total_cost_usd``, unless the result also prices the run alone.

    A resumed session's ``total_cost_usd`` is the whole session's in claude 2.1.332, which then gives the
    run's own as ``costUSD`` per model under ``model_usage_since_last_result``; 2.1.197 has no such field
    and its ``total_cost_usd`` is the run's own (both measured against a local model server).
    """
    total = result.get("total_cost_usd")
    since = result.get("model_usage_since_last_result")
    if isinstance(since, dict) and since:
        costs = [m.get("costUSD") for m in since.values() if isinstance(m, dict)]
        if costs and all(isinstance(c, (int, float)) and not isinstance(c, bool) and c >= 0 for c in costs):
            own = sum(costs)
            same = isinstance(total, (int, float)) and not isinstance(total, bool) and abs(own - total) <= 1e-9
            return total if same else own  # a first run: its total exactly as claude printed it
    return total


def _claude_usage(counts: Dict[str, Any]) -> Usage:
    return Usage(input_tokens=count(counts.get("input_tokens")), output_tokens=count(counts.get("output_tokens")),
                 cache_read_tokens=count(counts.get("cache_read_input_tokens")),
                 cache_write_tokens=count(counts.get("cache_creation_input_tokens")))

"""The codex family: the Codex CLI run headless, ``codex exec``.

Both roles run the same argv::

    codex exec -C <tree> --sandbox workspace-write --json [--add-dir <hand-off folder>] [-m <model>] <prompt>

The permission mode is the stage's (:mod:`autometta.agents.privilege`):

* ``workspace-write`` (the default): codex's own sandbox lets any command run
  and write only inside the tree, the ``--add-dir`` folders, ``/tmp`` and
  ``$TMPDIR``, which is all either role needs: the worker edits the tree and
  writes its hand-off, the verifier writes its artefact. Inside autometta's
  bwrap sandbox the two nest, and ``/tmp`` (read-only there) is left out
  (``-c sandbox_workspace_write.exclude_slash_tmp=true``; without it codex's
  sandbox fails to start: ``Can't mkdir /tmp/.git``).
* ``approve-for-me``: ``--approve-for-me`` (workspace-write, and a reviewer
  model decides on actions outside it; it cannot be combined with ``--sandbox``).
* ``bypass``: ``--dangerously-bypass-approvals-and-sandbox``, no sandbox of
  codex's own (for autometta's sandbox, above all seatbelt, which cannot nest).

Allow rules are not passed: every command runs inside codex's sandbox. The
repo is always a git repo, so no ``--skip-git-repo-check``. Without ``-m`` codex runs the model its config
names. ``--json`` makes the log stream JSON Lines (usage per turn, each item,
the final ``agent_message``). Its ``thread.started`` event names the session; a
worker sent back continues it with ``codex exec resume`` (:meth:`Codex.resume_command`).

**stdin must be /dev/null** (the launcher does it): ``codex exec`` reads stdin
when it is not a terminal, and an open pipe blocks the run forever.

Measured with codex 0.171.0 (fixtures in tests/data/cli/): every failure to
run ends with an ``error`` and a ``turn.failed`` event (``--json``) or an
``ERROR: <message>`` line on stderr (plain mode), exit 1. A rejected key reads
``unexpected status 401 Unauthorized: <server's message>, url: <url>``; a
provider whose ``env_key`` is unset reads ``Missing environment variable:
`NAME`.``. A dead server is not diagnosed: codex retries it forever.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple

from .. import secrets
from ..agents import privilege
from ..card import Card
from ..errors import UserError
from ..files import read_json
from .base import (NAMED, TRANSCRIPT_LINES, WORD, Family, RouteKeys, autometta_event, check_role, json_events,
                   plain_tail)
from .transcript import Step, codex_transcript, plain_steps
from .usage import Usage, count, find_usage_limit, scan_number

_AUTH_RE = re.compile(
    r"^(?:unexpected status 401\b|Missing environment variable: `"
    r"|Your access token could not be refreshed\b|Failed to refresh token\b)"
)
_WORD_RE = re.compile(r"(?<![A-Za-z0-9])(?:codex|gpt)", re.IGNORECASE)
_THREAD_ID_RE = re.compile(r"^[0-9a-fA-F-]{32,40}$")
_RESUME_REFUSAL = "Error: thread/resume"
# "GPT-5.3", "gpt-5.1-codex-max", "GPT-4o": version, suffix.
_GPT_RE = re.compile(r"(?<![a-z\d])gpt[- ]?(\d+(?:\.\d+)*[a-z]?)((?:-[a-z][a-z\d]*)*)", re.I)

if TYPE_CHECKING:  # pragma: no cover
    from ..agents.privilege import Permission
    from ..secrets import Ref

#: Where codex api mode keeps its own login (spec §7.3, lessons H8).
DEFAULT_CODEX_API_HOME = "~/.codex-api-only"

#: What each permission mode adds to ``codex exec``.
MODE_FLAGS = {"workspace-write": ["--sandbox", "workspace-write"], "approve-for-me": ["--approve-for-me"],
              "bypass": ["--dangerously-bypass-approvals-and-sandbox"]}
#: Inside autometta's bwrap, where /tmp is read-only, codex's own sandbox must leave /tmp out.
NESTED_FLAGS = ["-c", "sandbox_workspace_write.exclude_slash_tmp=true"]


class Codex(Family):
    name = "codex"
    executable = "codex"
    streams = True
    secret_names = ("OPENAI_API_KEY", "CODEX_API_KEY")

    identity_hint = "mention Codex or GPT"

    partner = "claude"
    api = "openai"
    permission_modes = ("workspace-write", "approve-for-me", "bypass")
    sandboxed_modes = {"bwrap": "workspace-write", "seatbelt": "bypass"}
    own_sandbox = True
    checked_dep = True
    api_key_names = ("OPENAI_API_KEY", "CODEX_API_KEY")
    route = RouteKeys("OPENAI_API_KEY", "OP_REF_OPENAI_API_KEY")

    def api_transport(self) -> Any:
        from . import codex_api

        return codex_api

    def default_identity(self, role: str) -> str:
        return "Codex GPT-5.5 <codex-gpt-5-5@local>"

    def identity_rank(self, identity: str) -> Optional[int]:
        """``Codex`` or ``GPT`` anywhere (bash's rule, before ``Claude``), else a word ``codex...``/``gpt...``."""
        if "Codex" in identity or "GPT" in identity:
            return NAMED
        return WORD if _WORD_RE.search(identity) else None

    def api_route(self, environ: Mapping[str, str], key: "Ref") -> Tuple[Dict[str, str], Optional[str]]:
        """``CODEX_HOME`` set to the sibling home (:func:`codex_api_home`), which must be logged in with an API key:
        codex prefers ``$CODEX_HOME/auth.json`` to the environment (spec §7.3, lessons H8)."""
        home = codex_api_home(environ)
        state, detail = codex_home_state(home)
        if state == "apikey":
            return {"CODEX_HOME": str(home)}, None
        why = "is not set up" if state == "missing" else f"is not logged in with an API key ({detail})"
        return {"CODEX_HOME": str(home)}, (f"codex api mode needs CODEX_HOME {home} logged in with an API key, and "
                                           f"it {why}; run once: {setup_command(home, key, environ)}")

    def model(self, identity: str, name: str, email: Optional[str], table: Mapping[str, str]) -> Optional[str]:
        """The GPT model the name gives, as ``-m`` wants it: ``Codex GPT-5.3`` runs ``gpt-5.3``,
        ``gpt-5.1-codex-max`` stays as written; without one None (codex runs its configured default)."""
        match = _GPT_RE.search(name)
        return f"gpt-{match.group(1)}{match.group(2)}".lower() if match else None

    def command(self, role: str, prompt: str, *, model: Optional[str], repo: Path, card: Card,
                extra_dirs: Sequence[Path] = (), permission: Optional["Permission"] = None) -> List[str]:
        """See the module docstring; the launcher must give it ``stdin=/dev/null``."""
        check_role(role)
        permission = permission or privilege.default(self.name)
        argv = [self.executable, "exec", "-C", str(repo), *MODE_FLAGS[permission.mode], "--json"]
        if permission.sandboxed and not permission.bypass:
            argv += NESTED_FLAGS
        for folder in extra_dirs:  # writable beside the workspace: the hand-off folder
            argv += ["--add-dir", str(folder)]
        if model:
            argv += ["-m", model]
        return argv + [prompt]

    def session_id(self, log_text: str) -> Optional[str]:
        """The ``thread_id`` of the first ``thread.started`` event (codex picks it and says so before the model
        or any tool runs; ``exec resume`` keeps it): a line the agent adds to its log later cannot move it."""
        for event in json_events(log_text):
            if event.get("type") == "thread.started" and isinstance(event.get("thread_id"), str):
                return event["thread_id"]
        return None

    def resume_command(self, role: str, prompt: str, session_id: str, *, model: Optional[str], repo: Path,
                       card: Card, extra_dirs: Sequence[Path] = (),
                       permission: Optional["Permission"] = None) -> Optional[List[str]]:
        """``codex exec resume <id> <prompt>`` (0.171.0): it re-sends the session's items. It has no ``-C``,
        ``--sandbox`` or ``--add-dir``: the launcher runs it in ``repo``, and the sandbox and the extra writable
        folders go as ``-c`` settings (without them the resumed turn runs read-only). ``approve-for-me`` has
        no such setting: None (a cold start)."""
        check_role(role)
        permission = permission or privilege.default(self.name)
        if permission.mode == "bypass":
            argv = [self.executable, "exec", "resume", "--dangerously-bypass-approvals-and-sandbox"]
        elif permission.mode == "workspace-write":
            argv = [self.executable, "exec", "resume", "-c", 'sandbox_mode="workspace-write"']
            if extra_dirs:
                roots = ", ".join(json.dumps(str(folder)) for folder in extra_dirs)  # a TOML array of strings
                argv += ["-c", f"sandbox_workspace_write.writable_roots=[{roots}]"]
            if permission.sandboxed:
                argv += NESTED_FLAGS
        else:
            return None
        argv.append("--json")
        if model:
            argv += ["-m", model]
        return argv + [session_id, prompt]

    def session_available(self, env: Mapping[str, str], session_id: str) -> bool:
        """A rollout file ``$CODEX_HOME/sessions/YYYY/MM/DD/rollout-<time>-<id>.jsonl`` holds the session."""
        if not _THREAD_ID_RE.match(session_id):
            return False
        return any(self.config_dirs(env)[0].glob(f"sessions/*/*/*/rollout-*-{session_id}.jsonl"))

    def resume_refused(self, exit_code: Optional[int], log_text: str) -> bool:
        """``Error: thread/resume: thread/resume failed: no rollout found for thread id <id>``, exit 1."""
        if exit_code == 0:
            return False
        return any("thread/resume failed" in line or line.startswith(_RESUME_REFUSAL)
                   for line in plain_tail(log_text, 40))

    def run_usage(self, reported: Usage, before: Optional[Usage]) -> Usage:
        """A resumed session's ``turn.completed`` usage counts its earlier runs too: only the difference
        from what the run before reported is this run's."""
        if before is None:
            return reported
        return Usage(input_tokens=max(reported.input_tokens - before.input_tokens, 0),
                     output_tokens=max(reported.output_tokens - before.output_tokens, 0),
                     cache_read_tokens=max(reported.cache_read_tokens - before.cache_read_tokens, 0),
                     cache_write_tokens=max(reported.cache_write_tokens - before.cache_write_tokens, 0),
                     cost_usd=(None if reported.cost_usd is None else
                               round(max(reported.cost_usd - (before.cost_usd or 0.0), 0.0), 9)),
                     unsplit_tokens=max(reported.unsplit_tokens - before.unsplit_tokens, 0))

    def env_names(self, role: str) -> Tuple[str, ...]:
        check_role(role)
        return ("CODEX_HOME", "OPENAI_BASE_URL")

    def config_dirs(self, env: Mapping[str, str]) -> List[Path]:
        """``$CODEX_HOME``, else ``~/.codex``: config, sessions, and the ``codex-linux-sandbox`` helper
        codex links under it at start (refused when it lies inside ``$TMPDIR``)."""
        if env.get("CODEX_HOME"):
            return [Path(env["CODEX_HOME"])]
        return [Path(env.get("HOME") or os.path.expanduser("~")) / ".codex"]

    def guarded_files(self, env: Mapping[str, str]) -> List[Path]:
        """config.toml (sandbox mode, ``notify`` and MCP commands), instructions, rules, hooks, prompts."""
        folder = self.config_dirs(env)[0]
        return [folder / name for name in ("config.toml", "AGENTS.md", "AGENTS.override.md", "rules", "hooks.json",
                                           "prompts", "skills")]

    def parse_usage(self, log_text: str) -> Optional[Usage]:
        return parse_codex_log(log_text)

    def usage_line(self, usage: Usage, cost: Optional[float], model: str = "") -> str:
        """A ``turn.completed`` event (cached input counted in ``input_tokens``), with the cost codex never prints."""
        event: Dict[str, Any] = {"type": "turn.completed", "usage": {
            "input_tokens": usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens,
            "cached_input_tokens": usage.cache_read_tokens,
            "cache_write_input_tokens": usage.cache_write_tokens,
            "output_tokens": usage.output_tokens}}
        return autometta_event(event, cost, model)

    def final_message(self, log_text: str) -> Optional[str]:
        """The text of the last completed ``agent_message`` item; None without one (plain logs included)."""
        final = None
        for event in json_events(log_text):
            item = event.get("item") if event.get("type") == "item.completed" else None
            if isinstance(item, dict) and item.get("type") == "agent_message":
                final = item.get("text") if isinstance(item.get("text"), str) else final
        return final

    def transcript(self, log_text: str, roots: Sequence[str] = ()) -> List[Step]:
        """The codex events' tool calls and messages (:func:`.transcript.codex_transcript`); else plain lines."""
        return codex_transcript(log_text, roots) or plain_steps(plain_tail(log_text, TRANSCRIPT_LINES))

    def diagnose(self, exit_code: Optional[int], log_text: str) -> Optional[str]:
        """``codex_cli_missing``, ``codex_usage_limit`` or ``codex_auth_error``; see the module docstring."""
        if exit_code == 0:
            return None
        missing = super().diagnose(exit_code, log_text)
        if missing:
            return missing
        if find_usage_limit(log_text) is not None:
            return f"{self.name}_usage_limit"
        if any(_AUTH_RE.match(message) for message in _errors(log_text)):
            return f"{self.name}_auth_error"
        return None


def codex_api_home(environ: Mapping[str, str]) -> Path:
    """``$AUTOMETTA_CODEX_HOME``, else ``~/.codex-api-only`` (``~`` is the environment's HOME)."""
    value = environ.get("AUTOMETTA_CODEX_HOME") or DEFAULT_CODEX_API_HOME
    if value.startswith("~"):
        home = environ.get("HOME") or os.path.expanduser("~")
        value = home + value[1:]
    return Path(value)


def codex_home_state(home: Path) -> Tuple[str, str]:
    """(``apikey`` | ``missing`` | ``wrong_mode`` | ``unreadable``, detail) of a codex home's login.

    ``codex login --with-api-key`` writes ``auth.json`` as
    ``{"auth_mode": "apikey", "OPENAI_API_KEY": "..."}`` (codex 0.171.0); a
    subscription login says ``"auth_mode": "chatgpt"`` and carries tokens.
    """
    path = home / "auth.json"
    if not path.is_file():
        return "missing", f"no {path}"
    try:
        doc = read_json(path)
    except UserError:
        return "unreadable", f"{path} is not readable JSON"
    if not isinstance(doc, dict):
        return "unreadable", f"{path} is not a JSON object"
    mode = doc.get("auth_mode")
    if isinstance(mode, str) and mode.replace("_", "").lower() == "apikey":
        return "apikey", "auth_mode apikey"
    if mode is None and doc.get("OPENAI_API_KEY") and not doc.get("tokens"):
        return "apikey", "an API key (older codex, no auth_mode)"
    return "wrong_mode", f"auth_mode {mode if mode is not None else 'unset'}"


def setup_command(home: Path, ref: secrets.Ref, environ: Optional[Mapping[str, str]] = None) -> str:
    """The one-time command that logs codex ``home`` in with the key ``ref`` names (key via a pipe, never argv)."""
    kind = secrets.kind_of(ref.value)
    tool = secrets.resolver(environ) if environ is not None else None
    reader = "op-fetch --print" if tool and os.path.basename(tool[0]) == "op-fetch" else "op read"
    if kind == "env":
        source = f"printenv {ref.value[len('env:'):]}"
    elif kind == "file":
        source = f"cat {shlex.quote(ref.value[len('file:'):])}"
    elif kind == "op" and not ref.placeholder:
        source = f"{reader} {shlex.quote(ref.value)}"
    else:
        source = f"{reader} \"${ref.var}\""
    where = shlex.quote(str(home))
    return f"mkdir -m 700 -p {where} && {source} | CODEX_HOME={where} codex login --with-api-key"


def _errors(log_text: str) -> List[str]:
    """The messages of ``error``/``turn.failed`` events, then of plain mode's last ``ERROR:`` lines,
    forgetting those a finished turn followed."""
    messages: List[str] = []
    for event in json_events(log_text):
        if event.get("type") == "turn.completed":
            messages = []
        elif event.get("type") == "error":
            messages.append(str(event.get("message") or ""))
        elif event.get("type") == "turn.failed" and isinstance(event.get("error"), dict):
            messages.append(str(event["error"].get("message") or ""))
    for line in plain_tail(log_text):
        if line == "tokens used":  # plain mode closes a finished run with its count
            messages = []
        elif line.startswith("ERROR:"):
            messages.append(line[len("ERROR:"):].strip())
    return messages


def _last_tokens_used(text: str) -> Optional[int]:
    lines = text.splitlines()
    found = None
    for i, line in enumerate(lines[:-1]):
        if line.strip() == "tokens used":
            number = scan_number(lines[i + 1])
            if number is not None:
                found = number
    return found


def parse_codex_log(text: str) -> Optional[Usage]:
    """Usage from a codex log: every ``turn.completed`` event summed, else the last
    ``tokens used`` count of plain mode.

    ``codex exec --json`` writes one ``turn.completed`` per turn whose ``usage``
    has ``input_tokens`` (cached ones included), ``cached_input_tokens``,
    ``cache_write_input_tokens``, ``output_tokens`` (reasoning included) and
    ``reasoning_output_tokens``. No cost (autometta's OpenAI API verifier adds
    ``total_cost_usd`` to the event it logs in this format; it is summed).
    Plain mode (the bash version's) ends its stderr with a line ``tokens used``
    and the count on the next (``2,580``), kept unsplit (:attr:`Usage.unsplit_tokens`).
    """
    total: Optional[Usage] = None
    for event in json_events(text):
        if event.get("type") != "turn.completed" or not isinstance(event.get("usage"), dict):
            continue
        counts = event["usage"]
        cached = count(counts.get("cached_input_tokens"))
        written = count(counts.get("cache_write_input_tokens"))
        total = total or Usage()
        # codex's input_tokens include the cached (and cache-written) ones
        total.input_tokens += max(count(counts.get("input_tokens")) - cached - written, 0)
        total.cache_read_tokens += cached
        total.cache_write_tokens += written
        total.output_tokens += count(counts.get("output_tokens"))
        cost = event.get("total_cost_usd")  # codex prints none; autometta's OpenAI API verifier does
        if isinstance(cost, (int, float)) and not isinstance(cost, bool) and cost >= 0:
            total.cost_usd = round((total.cost_usd or 0.0) + float(cost), 6)
    if total is not None:
        return total
    number = _last_tokens_used(text)
    return Usage(unsplit_tokens=number) if number is not None else None

"""The interface every agent family implements, and the helpers they share.

A family is one way of running an agent, and everything autometta knows about
it: which identities name it and what it defaults to (:meth:`Family.identity_rank`,
:meth:`Family.default_identity`, :attr:`Family.partner`), which model an
identity runs (:meth:`Family.model`), the argv and environment for a role
(:meth:`Family.command`, :meth:`Family.env_names`, its config folders), how it
bills (:attr:`Family.route`, :attr:`Family.api_key_names`,
:meth:`Family.api_route`) and whether a verifier may call its API instead
(:attr:`Family.api`), and how to read its log: spend, final words, what it did,
why it could not run, a limit it hit, whether the log streams. The dispatcher,
the tick, the views and the accounting only ever talk to a :class:`Family`
found in the registry (:mod:`autometta.families`); everything that depends on
a particular CLI lives in that family's module. A new family is a subclass in
a module of its own and one :func:`autometta.families.register` call
(tests/test_fourth_family.py registers one from outside this package).

The log a family reads is the file the launcher writes: the agent's stdout and
stderr together, in the order they arrived. Structured CLIs (claude
``stream-json``, codex ``--json``) put one JSON object per line on stdout; the
helpers below skip the plain lines (warnings on stderr) in between.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple

from ..agents import sandbox
from ..card import ROLES, Card
from .transcript import Step, plain_steps
from .usage import Usage, UsageLimit, find_usage_limit
from .usage import _json_objects as json_events  # one JSON Lines reader for usage and verdicts

if TYPE_CHECKING:  # pragma: no cover
    from ..agents.privilege import Permission
    from ..secrets import Ref

__all__ = ["Family", "RouteKeys", "ROLES", "EXIT_NOT_FOUND", "LEADING_WORD", "NAMED", "WORD", "autometta_event",
           "check_role", "json_events", "matches_env_name", "plain_tail"]

#: The shell's exit code for "command not found". A launcher whose ``Popen``
#: raised ``FileNotFoundError`` passes it to :meth:`Family.diagnose` too.
EXIT_NOT_FOUND = 127

#: Plain lines looked at by :func:`plain_tail`: a CLI that cannot run says so last.
TAIL_LINES = 10
#: Plain lines kept as the transcript of a log without structured events.
TRANSCRIPT_LINES = 20

#: How strongly an identity names a family (:meth:`Family.identity_rank`; the lowest rank wins):
#: a leading word (``Script Worker``), checked before anything else; the family's name as the
#: bash version matched it, case-sensitive, anywhere (``Codex GPT-5.3``); a word starting with
#: the name, in any case (``opus <claude-opus@local>``), only for what bash left unknown.
LEADING_WORD, NAMED, WORD = 0, 10, 20

_NOT_FOUND_RE = re.compile(r"(?:^|: )(?P<name>[\w./-]+): (?:command )?not found$")


@dataclass(frozen=True)
class RouteKeys:
    """What a family's two billing routes (:mod:`autometta.auth`) put in the agent's environment, and from which
    reference: ``api_env`` from ``api_ref`` in api mode, the optional ``subscription_env`` token from
    ``subscription_ref`` in subscription mode."""

    api_env: str
    api_ref: str
    subscription_env: Optional[str] = None
    subscription_ref: Optional[str] = None


class Family:
    """One agent family. Subclasses set the attributes and override the methods.

    ``name`` is the registry key and the prefix of every marker this family
    returns. ``executable`` is ``argv[0]`` of :meth:`command`, looked up on the
    agent's ``PATH``. ``streams`` says whether the log grows while the agent
    works (so a stale log means a stuck agent). ``secret_names`` are the
    environment variables holding this family's credentials: they are never
    listed by :meth:`env_names`; the auth module alone decides which one an
    agent gets.
    """

    name: str = ""
    executable: str = ""
    streams: bool = True
    secret_names: Tuple[str, ...] = ()
    #: The API keys among :attr:`secret_names`: never passed from the parent environment, not even by
    #: ``env.pass`` (a stray one would move the bill); only the billing route injects one.
    api_key_names: Tuple[str, ...] = ()
    #: The keys of the family's billing routes (:mod:`autometta.auth`); None for a family that bills to no account.
    route: Optional[RouteKeys] = None
    #: How an identity names this family, for messages: ``mention Claude``.
    identity_hint: str = ""
    #: The family whose agent verifies this one's work unless the card says otherwise (``new-card``).
    partner: str = ""
    #: The API a verifier of this family may call instead of its CLI (``anthropic``, ``openai``: the transport
    #: ``api`` of :mod:`autometta.verify`), None for a family without one.
    api: Optional[str] = None
    #: The permission modes its CLI offers (:mod:`autometta.agents.privilege`), the default first; () for none.
    permission_modes: Tuple[str, ...] = ()
    #: The mode it runs in by default inside autometta's sandbox, by ``sandbox:`` kind (``bwrap``,
    #: ``seatbelt``); a kind not named here runs the first of :attr:`permission_modes`.
    sandboxed_modes: Mapping[str, str] = {}
    #: Its CLI starts an OS sandbox of its own (which then nests inside autometta's) unless bypassed.
    own_sandbox: bool = False
    #: ``check-deps`` looks for :attr:`executable` (a CLI installed on its own, not the system's shell).
    checked_dep: bool = False
    #: Each role runs the card's own shell command (``Worker command``/``Verifier command``), not a model.
    runs_card_command: bool = False

    def api_transport(self) -> Any:
        """The module that calls :attr:`api` (``LABEL``, ``api_key``, ``base_url``, ``endpoint``, ``call``:
        ``claude_api``, ``codex_api`` beside the family), imported when asked; None for a family without one."""
        return None

    def identity_rank(self, identity: str) -> Optional[int]:
        """How strongly ``identity`` names this family (:data:`LEADING_WORD`, :data:`NAMED`,
        :data:`WORD`, or a rank between), None when it does not name it at all.

        :func:`autometta.families.family_of` asks every registered family and
        takes the lowest rank; a family that must win a tie against another
        returns one more or less than it (claude's ``NAMED + 1`` lets an
        identity naming both Claude and GPT be codex's, as in bash).
        """
        return None

    def default_identity(self, role: str) -> str:
        """The identity ``new-card`` writes for ``role`` when only the family is named."""
        raise NotImplementedError

    def api_route(self, environ: Mapping[str, str], key: "Ref") -> Tuple[Dict[str, str], Optional[str]]:
        """For the api billing route, whose key ``key`` names: what it sets in the agent's environment besides the
        key, and why it cannot run (None: it can). Checked before any process starts; fetches no secret."""
        return {}, None

    def model(self, identity: str, name: str, email: Optional[str], table: Mapping[str, str]) -> Optional[str]:
        """The model id ``identity`` runs (``name`` and ``email`` parsed from it), or None for the CLI's default.

        ``table`` is config.yaml's ``models:`` with keys already folded
        (:func:`autometta.families.models.model_key`); the identity's own name
        was looked up in it before. :class:`UserError` for an identity the
        family cannot run. This base version runs no model.
        """
        return None

    def command(self, role: str, prompt: str, *, model: Optional[str], repo: Path, card: Card,
                extra_dirs: Sequence[Path] = (), permission: Optional["Permission"] = None,
                session_id: Optional[str] = None) -> List[str]:
        """The argv that runs ``role`` ("worker" or "verifier") on ``prompt``.

        The launcher runs it with ``cwd=repo``, ``stdin=/dev/null`` and the
        log as stdout and stderr. ``model`` comes from
        :func:`autometta.families.models.resolve_model`; None means the
        CLI's own default. ``extra_dirs`` are folders outside ``repo`` the
        agent must be able to write (its hand-off folder). ``permission``
        (:func:`autometta.agents.privilege.resolve`) is the mode it runs in and what
        it may run; None means the family's default without a sandbox.
        ``session_id`` is the id :meth:`new_session_id` chose for the run
        (given only to a family that chooses one). The argv never holds a secret.
        """
        raise NotImplementedError

    # -- sessions (autometta.sessions resumes a sent-back worker's) -------------------------------------------

    def new_session_id(self) -> Optional[str]:
        """The id this run's session gets, chosen before it starts (passed to :meth:`command` as
        ``session_id``); None for a CLI that picks its own (then :meth:`session_id` reads it from the log)."""
        return None

    def session_id(self, log_text: str) -> Optional[str]:
        """The session id the CLI named in the run's output (the first it printed: the agent's own lines come
        later), or None."""
        return None

    def resume_command(self, role: str, prompt: str, session_id: str, *, model: Optional[str], repo: Path,
                       card: Card, extra_dirs: Sequence[Path] = (),
                       permission: Optional["Permission"] = None) -> Optional[List[str]]:
        """The argv that continues session ``session_id`` with ``prompt`` as its next user message (run like
        :meth:`command`: ``cwd=repo``); None when this family, or this permission mode, cannot resume one."""
        return None

    def session_env(self, session_id: Optional[str], resumed: bool, of: str = "") -> Dict[str, str]:
        """Variables telling the run its session (``resumed``: a continuation, ``of`` what); none by default."""
        return {}

    def session_available(self, env: Mapping[str, str], session_id: str) -> bool:
        """Are the CLI's files of ``session_id`` still there for ``env`` (its HOME, its config folder)?"""
        return False

    def resume_refused(self, exit_code: Optional[int], log_text: str) -> bool:
        """Did the CLI refuse to resume the session it was given (no such session, a bad id)?"""
        return False

    def run_usage(self, reported: Usage, before: Optional[Usage]) -> Usage:
        """What a resumed run spent, from what its log reports (``reported``) and what the session's run
        before it reported (``before``): the CLI's counts are per run unless its family says otherwise."""
        return reported

    def config_dirs(self, env: Mapping[str, str]) -> List[Path]:
        """The CLI's own config and session folders for ``env`` (writable inside autometta's sandbox)."""
        return []

    def guarded_files(self, env: Mapping[str, str]) -> List[Path]:
        """Settings and instruction files in :meth:`config_dirs` the agent must not change (inside
        autometta's sandbox they stay read-only): they would act outside it on the CLI's next run."""
        return []

    def extra_env(self, permission: Optional["Permission"]) -> Dict[str, str]:
        """Variables the agent needs for ``permission`` on top of the allowlisted environment."""
        return {}

    def env_names(self, role: str) -> Tuple[str, ...]:
        """Variables to pass through besides the base allowlist and the secrets.

        A name ending in ``*`` stands for every variable with that prefix
        (:func:`matches_env_name`), minus :attr:`secret_names`.
        """
        check_role(role)
        return ()

    def log_streams(self, log_path: Optional[Path]) -> bool:
        """Does the log at ``log_path`` grow while the agent works (so a silent one is stuck)? :attr:`streams`."""
        return self.streams

    def parse_usage(self, log_text: str) -> Optional[Usage]:
        """Tokens (and cost, when the CLI prices them) the run spent; None if the log says nothing."""
        raise NotImplementedError

    def usage_line(self, usage: Usage, cost: Optional[float], model: str = "") -> str:
        """One log line :meth:`parse_usage` reads back as ``usage`` and ``cost``: how autometta, when it is
        the agent (an API verifier, a panel), logs what it spent so the tick books it like a CLI's run."""
        raise NotImplementedError

    def final_message(self, log_text: str) -> Optional[str]:
        """The agent's last words (a verifier may deliver its verdict here); None if there are none."""
        return None

    def transcript(self, log_text: str, roots: Sequence[str] = ()) -> List[Step]:
        """What the agent did, in order: its tool calls with targets and results, what it said.

        ``roots`` (the agent's working tree, the repo) make file targets
        relative. This version, for plain output, is the log's last non-JSON
        lines (:data:`TRANSCRIPT_LINES`); :mod:`.transcript` reads the
        structured CLIs.
        """
        return plain_steps(plain_tail(log_text, TRANSCRIPT_LINES))

    def diagnose(self, exit_code: Optional[int], log_text: str) -> Optional[str]:
        """A stall marker when the agent could not run at all, read from its exit and log; else None.

        ``exit_code`` is None when unknown (the agent ran detached). An exit
        code of 0 is never diagnosed: the CLI says it ran. This base version
        knows ``<name>_resume_refused`` (:meth:`resume_refused`), ``sandbox_failed``
        (:func:`autometta.agents.sandbox.diagnose`) and ``<name>_cli_missing``.
        """
        if exit_code == 0:
            return None
        if self.resume_refused(exit_code, log_text):
            return f"{self.name}_resume_refused"
        failed = sandbox.diagnose(log_text)
        if failed:
            return failed
        if exit_code == EXIT_NOT_FOUND or _said_not_found(self.executable, log_text):
            return f"{self.name}_cli_missing"
        return None

    def usage_limit(self, exit_code: Optional[int], log_text: str) -> Optional[UsageLimit]:
        """The rate or usage limit a run that failed ended on (the tick parks the repo), or None.

        Read like :meth:`diagnose`: an exit code of 0 is never a limit. Both
        CLIs' real events and messages are recognised by
        :func:`~autometta.families.usage.find_usage_limit`.
        """
        if exit_code == 0:
            return None
        return find_usage_limit(log_text)

    def preflight(self, env: Mapping[str, str], euid: int, home: Path,
                  permission: Optional["Permission"] = None) -> Optional[str]:
        """A marker naming why the agent cannot run, checked before spawning; None if it can.

        ``env`` is the environment the agent will get, ``euid`` the user it
        runs as, ``home`` its ``HOME`` and ``permission`` its mode (None: the
        default without a sandbox). This base version checks that
        :attr:`executable` is on ``env``'s ``PATH`` (``os.defpath`` without one,
        as ``execvp`` does).
        """
        if self.executable and shutil.which(self.executable, path=env.get("PATH", os.defpath)) is None:
            return f"{self.name}_cli_missing"
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def autometta_event(event: Dict[str, Any], cost: Optional[float], model: str) -> str:
    """``event`` as one JSON line, with ``total_cost_usd``, ``model`` and ``source: autometta verifier`` added
    (for :meth:`Family.usage_line` of a CLI that logs JSON events)."""
    if cost is not None:
        event["total_cost_usd"] = cost
    if model:
        event["model"] = model
    event["source"] = "autometta verifier"
    return json.dumps(event)


def check_role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    return role


def matches_env_name(pattern: str, name: str) -> bool:
    """``CLAUDE_CODE_*`` matches ``CLAUDE_CODE_MAX_RETRIES``; other patterns match exactly."""
    return name.startswith(pattern[:-1]) if pattern.endswith("*") else name == pattern


def plain_tail(text: str, count: int = TAIL_LINES) -> List[str]:
    """The last ``count`` non-empty lines that are not JSON, stripped.

    What a CLI prints when it cannot run is at the end; looking only there
    keeps a worker that merely printed such a sentence from being mistaken
    for one that failed.
    """
    lines = [line.strip() for line in text.splitlines()]
    return [line for line in lines if line and not _is_json(line)][-count:]


def _is_json(line: str) -> bool:
    if line[:1] not in ("{", "["):
        return False
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


def _said_not_found(executable: str, text: str) -> bool:
    """A shell's ``sh: 1: claude: not found`` / ``bash: claude: command not found`` at the end."""
    for line in plain_tail(text, 3):
        match = _NOT_FOUND_RE.search(line)
        if match and executable and os.path.basename(match.group("name")) == os.path.basename(executable):
            return True
    return False

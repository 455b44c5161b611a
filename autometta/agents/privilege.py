"""Permission modes: how much each agent CLI may do on its own, and the commands a stage may run.

Each billed family runs in one permission mode, the first of:

1. the card's ``- **Permission mode:** claude dontAsk, codex bypass`` (a bare
   mode applies to every family that has it, e.g. ``bypass``);
2. ``permissions.<family>.mode`` in the repo's ``.autometta.local.yaml``;
3. the default, which depends on ``sandbox:`` (:mod:`autometta.agents.sandbox`).

The modes, as measured with claude 2.1.197 and 2.1.332 and codex 0.171.0
(docs/permissions.md has the table):

==========  ================  =====================================================
family      mode              what the CLI gets
==========  ================  =====================================================
claude      ``acceptEdits``   ``--permission-mode acceptEdits``: edits and simple
                              commands inside the working folders run; writes,
                              redirections and ``rm`` outside them, and every
                              command no allow rule names (``python3 -c``,
                              ``npm test``) are refused. The default.
claude      ``auto``          ``--permission-mode auto``: what claude's safety check
                              approves runs; when the check cannot run (it runs only
                              against Anthropic's own API) that is refused.
claude      ``dontAsk``       ``--permission-mode dontAsk``: only what an allow rule
                              names; autometta adds rules for edits inside the
                              working folders.
claude      ``bypass``        ``--dangerously-skip-permissions``: everything. Root
                              needs ``IS_SANDBOX=1``, which autometta sets itself
                              under ``sandbox:``. The default under ``sandbox:``.
codex       ``workspace-write``  ``--sandbox workspace-write``: codex's own OS sandbox;
                              any command, writes only in the working folders. The
                              default, also under ``sandbox:`` (bwrap), where
                              autometta's sandbox and codex's nest.
codex       ``approve-for-me``   ``--approve-for-me``: workspace-write, and a reviewer
                              model may approve an action outside it.
codex       ``bypass``        ``--dangerously-bypass-approvals-and-sandbox``: no
                              sandbox of codex's own. The default under ``sandbox:
                              seatbelt`` (macOS cannot nest sandboxes).
==========  ================  =====================================================

Allow rules name what a stage's agents may run besides edits: the card's
acceptance command (always), the card's ``- **Allowed commands:** `npm test`,
`make lint` `` and the manifest's ``permissions.allow`` list. A command is
allowed with its arguments (claude ``Bash(npm test:*)``); an entry already
written as a claude rule (``Bash(git diff:*)``, ``WebFetch(domain:x.org)``)
is passed as written. Only claude reads them: codex's sandbox lets every
command run and confines what it writes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

from ..card import Card
from ..errors import UserError

#: Stall marker: the card or manifest names a permission mode the family does not have.
INVALID = "permission_mode_invalid"


def modes(family: str) -> Tuple[str, ...]:
    """``family``'s permission modes, its default first (:attr:`Family.permission_modes`); () for a family
    without modes (script) or none registered by that name."""
    from ..families.registry import FAMILIES  # the registry only: the families' modules import this one

    found = FAMILIES.get(family)
    return found.permission_modes if found is not None else ()


def with_modes() -> List[str]:
    """The registered families that have permission modes, in registration order."""
    from ..families.registry import FAMILIES

    return [name for name, found in FAMILIES.items() if found.permission_modes]


def default_mode(family: str, sandbox: str = "none") -> str:
    """The mode ``family`` runs in when nothing names one, under the ``sandbox:`` kind
    (:attr:`Family.sandboxed_modes`, else its first mode)."""
    from ..families.registry import FAMILIES

    return FAMILIES[family].sandboxed_modes.get(sandbox, modes(family)[0])

#: Other spellings people write (the CLIs' own names included), case-insensitively.
ALIASES = {"bypasspermissions": "bypass", "dangerously-skip-permissions": "bypass",
           "danger-full-access": "bypass", "accept-edits": "acceptEdits", "dont-ask": "dontAsk",
           "workspacewrite": "workspace-write", "approveforme": "approve-for-me"}

#: A card or manifest entry already written as a claude permission rule: ``Tool`` or ``Tool(...)``.
_RULE_RE = re.compile(r"^[A-Z][A-Za-z]*(?:\(.*\))?$", re.S)
_PAIR_RE = re.compile(r"^(?P<family>[A-Za-z]+)\s*(?:[:=]\s*|\s+)(?P<mode>\S+)$")


class ModeError(UserError):
    """A permission setting autometta cannot use; the tick stalls the stage with :data:`INVALID`."""

    marker = INVALID


@dataclass(frozen=True)
class Permission:
    """The mode one agent runs in, where it came from, and what it may run."""

    family: str
    mode: str
    #: ``default``, ``default under sandbox: bwrap``, ``<manifest> permissions.claude.mode``, ``<card>:<line>``
    source: str
    #: Commands (``npm test``) and claude rules (``Bash(git diff:*)``) the stage allows, in order.
    allow: Tuple[str, ...] = ()
    #: The card's acceptance command (allowed exactly, and each of its simple commands).
    acceptance: Optional[str] = None
    #: ``none``, ``bwrap`` or ``seatbelt``: whether the agent runs inside autometta's sandbox.
    sandbox: str = "none"

    @property
    def bypass(self) -> bool:
        return self.mode == "bypass"

    @property
    def sandboxed(self) -> bool:
        return self.sandbox != "none"

    @property
    def nests(self) -> bool:
        """Whether the CLI starts an OS sandbox of its own inside autometta's (codex, unless bypassed)."""
        from ..families.registry import FAMILIES

        family = FAMILIES.get(self.family)
        return self.sandboxed and family is not None and family.own_sandbox and not self.bypass

    def describe(self) -> str:
        """``acceptEdits (default)``: for log lines and views."""
        return f"{self.mode} ({self.source})"


def canonical(family: str, value: Any) -> Optional[str]:
    """``value`` as one of ``family``'s modes (case and the aliases forgiven), else None."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    key = text.casefold()
    for mode in modes(family):
        if mode.casefold() == key:
            return mode
    alias = ALIASES.get(key)
    return alias if alias in modes(family) else None


def _choices(family: str) -> str:
    return ", ".join(modes(family))


def card_modes(card: Card) -> Dict[str, str]:
    """The families' modes the card's ``Permission mode`` bullet names; UserError naming its line.

    ``claude dontAsk, codex bypass`` (also ``claude: dontAsk; codex=bypass``)
    names one per family; a bare mode (``bypass``) applies to every family
    that has it.
    """
    text = (card.permission_mode or "").strip().strip("`")
    if not text:
        return {}
    where = card.where("permission_mode")
    example = "'- **Permission mode:** claude dontAsk, codex workspace-write'"
    out: Dict[str, str] = {}
    for part in (p.strip().strip("`").strip() for p in re.split(r"[,;]", text)):
        if not part:
            continue
        pair = _PAIR_RE.match(part)
        if pair and modes(pair.group("family").lower()):
            family = pair.group("family").lower()
            mode = canonical(family, pair.group("mode"))
            if mode is None:
                raise ModeError(f"{where}: {family} has no permission mode {pair.group('mode')!r}; "
                                f"choose one of {_choices(family)}")
            out[family] = mode
            continue
        matched = {family: canonical(family, part) for family in with_modes()}
        matched = {family: mode for family, mode in matched.items() if mode is not None}
        if not matched:
            raise ModeError(f"{where}: {part!r} is no permission mode; write it as {example} "
                            f"({'; '.join(f'{family}: {_choices(family)}' for family in with_modes())})")
        for family, mode in matched.items():
            out.setdefault(family, mode)
    return out


def manifest_section(manifest: Mapping[str, Any]) -> Mapping[str, Any]:
    section = manifest.get("permissions") if isinstance(manifest, Mapping) else None
    return section if isinstance(section, Mapping) else {}


def manifest_mode(family: str, manifest: Mapping[str, Any], manifest_path: Optional[Path] = None) -> Optional[str]:
    """``permissions.<family>.mode`` of the manifest, checked; None when it names none."""
    entry = manifest_section(manifest).get(family)
    value = entry.get("mode") if isinstance(entry, Mapping) else None
    if value in (None, ""):
        return None
    mode = canonical(family, value)
    if mode is None:
        where = manifest_path or ".autometta.local.yaml"
        raise ModeError(f"{where}: permissions.{family}.mode {value!r} is no {family} permission mode; "
                        f"choose one of {_choices(family)}")
    return mode


def allowed(card: Optional[Card], manifest: Mapping[str, Any]) -> Tuple[str, ...]:
    """The manifest's ``permissions.allow``, then the card's ``Allowed commands``, de-duplicated."""
    found: List[str] = []
    listed = manifest_section(manifest).get("allow")
    for item in listed if isinstance(listed, list) else []:
        if isinstance(item, str) and item.strip():
            found.append(item.strip())
    if card is not None:
        found.extend(card.allowed_commands)
    return tuple(dict.fromkeys(found))


def resolve(family: str, manifest: Mapping[str, Any], card: Optional[Card], sandbox: str = "none",
            manifest_path: Optional[Path] = None) -> Optional["Permission"]:
    """The permission ``family``'s agents run with; None for a family without modes (script)."""
    if not modes(family):
        return None
    mode = card_modes(card).get(family) if card is not None else None
    if mode is not None:
        source = card.where("permission_mode") if card is not None else "card"
    else:
        mode = manifest_mode(family, manifest, manifest_path)
        source = f"permissions.{family}.mode in {manifest_path or '.autometta.local.yaml'}"
    if mode is None:
        mode = default_mode(family, sandbox)
        source = "default" if sandbox == "none" else f"default under sandbox: {sandbox}"
    return Permission(family=family, mode=mode, source=source, allow=allowed(card, manifest),
                      acceptance=card.acceptance_command if card is not None else None, sandbox=sandbox)


def default(family: str) -> Permission:
    """``family``'s mode when nothing names one and there is no sandbox."""
    return Permission(family=family, mode=default_mode(family), source="default")


# ------------------------------------------------------------------ claude's allow rules

def is_rule(entry: str) -> bool:
    """Whether an allow entry is already a claude rule (``Bash(make:*)``, ``WebFetch``), not a command."""
    return bool(_RULE_RE.match(entry)) and (" " not in entry.split("(", 1)[0])


def simple_commands(command: str) -> List[str]:
    """The simple commands of a shell line: split at ``&&``, ``||``, ``;``, ``|``, ``&`` and newlines
    outside quotes, each stripped (claude checks a compound command one part at a time)."""
    parts: List[str] = []
    current: List[str] = []
    quote = ""
    index = 0
    while index < len(command):
        char = command[index]
        if quote:
            current.append(char)
            if char == "\\" and quote == '"' and index + 1 < len(command):
                current.append(command[index + 1])
                index += 1
            elif char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
            current.append(char)
        elif char == "\\" and index + 1 < len(command):
            current.extend(command[index:index + 2])
            index += 1
        elif char in ";|&\n":
            parts.append("".join(current))
            current = []
            while index + 1 < len(command) and command[index + 1] in "|&":
                index += 1
        else:
            current.append(char)
        index += 1
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def claude_rules(permission: "Permission", writable: Tuple[Path, ...] = ()) -> List[str]:
    """The ``--allowedTools`` rules for ``permission``: none in bypass.

    The acceptance command is allowed exactly, whole and each of its simple
    commands; each allowed command with any arguments (``Bash(npm test:*)``);
    a claude rule as written. In ``dontAsk`` mode, which refuses every tool no
    rule names, edits inside ``writable`` (the working folders) are allowed
    too: ``Edit(//abs/path/**)``.
    """
    if permission.bypass:
        return []
    rules: List[str] = []
    if permission.acceptance:
        if "\n" not in permission.acceptance.strip():
            rules.append(f"Bash({permission.acceptance.strip()})")
        rules.extend(f"Bash({part})" for part in simple_commands(permission.acceptance))
    for entry in permission.allow:
        rules.append(entry if is_rule(entry) else f"Bash({' '.join(entry.split())}:*)")
    if permission.mode == "dontAsk":
        rules.extend(f"Edit(/{Path(folder).as_posix()}/**)" for folder in writable)
    return list(dict.fromkeys(rules))


@dataclass
class Report:
    """One family's mode as ``auth status`` and ``check-deps`` show it."""

    family: str
    mode: str
    source: str
    allow: List[str] = field(default_factory=list)
    problem: Optional[str] = None


def report(family: str, manifest: Mapping[str, Any], sandbox: str, manifest_path: Optional[Path] = None) -> Report:
    """``family``'s mode for the repo (cards may override it per stage); a broken setting is a problem."""
    try:
        permission = resolve(family, manifest, None, sandbox, manifest_path)
    except UserError as exc:
        return Report(family, "?", "manifest", problem=exc.message)
    assert permission is not None
    return Report(family, permission.mode, permission.source, list(permission.allow))

"""The one stage-card checker: the orchestrator checklist as code.

``autometta lint-card`` prints what :func:`lint_card` finds, ``add-stage``
and the one-shot ``dispatch``/``verify`` refuse a card with an error, and
:func:`queue_problems` is the queue-blocking subset of the same findings.
Each finding names ``file:line``, the rule and the fix.

Rules (:data:`RULES`); an *error* stops the card, a *warning* is advice:

``id``           the file name is a stage id and the title names the same stage
``placeholder``  no ``<<slot>>`` left and no ``TODO(autometta)`` text from ``new-card``
``sections``     ``## Deliverables`` and ``## Acceptance criteria`` exist (error);
                 Metadata, Objective, Inputs, Constraints, Out of scope (warning)
``identity``     a Worker and a Verifier line, each naming a known family
``pairing``      worker and verifier of different families, or a Pairing rationale
``script``       a Script worker or verifier has its ``Worker command``/``Verifier command``
``paths``        Inputs and Deliverables are repo-relative; Inputs exist, or are a
                 dependency's deliverable (a warning when the card has Depends on)
``home-path``    no ``/Users/<name>``, ``/home/<name>`` or ``~/`` anywhere
``budget``       the wall-clock lines parse (error); both are given (warning)
``criteria``     acceptance criteria are a numbered list, 1, 2, 3, ...
``max-loops``    ``Max loops`` is a whole number
``resume``       ``Resume`` is yes or no
``permissions``  ``Permission mode`` names modes its families have (docs/permissions.md)
``depends``      ``Depends on`` names stages that exist, not this one, and no cycle
``scope``        ``May also change`` globs are back-quoted and inside the repo (error); a glob
                 allowing every file, or a deliverable the acceptance command runs (warning)

Text inside HTML comments is never checked; fenced code is checked only for
home paths (a command with ``/home/me`` in it breaks on the next machine).
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from . import card as cards
from .errors import UserError
from .files import read_text

PathLike = Union[str, "os.PathLike[str]"]

ERROR = "error"
WARNING = "warning"

#: Every rule, with the one line ``lint-card --rules`` and the docs show.
RULES: Dict[str, str] = {
    "id": "the file name is a valid stage id and the title line names the same stage",
    "identity": "a Worker and a Verifier line, each naming a known agent family",
    "pairing": "worker and verifier come from different families, or a Pairing rationale says why not",
    "placeholder": "no unfilled <<placeholder>> and no TODO(autometta) text left by new-card",
    "sections": "## Deliverables and ## Acceptance criteria exist; Metadata, Objective, Inputs, "
                "Constraints and Out of scope are recommended",
    "script": "a Script worker or verifier has its Worker command / Verifier command line",
    "paths": "Inputs and Deliverables are repo-relative; every input exists (or a dependency delivers it)",
    "home-path": "no /Users/<name>, /home/<name> or ~/ paths anywhere in the card",
    "budget": "Worker and Verifier wall-clock lines are given and parse as durations",
    "criteria": "acceptance criteria are a numbered list starting at 1",
    "max-loops": "Max loops, when given, is a whole number",
    "resume": "Resume, when given, is yes or no",
    "permissions": "Permission mode, when given, names a mode each family has (claude: acceptEdits, auto, "
                   "dontAsk, bypass; codex: workspace-write, approve-for-me, bypass)",
    "depends": "Depends on names other stages that exist, with no cycle",
    "scope": "May also change lists back-quoted globs inside the repo; the card does not let the worker "
             "change the check that judges it",
}

#: Rules whose errors :func:`queue_problems` reports (what add-stage refused before the lint existed).
QUEUE_RULES = ("identity", "pairing", "placeholder", "permissions")

REQUIRED_SECTIONS = ("Deliverables", "Acceptance criteria")
RECOMMENDED_SECTIONS = ("Metadata", "Objective", "Inputs", "Constraints", "Out of scope")

#: What ``new-card`` writes where the author still has to write something.
TODO_MARK = "TODO(autometta)"

_HOME_PATH_RE = re.compile(
    r"(?<![\w.$/-])(?:/Users/[A-Za-z0-9_][^/\s`'\")]*|/home/[A-Za-z0-9_][^/\s`'\")]*|~[A-Za-z0-9_.-]*/)"
)
_NUMBERED_RE = re.compile(r"^\s{0,3}(\d+)[.)]\s+\S")
_ITEM_RE = re.compile(r"^\s{0,3}(?:[-*+]|\d+[.)])\s+\S")
_GLOB_CHARS = set("*?[")
#: The rule of a line the card's parser refuses, by how its message starts (the message quotes the line's
#: value, so it is matched at the start only: ``Resume 'over budget'`` is no budget finding).
_PARSE_RULES = (("Max loops ", "max-loops"), ("Resume ", "resume"),
                *((f"{role} wall-clock budget ", "budget") for role in cards.ROLES))

_WHERE_RE = re.compile(r"^(?P<path>.*?):(?P<line>\d+): (?P<message>.*)$", re.S)


@dataclass(frozen=True)
class Finding:
    path: str
    line: Optional[int]
    rule: str
    message: str
    severity: str = ERROR

    @property
    def where(self) -> str:
        """``path:line``, or ``path`` for a finding about the whole card."""
        return f"{self.path}:{self.line}" if self.line else self.path

    def __str__(self) -> str:
        note = "warning: " if self.severity == WARNING else ""
        return f"{self.path}:{self.line or 1}: {self.rule}: {note}{self.message}"

    def as_dict(self) -> Dict[str, object]:
        return {"path": self.path, "line": self.line or 1, "rule": self.rule,
                "severity": self.severity, "message": self.message}


def errors(findings: Iterable[Finding]) -> List[Finding]:
    return [f for f in findings if f.severity == ERROR]


def refuse_errors(findings: Sequence[Finding], say: Optional[Callable[[str], None]] = None, *,
                  show_warnings: bool = True) -> None:
    """Raise UserError naming the first error; ``say`` gets the other errors (and the warnings) first."""
    wrong = errors(findings)
    if say is not None:
        for finding in findings:
            if finding.severity == WARNING and not show_warnings:
                continue
            if not wrong or finding is not wrong[0]:
                say(str(finding))
    if wrong:
        more = f" (and {len(wrong) - 1} more above)" if len(wrong) > 1 else ""
        raise UserError(f"{wrong[0]}{more}")


# --------------------------------------------------------------------------
# Entry points


def lint_card(path: PathLike, repo: Optional[PathLike] = None, *,
              globs: Optional[Sequence[str]] = None) -> List[Finding]:
    """Read and check one card. ``repo`` is where its paths are relative to.

    Without ``repo`` the git work tree holding the card is used; outside any
    repo the existence of inputs is not checked. ``globs`` are the card globs
    used to resolve ``Depends on`` (default: the repo's defaults).
    """
    card_path = Path(path)
    try:
        text = read_text(card_path)
    except UserError as exc:
        return [Finding(str(card_path), None, "id", exc.message)]
    if repo is None:
        from .git.gitops import work_tree_top

        top = work_tree_top(card_path)
        repo = Path(top) if top else None
    return lint_text(text, card_path, repo, globs=globs)


def lint_text(text: str, path: PathLike, repo: Optional[PathLike] = None, *,
              globs: Optional[Sequence[str]] = None) -> List[Finding]:
    """Check card ``text`` as if read from ``path`` (pure, apart from the input checks under ``repo``)."""
    shown = str(Path(path))
    findings: List[Finding] = []
    stage_id = cards.stage_id_from_path(path)
    try:
        cards.check_stage_id(stage_id)
    except UserError as exc:
        findings.append(Finding(shown, None, "id", f"{exc.message}; rename the file"))
    card = _parse_tolerant(text, path, stage_id, findings)
    if card is None:
        return _sorted(findings)
    repo_path = Path(repo) if repo is not None else None
    for check in (_check_title, _check_identities, _check_pairing, _check_placeholders, _check_sections,
                  _check_script, _check_budget, _check_criteria, _check_home_paths, _check_permissions):
        findings.extend(check(card))
    findings.extend(_check_scope(card, repo_path))
    findings.extend(_check_depends_and_paths(card, repo_path, globs))
    # a budget line the parser refused is reported once, not again as "missing"
    refused = " ".join(f.message for f in findings if f.rule == "budget" and f.severity == ERROR).lower()
    findings = [f for f in findings if not (f.rule == "budget" and f.severity == WARNING
                                            and _budget_role(f.message) + " wall-clock budget" in refused)]
    return _sorted(findings)


def _budget_role(message: str) -> str:
    return "worker" if "'Worker wall-clock'" in message else "verifier"


def queue_problems(card: cards.Card) -> List[str]:
    """The queue-blocking errors as ``file:line: message`` lines (see :data:`QUEUE_RULES`)."""
    found: List[Finding] = []
    found.extend(_check_identities(card))
    found.extend(_check_pairing(card))
    found.extend(_check_placeholders(card))
    found.extend(_check_permissions(card))
    return [f"{f.where}: {f.message}" for f in found if f.severity == ERROR]


def _sorted(findings: List[Finding]) -> List[Finding]:
    order = {name: number for number, name in enumerate(RULES)}
    return sorted(findings, key=lambda f: (f.line or 0, order.get(f.rule, 99)))


# --------------------------------------------------------------------------
# Parsing that survives a bad line


def _parse_tolerant(text: str, path: PathLike, stage_id: str, findings: List[Finding]) -> Optional[cards.Card]:
    """Parse the card; each line the parser refuses becomes a finding and is skipped."""
    lines = text.splitlines()
    shown = str(Path(path))
    for _ in range(50):
        try:
            return cards.parse_card_text("\n".join(lines), path, stage_id=stage_id)
        except UserError as exc:
            match = _WHERE_RE.match(exc.message)
            if match is None or match.group("path") != shown:
                findings.append(Finding(shown, None, "id", exc.message))
                return None
            line = int(match.group("line"))
            message = match.group("message")
            rule = next((rule for start, rule in _PARSE_RULES if message.startswith(start)), "id")
            findings.append(Finding(shown, line, rule, message))
            if not 0 < line <= len(lines) or not lines[line - 1]:
                return None
            lines[line - 1] = ""
    return None


def _visible(card: cards.Card) -> List[Optional[str]]:
    return cards._scan(card.lines)[0]


def _section_span(card: cards.Card, prefix: str) -> Optional[Tuple[int, int]]:
    return cards._find_section(card.sections, prefix)


def _line_of(card: cards.Card, needle: str, span: Optional[Tuple[int, int]] = None) -> Optional[int]:
    start, end = span if span is not None else (0, len(card.lines))
    for index in range(start, end):
        if needle in card.lines[index]:
            return index + 1
    return None


# --------------------------------------------------------------------------
# The rules


def _check_title(card: cards.Card) -> List[Finding]:
    shown = str(card.path)
    line = card.meta_lines.get("title")
    if line is None:
        return [Finding(shown, None, "id", f"no '# Stage card {card.stage_id}: <title>' line; the commit subject "
                                           "falls back to the stage id", WARNING)]
    title = card.lines[line - 1].strip()
    match = re.match(r"^# Stage card ([^:]+):", title)
    if match is None:
        return [Finding(shown, line, "id", f"title does not name the stage; write it as "
                                           f"'# Stage card {card.stage_id}: {card.title or '<title>'}'", WARNING)]
    named = match.group(1).strip()
    if named == card.stage_id or card.stage_id.startswith(named + "-"):
        return []
    return [Finding(shown, line, "id", f"title names stage {named!r} but the file is {card.stage_id}.md; "
                                       f"make them agree (the file name is the stage id)")]


def _check_identities(card: cards.Card) -> List[Finding]:
    out: List[Finding] = []
    shown = str(card.path)
    for role in cards.ROLES:
        identity = card.worker if role == "worker" else card.verifier
        label = role.capitalize()
        line = card.meta_lines.get(role)
        if not identity:
            out.append(Finding(shown, line, "identity",
                               f"no {label} identity; add '- **{label}:** <identity>' under ## Metadata, "
                               f"e.g. '- **{label}:** Codex GPT-5.3 <codex-gpt-5-3@local>'"))
            continue
        if cards._placeholders(identity) or TODO_MARK in identity:
            continue  # reported by the placeholder rule
        from .families import family_of, naming_hint

        if family_of(identity) is None:
            out.append(Finding(shown, line, "identity",
                               f"{role} {cards._shorten(identity)!r} names no known agent family; "
                               f"the identity must {naming_hint()}"))
    return out


def _family(identity: Optional[str]) -> Optional[str]:
    if not identity or cards._placeholders(identity) or TODO_MARK in identity:
        return None
    from .families import family_of

    return family_of(identity)


def _runs_card_command(identity: Optional[str]) -> bool:
    from .families import FAMILIES

    family = FAMILIES.get(_family(identity) or "")
    return family is not None and family.runs_card_command


def _check_pairing(card: cards.Card) -> List[Finding]:
    worker, verifier = _family(card.worker), _family(card.verifier)
    if worker is None or worker != verifier:
        return []
    reason = (card.pairing_reason or "").strip()
    if reason and not cards._PLACEHOLDER_RE.search(reason) and TODO_MARK not in reason:
        return []
    return [Finding(str(card.path), card.meta_lines.get("verifier"), "pairing",
                    f"worker and verifier are both {worker}; pick a verifier from another family or add "
                    "'- **Pairing rationale:** <why>' under ## Metadata")]


def _check_placeholders(card: cards.Card) -> List[Finding]:
    out: List[Finding] = []
    for index, line in enumerate(_visible(card)):
        if line is None:
            continue
        found = cards._unique(cards._placeholders(line))
        if found:
            out.append(Finding(str(card.path), index + 1, "placeholder",
                               f"unfilled placeholder {', '.join(found)}; replace it before queueing the card"))
        if TODO_MARK in line:
            out.append(Finding(str(card.path), index + 1, "placeholder",
                               f"{TODO_MARK} text from new-card is still here; write the real content"))
    return out


def _check_sections(card: cards.Card) -> List[Finding]:
    out: List[Finding] = []
    for name in REQUIRED_SECTIONS:
        if _section_span(card, name) is None:
            out.append(Finding(str(card.path), None, "sections",
                               f"no '## {name}' section; the verifier judges the stage against it"))
    for name in RECOMMENDED_SECTIONS:
        if _section_span(card, name) is None:
            out.append(Finding(str(card.path), None, "sections",
                               f"no '## {name}' section (see templates/stage-card.md)", WARNING))
    return out


def _check_script(card: cards.Card) -> List[Finding]:
    out: List[Finding] = []
    for role in cards.ROLES:
        identity = card.worker if role == "worker" else card.verifier
        command = card.worker_command if role == "worker" else card.verifier_command
        if _runs_card_command(identity) and not command:
            label = role.capitalize()
            out.append(Finding(str(card.path), card.meta_lines.get(role), "script",
                               f"a Script {role} runs the card's shell command; add "
                               f"'- **{label} command:** `<command>`' under ## Metadata"))
    return out


def _check_budget(card: cards.Card) -> List[Finding]:
    out: List[Finding] = []
    for role in cards.ROLES:
        seconds = card.worker_budget_seconds if role == "worker" else card.verifier_budget_seconds
        line = card.meta_lines.get(f"{role}_budget")
        label = f"{role.capitalize()} wall-clock"
        if seconds is not None:
            continue
        if line is None:
            out.append(Finding(str(card.path), None, "budget",
                               f"no '{label}' line under ## Budget; the tick uses "
                               f"{cards.DEFAULT_BUDGET_SECONDS} s", WARNING))
        elif not cards._placeholders(card.lines[line - 1]) and TODO_MARK not in card.lines[line - 1]:
            out.append(Finding(str(card.path), line, "budget",
                               f"cannot read a duration from {card.lines[line - 1].strip()!r}; "
                               f"write it like '- **{label}:** 20 minutes'"))
    return out


def _check_criteria(card: cards.Card) -> List[Finding]:
    span = _section_span(card, "Acceptance criteria")
    if span is None:
        return []
    visible = _visible(card)
    numbers: List[Tuple[int, int]] = []
    items: List[int] = []
    for index in range(span[0] + 1, span[1]):
        line = visible[index]
        if line is None:
            continue
        match = _NUMBERED_RE.match(line)
        if match:
            numbers.append((int(match.group(1)), index + 1))
        elif _ITEM_RE.match(line):
            items.append(index + 1)
    shown = str(card.path)
    if not numbers:
        return [Finding(shown, items[0] if items else span[0] + 1, "criteria",
                        "acceptance criteria are not a numbered list; write them as '1. ...', '2. ...' "
                        "so the verifier's criterion ids match")]
    out = []
    for expected, (number, line) in enumerate(numbers, start=1):
        if number != expected:
            out.append(Finding(shown, line, "criteria",
                               f"criterion numbered {number} where {expected} was expected; number them "
                               "1, 2, 3, ... (the verifier reports them by number)", WARNING))
            break
    return out


def _check_permissions(card: cards.Card) -> List[Finding]:
    from .agents.privilege import card_modes

    if not card.permission_mode or cards._placeholders(card.permission_mode) or TODO_MARK in card.permission_mode:
        return []
    try:
        card_modes(card)
    except UserError as exc:
        message = exc.message.split(": ", 1)[1] if exc.message.startswith(card.where("permission_mode")) else exc.message
        return [Finding(str(card.path), card.meta_lines.get("permission_mode"), "permissions", message)]
    return []


def _check_home_paths(card: cards.Card) -> List[Finding]:
    out: List[Finding] = []
    visible, kinds = cards._scan(card.lines)
    for index, line in enumerate(card.lines):
        text = visible[index] if kinds[index] == "text" else line
        if text is None:
            continue
        match = _HOME_PATH_RE.search(text)
        if match:
            out.append(Finding(str(card.path), index + 1, "home-path",
                               f"{match.group(0)!r} is a path on one machine; use a path relative to the "
                               "repo root so the card works in every clone"))
    return out


def _check_scope(card: cards.Card, repo: Optional[Path]) -> List[Finding]:
    """The ``May also change`` bullet (autometta.git.scope) and what the acceptance command would let change."""
    from .git import scope

    out: List[Finding] = []
    shown = str(card.path)
    line = card.meta_lines.get("may_also_change")
    if line is not None and not card.may_also_change and not cards._placeholders(card.lines[line - 1]) \
            and TODO_MARK not in card.lines[line - 1]:
        out.append(Finding(shown, line, "scope", "May also change lists nothing; give back-quoted globs, "
                                                 "e.g. '- **May also change:** `docs/**`, `*.lock`'"))
    for entry in card.may_also_change:
        if cards._placeholders(entry) or TODO_MARK in entry or _HOME_PATH_RE.search(entry):
            continue  # the placeholder and home-path rules report these
        if scope.normalise(entry) is None:
            out.append(Finding(shown, line, "scope", f"May also change entry {entry!r} is absolute or leaves the "
                                                     "repo; write globs relative to the repo root"))
        elif scope.normalise(entry) in ("**", "*", ""):
            out.append(Finding(shown, line, "scope", f"May also change entry {entry!r} allows every file, so "
                                                     "only protected paths are checked; name what may change",
                               WARNING))
    if repo is not None and card.acceptance_command:
        named = set(scope.command_paths(card.acceptance_command))
        for token in card.deliverables:
            normal = scope.normalise(token)
            if normal and normal in named and os.path.isfile(os.path.join(str(repo), normal)):
                out.append(Finding(shown, _line_of(card, f"`{token}`", _section_span(card, "Deliverables")),
                                   "scope", f"deliverable {token!r} is a file the acceptance command runs: the "
                                            "worker may change the check that judges it", WARNING))
    return out


# ---------------------------------------------------------------- paths, depends


def _path_like(token: str) -> bool:
    """Whether a back-quoted token in Inputs/Deliverables is meant as a file path."""
    if not token or token.startswith("-") or "://" in token or any(c in token for c in "()<>{}=$|;&\"'"):
        return False
    return "/" in token or "." in token.strip(".")


def _dependency_cards(card: cards.Card, repo: Optional[Path],
                      globs: Optional[Sequence[str]]) -> Tuple[List[Finding], List[cards.Card]]:
    out: List[Finding] = []
    found: List[cards.Card] = []
    if not card.depends_on:
        return out, found
    line = card.meta_lines.get("depends_on")
    shown = str(card.path)
    # the repo's cards (as the tick finds them), then the card's own folder (a backlog kept elsewhere)
    known: Dict[str, Path] = dict(cards.list_cards(repo, globs)) if repo is not None else {}
    for other in sorted(Path(card.path).parent.glob("*.md")):
        if cards.is_valid_stage_id(other.stem):
            known.setdefault(other.stem, other)
    for reference in card.depends_on:
        resolved = cards.resolve_dependency(reference, known)
        if resolved == card.stage_id or reference == card.stage_id:
            out.append(Finding(shown, line, "depends", f"the stage depends on itself ({reference}); remove it"))
            continue
        if resolved is None:
            out.append(Finding(shown, line, "depends",
                               f"depends on {reference!r}, but no card in the repo's card folders has that id",
                               WARNING))
            continue
        try:
            found.append(cards.parse_card(known[resolved]))
        except UserError:
            pass  # that card's own lint reports it
    cycle = dependency_cycle(card, known)
    if cycle:
        out.append(Finding(shown, line, "depends", f"the dependencies form a cycle: {' -> '.join(cycle)}; "
                                                   "remove one of these Depends on entries"))
    return out, found


def dependency_cycle(card: cards.Card, known: Dict[str, Path]) -> Optional[List[str]]:
    """A path of ``Depends on`` links from ``card`` back to itself (``a -> b -> a``), or None.

    ``known`` maps stage ids to card files; only cycles through ``card`` are
    reported (another cycle is reported by the lint of a card on it).
    """
    edges: Dict[str, List[str]] = {}

    def after(stage_id: str) -> List[str]:
        if stage_id not in edges:
            refs: List[str] = card.depends_on if stage_id == card.stage_id else []
            if stage_id != card.stage_id:
                try:
                    refs = cards.parse_card(known[stage_id]).depends_on
                except (UserError, KeyError):
                    refs = []
            resolved = (cards.resolve_dependency(ref, known) for ref in refs)
            edges[stage_id] = [r for r in resolved if r is not None and r != stage_id]
        return edges[stage_id]

    path = [card.stage_id]
    seen = {card.stage_id}
    stack = [iter(after(card.stage_id))]
    while stack:
        step = next(stack[-1], None)
        if step is None:
            stack.pop()
            path.pop()
            continue
        if step == card.stage_id:
            return path + [step]
        if step in seen:
            continue
        seen.add(step)
        path.append(step)
        stack.append(iter(after(step)))
    return None


def _check_depends_and_paths(card: cards.Card, repo: Optional[Path],
                             globs: Optional[Sequence[str]]) -> List[Finding]:
    out, dependencies = _dependency_cards(card, repo, globs)
    delivered = {os.path.normpath(d) for dep in dependencies for d in dep.deliverables}
    shown = str(card.path)
    for section, tokens in (("Inputs", card.inputs), ("Deliverables", card.deliverables)):
        span = _section_span(card, section)
        for token in tokens:
            if not _path_like(token):
                continue
            line = _line_of(card, f"`{token}`", span)
            if _HOME_PATH_RE.search(token):
                continue  # the home-path rule reports it
            if os.path.isabs(token) or token.startswith("~"):
                out.append(Finding(shown, line, "paths",
                                   f"{section.lower()} path {token!r} is absolute; write it relative to the repo root"))
                continue
            normal = os.path.normpath(token)
            if normal == ".." or normal.startswith("../"):
                out.append(Finding(shown, line, "paths",
                                   f"{section.lower()} path {token!r} leaves the repo; keep paths inside it"))
                continue
            if section != "Inputs" or repo is None or normal in delivered or _exists(repo, token):
                continue
            if card.depends_on:  # an earlier stage may create it without listing it as a deliverable
                out.append(Finding(shown, line, "paths",
                                   f"input {token!r} does not exist in {repo} yet and no stage under Depends on "
                                   "lists it as a deliverable; make sure one creates it", WARNING))
            else:
                out.append(Finding(shown, line, "paths",
                                   f"input {token!r} does not exist in {repo}; fix the path, or name the stage "
                                   "that creates it under '- **Depends on:**'"))
    return out


def _exists(repo: Path, token: str) -> bool:
    if any(c in _GLOB_CHARS for c in token):
        return bool(glob.glob(os.path.join(glob.escape(str(repo)), token), recursive=True))
    return os.path.lexists(os.path.join(str(repo), token))

"""Stage cards: the id rule, parsing, budgets, lookup and queue checks.

A stage card is a Markdown file named ``<stage-id>.md`` (spec §3.7). The
headings and the metadata bullets are load-bearing; everything else is prose
for the agents. This module reads a card into a :class:`Card` once, so every
command (tick, spawn, add-stage, list-cards, status) sees the same values.

Differences from the bash version, on purpose:

* **One budget parser** (spec §15 item 17). Bash's tick read seconds first
  from the 5 lines after ``## Budget``; the spawn scripts read minutes first
  from the first matching line anywhere (which, on a card quoting the label
  in its prose, is the wrong line). Here both roles use the whole ``## Budget``
  section first, then a bullet-shaped label line anywhere, then any line; and
  hours, days, fractions and compound values (``1h 30m``) are understood. A
  negative, zero or absurd (over 7 days) budget is an error naming
  ``file:line``; unreadable text (``n/a``) gives ``None`` and the caller falls
  back to :data:`DEFAULT_BUDGET_SECONDS` with a warning (see
  :func:`budget_seconds`).
* Text inside HTML comments and fenced code blocks is not metadata, not a
  heading and not an unfilled placeholder (the template's own comment says
  "fill in every <<placeholder>>"). Bash grepped whole lines regardless.
* Placeholders inside inline code (a card *about* templates writes
  ```<<stage-id>>```) are not reported as unfilled.
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from .errors import UserError
from .files import read_text
from .stageid import STAGE_ID_RE

PathLike = Union[str, "os.PathLike[str]"]

MAX_STAGE_ID_LENGTH = 100

#: Globs every repo gets after the manifest's own ``stage_card_globs``.
DEFAULT_CARD_GLOBS = ("docs/stages/*.md", "examples/self-host/*.md")
#: Folders searched by the substring fallback of :func:`find_card`, in order.
FALLBACK_CARD_DIRS = ("docs/stages", "examples/self-host")

#: What bash used when a card's worker budget could not be read.
DEFAULT_BUDGET_SECONDS = 600
#: Longer than this is a typo, not a budget.
MAX_BUDGET_SECONDS = 7 * 24 * 3600

ROLES = ("worker", "verifier")

_ID_HINT = "must look like 05a-short-name (two digits, optional lowercase letters, a dash, lowercase words)"


# --------------------------------------------------------------------------
# Stage ids


def check_stage_id(stage_id: str, source: Optional[PathLike] = None) -> str:
    """Return ``stage_id`` if valid, else raise :class:`UserError`.

    ``source`` (a card path, a state file, ``--stage``) prefixes the message:
    ``docs/stages/Bad Id.md: stage id 'Bad Id' must look like 05a-short-name
    (...)``. The whole string must match :data:`STAGE_ID_RE` (a trailing
    newline is not forgiven), and ids are at most 100 characters, since they
    become file names and branch-safe log names.
    """
    prefix = f"{source}: " if source not in (None, "") else ""
    text = stage_id if isinstance(stage_id, str) else str(stage_id)
    if len(text) > MAX_STAGE_ID_LENGTH:
        shown = repr(text[:40] + "...")
        raise UserError(
            f"{prefix}stage id {shown} is {len(text)} characters long; "
            f"keep it to {MAX_STAGE_ID_LENGTH} or fewer, like 05a-short-name"
        )
    if not STAGE_ID_RE.fullmatch(text):
        raise UserError(f"{prefix}stage id {text!r} {_ID_HINT}")
    return text


def is_valid_stage_id(stage_id: str) -> bool:
    return (
        isinstance(stage_id, str)
        and len(stage_id) <= MAX_STAGE_ID_LENGTH
        and STAGE_ID_RE.fullmatch(stage_id) is not None
    )


def _card_stem(name: str) -> str:
    """Basename minus ``.md``, like bash's ``basename "$f" .md``."""
    return name[:-3] if name.endswith(".md") and len(name) > 3 else name


def stage_id_from_path(path: PathLike) -> str:
    """The (unvalidated) stage id a card file name declares."""
    return _card_stem(os.path.basename(os.fspath(path)))


# --------------------------------------------------------------------------
# Durations


_UNIT_SECONDS = {
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
}
_COMPONENT = (
    r"(?P<num>\d+(?:\.\d+)?|\.\d+)\s*"
    r"(?P<unit>seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h|days?|d)(?![A-Za-z])"
)
_FIRST_COMPONENT_RE = re.compile(r"(?<![\w.])" + _COMPONENT, re.IGNORECASE)
_NEXT_COMPONENT_RE = re.compile(r"\s*(?:,\s*|and\s+)?" + _COMPONENT, re.IGNORECASE)
_MINUS_SIGNS = "-\u2212"


def parse_duration(text: Optional[str], where: str = "", what: str = "duration") -> Optional[int]:
    """Seconds in the first duration written in ``text``, or ``None``.

    Accepts ``45s``, ``45 seconds``, ``20m``, ``20 min``, ``20 minutes``,
    ``1h``, ``1 hour``, ``1.5 hours``, ``2 days`` and compounds with falling
    units (``1h 30m``, ``1 hour and 30 minutes``, ``1h30m``). Text around it
    is ignored (``12 minutes (surgical edits)`` is 720); in a range such as
    ``10-15 minutes`` the upper bound is read. A bare number has no unit and
    gives ``None``, as does text with no duration at all (``n/a``).

    Zero, negative (``-5m``) and more than 7 days raise :class:`UserError`,
    prefixed with ``where`` (e.g. ``card.md:12``) and naming ``what``.
    """
    if not text:
        return None
    first = _FIRST_COMPONENT_RE.search(text)
    if first is None:
        return None
    start = first.start("num")
    negative = _minus_before(text, start)
    if negative:
        start -= 1
    total = _component_seconds(first)
    last_unit = _UNIT_SECONDS[first.group("unit").lower()]
    end = first.end()
    while True:
        following = _NEXT_COMPONENT_RE.match(text, end)
        if following is None:
            break
        unit = _UNIT_SECONDS[following.group("unit").lower()]
        if unit >= last_unit:
            break
        total += _component_seconds(following)
        last_unit = unit
        end = following.end()
    shown = text[start:end].strip()
    prefix = f"{where}: " if where else ""
    if negative or total <= 0:
        raise UserError(f"{prefix}{what} {shown!r} must be more than zero; write it like '20 minutes'")
    if total > MAX_BUDGET_SECONDS:
        raise UserError(
            f"{prefix}{what} {shown!r} is more than 7 days; write it like '20 minutes' or '2 hours'"
        )
    return max(1, int(round(total)))


def _component_seconds(match: "re.Match[str]") -> float:
    return float(match.group("num")) * _UNIT_SECONDS[match.group("unit").lower()]


def _minus_before(text: str, index: int) -> bool:
    """A minus sign glued to the number and not part of a range or word."""
    if index == 0 or text[index - 1] not in _MINUS_SIGNS:
        return False
    return index == 1 or not text[index - 2].isalnum()


# --------------------------------------------------------------------------
# Markdown scanning


_FENCE_RE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_FENCE_CLOSE_RE = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*$")
_HEADING2_RE = re.compile(r"^## +(.+?)(?:\s+#+)?\s*$")
_TITLE_RE = re.compile(r"^# (.*)$")
_STAGE_TITLE_RE = re.compile(r"^# Stage card [^:]+: (.+)$")
_PANEL_RE = re.compile(r"^\s*-\s*\*\*Verifier panel:\*\*\s*true", re.IGNORECASE)
_CODE_SPAN_RE = re.compile(r"(`+)(.+?)(?<!`)\1(?!`)")
_PLACEHOLDER_RE = re.compile(r"<<[A-Za-z0-9][A-Za-z0-9@._/-]*>>")


def _bullet_re(label: str) -> "re.Pattern[str]":
    """``- **Label:** value`` (also ``* **Label:**`` and ``- **Label**:``)."""
    return re.compile(
        r"^[-*][ \t]+\*\*" + re.escape(label) + r"(?::\*\*|\*\*[ \t]*:)(?:[ \t](.*)|)$",
        re.IGNORECASE,
    )


_WORKER_RE = _bullet_re("Worker")
_VERIFIER_RE = _bullet_re("Verifier")
_ORCHESTRATOR_RE = _bullet_re("Orchestrator")
_RATIONALE_RE = _bullet_re("Pairing rationale")
_DEPENDS_BULLET_RE = _bullet_re("Depends on")
_DEPENDS_LOOSE_RE = re.compile(
    r"^\s*(?:[-*+][ \t]+)?(?:\*\*)?Depends on(?:\*\*)?[ \t]*:(?:\*\*)?[ \t]*(.*)$", re.IGNORECASE
)
_ACCEPTANCE_RE = _bullet_re("Acceptance command")
_WORKER_COMMAND_RE = _bullet_re("Worker command")
_VERIFIER_COMMAND_RE = _bullet_re("Verifier command")
_MAX_LOOPS_RE = _bullet_re("Max loops")
_RESUME_RE = _bullet_re("Resume")
_PERMISSION_MODE_RE = _bullet_re("Permission mode")
_YES, _NO = ("yes", "true", "on"), ("no", "false", "off")
_ALLOWED_COMMANDS_RE = _bullet_re("Allowed commands")
_MAY_ALSO_RE = _bullet_re("May also change")
_WALL_CLOCK_RE = {
    "worker": re.compile(r"worker\s+wall[- ]?clock", re.IGNORECASE),
    "verifier": re.compile(r"verifier\s+wall[- ]?clock", re.IGNORECASE),
}
_WALL_CLOCK_LABEL_RE = {
    role: re.compile(r"^\s*(?:[-*+][ \t]+)?(?:\*\*)?\s*" + role + r"\s+wall[- ]?clock", re.IGNORECASE)
    for role in ROLES
}
_DEP_TOKEN_RE = re.compile(r"(?<![\w.-])([0-9]{2}[a-z]*(?:-[a-z0-9]+)*)(?![\w.])")


def _scan(lines: Sequence[str]) -> Tuple[List[Optional[str]], List[str]]:
    """Split a card into prose and code.

    Returns ``(visible, kinds)``. ``visible[i]`` is line ``i`` with HTML
    comments cut out, or ``None`` for fence lines and fenced code;
    ``kinds[i]`` is ``"text"``, ``"open"``, ``"code"`` or ``"close"``.
    """
    visible: List[Optional[str]] = []
    kinds: List[str] = []
    in_comment = False
    fence: Optional[str] = None
    for line in lines:
        if fence is not None:
            closing = _FENCE_CLOSE_RE.match(line)
            if closing and closing.group(1)[0] == fence[0] and len(closing.group(1)) >= len(fence):
                fence = None
                kinds.append("close")
            else:
                kinds.append("code")
            visible.append(None)
            continue
        opening = None if in_comment else _FENCE_RE.match(line)
        if opening:
            fence = opening.group(1)
            kinds.append("open")
            visible.append(None)
            continue
        out: List[str] = []
        pos = 0
        spans = [match.span() for match in _CODE_SPAN_RE.finditer(line)] if "`" in line else []
        while True:
            if in_comment:
                close = line.find("-->", pos)
                if close < 0:
                    break
                in_comment = False
                pos = close + 3
            else:
                open_ = line.find("<!--", pos)
                while open_ >= 0 and any(lo <= open_ < hi for lo, hi in spans):
                    open_ = line.find("<!--", open_ + 4)  # `<!--` written as code
                if open_ < 0:
                    out.append(line[pos:])
                    break
                out.append(line[pos:open_])
                in_comment = True
                pos = open_ + 4
        kinds.append("text")
        visible.append("".join(out))
    return visible, kinds


def _sections(visible: Sequence[Optional[str]]) -> Dict[str, Tuple[int, int]]:
    heads: List[Tuple[str, int]] = []
    for index, text in enumerate(visible):
        if text is None:
            continue
        match = _HEADING2_RE.match(text)
        if match:
            heads.append((match.group(1).strip(), index))
    result: Dict[str, Tuple[int, int]] = {}
    for number, (name, start) in enumerate(heads):
        end = heads[number + 1][1] if number + 1 < len(heads) else len(visible)
        result.setdefault(name, (start, end))
    return result


def _find_section(sections: Mapping[str, Tuple[int, int]], prefix: str) -> Optional[Tuple[int, int]]:
    """The first section (in file order) whose heading starts with ``prefix``."""
    wanted = prefix.lower()
    found = [span for name, span in sections.items() if name.lower().startswith(wanted)]
    return min(found) if found else None


def _code_spans(text: str) -> List[str]:
    return [match.group(2).strip() for match in _CODE_SPAN_RE.finditer(text)]


def _without_code_spans(text: str) -> str:
    return _CODE_SPAN_RE.sub(" ", text)


def _unique(items: Iterable[str]) -> List[str]:
    seen: Dict[str, None] = {}
    for item in items:
        if item and item not in seen:
            seen[item] = None
    return list(seen)


# --------------------------------------------------------------------------
# The card


@dataclass
class Card:
    """A parsed stage card. Line numbers in ``meta_lines`` are 1-based.

    ``sections`` maps each ``## `` heading (text after ``## ``, first
    occurrence) to ``(start, end)``: 0-based indices into ``lines`` where
    ``lines[start]`` is the heading and the body is ``lines[start + 1:end]``.
    """

    path: Path
    stage_id: str
    title: Optional[str] = None
    worker: Optional[str] = None
    verifier: Optional[str] = None
    orchestrator: Optional[str] = None
    panel: bool = False
    worker_budget_seconds: Optional[int] = None
    verifier_budget_seconds: Optional[int] = None
    deliverables: List[str] = field(default_factory=list)
    inputs: List[str] = field(default_factory=list)
    depends_on: List[str] = field(default_factory=list)
    acceptance_command: Optional[str] = None
    #: The shell commands a ``Script ...`` worker or verifier runs
    #: (``- **Worker command:** `...` ``); other families ignore them.
    worker_command: Optional[str] = None
    verifier_command: Optional[str] = None
    max_loops: Optional[int] = None
    #: ``- **Resume:** no``: a worker sent back starts a new session instead of continuing its own
    #: (autometta.resume); None when the card does not say.
    resume: Optional[bool] = None
    #: ``- **Permission mode:** claude dontAsk, codex bypass`` as written (read by
    #: :func:`autometta.agents.privilege.card_modes`), and ``- **Allowed commands:** `npm test` ``:
    #: what this stage's agents may run besides its acceptance command (autometta.agents.privilege).
    permission_mode: Optional[str] = None
    allowed_commands: List[str] = field(default_factory=list)
    #: Globs of files the worker may change besides its deliverables (``- **May also change:** `a/**` ``);
    #: see autometta.git.scope.
    may_also_change: List[str] = field(default_factory=list)
    pairing_reason: Optional[str] = None
    sections: Dict[str, Tuple[int, int]] = field(default_factory=dict)
    lines: List[str] = field(default_factory=list)
    #: Where each metadata value came from: keys ``title``, ``worker``,
    #: ``verifier``, ``orchestrator``, ``panel``, ``pairing_reason``,
    #: ``depends_on``, ``acceptance_command``, ``worker_command``,
    #: ``verifier_command``, ``max_loops``, ``resume``, ``permission_mode``, ``allowed_commands``, ``may_also_change``,
    #: ``worker_budget``, ``verifier_budget``.
    meta_lines: Dict[str, int] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        """The commit-subject fallback: the title, else the stage id."""
        return self.title or self.stage_id

    def section_body(self, prefix: str) -> List[str]:
        """Body lines of the first section whose heading starts with ``prefix``."""
        span = _find_section(self.sections, prefix)
        return [] if span is None else self.lines[span[0] + 1:span[1]]

    def where(self, key: str) -> str:
        """``path:line`` for a metadata key, or just ``path``."""
        line = self.meta_lines.get(key)
        return f"{self.path}:{line}" if line else f"{self.path}"


def parse_card(path: PathLike) -> Card:
    """Read and parse a card; the stage id comes from the file name."""
    card_path = Path(path)
    stage_id = check_stage_id(stage_id_from_path(card_path), card_path)
    return parse_card_text(read_text(card_path), card_path, stage_id=stage_id)


def parse_card_text(text: str, path: PathLike, stage_id: Optional[str] = None) -> Card:
    """Parse card text (pure). ``stage_id`` defaults to the validated file name."""
    card_path = Path(path)
    if stage_id is None:
        stage_id = check_stage_id(stage_id_from_path(card_path), card_path)
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.splitlines()
    if "\0" in text:  # it would reach a command line, a prompt or a commit, which the system refuses
        line = next(n for n, body in enumerate(lines, 1) if "\0" in body)
        raise UserError(f"{card_path}:{line}: holds a NUL character; a stage card is plain text")
    visible, kinds = _scan(lines)
    sections = _sections(visible)
    card = Card(path=card_path, stage_id=stage_id, sections=sections, lines=lines)
    meta = card.meta_lines

    def first_bullet(pattern: "re.Pattern[str]", key: str) -> Optional[str]:
        for index, line in enumerate(visible):
            if line is None:
                continue
            match = pattern.match(line)
            if match:
                meta[key] = index + 1
                return (match.group(1) or "").strip()
        return None

    # Title.
    for index, line in enumerate(visible):
        if line is None:
            continue
        match = _TITLE_RE.match(line.rstrip())
        if match:
            stage_title = _STAGE_TITLE_RE.match(line.rstrip())
            card.title = (stage_title.group(1) if stage_title else match.group(1)).strip() or None
            meta["title"] = index + 1
            break

    card.worker = first_bullet(_WORKER_RE, "worker") or None
    card.verifier = first_bullet(_VERIFIER_RE, "verifier") or None
    card.orchestrator = first_bullet(_ORCHESTRATOR_RE, "orchestrator") or None
    card.pairing_reason = first_bullet(_RATIONALE_RE, "pairing_reason")

    for index, line in enumerate(visible):
        if line is not None and _PANEL_RE.match(line):
            card.panel = True
            meta["panel"] = index + 1
            break

    card.depends_on = _depends_on(visible, sections, meta)

    def command_bullet(pattern: "re.Pattern[str]", key: str) -> Optional[str]:
        """The first code span of the bullet's value, else the whole value."""
        command = first_bullet(pattern, key)
        if not command:
            return None
        spans = _code_spans(command)
        return (spans[0] if spans else command).strip() or None

    card.acceptance_command = command_bullet(_ACCEPTANCE_RE, "acceptance_command")
    if card.acceptance_command is None:
        card.acceptance_command = _acceptance_block(kinds, lines, sections, meta)
    card.worker_command = command_bullet(_WORKER_COMMAND_RE, "worker_command")
    card.verifier_command = command_bullet(_VERIFIER_COMMAND_RE, "verifier_command")

    card.permission_mode = first_bullet(_PERMISSION_MODE_RE, "permission_mode") or None
    allowed = first_bullet(_ALLOWED_COMMANDS_RE, "allowed_commands")
    if allowed:
        spans = _code_spans(allowed)
        card.allowed_commands = _unique(s.strip() for s in (spans or allowed.split(",")))

    loops = first_bullet(_MAX_LOOPS_RE, "max_loops")
    if loops and not _PLACEHOLDER_RE.search(loops):
        match = re.match(r"\s*(\d+)(?![\d.])", loops)
        if not match:
            raise UserError(
                f"{card.where('max_loops')}: Max loops {loops!r} is not a whole number; "
                "write it like '- **Max loops:** 3'"
            )
        card.max_loops = int(match.group(1))

    resume = first_bullet(_RESUME_RE, "resume")
    if resume and not _PLACEHOLDER_RE.search(resume):
        word = resume.strip().strip("`").lower()
        if word not in _YES + _NO:
            raise UserError(f"{card.where('resume')}: Resume {resume!r} is not yes or no; "
                            "write it like '- **Resume:** no'")
        card.resume = word in _YES

    for role in ROLES:
        index = _budget_line(visible, sections, role)
        if index is None:
            continue
        meta[f"{role}_budget"] = index + 1
        seconds = parse_duration(
            _budget_value(visible[index] or "", role),
            where=f"{card_path}:{index + 1}",
            what=f"{role} wall-clock budget",
        )
        if role == "worker":
            card.worker_budget_seconds = seconds
        else:
            card.verifier_budget_seconds = seconds

    card.may_also_change = _may_also_change(visible, meta)
    card.deliverables = _section_tokens(visible, sections, "Deliverables", skip=_MAY_ALSO_RE)
    card.inputs = _section_tokens(visible, sections, "Inputs")
    return card


def _section_tokens(visible: Sequence[Optional[str]], sections: Mapping[str, Tuple[int, int]], prefix: str,
                    skip: Optional["re.Pattern[str]"] = None) -> List[str]:
    """Back-quoted tokens without whitespace, in order, de-duplicated (lines matching ``skip`` are not read)."""
    span = _find_section(sections, prefix)
    if span is None:
        return []
    tokens: List[str] = []
    for line in visible[span[0] + 1:span[1]]:
        if line is None or (skip is not None and skip.match(line)):
            continue
        tokens.extend(token for token in _code_spans(line) if token and not any(c.isspace() for c in token))
    return _unique(tokens)


def _may_also_change(visible: Sequence[Optional[str]], meta: Dict[str, int]) -> List[str]:
    """The globs of every ``May also change`` bullet: its code spans, else its comma-separated words."""
    values: List[str] = []
    for index, line in enumerate(visible):
        match = _MAY_ALSO_RE.match(line) if line is not None else None
        if match is None:
            continue
        meta.setdefault("may_also_change", index + 1)
        text = match.group(1) or ""
        spans = _code_spans(text)
        values.extend(spans if spans else [w.strip() for w in re.split(r"[,\s]+", text) if w.strip()])
    return _unique(v for v in values if not any(c.isspace() for c in v))


def _depends_on(visible: Sequence[Optional[str]], sections: Mapping[str, Tuple[int, int]], meta: Dict[str, int]) -> List[str]:
    metadata = _find_section(sections, "Metadata")
    values: List[str] = []
    for index, line in enumerate(visible):
        if line is None:
            continue
        match = _DEPENDS_BULLET_RE.match(line)
        if match is None and metadata is not None and metadata[0] < index < metadata[1]:
            match = _DEPENDS_LOOSE_RE.match(line)
        if match:
            meta.setdefault("depends_on", index + 1)
            values.extend(parse_depends(match.group(1) or ""))
    return _unique(values)


def parse_depends(value: str) -> List[str]:
    """Stage references in a ``Depends on`` value, as written.

    ``01-a, 02-b`` gives both ids. Real cards write prose, e.g. ``15b (rubric
    schema) and 17 (handoff envelope). Independent of 18 (panel).``: code
    spans and parenthesised remarks are dropped and only the first sentence
    is read, giving ``["15b", "17"]``. Entries are full ids or short
    references (``15c``); see :func:`resolve_dependency`.
    """
    text = _without_code_spans(value)
    previous = None
    while previous != text:
        previous = text
        text = re.sub(r"\([^()]*\)", " ", text)
    text = re.split(r"[.!?](?:\s|$)", text, maxsplit=1)[0]
    return _unique(_DEP_TOKEN_RE.findall(text))


def resolve_dependency(reference: str, known_ids: Iterable[str]) -> Optional[str]:
    """A ``Depends on`` entry to a stage id: exact, else the one id starting ``<ref>-``."""
    ids = list(known_ids)
    if reference in ids:
        return reference
    matches = [stage_id for stage_id in ids if stage_id.startswith(reference + "-")]
    return matches[0] if len(matches) == 1 else None


def _acceptance_block(
    kinds: Sequence[str], lines: Sequence[str], sections: Mapping[str, Tuple[int, int]], meta: Dict[str, int]
) -> Optional[str]:
    """The first fenced block under an ``## Acceptance command`` heading."""
    span = None
    for name, candidate in sorted(sections.items(), key=lambda item: item[1]):
        lowered = name.lower().rstrip(": ")
        if lowered == "acceptance command" or lowered.startswith("acceptance command "):
            span = candidate
            break
    if span is None:
        return None
    for index in range(span[0] + 1, span[1]):
        if kinds[index] != "open":
            continue
        body = []
        for inner in range(index + 1, span[1]):
            if kinds[inner] != "code":
                break
            body.append(lines[inner])
        command = "\n".join(body).strip()
        if command:
            meta["acceptance_command"] = index + 2
            return command
        return None
    return None


def _budget_line(visible: Sequence[Optional[str]], sections: Mapping[str, Tuple[int, int]], role: str) -> Optional[int]:
    phrase = _WALL_CLOCK_RE[role]
    span = _find_section(sections, "Budget")
    if span is not None:
        for index in range(span[0] + 1, span[1]):
            line = visible[index]
            if line is not None and phrase.search(line):
                return index
    label = _WALL_CLOCK_LABEL_RE[role]
    for index, line in enumerate(visible):
        if line is not None and label.match(line):
            return index
    for index, line in enumerate(visible):
        if line is not None and phrase.search(line):
            return index
    return None


def _budget_value(line: str, role: str) -> str:
    match = _WALL_CLOCK_RE[role].search(line)
    rest = line[match.end():] if match else line
    return rest.lstrip(" \t:*")


def budget_seconds(card: Card, role: str, default: int = DEFAULT_BUDGET_SECONDS) -> Tuple[int, Optional[str]]:
    """``(seconds, warning)``: the card's budget for ``role``, or ``default``.

    ``warning`` is ``None`` when the card gives a budget, else one line for
    the log naming the card (and line) and the fallback, as bash logged.
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, not {role!r}")
    value = card.worker_budget_seconds if role == "worker" else card.verifier_budget_seconds
    if value is not None:
        return value, None
    label = f"{role.capitalize()} wall-clock"
    line = card.meta_lines.get(f"{role}_budget")
    if line:
        text = card.lines[line - 1].strip()
        return default, f"{card.path}:{line}: cannot read a duration from {text!r}; using {default} s"
    return default, f"{card.path}: no '{label}' line under ## Budget; using {default} s"


# --------------------------------------------------------------------------
# What the card checker (autometta.cardlint) reads of a card's text


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def _placeholders(text: str) -> List[str]:
    return _PLACEHOLDER_RE.findall(_without_code_spans(text))


# --------------------------------------------------------------------------
# Lookup


def card_globs(
    repo_root: PathLike,
    manifest: Optional[Mapping[str, Any]] = None,
    *,
    source: Optional[PathLike] = None,
) -> List[str]:
    """Manifest ``stage_card_globs`` first, then the defaults, de-duplicated.

    ``source`` names the manifest in errors (default
    ``<repo>/.autometta.local.yaml``). A single string is taken as one glob.
    """
    where = source if source is not None else Path(os.fspath(repo_root)) / ".autometta.local.yaml"
    patterns: List[str] = []
    if manifest is not None:
        if not isinstance(manifest, Mapping):
            raise UserError(f"{where}: expected a mapping of settings at the top level")
        raw = manifest.get("stage_card_globs")
        if isinstance(raw, str):
            raw = [raw]
        if raw is not None:
            if not isinstance(raw, (list, tuple)):
                raise UserError(
                    f"{where}: stage_card_globs must be a list of glob patterns, e.g. ['docs/stages/*.md']"
                )
            for item in raw:
                if not isinstance(item, str):
                    raise UserError(
                        f"{where}: stage_card_globs entry {item!r} is not a string; quote each glob pattern"
                    )
                if item.strip():
                    patterns.append(item.strip())
    patterns.extend(DEFAULT_CARD_GLOBS)
    return _unique(patterns)


def _root(repo_root: PathLike) -> str:
    return os.path.abspath(os.fspath(repo_root))


def _anchor(root: str, pattern: str) -> str:
    if os.path.isabs(pattern):
        return pattern
    return os.path.join(glob.escape(root), pattern)


def _glob_files(pattern: str) -> List[str]:
    """Shell-like glob: no globstar, no dotfiles, files only, sorted, absolute."""
    found = []
    for match in glob.glob(pattern, recursive=False):
        if os.path.basename(match).startswith("."):
            continue
        if os.path.isfile(match):
            found.append(os.path.abspath(match))
    return sorted(found)


def _globs_or_default(repo_root: PathLike, globs: Optional[Sequence[str]]) -> Sequence[str]:
    return card_globs(repo_root, None) if globs is None else globs


def find_card(repo_root: PathLike, stage_id: str, globs: Optional[Sequence[str]] = None) -> Optional[Path]:
    """The card for ``stage_id`` (absolute path), or ``None`` (spec §3.7).

    Each pattern, anchored under the repo unless absolute, is globbed; the
    first file whose name minus ``.md`` equals the id wins. Then the
    fallback: ``docs/stages/<id>.md``, ``docs/stages/*<id>*.md``,
    ``examples/self-host/<id>.md``, ``examples/self-host/*<id>*.md``.
    """
    check_stage_id(stage_id)
    root = _root(repo_root)
    for pattern in _globs_or_default(repo_root, globs):
        for candidate in _glob_files(_anchor(root, pattern)):
            if _card_stem(os.path.basename(candidate)) == stage_id:
                return Path(candidate)
    escaped = glob.escape(stage_id)
    for folder in FALLBACK_CARD_DIRS:
        exact = os.path.join(root, folder, f"{stage_id}.md")
        if os.path.isfile(exact):
            return Path(exact)
        loose = _glob_files(os.path.join(glob.escape(root), folder, f"*{escaped}*.md"))
        if loose:
            return Path(loose[0])
    return None


def list_cards(repo_root: PathLike, globs: Optional[Sequence[str]] = None) -> List[Tuple[str, Path]]:
    """Every card the globs find with a valid id, one per id, sorted by id.

    When two files share an id, the one :func:`find_card` would pick wins.
    """
    root = _root(repo_root)
    chosen: Dict[str, Path] = {}
    for pattern in _globs_or_default(repo_root, globs):
        for candidate in _glob_files(_anchor(root, pattern)):
            stage_id = _card_stem(os.path.basename(candidate))
            if is_valid_stage_id(stage_id) and stage_id not in chosen:
                chosen[stage_id] = Path(candidate)
    return sorted(chosen.items())

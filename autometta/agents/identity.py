"""Agent identities: parsing and the git author line.

An identity is what a stage card writes after ``- **Worker:** `` or
``- **Verifier:** ``, for example ``Codex GPT-5.3 <codex-gpt-5-3@local>`` or
``Claude Opus 4.8 <claude-opus-4-8@local>``. Older cards add a remark in
parentheses (``Codex GPT-5.3 (`codex exec ...`, stdin from /dev/null)``) or
leave the email out; both are accepted.

The family decides which CLI runs the agent: :func:`autometta.families.family_of`
asks each registered family how strongly an identity names it
(:meth:`autometta.families.base.Family.identity_rank`), and the strongest
claim wins. The built-in families keep the bash version's
rule (spec §7.1 step 2) exactly and extend it:

* ``Script...`` (a leading ``Script``/``script`` word) gives ``"script"``, the
  deterministic family for tests and demos. It is checked first, so a test
  identity such as ``Script fake Claude`` stays a script;
* the identity contains ``Codex`` or ``GPT`` (case-sensitive, anywhere, as in
  bash) gives ``"codex"``;
* else it contains ``Claude`` (case-sensitive, anywhere) gives ``"claude"``;
* else a word starting ``codex`` or ``gpt`` in any case gives ``"codex"``,
  else a word starting ``claude`` in any case gives ``"claude"``;
* else ``None`` (unknown: the caller refuses to launch).

Every identity bash classified is classified the same way here, except one
that starts with the word ``Script`` (bash had no such family). The
lower-case additions only classify identities bash left unknown, e.g.
``opus <claude-opus@local>``.

Model resolution (which ``--model`` an identity maps to) is the family's too
(:mod:`autometta.families.models`).
"""

from __future__ import annotations

import re
from typing import Optional, Tuple

from ..errors import UserError

_EMAIL_RE = re.compile(r"<\s*([^<>\s@]+@[^<>\s@]+)\s*>")
_TRAILING_REMARK_RE = re.compile(r"\s*\([^()]*\)\s*$")
_SLUG_STRIP_RE = re.compile(r"[^a-z0-9]+")
_UNSAFE_NAME_RE = re.compile(r"[<>\x00-\x1f\x7f]+")


def parse_identity(text: str) -> Tuple[str, Optional[str]]:
    """Split an identity into ``(name, email)``; ``email`` is ``None`` if absent.

    ``Claude Opus 4.7 <claude-opus-4-7@local> (same-family build)`` gives
    ``("Claude Opus 4.7", "claude-opus-4-7@local")``;
    ``Codex GPT-5.3 (`codex exec`)`` gives ``("Codex GPT-5.3", None)``.
    A trailing remark in parentheses is dropped from the name unless it is
    the whole text. Whitespace is collapsed.
    """
    raw = " ".join((text or "").split())
    match = _EMAIL_RE.search(raw)
    if match:
        email: Optional[str] = match.group(1)
        name = raw[: match.start()].strip()
        if not name:
            # "<x@y> Name" is odd but unambiguous.
            name = _strip_remarks(raw[match.end():].strip())
        return name, email
    return _strip_remarks(raw), None


def _strip_remarks(text: str) -> str:
    stripped = text
    while True:
        shorter = _TRAILING_REMARK_RE.sub("", stripped)
        if shorter == stripped:
            break
        stripped = shorter
    stripped = stripped.strip()
    return stripped if stripped else text.strip()


def slugify(name: str) -> str:
    """``Codex GPT-5.3`` -> ``codex-gpt-5-3`` (the ``<slug@local>`` convention)."""
    return _SLUG_STRIP_RE.sub("-", name.lower()).strip("-")


def git_author(identity: str) -> str:
    """``Name <email>`` for ``git commit --author``.

    Without an email in the identity, ``<slug@local>`` is derived from the
    name, matching the cards' own convention. Raises :class:`UserError` when
    no usable name is left.
    """
    name, email = parse_identity(identity)
    clean = " ".join(_UNSAFE_NAME_RE.sub(" ", name).split())
    if email is None:
        slug = slugify(clean)
        if not slug:
            raise UserError(
                f"identity {identity!r} has no name to use as a git author; "
                "write it like 'Codex GPT-5.3 <codex-gpt-5-3@local>'"
            )
        email = f"{slug}@local"
    if not clean:
        clean = email.split("@", 1)[0]
    return f"{clean} <{email}>"

"""Which model an identity runs: the one table, and ``models:`` overrides from config.yaml.

Claude identities name a tier and usually a version: ``Claude Opus 4.8`` runs
``claude-opus-4-8``, ``Claude Sonnet 4.6`` ``claude-sonnet-4-6``, ``Claude
Haiku 4.5`` ``claude-haiku-4-5``. A bare major version gets Anthropic's ``-0``
alias (``Opus 4`` runs ``claude-opus-4-0``). A tier without a version runs
:data:`CLAUDE_DEFAULTS`. When the name names no tier, the email slug is read
the same way (``Claude <claude-opus-4-8@local>``). A Claude identity with no
tier at all is an error: the bash version quietly ran ``sonnet`` (spec §15
item 14).

Codex identities name a GPT model, written as codex's ``-m`` wants it:
``Codex GPT-5.3`` runs ``gpt-5.3``, ``gpt-5.1-codex-max`` stays as written.
Without a GPT name the answer is None: codex uses its own configured default.

``models:`` in config.yaml maps names to model ids. The most specific key
wins: the identity's name (the part before ``<``), then, for a Claude identity
that gives no version, its tier word (``opus``, ``sonnet``, ``haiku``), then
the table. Keys match case-insensitively. A tier word does not re-map an
identity that spells out its version; list that identity's name instead.
"""

from __future__ import annotations

import re
from typing import Mapping, Optional

from ..errors import UserError
from ..identity import parse_identity

__all__ = ["CLAUDE_DEFAULTS", "resolve_model"]

#: What a Claude tier runs when the identity gives no version.
CLAUDE_DEFAULTS = {"opus": "claude-opus-4-8", "sonnet": "claude-sonnet-4-6", "haiku": "claude-haiku-4-5"}

# "Opus 4.8", "opus-4-8" (a slug), "Opus": tier, major, minor.
_TIER_RE = re.compile(r"(?<![a-z])(opus|sonnet|haiku)(?:[ -]?v?(\d+)(?:[.-](\d+))?)?(?![a-z\d.])", re.I)
# "GPT-5.3", "gpt-5.1-codex-max", "GPT-4o": version, suffix.
_GPT_RE = re.compile(r"(?<![a-z\d])gpt[- ]?(\d+(?:\.\d+)*[a-z]?)((?:-[a-z][a-z\d]*)*)", re.I)


def resolve_model(
    identity: str, family: Optional[str], overrides: Optional[Mapping[str, str]] = None
) -> Optional[str]:
    """The model id for ``identity`` run by ``family``, or None for the CLI's default.

    ``overrides`` is config.yaml's ``models:`` mapping. Raises
    :class:`UserError` for a Claude identity naming no tier.
    """
    name, email = parse_identity(identity)
    table = {_key(k): str(v) for k, v in (overrides or {}).items() if v not in (None, "")}
    if _key(name) in table:
        return table[_key(name)]
    if family == "claude":
        return _claude(identity, name, email, table)
    if family == "codex":
        match = _GPT_RE.search(name)
        return f"gpt-{match.group(1)}{match.group(2)}".lower() if match else None
    return None


def _claude(identity: str, name: str, email: Optional[str], table: Mapping[str, str]) -> str:
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


def _key(text: str) -> str:
    return " ".join(str(text).split()).casefold()

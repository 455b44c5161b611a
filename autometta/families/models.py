"""Which model an identity runs: its family's table, and ``models:`` overrides from config.yaml.

Each family reads its own identities (:meth:`autometta.families.base.Family.model`):
a Claude identity names a tier and usually a version (:mod:`.claude`), a Codex
one a GPT model (:mod:`.codex`); the script family runs no model. None means
the CLI's own default.

``models:`` in config.yaml maps names to model ids. The most specific key
wins: the identity's name (the part before ``<``), then what the family reads
from the table itself (for a Claude identity that gives no version, its tier
word: ``opus``, ``sonnet``, ``haiku``), then the family's table. Keys match
case-insensitively. A tier word does not re-map an identity that spells out
its version; list that identity's name instead.
"""

from __future__ import annotations

from typing import Mapping, Optional

from ..agents.identity import parse_identity
from . import FAMILIES

__all__ = ["resolve_model", "model_key"]


def resolve_model(
    identity: str, family: Optional[str], overrides: Optional[Mapping[str, str]] = None
) -> Optional[str]:
    """The model id for ``identity`` run by ``family``, or None for the CLI's default.

    ``overrides`` is config.yaml's ``models:`` mapping. Raises
    :class:`UserError` for an identity its family cannot read (a Claude
    identity naming no tier).
    """
    name, email = parse_identity(identity)
    table = {model_key(k): str(v) for k, v in (overrides or {}).items() if v not in (None, "")}
    if model_key(name) in table:
        return table[model_key(name)]
    runner = FAMILIES.get(family or "")
    return runner.model(identity, name, email, table) if runner is not None else None


def model_key(text: str) -> str:
    """How a ``models:`` key (and a name looked up in it) compares: whitespace collapsed, case folded."""
    return " ".join(str(text).split()).casefold()

"""Agent families: one module each behind :class:`base.Family`, and this registry.

Adding a family is a module in this folder and one line in :data:`FAMILIES`.
"""

from __future__ import annotations

from typing import Dict

from ..errors import UserError
from ..identity import family_of
from .base import Family
from .claude import Claude
from .codex import Codex
from .script import Script

FAMILIES: Dict[str, Family] = {"claude": Claude(), "codex": Codex(), "script": Script()}


def get(name: str) -> Family:
    """The family called ``name``; :class:`UserError` for an unknown one."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise UserError(f"unknown agent family {name!r}; known: {', '.join(sorted(FAMILIES))}") from None


def for_identity(identity: str) -> Family:
    """The family that runs ``identity`` (see :func:`autometta.identity.family_of`)."""
    name = family_of(identity)
    if name is None:
        raise UserError(
            f"identity {identity!r} names no known agent family; "
            "it must mention Codex/GPT or Claude, or start with Script"
        )
    return get(name)

"""The families' registry: every registered family by name, and who a card's identity names.

:mod:`autometta.families` registers the built-in ones and re-exports these
names; everything else asks them: :func:`get` by name, :func:`family_of` and
:func:`for_identity` by a card's identity, :data:`FAMILIES` for all of them.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

from ..errors import UserError
from .base import Family

#: Every registered family by name, in registration order (identities' ties go to the first).
FAMILIES: Dict[str, Family] = {}


def register(family: Family) -> Family:
    """Add ``family`` to the registry under its :attr:`~base.Family.name` (replacing one of that name)."""
    FAMILIES[family.name] = family
    return family


def get(name: str) -> Family:
    """The family called ``name``; :class:`UserError` for an unknown one."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise UserError(f"unknown agent family {name!r}; known: {', '.join(sorted(FAMILIES))}") from None


def family_of(identity: Optional[str]) -> Optional[str]:
    """The name of the family ``identity`` names most strongly (:meth:`base.Family.identity_rank`), or None.

    Ties go to the family registered first. See :mod:`autometta.agents.identity` for the rule the built-in families keep.
    """
    if not identity:
        return None
    best: Optional[Tuple[int, str]] = None
    for family in FAMILIES.values():
        rank = family.identity_rank(identity)
        if rank is not None and (best is None or rank < best[0]):
            best = (rank, family.name)
    return best[1] if best else None


def naming_hint() -> str:
    """How an identity names a family, for messages: ``mention Claude, mention Codex or GPT or start with Script``."""
    hints = [f.identity_hint for f in FAMILIES.values() if f.identity_hint]
    return " or ".join([", ".join(hints[:-1]), hints[-1]] if len(hints) > 1 else hints)


def for_identity(identity: str) -> Family:
    """The family that runs ``identity`` (:func:`family_of`)."""
    name = family_of(identity)
    if name is None:
        raise UserError(f"identity {identity!r} names no known agent family; it must {naming_hint()}")
    return get(name)

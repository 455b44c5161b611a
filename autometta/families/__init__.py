"""Agent families. Each family is one module in this folder behind :class:`base.Family`; the registry is
:mod:`.registry` (its names are this package's: ``families.get``, ``families.FAMILIES``, ...).

Adding a family is a module that subclasses :class:`base.Family` and one
:func:`register` call (here, for the built-in ones).
"""

from __future__ import annotations

from .claude import Claude
from .codex import Codex
from .registry import FAMILIES, for_identity, family_of, get, naming_hint, register
from .script import Script

__all__ = ["FAMILIES", "for_identity", "family_of", "get", "naming_hint", "register"]

register(Claude())
register(Codex())
register(Script())

"""Which way a stage's verdict is reached, and what dispatch runs for it.

A verifier runs its family's CLI (``cli``), or autometta calls the family's
API itself (``api``, :mod:`.request`), or a panel of three votes
(:mod:`.panel`). The transport of a family is chosen by
``AUTOMETTA_<FAMILY>_TRANSPORT``, then ``verifier.<family>.transport`` in
``.autometta.local.yaml``, then ``cli``; ``sdk`` (the bash version's word)
means ``api``; a family without an API (:attr:`Family.api` None) always runs
its CLI. The panel is on when the card says ``- **Verifier panel:** true`` or
``AUTOMETTA_VERIFIER_PANEL=1``.

:func:`transport_for` and :func:`panel_enabled` are pure and light (views and
the tick's bookkeeping ask them); :mod:`.launcher` picks the launch when a
verifier starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional

from ..errors import UserError

#: The transports a verifier family can use. ``sdk`` is read as ``api``.
TRANSPORTS = ("cli", "api")
_SYNONYMS = {"sdk": "api"}

#: A panel has three members (two votes make a quorum: autometta.tick.outcomes.QUORUM_REQUIRED).
PANEL_SIZE = 3
PANEL_ENV = "AUTOMETTA_VERIFIER_PANEL"


@dataclass(frozen=True)
class Route:
    """How one family's verifier runs, and where that choice came from."""

    family: str
    transport: str  # cli | api
    #: ``env AUTOMETTA_CLAUDE_TRANSPORT``, ``manifest verifier.claude.transport``,
    #: ``default``, ``panel config``, ``panel default``
    provenance: str

    def describe(self) -> str:
        return f"transport {self.transport} from {self.provenance}"


def normalise_transport(value: Any, where: str) -> str:
    """``cli`` or ``api`` for ``value`` (``sdk`` is ``api``); UserError naming ``where`` otherwise."""
    text = str(value).strip().lower() if isinstance(value, (str, int, float)) else ""
    text = _SYNONYMS.get(text, text)
    if text not in TRANSPORTS:
        raise UserError(f"{where}: verifier transport {value!r} is not one of cli, api (or sdk, the same as api); "
                        "fix the value")
    return text


def transport_env_name(family: str) -> str:
    return f"AUTOMETTA_{family.upper()}_TRANSPORT"


def transport_for(family: str, environ: Mapping[str, str], manifest: Mapping[str, Any],
                  manifest_source: str = ".autometta.local.yaml") -> Route:
    """The transport of ``family``'s verifier: env, then manifest, then ``cli``.

    A family without an API transport (:attr:`Family.api` None: ``script``) always runs its CLI.
    """
    from ..families import FAMILIES

    runner = FAMILIES.get(family)
    if runner is None or runner.api is None:
        return Route(family, "cli", "default")
    name = transport_env_name(family)
    value = environ.get(name)
    if value not in (None, ""):
        return Route(family, normalise_transport(value, name), f"env {name}")
    section = manifest.get("verifier") if isinstance(manifest, Mapping) else None
    entry = section.get(family) if isinstance(section, Mapping) else None
    value = entry.get("transport") if isinstance(entry, Mapping) else None
    if value not in (None, ""):
        key = f"verifier.{family}.transport"
        return Route(family, normalise_transport(value, f"{manifest_source}: {key}"), f"manifest {key}")
    return Route(family, "cli", "default")


def panel_enabled(environ: Mapping[str, str], card_panel: bool) -> Optional[str]:
    """Why the panel is on (``card`` or ``env AUTOMETTA_VERIFIER_PANEL``), or None when it is off."""
    if environ.get(PANEL_ENV) == "1":
        return f"env {PANEL_ENV}"
    if card_panel:
        return "card"
    return None


# ------------------------------------------------------------------ what dispatch runs

@dataclass
class OwnLaunch:
    """What :func:`autometta.agents.dispatch.start` runs for a verifier, when autometta is the verifier.

    ``argv`` is None for the CLI route: the family's CLI runs as usual and
    only ``invocation`` (route and provenance, for the prompt) is used.
    """

    invocation: str
    argv: Optional[List[str]] = None
    env: Dict[str, str] = field(default_factory=dict)
    family: str = ""

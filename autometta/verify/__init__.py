"""Verifier routes: which way a stage's verdict is reached, and the panel's vote table.

A verdict always lands in ``state/verifiers/<id>.json``; what differs is who
writes it:

* ``cli`` -- the verifier family's own CLI (``claude -p``, ``codex exec``),
  started by :func:`autometta.dispatch.start` like a worker;
* ``api`` -- autometta itself, as an agent (``autometta _verify-api``), calls
  the Anthropic Messages API (claude family, :mod:`.anthropic_api`) or the
  OpenAI Responses API (codex family, :mod:`.openai_api`) with the card, the
  worker's diff and the card's inputs, and writes the answer once it is
  schema-valid (:mod:`.request`);
* a **panel** -- autometta itself (``autometta _panel-run``) runs three
  verifiers in parallel and writes their majority (:mod:`.panel`).

Either way the agent the tick starts is supervised like any other (runner,
exit record, registry) and the tick reads the artefact as it reads any
verdict; nothing here blocks a tick.

The transport of a family is chosen by ``AUTOMETTA_<FAMILY>_TRANSPORT``, then
``verifier.<family>.transport`` in ``.autometta.local.yaml``, then ``cli``;
``sdk`` (the bash version's word) means ``api``. The panel is on when the card
says ``- **Verifier panel:** true`` or ``AUTOMETTA_VERIFIER_PANEL=1``.

How a verdict is judged (a panel's votes counted again, criteria against
overall) is :mod:`autometta.tick.outcomes`'s, the one rule for the tick and
for by-hand runs; the launch side lives in the submodules.
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


# ------------------------------------------------------------------ dispatch hook

def repo_context(repo: Any, environ: Optional[Mapping[str, str]] = None) -> Any:
    """A :class:`autometta.dispatch.RepoContext` for a command run by hand in ``repo``.

    Config and manifest are read as the tick reads them: config.yaml from the
    controller home, and the subscriber's ``manifest_path`` when the repo is
    subscribed, else the repo's own ``.autometta.local.yaml``.
    """
    import os
    from pathlib import Path

    from .. import home, manifest
    from ..dispatch import RepoContext
    from ..paths import HomePaths, RepoPaths

    env = dict(os.environ if environ is None else environ)
    hp = HomePaths.from_env(env)
    paths = RepoPaths(Path(repo))
    config = home.load_config(hp)
    sub = home.find_subscriber(hp, paths.root) if hp.subscribers.is_dir() else None
    return RepoContext(paths=paths, home=hp, config=config,
                       manifest=manifest.load_manifest(paths, sub.manifest_path if sub else None), environ=env)


@dataclass
class OwnLaunch:
    """What :func:`autometta.dispatch.start` runs for a verifier, when autometta is the verifier.

    ``argv`` is None for the CLI route: the family's CLI runs as usual and
    only ``invocation`` (route and provenance, for the prompt) is used.
    """

    invocation: str
    argv: Optional[List[str]] = None
    env: Dict[str, str] = field(default_factory=dict)
    family: str = ""


def own_verifier(ctx: Any, stage: Mapping[str, Any], card: Any, family: Any, model: Optional[str]) -> OwnLaunch:
    """The verifier launch for ``stage``: a panel, an API call, or (argv None) the family's CLI.

    Raises :class:`UserError` when the route cannot run (an unknown transport
    value, a panel member that names no family, an API transport without
    its key in the environment the agent would get).
    """
    reason = panel_enabled(ctx.environ, bool(getattr(card, "panel", False)))
    if reason is not None:
        from . import panel

        return panel.dispatch_launch(ctx, stage, card, family, reason)
    route = transport_for(family.name, ctx.environ, ctx.manifest)
    if route.transport == "api":
        from . import request

        return request.dispatch_launch(ctx, stage, card, family, model, route)
    return OwnLaunch(invocation=f"autometta tick ({family.name} cli; {route.describe()})")

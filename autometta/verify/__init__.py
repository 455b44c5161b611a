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

This module is imported by the tick's decision code, so it holds only pure
functions and imports nothing heavy; the launch side lives in the submodules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from ..errors import UserError

#: The transports a verifier family can use. ``sdk`` is read as ``api``.
TRANSPORTS = ("cli", "api")
_SYNONYMS = {"sdk": "api"}
#: Families with an API transport, and the API each one calls.
API_OF_FAMILY = {"claude": "anthropic", "codex": "openai"}

#: A panel has three members; two votes make a quorum (the bash version's rule).
PANEL_SIZE = 3
QUORUM_REQUIRED = 2
#: Stage status and stall-marker prefix for a panel that reached no verdict.
NO_QUORUM = "verifier_panel_no_quorum"
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

    A family without an API transport (``script``) always runs its CLI.
    """
    if family not in API_OF_FAMILY:
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


# ------------------------------------------------------------------ the vote table

@dataclass(frozen=True)
class Tally:
    """The panel's count. ``overall`` is None when there is no verdict (no quorum or a tie)."""

    passes: int
    fails: int
    no_votes: int
    overall: Optional[str]
    reason: str  # one line for logs and markers

    @property
    def votes(self) -> int:
        return self.passes + self.fails


def tally(votes: Sequence[Optional[str]], required: int = QUORUM_REQUIRED) -> Tally:
    """Count ``votes`` (``PASS``, ``FAIL`` or None for a panellist that did not vote).

    Fewer than ``required`` votes, or as many PASS as FAIL, is no verdict;
    otherwise the verdict is PASS exactly when PASS votes outnumber FAIL votes.
    A crash or a timeout is a no-vote, never a FAIL.
    """
    passes = sum(1 for v in votes if v == "PASS")
    fails = sum(1 for v in votes if v == "FAIL")
    no_votes = len(votes) - passes - fails
    counts = f"{passes} PASS, {fails} FAIL, {no_votes} no-vote"
    if passes + fails < required:
        return Tally(passes, fails, no_votes, None, f"no quorum: {passes + fails} of {required} votes needed ({counts})")
    if passes == fails:
        return Tally(passes, fails, no_votes, None, f"no majority: tied vote ({counts})")
    overall = "PASS" if passes > fails else "FAIL"
    return Tally(passes, fails, no_votes, overall, f"majority {overall} ({counts})")


def panel_problem(doc: Optional[Mapping[str, Any]]) -> Optional[Tuple[str, str]]:
    """For a synthesised panel verdict: the (status, marker) that overrides its ``overall``, or None.

    The votes are counted again from ``panellists`` (the file's ``overall`` is
    not trusted on its own): no quorum or a tie stops the stage as
    ``verifier_panel_no_quorum``; an ``overall`` that disagrees with the
    count fails it. None for a single verifier's artefact and for a panel
    whose ``overall`` is its majority.
    """
    if not isinstance(doc, Mapping) or not isinstance(doc.get("panellists"), list):
        return None
    votes: List[Optional[str]] = []
    for entry in doc["panellists"]:
        vote = entry.get("overall") if isinstance(entry, Mapping) else None
        votes.append(vote if vote in ("PASS", "FAIL") else None)
    quorum = doc.get("quorum")
    required = quorum.get("required") if isinstance(quorum, Mapping) else None
    required = required if isinstance(required, int) and not isinstance(required, bool) else QUORUM_REQUIRED
    count = tally(votes, max(required, QUORUM_REQUIRED))
    if count.overall is None:
        return NO_QUORUM, f"{NO_QUORUM}: {count.reason}"
    if doc.get("overall") != count.overall:
        return "verifier_failed", (f"verifier_panel_inconsistent: overall {str(doc.get('overall'))[:20]!r} "
                                   f"but the panellists' {count.reason}")
    return None


INCONSISTENT_MARKER = "verifier_inconsistent"


def criteria_problem(doc: Optional[Mapping[str, Any]]) -> Optional[str]:
    """Why a verdict's ``overall`` disagrees with its own criteria, or None.

    PASS needs every criterion to PASS; FAIL needs one that does not. A
    verdict without criteria (a panel with no majority source) is not judged here.
    """
    if not isinstance(doc, Mapping) or doc.get("overall") not in ("PASS", "FAIL"):
        return None
    criteria = doc.get("criteria")
    if not isinstance(criteria, list) or not criteria:
        return None
    failing = [c for c in criteria if not isinstance(c, Mapping) or c.get("verdict") != "PASS"]
    if doc["overall"] == "PASS" and failing:
        first = failing[0] if isinstance(failing[0], Mapping) else {}
        more = f" (and {len(failing) - 1} more)" if len(failing) > 1 else ""
        return (f"overall PASS but criterion {str(first.get('id'))[:10]} ({str(first.get('name'))[:80]}) "
                f"is {str(first.get('verdict'))[:10]}{more}")
    if doc["overall"] == "FAIL" and not failing:
        return "overall FAIL but every criterion PASSes"
    return None


def verdict_problem(doc: Optional[Mapping[str, Any]]) -> Optional[Tuple[str, str]]:
    """The (status, marker) that overrides a verdict's ``overall``, or None: one rule for every verdict.

    A panel's votes are counted again (:func:`panel_problem`); then any
    verdict, a single verifier's or a panel's, must agree with its own
    criteria, else it fails ``verifier_inconsistent``.
    """
    panel = panel_problem(doc)
    if panel is not None:
        return panel
    why = criteria_problem(doc)
    if why is not None:
        return "verifier_failed", f"{INCONSISTENT_MARKER}: {why}"
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

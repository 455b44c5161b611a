"""Billing routes and the environment every agent runs with.

Each billed family (one whose :attr:`Family.route` names its keys: claude,
codex) runs on one of two routes, chosen per dispatch:
``AUTOMETTA_<FAMILY>_MODE``, else ``auth.<family>.mode`` in the repo's
``.autometta.local.yaml``, else ``subscription``.

* **subscription**: the CLI's own login. No API key reaches the agent; claude
  also gets ``CLAUDE_CODE_OAUTH_TOKEN`` when ``OP_REF_CLAUDE_CODE_OAUTH_TOKEN``
  names one (so cron and launchd runs need no keychain).
* **api**: the key from ``OP_REF_ANTHROPIC_API_KEY`` / ``OP_REF_OPENAI_API_KEY``
  (see :mod:`autometta.secrets`), injected into the agent's environment only.
  A family may need more for it (:meth:`Family.api_route`): codex prefers
  ``$CODEX_HOME/auth.json`` to the environment, so codex api runs use a
  sibling home (``AUTOMETTA_CODEX_HOME``, default ``~/.codex-api-only``)
  that must be logged in with an API key.

The environment is an allowlist, never the tick's whole env: a stray
``ANTHROPIC_API_KEY`` or ``OPENAI_API_KEY`` in a cron environment would
silently turn a subscription run into API billing, so keys are never passed
through from the parent: a family's own variables, the base allowlist and the
repo's ``env.pass`` list are all that cross, and the families' API key names
(:attr:`Family.api_key_names`) never do.
A route that cannot be used raises :class:`RouteError` before any process
starts; the tick turns it into the stall marker ``auth_route_failed: ...``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, FrozenSet, Iterable, List, Mapping, Optional

from . import secrets
from .errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    from .families.base import Family, RouteKeys

BASE_ALLOWLIST = ("PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "TERM", "TMPDIR", "TZ")


def never_inherited() -> FrozenSet[str]:
    """Secrets that only the billing-route resolver may inject (never inherited): every family's API keys."""
    from .families import FAMILIES

    return frozenset(name for family in FAMILIES.values() for name in family.api_key_names)


def manifest_pass(manifest: Mapping[str, Any]) -> List[str]:
    """``env.pass`` from ``.autometta.local.yaml``: extra names a repo lets through."""
    env = manifest.get("env") if isinstance(manifest, Mapping) else None
    names = env.get("pass") if isinstance(env, Mapping) else None
    return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []


def clean_env(parent: Mapping[str, str], family_names: Iterable[str] = (),
              extra_names: Iterable[str] = (), secret_names: Iterable[str] = ()) -> Dict[str, str]:
    """The allowlisted part of ``parent``.

    ``family_names`` may end in ``*`` (a prefix). A family's ``secret_names``
    (subscription tokens) cross only when the repo names them in ``env.pass``;
    the API keys of :func:`never_inherited` never do.
    """
    from .families.base import matches_env_name

    patterns = list(BASE_ALLOWLIST) + list(family_names)
    extras = set(extra_names)
    withheld = set(secret_names) - extras
    never = never_inherited()
    out = {}
    for name, value in parent.items():
        if name in never or name in withheld:
            continue
        if name in extras or name.startswith("LC_") or any(matches_env_name(p, name) for p in patterns):
            out[name] = value
    out.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    return out


# ------------------------------------------------------------ billing routes

MODES = ("subscription", "api")
DEFAULT_MODE = "subscription"
#: Stall marker of a stage whose agent's billing route cannot be used.
ROUTE_MARKER = "auth_route_failed"


def routes() -> Dict[str, "RouteKeys"]:
    """The families that bill to an account, and their route keys; every other family (script) runs with no
    credential."""
    from .families import FAMILIES

    return {family.name: family.route for family in FAMILIES.values() if family.route is not None}


class RouteError(UserError):
    """A billing route that cannot be used; the tick stops the stage with :data:`ROUTE_MARKER`."""

    marker = ROUTE_MARKER


@dataclass(frozen=True)
class Mode:
    family: str
    mode: str
    provenance: str  # env | manifest | default
    source: str  # where it was read, for messages

    @property
    def valid(self) -> bool:
        return self.mode in MODES


@dataclass
class Route:
    """One family's route as configured now; nothing fetched yet."""

    family: str
    mode: Mode
    refs: secrets.RefsFile
    #: env name -> the reference whose value it gets
    inject: Dict[str, secrets.Ref] = field(default_factory=dict)
    #: What api mode sets besides the key (:meth:`Family.api_route`: codex's ``CODEX_HOME``)
    env: Dict[str, str] = field(default_factory=dict)
    problem: Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def mode_for(family: str, environ: Mapping[str, str], manifest: Mapping[str, Any],
             manifest_path: Optional[Path] = None) -> Mode:
    """``AUTOMETTA_<FAMILY>_MODE``, then ``auth.<family>.mode`` in the manifest, then subscription."""
    var = f"AUTOMETTA_{family.upper()}_MODE"
    value = (environ.get(var) or "").strip()
    if value:
        return Mode(family, value, "env", var)
    section = manifest.get("auth") if isinstance(manifest, Mapping) else None
    entry = section.get(family) if isinstance(section, Mapping) else None
    value = entry.get("mode") if isinstance(entry, Mapping) else None
    if isinstance(value, str) and value.strip():
        where = str(manifest_path) if manifest_path else ".autometta.local.yaml"
        return Mode(family, value.strip(), "manifest", f"auth.{family}.mode in {where}")
    return Mode(family, DEFAULT_MODE, "default", "default")


def _refs_hint(refs: secrets.RefsFile) -> str:
    if refs.path is not None:
        return str(refs.path)
    candidates = [str(p) for p, origin in refs.candidates if origin == "XDG_CONFIG_HOME"]
    return candidates[0] if candidates else f"~/.config/autometta/{secrets.REFS_FILE_NAME}"


def plan(family: str, environ: Mapping[str, str], manifest: Mapping[str, Any],
         manifest_path: Optional[Path] = None, refs: Optional[secrets.RefsFile] = None) -> Route:
    """The route ``family`` takes now, and why it cannot run (``problem``); fetches no secret."""
    from .families import FAMILIES

    billed = routes()
    keys = billed.get(family)
    if keys is None:
        raise UserError(f"agent family {family!r} has no billing route; routes exist for {', '.join(billed)}")
    mode = mode_for(family, environ, manifest, manifest_path)
    refs = refs if refs is not None else secrets.load_refs_file(environ)
    route = Route(family=family, mode=mode, refs=refs)
    if not mode.valid:
        route.problem = (f"{mode.source} is {mode.mode!r}; set it to subscription or api")
        return route
    where = _refs_hint(refs)
    if mode.mode == "api":
        ref = secrets.lookup(keys.api_ref, environ, refs)
        route.inject[keys.api_env] = ref
        back = (f"unset {mode.source}" if mode.provenance == "env"
                else f"set {mode.source.replace(' in ', ': subscription in ', 1)}")
        fix = (f"set {keys.api_ref} in {where} (op://vault/item/field, env:NAME or file:PATH), "
               f"or {back} to bill {family} to the subscription")
        try:
            secrets.check(ref, environ, fix)
        except secrets.SecretError as exc:
            route.problem = f"{family} api mode: {exc.message}"
            return route
        route.env, route.problem = FAMILIES[family].api_route(environ, ref)
        return route
    if keys.subscription_ref and keys.subscription_env:
        ref = secrets.lookup(keys.subscription_ref, environ, refs)
        if ref.set:  # optional: a placeholder or nothing means the CLI's own login
            route.inject[keys.subscription_env] = ref
            try:
                secrets.check(ref, environ, f"fix {keys.subscription_ref} in {where} or remove it")
            except secrets.SecretError as exc:
                route.problem = f"{family} subscription token: {exc.message}"
    return route


def resolve_route(route: Route, environ: Mapping[str, str], *, fresh: bool = False) -> Dict[str, str]:
    """The environment variables the route injects, with their secrets; :class:`RouteError` if it cannot."""
    if route.problem:
        raise RouteError(route.problem)
    out = {}
    for name, ref in route.inject.items():
        try:
            out[name] = secrets.resolve(ref, environ, fresh=fresh)
        except secrets.SecretError as exc:
            raise RouteError(f"{route.family} {route.mode.mode} mode: {exc.message}") from None
    return out


def agent_env(environ: Mapping[str, str], manifest: Mapping[str, Any], family: Optional["Family"], role: str,
              *, resolve: bool = True, manifest_path: Optional[Path] = None) -> Dict[str, str]:
    """The whole environment for one agent: the allowlist, then its route's credentials.

    Subscription mode strips every API key (a stray one would move the bill)
    and injects only the optional subscription token; api mode strips the
    family's other credentials and injects the key from its reference (codex
    also gets the sibling ``CODEX_HOME``: :meth:`Family.api_route`). Raises :class:`RouteError`, before
    anything starts, when the route cannot be used. ``resolve=False`` checks
    the route without fetching a secret (the tick's preflight).
    """
    names = family.env_names(role) if family is not None else ()
    family_secrets = family.secret_names if family is not None else ()
    env = clean_env(environ, names, manifest_pass(manifest), family_secrets)
    from .families import FAMILIES

    for other in FAMILIES.values():  # env.pass never hands one family's token to another
        if family is None or other.name != family.name:
            for name in set(other.secret_names) - set(family_secrets):
                env.pop(name, None)
    if family is None or family.route is None:
        return env
    route = plan(family.name, environ, manifest, manifest_path)
    if route.problem:
        raise RouteError(route.problem)
    if route.mode.mode == "api":
        for name in family_secrets:
            env.pop(name, None)
        env.update(route.env)
    if resolve:
        env.update(resolve_route(route, environ))
    return env


def stray_keys(environ: Mapping[str, str]) -> List[str]:
    """Credentials set in ``environ`` that autometta never passes on (they would move the bill)."""
    names = set(never_inherited())
    for keys in routes().values():
        names.add(keys.api_env)
    return sorted(n for n in names if environ.get(n))


def secrets_in_force(environ: Mapping[str, str], manifest: Mapping[str, Any], family_names: Iterable[str],
                     manifest_path: Optional[Path] = None) -> List[str]:
    """Best effort: every secret the routes of ``family_names`` use now, resolved (and registered).

    For the commit scan: a tick that commits is not the tick that dispatched,
    so the values are fetched again (cached for the process). A route that
    cannot be resolved contributes nothing; the scan still checks key shapes.
    """
    billed = routes()
    for name in sorted(set(family_names)):
        if name not in billed:
            continue
        route = plan(name, environ, manifest, manifest_path)
        if route.ok:
            try:
                resolve_route(route, environ)
            except RouteError:
                pass
    return secrets.registered()


def route_summary(environ: Mapping[str, str], manifest: Mapping[str, Any], identity: str, role: str,
                  manifest_path: Optional[Path] = None) -> Optional[str]:
    """``billing: claude api, from env`` for an agent's log line; None for an agent without a route."""
    from .families import family_of

    name = family_of(identity) if role in ("worker", "verifier") else None
    if name not in routes():
        return None
    mode = mode_for(name, environ, manifest, manifest_path)
    return f"billing: {name} {mode.mode}, from {mode.provenance}"

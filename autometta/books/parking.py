"""Account-wide parking: a usage limit parks its family's billing route for every repo on this host.

A plan's usage limit belongs to the login, not to the repo that met it: when
a worker or verifier ends on one, every repo on this host that would start
an agent on the same *billing route* waits until the reset, without spending
a call to find out, while agents of the other family (or of the same family
on another route) keep working.

A route is the family and how it bills, as :mod:`autometta.auth` decides it
for the repo: ``claude subscription``, ``claude api``, ``codex subscription``,
``codex api`` (a verifier on the API transport bills the API). A family
without a billing route (``script``) is its own route.

The parks live in the controller home, ``<home>/parked.json``::

    {"version": 1, "routes": {"claude subscription": {"until": "2026-12-04T18:18:00Z",
        "reason": "worker hit a usage limit: ...", "repo": "/src/app", "stage": "05-x",
        "since": "2026-12-04T16:02:11Z"}}}

written under a lock (:func:`park`), read by every tick (:func:`load`) and
view. :func:`until` and :func:`active` are the pure decisions. A park that
has run out is simply ignored, and dropped on the next write. The stage
whose run met the limit also keeps ``parked_until`` in state.yaml and runs
the same agent again once both have passed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ..paths import HomePaths
from ..timeutil import now_iso, parse_iso

# status shows the parks on every run: this module imports no typing, and the families (every one of them,
# through families/__init__) only to read a limit's reset (tests/test_startup.py)
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional

    from ..families.usage import UsageLimit

VERSION = 1
#: How long a route stays parked on a usage limit whose reset time the CLI did not give (or gave unreadably).
DEFAULT_PARK_SECONDS = 1800
#: ... and on API throttling (a 429 without a plan limit).
RATE_PARK_SECONDS = 60
#: A reset given to the minute is not tried before that minute is over.
GRACE_SECONDS = 60
LOCK_WAIT_SECONDS = 10.0


# ------------------------------------------------------------------ pure decisions

def until(limit: UsageLimit, now: float, park_seconds: int = DEFAULT_PARK_SECONDS,
          printed_at: Optional[float] = None) -> float:
    """When a route parked on ``limit`` may be tried again (epoch seconds).

    ``printed_at`` is when the CLI printed the limit (its run's end): a reset
    given as a time of day is read against it, so "try again at 6:17 PM"
    printed at 6:17 means 6:17 today, not tomorrow, however late the tick
    reads the log. The reset plus a minute's grace; an unreadable or missing
    reset parks for ``park_seconds``; throttling for a minute.
    """
    if limit.kind == "rate":
        return now + RATE_PARK_SECONDS
    reference = printed_at if printed_at is not None and printed_at <= now else now
    from ..families.usage import reset_epoch

    reset = reset_epoch(limit.resets_at, reference)
    if reset is None:
        return now + park_seconds
    if reset <= reference - GRACE_SECONDS:  # a reset before the run ended: no wait is known, back off
        return now + park_seconds
    return reset + GRACE_SECONDS


def active(parks: Mapping[str, Any], route: Optional[str], now: float) -> Optional[Dict[str, Any]]:
    """The park holding ``route`` at ``now``, or None."""
    if not route or not isinstance(parks, Mapping):
        return None
    park = parks.get(route)
    if not isinstance(park, Mapping):
        return None
    when = parse_iso(str(park.get("until") or ""))
    if when is None or now >= when:
        return None
    return dict(park)


def merged(parks: Mapping[str, Any], route: str, park_until: str, reason: str, *, repo: Optional[str] = None,
           stage: Optional[str] = None, now: float) -> Dict[str, Any]:
    """``parks`` with ``route`` parked until ``park_until`` (a later park already there wins), expired ones dropped."""
    out = {name: dict(p) for name, p in (parks or {}).items() if active(parks, name, now)}
    held = out.get(route)
    if held is not None and (parse_iso(str(held.get("until"))) or 0) >= (parse_iso(park_until) or 0):
        return out
    out[route] = {"until": park_until, "reason": reason, "repo": repo, "stage": stage, "since": now_iso(now)}
    return out


def shown(parks: Mapping[str, Any], now: float) -> List[Dict[str, Any]]:
    """The parks in force, for views: route, until, reason, repo, stage; soonest reset first."""
    out = []
    for name in parks or {}:
        park = active(parks, name, now)
        if park is not None:
            out.append({"route": name, "until": park.get("until"), "reason": park.get("reason"),
                        "repo": park.get("repo"), "stage": park.get("stage"), "since": park.get("since")})
    return sorted(out, key=lambda p: (str(p["until"]), p["route"]))


# ------------------------------------------------------------------ which route

def route_of(family: Optional[str], environ: Mapping[str, str], manifest: Mapping[str, Any], *,
             api: bool = False) -> Optional[str]:
    """``claude subscription``, ``codex api``, ...; the family alone when it has no billing route."""
    from .. import auth

    if not family:
        return None
    if family not in auth.routes():
        return family
    mode = "api" if api else auth.mode_for(family, environ, manifest).mode
    return f"{family} {mode}"


def route_for(ctx: Any, stage: Mapping[str, Any], role: str) -> Optional[str]:
    """The billing route ``role`` of ``stage`` would run on in ``ctx``; None for a command (no agent)."""
    from ..agents.provision import identity_for
    from ..families import family_of

    if role not in ("worker", "verifier"):
        return None
    family = family_of(identity_for(stage, role))
    environ = getattr(ctx, "environ", None) or os.environ
    manifest = getattr(ctx, "manifest", None) or {}
    api = False
    if role == "verifier" and family:
        from ..errors import UserError
        from ..verify.transport import transport_for

        try:
            api = transport_for(family, environ, manifest).transport == "api"
        except UserError:
            api = False
    return route_of(family, environ, manifest, api=api)


# ------------------------------------------------------------------ the file

def load(hp: HomePaths) -> Dict[str, Any]:
    """The parks (route -> park), {} when there are none or the file is unreadable."""
    from .. import files
    from ..errors import UserError

    try:
        doc = files.read_json(hp.parks)
    except UserError:
        return {}
    routes = doc.get("routes") if isinstance(doc, dict) else None
    if not isinstance(routes, dict):
        return {}
    return {str(name): dict(p) for name, p in routes.items()
            if isinstance(p, dict) and isinstance(p.get("until"), str)}


def park(hp: HomePaths, route: str, park_until: str, reason: str, *, repo: Optional[str] = None,
         stage: Optional[str] = None, now: float) -> Dict[str, Any]:
    """Park ``route`` for every repo on this host (a later park already there wins); the parks now."""
    from .. import files

    files.ensure_dir(hp.root, mode=0o700)
    with files.locked(hp.root / ".parked.lock", timeout=LOCK_WAIT_SECONDS):
        parks = merged(load(hp), route, park_until, reason, repo=repo, stage=stage, now=now)
        files.write_json(hp.parks, {"version": VERSION, "routes": parks}, mode=0o600)
    return parks


def unpark(hp: HomePaths, route: str, *, now: float) -> None:
    """Drop ``route``'s park if it has run out at ``now`` (a later park, set since, stays)."""
    from .. import files

    if not hp.parks.exists():
        return
    with files.locked(hp.root / ".parked.lock", timeout=LOCK_WAIT_SECONDS):
        parks = load(hp)
        if route not in parks or active(parks, route, now) is not None:
            return
        del parks[route]
        files.write_json(hp.parks, {"version": VERSION, "routes": parks}, mode=0o600)


def describe(park: Mapping[str, Any], route: str) -> str:
    """``claude subscription is parked until ... (worker hit a usage limit: ...; met in /src/app)``."""
    where = f"; met in {park.get('repo')}" if park.get("repo") else ""
    return f"{route} is parked until {park.get('until')} ({park.get('reason')}{where})"

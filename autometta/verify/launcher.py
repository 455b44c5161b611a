"""The verifier launch for a stage: a panel, an API call, or the family's own CLI.

:func:`autometta.agents.dispatch.start` asks :func:`own_verifier` before it starts a
verifier; the route is :mod:`.transport`'s, the launches are :mod:`.panel`'s
and :mod:`.request`'s.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

from .transport import OwnLaunch, panel_enabled, transport_for


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

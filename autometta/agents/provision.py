"""What an agent is given: its identity, environment, permission, prompt values and the sandbox around it.

Shared by :func:`autometta.agents.dispatch.start` (the tick's and the by-hand runs'
agents) and by the verifier launches of :mod:`autometta.verify` (a panel's
members, the API verifier), which :mod:`autometta.agents.dispatch` itself calls:
so it sits below both.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from .. import auth, families, verdicts
from ..card import Card
from ..errors import UserError
from ..git import worktrees
from ..repo import RepoContext, home_of
from . import privilege, sandbox

ORCHESTRATOR = "autometta tick"
#: Roles that run a shell command from the card or manifest rather than an agent, and the
#: identity the agent registry shows for each.
COMMAND_ROLES = {"acceptance": "acceptance command", "setup": "worktree setup",
                 "postmerge": "acceptance on the merged result"}


def identity_for(stage: Mapping[str, Any], role: str) -> str:
    return str(stage.get("verifier" if role == "verifier" else "worker") or "")


def agent_env(ctx: RepoContext, family: Optional[families.Family], role: str,
              resolve: bool = True) -> Dict[str, str]:
    """The allowlisted environment plus the family's billing route (auth.RouteError if unusable)."""
    return auth.agent_env(ctx.environ, ctx.manifest, family, role, resolve=resolve,
                          manifest_path=ctx.paths.manifest)


def permission_for(ctx: RepoContext, family: families.Family, card: Optional[Card]) -> Optional[privilege.Permission]:
    """The permission mode ``family``'s agent runs in for ``card`` (None for script); UserError if misconfigured."""
    kind = sandbox.kind_of(ctx.manifest, ctx.paths.manifest)
    return privilege.resolve(family.name, ctx.manifest, card, kind, ctx.paths.manifest)


def privilege_summary(ctx: RepoContext, identity: str, role: str, card: Optional[Card]) -> Optional[str]:
    """``permission acceptEdits (default), sandbox bwrap`` for the tick log; None when there is nothing to say."""
    kind = sandbox.kind_of(ctx.manifest, ctx.paths.manifest)
    box = f"sandbox {kind}" if kind != "none" and role != "setup" else ""
    parts = []
    if role in ("worker", "verifier"):
        try:
            permission = permission_for(ctx, families.for_identity(identity), card)
        except UserError:
            permission = None
        if permission is not None:
            parts.append(f"permission {permission.describe()}")
    return ", ".join(parts + ([box] if box else [])) or None


def preflight(ctx: RepoContext, identity: str, role: str = "worker", card: Optional[Card] = None) -> Optional[str]:
    """Why an agent for ``identity`` cannot run here at all, or None."""
    try:
        family = families.for_identity(identity)
    except UserError as exc:
        return f"unknown_family: {exc.message}"
    try:
        env = agent_env(ctx, family, role, resolve=False)  # checks the route; fetches no secret
    except auth.RouteError as exc:
        return f"{exc.marker}: {exc.message}"
    try:
        permission = permission_for(ctx, family, card)
    except UserError as exc:
        return f"{privilege.INVALID}: {exc.message}"
    return family.preflight(env, os.geteuid(), Path(env.get("HOME") or os.path.expanduser("~")), permission)


def prompt_values(ctx: RepoContext, stage: Mapping[str, Any], card: Card, role: str,
                  family: families.Family) -> Dict[str, str]:
    stage_id = card.stage_id
    acceptance = card.acceptance_command
    log = ctx.paths.log(stage_id, "acceptance")
    run = verdicts.run_of(ctx.paths, stage_id, stage) if role == "verifier" else None
    values = {
        "stage-id": stage_id,
        "stage-card-path": str(card.path),
        "project-name": ctx.repo.name,
        "repo-path": str(ctx.work),
        "orchestrator-identity": ORCHESTRATOR,
        "worker-identity": identity_for(stage, "worker"),
        "verifier-identity": identity_for(stage, "verifier"),
        "envelope-path": str(ctx.paths.handoff(stage_id)),
        "verifier-invocation": f"{ORCHESTRATOR} ({family.name} cli)",
        "acceptance-note": (f"   After your handoff autometta runs the card's acceptance command "
                            f"`{acceptance}` itself; the stage fails unless it exits 0." if acceptance else ""),
        "acceptance-evidence": (f"- The card's acceptance command `{acceptance}` passed; its output is in "
                                f"`{log}`." if acceptance and stage.get("acceptance") == "pass" else ""),
        "family-notes": "",
    }
    if run is not None:  # the verdict path is the verifier's alone (autometta.verdicts)
        values["artefact-path"] = str(run.artefact)
    return values


def role_command(ctx: RepoContext, card: Card, role: str) -> str:
    if role == "setup":
        command = worktrees.setup_command(ctx.manifest)
        if command is None:
            raise UserError(f"{ctx.paths.manifest}: no worktree.setup command to run")
        return command
    if not card.acceptance_command:
        raise UserError(f"{card.path}: no acceptance command to run")
    return card.acceptance_command


def outside_of(folders: Sequence[Path], tree: Path) -> Tuple[Path, ...]:
    """The folders not inside ``tree`` (those an agent working there must be given besides it)."""
    root = Path(os.path.realpath(str(tree)))
    return tuple(f for f in folders if not (Path(os.path.realpath(str(f))) == root
                                            or root in Path(os.path.realpath(str(f))).parents))


def confine(ctx: RepoContext, card: Card, role: str, argv: List[str], env: Mapping[str, str], *,
            role_dirs: Sequence[Path] = (), config_dirs: Sequence[Path] = (), guarded: Sequence[Path] = (),
            permission: Optional[privilege.Permission] = None) -> List[str]:
    """``argv`` inside the repo's ``sandbox:`` (unchanged without one): an agent, or a command running
    what one wrote, in ``ctx.work``. SandboxError (``sandbox_unavailable``) when it cannot run."""
    kind = sandbox.kind_of(ctx.manifest, ctx.paths.manifest)
    if kind == "none":
        return argv
    home = home_of(ctx).root
    return sandbox.wrap(kind, argv, env, work=ctx.work, repo=ctx.paths.root, controller_home=home,
                        stage_id=card.stage_id, role=role, role_dirs=role_dirs, config_dirs=config_dirs,
                        extra=sandbox.extra_writable(ctx.manifest, env.get("HOME") or os.path.expanduser("~")),
                        guarded=[Path(card.path), *guarded], nests=permission is not None and permission.nests)

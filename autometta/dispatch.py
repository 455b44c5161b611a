"""Start one agent for a stage: render its prompt, clean its environment, launch it.

The tick, and later the one-shot ``dispatch``/``verify`` commands, all start
agents through :func:`start`, so every agent gets the same treatment: stdin
from /dev/null, its own session, a log at ``state/logs/<id>-<role>.log``, an
exit record, a wall-clock stop, and a registry entry.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from . import auth, families, files, privilege, prompts, sandbox, verdicts, worktrees
from .card import Card, budget_seconds
from .context import RepoContext
from .errors import UserError
from .families.models import resolve_model
from .launch import Launched, LaunchSpec, launch
from .observe import registry
from .paths import HomePaths
from .verify.launcher import own_verifier

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


def _role_command(ctx: RepoContext, card: Card, role: str) -> str:
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
    home = ctx.home.root if ctx.home is not None else HomePaths.from_env(ctx.environ).root
    return sandbox.wrap(kind, argv, env, work=ctx.work, repo=ctx.paths.root, controller_home=home,
                        stage_id=card.stage_id, role=role, role_dirs=role_dirs, config_dirs=config_dirs,
                        extra=sandbox.extra_writable(ctx.manifest, env.get("HOME") or os.path.expanduser("~")),
                        guarded=[Path(card.path), *guarded], nests=permission is not None and permission.nests)


def start(ctx: RepoContext, stage: Mapping[str, Any], card: Card, role: str,
          run_id: Optional[str] = None) -> Launched:
    """Launch ``role`` for ``stage`` (marked ``run_id``, else a new mark); raises UserError if it cannot be started."""
    stage_id = card.stage_id
    paths = ctx.paths
    for folder in (paths.logs, paths.handoffs, paths.verifiers):
        files.ensure_dir(folder)
    log_path = paths.log(stage_id, role)
    handoff = paths.handoff(stage_id)
    artefact = verdicts.artefact_of(paths, stage) if role == "verifier" else None  # made at its dispatch
    # What the role may write besides its tree: the worker its hand-off, the verifier its verdict.
    role_dirs: Tuple[Path, ...] = {"worker": (handoff.parent,), "verifier": (paths.verifiers,)}.get(role, ())
    config_dirs: List[Path] = []
    guarded: List[Path] = []
    permission: Optional[privilege.Permission] = None
    own = None
    if role in COMMAND_ROLES:
        command = _role_command(ctx, card, role)
        family_name, identity = "script", COMMAND_ROLES[role]
        argv = ["/bin/sh", "-c", command]
        env = agent_env(ctx, None, role)
        seconds, _ = budget_seconds(card, "worker" if role == "setup" else "verifier")
    else:
        identity = identity_for(stage, role)
        family = families.for_identity(identity)
        family_name = family.name
        model = resolve_model(identity, family.name, ctx.config.get("models") or {})
        # A verifier panel or an API transport is autometta itself, writing the artefact (autometta.verify).
        own = own_verifier(ctx, stage, card, family, model) if role == "verifier" else None
        if own is not None and own.argv:
            argv, env, family_name = own.argv, own.env, own.family
        else:
            permission = permission_for(ctx, family, card)
            template = "verifier-prompt" if role == "verifier" else "worker-prompt"
            values = prompt_values(ctx, stage, card, role, family)
            if own is not None:
                values["verifier-invocation"] = own.invocation  # the route and its provenance
            prompt = prompts.build(ctx.repo, template, values)
            loop = stage.get("loops")
            if role == "worker" and isinstance(loop, int) and loop > 1 and paths.rebrief(stage_id, loop).is_file():
                prompt += "\n\n" + files.read_text(paths.rebrief(stage_id, loop))  # what the last round lacked
            prompt_file = paths.logs / f"{stage_id}-{role}.prompt.md"
            files.atomic_write(prompt_file, prompt, mode=0o600)  # what the agent was told, for review
            argv = family.command(role, prompt, model=model, repo=ctx.work, card=card,
                                  extra_dirs=outside_of(role_dirs, ctx.work), permission=permission)
            env = agent_env(ctx, family, role)
            env.update(family.extra_env(permission))
            config_dirs = family.config_dirs(env)
            guarded += family.guarded_files(env)
        seconds, _ = budget_seconds(card, role)
    env.update(AUTOMETTA_STAGE_ID=stage_id, AUTOMETTA_ROLE=role, AUTOMETTA_REPO=str(paths.root),
               AUTOMETTA_HANDOFF=str(handoff))
    env.pop("AUTOMETTA_ARTEFACT", None)
    if artefact is not None:  # the verifier's alone (autometta.verdicts)
        env["AUTOMETTA_ARTEFACT"] = str(artefact)
    if role != "setup" and not (own is not None and own.argv):  # setup: your own provisioning; a panel: autometta
        argv = confine(ctx, card, role, argv, env, role_dirs=role_dirs, config_dirs=config_dirs, guarded=guarded,
                       permission=permission)
    launched = launch(LaunchSpec(argv=argv, cwd=ctx.work, env=env, log_path=log_path,
                                 exit_path=paths.exit_record(stage_id, role), budget_seconds=seconds,
                                 run_id=run_id))
    registry.register(paths, pid=launched.pid, started=launched.started, started_at=launched.started_at,
                      role=role, family=family_name, identity=identity, card_path=str(card.path),
                      log_path=str(log_path), budget_seconds=seconds, stage_id=stage_id, run_id=launched.run_id)
    return launched

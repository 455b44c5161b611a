"""Start one agent for a stage: render its prompt, clean its environment, launch it.

The tick, and later the one-shot ``dispatch``/``verify`` commands, all start
agents through :func:`start`, so every agent gets the same treatment: stdin
from /dev/null, its own session, a log at ``state/logs/<id>-<role>.log``, an
exit record, a wall-clock stop, and a registry entry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Mapping, Optional, Tuple

from .. import families, files, sessions, verdicts
from ..card import Card, budget_seconds
from ..families.models import resolve_model
from ..repo import RepoContext, home_of
from ..verify.launcher import own_verifier
from . import privilege, prompts, registry
from .provision import (COMMAND_ROLES, agent_env, confine, identity_for, outside_of, permission_for,
                        prompt_values, role_command)
from .spawn import Launched, LaunchSpec, launch


def start(ctx: RepoContext, stage: Mapping[str, Any], card: Card, role: str,
          run_id: Optional[str] = None, session: Optional[sessions.Session] = None) -> Launched:
    """Launch ``role`` for ``stage`` (marked ``run_id``, else a new mark); raises UserError if it cannot be started.

    ``session`` (:func:`autometta.sessions.prepare`): the run continues a session, or starts one with an id
    chosen up front; None: the CLI's own new session."""
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
        command = role_command(ctx, card, role)
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
            told = session.prompt if session is not None and session.plan.resume else prompt  # a continuation's
            files.atomic_write(prompt_file, told, mode=0o600)  # what the agent was told, for review
            argv = sessions.command(family, session, role, prompt, model=model, repo=ctx.work, card=card,
                                    extra_dirs=outside_of(role_dirs, ctx.work), permission=permission)
            env = agent_env(ctx, family, role)
            env.update(family.extra_env(permission))
            env.update(sessions.environment(family, session))
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
                                 run_id=run_id, home=home_of(ctx).root))
    registry.register(paths, pid=launched.pid, started=launched.started, started_at=launched.started_at,
                      role=role, family=family_name, identity=identity, card_path=str(card.path),
                      log_path=str(log_path), budget_seconds=seconds, stage_id=stage_id, run_id=launched.run_id)
    return launched

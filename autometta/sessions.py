"""Agent sessions of a stage: plan each run (resume or cold), record it, read back what it used and spent.

The tick asks :func:`prepare` before it starts a worker or verifier (the
decision is :func:`autometta.resume.plan`'s), hands the :class:`Session` to
:func:`autometta.agents.dispatch.start` (which builds the command line through
:func:`command` and the environment through :func:`environment`), records the
run with :func:`started` and, once the run is accounted, :func:`ended` reads
the session id the CLI used, whether it refused to resume, and what it
reported, from its log. :func:`own_usage` turns what a resumed run's log
reports into what that run spent (codex's session-wide counts:
:meth:`autometta.families.base.Family.run_usage`; claude's log prices the run
alone, :func:`autometta.families.claude.parse_claude_log`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Dict, List, Mapping, Optional

from . import families, files, resume
from .agents.logwriter import run_log
from .card import Card
from .errors import UserError
from .families.models import resolve_model
from .families.usage import Usage
from .repo import RepoContext
from .timeutil import now_iso

#: The manifest's key (``.autometta.local.yaml``): ``resume: false`` turns resuming off for the repo.
MANIFEST_KEY = "resume"


@dataclass
class Session:
    """One agent run's session: continue ``plan.resume``, or start ``new_id`` (None: the CLI picks one)."""

    role: str
    plan: resume.Plan
    family: str
    model: Optional[str]
    route: Optional[str]
    new_id: Optional[str] = None
    #: The continuation prompt of a resumed run (its next user message).
    prompt: str = ""
    #: The family's CLI was started with it (a verifier panel or an API verifier is autometta itself: no session).
    used: bool = False

    @property
    def id(self) -> Optional[str]:
        return self.plan.resume or self.new_id


def _off(ctx: RepoContext, card: Optional[Card]) -> Optional[str]:
    if card is not None and card.resume is False:
        return f"the card says Resume: no ({card.where('resume')})"
    if ctx.manifest.get(MANIFEST_KEY) is False:
        return f"resume: false in {ctx.paths.manifest}"
    return None


def prepare(ctx: RepoContext, stage: Mapping[str, Any], card: Card, role: str, *,
            by_hand: bool = False) -> Optional[Session]:
    """The session ``role``'s next run of ``stage`` gets; None for a command role or an unknown family.

    ``by_hand``: a run ``autometta dispatch`` or ``verify`` starts (:mod:`autometta.manual`), which never
    resumes: a new session, its id chosen up front where the family chooses one."""
    from .books import parking
    from .agents.provision import agent_env, identity_for, permission_for

    if role not in ("worker", "verifier"):
        return None
    try:
        family = families.for_identity(identity_for(stage, role))
        model = resolve_model(identity_for(stage, role), family.name, ctx.config.get("models") or {})
    except UserError:
        return None
    route = parking.route_for(ctx, stage, role)
    can, available = True, (lambda session_id: True)
    if role == "worker" and not by_hand and resume.last(stage, "worker") is not None:
        try:
            permission = permission_for(ctx, family, card)
            can = family.resume_command(role, "", "x", model=model, repo=ctx.work, card=card,
                                        permission=permission) is not None
            env = {**ctx.environ, **agent_env(ctx, family, role, resolve=False)}  # as the agent's, and ours
        except UserError:  # the start itself reports what is misconfigured (a RouteError is one)
            can, env = False, {}
        available = lambda session_id: family.session_available(env, session_id)  # noqa: E731
    plan = resume.by_hand() if by_hand else \
        resume.plan(stage, role, resume.Want(family.name, model, route, _off(ctx, card), can, available))
    session = Session(role, plan, family.name, model, route)
    if plan.resume is None:
        session.new_id = family.new_session_id()
    else:
        session.prompt = _continuation(ctx, stage, card, plan.of)
    return session


def _continuation(ctx: RepoContext, stage: Mapping[str, Any], card: Card, of: str) -> str:
    stage_id = card.stage_id
    loop = resume.loop_of(stage)
    path = ctx.paths.rebrief(stage_id, loop)
    text = files.read_text(path) if of == resume.REBRIEF and loop > 1 and path.is_file() else None
    return resume.continuation(of, stage_id=stage_id, card_path=str(card.path),
                               handoff=str(ctx.paths.handoff(stage_id)),
                               rebrief=text, rebrief_path=str(path))


def command(family: families.Family, session: Optional[Session], role: str, prompt: str, **kwargs: Any) -> List[str]:
    """The argv of the run: the family's resume command for a continuation, else its command (with the id
    chosen up front, when the family chooses one)."""
    if session is not None:
        session.used = True
    if session is not None and session.plan.resume:
        argv = family.resume_command(role, session.prompt, session.plan.resume, **kwargs)
        if argv is not None:
            return argv
    if session is not None and session.new_id:
        return family.command(role, prompt, session_id=session.new_id, **kwargs)
    return family.command(role, prompt, **kwargs)


def environment(family: families.Family, session: Optional[Session]) -> Dict[str, str]:
    """What the family tells a run about its session (the script family: ``AUTOMETTA_CONTINUATION`` and co.)."""
    if session is None:
        return {}
    return family.session_env(session.id, session.plan.resume is not None, session.plan.of)


def started(stage: Dict[str, Any], session: Optional[Session], now: float) -> Optional[str]:
    """Record the run that just started; the log line for a continuation or a cold fallback, else None."""
    if session is None:
        return None
    entry = resume.record(session.role, resume.loop_of(stage), session.id if session.used else None, session.plan,
                          family=session.family,
                          model=session.model, route=session.route, started_at=now_iso(now))
    stage[resume.FIELD] = resume.records(stage) + [entry]
    if session.plan.resume or session.plan.fallback:
        return f"{session.role} of {stage.get('id')}: {session.plan.why}"
    return None


def _reported(family: families.Family, text: str) -> Optional[Usage]:
    try:
        return family.parse_usage(text)
    except NotImplementedError:
        return None


def _before(stage: Mapping[str, Any], role: str) -> Optional[Usage]:
    """What the run a resumed run continues reported (its session's counts so far), or None."""
    mine = [r for r in resume.records(stage) if r.get("role") == role]
    if len(mine) < 2 or not mine[-1].get("resumed"):
        return None
    for entry in reversed(mine[:-1]):
        if entry.get("id") == mine[-1].get("id") and isinstance(entry.get("reported"), dict):
            doc = entry["reported"]
            return Usage(**{f.name: doc[f.name] for f in fields(Usage) if f.name in doc})
    return None


def own_usage(family: families.Family, stage: Mapping[str, Any], role: str,
              reported: Optional[Usage]) -> Optional[Usage]:
    """What ``role``'s latest run spent, from what its log ``reported`` (a resumed run's session-wide figures
    less those of the run it continues)."""
    if reported is None:
        return None
    before = _before(stage, role)
    return family.run_usage(reported, before) if before is not None else reported


def ended(ctx: RepoContext, stage: Dict[str, Any], role: str, exit_code: Optional[int]) -> None:
    """Note on ``role``'s latest session record what its log says: the id the CLI used, what it reported
    (for the next resumed run's difference), what the run spent (cache reads apart), a refused resume."""
    mine = resume.last(stage, role)
    if mine is None or "ended" in mine:
        return
    try:
        family = families.get(str(mine.get("family")))
    except UserError:
        return
    from .agents.spawn import read_exit

    # only what its runner wrote: an agent's own line could name another session, or book itself nothing
    text, forged = run_log(ctx.paths.log(str(stage["id"]), role), read_exit(ctx.paths.exit_record(str(stage["id"]), role)))
    if forged is not None:
        mine.update(ended=True, log_forged=forged)
        return
    if not mine.get("id"):  # an id chosen up front stays: the CLI keeps it, and a log line cannot move it
        mine["id"] = family.session_id(text)
    reported = _reported(family, text)
    spent = own_usage(family, stage, role, reported)
    if reported is not None:
        mine["reported"] = asdict(reported)
    if spent is not None:
        mine.update(tokens=spent.total_tokens, cache_read_tokens=spent.cache_read_tokens,
                    cost_usd=None if spent.cost_usd is None else round(spent.cost_usd, 6))
    if mine.get("resumed") and family.resume_refused(exit_code, text):
        mine["refused"] = True
    mine["ended"] = True

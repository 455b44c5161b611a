"""Resume, don't restart: whether a worker sent back to its stage continues its own session (pure).

A stage records every agent run's session (``sessions`` in state.yaml, one
record a run: role, loop, id, family, model, billing route, resumed or cold
and why, what it spent). When the worker is started again for the same claim
-- re-briefed after a verifier FAIL or a failed acceptance command, run again
after a usage limit's reset, or started again after its runner was lost --
:func:`plan` says whether that run continues the last worker session or
starts cold, and why (a *fallback*). Verifiers never resume: every verdict
comes from a fresh session. :mod:`autometta.sessions` gathers the facts
(files on disk, the card, the manifest) and records the runs; the families
build the command lines (:meth:`autometta.families.base.Family.resume_command`).

Nothing here reads a file or starts a process (:mod:`autometta.tick.decide`
imports it).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional

#: The stage's field holding its runs' session records, cleared when the stage is claimed again.
FIELD = "sessions"

#: Why a worker that had a session starts cold instead, as recorded (``fallback``) and logged.
FALLBACKS = {
    "resume_off": "resume is turned off ({where})",
    "resume_refused": "its CLI refused to resume session {id}",
    "family_changed": "the worker's family changed ({was} -> {now})",
    "model_changed": "the worker's model changed ({was} -> {now})",
    "route_changed": "the worker's billing route changed ({was} -> {now})",
    "resume_unsupported": "{now} cannot resume a session in this permission mode",
    "session_gone": "the files of session {id} are gone",
    "no_session_id": "its last run named no session id",
    "by_hand": "started by hand (autometta dispatch or verify), which never resumes",
}

#: The ``fallback`` of every run started by hand (:mod:`autometta.manual`): cold, whatever ran before.
BY_HAND = "by_hand"

#: The stage's count of worker runs started again after their runner was lost with nothing of the run left
#: (a reboot), and how many a claim allows before such a loss stalls the stage (``runner_lost``) as any other.
RESTARTS, MAX_RESTARTS = "worker_restarts", 2

#: ``of``: what a continuation continues.
REBRIEF, INTERRUPTED = "rebrief", "interrupted"


class Want(NamedTuple):
    """What the worker's next run would be: its family, model and billing route, and what may stop a resume."""

    family: str
    model: Optional[str]
    route: Optional[str]
    #: Where resume is turned off (``the card``, ``.autometta.local.yaml``), else None.
    off: Optional[str] = None
    #: Can this family resume a session in the stage's permission mode?
    can: bool = True
    #: Are the CLI's files of the session id still there?
    available: Callable[[str], bool] = lambda session_id: True


class Plan(NamedTuple):
    """The worker's next run: continue session ``resume`` (None: cold), continuing ``of``; ``fallback`` names
    why a session that was there is not continued (a key of :data:`FALLBACKS`), ``why`` says it in words."""

    resume: Optional[str] = None
    of: str = ""
    fallback: Optional[str] = None
    why: str = ""


def records(stage: Optional[Mapping[str, Any]]) -> List[Dict[str, Any]]:
    """The stage's session records (a list of dicts; anything else in the field is ignored)."""
    found = (stage or {}).get(FIELD)
    return [r for r in found if isinstance(r, dict)] if isinstance(found, list) else []


def last(stage: Optional[Mapping[str, Any]], role: str) -> Optional[Dict[str, Any]]:
    """The record of ``role``'s latest run, or None."""
    mine = [r for r in records(stage) if r.get("role") == role]
    return mine[-1] if mine else None


def loop_of(stage: Optional[Mapping[str, Any]]) -> int:
    loops = (stage or {}).get("loops")
    return loops if isinstance(loops, int) and loops > 1 else 1


def plan(stage: Optional[Mapping[str, Any]], role: str, want: Want) -> Plan:
    """Whether ``role``'s next run continues the last worker session of ``stage``; see the module docstring."""
    if role != "worker":
        return Plan()  # a verifier always starts fresh, and a command has no session
    before = last(stage, "worker")
    if before is None:
        return Plan()  # the stage's first worker run
    of = REBRIEF if loop_of(stage) > (before.get("loop") if isinstance(before.get("loop"), int) else 1) \
        else INTERRUPTED
    session_id = before.get("id")
    checks = [
        ("resume_off", want.off is not None),
        ("no_session_id", not isinstance(session_id, str) or not session_id),
        ("resume_refused", bool(before.get("refused"))),
        ("family_changed", before.get("family") != want.family),
        ("model_changed", (before.get("model") or None) != (want.model or None)),
        ("route_changed", (before.get("route") or None) != (want.route or None)),
        ("resume_unsupported", not want.can),
    ]
    for key, failed in checks:
        if failed:
            return Plan(None, of, key, _why(key, before, want))
    if not want.available(str(session_id)):
        return Plan(None, of, "session_gone", _why("session_gone", before, want))
    return Plan(str(session_id), of, None, f"resuming session {session_id} ({of})")


def _why(key: str, before: Mapping[str, Any], want: Want) -> str:
    was = {"family_changed": before.get("family"), "model_changed": before.get("model"),
           "route_changed": before.get("route")}.get(key)
    now = {"family_changed": want.family, "model_changed": want.model, "route_changed": want.route,
           "resume_unsupported": want.family}.get(key)
    return "starting cold: " + FALLBACKS[key].format(id=before.get("id"), where=want.off, was=was, now=now)


def restartable(stage: Optional[Mapping[str, Any]]) -> bool:
    """May a worker whose whole run vanished (its runner lost, nothing of it left) be started again?"""
    done = (stage or {}).get(RESTARTS)
    return not isinstance(done, int) or done < MAX_RESTARTS


def refused(diagnosis: Optional[str]) -> bool:
    """Is a worker's diagnosis (:meth:`autometta.families.base.Family.diagnose`) a refused resume?"""
    return bool(diagnosis) and str(diagnosis).endswith("_resume_refused")


def by_hand() -> Plan:
    """The plan of a run started by hand: a new session, always (a worker's too)."""
    return Plan(None, "", BY_HAND, "starting cold: " + FALLBACKS[BY_HAND])


def record(role: str, loop: int, session_id: Optional[str], p: Plan, *, family: str, model: Optional[str],
           route: Optional[str], started_at: str) -> Dict[str, Any]:
    """The session record of a run that starts now."""
    return {"role": role, "loop": loop, "id": session_id, "family": family, "model": model, "route": route,
            "resumed": p.resume is not None, "of": p.of or None, "fallback": p.fallback,
            "started_at": started_at}


def continuation(of: str, *, stage_id: str, card_path: str, handoff: str, rebrief: Optional[str] = None,
                 rebrief_path: Optional[str] = None) -> str:
    """The next user message of a resumed worker session: the re-brief (failed criteria, the verifier's
    evidence, the acceptance log's tail) pointing at its saved file, or, after an interruption, where to go on."""
    if of == REBRIEF and rebrief:
        return (f"You are the worker for stage {stage_id}, continuing your own session: your last round was "
                f"sent back. The re-brief below is saved at `{rebrief_path}`; the stage card is "
                f"`{card_path}`.\n\n{rebrief.strip()}\n")
    return (f"You are the worker for stage {stage_id}, continuing your own session: your last run was "
            "interrupted (a usage limit, a reboot or a lost supervisor) before it wrote its handoff envelope. "
            "The work tree still holds what you changed. Go on where you left off, following the stage card "
            f"`{card_path}`, and write the handoff envelope to `{handoff}` when you are done.\n")

"""The verifier panel: three verifiers in parallel, two votes make a quorum, the majority decides.

When a card says ``- **Verifier panel:** true`` (or ``AUTOMETTA_VERIFIER_PANEL=1``)
the tick's verifier is autometta itself, ``autometta _panel-run <plan>``,
supervised like any agent. :func:`dispatch_launch` writes the *plan* (who the
panellists are, their argv, logs, verdict files, the deadline) to
``state/logs/<id>-panel.plan.json`` and returns the argv; :func:`run_panel`
carries it out:

1. starts every panellist under the runner (:func:`autometta.agents.spawn.launch`),
   each with its own log ``state/logs/<id>-panel-<n>.log``, exit record and
   verdict path ``state/verifiers/<id>.panel/<name>.<nonce>.json``, made for
   this dispatch and given to that panellist alone (``AUTOMETTA_ARTEFACT``,
   its prompt), and registers it;
2. waits for them without polling files, until the card's verifier
   wall-clock budget is spent, then stops the stragglers (SIGTERM to their
   process groups; the runner escalates);
3. counts the votes (:func:`autometta.tick.outcomes.tally`): a panellist that
   crashed, timed out, or left no readable verdict with a PASS/FAIL
   ``overall`` does not vote, nor does a verdict file it cannot have written
   (a symlink, a hard link, older than its start: ``verdict_forged``, see
   :mod:`autometta.verdicts`); a schema-invalid PASS, or a PASS whose own
   criteria do not all PASS, counts as FAIL, as it would for a single verifier;
4. prints one usage line with every panellist's tokens and cost (so the
   tick accounts the whole panel as this stage's verifier), then writes the
   synthesis atomically, last, to the panel's own verdict path (the
   verifier run's, ``state/verifiers/<id>.<nonce>.json``); the tick keeps it
   at ``state/verifiers/<id>.json`` once it acted on it.

The synthesis follows ``schemas/verifier-panel.json``: ``criteria``,
``additional_findings`` and ``headline`` come from the first panellist (in
panel order) that voted with the majority and wrote a schema-valid verdict
(the bash version took the first file, even a minority one);
``artefact_path`` is null when a panellist wrote no file; ``quorum.achieved``
counts votes. With no quorum or a tied vote there is no verdict: the
synthesis says ``overall: FAIL`` (nothing is committed) and the tick, which
counts the panellists' votes again (:func:`autometta.tick.outcomes.panel_problem`),
stops the stage as ``verifier_panel_no_quorum`` for an operator.

The panel's members come from ``panel:`` in config.yaml, three entries::

    panel:
      - name: opus                                        # file name of its verdict
        identity: "Claude Opus 4.8 <claude-opus-4-8@local>"
        transport: api                                    # cli | api (sdk); default: the family's route
        model: claude-opus-4-8                            # default: from the identity
      - ...
      - name: check
        identity: "Script Check <script-check@local>"
        command: "python3 tools/check.py > \\"$AUTOMETTA_ARTEFACT\\""   # Script members only

Without it, :data:`DEFAULT_PANEL` (the bash version's): Claude Opus and
Claude Sonnet through the Anthropic API, Codex through its CLI.

``autometta panel STAGE_ID`` runs the same plan *read-only*
(:func:`build_plan` with ``out_dir``): every file goes to a temporary folder,
nothing is registered and ``state/`` is not touched.
"""

from __future__ import annotations

import concurrent.futures
import os
import re
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from .. import families, files, schema, verdicts
from ..agents import liveness, prompts
from ..agents.identity import parse_identity, slugify
from ..agents.spawn import Launched, LaunchSpec, launch, read_exit, self_argv
from ..card import Card, budget_seconds
from ..envelope import artefact_from_message, read_artefact
from ..errors import UserError
from ..families import family_of
from ..families.usage import Usage
from ..paths import RepoPaths
from ..tick.outcomes import INCONSISTENT_MARKER, NO_QUORUM, QUORUM_REQUIRED, criteria_problem, tally
from ..timeutil import now_iso
from . import request as api_request
from .transport import PANEL_SIZE, OwnLaunch, Route, normalise_transport, transport_for

#: The bash version's panel (spec §7.4): two Claude tiers through the API, one Codex through its CLI.
DEFAULT_PANEL: Tuple[Dict[str, str], ...] = (
    {"name": "opus", "identity": "Claude Opus 4.8 <claude-opus-4-8@local>", "transport": "api"},
    {"name": "sonnet", "identity": "Claude Sonnet 4.6 <claude-sonnet-4-6@local>", "transport": "api"},
    {"name": "codex", "identity": "Codex GPT-5.3 <codex-gpt-5-3@local>", "transport": "cli"},
)
PANEL_IDENTITY = "autometta panel <panel@local>"
PLAN_VERSION = 1
#: How often a waiting panel says so in its log (a silent log looks stuck).
PROGRESS_SECONDS = 60.0
#: After stopping a straggler, how long to wait for its runner before SIGKILL.
STOP_GRACE_SECONDS = 40.0

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
_KEYS = ("name", "identity", "transport", "model", "command")


@dataclass(frozen=True)
class Member:
    """One seat on the panel, as configured."""

    index: int
    name: str
    identity: str
    family: str
    route: Route
    model: Optional[str] = None
    command: Optional[str] = None


def panel_members(config: Mapping[str, Any], environ: Mapping[str, str], manifest: Mapping[str, Any],
                  source: str = "config.yaml") -> List[Member]:
    """The panel from ``panel:`` in config.yaml, or :data:`DEFAULT_PANEL`; UserError naming the entry."""
    raw = config.get("panel") if isinstance(config, Mapping) else None
    provenance = "panel config"
    if raw is None:
        raw, provenance = [dict(m) for m in DEFAULT_PANEL], "panel default"
    if not isinstance(raw, list) or len(raw) != PANEL_SIZE:
        raise UserError(f"{source}: panel must be a list of {PANEL_SIZE} members (name, identity, transport); "
                        "fix it or remove it to use the default panel")
    members: List[Member] = []
    for index, entry in enumerate(raw):
        where = f"{source}: panel[{index}]"
        if not isinstance(entry, Mapping):
            raise UserError(f"{where}: expected a mapping with identity (and name, transport, model)")
        unknown = sorted(set(entry) - set(_KEYS))
        if unknown:
            raise UserError(f"{where}: unknown key {unknown[0]!r}; use {', '.join(_KEYS)}")
        identity = entry.get("identity")
        if not isinstance(identity, str) or not identity.strip():
            raise UserError(f"{where}: identity is missing; write it like 'Claude Opus 4.8 <claude-opus-4-8@local>'")
        family = family_of(identity)
        if family is None:
            raise UserError(f"{where}: identity {identity!r} names no agent family; it must {families.naming_hint()}")
        name = entry.get("name") or slugify(parse_identity(identity)[0])[:40]
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise UserError(f"{where}: name {name!r} must be lowercase letters, digits and dashes (it names a file)")
        if any(m.name == name for m in members):
            raise UserError(f"{where}: name {name!r} is used twice; give each member its own name")
        if entry.get("transport") not in (None, ""):
            route = Route(family, normalise_transport(entry["transport"], f"{where}.transport"), provenance)
        else:
            route = transport_for(family, environ, manifest)
        if route.transport == "api" and families.get(family).api is None:
            raise UserError(f"{where}: a {family} member has no API transport; set transport: cli")
        command = entry.get("command")
        if families.get(family).runs_card_command:
            if not isinstance(command, str) or not command.strip():
                raise UserError(f"{where}: a Script member runs a shell command; add command: '<command>'")
        elif command not in (None, ""):
            raise UserError(f"{where}: command is only for Script members; remove it")
        model = entry.get("model")
        if model is not None and (not isinstance(model, str) or not model.strip()):
            raise UserError(f"{where}: model must be a model id such as claude-sonnet-4-6")
        members.append(Member(index, name, identity.strip(), family, route, model, command))
    return members


# ------------------------------------------------------------------ the plan

def panel_dir(paths: RepoPaths, stage_id: str) -> Path:
    """``state/verifiers/<id>.panel/``: the panellists' own verdicts."""
    return paths.verifiers / f"{stage_id}.panel"


def plan_path(paths: RepoPaths, stage_id: str) -> Path:
    return paths.logs / f"{stage_id}-panel.plan.json"


def _rel(repo: Path, path: Path) -> str:
    try:
        return str(path.relative_to(repo))
    except ValueError:
        return str(path)


def _archive_old_panel(paths: RepoPaths, stage_id: str) -> None:
    """Move an earlier attempt's panellist verdicts aside, so none is counted as this attempt's vote."""
    old = panel_dir(paths, stage_id)
    if old.exists() and any(old.iterdir()):
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        target = files.ensure_dir(paths.archive / stage_id / stamp / old.parent.name)  # as envelope.archive does
        dest, n = target / old.name, 1
        while dest.exists():
            n += 1
            dest = target / f"{old.name}.{n}"
        os.replace(old, dest)


def build_plan(ctx: Any, stage: Mapping[str, Any], card: Card, *, reason: str,
               out_dir: Optional[Path] = None) -> Tuple[Dict[str, Any], Dict[str, str]]:
    """The panel's plan and the environment ``_panel-run`` needs (each panellist gets its share).

    With ``out_dir`` (read-only) every file the panel writes goes there; else
    into ``state/`` as described in the module docstring. Raises UserError
    when a member cannot run at all (an API member without its key).
    """
    from ..agents import provision
    from ..repo import home_of
    from ..families.models import resolve_model

    paths: RepoPaths = ctx.paths
    repo: Path = ctx.work  # a parallel stage is judged in its worktree
    stage_id = card.stage_id
    source = str(ctx.home.config) if getattr(ctx, "home", None) is not None else "config.yaml"
    members = panel_members(ctx.config, ctx.environ, ctx.manifest, source)
    seconds, _ = budget_seconds(card, "verifier")
    read_only = out_dir is not None
    if read_only:
        assert out_dir is not None
        votes_dir, logs_dir = out_dir / "panel", out_dir / "logs"
        out, plan_file = out_dir / "synthesis.json", out_dir / "plan.json"
    else:
        votes_dir, logs_dir = panel_dir(paths, stage_id), paths.logs
        out, plan_file = verdicts.artefact_of(paths, stage), plan_path(paths, stage_id)
    env: Dict[str, str] = {}
    entries: List[Dict[str, Any]] = []
    for m in members:
        fam = families.get(m.family)
        member_env = provision.agent_env(ctx, fam, "verifier")
        artefact = votes_dir / f"{m.name}.{verdicts.nonce()}.json"  # this member's, for this dispatch only
        log = logs_dir / f"{stage_id}-panel-{m.index}.log" if read_only else paths.log(stage_id, f"panel-{m.index}")
        exit_file = (logs_dir / f"{stage_id}-panel-{m.index}.exit.json" if read_only
                     else paths.exit_record(stage_id, f"panel-{m.index}"))
        model = m.model or (resolve_model(m.identity, m.family, ctx.config.get("models") or {})
                            if not fam.runs_card_command else None)
        if m.route.transport == "api":
            api = str(fam.api)
            module = fam.api_transport()
            if not model:
                raise UserError(f"{source}: panel member {m.name} uses the {module.LABEL} but names no model; "
                                "add model: to it or a GPT/Claude tier to its identity")
            try:
                module.api_key(member_env)
            except UserError as exc:
                raise UserError(f"panel member {m.name}: {exc.message}") from None
            invocation = api_request.api_invocation(api, model, m.route)
            info = api_request.StageInfo(
                stage_id=stage_id, repo=repo, card_path=Path(card.path), verifier_identity=m.identity,
                verifier_invocation=invocation, worker_identity=provision.identity_for(stage, "worker"),
                artefact_path=_rel(repo, artefact))
            argv = api_request.api_argv(api=api, family=m.family, info=info, out=artefact, model=model,
                                        base_url=api_request.config_base_url(ctx.config, m.family), timeout=seconds,
                                        config=ctx.config)
        elif fam.runs_card_command:
            invocation = f"autometta panel member {m.name} (script; {m.route.describe()})"
            argv = ["/bin/sh", "-c", str(m.command)]
        else:
            invocation = f"autometta panel member {m.name} ({m.family} cli; {m.route.describe()})"
            values = provision.prompt_values(ctx, dict(stage, verifier=m.identity), card, "verifier", fam)
            values.update({
                "verifier-identity": m.identity, "artefact-path": str(artefact), "verifier-invocation": invocation,
                "family-notes": (f"You are panellist {m.index} ({m.name}) of a {PANEL_SIZE}-verifier panel; the "
                                 "majority decides. Write your verdict to the artefact path above and nowhere "
                                 "else, or make it your final message."),
            })
            prompt = prompts.build(repo, "verifier-prompt", values)
            files.ensure_dir(logs_dir)
            files.atomic_write(logs_dir / f"{stage_id}-panel-{m.index}.prompt.md", prompt, mode=0o600)
            permission = provision.permission_for(ctx, fam, card)
            argv = fam.command("verifier", prompt, model=model, repo=repo, card=card,
                               extra_dirs=provision.outside_of((votes_dir,), repo), permission=permission)
            member_env.update(fam.extra_env(permission))
        if m.route.transport != "api":  # an agent (a CLI or a script); an API member is autometta itself
            argv = provision.confine(ctx, card, f"panel-{m.index}", argv, member_env, role_dirs=(votes_dir,),
                                    config_dirs=fam.config_dirs(member_env), guarded=fam.guarded_files(member_env),
                                    permission=provision.permission_for(ctx, fam, card))
        for name, value in member_env.items():
            env.setdefault(name, value)
        entries.append({
            "id": m.index, "name": m.name, "identity": m.identity, "family": m.family,
            "transport": m.route.transport, "provenance": m.route.provenance, "model": model,
            "invocation": invocation, "argv": argv, "env_names": sorted(member_env),
            "log": str(log), "exit": str(exit_file), "artefact": str(artefact),
        })
    summary = ", ".join(f"{e['name']}: {e['family']} {e['transport']}" for e in entries)
    plan = {
        "version": PLAN_VERSION, "stage_id": stage_id, "repo": str(repo), "card": str(card.path),
        "out": str(out), "panel_dir": str(votes_dir), "budget_seconds": seconds, "read_only": read_only,
        "identity": PANEL_IDENTITY, "invocation": f"autometta _panel-run (panel on by {reason}; {summary})",
        "usage_family": _usage_family(provision.identity_for(stage, "verifier")),
        "panellists": entries,
        "home": str(home_of(ctx).root),  # where a bug in a panellist's runner leaves its crash log
    }
    if not read_only:
        files.ensure_dir(paths.verifiers)
        _archive_old_panel(paths, stage_id)
    for folder in (votes_dir, logs_dir):
        files.ensure_dir(folder)
    files.write_json(plan_file, plan, mode=0o600)
    plan["plan_file"] = str(plan_file)
    return plan, env


def _usage_family(identity: str) -> str:
    """Whose log format the panel's usage line takes: the stage verifier's family (the tick parses it)."""
    return family_of(identity) or "claude"


def dispatch_launch(ctx: Any, stage: Mapping[str, Any], card: Card, family: Any, reason: str) -> OwnLaunch:
    """The tick's panel: write the plan, return ``autometta _panel-run <plan>`` to launch as the verifier."""
    plan, env = build_plan(ctx, stage, card, reason=reason)
    return OwnLaunch(invocation=plan["invocation"], argv=self_argv("_panel-run", plan["plan_file"]), env=env,
                     family="panel")


def load_plan(path: Path) -> Dict[str, Any]:
    doc = files.read_json(path)
    if not isinstance(doc, dict) or doc.get("version") != PLAN_VERSION or not isinstance(doc.get("panellists"), list):
        raise UserError(f"{path}: not a panel plan autometta {PLAN_VERSION} wrote; re-queue the stage")
    return doc


# ------------------------------------------------------------------ running it

@dataclass
class Vote:
    """One panellist's outcome."""

    id: int
    name: str
    identity: str
    vote: Optional[str]  # PASS | FAIL | None (no vote)
    status: str  # what happened, for people
    artefact: Path
    doc: Optional[Dict[str, Any]] = None
    valid: bool = False  # schema-valid verdict for this stage
    usage: Optional[Usage] = None


@dataclass
class PanelResult:
    doc: Dict[str, Any]
    votes: List[Vote]
    overall: Optional[str]
    reason: str
    usage: Usage = field(default_factory=Usage)

    @property
    def exit_code(self) -> int:
        return 0 if self.overall == "PASS" else 1 if self.overall == "FAIL" else 2


class Stopped(Exception):
    """The panel was told to stop (SIGTERM/SIGHUP) before it finished; no synthesis is written."""


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:  # collected elsewhere (liveness.reap, a later launch)
        pass


def _wait(launched: Dict[str, Launched], deadline: float, say: Callable[[str], None]) -> List[str]:
    """Wait for every runner to exit, stopping those still running at ``deadline``; the names stopped."""
    stopped: List[str] = []
    if not launched:
        return stopped
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=len(launched))
    futures = {pool.submit(_reap, one.pid): name for name, one in launched.items()}
    pending = set(futures)
    try:
        while pending:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            _, pending = concurrent.futures.wait(pending, timeout=min(left, PROGRESS_SECONDS))
            if pending and deadline > time.monotonic():
                say(f"panel: waiting for {', '.join(sorted(futures[f] for f in pending))} "
                    f"({int(deadline - time.monotonic())}s left)")
        for fut in pending:
            name = futures[fut]
            stopped.append(name)
            say(f"panel: {name} still running at the deadline; stopped (no vote)")
            liveness.signal_group(launched[name].pgid, signal.SIGTERM)
        _, pending = concurrent.futures.wait(pending, timeout=STOP_GRACE_SECONDS)
        for fut in pending:
            liveness.signal_group(launched[futures[fut]].pgid, signal.SIGKILL)
    except BaseException:
        for fut, name in futures.items():
            if not fut.done():
                liveness.signal_group(launched[name].pgid, signal.SIGTERM)
        raise
    finally:
        pool.shutdown(wait=True)
    return stopped


def _outcome(record: Optional[Dict[str, Any]], stopped: bool, started: bool) -> str:
    if not started:
        return "not started"
    if stopped:
        return "timed out (stopped at the panel deadline)"
    record = record or {}
    if record.get("timed_out"):
        return "timed out"
    if record.get("error"):
        return f"crashed ({record['error']})"
    if record.get("exit_code") not in (0, None):
        return f"crashed (exit {record['exit_code']})"
    if record.get("signal"):
        return f"killed (signal {record['signal']})"
    return "exited without a verdict"


def judge(entry: Mapping[str, Any], stage_id: str, stopped: bool, started: bool,
          since: Optional[float] = None) -> Vote:
    """One panellist's vote from its verdict file (or, for a CLI agent, its final message).

    ``since``: when the panellist was started; a verdict file last written
    before it, or one it cannot have written (a symlink, a hard link), is no vote.
    """
    from ..agents.logwriter import read_log

    artefact = Path(entry["artefact"])
    log_text = read_log(Path(entry["log"]))
    fam = families.FAMILIES.get(entry["family"])
    usage = fam.parse_usage(log_text) if fam is not None and started else None
    forged = verdicts.check_file(artefact, since)
    if forged is not None:
        return Vote(entry["id"], entry["name"], entry["identity"], None, f"{verdicts.MARKER}: {forged}", artefact,
                    usage=usage)
    if not artefact.exists() and entry["transport"] == "cli" and fam is not None and started:
        doc = artefact_from_message(fam.final_message(log_text))
        if doc is not None:  # as the tick does for a verifier that cannot write files
            files.write_json(artefact, doc, mode=0o600)
    vote = Vote(entry["id"], entry["name"], entry["identity"], None, "", artefact, usage=usage)
    art = read_artefact(artefact, stage_id)
    if art.kind == "missing":
        vote.status = _outcome(read_exit(Path(entry["exit"])), stopped, started)
        invalid = api_request.invalid_path(artefact)
        if invalid.exists():
            vote.status += f"; invalid answer in {invalid.name}"
        return vote
    if art.kind == "partial":
        vote.status = "wrote an unreadable verdict"
        return vote
    raw = art.doc.get("overall") if isinstance(art.doc, dict) else None
    vote.doc = art.doc
    if raw not in ("PASS", "FAIL"):
        vote.status = f"wrote no PASS/FAIL overall ({str(raw)[:20]!r})"
        return vote
    vote.vote = art.overall
    inconsistent = criteria_problem(art.doc)  # one rule with the single verifier's (tick.outcomes.verdict_problem)
    vote.valid = not art.problem and not art.errors and inconsistent is None
    vote.status = art.overall if not art.problem else f"FAIL ({art.problem})"
    if inconsistent is not None and not art.problem:
        vote.vote, vote.status = "FAIL", f"FAIL ({INCONSISTENT_MARKER}: {inconsistent})"
    return vote


def synthesise(plan: Mapping[str, Any], votes: List[Vote], ran_at: Optional[str] = None) -> Tuple[Dict[str, Any], Any]:
    """The panel's verdict document (``schemas/verifier-panel.json``) and the tally."""
    repo = Path(plan["repo"])
    count = tally([v.vote for v in votes])
    source = next((v for v in votes if count.overall and v.vote == count.overall and v.valid), None)
    lines = "; ".join(f"{v.name} {v.status}" for v in votes)
    if count.overall is None:
        head = f"[Panel synthesis — no verdict: {count.reason}; the stage stops as {NO_QUORUM}]"
    elif source is not None:
        head = f"[Panel synthesis — {count.reason}; criteria from {source.name}]"
    else:
        head = f"[Panel synthesis — {count.reason}; no majority panellist wrote a schema-valid verdict]"
    findings = str(source.doc.get("additional_findings") or "") if source and source.doc else ""
    doc: Dict[str, Any] = {
        "stage_id": plan["stage_id"],
        "verifier_identity": plan.get("identity") or PANEL_IDENTITY,
        "verifier_invocation": plan["invocation"],
        "ran_at": ran_at or now_iso(),
        "criteria": list(source.doc.get("criteria") or []) if source and source.doc else [],
        "additional_findings": f"{head} Panellists: {lines}." + (f" {findings}" if findings else ""),
        "overall": count.overall or "FAIL",
        "panellists": [{"id": v.id, "identity": v.identity,
                        "artefact_path": _rel(repo, v.artefact) if v.artefact.exists() else None,
                        "overall": v.vote} for v in votes],
        "quorum": {"required": QUORUM_REQUIRED, "achieved": count.votes},
    }
    headline = source.doc.get("headline") if source and source.doc else None
    if isinstance(headline, str) and headline.strip():
        doc["headline"] = headline
    return doc, count


def run_panel(plan: Mapping[str, Any], environ: Mapping[str, str], *, register: bool = True,
              say: Callable[[str], None] = print) -> PanelResult:
    """Carry out ``plan``: start, wait, count, account, write the synthesis (last). See the module docstring."""
    from ..agents import registry

    repo = Path(plan["repo"])
    paths = RepoPaths(repo)
    stage_id = plan["stage_id"]
    seconds = int(plan.get("budget_seconds") or 0) or None
    home = Path(plan["home"]) if isinstance(plan.get("home"), str) and plan["home"] else None
    launched: Dict[str, Launched] = {}
    since: Dict[str, float] = {}
    stopped: List[str] = []
    previous = _stop_on_signals()
    try:
        say(f"panel: {len(plan['panellists'])} panellists for {stage_id}, deadline {seconds}s")
        deadline = time.monotonic() + (seconds or 0)
        for entry in plan["panellists"]:
            env = {name: environ[name] for name in entry["env_names"] if name in environ}
            env.setdefault("PATH", environ.get("PATH") or os.defpath)
            env.update(AUTOMETTA_STAGE_ID=stage_id, AUTOMETTA_ROLE="verifier", AUTOMETTA_PANELLIST=entry["name"],
                       AUTOMETTA_ARTEFACT=entry["artefact"])
            since[entry["name"]] = time.time()
            try:
                one = launch(LaunchSpec(argv=list(entry["argv"]), cwd=repo, env=env, log_path=Path(entry["log"]),
                                        exit_path=Path(entry["exit"]), budget_seconds=seconds, home=home))
            except UserError as exc:
                say(f"panel: {entry['name']} could not start: {exc.message} (no vote)")
                continue
            launched[entry["name"]] = one
            say(f"panel: {entry['name']} ({entry['family']} {entry['transport']}) pid {one.pid}, log {entry['log']}")
            if register:
                registry.register(paths, pid=one.pid, started=one.started, started_at=one.started_at, role="verifier",
                                  family=entry["family"], identity=entry["identity"], card_path=plan["card"],
                                  log_path=entry["log"], budget_seconds=seconds or 0, stage_id=stage_id)
        stopped = _wait(launched, deadline, say)
    finally:
        _restore_signals(previous)
    votes = [judge(entry, stage_id, entry["name"] in stopped, entry["name"] in launched, since.get(entry["name"]))
             for entry in plan["panellists"]]
    doc, count = synthesise(plan, votes)
    total = Usage()
    for v in votes:
        total = api_request.add_usage(total, v.usage)
    for v in votes:
        say(f"panel: {v.name}: {v.status}")
    say(f"panel: {count.reason}")
    say(api_request.usage_event(plan.get("usage_family") or "claude", total, total.cost_usd))
    problems = schema.errors(doc, schema.load_schema("verifier-panel"))
    if problems:  # pragma: no cover - synthesise() builds a valid document
        raise UserError(f"panel synthesis for {stage_id} does not fit schemas/verifier-panel.json: {problems[0]}")
    files.write_json(Path(plan["out"]), doc, mode=0o600)
    say(f"panel: synthesis {'no verdict' if count.overall is None else count.overall} written to {plan['out']}")
    return PanelResult(doc, votes, count.overall, count.reason, total)


def _raise_stopped(signum: int, _frame: Any) -> None:
    raise Stopped(f"signal {signum}")


def _stop_on_signals() -> Dict[int, Any]:
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        previous[sig] = signal.signal(sig, _raise_stopped)
    return previous


def _restore_signals(previous: Dict[int, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)

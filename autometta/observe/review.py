"""``autometta show REPO STAGE_ID``: the review of one stage, from what is on disk and in git.

One document (:func:`build`) that the terminal (:func:`render`), ``--json`` and
the dashboard's stage page (:mod:`.stagepage`) all show:

* the card's title and acceptance criteria, each with the verifier's verdict
  and evidence (``state/verifiers/<id>.json``, judged as the tick judges it);
* the acceptance command, its exit and the end of its log;
* the change: the stage's commit, or for a stage not landed its branch's and
  worktree's diff against the base (its own tree's uncommitted changes for a
  stage that ran in the repo's checkout), as a diffstat and the diff;
* what the worker and the verifier did, read from their logs by their family
  (:meth:`autometta.families.base.Family.transcript`: each tool call with its
  target and result, and the final message), with tokens and cost per role;
* each agent run's session (its id, resumed or cold, what it spent): the
  stage's in state.yaml, and those of its runs by hand
  (``state/logs/<id>-oneshot.json``);
* a timeline: claimed, each process spawned and exited (exit records),
  verified (the verdict's time on disk), landed, with the time between.

A piece that is missing or cannot be read is shown as missing, with why
(``problems``); nothing here raises for a bad file. Every string is masked
(:func:`autometta.secrets.redact_doc`). Git runs only when ``with_git`` (the
dashboard asks only when the stage changed) and never writes the repo: the
worktree's diff goes through a throwaway index and object folder
(:func:`autometta.git.gitops.work_tree_diff`).
"""

from __future__ import annotations

import os
import re
import stat
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ..errors import UserError
from ..paths import HomePaths, RepoPaths
from ..secrets import redact_doc
from ..stagerecord import StageRecord, records
from ..timeutil import now_iso, parse_iso
from . import byhand
from .screen import _CONTROLS, _ESCAPES

#: Bytes of a log read: the end of a larger one (its usage and final message are at its end).
LOG_LIMIT = 16 * 1024 * 1024
#: Lines of the acceptance log shown.
ACCEPTANCE_TAIL = 20
#: Characters of diff kept (the diffstat is always whole).
DIFF_LIMIT = 200_000
#: Steps kept per agent in the document; the terminal shows the first and last of a longer run.
STEP_LIMIT = 500
#: Characters of a final message kept.
MESSAGE_LIMIT = 4000

_HEX = re.compile(r"^[0-9a-f]{7,64}$")
_REF = re.compile(r"^(?!-)(?!.*\.\.)[A-Za-z0-9._/@+-]{1,200}$")
_NUMBERED = re.compile(r"^\s{0,3}(\d+)[.)]\s+(.*\S)\s*$")
_AGENT_ROLES = ("worker", "verifier")
#: The order a stage's processes run in: same-second events are listed in it.
_PIPELINE = ("setup", "worker", "acceptance", "verifier", "postmerge")
_COMMAND_ROLES = ("setup", "acceptance", "postmerge")


# --------------------------------------------------------------------------- reading

def read_stage(paths: RepoPaths, stage_id: str) -> Tuple[Optional[Dict[str, Any]], Optional[str]]:
    """The stage's state.yaml record, or None and why."""
    from .repodocs import read_state

    if not paths.state_yaml.exists():
        return None, f"{paths.state_yaml}: missing; is this a subscribed repo ('autometta subscribe')?"
    doc = read_state(paths)
    if doc is None:
        return None, f"{paths.state_yaml}: cannot be read; restore it from state.yaml.bak or git"
    for rec in records(doc):
        if rec.id == stage_id:
            return rec.doc, None
    return None, f"{paths.state_yaml}: no stage {stage_id} (queue it with 'autometta add-stage')"


def read_log(path: Path, limit: int = LOG_LIMIT) -> Tuple[Optional[str], Optional[str]]:
    """A log's text, its last ``limit`` bytes when larger, and None; or None and why it is not read.

    An agent may replace its log: a symlink is not followed (it would show
    whatever file it names), a FIFO or a device is not opened for reading
    (it would block), nothing is read whole.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(str(path), flags)
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return None, f"{path}: not read ({'a symlink' if os.path.islink(path) else exc.strerror})"
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None, f"{path}: not a regular file; not read"
        if info.st_size > limit:
            os.lseek(fd, info.st_size - limit, os.SEEK_SET)
        chunks, size = [], 0
        while size < limit:
            chunk = os.read(fd, min(1 << 20, limit - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        return None, f"{path}: cannot be read ({exc.strerror})"
    finally:
        os.close(fd)
    return b"".join(chunks).decode("utf-8", errors="replace"), None


def _tail_lines(text: str, count: int) -> List[str]:
    lines = text.rstrip("\n").splitlines()
    return lines[-count:] if text.strip() else []


def criteria_of(card: Any) -> List[str]:
    """The card's numbered acceptance criteria, each as one line (continuation lines joined)."""
    out: List[str] = []
    for line in card.section_body("Acceptance criteria"):
        match = _NUMBERED.match(line)
        if match:
            out.append(match.group(2))
        elif out and line.strip() and line.startswith((" ", "\t")):
            out[-1] += " " + line.strip()
    return out


# --------------------------------------------------------------------------- the pieces

def _card(paths: RepoPaths, stage_id: str, manifest: Dict[str, Any]) -> Tuple[Dict[str, Any], Any]:
    from .. import card as cards

    try:
        path = cards.find_card(paths.root, stage_id, cards.card_globs(paths.root, manifest))
        if path is None:
            return {"missing": f"no card {stage_id}.md under the repo's card globs"}, None
        card = cards.parse_card(path)
    except UserError as exc:
        return {"missing": exc.message}, None
    return {"path": str(path), "title": card.title, "criteria": criteria_of(card),
            "acceptance_command": card.acceptance_command}, card


def _verdict(paths: RepoPaths, stage_id: str, card_criteria: List[str]) -> Dict[str, Any]:
    from ..envelope import read_artefact

    path = paths.verifier_artefact(stage_id)
    artefact = read_artefact(path, stage_id)
    out: Dict[str, Any] = {"path": str(path)}
    doc = artefact.doc if isinstance(artefact.doc, dict) else {}
    if artefact.kind == "missing":
        out["missing"] = f"{path}: no verdict"
    elif artefact.kind == "partial" or not doc:
        out["missing"] = artefact.problem or f"{path}: not a verdict"
    else:
        out.update(overall=artefact.overall, problem=artefact.problem or None,
                   verifier_identity=_str(doc.get("verifier_identity")), ran_at=_str(doc.get("ran_at")),
                   headline=_str(doc.get("headline")), findings=_str(doc.get("additional_findings")))
        try:
            out["written_at"] = now_iso(path.stat().st_mtime)
        except OSError:
            pass
    judged = doc.get("criteria") if isinstance(doc.get("criteria"), list) else []
    by_id: Dict[Any, Dict[str, Any]] = {}
    for item in judged:
        if isinstance(item, dict) and item.get("id") not in by_id:
            by_id[item.get("id")] = item
    rows = []
    for n, text in enumerate(card_criteria, start=1):
        item = by_id.pop(n, {})
        rows.append({"id": n, "criterion": text, "name": _str(item.get("name")),
                     "verdict": _str(item.get("verdict")) or None, "evidence": _str(item.get("evidence"))})
    for key, item in by_id.items():  # judged, but not on the card (or the card is missing)
        rows.append({"id": key if isinstance(key, int) else _str(key), "criterion": None,
                     "name": _str(item.get("name")), "verdict": _str(item.get("verdict")) or None,
                     "evidence": _str(item.get("evidence"))})
    out["criteria"] = rows
    return out


def _str(value: Any) -> str:
    return "" if value is None else value if isinstance(value, str) else str(value)


def _exit(paths: RepoPaths, stage_id: str, role: str) -> Dict[str, Any]:
    """The runner's exit record, or where the run stands without one."""
    from ..agents.spawn import read_exit, read_runner

    record = read_exit(paths.exit_record(stage_id, role))
    if record is not None:
        keep = ("exit_code", "signal", "started_at", "ended_at", "seconds", "timed_out", "error")
        return {k: record.get(k) for k in keep}
    runner = read_runner(paths.exit_record(stage_id, role))
    if runner is not None:
        return {"started_at": runner.started_at, "running": True}
    return {}


def _command(paths: RepoPaths, stage: Dict[str, Any], stage_id: str, role: str,
             command: Optional[str]) -> Optional[Dict[str, Any]]:
    log = paths.log(stage_id, role)
    text, problem = read_log(log)
    run = _exit(paths, stage_id, role)
    if text is None and problem is None and not run and not (role == "acceptance" and command):
        return None
    out: Dict[str, Any] = {"role": role, "command": command, "log": str(log), **run}
    if role == "acceptance":
        out["result"] = StageRecord(stage).acceptance
    if text is None:
        out["missing"] = problem or f"{log}: no log (not run yet)"
    else:
        out["tail"] = _tail_lines(text, ACCEPTANCE_TAIL)
    return out


def _family_of(identity: str) -> Any:
    from .. import families

    try:
        return families.for_identity(identity)
    except UserError:
        return None


def _agent(paths: RepoPaths, stage: Dict[str, Any], stage_id: str, role: str, roots: Sequence[str]) -> Dict[str, Any]:
    rec = StageRecord(stage)
    identity = _str(rec.identity(role))
    family = _family_of(identity)
    log = paths.log(stage_id, role)
    out: Dict[str, Any] = {"role": role, "identity": identity, "family": family.name if family else None,
                           "log": str(log), **_exit(paths, stage_id, role)}
    booked = {what: rec.of(role, what) for what in ("tokens", "cost_usd", "seconds")}
    out["booked"] = {k: v for k, v in booked.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if role == "verifier":
        out["attempts"] = stage.get("verifier_attempts")  # as recorded (None: never dispatched)
    text, problem = read_log(log)
    if text is None:
        out["missing"] = problem or f"{log}: no log ({'not run yet' if not out.get('started_at') else 'gone'})"
        out["steps"] = []
        return out
    if family is None:
        from ..families.base import Family

        family = Family()  # an identity no family runs: its log as plain lines
    steps = family.transcript(text, roots)
    out["steps_total"] = len(steps)
    out["steps"] = [s.to_dict() for s in steps[-STEP_LIMIT:]]
    final = family.final_message(text) if family.name else None
    out["final_message"] = final[:MESSAGE_LIMIT] if isinstance(final, str) else None
    usage = family.parse_usage(text) if family.name else None
    if usage is not None:
        out["usage"] = {"tokens": usage.total_tokens, "input": usage.input_tokens, "output": usage.output_tokens,
                        "cache_read": usage.cache_read_tokens, "cache_write": usage.cache_write_tokens,
                        "unsplit": usage.unsplit_tokens, "cost_usd": usage.cost_usd}
    return out


def _envelope(paths: RepoPaths, stage_id: str) -> Dict[str, Any]:
    from ..envelope import read_envelope

    found = read_envelope(paths.handoff(stage_id), stage_id)
    if found.kind == "missing":
        return {"missing": f"{paths.handoff(stage_id)}: no handoff envelope"}
    if found.kind == "invalid":
        return {"missing": found.error or "invalid"}
    doc = found.doc or {}
    return {"status": found.kind, "notes": _str(found.notes),
            "deliverables": [_str(d) for d in doc.get("deliverables") or [] if isinstance(d, (str, int))]}


# --------------------------------------------------------------------------- the change

def _git(where: str, args: List[str]) -> str:
    from ..git import gitops

    return gitops._run(where, ["-c", "core.quotepath=off", *args])[1].decode("utf-8", "replace")


def _verify_ref(where: str, ref: str) -> Optional[str]:
    """The commit ``ref`` names, or None (refs from state.yaml are checked before git sees them)."""
    if not isinstance(ref, str) or not (_HEX.match(ref) or _REF.match(ref)):
        return None
    try:
        return _git(where, ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"]).strip() or None
    except UserError:
        return None


def _cut_diff(text: str) -> Tuple[str, bool]:
    if len(text) <= DIFF_LIMIT:
        return text, False
    cut = text.rfind("\n", 0, DIFF_LIMIT)
    return text[: cut if cut > 0 else DIFF_LIMIT], True


_DIFF = ["--no-color", "--no-ext-diff", "--no-textconv"]


def _stat_and_patch(out: str) -> Dict[str, Any]:
    """``--patch-with-stat`` output split into the diffstat and the diff (cut to :data:`DIFF_LIMIT`)."""
    at = 0 if out.startswith("diff --git ") else out.find("\ndiff --git ") + 1
    stat, patch = (out[:at], out[at:]) if at > 0 or out.startswith("diff --git ") else (out, "")
    stat = stat.strip("\n")
    if stat.startswith("---\n") or stat == "---":
        stat = stat[4:]
    diff, cut = _cut_diff(patch)
    return {"diffstat": stat.strip("\n"), "diff": diff, "truncated": cut}


_SHOW = [*_DIFF, "--patch-with-stat", "--stat=120"]


def change(paths: RepoPaths, stage: Dict[str, Any], latest_claim: bool) -> Dict[str, Any]:
    """The stage's change: its commit, else its branch and worktree against the base, else its tree.

    One git call for a landed stage; a worktree's is diffed through a throwaway index (three).
    """
    from ..git import gitops

    repo = str(paths.root)
    rec = StageRecord(stage)
    status, sha = rec.status, rec.commit
    worktree, branch, base = rec.worktree, rec.branch, rec.base
    if isinstance(sha, str) and sha and status == "completed":
        if not _HEX.match(sha):
            return {"kind": "commit", "commit": sha, "missing": f"commit {sha[:40]!r} is not a commit id"}
        try:
            out = _git(repo, ["show", *_SHOW, "--format=%H%x00%s%x00%an <%ae>", f"{sha}^{{commit}}"])
        except UserError:
            return {"kind": "commit", "commit": sha, "missing": f"commit {sha[:12]} is not in {repo}"}
        head, _, rest = out.partition("\n")
        commit, subject, author = (head.split("\0") + ["", "", ""])[:3]
        return {"kind": "commit", "commit": commit, "subject": subject, "author": author, **_stat_and_patch(rest)}
    if status == "completed":
        return {"kind": "none", "note": "landed with nothing to commit outside state/"}
    if isinstance(worktree, str) and worktree and files_is_dir(worktree) and isinstance(base, str):
        try:
            fork = _git(worktree, ["merge-base", "--end-of-options", base, "HEAD"]).strip() if _REF.match(base) else ""
        except UserError:
            fork = ""
        if not fork:
            return {"kind": "worktree", "worktree": worktree, "missing": f"base {base!r} is not a branch here"}
        return {"kind": "worktree", "worktree": worktree, "branch": branch, "base": base,
                "note": f"not landed: {branch or 'its branch'} and its uncommitted changes in {worktree} "
                        f"against {base}", **_stat_and_patch(gitops.work_tree_diff(worktree, *_SHOW, fork))}
    if isinstance(branch, str) and branch and isinstance(base, str):
        tip, onto = _verify_ref(repo, branch), _verify_ref(repo, base)
        if tip is None or onto is None:
            return {"kind": "branch", "branch": branch, "missing": f"branch {branch} (or its base {base}) is gone"}
        return {"kind": "branch", "branch": branch, "base": base, "note": f"not landed: {branch} against {base}",
                **_stat_and_patch(_git(repo, ["diff", *_SHOW, f"{onto}...{tip}"]))}
    if rec.started_at and latest_claim:  # ran in the repo's own checkout: what it left there
        return {"kind": "tree", "note": f"not landed: the uncommitted changes in {repo} outside state/",
                **_stat_and_patch(gitops.work_tree_diff(repo, *_SHOW))}
    if rec.started_at:
        return {"kind": "none", "missing": "not landed, and a later stage has used the tree since"}
    return {"kind": "none", "note": "not claimed yet"}


def files_is_dir(path: str) -> bool:
    try:
        return os.path.isdir(path)
    except (OSError, ValueError):
        return False


# --------------------------------------------------------------------------- the timeline

def _when(value: Any) -> Optional[float]:
    return parse_iso(value) if isinstance(value, str) else None


def timeline(stage: Dict[str, Any], runs: List[Dict[str, Any]], verdict: Dict[str, Any],
             journal: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Events in time order with the seconds since the one before (pure: tested by table)."""
    rec = StageRecord(stage)
    claimed = _when(rec.started_at)
    events: List[Tuple[float, int, str, str]] = []
    if claimed is not None:
        events.append((claimed, 0, "claimed", ""))
    for run in runs:
        role = run["role"]
        rank = _PIPELINE.index(role) * 10 + 10 if role in _PIPELINE else 70
        start, end = _when(run.get("started_at")), _when(run.get("ended_at"))
        earlier = " (an earlier run)" if claimed is not None and start is not None and start < claimed else ""
        if start is not None:
            events.append((start, rank, f"{role} spawned", earlier.strip(" ()")))
        if end is not None:
            how = _how_ended(run, "ended")
            seconds = run.get("seconds")
            ran = f", ran {_duration(seconds)}" if isinstance(seconds, (int, float)) else ""
            events.append((end, rank + 1, f"{role} exited", f"{how}{ran}{earlier}"))
        elif run.get("running"):
            events.append((time.time(), rank + 1, f"{role} running", "no exit record yet"))
    written = _when(verdict.get("written_at"))
    if written is not None and verdict.get("overall"):
        events.append((written, 45, "verified", f"{verdict['overall']}"
                       + (f" ({verdict['problem']})" if verdict.get("problem") else "")))
    landed = _when(rec.completed_at)
    if landed is not None:
        if written is not None:  # completed_at is the tick's start; the verdict's copy is written later that tick
            landed = max(landed, written)
        sha = rec.commit
        events.append((landed, 80, "landed", f"as {str(sha)[:12]}" if sha else "nothing to commit"))
    for event in journal:
        at = _when(event.get("at"))
        if at is None or (claimed is not None and at < claimed) or event.get("kind") == "stage_completed":
            continue
        events.append((at, 90, str(event.get("kind") or "event"), _str(event.get("summary"))))
    events.sort(key=lambda e: (e[0], e[1]))
    out, previous = [], None
    for at, _, what, detail in events:
        out.append({"at": now_iso(at), "event": what, "detail": detail,
                    "after_seconds": None if previous is None else round(at - previous, 3)})
        previous = at
    return out


def _duration(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)):
        return "-"
    s = float(seconds)
    if s < 60:
        return f"{s:.1f}s" if s < 10 and s != int(s) else f"{int(round(s))}s"
    if s < 3600:
        return f"{int(s // 60)}m{int(s % 60):02d}s"
    return f"{int(s // 3600)}h{int(s % 3600 // 60):02d}m"


# --------------------------------------------------------------------------- the document

def _guard(problems: List[str], what: str, fn: Callable[[], Any], fallback: Any) -> Any:
    """Run one piece; a failure becomes a problem line and ``fallback`` (a view never raises)."""
    try:
        return fn()
    except UserError as exc:
        problems.append(f"{what}: {exc.message}")
    except Exception as exc:  # noqa: BLE001 - any bad file is shown as missing, never a traceback
        problems.append(f"{what}: {type(exc).__name__}: {exc}")
    return fallback


def build(paths: RepoPaths, stage_id: str, *, hp: Optional[HomePaths] = None, name: Optional[str] = None,
          manifest: Optional[Dict[str, Any]] = None, with_git: bool = True, now: Optional[float] = None,
          journal: Optional[List[Dict[str, Any]]] = None) -> Dict[str, Any]:
    """The review of ``stage_id`` in the repo at ``paths`` (see the module docstring); masked.

    ``journal`` is the event journal already read (the dashboard reads it once for every page);
    else it is read from ``hp``.
    """
    now = time.time() if now is None else now
    problems: List[str] = []
    doc: Dict[str, Any] = {"repo": str(paths.root), "name": name or paths.root.name, "stage_id": stage_id,
                           "generated_at": now_iso(now), "problems": problems}
    stage, why = read_stage(paths, stage_id)
    if stage is None:
        problems.append(why or "no stage")
        stage = {}
    for key in ("status", "stall_marker", "worker", "verifier", "started_at", "completed_at", "commit", "loops",
                "worktree", "branch", "base", "merge", "tokens", "cost_usd"):
        doc[key] = stage.get(key)
    doc["sessions"] = StageRecord(stage).session_rows()  # each agent run's session (autometta.resume)
    by_hand = _guard(problems, "sessions by hand", lambda: byhand.sessions(paths, stage_id), [])
    if by_hand:
        doc["sessions"] = sorted(doc["sessions"] + by_hand, key=lambda r: str(r.get("started_at") or ""))
    if manifest is None:
        from .. import manifest as manifests

        manifest = _guard(problems, "manifest", lambda: manifests.load_manifest(paths), {})
    card_doc, card = _guard(problems, "card", lambda: _card(paths, stage_id, manifest or {}),
                            ({"missing": "cannot be read"}, None))
    doc["card"] = card_doc
    criteria = card_doc.get("criteria") or []
    doc["verdict"] = _guard(problems, "verdict", lambda: _verdict(paths, stage_id, criteria), {"missing": "unreadable"})
    commands = []
    for role in _COMMAND_ROLES:
        command = card.acceptance_command if card is not None and role in ("acceptance", "postmerge") else None
        if role == "setup":
            from ..git.worktrees import setup_command

            lane = StageRecord(stage)
            command = setup_command(manifest or {}) if lane.worktree or lane.setup else None
        found = _guard(problems, role, lambda r=role, c=command: _command(paths, stage, stage_id, r, c), None)
        if found is not None:
            commands.append(found)
    doc["commands"] = commands
    roots = [r for r in (_work(paths, stage, manifest or {}), str(paths.root), os.path.realpath(str(paths.root))) if r]
    doc["agents"] = [_guard(problems, role, lambda r=role: _agent(paths, stage, stage_id, r, roots),
                            {"role": role, "missing": "unreadable", "steps": []}) for role in _AGENT_ROLES]
    doc["envelope"] = _guard(problems, "envelope", lambda: _envelope(paths, stage_id), {"missing": "unreadable"})
    if with_git and stage:
        doc["change"] = _guard(problems, "change", lambda: change(paths, stage, _latest_claim(paths, stage_id)),
                               {"kind": "none", "missing": "git could not show it"})
    elif stage:
        doc["change"] = {"kind": "none", "missing": "not computed"}
    else:
        doc["change"] = {"kind": "none", "missing": "no stage record"}
    ours = _guard(problems, "events", lambda: _journal(hp, paths, stage_id, journal), [])
    runs = [r for r in doc["agents"] + commands if isinstance(r, dict) and r.get("role")]
    doc["timeline"] = _guard(problems, "timeline", lambda: timeline(stage, runs, doc["verdict"], ours), [])
    for piece in [doc["card"], doc["verdict"], doc["change"], *doc["agents"], *commands]:
        if isinstance(piece, dict) and piece.get("missing") and stage:
            problems.append(str(piece["missing"]))
    return redact_doc(doc)


def _work(paths: RepoPaths, stage: Dict[str, Any], manifest: Dict[str, Any]) -> Optional[str]:
    """Where the stage's agents worked: its worktree, also once it is removed (a landed stage keeps its branch)."""
    rec = StageRecord(stage)
    if isinstance(rec.worktree, str) and rec.worktree:
        return rec.worktree
    if rec.branch and isinstance(rec.id, str):
        from ..git.worktrees import lane_root

        return str(lane_root(paths.root, manifest) / rec.id)
    return None


def _latest_claim(paths: RepoPaths, stage_id: str) -> bool:
    """Whether ``stage_id`` is the stage claimed last (so the repo's tree holds what it left)."""
    from .repodocs import read_state

    doc = read_state(paths) or {}
    claims = [(str(s.get("started_at")), s.get("id")) for s in doc.get("stages") or []
              if isinstance(s, dict) and isinstance(s.get("started_at"), str) and not s.get("worktree")]
    return bool(claims) and max(claims)[1] == stage_id


def _journal(hp: Optional[HomePaths], paths: RepoPaths, stage_id: str,
             journal: Optional[List[Dict[str, Any]]]) -> List[Dict[str, Any]]:
    if journal is None:
        if hp is None:
            return []
        from . import events

        journal = events.journal(hp)
    repo = str(paths.root)
    return [e for e in journal if e.get("repo") == repo and e.get("stage_id") == stage_id]


# --------------------------------------------------------------------------- in the terminal

#: Characters of a step's target and text in a view (the document keeps more).
SHOWN_LIMIT = 160


def _step_line(step: Dict[str, Any]) -> str:
    from ..families.transcript import Step, _cut, phrase

    known = {k: step.get(k) for k in ("kind", "name", "action", "ok", "exit_code")}
    known.update(target=_cut(step.get("target") or "", SHOWN_LIMIT), text=_cut(step.get("text") or "", SHOWN_LIMIT))
    return phrase(Step(**{k: (v if v is not None or k in ("ok", "exit_code") else "") for k, v in known.items()}))


def steps_shown(steps: List[Dict[str, Any]], head: int = 10, tail: int = 40) -> List[Any]:
    """The steps a view lists: all of a short run, else the first ``head``, a gap count, the last ``tail``."""
    if len(steps) <= head + tail + 1:
        return list(steps)
    return steps[:head] + [len(steps) - head - tail] + steps[-tail:]


def listed_steps(agent: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The steps a view numbers: all but a last message that is the final message (shown as such)."""
    from ..families.transcript import _cut

    steps = list(agent.get("steps") or [])
    final = agent.get("final_message")
    if final and steps and steps[-1].get("kind") in ("say", "output") and steps[-1].get("text") == _cut(final):
        steps.pop()
    return steps


def step_lines(agent: Dict[str, Any]) -> List[str]:
    """Numbered lines for an agent's steps, in words."""
    steps = listed_steps(agent)
    offset = int(agent.get("steps_total") or len(agent.get("steps") or [])) - len(agent.get("steps") or [])
    out: List[str] = []
    n = offset
    for item in steps_shown(steps):
        if isinstance(item, int):
            out.append(f"       ... {item} more ...")
            n += item
            continue
        n += 1
        out.append(f"  {n:>3}. {_step_line(item)}")
    return out


def usage_line(agent: Dict[str, Any]) -> str:
    booked, usage = agent.get("booked") or {}, agent.get("usage") or {}
    tokens = booked.get("tokens") if booked.get("tokens") is not None else usage.get("tokens")
    parts = []
    if tokens is not None:
        parts.append(f"{tokens:,} tokens" + ("" if booked.get("tokens") is not None else " (from the log)"))
    if usage:
        split = [f"{label} {usage[key]:,}" for key, label in (("input", "in"), ("output", "out"),
                                                               ("cache_write", "cache write"),
                                                               ("cache_read", "cache read")) if usage.get(key)]
        if split:
            parts.append("(" + ", ".join(split) + ")")
    cost = booked.get("cost_usd") if booked.get("cost_usd") is not None else usage.get("cost_usd")
    if cost is not None:
        parts.append(f"${float(cost):.4f}")
    return "  ".join(parts) or "no usage recorded"


def run_line(run: Dict[str, Any]) -> str:
    if run.get("running"):
        return f"running since {run.get('started_at')}"
    if not run.get("started_at") and run.get("exit_code") is None:
        return "not run"
    return f"{_how_ended(run, 'no exit code')} after {_duration(run.get('seconds'))}"


def _how_ended(run: Dict[str, Any], otherwise: str) -> str:
    """How a finished run ended, in a few words (its exit record's fields)."""
    if run.get("timed_out"):
        return "stopped at its budget"
    if run.get("exit_code") is not None:
        return f"exit {run['exit_code']}"
    if run.get("signal"):
        return f"killed by signal {run['signal']}"
    return str(run.get("error") or otherwise)


def session_line(session: Dict[str, Any]) -> str:
    """``loop 2: 5f0c... resumed (rebrief), 1200 tokens + 9000 cache reads, $0.0123``: one run's session."""
    how = (f"resumed ({session.get('of')})" if session.get("resumed") else
           f"new (cold: {session['fallback']})" if session.get("fallback") else "new")
    spent = (f", {session['tokens']} tokens" if session.get("tokens") is not None else "") + \
        (f" + {session['cache_read_tokens']} cache reads" if session.get("cache_read_tokens") else "") + \
        (f", ${session['cost_usd']:.4f}" if isinstance(session.get("cost_usd"), (int, float)) else "")
    refused = ", refused by the CLI" if session.get("refused") else ""
    return f"loop {session.get('loop') or 1}: {session.get('id') or '(no id)'} {how}{spent}{refused}"


def render(doc: Dict[str, Any]) -> str:
    """The review as text, sections in the order of the module docstring; the diff last."""
    card, verdict, change_doc = doc.get("card") or {}, doc.get("verdict") or {}, doc.get("change") or {}
    lines = [f"{doc['stage_id']}  {doc.get('status') or '?'}"
             + (f"  ({doc['stall_marker']})" if doc.get("stall_marker") else "") + f"   {doc['name']}: {doc['repo']}"]
    lines.append(f"  {card.get('title') or '(no title)'}")
    lines.append(f"  worker {doc.get('worker') or '?'}   verifier {doc.get('verifier') or '?'}")
    if card.get("path"):
        lines.append(f"  card {card['path']}")
    if doc.get("branch"):
        lines.append(f"  branch {doc['branch']} onto {doc.get('base') or '?'}"
                     + (f", worktree {doc['worktree']}" if doc.get("worktree") else ""))
    lines += ["", "CRITERIA" + (f"  verdict {verdict['overall']}" if verdict.get("overall") else "")
              + (f" ({verdict['problem']})" if verdict.get("problem") else "")
              + (f" by {verdict['verifier_identity']}" if verdict.get("verifier_identity") else "")]
    if verdict.get("headline"):
        lines.append(f"  headline: {verdict['headline']}")
    for row in verdict.get("criteria") or []:
        lines.append(f"  {row.get('id')!s:>3}  {row.get('verdict') or '-':<4}  {row.get('criterion') or row.get('name') or ''}")
        if row.get("evidence"):
            lines.append(f"             evidence: {row['evidence']}")
    if not verdict.get("criteria"):
        lines.append("  (no criteria: " + str(card.get("missing") or "the card lists none") + ")")
    if verdict.get("missing"):
        lines.append(f"  verdict missing: {verdict['missing']}")
    if verdict.get("findings"):
        lines.append(f"  findings: {verdict['findings']}")
    for run in doc.get("commands") or []:
        shown = f"`{run['command']}`" if run.get("command") else "(command not known)"
        lines += ["", f"{run['role'].upper()}  {shown}  {run_line(run)}"]
        lines += [f"  | {line}" for line in run.get("tail") or []]
        if run.get("missing"):
            lines.append(f"  {run['missing']}")
    if not any(r.get("role") == "acceptance" for r in doc.get("commands") or []):
        lines += ["", "ACCEPTANCE  " + ("(the card has no acceptance command)" if card.get("path") else "(no card)")]
    lines += ["", "CHANGE  " + _change_head(change_doc)]
    if change_doc.get("note") and change_doc.get("kind") != "commit":
        lines.append(f"  {change_doc['note']}")
    if change_doc.get("missing"):
        lines.append(f"  missing: {change_doc['missing']}")
    lines += [f"  {line}" for line in (change_doc.get("diffstat") or "").splitlines()]
    if "diffstat" in change_doc and not change_doc.get("diffstat"):
        lines.append("  (no changes)")
    for agent in doc.get("agents") or []:
        lines += ["", f"{str(agent.get('role')).upper()}  {agent.get('family') or '?'}, {agent.get('identity') or '?'}"
                  f"   {run_line(agent)}", f"  {usage_line(agent)}"]
        lines += step_lines(agent)
        if agent.get("final_message"):
            final = " ".join(str(agent["final_message"]).split())
            lines.append(f"  final: {final[:600]}{'~' if len(final) > 600 else ''}")
        if agent.get("missing"):
            lines.append(f"  {agent['missing']}")
        for session in [r for r in doc.get("sessions") or [] if r.get("role") == agent.get("role")]:
            lines.append(f"  session {session_line(session)}")
        if agent.get("role") == "worker":
            env = doc.get("envelope") or {}
            if env.get("status"):
                lines.append(f"  envelope: {env['status']}" + (f": {env['notes']}" if env.get("notes") else ""))
    lines += ["", "TIMELINE"]
    for event in doc.get("timeline") or []:
        after = event.get("after_seconds")
        lines.append(f"  {event['at']}  {event['event']:<18} {('+' + _duration(after)) if after is not None else '':>8}"
                     f"  {event.get('detail') or ''}".rstrip())
    if not doc.get("timeline"):
        lines.append("  (nothing yet)")
    span = claim_to_land(doc)
    if span is not None:
        lines.append(f"  claimed to landed: {_duration(span)}")
    if doc.get("problems"):
        lines += ["", "MISSING"] + [f"  {p}" for p in doc["problems"]]
    if change_doc.get("diff"):
        lines += ["", "DIFF", change_doc["diff"].rstrip("\n")]
        if change_doc.get("truncated"):
            lines.append(f"... (cut at {DIFF_LIMIT} characters; see the commit or branch in git)")
    # what agents wrote (file names, output, the diff) never sends escapes to the terminal; tabs stay
    return "\n".join(_CONTROLS.sub("", _ESCAPES.sub("", line)) for line in "\n".join(lines).split("\n"))


def claim_to_land(doc: Dict[str, Any]) -> Optional[float]:
    """Seconds from the claim to the landing, when both are known."""
    claimed = _when(doc.get("started_at"))
    landed = _when(doc.get("completed_at"))
    return landed - claimed if claimed is not None and landed is not None else None


def _change_head(change_doc: Dict[str, Any]) -> str:
    kind = change_doc.get("kind")
    if kind == "commit":
        return f"commit {str(change_doc.get('commit'))[:12]}" + (
            f"  {change_doc['subject']}" if change_doc.get("subject") else "")
    if kind == "worktree":
        return f"{change_doc.get('branch') or 'worktree'} in {change_doc.get('worktree')} (not landed)"
    if kind == "branch":
        return f"{change_doc.get('branch')} against {change_doc.get('base')} (not landed)"
    if kind == "tree":
        return "uncommitted changes in the repo's tree (not landed)"
    return "none"

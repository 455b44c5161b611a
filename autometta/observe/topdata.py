"""What ``autometta top`` reads: the files, cheaply, once a second.

:class:`Source` builds the view :func:`autometta.observe.topscreen.render`
draws (:meth:`Source.view`) and the data of the selected row's detail tab
(:meth:`Source.detail`). It only reads: no lock is taken, nothing is
written, and for an idle repo a refresh is a few ``stat`` calls (a file is
parsed again only when its size or time changed; the agent registry is read
only when it holds an agent). Git runs only for the diff tab while it is
shown, at most every :data:`DIFF_SECONDS` for an unchanged stage; the
schedule (the crontab) is read at start and every :data:`SCHEDULE_SECONDS`.

"What needs you" comes from one place, :func:`needs_of`, as every other view
reads it.
"""

from __future__ import annotations

import collections
import os
import time
from pathlib import Path
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple

from .. import home as homes
from ..errors import UserError
from ..paths import HomePaths, RepoPaths
from ..secrets import redact, redact_doc
from ..stagerecord import StageRecord
from . import activity, lanes, needs as needing
from .settings import Settings

#: Seconds a shown diff is kept before git is asked again (sooner when the stage's record changes).
DIFF_SECONDS = 5.0
#: Seconds between two looks at what schedules the tick (it reads the crontab: a subprocess).
SCHEDULE_SECONDS = 300.0
#: Lines of the tick log kept per repo for the log tab.
LOG_LINES = 500
#: Lines of an agent's log read for the activity tab.
ACTIVITY_LINES = 300

Stamp = Optional[Tuple[int, int, int]]


def stamp(path: Path) -> Stamp:
    """(inode, size, mtime in ns) of ``path``, None when it is missing: what a cache compares."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


# --------------------------------------------------------------------------- what needs you: one place

def needs_of(paths: RepoPaths, now: float, agents: List[Dict[str, Any]], state_doc: Any,
             budget_doc: Any) -> List[Dict[str, Any]]:
    """What needs a person in one repo, most pressing first, as dicts: :func:`autometta.observe.needs.for_repo`,
    the one source every view reads. ``state_doc`` / ``budget_doc`` as :class:`_Doc` read them (None: absent;
    False: unreadable, which ``for_repo`` reads again to say why)."""
    return [item.as_dict() for item in needing.for_repo(paths, now, agents, state_doc=state_doc,
                                                        budget_doc=budget_doc)]


# --------------------------------------------------------------------------- spend today: one place

def _midnight(now: float) -> float:
    t = time.localtime(now)
    return time.mktime((t.tm_year, t.tm_mon, t.tm_mday, 0, 0, 0, 0, 0, -1))


def spend_today(hp: HomePaths, now: float) -> Dict[str, Any]:
    """Tokens, cost and runs booked in the spend ledger since local midnight, as ``report`` sums a window."""
    from ..books import ledger

    total = ledger.summarise(ledger.entries(hp, since=_midnight(now)))["total"]
    return {"tokens": total.get("tokens", 0), "cost_usd": total.get("cost_usd", 0.0), "runs": total.get("runs")}


# --------------------------------------------------------------------------- the schedule

def schedule_now() -> str:
    """What runs the tick, in a few words; "" when nothing does (reads the crontab and the unit files)."""
    from ..schedule.lookup import find_scheduled

    try:
        found = find_scheduled()
    except Exception:  # noqa: BLE001 - a view never fails on a health check
        return "unknown"
    names = {"cron": "cron", "cron-foreign": "a crontab line", "systemd": "a systemd timer",
             "launchd": "a LaunchAgent"}
    kinds: List[str] = []
    for entry in found:
        word = names.get(entry.kind, entry.kind)
        if word not in kinds:
            kinds.append(word)
    return " and ".join(kinds)


# --------------------------------------------------------------------------- the source

class _Doc:
    """One parsed file, parsed again only when its stamp changes."""

    def __init__(self, path: Path, load: Callable[[], Any]) -> None:
        self.path, self.load = path, load
        self.stamp: Any = "unread"
        self.doc: Any = None

    def get(self) -> Any:
        """The document; None when the file is absent, False when it cannot be read."""
        now = stamp(self.path)
        if now != self.stamp:
            self.stamp = now
            if now is None:
                self.doc = None
            else:
                try:
                    self.doc = self.load()
                except UserError:
                    self.doc = False
                except Exception:  # noqa: BLE001 - a view never fails on a file
                    self.doc = False
        return self.doc


class _Repo:
    def __init__(self, name: str, paths: RepoPaths, enabled: bool, manifest_path: Optional[Path],
                 error: Optional[str] = None) -> None:
        from ..books import budget, state

        self.name, self.paths, self.enabled, self.error = name, paths, enabled, error
        self.manifest_path = manifest_path
        self.state = _Doc(paths.state_yaml, lambda: state.load_state(paths))
        self.budget = _Doc(paths.budget, lambda: budget.load_budget(paths))


class Source:
    """Reads what ``top`` shows, for every enabled subscribed repo or one repo (``scope``)."""

    def __init__(self, hp: HomePaths, settings: Settings, scope: Optional[str] = None,
                 clock: Callable[[], float] = time.time, schedule: Callable[[], str] = schedule_now) -> None:
        self.hp, self.settings, self.clock = hp, settings, clock
        self.scope = os.path.realpath(scope) if scope else None
        self._schedule_fn = schedule
        self._schedule: Optional[str] = None
        self._schedule_at = 0.0
        self._subs_stamp: Any = "unread"
        self._repos: List[_Repo] = []
        self._activity: Dict[str, Tuple[Stamp, Any]] = {}
        self._diff: Dict[Tuple[str, str], Tuple[Any, float, Dict[str, Any]]] = {}
        self._verdict: Dict[Tuple[str, str], Tuple[Any, Dict[str, Any]]] = {}
        self._logs: Dict[str, Tuple[Any, Deque[str]]] = {}
        self._manifests: Dict[str, _Doc] = {}
        self._agents: Dict[str, List[Dict[str, Any]]] = {}
        self._needs: Dict[str, List[Dict[str, Any]]] = {}
        self._spend: Optional[Tuple[Any, Dict[str, Any]]] = None

    # ------------------------------------------------------------------ repos

    def _subscribers_stamp(self) -> Any:
        folder = self.hp.subscribers
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            return None
        return (stamp(folder), tuple((n, stamp(folder / n)) for n in names))

    def repos(self) -> List[_Repo]:
        if self.scope is not None and self._repos:
            return self._repos
        now = self._subscribers_stamp()
        if now == self._subs_stamp and (self._repos or self.scope is None):
            return self._repos
        self._subs_stamp = now
        subs = homes.load_subscribers(self.hp) if self.hp.subscribers.is_dir() else []
        old = {str(r.paths.root): r for r in self._repos}
        repos: List[_Repo] = []
        if self.scope is not None:
            path = Path(self.scope)
            sub = next((s for s in subs if s.repo_path is not None
                        and os.path.realpath(s.repo_path) == self.scope), None)
            repos.append(_Repo(path.name, RepoPaths(path), True, sub.manifest_path if sub else None))
        else:
            for sub in subs:
                if sub.error or sub.repo_path is None:
                    repos.append(_Repo(sub.name, RepoPaths(Path(str(sub.file))), False, None, error=sub.error))
                    continue
                if not sub.enabled:
                    continue
                key = str(sub.paths.root)
                keep = old.get(key)
                repos.append(keep if keep is not None else _Repo(sub.name, sub.paths, True, sub.manifest_path))
        self._repos = repos
        return repos

    def find(self, repo: str) -> Optional[_Repo]:
        return next((r for r in self._repos if str(r.paths.root) == repo), None)

    # ------------------------------------------------------------------ the view

    def schedule(self, now: float) -> Optional[str]:
        if self._schedule is None or now - self._schedule_at > SCHEDULE_SECONDS:
            self._schedule_at = now
            self._schedule = self._schedule_fn()
        return self._schedule

    def agents(self, paths: RepoPaths, now: float) -> List[Dict[str, Any]]:
        """The live agents of a repo, as the heartbeat classifies them now (nothing read when none is registered)."""
        try:
            registered = any(name.endswith(".json") for name in os.listdir(paths.active_agents))
        except OSError:
            registered = False
        if not registered:
            return []
        from . import heartbeat
        from ..agents import registry

        out = []
        for row in heartbeat.check(paths, self.settings, now, write=False)["entries"]:
            log = Path(str(row["log_path"])) if row.get("log_path") else None
            usage = activity.live_usage(log, str(row.get("family") or ""))
            row = dict(row)
            row.update(stage=registry.stage_of(row) or registry.card_stem(row),
                       tokens=usage.total_tokens if usage else None, activity=self._last_activity(log))
            out.append(row)
        return out

    def _last_activity(self, log: Optional[Path]) -> str:
        if log is None:
            return ""
        key, now = str(log), stamp(log)
        cached = self._activity.get(key)
        if cached is None or cached[0] != now:
            cached = (now, activity.last_activity(log))
            self._activity[key] = cached
        return str(cached[1])

    def view(self) -> Dict[str, Any]:
        """What :func:`~autometta.observe.topscreen.render` draws (masked)."""
        from .tickers import last_tick

        now = self.clock()
        repos_out = []
        for repo in self.repos():
            if repo.error:
                item = needing.Need(kind="unreadable", repo=str(repo.paths.root), summary=repo.error,
                                    note=f"edit {repo.paths.root}")  # as report says it
                repos_out.append({"name": repo.name, "path": str(repo.paths.root), "error": repo.error,
                                  "needs": [item.as_dict()], "stages": []})
                continue
            state_doc, budget_doc = repo.state.get(), repo.budget.get()
            agents = self.agents(repo.paths, now)
            self._agents[str(repo.paths.root)] = agents
            needs = needs_of(repo.paths, now, agents, state_doc, budget_doc)
            self._needs[str(repo.paths.root)] = needs
            repos_out.append(self._repo_view(repo, state_doc, budget_doc, agents, needs))
        view = {
            "now": now, "scope": self.scope, "home": str(self.hp.root),
            "controller": {"last_tick": last_tick(self.hp), "schedule": self.schedule(now),
                           "warn_seconds": self.settings.tick_warn_seconds,
                           "stale_seconds": self.settings.tick_stale_seconds},
            "spend": self._spend_today(now),
            "repos": repos_out,
        }
        return redact_doc(view)

    def _spend_today(self, now: float) -> Dict[str, Any]:
        """:func:`spend_today`, the ledger read again only when one of its files changed (or the day did)."""
        from ..books import ledger

        key = (_midnight(now), tuple((str(p), stamp(p)) for p in ledger.ledger_files(self.hp)))
        if self._spend is None or self._spend[0] != key:
            self._spend = (key, spend_today(self.hp, now))
        return self._spend[1]

    def _repo_view(self, repo: _Repo, state_doc: Any, budget_doc: Any, agents: List[Dict[str, Any]],
                   needs: List[Dict[str, Any]]) -> Dict[str, Any]:
        b = budget_doc if isinstance(budget_doc, dict) else {}
        doc = state_doc if isinstance(state_doc, dict) else {}
        out: Dict[str, Any] = {"name": repo.name, "path": str(repo.paths.root), "enabled": repo.enabled,
                               "needs": needs, "stages": []}
        for key in ("tokens_spent", "token_cap_total", "cost_usd_spent", "cost_cap_usd", "halted", "halt_reason"):
            out[key] = b.get(key)
        by_stage = {a.get("stage"): a for a in agents}
        for s in doc.get("stages") or []:
            if not isinstance(s, dict):
                continue
            row = {k: s.get(k) for k in ("id", "status", "started_at", "completed_at", "stopped_at", "commit",
                                         "worktree", "branch", "base")}
            row["marker"] = s.get("stall_marker")
            if s.get("status") == "in_progress":
                row["phase"] = lanes.phase(s)
                agent = by_stage.get(s.get("id"))
                if agent is not None:
                    row["agent"] = {k: agent.get(k) for k in ("pid", "role", "family", "state", "reason", "tokens",
                                                              "activity", "elapsed_seconds")}
            out["stages"].append(row)
        return out

    # ------------------------------------------------------------------ the detail

    def detail(self, repo_path: str, stage_id: Optional[str], tab: str) -> Dict[str, Any]:
        """The data of one detail tab for a repo (``stage_id`` None) or one of its stages (masked)."""
        repo = self.find(repo_path)
        if repo is None:
            return {"error": f"{repo_path}: no longer subscribed"}
        if repo.error:
            return {"error": repo.error}
        try:
            if tab == "log":
                return redact_doc(self._log(repo, stage_id))
            doc = repo.state.get()
            stage = None
            if isinstance(doc, dict) and stage_id is not None:
                stage = next((s for s in doc.get("stages") or [] if isinstance(s, dict)
                              and s.get("id") == stage_id), None)
                if stage is None:
                    return {"error": f"{stage_id}: no longer in {repo.paths.state_yaml}"}
            if tab == "activity":
                return redact_doc(self._activity_of(repo, stage))
            if tab == "diff":
                if stage is None:
                    return {"note": "select a stage to see its change"}
                return redact_doc(self._diff_of(repo, stage))
            if tab == "verdict":
                return redact_doc(self._verdict_of(repo, stage))
        except Exception as exc:  # noqa: BLE001 - a bad file is shown, never a traceback
            return {"error": f"{tab}: {type(exc).__name__}: {exc}"}
        return {"error": f"no tab {tab}"}

    def _activity_of(self, repo: _Repo, stage: Optional[Dict[str, Any]]) -> Dict[str, Any]:
        agents = self._agents.get(str(repo.paths.root)) or []
        if stage is None:
            if not agents:
                return {"note": "no agent running in this repo now", "events": []}
            return {"agents": agents}
        rec = StageRecord(stage)
        sid = str(rec.id)
        role = lanes._role(stage) if rec.status == "in_progress" else None
        live = next((a for a in agents if a.get("stage") == sid), None)
        if live is not None:
            role = str(live.get("role") or role or "")
        if not role:  # nothing runs: the last agent that ran
            for name in ("verifier", "worker"):
                if repo.paths.log(sid, name).exists():
                    role = name
                    break
        if not role:
            return {"events": [], "note": f"{sid}: {rec.status}; no agent has run for it yet"}
        log = repo.paths.log(sid, role)
        out: Dict[str, Any] = {"stage_id": sid, "role": role, "log": str(log), "alive": live is not None}
        if live is not None:
            out.update({k: live.get(k) for k in ("pid", "family", "state", "reason", "tokens", "elapsed_seconds")})
        else:
            out["note"] = f"{sid}: {rec.status}; nothing runs for it now. Its {role}'s log:"
        key = f"recent\0{log}"
        now = stamp(log)
        cached = self._activity.get(key)
        if cached is None or cached[0] != now:
            cached = (now, activity.recent(log, ACTIVITY_LINES))
            self._activity[key] = cached
        out["events"] = list(cached[1])
        return out

    def _diff_of(self, repo: _Repo, stage: Dict[str, Any]) -> Dict[str, Any]:
        from . import review

        sid = str(StageRecord(stage).id)
        key = (str(repo.paths.root), sid)
        fingerprint = repr(sorted((k, repr(v)) for k, v in stage.items()))
        now = self.clock()
        cached = self._diff.get(key)
        if cached is not None and cached[0] == fingerprint and now - cached[1] < DIFF_SECONDS:
            return cached[2]
        try:
            change = review.change(repo.paths, stage, review._latest_claim(repo.paths, sid))
        except UserError as exc:
            change = {"kind": "none", "missing": exc.message}
        change["head"] = review._change_head(change)
        self._diff[key] = (fingerprint, now, change)
        return change

    def _manifest(self, repo: _Repo) -> Dict[str, Any]:
        from .. import manifest

        key = str(repo.paths.root)
        doc = self._manifests.get(key)
        if doc is None:
            path = repo.manifest_path if repo.manifest_path and repo.manifest_path.is_file() else repo.paths.manifest
            doc = _Doc(path, lambda: manifest.load_manifest(repo.paths, repo.manifest_path))
            self._manifests[key] = doc
        found = doc.get()
        return found if isinstance(found, dict) else {}

    def _verdict_of(self, repo: _Repo, stage: Optional[Dict[str, Any]]) -> Dict[str, Any]:
        root = str(repo.paths.root)
        now = self.clock()
        found = self._needs.get(root)
        if found is None:  # not in a view yet
            found = needs_of(repo.paths, now, self._agents.get(root) or [], repo.state.get(), repo.budget.get())
        rec = StageRecord(stage) if stage is not None else None
        needs = [n for n in found if rec is None or n.get("stage_id") == rec.id]
        if stage is None:
            return {"needs": needs, "now": now}
        from . import review

        sid = str(rec.id)
        key = (root, sid)
        fingerprint = (stamp(repo.paths.verifier_artefact(sid)), stamp(repo.paths.state_yaml),
                       stamp(repo.paths.manifest))
        cached = self._verdict.get(key)
        if cached is None or cached[0] != fingerprint:
            card, _ = review._card(repo.paths, sid, self._manifest(repo))
            verdict = review._verdict(repo.paths, sid, card.get("criteria") or [])
            cached = (fingerprint, verdict)
            self._verdict[key] = cached
        import shlex

        out = dict(cached[1])
        out.update(needs=needs, now=now, stage_id=sid, status=rec.status, marker=rec.stall_marker,
                   look=f"autometta show {shlex.quote(root)} {shlex.quote(sid)}")
        return out

    def _log(self, repo: _Repo, stage_id: Optional[str]) -> Dict[str, Any]:
        from .logtail import Follower, RepoFilter

        root = str(repo.paths.root)
        held = self._logs.get(root)
        if held is None:
            follower = Follower(self.hp, keep=RepoFilter(os.path.realpath(root)))
            first = follower.start(LOG_LINES)
            kept: Deque[str] = collections.deque(maxlen=LOG_LINES)
            if follower.current is not None:
                kept.extend(first.splitlines())
            held = (follower, kept)
            self._logs[root] = held
        else:
            held[1].extend(held[0].poll().splitlines())
        follower, kept = held
        note = None if follower.current is not None else f"(no tick log yet in {self.hp.log_dir})"
        return {"lines": [redact(line) for line in kept], "stage_id": stage_id, "note": note}

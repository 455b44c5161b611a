"""The screen of ``autometta top`` as data: what the files say, laid out as terminal lines.

Everything here is a pure function, tested by table; the curses loop
(:mod:`autometta.observe.topapp`) reads the files (:mod:`.topdata`), calls
these, draws what they return and runs the one effect a key asks for.

* :func:`rows`: the repos and their stages as list rows, the ones that need a
  person first (a halt, a stopped stage, a stuck agent, a park; the order of
  the "needs you" kinds), then what runs, then the rest.
* :func:`render`: a :class:`Frame` of exactly ``height`` lines for a size:
  the header (the controller's last tick and what schedules it, spend today
  against the caps), the list, the selected row's detail with its tabs
  (activity, diff, verdict, log) and the footer (the keys, a question to
  confirm, or the last command's one-line result).
* :func:`on_key`: a key and the present :class:`UI` give the next UI and the
  effect to run (quit, or an :class:`Action`: the command a key stands for,
  run only once confirmed).

A line is a list of ``(text, style)`` segments; a style is ``""`` or words
from ``bold dim reverse red yellow green cyan`` (the shell maps colours to
attributes when there is no colour). Text from files goes through
:func:`autometta.observe.screen.clean` before it is laid out, so nothing an
agent wrote reaches the terminal as an escape.
"""

from __future__ import annotations

import re
import shlex
import textwrap
import time
from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from . import needs as needing
from .screen import age, clean, compact

Seg = Tuple[str, str]
Line = List[Seg]

#: The detail pane's tabs, in ``tab`` order.
TABS = ("activity", "diff", "verdict", "log")
#: The smallest terminal top draws in.
MIN_WIDTH, MIN_HEIGHT = 80, 24
#: Completed stages listed per repo (newest first).
COMPLETED_SHOWN = 3
#: Every "needs you" kind, most pressing first (:data:`autometta.observe.needs.KINDS`).
NEED_ORDER = needing.KINDS
#: Tabs whose newest line is at the bottom (they follow a growing log).
FOLLOWING = ("activity", "log")
#: Heartbeat states shown as a problem / as a warning (:data:`autometta.observe.needs.AGENT_STATES` the first).
BAD_AGENT, WARN_AGENT = needing.AGENT_STATES, ("quiet",)

#: Keys, what they do and the command they run, in the footer's order.
KEYS = (
    ("up/down", "move", None), ("enter", "detail", None), ("tab", "tabs", None),
    ("s", "stop", "stop REPO STAGE_ID"), ("r", "requeue", "requeue REPO STAGE_ID"),
    ("m", "merge", "requeue REPO STAGE_ID --retry-merge"), ("h", "unhalt", "tick --reset-halt --repo REPO"),
    ("t", "tick", "tick [--repo REPO]"), ("a", "attach", "attach REPO"), ("?", "help", None), ("q", "quit", None),
)
#: The footer drops keys from the front of this list until it fits (help lists them all).
FOOTER_DROPS = ("up/down", "enter", "tab")
ACTION_KEYS = ("s", "r", "m", "h", "t", "a")


# --------------------------------------------------------------------------- lines

def text_of(line: Line) -> str:
    return "".join(text for text, _ in line)


def fit_line(line: Line, width: int) -> Line:
    """``line`` cut to ``width`` columns (a ``~`` marks the cut); segments keep their styles."""
    out: Line = []
    left = width
    total = len(text_of(line))
    for text, style in line:
        if left <= 0:
            break
        if len(text) > left or (total > width and len(text) == left):
            cut = text[: max(0, left - 1)] + "~"
            out.append((cut, style))
            return out
        out.append((text, style))
        left -= len(text)
    return out


def _pad(line: Line, width: int, style: str) -> Line:
    """``line`` padded with spaces to ``width`` in ``style`` (a selected row is reversed end to end)."""
    used = len(text_of(line))
    return line + [(" " * (width - used), style)] if used < width else line


def _add(style: str, extra: str) -> str:
    return " ".join(w for w in (style + " " + extra).split() if w)


def plain(text: str, style: str = "") -> Line:
    return [(clean(text), style)]


# --------------------------------------------------------------------------- the list

@dataclass(frozen=True)
class Row:
    """One line of the list: a repo, or one of its stages."""

    kind: str  # repo | stage
    repo: str  # the repo's path
    name: str  # the repo's name
    stage_id: Optional[str]
    line: Tuple[Seg, ...]
    style: str = ""
    need: Optional[str] = None  # the most pressing "needs you" kind of this row

    @property
    def key(self) -> Tuple[str, Optional[str]]:
        return (self.repo, self.stage_id)


def _rank(kind: Optional[str]) -> int:
    return NEED_ORDER.index(kind) if kind in NEED_ORDER else len(NEED_ORDER)


def _need_style(kind: Optional[str]) -> str:
    if kind is None:
        return ""
    return "yellow" if kind == "parked" else "red"


def repo_rank(repo: Dict[str, Any]) -> Tuple[int, int, str]:
    """(most pressing need, nothing running, name): repos that need a person sort first."""
    needs = [_rank(n.get("kind")) for n in repo.get("needs") or []]
    if repo.get("error"):
        needs.append(0)
    running = any(s.get("status") == "in_progress" for s in repo.get("stages") or [])
    return (min(needs) if needs else len(NEED_ORDER), 0 if running else 1, str(repo.get("name")))


def stage_need(repo: Dict[str, Any], stage_id: Any) -> Optional[Dict[str, Any]]:
    """The most pressing need of one stage (a stopped stage, a stuck agent), or None."""
    found = [n for n in repo.get("needs") or [] if n.get("stage_id") == stage_id]
    return min(found, key=lambda n: _rank(n.get("kind"))) if found else None


def stages_in_order(repo: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Stages needing a person (by need), then in flight, then pending (queue order), then the last completed."""
    stages = [s for s in repo.get("stages") or [] if isinstance(s, dict)]
    waiting, running, pending, done, other = [], [], [], [], []
    for s in stages:
        need = stage_need(repo, s.get("id"))
        if need is not None:
            waiting.append((_rank(need.get("kind")), s))
        elif s.get("status") == "in_progress":
            running.append(s)
        elif s.get("status") == "pending":
            pending.append(s)
        elif s.get("status") == "completed":
            done.append(s)
        else:
            other.append(s)
    waiting.sort(key=lambda pair: pair[0])
    done.sort(key=lambda s: str(s.get("completed_at") or ""), reverse=True)
    return [s for _, s in waiting] + running + other + pending + done[:COMPLETED_SHOWN]


def _since(stamp: Any, now: float) -> str:
    from ..timeutil import parse_iso

    when = parse_iso(stamp) if isinstance(stamp, str) else None
    return age(now - when) if when is not None else ""


def _money(value: Any) -> str:
    return f"${float(value):.2f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "-"


def _caps(repo: Dict[str, Any]) -> str:
    tok, cap = repo.get("tokens_spent"), repo.get("token_cap_total")
    cost, cost_cap = repo.get("cost_usd_spent"), repo.get("cost_cap_usd")
    if tok is None and cost is None:
        return ""
    return f"tok {compact(tok)}/{compact(cap) if cap else '-'}  {_money(cost)}/{_money(cost_cap) if cost_cap else '-'}"


def repo_line(repo: Dict[str, Any], now: float, width: int) -> Tuple[Line, str, Optional[str]]:
    needs = repo.get("needs") or []
    top = min(needs, key=lambda n: _rank(n.get("kind"))) if needs else None
    running = sum(1 for s in repo.get("stages") or [] if s.get("status") == "in_progress")
    if repo.get("error"):
        state, style, kind = f"error: {repo['error']}", "red", "unreadable"
    elif top is not None and top.get("kind") == "halted":
        state, style, kind = f"HALTED: {top.get('marker') or 'unknown'}", "red", "halted"
    elif top is not None:
        kind = str(top.get("kind"))
        waiting = sum(1 for n in needs if n.get("kind") != "parked")  # as status counts them
        state = f"needs you: {waiting}" if kind != "parked" else str(top.get("summary") or "parked")
        style = _need_style(kind)
    else:
        kind = None
        state = f"running {running}" if running else ("off" if repo.get("enabled") is False else "idle")
        style = "green" if running else ""
    caps = _caps(repo) if width >= 100 else ""
    head: Line = [(clean(str(repo.get("name"))), _add("bold", style)), ("  ", "")]
    body: Line = [(clean(state), style)]
    line = head + body
    if caps:
        gap = width - len(text_of(line)) - len(caps)
        line = line + [(" " * max(2, gap), ""), (caps, "dim")]
    return line, style, kind


def stage_line(repo: Dict[str, Any], stage: Dict[str, Any], now: float, width: int,
               id_width: Optional[int] = None) -> Tuple[Line, str, Optional[str]]:
    need = stage_need(repo, stage.get("id"))
    status = str(stage.get("status") or "?")
    agent = stage.get("agent") or {}
    kind = need.get("kind") if need else None
    when = ""
    if need is not None:
        mark, style = "!", _need_style(kind)
        word = kind if kind in BAD_AGENT else status
        detail = need.get("marker") or ""
        if kind in BAD_AGENT:
            detail = f"{agent.get('role') or need.get('role') or 'agent'} pid {need.get('pid') or '?'}"
            detail += f" ({need.get('marker')})" if need.get("marker") else ""
        when = _since(need.get("since") or stage.get("stopped_at"), now)
    elif status == "in_progress":
        mark, style = ">", "green"
        word = str(stage.get("phase") or "in_progress")
        bits = []
        if agent:
            bits.append(f"{agent.get('state') or '?'}")
            if agent.get("tokens") is not None:
                bits.append(f"{compact(agent.get('tokens'))} tok")
            if agent.get("activity"):
                bits.append(str(agent["activity"]))
            if agent.get("state") in WARN_AGENT:
                style = "yellow"
        else:
            bits.append("nothing runs now: the next tick moves it on")
        detail = "  ".join(bits)
        when = _since(stage.get("started_at"), now)
    elif status == "completed":
        mark, style, word = " ", "dim", status
        detail = str(stage.get("commit") or "")[:10]
        when = _since(stage.get("completed_at"), now)
    else:
        mark, style, word = " ", "", status
        detail = ", ".join(stage.get("waits") or [])
        detail = f"waits for {detail}" if detail else ""
    sid = clean(str(stage.get("id")))
    id_width = id_width if id_width is not None else id_column([sid], width)
    sid = sid if len(sid) <= id_width else sid[: id_width - 1] + "~"
    left = f"  {mark} {sid:<{id_width}} {clean(word):<15} "
    right = f" {when:>5}" if when else ""
    room = max(0, width - len(left) - len(right))
    text = clean(str(detail))
    text = text if len(text) <= room else text[: max(0, room - 1)] + "~"
    line: Line = [(left, style), (text, style if style else "dim")]
    if right:
        line.append((" " * (room - len(text)) + right, "dim"))
    return line, style, kind


def id_column(ids: Sequence[str], width: int) -> int:
    """The stage id column: as wide as the longest id listed (8 to a quarter of the screen, at most 32)."""
    return max(8, min(max((len(i) for i in ids), default=8), 32, width // 4))


def rows(view: Dict[str, Any], width: int) -> List[Row]:
    """The list: each repo (needing a person first) then its stages (the same order within)."""
    now = float(view.get("now") or time.time())
    listed = [(repo, stages_in_order(repo)) for repo in sorted(view.get("repos") or [], key=repo_rank)]
    id_width = id_column([clean(str(s.get("id"))) for _, stages in listed for s in stages], width)
    out: List[Row] = []
    for repo, stages in listed:
        line, style, kind = repo_line(repo, now, width)
        out.append(Row("repo", str(repo.get("path")), str(repo.get("name")), None, tuple(line), style, kind))
        for stage in stages:
            line, style, kind = stage_line(repo, stage, now, width, id_width)
            out.append(Row("stage", str(repo.get("path")), str(repo.get("name")), str(stage.get("id")),
                           tuple(line), style, kind))
    return out


# --------------------------------------------------------------------------- the header

def controller_line(view: Dict[str, Any]) -> Line:
    c = view.get("controller") or {}
    now = float(view.get("now") or time.time())
    last = c.get("last_tick")
    warn, stale = float(c.get("warn_seconds") or 900), float(c.get("stale_seconds") or 3600)
    if last is None:
        tick, style = "no tick has run yet", "yellow"
    else:
        seconds = max(0.0, now - float(last))
        tick = f"last tick {age(seconds)} ago"
        style = "red" if seconds > stale else ("yellow" if seconds > warn else "")
        tick += " (STALE)" if seconds > stale else (" (WARN)" if seconds > warn else "")
    schedule = c.get("schedule")
    if schedule is None:
        sched, s_style = "schedule: not checked yet", "dim"
    elif schedule:
        sched, s_style = f"run by {schedule}", ""
    else:
        sched, s_style = "nothing schedules it (autometta install-cron)", "yellow"
    return [("controller: ", "bold"), (tick, style), ("; ", ""), (clean(sched), s_style)]


def _ratio(spent: Any, cap: Any) -> Optional[float]:
    ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (spent, cap))
    return float(spent) / float(cap) if ok and cap else None


def nearest_cap(repos: Sequence[Dict[str, Any]]) -> Optional[Tuple[float, str]]:
    """(fraction used, ``name tokens 21k/1M``) of the cap closest to its limit, across repos."""
    best: Optional[Tuple[float, str]] = None
    for repo in repos:
        for what, spent, cap, show in (("tokens", "tokens_spent", "token_cap_total", compact),
                                       ("cost", "cost_usd_spent", "cost_cap_usd", _money)):
            r = _ratio(repo.get(spent), repo.get(cap))
            if r is not None and (best is None or r > best[0]):
                best = (r, f"{repo.get('name')} {what} {show(repo.get(spent))}/{show(repo.get(cap))}")
    return best


def spend_line(view: Dict[str, Any]) -> Line:
    s = view.get("spend") or {}
    runs = f", {s['runs']} run{'' if s['runs'] == 1 else 's'}" if isinstance(s.get("runs"), int) else ""
    line: Line = [("spend today: ", "bold"), (f"{_money(s.get('cost_usd') or 0)}, {compact(s.get('tokens') or 0)} "
                                               f"tokens{runs}", "")]
    near = nearest_cap(view.get("repos") or [])
    if near is not None:
        ratio, what = near
        style = "red" if ratio >= 1 else ("yellow" if ratio >= 0.8 else "")
        line += [("  caps: nearest ", "bold"), (f"{clean(what)} ({ratio:.0%})", style)]
    else:
        line += [("  caps: none set", "dim")]
    return line


def title_line(view: Dict[str, Any], ui: "UI", width: int) -> Line:
    now = float(view.get("now") or time.time())
    stamp = time.strftime("%H:%M:%S", time.localtime(now))
    repos = view.get("repos") or []
    count = sum(len(r.get("needs") or []) for r in repos)
    scope = view.get("scope")
    what = clean(str(scope)) if scope else f"{len(repos)} repo{'s' if len(repos) != 1 else ''}"
    line: Line = [("autometta top", "bold"), (f"  {stamp}  {what}", "")]
    if count:
        line.append((f"  needs you: {count}", "red bold"))
    if ui.read_only:
        tag = "READ-ONLY"
        gap = width - len(text_of(line)) - len(tag)
        line += [(" " * max(2, gap), ""), (tag, "yellow bold")]
    return line


# --------------------------------------------------------------------------- the detail

def _wrap(text: str, width: int, indent: str = "") -> List[str]:
    return textwrap.wrap(clean(text), width=max(20, width), initial_indent=indent,
                         subsequent_indent=indent + "  ") or [indent]


def activity_lines(d: Dict[str, Any], width: int) -> List[Line]:
    out: List[Line] = []
    if d.get("agents"):  # a repo: its running agents, one each
        for a in d["agents"]:
            style = "red" if a.get("state") in BAD_AGENT else ("yellow" if a.get("state") in WARN_AGENT else "")
            out.append(plain(f"{a.get('stage') or '?'}  {a.get('role') or '?'} {a.get('family') or ''} pid "
                             f"{a.get('pid')}  {a.get('state')}  {age(a.get('elapsed_seconds'))}  "
                             f"{compact(a.get('tokens'))} tok", style))
            if a.get("activity"):
                out.append(plain(f"    > {a['activity']}", "dim"))
        return out
    if d.get("note"):
        out.append(plain(str(d["note"]), "dim"))
    if d.get("role"):
        state = d.get("state")
        style = "red" if state in BAD_AGENT else ("yellow" if state in WARN_AGENT else ("green" if d.get("alive")
                                                                                        else "dim"))
        head = f"{d.get('role')}"
        if d.get("family"):
            head += f" ({d['family']})"
        if d.get("pid"):
            head += f" pid {d['pid']}"
        head += f"  {state or ('running' if d.get('alive') else 'not running')}"
        if d.get("reason"):
            head += f" ({d['reason']})"
        if d.get("elapsed_seconds") is not None:
            head += f"  {age(d['elapsed_seconds'])}"
        if d.get("tokens") is not None:
            head += f"  {compact(d['tokens'])} tok"
        out.append(plain(head, _add(style, "bold")))
        if d.get("log"):
            out.append(plain(f"log: {d['log']}", "dim"))
    events = d.get("events") or []
    if not events and d.get("role"):
        out.append(plain("(its log says nothing yet)", "dim"))
    for event in events:
        out.append(plain(f"  {event}"))
    return out


def _diff_style(line: str) -> str:
    if line.startswith(("+++", "---")):
        return "bold"
    if line.startswith("+"):
        return "green"
    if line.startswith("-"):
        return "red"
    if line.startswith("@@"):
        return "cyan"
    if line.startswith("diff --git"):
        return "bold"
    return ""


def diff_lines(d: Dict[str, Any], width: int) -> List[Line]:
    out: List[Line] = []
    if d.get("pending"):
        return [plain("(reading the change with git...)", "dim")]
    if d.get("head"):
        out.append(plain(str(d["head"]), "bold"))
    if d.get("note"):
        out.append(plain(str(d["note"]), "dim"))
    if d.get("missing"):
        out.append(plain(f"missing: {d['missing']}", "yellow"))
    for line in str(d.get("diffstat") or "").splitlines():
        out.append(plain(f" {line}"))
    if "diffstat" in d and not d.get("diffstat"):
        out.append(plain("(no changes)", "dim"))
    if d.get("diff"):
        out.append([("", "")])
        for line in str(d["diff"]).rstrip("\n").splitlines():
            out.append(plain(line.replace("\t", "    "), _diff_style(line)))
    if d.get("truncated"):
        out.append(plain("... (cut; see the branch or commit in git, or autometta show)", "dim"))
    return out


def need_lines(items: Sequence[Dict[str, Any]], now: Optional[float], width: int) -> List[Line]:
    """``needs you:`` and each item as every text view says it (:func:`autometta.observe.needs.lines`): what
    (since when), then ``-> command  (note)``; wrapped at spaces only, so a command or a path is never broken."""
    fields = needing.FIELDS
    out: List[Line] = [plain("needs you:", "red bold")] if items else []
    for item in items:
        style = "yellow" if item.get("kind") == "parked" else "red"
        said = needing.lines([needing.Need(**{k: v for k, v in item.items() if k in fields})], now=now)
        for n, text in enumerate(said):
            text = "  " + text
            indent = " " * (len(text) - len(text.lstrip(" "))) + ("   " if n else "  ")
            for part in textwrap.wrap(text, width=max(20, width), subsequent_indent=indent, break_long_words=False,
                                      break_on_hyphens=False) or [text]:
                out.append(plain(part, _add(style, "bold") if n == 0 else "bold"))
    return out


def verdict_lines(d: Dict[str, Any], width: int) -> List[Line]:
    out: List[Line] = need_lines(d.get("needs") or [], d.get("now"), width)
    if out:
        out.append([("", "")])
    if d.get("status"):
        out.append(plain(f"{d.get('stage_id')}: {d['status']}" + (f" ({d['marker']})" if d.get("marker") else ""),
                         "bold"))
    if d.get("overall"):
        style = "green" if d["overall"] == "PASS" else "red"
        out.append(plain(f"verdict {d['overall']}" + (f" ({d['problem']})" if d.get("problem") else "")
                         + (f" by {d['verifier_identity']}" if d.get("verifier_identity") else ""), _add(style, "bold")))
    elif d.get("missing"):
        out.append(plain(f"no verdict: {d['missing']}", "dim"))
    if d.get("headline"):
        out += [plain(x) for x in _wrap(f"headline: {d['headline']}", width)]
    for row in d.get("criteria") or []:
        verdict = row.get("verdict") or "-"
        style = "green" if verdict == "PASS" else ("red" if verdict == "FAIL" else "")
        out += [plain(x, style) for x in _wrap(f"{row.get('id')!s:>3}  {verdict:<4}  "
                                               f"{row.get('criterion') or row.get('name') or ''}", width)]
        if row.get("evidence"):
            out += [plain(x, "dim") for x in _wrap(f"evidence: {row['evidence']}", width, "           ")]
    if d.get("findings"):
        out += [plain(x) for x in _wrap(f"findings: {d['findings']}", width)]
    if d.get("look"):
        out.append(plain(f"the whole review: {d['look']}", "dim"))
    if not out:
        out.append(plain("(nothing needs you here)", "dim"))
    return out


def log_lines(d: Dict[str, Any], width: int) -> List[Line]:
    lines = d.get("lines") or []
    if not lines:
        return [plain(str(d.get("note") or "(no tick log lines about this repo yet)"), "dim")]
    sid = d.get("stage_id")
    out = []
    for line in lines:
        if _ISO_LINE.match(line):
            line = line[11:20] + line[20:]  # the day is the file's: the time (UTC) is enough
        out.append(plain(line, "bold" if sid and sid in line else ""))
    return out


_ISO_LINE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z ")

TAB_LINES = {"activity": activity_lines, "diff": diff_lines, "verdict": verdict_lines, "log": log_lines}


def detail_lines(tab: str, detail: Optional[Dict[str, Any]], width: int) -> List[Line]:
    if detail is None:
        return [plain("(nothing selected)", "dim")]
    if detail.get("error"):
        return [plain(str(detail["error"]), "red")]
    return TAB_LINES[tab](detail, width)


def tabs_line(ui: "UI", row: Optional[Row], width: int) -> Line:
    line: Line = []
    for n, tab in enumerate(TABS, start=1):
        line.append((f" {n} {tab} ", "reverse bold" if tab == ui.tab else "dim"))
        line.append((" ", ""))
    if row is not None:
        what = f"{row.stage_id} in {row.name}" if row.stage_id else f"repo {row.name}"
        line.append((f"  {clean(what)}", "bold"))
    return line


def window(lines: List[Line], height: int, scroll: int, from_bottom: bool) -> Tuple[List[Line], int]:
    """``height`` of ``lines``: from the top moved down ``scroll``, or from the bottom moved up ``scroll``.

    Returns the lines and the scroll clamped to what there is.
    """
    most = max(0, len(lines) - height)
    scroll = max(0, min(scroll, most))
    if from_bottom:
        end = len(lines) - scroll
        return lines[max(0, end - height):end], scroll
    return lines[scroll:scroll + height], scroll


# --------------------------------------------------------------------------- the UI state and keys

@dataclass(frozen=True)
class Action:
    """What a key runs: ``autometta`` with ``argv``, the command's own function."""

    key: str
    label: str
    argv: Tuple[str, ...]

    def command(self) -> str:
        return "autometta " + " ".join(shlex.quote(a) for a in self.argv)


@dataclass(frozen=True)
class UI:
    selected: Optional[Tuple[str, Optional[str]]] = None
    index: int = 0
    offset: int = 0
    tab: str = "activity"
    zoom: bool = False
    scroll: int = 0
    message: Optional[Tuple[str, str]] = None
    confirm: Optional[Action] = None
    help: bool = False
    read_only: bool = False
    scope: Optional[str] = None


def resolve(ui: UI, items: Sequence[Row]) -> int:
    """The index of the selected row: its key, else the same position (the row left the list)."""
    if not items:
        return 0
    if ui.selected is not None:
        for n, row in enumerate(items):
            if row.key == ui.selected:
                return n
    return max(0, min(ui.index, len(items) - 1))


def action_for(key: str, row: Optional[Row], scope: Optional[str]) -> Union[Action, str]:
    """The command ``key`` runs on ``row``; or why it cannot (one line)."""
    if key == "t":
        argv: Tuple[str, ...] = ("tick",) + (("--repo", scope) if scope else ())
        return Action("t", "run one tick now" + (f" for {scope}" if scope else ""), argv)
    if row is None:
        return "nothing selected"
    if key == "h":
        return Action("h", f"reset the halt of {row.name}", ("tick", "--reset-halt", "--repo", row.repo))
    if key == "a":
        return Action("a", f"attach the tmux viewer of {row.name}", ("attach", row.repo))
    if row.stage_id is None:
        return f"select a stage of {row.name} first ({key} acts on a stage)"
    if key == "s":
        return Action("s", f"stop {row.stage_id} in {row.name}", ("stop", row.repo, row.stage_id))
    if key == "r":
        return Action("r", f"requeue {row.stage_id} in {row.name}", ("requeue", row.repo, row.stage_id))
    if key == "m":
        return Action("m", f"merge {row.stage_id} in {row.name} again",
                      ("requeue", row.repo, row.stage_id, "--retry-merge"))
    return f"no action on {key}"


#: Keys the shell passes to :func:`on_key` besides single characters.
NAMED = ("up", "down", "pgup", "pgdn", "home", "end", "enter", "tab", "btab", "esc", "left", "right")


def on_key(ui: UI, key: str, items: Sequence[Row], *, list_height: int,
           detail_height: int) -> Tuple[UI, Optional[Union[str, Action]]]:
    """The next UI for ``key``, and the effect: ``"quit"``, an :class:`Action` to run (confirmed), or None."""
    if ui.confirm is not None:
        action = ui.confirm
        if key in ("y", "Y"):
            return replace(ui, confirm=None, message=(f"running {action.command()} ...", "yellow")), action
        return replace(ui, confirm=None, message=(f"cancelled: {action.label}", "dim")), None
    if ui.help:
        return (replace(ui, help=False), None) if key not in ("q",) else (ui, "quit")
    ui = replace(ui, message=None)
    index = resolve(ui, items)
    row = items[index] if items else None
    if key in ("q", "Q"):
        return ui, "quit"
    if key == "?":
        return replace(ui, help=True), None
    if key in ("tab", "right", "l") or key in ("1", "2", "3", "4"):
        tab = TABS[int(key) - 1] if key.isdigit() else TABS[(TABS.index(ui.tab) + 1) % len(TABS)]
        return replace(ui, tab=tab, scroll=0), None
    if key in ("btab", "left"):
        return replace(ui, tab=TABS[(TABS.index(ui.tab) - 1) % len(TABS)], scroll=0), None
    if key == "enter":
        return replace(ui, zoom=not ui.zoom, scroll=0), None
    if key == "esc":
        return replace(ui, zoom=False, scroll=0), None
    detail_keys = {"pgup": detail_height - 1, "pgdn": -(detail_height - 1)}
    if ui.zoom:
        detail_keys.update({"up": 1, "k": 1, "down": -1, "j": -1})
    if key in detail_keys:
        step = detail_keys[key]
        if ui.tab not in FOLLOWING:
            step = -step
        return replace(ui, scroll=max(0, ui.scroll + step)), None
    moves = {"up": -1, "k": -1, "down": 1, "j": 1, "home": -len(items), "end": len(items)}
    if key in moves:
        if not items:
            return ui, None
        index = max(0, min(len(items) - 1, index + moves[key]))
        return _select(ui, items, index, list_height), None
    if key in ACTION_KEYS:
        if ui.read_only:
            return replace(ui, message=(f"read-only: '{key}' is off (top was started with --read-only)",
                                        "yellow")), None
        found = action_for(key, row, ui.scope)
        if isinstance(found, str):
            return replace(ui, message=(found, "yellow")), None
        return replace(ui, confirm=found), None
    return ui, None


def _select(ui: UI, items: Sequence[Row], index: int, list_height: int) -> UI:
    offset = scroll_into_view(ui.offset, index, list_height, len(items))
    return replace(ui, selected=items[index].key, index=index, offset=offset, scroll=0)


def scroll_into_view(offset: int, index: int, height: int, total: int) -> int:
    """The list's first shown row, moved as little as needed to show ``index``."""
    if height <= 0:
        return 0
    if index < offset:
        offset = index
    elif index >= offset + height:
        offset = index - height + 1
    return max(0, min(offset, max(0, total - height)))


# --------------------------------------------------------------------------- the frame

@dataclass
class Frame:
    """What the terminal shows: ``lines`` (one per row) and where each region starts and ends."""

    lines: List[Line]
    regions: Dict[str, Tuple[int, int]] = field(default_factory=dict)
    ui: Optional[UI] = None

    def text(self) -> str:
        return "\n".join(text_of(line) for line in self.lines)


def too_small(width: int, height: int) -> str:
    return (f"terminal too small ({width}x{height}); top needs {MIN_WIDTH}x{MIN_HEIGHT} or more; "
            f"'autometta status --watch' fits any size")


def split(height: int, zoom: bool) -> Tuple[int, int]:
    """(list rows, detail rows) of the body between the header and the footer."""
    body = height - 3 - 1 - 1  # header (3), the tabs line, the footer
    if zoom:
        return 1, body - 1
    listed = max(5, (body * 2) // 5)
    return listed, body - listed


def footer(ui: UI, width: int) -> Line:
    if ui.confirm is not None:
        return [(f"{ui.confirm.label}? ", "yellow bold"), ("y", "bold reverse"), ("/N", "bold"),
                (f"  runs: {ui.confirm.command()}", "yellow")]
    if ui.message is not None:
        text, style = ui.message
        return [(clean(text), style)]
    keys = [(key, what) for key, what, _ in KEYS if not (ui.read_only and key in ACTION_KEYS)]
    lead: Line = [("READ-ONLY ", "yellow bold")] if ui.read_only else []

    def build(shown: List[Tuple[str, str]]) -> Line:
        line = list(lead)
        for key, what in shown:
            line += [(key, "bold reverse"), (f" {what} ", "")]
        return line

    for drop in range(len(FOOTER_DROPS) + 1):
        shown = [k for k in keys if k[0] not in FOOTER_DROPS[:drop]]
        line = build(shown)
        if len(text_of(line)) <= width:
            return line
    return line


def help_lines(ui: UI) -> List[Line]:
    out: List[Line] = [plain("autometta top: keys", "bold"), [("", "")]]
    for key, what, command in KEYS:
        off = ui.read_only and key in ACTION_KEYS
        text = f"  {key:<8} {what:<12}" + (f" runs: autometta {command}" if command else "")
        out.append(plain(text + ("   (off: --read-only)" if off else ""), "dim" if off else ""))
    out += [[("", "")],
            plain("  pgup/pgdn scroll the detail (in the detail, after enter, up/down too); 1-4 pick a tab; "
                  "esc leaves the detail"),
            plain("  Every action asks first (y), runs the command's own code and shows its one-line result."),
            plain("  The list: what needs you first (halted, stopped stages, stuck agents, parked), then what runs."),
            [("", "")], plain("any key closes this help", "dim")]
    return out


def render(view: Dict[str, Any], ui: UI, detail: Optional[Dict[str, Any]], width: int, height: int,
           items: Optional[List[Row]] = None) -> Frame:
    """The whole screen for ``view`` at ``width`` x ``height``; the returned frame's ``ui`` has the list
    offset, index and detail scroll clamped to what was drawn."""
    if width < MIN_WIDTH or height < MIN_HEIGHT:
        said = [fit_line(plain(x, "red"), width) for x in textwrap.wrap(too_small(width, height), max(10, width))]
        said = said[:height]
        return Frame(said + [[] for _ in range(height - len(said))], {"error": (0, len(said))}, ui)
    items = rows(view, width) if items is None else items
    index = resolve(ui, items)
    list_h, detail_h = split(height, ui.zoom)
    offset = scroll_into_view(ui.offset, index, list_h, len(items))
    if ui.zoom:
        offset = index
    ui = replace(ui, index=index, offset=offset, selected=items[index].key if items else None)
    lines: List[Line] = [title_line(view, ui, width), controller_line(view), spend_line(view)]
    regions: Dict[str, Tuple[int, int]] = {"header": (0, 3)}
    if ui.help:
        body = help_lines(ui)
        body_h = height - 4
        lines += [fit_line(line, width) for line in body[:body_h]] + [[] for _ in range(body_h - len(body[:body_h]))]
        regions["help"] = (3, 3 + body_h)
    else:
        shown = items[offset:offset + list_h]
        start = len(lines)
        for n, row in enumerate(shown, start=offset):
            line = fit_line(list(row.line), width)
            if n == index:
                line = _pad([(t, _add(s, "reverse")) for t, s in line], width, "reverse")
            lines.append(line)
        if not items:
            lines.append(plain("no subscribed repos; run 'autometta subscribe REPO'", "dim"))
        lines += [[] for _ in range(start + list_h - len(lines))]
        regions["list"] = (start, start + list_h)
        row = items[index] if items else None
        lines.append(fit_line(tabs_line(ui, row, width), width))
        body = detail_lines(ui.tab, detail, width) if row is not None else []
        shown_detail, scroll = window(body, detail_h, ui.scroll, ui.tab in FOLLOWING)
        ui = replace(ui, scroll=scroll)
        start = len(lines)
        lines += [fit_line(line, width) for line in shown_detail]
        lines += [[] for _ in range(start + detail_h - len(lines))]
        regions["detail"] = (start - 1, start + detail_h)
    lines.append(fit_line(footer(ui, width), width))
    regions["footer"] = (height - 1, height)
    return Frame(lines[:height], regions, ui)

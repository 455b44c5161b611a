"""Is the dashboard behind what it shows, and how old is what it shows? File reads only.

The page is rewritten when something it shows changed since its data was
read: a subscriber file, a repo's ``state.yaml`` or ``budget.json``, the
heartbeat's findings (``state/heartbeat.json``, which the tick rewrites each
tick: an agent turned stuck, over budget or gone), the billing routes parked
on this host (``<home>/parked.json``), the spend ledger (``<home>/ledger/``:
a run booked by hand), or a park it shows has reached its reset. Otherwise the tick only *restamps* it: the page says its
data is current as of this tick (a few bytes replaced in place, no git, no
subprocess; ``data.json`` keeps when it was made), so the page's age tells
how long ago a tick last looked.

The page shows that age, and says so in red when it is older than two tick
intervals (:func:`stale_after`): checked when the page is written (here) and
again, as time passes, by the page's own inline script, so a page left open,
or opened from ``file://`` after the tick stopped, turns red by itself.

``<home>/dashboard/.fresh.json`` keeps what the checks need: ``as_of`` (when
the data was read, epoch seconds), ``findings`` (a digest of the heartbeat's
findings it shows), ``expires_at`` (the earliest park reset it shows), and
the interval with where it came from.
"""

from __future__ import annotations

import json
from pathlib import Path

from .. import files
from ..errors import UserError
from ..paths import HomePaths
from ..timeutil import age as _age, now_iso, parse_iso

# Every tick asks (:func:`why_stale`) and an idle one restamps (:func:`restamp`): neither needs typing,
# hashlib, html or a regular expression, each of which costs that tick more than the restamp.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, Iterable, List, Optional, Tuple

#: Seconds between ticks when neither a setting nor the installed schedule says (install-cron's 5 minutes).
DEFAULT_INTERVAL = 300
#: The page's data is stale when older than this many tick intervals.
INTERVALS = 2

#: Where the page's freshness line starts and ends (:func:`fragment`).
_OPEN, _CLOSE = "<!--freshness-->", "<!--/freshness-->"
#: The page's embedded data says when it was made: ``"data_as_of": "<time>"``.
_AS_OF_JSON = '"data_as_of": "'


def sidecar(hp: HomePaths) -> Path:
    return hp.dashboard / ".fresh.json"


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


# --------------------------------------------------------------------------- the interval


def interval(settings: Any) -> Tuple[int, str]:
    """(seconds between ticks, where that came from): the setting, else the installed schedule, else 300."""
    configured = getattr(settings, "tick_interval_seconds", 0) or 0
    if configured > 0:
        return int(configured), "observe.tick_interval_seconds"
    from ..schedule import interval as schedule_interval

    found = schedule_interval.tick_interval()
    if found is not None:
        return found
    return DEFAULT_INTERVAL, "the default (no installed schedule says)"


def stale_after(seconds: int) -> int:
    return INTERVALS * int(seconds)


def is_stale(as_of: Optional[float], now: float, limit: int) -> bool:
    """The page's rule (its inline script applies the same): data older than ``limit`` seconds."""
    return as_of is None or (limit > 0 and now - as_of > limit)


def _escape(value: Any) -> str:
    """``html.escape(str(value), quote=True)``, without importing html (and its table of entities)."""
    return (str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&#x27;"))


def fragment(as_of: str, now: float, limit: int, every: int, source: str, when: Optional[float] = None) -> str:
    """The page's freshness line, as written: its age and, when stale, why, in red.

    ``when``: ``as_of`` as epoch seconds, when the caller has it (else it is parsed).
    """
    when = parse_iso(as_of) if when is None else when
    stale = is_stale(when, now, limit)
    note = (f" STALE: older than two tick intervals ({_age(every)} each, from {source}); "
            "is the tick still running?") if stale else ""
    e = _escape
    return (f'<!--freshness--><span id="freshness" class="{"stale" if stale else "fresh"}" data-at="{e(as_of)}" '
            f'data-limit="{int(limit)}" data-interval="{int(every)}" data-source="{e(source)}">'
            f'data as of {e(as_of)} (<span id="generated-ago" data-at="{e(as_of)}">'
            f'{_age(now - when) if when is not None else "?"} ago</span>)'
            f'<span id="stale-note">{e(note)}</span></span><!--/freshness-->')


#: The page's own check, every 30 s: the same rule and words as :func:`fragment`.
SCRIPT = """
(function(){var box=document.getElementById('freshness');if(!box)return;
var at=Date.parse(box.getAttribute('data-at')),limit=+box.getAttribute('data-limit'),
every=+box.getAttribute('data-interval'),source=box.getAttribute('data-source');
var ago=document.getElementById('generated-ago'),note=document.getElementById('stale-note');
function age(s){return s<60?s+'s':s<3600?Math.floor(s/60)+'m':s<86400?Math.floor(s/3600)+'h':Math.floor(s/86400)+'d';}
function show(){var s=isNaN(at)?Infinity:Math.max(0,Math.round((Date.now()-at)/1000));
if(ago)ago.textContent=(isNaN(at)?'?':age(s))+' ago';var stale=isNaN(at)||(limit>0&&s>limit);
box.className=stale?'stale':'fresh';if(note)note.textContent=stale?' STALE: older than two tick intervals ('+
age(every)+' each, from '+source+'); is the tick still running?':'';}
show();setInterval(show,30000);})();
"""


# --------------------------------------------------------------------------- what the page depends on


def findings_digest(repos: Iterable[Any]) -> str:
    """A digest of the heartbeat's findings in each repo's ``heartbeat.json``: which agents, in which state."""
    seen: List[List[Any]] = []
    for paths in repos:
        try:
            report = files.read_json(paths.heartbeat)  # bounded: never a FIFO, nor nesting that overflows
        except UserError:
            continue
        entries = report.get("entries") if isinstance(report, dict) else None
        for row in entries if isinstance(entries, list) else []:
            if isinstance(row, dict):
                seen.append([str(paths.root), str(row.get("pid")), str(row.get("state"))])
    return files.sha256_hex(json.dumps(sorted(seen)).encode("utf-8"))[:16]


def _repos(subscribers: Iterable[Any]) -> List[Any]:
    return [sub.paths for sub in subscribers if getattr(sub, "repo_path", None) is not None]


def read_sidecar(hp: HomePaths) -> Optional[Dict[str, Any]]:
    try:
        doc = files.read_json(sidecar(hp))
    except UserError:
        return None
    return doc if isinstance(doc, dict) and isinstance(doc.get("as_of"), (int, float)) else None


def write_sidecar(hp: HomePaths, doc: Dict[str, Any], durable: bool = True) -> None:
    files.atomic_write(sidecar(hp), files.dump_json(doc), mode=0o600, durable=durable)


def why_stale(hp: HomePaths, subscribers: Iterable[Any], now: float) -> Optional[str]:
    """Why the page must be written again, or None when a restamp is enough (stat calls and small reads)."""
    if not hp.dashboard_page.exists():
        return "no page yet"
    known = read_sidecar(hp)
    if known is None:
        return "the page has no freshness record"
    as_of = float(known["as_of"])
    if _mtime(hp.subscribers) > as_of:
        return "the subscribers changed"
    if _mtime(hp.parks) > as_of:
        return "the parked billing routes changed"
    from ..books import ledger

    if any(_mtime(path) > as_of for path in ledger.ledger_files(hp)):
        return "a run was booked in the spend ledger"
    repos = _repos(subscribers)
    for paths in repos:
        if _mtime(paths.state_yaml) > as_of or _mtime(paths.budget) > as_of:
            return f"{paths.root} changed"
    if known.get("findings") != findings_digest(repos):
        return "the heartbeat's findings changed"
    expires = known.get("expires_at")
    if isinstance(expires, (int, float)) and now >= expires:
        return "a park it shows has reached its reset"
    return None


def record(hp: HomePaths, subscribers: Iterable[Any], as_of: float, every: Tuple[int, str],
           expires_at: Optional[float]) -> None:
    """After writing the page: what it was made from (see the module docstring)."""
    write_sidecar(hp, {"as_of": as_of, "findings": findings_digest(_repos(subscribers)), "expires_at": expires_at,
                       "interval_seconds": every[0], "interval_source": every[1],
                       "stale_after_seconds": stale_after(every[0])})


def _replaced(page: str, line: str, stamp: str) -> Optional[str]:
    """``page`` with its first freshness line replaced by ``line`` and its first ``"data_as_of"`` by ``stamp``;
    None when it has either not (what ``<!--freshness-->.*?<!--/freshness-->`` and
    ``"data_as_of": "[^"\\\\]*"`` find, with string methods: no regular expression to compile each tick)."""
    start = page.find(_OPEN)
    end = page.find(_CLOSE, start + len(_OPEN)) if start >= 0 else -1
    if end < 0:
        return None
    value = page.find(_AS_OF_JSON)
    while value >= 0:
        close = page.find('"', value + len(_AS_OF_JSON))
        if close >= 0 and "\\" not in page[value + len(_AS_OF_JSON):close]:
            break
        value = page.find(_AS_OF_JSON, value + 1)
    if value < 0:
        return None
    spans = sorted([(start, end + len(_CLOSE), line),
                    (value, close + 1, f'{_AS_OF_JSON}{stamp}"')])
    if spans[0][1] > spans[1][0]:
        return None  # the one inside the other: not a page this module wrote
    (a, b, first), (c, d, second) = spans
    return page[:a] + first + page[b:c] + second + page[d:]


def restamp(hp: HomePaths, now: float) -> bool:
    """Say on the page and in data.json that their data is current as of ``now``; False when the page
    cannot be restamped (no record, an older page without the marks): then write it anew."""
    known = read_sidecar(hp)
    if known is None:
        return False
    try:
        page = hp.dashboard_page.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    stamp = now_iso(now)
    every = int(known.get("interval_seconds") or DEFAULT_INTERVAL)
    line = fragment(stamp, now, int(known.get("stale_after_seconds") or stale_after(every)), every,
                    str(known.get("interval_source") or "the default"), when=now)
    page = _replaced(page, line, stamp)
    if page is None:
        return False
    # a view rewritten every tick: a restamp lost in a crash costs nothing (the next tick restamps or rewrites)
    files.atomic_write(hp.dashboard_page, page, mode=0o600, durable=False)
    write_sidecar(hp, dict(known, as_of=now), durable=False)  # data.json is left alone: it says when it was made
    return True

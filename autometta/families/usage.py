"""Tokens, cost and usage limits: the records, and the readers every family shares.

Pure functions over a log's text; nothing here runs a process or reads a file.
Each family reads its own CLI's usage (:meth:`autometta.families.base.Family.parse_usage`:
claude's ``result`` events in :mod:`.claude`, codex's ``turn.completed`` in
:mod:`.codex`, the script family's ``autometta-usage:`` line in :mod:`.script`)
with the helpers here. What ended a run on a rate or usage limit is read by
one function for every family (:func:`find_usage_limit`): it knows both CLIs'
events and messages (measured with claude-code 2.1.197 and codex 0.171.0,
samples in ``tests/data/cli/``), and a script agent that imitates either is
parked as they would be.
"""

from __future__ import annotations

import calendar
import json
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any, Dict, Iterator, List, Optional

__all__ = ["Usage", "UsageLimit", "count", "scan_number", "find_usage_limit", "detect_usage_limit", "reset_epoch"]


@dataclass
class Usage:
    """Tokens one agent run spent, and its cost when the CLI reports one.

    ``input_tokens`` are input tokens read fresh (neither read from nor written
    to the prompt cache), ``cache_write_tokens`` input tokens written to the
    cache, ``cache_read_tokens`` input tokens served from it, ``output_tokens``
    everything generated, reasoning included. ``unsplit_tokens`` holds a
    count an old plain-text log gave without saying what it was made of.
    ``cost_usd`` is claude's own ``total_cost_usd`` (None for codex, which
    reports no cost).
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: Optional[float] = None
    unsplit_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        """The tokens that count against a token budget.

        Every token the model processed fresh: input + cache writes + output
        (+ any unsplit count). Cache reads are left out: an agent re-reads its
        whole context on every request, at a tenth of the price, and counting
        that would make a long run look many times its size. This is exactly
        the figure codex prints as ``tokens used`` (input - cached + output),
        so budgets keep the meaning they had in the bash version. For money,
        use ``cost_usd``.
        """
        return self.input_tokens + self.cache_write_tokens + self.output_tokens + self.unsplit_tokens


@dataclass
class UsageLimit:
    """A run that ended on a rate or usage limit.

    ``kind`` is ``"usage"`` for a plan's or account's limit (wait for the
    reset) and ``"rate"`` for API throttling (retry after a short pause).
    ``resets_at`` is ``YYYY-MM-DDTHH:MM:SSZ`` when the log gave the reset as a
    timestamp, else the reset time as printed (``"3:50pm (UTC)"``,
    ``"Mar 17th, 2030 5:46 PM"``), else None. ``message`` is the CLI's words.
    """

    kind: str
    message: str
    resets_at: Optional[str] = None


# -- reading logs --------------------------------------------------------------

def _json_objects(text: str) -> Iterator[Dict[str, Any]]:
    """Every JSON object in ``text``: one per line, or the whole text as one object or array."""
    stripped = text.strip()
    if stripped[:1] in ("{", "[") and "\n" in stripped:
        try:
            whole = json.loads(stripped)
        except ValueError:
            whole = None
        if whole is not None:
            yield from (item for item in (whole if isinstance(whole, list) else [whole]) if isinstance(item, dict))
            return
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith(("{", "[")):
            continue
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            yield value
        elif isinstance(value, list):
            yield from (item for item in value if isinstance(item, dict))


def count(value: Any) -> int:
    """A token count as logged: a positive int, else 0 (a bool, a float, a string, a negative number)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def scan_number(text: str) -> Optional[int]:
    """The bash parser's scan: skip to the first digit, keep digits, skip commas and spaces
    between them, stop at anything else (``"117,339 prompt+output"`` gives 117339)."""
    match = re.search(r"\d[\d, ]*", text)
    if not match:
        return None
    return int(re.sub(r"[, ]", "", match.group(0)))


# -- usage limits --------------------------------------------------------------

_APOSTROPHE = "['\u2019]"
_PATTERNS = [
    # codex, plan limit: "You’ve hit your usage limit. ... try again at 3:50 PM." or "... Try again later."
    ("usage", re.compile(rf"You{_APOSTROPHE}ve hit your usage limit\.(?:.*?try again at (?P<reset>.+?)\.\s*$)?")),
    # claude, plan limit: "You've hit your session limit · resets 3:50pm (UTC)" (2.1.197), "... your
    # 5-hour limit · ..." (2.1.332), weekly, Opus, ...
    ("usage", re.compile(rf"You{_APOSTROPHE}ve hit your [\w\- ]*?limit(?:\s*·\s*resets (?P<reset>.+))?")),
    # codex, API account out of credit
    ("usage", re.compile(r"Quota exceeded\. Check your plan and billing details\.")),
    # claude before 2.x: "Claude AI usage limit reached|1750000000"
    ("usage", re.compile(r"Claude AI usage limit reached\|(?P<epoch>\d{9,11})")),
    # claude with an API key: "API Error: Request rejected (429) · <message>"
    ("rate", re.compile(r"API Error: (?:Request rejected \(429\)|429\b)")),
    # codex: "exceeded retry limit, last status: 429 Too Many Requests"
    ("rate", re.compile(r"exceeded retry limit, last status: 429\b")),
]
_TAIL_LINES = 10  # plain-text lines looked at: a limit ends the run, so it is at the end


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _classify(message: str) -> Optional[UsageLimit]:
    message = message.strip()
    for kind, pattern in _PATTERNS:
        match = pattern.search(message)
        if match:
            groups = match.groupdict()
            reset = _iso(int(groups["epoch"])) if groups.get("epoch") else groups.get("reset")
            return UsageLimit(kind, message, reset.strip() if reset else None)
    return None


def find_usage_limit(text: str) -> Optional[UsageLimit]:
    """The rate or usage limit a run ended on, or None.

    Structured events count wherever they are: claude's ``rate_limit_event``
    with status ``rejected`` (its ``resetsAt`` is an epoch), its synthetic
    ``assistant`` message marked ``error: rate_limit`` and a ``result`` with
    ``api_error_status`` 429; codex's ``error`` and ``turn.failed`` events. A
    later successful ``result`` or ``turn.completed`` clears them (the CLI got
    through). Plain-text lines count only among the last few, and not before
    codex's closing ``tokens used``, so a worker that merely printed such a
    sentence is not mistaken for one that hit the limit. Claude's plain ``-p``
    output is only the final message, which a worker could word like a limit:
    read it together with the exit code (1 on a limit).
    """
    found: Optional[UsageLimit] = None
    reset_epoch: Optional[str] = None
    plain: List[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        event = None
        if stripped.startswith("{"):
            try:
                event = json.loads(stripped)
            except ValueError:
                event = None
        if not isinstance(event, dict):
            if stripped:
                plain.append(stripped)
            continue
        kind = event.get("type")
        if kind in ("result", "turn.completed") and not event.get("is_error"):
            found, reset_epoch = None, None
        elif kind == "rate_limit_event":
            info = event.get("rate_limit_info") or {}
            if isinstance(info, dict) and info.get("status") == "rejected":
                resets = info.get("resetsAt")
                reset_epoch = _iso(resets) if isinstance(resets, (int, float)) else None
                found = UsageLimit("usage", f"{info.get('rateLimitType') or 'usage'} limit reached", reset_epoch)
        else:
            message = _event_message(event)
            limit = _classify(message) if message else None
            if limit is not None:
                found = limit
            elif kind == "result" and event.get("api_error_status") == 429 \
                    and (found is None or found.kind != "usage"):  # a plan limit already seen is what it was
                found = UsageLimit("rate", str(event.get("result") or "API error 429"))
    for line in plain[-_TAIL_LINES:]:
        if line == "tokens used":  # codex's plain mode closes a finished run with its count
            found, reset_epoch = None, None
            continue
        limit = _classify(line[len("ERROR:"):] if line.startswith("ERROR:") else line)
        if limit is not None:
            found = limit
    if found is not None and reset_epoch and found.kind == "usage":
        found.resets_at = reset_epoch
    return found


def _event_message(event: Dict[str, Any]) -> str:
    """The error text of an event that can carry one."""
    kind = event.get("type")
    if kind == "error":
        return str(event.get("message") or "")
    if kind == "turn.failed" and isinstance(event.get("error"), dict):
        return str(event["error"].get("message") or "")
    if kind == "result" and event.get("is_error"):
        return str(event.get("result") or "")
    if kind == "assistant" and event.get("error") and isinstance(event.get("message"), dict):
        parts = event["message"].get("content") or []
        return " ".join(str(p.get("text") or "") for p in parts if isinstance(p, dict))
    return ""


def detect_usage_limit(text: str) -> Optional[str]:
    """None if the run did not end on a rate or usage limit; else its reset time, or ``""``
    when the log gives none. Test the answer with ``is not None``; see :func:`find_usage_limit`."""
    limit = find_usage_limit(text)
    if limit is None:
        return None
    return limit.resets_at or ""


_CLOCK_RE = re.compile(r"(\d{1,2})(?::(\d\d))?\s*([ap])\.?m\.?$", re.IGNORECASE)


def reset_epoch(resets_at: Optional[str], now: float) -> Optional[float]:
    """When a :attr:`UsageLimit.resets_at` falls, as epoch seconds; None when it cannot be read.

    Reads ``2030-03-17T17:46:40Z``; claude's ``3:50pm (UTC)`` and
    ``Mar 17, 2030, 5:46pm (Europe/London)``; codex's ``Mar 17th, 2030 5:46 PM``
    and ``3:50 PM`` (codex prints local time). A time of day alone is its next
    occurrence after ``now``, where the minute ``now`` falls in still counts
    as now: "try again at 6:17 PM" printed at 6:17:30 PM is 6:17 PM today, not
    tomorrow (``now`` should be when the CLI printed it).
    """
    if not resets_at:
        return None
    text = resets_at.strip()
    try:
        return float(calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")))
    except ValueError:
        pass
    zone: Optional[tzinfo] = None
    named = re.search(r"\(([^()]+)\)\s*$", text)
    if named:
        text = text[:named.start()].strip()
        name = named.group(1).strip()
        if name.upper() in ("UTC", "GMT", "Z"):
            zone = timezone.utc
        else:
            try:
                from zoneinfo import ZoneInfo

                zone = ZoneInfo(name)
            except Exception:  # unknown zone, or no tz database: the configured back-off applies
                return None
    text = re.sub(r"(\d)(?:st|nd|rd|th)\b", r"\1", text).replace(",", " ")
    text = re.sub(r"\s+", " ", text).strip()
    clock = _CLOCK_RE.search(text)
    if clock is None:
        return None
    hour = int(clock.group(1)) % 12 + (12 if clock.group(3).lower() == "p" else 0)
    minute = int(clock.group(2) or 0)
    day_text = text[:clock.start()].strip()
    base = datetime.fromtimestamp(now, zone) if zone else datetime.fromtimestamp(now)
    if day_text:
        day = None
        for fmt in ("%b %d %Y", "%B %d %Y"):
            try:
                day = datetime.strptime(day_text, fmt)
                break
            except ValueError:
                continue
        if day is None:
            return None
        when = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
        return when.timestamp()
    when = base.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if when.timestamp() + 60 <= now:  # earlier today, not this very minute: tomorrow
        when = when + timedelta(days=1)
    return when.timestamp()

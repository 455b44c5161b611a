"""What an agent's log says it is doing: its last line, in words, and the tokens so far.

Structured logs (claude ``stream-json``, codex ``--json``) are turned into a
short phrase (``Write hello.txt``, ``$ pytest -q``, ``says: done``); plain
lines are shown as they are, cleaned of terminal escapes. Secrets are masked
(:func:`autometta.secrets.redact`), although the runner masks them as it
writes the log: an agent may write into its log file itself. Token counts come
from the family's own usage parser, so the ticker and the accounting agree.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from .. import files
from ..errors import UserError
from ..families import transcript
from ..secrets import redact
from .screen import clean

#: Bytes read from a log's end for its last activity.
TAIL_BYTES = 64 * 1024
#: Bytes read from a log's end for its recent activity (``autometta top``).
RECENT_BYTES = 256 * 1024
#: Bytes read for a live token count (a log larger than this counts its tail only).
USAGE_BYTES = 16 * 1024 * 1024

_cache: Dict[str, Tuple[Tuple[int, float], Any]] = {}


def _stat_key(path: Path) -> Optional[Tuple[int, float]]:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime


def _tail(path: Path, limit: int) -> str:
    try:
        with files.open_regular(path) as handle:  # an agent's log: never a FIFO that blocks
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - limit))
            data = handle.read(limit)
    except OSError:
        return ""
    return data.decode("utf-8", errors="replace")


def _short(value: Any, limit: int = 120) -> str:
    text = clean(redact(str(value))).strip()  # masked before it is cut: a cut key has no shape left
    return text if len(text) <= limit else text[: limit - 1] + "~"


def describe_event(event: Dict[str, Any]) -> Optional[str]:
    """A phrase for one claude or codex JSON event; None for events not worth showing.

    Tool calls and messages are read by :mod:`autometta.families.transcript`, as ``autometta show``
    reads them; this only words the last one of the event.
    """
    kind = event.get("type")
    if kind == "system":
        model = event.get("model")
        return f"started{f' ({model})' if model else ''}"
    if kind == "assistant":
        steps = transcript.claude_steps(event)
        return transcript.phrase(steps[-1], short=True) if steps else None
    if kind == "user":
        return "tool result"
    if kind == "result":
        if event.get("is_error"):
            return f"finished with an error: {event.get('result') or event.get('subtype') or ''}".strip()
        return f"finished: {event.get('result') or event.get('subtype') or ''}".strip()
    if kind in ("item.started", "item.completed", "item.updated", "error", "turn.failed"):
        steps = transcript.codex_steps(event)
        if not steps:
            return None
        return transcript.phrase(steps[-1], short=True) or steps[-1].name or "working"
    if kind == "thread.started":
        return "started"
    if kind == "turn.completed":
        return "turn completed"
    if kind in ("turn.started",):
        return None
    return str(kind) if kind else None


def last_activity(path: Optional[Path]) -> str:
    """The last thing the log says, as one short line; empty when there is nothing."""
    if path is None:
        return ""
    text = _tail(path, TAIL_BYTES)
    for line in reversed(text.splitlines()):
        line = line.strip()
        if not line:
            continue
        if line.startswith("{"):
            try:
                event = files.parse_json(line, "log")  # nesting bounded, as for every file autometta reads
            except UserError:
                event = None
            if isinstance(event, dict):
                phrase = describe_event(event)
                if phrase:
                    return _short(phrase)
                continue
        return _short(line)
    return ""


def recent(path: Optional[Path], limit: int = 200) -> List[str]:
    """The last ``limit`` things the log says, oldest first, each worded as :func:`last_activity` words
    the last one (``autometta top`` lists them); a line repeated at once is shown once."""
    if path is None or limit <= 0:
        return []
    key = _stat_key(path)
    lines = _tail(path, RECENT_BYTES).splitlines()
    if key is not None and key[0] > RECENT_BYTES and lines:
        lines = lines[1:]  # the first line was cut by the tail
    out: List[str] = []
    for line in lines:
        line = line.strip()
        if not line:
            continue
        phrase: Optional[str] = line
        if line.startswith("{"):
            try:
                event = files.parse_json(line, "log")  # nesting bounded, as last_activity reads it
            except UserError:
                event = None
            if isinstance(event, dict):
                phrase = describe_event(event)
        if phrase:
            shown = _short(phrase, 400)
            if not out or out[-1] != shown:
                out.append(shown)
    return out[-limit:]


def live_usage(path: Optional[Path], family: str) -> Optional[Any]:
    """The family's usage count for the log so far (a :class:`Usage`), cached per size and mtime."""
    if path is None:
        return None
    key = _stat_key(path)
    if key is None:
        return None
    name = f"{family}\0{path}"
    cached = _cache.get(name)
    if cached is not None and cached[0] == key:
        return cached[1]
    from .. import families

    fam = families.FAMILIES.get(family)
    usage = None
    if fam is not None:
        try:
            usage = fam.parse_usage(_tail(path, USAGE_BYTES))
        except Exception:  # a parser must not take the ticker down
            usage = None
    _cache[name] = (key, usage)
    return usage

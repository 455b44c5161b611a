"""Masking secrets in what autometta writes and shows: the run's resolved values, and key shapes.

One rule everywhere (agent logs as the runner writes them, the tick log,
stall markers, events, every view): a resolved secret's value, and anything
shaped like an API key or token (:data:`SHAPES`), becomes ``****`` and its
last four characters (:func:`mask`). A value also counts in its JSON-escaped
form, so a key inside claude's ``stream-json`` or codex's ``--json`` lines is
masked and the line stays valid JSON (masks hold no character JSON escapes).

:class:`Redactor` does the matching, on text or bytes; :class:`LineStream`
applies it to a stream that arrives in arbitrary pieces (an agent's output):
whole lines as they complete, and the safe part of an unfinished line, never
a piece of a secret that the next read would complete.

Standard library only and cheap to import: the runner loads it.
"""

from __future__ import annotations

import json
import os
import re

TYPE_CHECKING = False  # not typing's: an idle tick and status import no typing (tests/test_startup.py)
if TYPE_CHECKING:
    from typing import Any, Iterable, List, Optional, Pattern, Tuple

#: Values shorter than this are never masked (they would shred ordinary text).
MIN_LENGTH = 4

#: (rule, pattern) for secret shapes, as :data:`SHAPES` has them compiled: the one list the secret
#: scan (:mod:`autometta.scan`) and every mask use. A match is masked whole, or only its group ``s``
#: when it has one (the value of a ``name = value`` shape). A whole-match shape is made of
#: :data:`_KEY_CHARS` only, and a named one starts with one of :data:`_NAMES`;
#: :meth:`Redactor.safe_end` relies on both.
_SHAPE_SOURCES = (
    ("anthropic_key", r"sk-ant-[A-Za-z0-9_-]{20,}"),
    ("openai_key", r"\bsk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{20,}|\bsk-[A-Za-z0-9]{32,}\b"),
    ("aws_access_key", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    ("aws_secret_key", r"(?:aws_secret_access_key|AWS_SECRET_ACCESS_KEY)[\"']?[ \t]*[:=][ \t]*[\"']?"
                       r"(?P<s>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"),
    ("github_token", r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})"),
    ("slack_token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    ("google_api_key", r"\bAIza[0-9A-Za-z_-]{35}\b"),
    ("stripe_key", r"\b[rs]k_live_[A-Za-z0-9]{20,}"),
    ("jwt", r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
)
#: compiled on first use (text with no trigger below is never searched: an idle tick's log lines)
_SHAPES: Optional[List[Tuple[str, Pattern[str]]]] = None
_SHAPES_B: Optional[List[Tuple[str, Pattern[bytes]]]] = None
#: Names a ``name = value`` shape starts with (see :meth:`Redactor.safe_end`).
_NAMES = (b"aws_secret_access_key", b"AWS_SECRET_ACCESS_KEY")


def shapes() -> List[Tuple[str, Pattern[str]]]:
    """:data:`SHAPES`: (rule, compiled pattern) for each secret shape."""
    global _SHAPES
    if _SHAPES is None:
        _SHAPES = [(rule, re.compile(source)) for rule, source in _SHAPE_SOURCES]
    return _SHAPES


def _shapes_b() -> List[Tuple[str, Pattern[bytes]]]:
    global _SHAPES_B
    if _SHAPES_B is None:
        _SHAPES_B = [(rule, re.compile(source.encode("ascii"))) for rule, source in _SHAPE_SOURCES]
    return _SHAPES_B


def __getattr__(name: str) -> Any:
    if name == "SHAPES":  # the module's constant, compiled when first asked for
        return shapes()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: Every match of a shape holds one of these: text without any is not searched (the patterns are slow).
_TRIGGERS = ("sk-", "AKIA", "ASIA", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "xox", "AIza",
             "k_live_", "eyJ") + tuple(n.decode("ascii") for n in _NAMES)
_TRIGGERS_B = tuple(t.encode("ascii") for t in _TRIGGERS)
#: How far before a cut a ``name = value`` shape may start and its value still be unfinished.
_NAMED_SPAN = 128


def _may_hold_shape(data) -> bool:
    triggers = _TRIGGERS_B if isinstance(data, bytes) else _TRIGGERS
    return any(t in data for t in triggers)
_KEY_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.")
#: Longest run of key characters held back from an unfinished line (a longer run is no key).
_LONGEST_KEY = 1024

RESOLVED = "resolved_secret"


def mask(value: str) -> str:
    """``****`` and the last four characters (only ``****`` for a value of 8 characters or fewer).

    Never longer than the value it replaces (for values of :data:`MIN_LENGTH`
    or more), which lets :func:`scrub_fd` rewrite a file in place.
    """
    return "****" + value[-4:] if len(value) > 8 else "****"


def _masked(match: "re.Match[str]") -> str:
    """A shape's match with its secret masked: the whole match, or its value (group ``s``)."""
    if "s" not in match.re.groupindex:
        return mask(match.group(0))
    whole, begin, end = match.group(0), match.start("s") - match.start(), match.end("s") - match.start()
    return whole[:begin] + mask(match.group("s")) + whole[end:]


def _masked_b(match: "re.Match[bytes]") -> bytes:
    if "s" not in match.re.groupindex:
        return mask(match.group(0).decode("ascii")).encode("ascii")
    whole, begin, end = match.group(0), match.start("s") - match.start(), match.end("s") - match.start()
    return whole[:begin] + mask(match.group("s").decode("ascii")).encode("ascii") + whole[end:]


def _forms(value: str) -> List[str]:
    """The value, and its JSON-escaped form when that differs."""
    out = [value]
    escaped = json.dumps(value)[1:-1]
    if escaped != value:
        out.append(escaped)
    return out


class Redactor:
    """Masks ``values`` (resolved secrets) and every :data:`SHAPES` match, in text or bytes."""

    def __init__(self, values: Iterable[str] = (), shapes: bool = True) -> None:
        pairs = {}
        for value in values:
            if isinstance(value, str) and len(value) >= MIN_LENGTH:
                for form in _forms(value):
                    pairs[form] = mask(value)
        self._text = sorted(pairs.items(), key=lambda kv: len(kv[0]), reverse=True)
        self._bytes = [(k.encode("utf-8", "surrogateescape"), v.encode("ascii")) for k, v in self._text]
        self.shapes = shapes
        #: bytes an occurrence of a value may still need beyond a cut
        self.keep = max((len(k) for k, _ in self._bytes), default=1) - 1

    @property
    def values(self) -> List[str]:
        return [k for k, _ in self._text]

    def text(self, text: str) -> str:
        return self._mask(text, self._text, shapes, _masked)

    def bytes(self, data: bytes) -> bytes:
        return self._mask(data, self._bytes, _shapes_b, _masked_b)

    def _mask(self, data: Any, values: Any, patterns: Any, masked: Any) -> Any:
        """``data`` (str or bytes) with each known value replaced by its shown form, then each secret's shape."""
        if not data:
            return data
        for value, shown in values:
            if value in data:
                data = data.replace(value, shown)
        if self.shapes and _may_hold_shape(data):
            for _rule, pattern in patterns():
                data = pattern.sub(masked, data)
        return data

    def find(self, data: bytes, encodings: Tuple[str, ...] = ("utf-8",)) -> Optional[str]:
        """The first rule ``data`` breaks (:data:`RESOLVED` for a value), or None."""
        for value, _shown in self._text:
            for encoding in encodings:
                if value.encode(encoding, "surrogateescape" if encoding == "utf-8" else "strict") in data:
                    return RESOLVED
        if self.shapes and _may_hold_shape(data):
            for rule, pattern in _shapes_b():
                if pattern.search(data):
                    return rule
        return None

    def safe_end(self, data: bytes) -> int:
        """How much of ``data`` (an unfinished line) can be masked and written now.

        Never a prefix of a secret the next bytes could complete: a value
        needs ``keep`` bytes at most beyond any cut, and a key shape is a run
        of key characters, so the cut moves back to where the run holding it
        starts (a run longer than any key is cut anyway); a ``name = value``
        shape whose name is shortly before the cut waits whole.
        """
        end = max(0, len(data) - self.keep)
        if not self.shapes:
            return end
        start = end
        while start > 0 and data[start - 1] in _KEY_CHARS and end - start < _LONGEST_KEY:
            start -= 1
        if end - start >= _LONGEST_KEY:
            start = end
        low = max(0, end - _NAMED_SPAN)
        named = [at for at in (data.rfind(name, low, end) for name in _NAMES) if at >= 0]
        return min([start] + named)


class LineStream:
    """An agent's output, masked: :meth:`feed` returns whole lines, :meth:`partial` the safe part of the rest."""

    def __init__(self, redactor: Redactor, hold: int = 64 * 1024) -> None:
        self.redactor = redactor
        self.hold = hold
        self.buf = b""

    @property
    def pending(self) -> bool:
        return bool(self.buf)

    def feed(self, data: bytes) -> bytes:
        self.buf += data
        cut = self.buf.rfind(b"\n") + 1
        out = b""
        if cut:
            out, self.buf = self.redactor.bytes(self.buf[:cut]), self.buf[cut:]
        if len(self.buf) > self.hold:
            out += self.partial()
        return out

    def partial(self) -> bytes:
        """The unfinished line's safe part (see :meth:`Redactor.safe_end`), masked; the rest stays."""
        cut = self.redactor.safe_end(self.buf)
        if cut <= 0:
            return b""
        out, self.buf = self.redactor.bytes(self.buf[:cut]), self.buf[cut:]
        return out

    def close(self) -> bytes:
        out, self.buf = self.redactor.bytes(self.buf), b""
        return out


def deep(doc: Any, redact) -> Any:
    """``doc`` (JSON-like) with ``redact`` applied to every string in it, keys included."""
    if isinstance(doc, str):
        return redact(doc)
    if isinstance(doc, dict):
        return {deep(k, redact) if isinstance(k, str) else k: deep(v, redact) for k, v in doc.items()}
    if isinstance(doc, (list, tuple)):
        return [deep(v, redact) for v in doc]
    return doc


# ----------------------------------------------------------- files in place

_CHUNK = 1024 * 1024


def fd_has_secret(fd: int, redactor: Redactor) -> bool:
    """True when the file open on ``fd`` holds something ``redactor`` would mask."""
    overlap = max(redactor.keep, _LONGEST_KEY)
    offset, tail = 0, b""
    while True:
        data = os.pread(fd, _CHUNK, offset)
        if not data:
            return False
        offset += len(data)
        window = tail + data
        if redactor.find(window) is not None:
            return True
        tail = window[-overlap:]


def scrub_fd(fd: int, redactor: Redactor) -> bool:
    """Mask the file open (read-write, not append) on ``fd`` in place; True if anything changed.

    Masks are never longer than what they replace, so the write position
    never passes the read position.
    """
    if not fd_has_secret(fd, redactor):
        return False
    stream = LineStream(redactor, hold=_CHUNK)
    read_at = write_at = 0
    while True:
        data = os.pread(fd, _CHUNK, read_at)
        if not data:
            break
        read_at += len(data)
        out = stream.feed(data)
        if out:
            os.pwrite(fd, out, write_at)
            write_at += len(out)
    out = stream.close()
    if out:
        os.pwrite(fd, out, write_at)
        write_at += len(out)
    os.ftruncate(fd, write_at)
    return True


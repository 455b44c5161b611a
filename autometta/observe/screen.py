"""Plain-ANSI drawing for the tickers: fit a pane, redraw in place, stop cleanly on Ctrl-C.

A view is a function ``render(width) -> lines``, each line a ``(text, style)``
pair with style ``""``, ``"bold"``, ``"red"``, ``"yellow"`` or ``"dim"``.
:func:`run` draws it: on a terminal it redraws in place (cursor home, each
line cleared to its end, the rest of the screen cleared), otherwise it
prints plain frames one after another, without escapes. Lines are cut to the
pane's width, so nothing wraps. Text from agents' logs goes through
:func:`clean` first, so a log cannot send escapes to the terminal.
"""

from __future__ import annotations

import math
import re
import sys
import time

from .. import timeutil
from ..errors import UserError

TYPE_CHECKING = False  # not typing's: an idle tick and status import no typing (tests/test_startup.py)
if TYPE_CHECKING:
    from typing import Callable, List, Optional, TextIO, Tuple

    Line = Tuple[str, str]

_STYLES = {"bold": "\x1b[1m", "red": "\x1b[31m", "yellow": "\x1b[33m", "dim": "\x1b[2m", "green": "\x1b[32m"}
_RESET = "\x1b[0m"
_ESCAPES = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean(text: str) -> str:
    """``text`` without terminal escapes or control characters, tabs as spaces, one line."""
    text = _ESCAPES.sub("", text).replace("\t", " ").replace("\r", " ").replace("\n", " ")
    return _CONTROLS.sub("", text)


def fit(text: str, width: int) -> str:
    """``text`` cut to ``width`` columns (a ``~`` marks the cut)."""
    if width <= 0:
        return ""
    return text if len(text) <= width else text[: max(0, width - 1)] + "~"


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def age(seconds: Optional[float]) -> str:
    """``42s``, ``5m``, ``3h07m``, ``2d``; ``-`` when unknown (or not a number)."""
    return timeutil.age(seconds, hour_minutes=True) if _finite(seconds) else "-"


def compact(n: Optional[float]) -> str:
    """``950``, ``12.3k``, ``4.1M``; ``-`` when unknown (or not a number)."""
    if not _finite(n):
        return "-"
    for unit, size in (("M", 1_000_000), ("k", 1_000)):
        if abs(n) >= size:
            return f"{n / size:.1f}{unit}".replace(".0" + unit, unit)
    return str(int(n))


def width_of(stream: TextIO) -> Tuple[int, int]:
    """The pane's (columns, rows); 80 x 24 when it is not a terminal (or ``$COLUMNS``)."""
    import shutil  # here: status only compacts numbers with this module

    size = shutil.get_terminal_size((80, 24))
    return max(20, size.columns), max(5, size.lines)


def styled(lines: List[Line], width: int, color: bool) -> List[str]:
    out = []
    for text, style in lines:
        text = fit(clean(text), width)  # nothing from a file reaches the terminal as an escape
        out.append(f"{_STYLES[style]}{text}{_RESET}" if color and style in _STYLES and text else text)
    return out


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class _Stop(Exception):
    pass


def _on_signal(_signum, _frame):  # pragma: no cover - exercised through tmux kill-server
    raise _Stop()


def run(render: Callable[[int], List[Line]], interval: float, *, once: bool = False,
        stream: Optional[TextIO] = None, color: Optional[bool] = None) -> int:
    """Draw ``render`` every ``interval`` seconds until Ctrl-C (or once); returns the exit code 0."""
    import os
    import signal

    out = stream or sys.stdout
    tty = _is_tty(out)
    if color is None:
        color = tty and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"
    in_place = tty and not once
    previous = {}
    if not once:
        for name in ("SIGTERM", "SIGHUP"):
            sig = getattr(signal, name, None)
            if sig is not None:
                try:
                    previous[sig] = signal.signal(sig, _on_signal)
                except (ValueError, OSError):  # not the main thread
                    pass
    try:
        if in_place:
            out.write("\x1b[?25l\x1b[2J")
        while True:
            columns, rows = width_of(out)
            try:
                frame = render(columns)
            except UserError as exc:  # e.g. a file being rewritten: say so, try again next time
                if once:
                    raise
                frame = [(f"error: {exc.message}", "red"), (f"(retrying every {interval:g}s; Ctrl-C stops)", "dim")]
            lines = styled(frame, columns, color)
            if in_place:
                shown = lines[: rows - 1]
                out.write("\x1b[H" + "".join(line + "\x1b[K\n" for line in shown) + "\x1b[J")
            else:
                out.write("\n".join(lines) + "\n")
            out.flush()
            if once:
                return 0
            time.sleep(interval)
            if not in_place:
                out.write("\n")
    except (KeyboardInterrupt, _Stop):
        return 0
    except BrokenPipeError:
        return 0
    finally:
        if in_place:
            try:
                out.write("\x1b[?25h\n")
                out.flush()
            except (OSError, ValueError):
                pass
        for sig, handler in previous.items():
            signal.signal(sig, handler)

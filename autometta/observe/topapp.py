"""The curses shell of ``autometta top``: read, render, draw, wait for a key; run what a key asks.

The screen is :func:`autometta.observe.topscreen.render`'s (pure); the data
is :class:`autometta.observe.topdata.Source`'s (file reads). This module only
draws, maps keys and runs the confirmed :class:`~.topscreen.Action`:

* :func:`run_action` runs the command in this process through
  :func:`autometta.cli.main`, the same function ``autometta <command>``
  runs, with its output caught (descriptors 1 and 2 too, so nothing a child
  prints lands on the screen); its one-line result is shown in the footer.
  The command takes the repo's lock as it always does, for as long as it
  always does; top itself never takes it.
* ``a`` (attach) hands the terminal to the command in a forked child and
  takes it back when the tmux client ends.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import signal
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional, Tuple

from ..errors import UserError
from . import topscreen as ts
from .topdata import Source

#: Seconds between two reads of the files.
REFRESH_SECONDS = 1.0
_STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z ")
_TAG = re.compile(r"^\[(/[^\]]*)\] ")  # the tick log's repo tag: its name is enough in one line

WATCH_HINT = "'autometta status --watch' works on any terminal, or none"


def check_terminal(env: Optional[Dict[str, str]] = None, stdin: Any = None, stdout: Any = None) -> None:
    """Raise a one-line :class:`UserError` naming ``status --watch`` unless this is a terminal top can draw on."""
    environ = os.environ if env is None else env
    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
    try:
        tty = stdin.isatty() and stdout.isatty()
    except (AttributeError, ValueError):
        tty = False
    if not tty:
        raise UserError(f"needs a terminal (stdin and stdout are not one); {WATCH_HINT}")
    term = environ.get("TERM", "")
    if not term or term == "dumb":
        raise UserError(f"cannot draw on TERM={term or '(unset)'}; {WATCH_HINT}")
    try:
        size = os.get_terminal_size(stdout.fileno())
    except (OSError, ValueError, AttributeError):
        raise UserError(f"cannot tell the terminal's size; {WATCH_HINT}") from None
    if size.columns < ts.MIN_WIDTH or size.lines < ts.MIN_HEIGHT:
        raise UserError(ts.too_small(size.columns, size.lines))


# --------------------------------------------------------------------------- running a command


@contextlib.contextmanager
def _caught():
    """Everything written to stdout and stderr (Python's and the descriptors'), as one text at the end."""
    spill = tempfile.TemporaryFile()
    text = io.StringIO()
    saved = []
    for fd in (1, 2):
        try:
            saved.append((fd, os.dup(fd)))
            os.dup2(spill.fileno(), fd)
        except OSError:
            pass
    out: List[str] = []
    try:
        with contextlib.redirect_stdout(text), contextlib.redirect_stderr(text):
            yield out
    finally:
        for fd, copy in saved:
            os.dup2(copy, fd)
            os.close(copy)
        spill.seek(0)
        out.append(text.getvalue() + spill.read().decode("utf-8", errors="replace"))
        spill.close()


def one_line(text: str, code: int) -> str:
    """The command's result in one line: its last line (without the tick log's time stamp)."""
    lines = [_TAG.sub(lambda m: f"[{os.path.basename(m.group(1))}] ", _STAMP.sub("", line)).strip()
             for line in text.splitlines() if line.strip()]
    if not lines:
        return "done (exit 0, nothing printed)" if code == 0 else f"failed (exit {code}, nothing printed)"
    last = lines[-1]
    more = f"  (+{len(lines) - 1} more line{'s' if len(lines) > 2 else ''})" if len(lines) > 1 else ""
    return last + more + ("" if code == 0 else f"  (exit {code})")


def run_action(action: ts.Action) -> Tuple[int, str]:
    """Run ``autometta <action.argv>`` here, through the command's own function; (exit code, result line)."""
    from .. import cli
    from ..secrets import redact

    with _caught() as caught:
        try:
            code = cli.main(list(action.argv))
        except SystemExit as exc:  # argparse
            code = exc.code if isinstance(exc.code, int) else 1
        except Exception as exc:  # noqa: BLE001 - a command's bug is its line, not top's end
            print(f"autometta {action.argv[0]}: {type(exc).__name__}: {exc}", file=sys.stderr)
            code = 1
    return code, redact(one_line(caught[0], code))


def attach(action: ts.Action) -> Tuple[int, str]:
    """Run ``autometta attach`` in a child that has the terminal (tmux attaches there); wait for it."""
    from .. import cli

    errors = tempfile.TemporaryFile()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child; its exit code is what the parent reads
        code = 1
        try:
            os.dup2(errors.fileno(), 2)
            code = cli.main(list(action.argv))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:  # noqa: BLE001
            code = 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status >> 8
    errors.seek(0)
    said = errors.read().decode("utf-8", errors="replace")
    errors.close()
    if code == 0 and not said.strip():
        return 0, f"back from the tmux viewer of {action.argv[-1]}"
    return code, one_line(said, code)


# --------------------------------------------------------------------------- drawing


class _Stop(BaseException):
    """SIGTERM or SIGHUP: leave at once (a BaseException, so no ``except Exception`` of a view swallows it)."""


def _on_signal(_signum, _frame):  # pragma: no cover - exercised through tmux kill-server
    raise _Stop()


_KEYS = {}


def _key_names(curses: Any) -> Dict[int, str]:
    if not _KEYS:
        _KEYS.update({curses.KEY_UP: "up", curses.KEY_DOWN: "down", curses.KEY_PPAGE: "pgup",
                      curses.KEY_NPAGE: "pgdn", curses.KEY_HOME: "home", curses.KEY_END: "end",
                      curses.KEY_ENTER: "enter", 10: "enter", 13: "enter", 9: "tab", curses.KEY_BTAB: "btab",
                      27: "esc", curses.KEY_LEFT: "left", curses.KEY_RIGHT: "right"})
    return _KEYS


class Painter:
    """Styles to curses attributes: colours when the terminal has them and NO_COLOR is not set."""

    COLOURS = ("red", "yellow", "green", "cyan")

    def __init__(self, curses: Any, colour: bool) -> None:
        self.curses = curses
        self.colour = False
        self.pairs: Dict[str, int] = {}
        if colour:
            try:
                curses.start_color()
                try:
                    curses.use_default_colors()
                    background = -1
                except curses.error:
                    background = curses.COLOR_BLACK
                for n, name in enumerate(self.COLOURS, start=1):
                    curses.init_pair(n, getattr(curses, f"COLOR_{name.upper()}"), background)
                    self.pairs[name] = curses.color_pair(n)
                self.colour = True
            except curses.error:
                self.pairs = {}
        self._cache: Dict[str, int] = {}

    def attr(self, style: str) -> int:
        found = self._cache.get(style)
        if found is not None:
            return found
        c = self.curses
        value = c.A_NORMAL
        for word in style.split():
            if word == "bold":
                value |= c.A_BOLD
            elif word == "dim":
                value |= c.A_DIM
            elif word == "reverse":
                value |= c.A_REVERSE
            elif word in self.pairs:
                value |= self.pairs[word]
            elif word == "red":  # no colour: what is red is at least bold
                value |= c.A_BOLD
        self._cache[style] = value
        return value


def draw(screen: Any, painter: Painter, frame: ts.Frame, width: int, height: int) -> None:
    curses = painter.curses
    for y, line in enumerate(frame.lines[:height]):
        try:
            screen.move(y, 0)
            screen.clrtoeol()
        except curses.error:
            continue
        room = width - 1 if y == height - 1 else width  # the last cell of the last row cannot be written
        x = 0
        for text, style in ts.fit_line(line, room):
            if not text:
                continue
            try:
                screen.addstr(y, x, text, painter.attr(style))
            except curses.error:
                pass
            x += len(text)
    screen.refresh()


# --------------------------------------------------------------------------- the loop


def terminal_gone(fd: int = 0) -> bool:
    """Has the terminal hung up (its window, ssh session or tmux pane closed)? Then getch returns at once,
    forever, and SIGHUP may not come (``nohup``, or a signal lost): top must notice by itself."""
    import select

    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        events = poller.poll(0)
    except (OSError, ValueError):
        return True
    return any(mask & (select.POLLHUP | select.POLLERR | select.POLLNVAL) for _fd, mask in events)


class App:
    def __init__(self, screen: Any, curses: Any, source: Source, ui: ts.UI, colour: bool) -> None:
        self.screen, self.curses, self.source = screen, curses, source
        self.ui = ui
        self.painter = Painter(curses, colour)
        self.view: Dict[str, Any] = {}
        self.items: List[ts.Row] = []
        self.read_at = 0.0

    def size(self) -> Tuple[int, int]:
        height, width = self.screen.getmaxyx()
        return width, height

    def read(self) -> None:
        """Read the files again; a bug on a file nobody foresaw keeps the last screen and says so (a viewer
        left open for hours must not end on it)."""
        try:
            self.view = self.source.view()
        except Exception as exc:  # noqa: BLE001
            from ..secrets import redact

            said = redact(f"cannot read the files now ({type(exc).__name__}: {exc}); showing what was read before")
            self.ui = ts.replace(self.ui, message=(said, "red"))
        self.read_at = time.monotonic()

    def paint(self) -> None:
        width, height = self.size()
        self.items = ts.rows(self.view, width)
        index = ts.resolve(self.ui, self.items)
        detail = None
        if self.items and not self.ui.help and width >= ts.MIN_WIDTH and height >= ts.MIN_HEIGHT:
            row = self.items[index]
            detail = self.source.detail(row.repo, row.stage_id, self.ui.tab)
        frame = ts.render(self.view, self.ui, detail, width, height, self.items)
        if frame.ui is not None:
            self.ui = frame.ui
        draw(self.screen, self.painter, frame, width, height)

    def key(self, code: int) -> Optional[str]:
        names = _key_names(self.curses)
        if code in names:
            return names[code]
        if 32 <= code < 127:
            return chr(code)
        return None

    def act(self, action: ts.Action) -> None:
        self.paint()  # the footer says what runs
        if action.key == "a":
            self.curses.def_prog_mode()
            self.curses.endwin()
            try:
                code, line = attach(action)
            finally:
                self.curses.reset_prog_mode()
                self.screen.clear()
        else:
            code, line = run_action(action)
        self.ui = ts.replace(self.ui, message=(f"{action.key}: {line}", "green" if code == 0 else "red"))
        self.read()

    def loop(self) -> int:
        self.read()
        self.paint()
        while True:
            wait = max(0.0, REFRESH_SECONDS - (time.monotonic() - self.read_at))
            self.screen.timeout(int(wait * 1000))
            code = self.screen.getch()
            if code == -1:
                if terminal_gone():
                    return 0
                self.read()
                self.paint()
                continue
            if code == self.curses.KEY_RESIZE:
                self.curses.update_lines_cols() if hasattr(self.curses, "update_lines_cols") else None
                self.screen.clear()
                self.paint()
                continue
            name = self.key(code)
            if name is None:
                continue
            width, height = self.size()
            list_h, detail_h = ts.split(height, self.ui.zoom)
            self.ui, effect = ts.on_key(self.ui, name, self.items, list_height=list_h, detail_height=detail_h)
            if effect == "quit":
                return 0
            if isinstance(effect, ts.Action):
                self.act(effect)
            self.paint()


def _wrapper(curses: Any, body: Any) -> int:
    """:func:`curses.wrapper` without its ``start_color()``: with NO_COLOR nothing sets a colour, not even
    white on black (the Painter starts colours only when they are wanted)."""
    screen = curses.initscr()
    try:
        curses.noecho()
        curses.cbreak()
        screen.keypad(True)
        return body(screen)
    finally:
        try:
            screen.keypad(False)
            curses.echo()
            curses.nocbreak()
        finally:
            curses.endwin()


def main(source: Source, *, read_only: bool, scope: Optional[str]) -> int:
    """Check the terminal, then run the screen until ``q`` (or Ctrl-C, SIGTERM, SIGHUP)."""
    import curses
    import locale

    check_terminal()
    try:
        locale.setlocale(locale.LC_ALL, "")
    except locale.Error:
        pass
    colour = not os.environ.get("NO_COLOR")
    previous = {}
    for name in ("SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None and signal.getsignal(sig) != signal.SIG_IGN:  # nohup's SIG_IGN stays
            previous[sig] = signal.signal(sig, _on_signal)

    def inside(screen: Any) -> int:
        try:
            curses.curs_set(0)
        except curses.error:
            pass
        if hasattr(curses, "set_escdelay"):
            curses.set_escdelay(25)
        screen.keypad(True)
        app = App(screen, curses, source, ts.UI(read_only=read_only, scope=scope),
                  colour and curses.has_colors())
        return app.loop()

    try:
        return _wrapper(curses, inside)
    except curses.error as exc:
        raise UserError(f"cannot draw on TERM={os.environ.get('TERM')} ({exc}); {WATCH_HINT}") from None
    except (KeyboardInterrupt, _Stop):
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

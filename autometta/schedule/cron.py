"""The tick in the user's crontab, inside a marked block autometta owns.

The crontab is read with ``crontab -l`` and written with ``crontab -``, as
bytes: every line outside the block comes back exactly as it was (a missing
final newline is the one thing added, because cron needs it). The block is
two marker comments around one line::

    # >>> autometta tick: managed by 'autometta install-cron'; ... >>>
    */5 * * * * PATH='...' '/usr/bin/python3' '/home/me/bin/autometta.pyz' tick --quiet >> '...cron.log' 2>&1
    # <<< autometta tick <<<

``PATH`` and ``PHAT_CONTROLLER_HOME`` are set on the line itself, never as
crontab environment lines, which would also change every line below them.
A line outside the block that already runs the tick (the bash version's
documented ``autometta tick >> "$HOME/.phat-controller/log/cron.log" 2>&1``,
or any ``autometta tick`` / ``autometta.pyz tick``) is never touched unless
``--replace-existing`` says so.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from typing import Callable, List, NamedTuple, Optional, Sequence, Tuple

from ..errors import UsageError, UserError
from .invocation import (TICK_ARGS, Invocation, carried_env, check_line_safe, first_line, require_home,
                         schedule_path)
from .scheduled import Scheduled, refuse_if_scheduled

BEGIN_PREFIX = "# >>> autometta tick"
END_PREFIX = "# <<< autometta tick"
BEGIN = ("# >>> autometta tick: managed by 'autometta install-cron'; "
         "remove with 'autometta uninstall-cron' >>>")
END = "# <<< autometta tick <<<"

DEFAULT_MINUTES = 5
#: intervals cron repeats evenly (``*/7`` would also fire at :00, 4 minutes after :56)
EVEN_MINUTES = (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30)
EVEN_HOURS = (1, 2, 3, 4, 6, 8, 12, 24)

#: a command line that runs the tick, however autometta is called
TICK_RE = re.compile(
    r"""(?:^|[\s/'"])autometta(?:\.pyz)?['"]?(?:\s+--?[\w-]+)*\s+tick(?=$|[\s;&|>)])"""
    r"""|-m\s+autometta(?:\s+--?[\w-]+)*\s+tick(?=$|[\s;&|>)])"""
    r"""|autometta\S*/scripts/tick\.sh"""
)
#: the bash version's documented line, which its LaunchAgent installer also removed (spec §8.5)
BASH_LINE_RE = re.compile(
    r"""^\s*\*/5\s+\*\s+\*\s+\*\s+\*\s+autometta\s+tick\s*>>\s*"?\$HOME/\.phat-controller/log/cron\.log"?"""
    r"""\s+2>&1\s*$"""
)
_ENV_LINE_RE = re.compile(r"^\s*[A-Za-z_][A-Za-z0-9_]*\s*=")

_TIMEOUT = 60.0


# --------------------------------------------------------------------------- pure: the text


def spec_for(minutes: int) -> str:
    """The five time fields for ``every <minutes> minutes``; UsageError if cron cannot do it evenly."""
    if minutes in EVEN_MINUTES:
        return "* * * * *" if minutes == 1 else f"*/{minutes} * * * *"
    if minutes > 0 and minutes % 60 == 0 and minutes // 60 in EVEN_HOURS:
        hours = minutes // 60
        if hours == 1:
            return "0 * * * *"
        if hours == 24:
            return "0 0 * * *"
        return f"0 */{hours} * * *"
    raise UsageError(
        f"--interval {minutes}: cron repeats evenly only every "
        f"{', '.join(str(m) for m in EVEN_MINUTES)} minutes or "
        f"{', '.join(str(h * 60) for h in EVEN_HOURS)} minutes (1 to 24 hours); pick one of those")


def _cron_escape(command: str) -> str:
    """cron turns an unescaped ``%`` into a newline."""
    return command.replace("%", "\\%")


def render_line(argv: Sequence[str], minutes: int, path_value: str, env: dict, log: str) -> str:
    check_line_safe(path_value, log, *argv, *env.values())
    words = [f"PATH={shlex.quote(path_value)}"]
    words += [f"{k}={shlex.quote(v)}" for k, v in sorted(env.items())]
    words += [shlex.quote(a) for a in argv]
    command = " ".join(words) + f" >> {shlex.quote(log)} 2>&1"
    return f"{spec_for(minutes)} {_cron_escape(command)}"


def render_block(line: str) -> str:
    return f"{BEGIN}\n{line}\n{END}\n"


def parse_command(line: str) -> List[str]:
    """The argv a crontab line runs (leading ``VAR=value`` words and redirections dropped)."""
    fields = line.strip().split(None, 5)
    if len(fields) < 6:
        return []
    if fields[0].startswith("@"):
        command = line.strip().split(None, 1)[1]
    else:
        command = fields[5]
    command = command.replace("\\%", "%")
    try:
        words = shlex.split(command)
    except ValueError:
        return []
    argv: List[str] = []
    for word in words:
        if not argv and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", word):
            continue
        if word.startswith((">", "2>", "<", "|", ";", "&")):
            break
        argv.append(word)
    return argv


class Table(NamedTuple):
    """A crontab split around the autometta block (``block is None``: no block)."""

    lines: List[str]  # every line, line endings kept
    start: Optional[int] = None  # index of the BEGIN marker
    end: Optional[int] = None  # index of the END marker

    @property
    def has_block(self) -> bool:
        return self.start is not None

    def block_lines(self) -> List[str]:
        if self.start is None or self.end is None:
            return []
        return self.lines[self.start + 1:self.end]

    def outside(self) -> List[Tuple[int, str]]:
        """(1-based line number, line) for every line not in the block."""
        return [(i + 1, line) for i, line in enumerate(self.lines)
                if self.start is None or not (self.start <= i <= (self.end or 0))]

    def text_without_block(self, drop: Sequence[int] = ()) -> str:
        return "".join(line for n, line in self.outside() if n not in drop)


def parse_table(text: str) -> Table:
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.rstrip("\r\n").startswith(BEGIN_PREFIX)]
    ends = [i for i, line in enumerate(lines) if line.rstrip("\r\n").startswith(END_PREFIX)]
    if not starts and not ends:
        return Table(lines)
    if len(starts) != 1 or len(ends) != 1 or ends[0] < starts[0]:
        where = ", ".join(str(i + 1) for i in sorted(starts + ends))
        raise UserError(f"crontab: the autometta markers (lines {where}) are unbalanced; fix them with "
                        f"'crontab -e' so one '{BEGIN_PREFIX}' line is followed by one '{END_PREFIX}' line")
    return Table(lines, starts[0], ends[0])


def foreign_tick_lines(table: Table) -> List[Tuple[int, str]]:
    """Lines outside the block that run the tick: (1-based number, line without its newline)."""
    found = []
    for number, line in table.outside():
        bare = line.rstrip("\r\n")
        stripped = bare.strip()
        if not stripped or stripped.startswith("#") or _ENV_LINE_RE.match(stripped):
            continue
        if TICK_RE.search(stripped):
            found.append((number, bare))
    return found


def with_block(table: Table, block: str, drop: Sequence[int] = ()) -> str:
    """The crontab with ``block`` in place of the old one (same position), or appended."""
    if table.has_block:
        assert table.start is not None and table.end is not None
        head = "".join(line for i, line in enumerate(table.lines[:table.start]) if i + 1 not in drop)
        tail = "".join(line for i, line in enumerate(table.lines[table.end + 1:], table.end + 1)
                       if i + 1 not in drop)
        if head and not head.endswith("\n"):
            head += "\n"
        return head + block + tail
    rest = table.text_without_block(drop)
    if rest and not rest.endswith("\n"):
        rest += "\n"
    return rest + block


# --------------------------------------------------------------------------- effects: crontab


def _crontab() -> str:
    exe = shutil.which("crontab")
    if not exe:
        raise UserError("crontab not found on PATH; install cron (Debian/Ubuntu: 'apt-get install cron') "
                        "or use 'autometta install-systemd'")
    return exe


def _run(argv: List[str], data: Optional[bytes] = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, input=data, stdin=None if data is not None else subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=_TIMEOUT)
    except OSError as exc:
        raise UserError(f"{argv[0]}: cannot run ({exc.strerror})") from exc
    except subprocess.TimeoutExpired:
        raise UserError(f"{' '.join(argv)}: no answer after {int(_TIMEOUT)} s") from None


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def read_crontab() -> str:
    """The current crontab exactly as ``crontab -l`` prints it; "" when there is none."""
    proc = _run([_crontab(), "-l"])
    if proc.returncode == 0:
        return _decode(proc.stdout)
    err = _decode(proc.stderr)
    if "no crontab" in err.lower():
        return ""
    raise UserError(f"crontab -l failed ({first_line(err) or f'exit {proc.returncode}'}); "
                    f"check that you may use cron (/etc/cron.allow, /etc/cron.deny)")


def write_crontab(text: str) -> None:
    from ..schedulememo import forget

    proc = _run([_crontab(), "-"], text.encode("utf-8", "surrogateescape"))
    forget()  # status's remembered schedule check cannot see a crontab change by itself
    if proc.returncode != 0:
        raise UserError(f"crontab rejected the new table ({first_line(_decode(proc.stderr + proc.stdout))}); "
                        f"your crontab is unchanged; see it with 'crontab -l'")


#: Where cron daemons keep each user's crontab (Debian, Red Hat, macOS and the BSDs).
SPOOLS = ("/var/spool/cron/crontabs", "/var/spool/cron", "/var/at/tabs", "/usr/lib/cron/tabs")


def spool_files() -> List[str]:
    """Where this user's crontab may be kept: a change there is seen without ``crontab -l`` (by whoever may
    look into the spool; on most systems only root)."""
    import getpass

    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name: nothing to watch
        return []
    return [os.path.join(folder, user) for folder in SPOOLS]


def scheduled() -> List[Scheduled]:
    """Our block and any foreign tick lines; nothing when cron is absent or unreadable."""
    if not shutil.which("crontab"):
        return []
    try:
        table = parse_table(read_crontab())
    except UserError:
        return []
    found = []
    if table.has_block:
        assert table.start is not None
        lines = [line.rstrip("\r\n") for line in table.block_lines() if line.strip()
                 and not line.lstrip().startswith("#")]
        argv = parse_command(lines[0]) if lines else []
        found.append(Scheduled("cron", f"crontab line {table.start + 2}", argv,
                               detail=lines[0] if lines else ""))
    for number, line in foreign_tick_lines(table):
        found.append(Scheduled("cron-foreign", f"crontab line {number}", parse_command(line),
                               detail=line.strip()))
    return found


# --------------------------------------------------------------------------- commands


FIX_OTHERS = {
    "systemd": "run 'autometta uninstall-systemd' first",
    "launchd": "run 'autometta uninstall-launchagent REPO' for each repo first",
}


def install(inv: Invocation, minutes: int = DEFAULT_MINUTES, *, others: Sequence[Scheduled],
            dry_run: bool = False, replace_existing: bool = False, say: Callable[[str], None] = print,
            note: Callable[[str], None] = print) -> str:
    """Put the block in the crontab (or print the new crontab); return the new text.

    ``others``: what systemd and launchd schedule now (:func:`autometta.schedule.lookup.others_than`);
    the tick is not scheduled twice.
    """
    hp = require_home()
    spec_for(minutes)  # a bad interval is a usage error before anything is read
    refuse_if_scheduled([s for s in others if s.kind in FIX_OTHERS], FIX_OTHERS)
    text = read_crontab()
    table = parse_table(text)
    foreign = foreign_tick_lines(table)
    if foreign and not replace_existing:
        number, line = foreign[0]
        raise UserError(f"crontab line {number} already runs the tick ('{line.strip()}'); remove it with "
                        f"'crontab -e', or run 'autometta install-cron --replace-existing' to replace it")
    line = render_line(inv.argv(*TICK_ARGS), minutes, schedule_path(), carried_env(), str(hp.cron_log))
    new_text = with_block(table, render_block(line), drop=[n for n, _ in foreign])
    for message in inv.notes:
        note(f"NOTE {message}")
    if dry_run:
        say(new_text.rstrip("\n"))
        return new_text
    hp.log_dir.mkdir(parents=True, exist_ok=True)
    for number, old in foreign:
        say(f"PASS cron removed line {number}: {old.strip()}")
    if new_text == text:
        say("PASS cron entry unchanged")
    else:
        write_crontab(new_text)
        if not parse_table(read_crontab()).has_block:
            raise UserError("crontab accepted the new table but 'crontab -l' does not show the "
                            "autometta block; check 'crontab -l'")
        say(f"PASS cron entry {'replaced' if table.has_block else 'installed'} (every {minutes} min)")
    say(f"PASS cron runs {' '.join(shlex.quote(a) for a in inv.argv(*TICK_ARGS))}")
    say(f"PASS cron log {hp.cron_log}")
    return new_text


def remove_crontab() -> None:
    """``crontab -r``: no table at all, rather than an empty one."""
    proc = _run([_crontab(), "-r"])
    if proc.returncode != 0 and "no crontab" not in _decode(proc.stderr).lower():
        raise UserError(f"crontab -r failed ({first_line(_decode(proc.stderr + proc.stdout))}); "
                        f"see what is left with 'crontab -l'")


def uninstall(*, dry_run: bool = False, say: Callable[[str], None] = print,
              note: Callable[[str], None] = print) -> str:
    """Remove the block; a table left with nothing in it is removed (``crontab -r``), not kept empty."""
    text = read_crontab()
    table = parse_table(text)
    new_text = table.text_without_block() if table.has_block else text
    if dry_run:
        say(new_text.rstrip("\n") if new_text.strip() else "(no crontab: it held only the autometta block)")
        return new_text
    if table.has_block and not new_text.strip():
        remove_crontab()
        say("PASS cron entry removed (the crontab held nothing else and is gone: crontab -r)")
    elif table.has_block:
        write_crontab(new_text)
        say("PASS cron entry removed")
    else:
        say("PASS no autometta cron entry (nothing to remove)")
    for number, line in foreign_tick_lines(table):
        note(f"NOTE crontab line {number} also runs the tick and was not written by install-cron; "
             f"left alone: {line.strip()}")
    return new_text


def remove_for_launchd(say: Callable[[str], None] = print) -> None:
    """What the bash LaunchAgent installer did: drop the cron tick it manages (our block, its line)."""
    if not shutil.which("crontab"):
        return
    text = read_crontab()
    table = parse_table(text)
    bash_lines = [n for n, line in table.outside() if BASH_LINE_RE.match(line.rstrip("\r\n"))]
    if not table.has_block and not bash_lines:
        return
    new_text = table.text_without_block(drop=bash_lines)
    if new_text.strip():
        write_crontab(new_text)
    else:
        remove_crontab()
    say("PASS removed the autometta-managed cron tick")

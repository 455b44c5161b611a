"""A systemd user timer on Linux: ``autometta-tick.service`` + ``autometta-tick.timer``.

Written to ``${XDG_CONFIG_HOME:-~/.config}/systemd/user/``. The service is a
``oneshot`` with ``KillMode=process``: when the tick exits, systemd stops
only the tick itself, so the agents it started detached live on (the
systemd twin of launchd's ``AbandonProcessGroup``, Appendix A H9). The
timer fires a minute after it starts (at boot, or at ``enable --now``) and
then N minutes after each run began, so any interval works, unlike cron.
Output goes to the journal: ``journalctl --user -u autometta-tick``.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from .. import files
from ..errors import UserError
from . import invocation as base
from .invocation import (TICK_ARGS, Invocation, carried_env, check_line_safe, first_line, require_home,
                         run_tool, schedule_path, user_home)
from .scheduled import Scheduled, refuse_if_scheduled

SERVICE = "autometta-tick.service"
TIMER = "autometta-tick.timer"
DEFAULT_MINUTES = 5
HEADER = "# Written by 'autometta install-systemd'; remove with 'autometta uninstall-systemd'.\n"

_SAFE = re.compile(r"[A-Za-z0-9_@+=:,./-]+")


def unit_dir(env: Optional[Dict[str, str]] = None) -> Path:
    environ = os.environ if env is None else env
    config = environ.get("XDG_CONFIG_HOME")
    base = Path(config) if config and os.path.isabs(config) else user_home(environ) / ".config"
    return base / "systemd" / "user"


def _quote(word: str, exec_line: bool) -> str:
    """One word of a unit file: ``%`` doubled (specifiers), ``$`` doubled on Exec lines, quoted if needed."""
    word = word.replace("%", "%%")
    if exec_line:
        word = word.replace("$", "$$")
    if _SAFE.fullmatch(word):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _unquote(line: str) -> List[str]:
    try:
        words = shlex.split(line)
    except ValueError:
        return []
    return [w.replace("%%", "%").replace("$$", "$") for w in words]


def render_service(argv: Sequence[str], path_value: str, env: Dict[str, str]) -> str:
    check_line_safe(path_value, *argv, *env.values())
    lines = [
        HEADER.rstrip("\n"),
        "[Unit]",
        "Description=autometta tick: move each subscribed repo one step",
        "",
        "[Service]",
        "Type=oneshot",
        "ExecStart=" + " ".join(_quote(a, True) for a in argv),
        "Environment=" + _quote(f"PATH={path_value}", False),
    ]
    lines += ["Environment=" + _quote(f"{k}={v}", False) for k, v in sorted(env.items())]
    lines += [
        "# Stop only the tick when it exits: the agents it started must outlive it.",
        "KillMode=process",
        "",
    ]
    return "\n".join(lines)


def render_timer(minutes: int) -> str:
    return "\n".join([
        HEADER.rstrip("\n"),
        "[Unit]",
        f"Description=Run the autometta tick every {minutes} min",
        "",
        "[Timer]",
        "OnActiveSec=1min",
        f"OnUnitActiveSec={minutes}min",
        "AccuracySec=10s",
        f"Unit={SERVICE}",
        "",
        "[Install]",
        "WantedBy=timers.target",
        "",
    ])


def exec_start(text: str) -> List[str]:
    for line in text.splitlines():
        if line.startswith("ExecStart="):
            return _unquote(line[len("ExecStart="):])
    return []


def scheduled() -> List[Scheduled]:
    service = unit_dir() / SERVICE
    timer = unit_dir() / TIMER
    if not timer.is_file() and not service.is_file():
        return []
    try:
        argv = exec_start(files.read_text(service)) if service.is_file() else []
    except UserError:
        argv = []
    return [Scheduled("systemd", str(timer if timer.is_file() else service), argv)]


def _systemctl(*args: str) -> Optional[str]:
    """Run ``systemctl --user ...``; None on success, else the reason."""
    exe = shutil.which("systemctl")
    if not exe:
        return "systemctl not found"
    proc = run_tool([exe, "--user", *args])
    if proc.returncode != 0:
        return first_line(proc.stderr or proc.stdout) or f"exit {proc.returncode}"
    return None


def _linger_note() -> Optional[str]:
    folder = Path("/var/lib/systemd/linger")
    import getpass

    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name: no note
        return None
    if folder.is_dir() and not (folder / user).exists():
        return (f"NOTE user timers stop when {user} logs out; run 'loginctl enable-linger {user}' "
                f"to keep ticking")
    return None


def require_linux(command: str) -> None:
    if base.platform_name() != "linux":
        raise UserError(f"systemd user timers are Linux-only; on macOS run "
                        f"'autometta install-launchagent REPO' or 'autometta install-cron' "
                        f"instead of '{command}'")


FIX_OTHERS = {
    "cron": "run 'autometta uninstall-cron' first",
    "cron-foreign": "remove that line with 'crontab -e' first",
    "launchd": "run 'autometta uninstall-launchagent REPO' for each repo first",
}


def install(inv: Invocation, minutes: int = DEFAULT_MINUTES, *, others: Sequence[Scheduled],
            dry_run: bool = False, start: bool = True, say: Callable[[str], None] = print,
            note: Callable[[str], None] = print) -> List[Path]:
    """Write and start the service and timer; ``others``: what cron and launchd schedule now
    (:func:`autometta.schedule.lookup.others_than`), refused: the tick is not scheduled twice."""
    require_linux("install-systemd")
    if minutes < 1:
        raise UserError(f"--interval {minutes}: give a whole number of minutes, 1 or more")
    require_home()
    refuse_if_scheduled([s for s in others if s.kind in FIX_OTHERS], FIX_OTHERS)
    folder = unit_dir()
    service_text = render_service(inv.argv(*TICK_ARGS), schedule_path(), carried_env())
    timer_text = render_timer(minutes)
    for message in inv.notes:
        note(f"NOTE {message}")
    if dry_run:
        say(f"# {folder / SERVICE}\n{service_text}\n# {folder / TIMER}\n{timer_text}".rstrip("\n"))
        return [folder / SERVICE, folder / TIMER]
    files.ensure_dir(folder)
    replaced = False  # a running timer keeps its old settings until restarted
    for name, text in ((SERVICE, service_text), (TIMER, timer_text)):
        path = folder / name
        old = path.read_text(encoding="utf-8") if path.is_file() else None
        if old != text:
            files.atomic_write(path, text, mode=0o644)
            replaced = replaced or old is not None
        say(f"PASS systemd unit {'written' if old != text else 'unchanged'} {path}")
    if not start:
        note(f"NOTE not started; run 'systemctl --user daemon-reload && "
             f"systemctl --user enable --now {TIMER}'")
    elif not shutil.which("systemctl"):
        note(f"NOTE systemctl not found; on a systemd host run 'systemctl --user daemon-reload && "
             f"systemctl --user enable --now {TIMER}'")
    else:
        steps = [("daemon-reload",), ("enable", "--now", TIMER)] + ([("restart", TIMER)] if replaced else [])
        for args in steps:
            failed = _systemctl(*args)
            if failed:
                raise UserError(f"systemctl --user {' '.join(args)} failed ({failed}); the units are written "
                                f"in {folder}; in a user session run 'systemctl --user daemon-reload && "
                                f"systemctl --user enable --now {TIMER}'")
        say(f"PASS systemd timer enabled {TIMER} "
            f"(every {minutes} min; logs: journalctl --user -u autometta-tick)")
        linger = _linger_note()
        if linger:
            note(linger)
    return [folder / SERVICE, folder / TIMER]


def uninstall(*, say: Callable[[str], None] = print, note: Callable[[str], None] = print) -> List[Path]:
    require_linux("uninstall-systemd")
    folder = unit_dir()
    present = [folder / n for n in (TIMER, SERVICE) if (folder / n).exists()]
    if not present:
        say(f"PASS no autometta systemd units in {folder} (nothing to remove)")
        return []
    if shutil.which("systemctl"):
        failed = _systemctl("disable", "--now", TIMER)
        if failed:
            note(f"NOTE systemctl --user disable --now {TIMER} failed ({failed}); removing the files anyway")
    for path in present:
        try:
            path.unlink()
        except OSError as exc:
            raise UserError(f"{path}: cannot delete ({exc.strerror}); delete it by hand") from exc
        say(f"PASS systemd unit removed {path}")
    if shutil.which("systemctl"):
        _systemctl("daemon-reload")
    return present

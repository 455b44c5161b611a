"""A macOS LaunchAgent per repo, running ``tick --repo REPO`` every N seconds.

As the bash version (spec §8.5): label ``com.autometta.tick.<repo name>``,
``~/Library/LaunchAgents/<label>.plist``, ``RunAtLoad``, ``StartInterval``,
``WorkingDirectory`` the repo, logs in ``<repo>/state/logs/launchagent.{out,err}.log``,
``EnvironmentVariables`` with ``PATH``, loaded with ``launchctl bootstrap
gui/<uid>``. Different on purpose:

* each agent ticks only its own repo (bash ran a full tick per agent, so N
  repos meant N ticks of every repo, §15.2);
* ``AbandonProcessGroup`` is always there: the plist is rendered from code
  with ``plistlib``, not copied once into the repo and frozen (§15.27, H9);
* labels keep ``_`` (§15.27); other characters become ``-``; a second repo
  with the same name gets a short hash, as subscriber files do;
* ``PHAT_CONTROLLER_HOME`` is passed on when set, so the agent ticks the
  same controller home as the shell that installed it.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

from .. import files, home
from ..errors import UserError
from ..paths import HomePaths, RepoPaths
from . import invocation as base
from .invocation import TICK_ARGS, Invocation, carried_env, first_line, run_tool, schedule_path, user_home
from .scheduled import Scheduled, refuse_if_scheduled

LABEL_PREFIX = "com.autometta.tick."
DEFAULT_INTERVAL = 300
PLIST_MODE = 0o644


def agents_dir(env: Optional[Dict[str, str]] = None) -> Path:
    return user_home(env) / "Library" / "LaunchAgents"


def require_macos(command: str) -> None:
    if base.platform_name() != "darwin":
        raise UserError(f"LaunchAgents are macOS-only; on this system run 'autometta install-cron' "
                        f"or 'autometta install-systemd' instead of '{command}'")


def sanitise(name: str) -> str:
    """A repo name as a label part: letters, digits, ``.``, ``_`` and ``-``; anything else ``-``."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".-")
    return cleaned or "repo"


def read_plist(path: Path) -> Optional[Dict[str, Any]]:
    import plistlib  # not at import: status reads no plist on Linux

    try:
        with open(path, "rb") as handle:
            data = plistlib.load(handle)
    except Exception:  # noqa: BLE001 - OSError, InvalidFileException, ExpatError: all "unreadable"
        return None
    return data if isinstance(data, dict) else None


def agent_plists() -> List[Path]:
    folder = agents_dir()
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob(LABEL_PREFIX + "*.plist") if p.is_file())


def _same(a: str, b: str) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def plists_for(repo: Path) -> List[Path]:
    """Our plists whose ``WorkingDirectory`` is ``repo``."""
    found = []
    for path in agent_plists():
        data = read_plist(path)
        where = (data or {}).get("WorkingDirectory")
        if isinstance(where, str) and _same(where, str(repo)):
            found.append(path)
    return found


def label_for(repo: Path) -> str:
    """``com.autometta.tick.<name>``, or ``<name>-<hash>`` when another repo holds that label."""
    existing = plists_for(repo)
    if existing:
        return existing[0].stem
    label = LABEL_PREFIX + sanitise(repo.name)
    taken = agents_dir() / f"{label}.plist"
    if taken.exists():
        data = read_plist(taken) or {}
        other = data.get("WorkingDirectory")
        if isinstance(other, str) and not _same(other, str(repo)):
            import hashlib

            digest = hashlib.sha256(str(repo).encode("utf-8")).hexdigest()[:8]
            label = f"{label}-{digest}"
    return label


def render(label: str, argv: List[str], interval: int, repo: Path, path_value: str,
           env: Dict[str, str]) -> bytes:
    logs = RepoPaths(repo).logs
    doc: Dict[str, Any] = {
        "Label": label,
        "ProgramArguments": list(argv),
        "RunAtLoad": True,
        # launchd must not kill the agents a tick starts when the tick exits (Appendix A, H9)
        "AbandonProcessGroup": True,
        "StartInterval": int(interval),
        "WorkingDirectory": str(repo),
        "StandardOutPath": str(logs / "launchagent.out.log"),
        "StandardErrorPath": str(logs / "launchagent.err.log"),
        "EnvironmentVariables": {"PATH": path_value, **env},
    }
    import plistlib

    return plistlib.dumps(doc, fmt=plistlib.FMT_XML, sort_keys=False)


def program(inv: Invocation, repo: Path, env: Optional[Dict[str, str]] = None) -> List[str]:
    """The agent's argv; ``AUTOMETTA_LAUNCHAGENT_BIN`` (bash's variable) names a binary to use instead."""
    environ = os.environ if env is None else env
    args = [*TICK_ARGS[:1], "--repo", str(repo), *TICK_ARGS[1:]]
    binary = environ.get("AUTOMETTA_LAUNCHAGENT_BIN")
    if binary:
        if not os.path.isabs(binary):
            raise UserError(f"AUTOMETTA_LAUNCHAGENT_BIN={binary}: give an absolute path")
        return [binary, *args]
    return inv.argv(*args)


def _launchctl() -> str:
    exe = shutil.which("launchctl")
    if not exe:
        raise UserError("launchctl not found on PATH; LaunchAgents need macOS's launchctl (/bin/launchctl)")
    return exe


def _domain() -> str:
    return f"gui/{os.getuid()}"


def bootout(label: str) -> None:
    """Unload ``label``; 'not loaded' is not an error."""
    run_tool([_launchctl(), "bootout", f"{_domain()}/{label}"])


def bootstrap(plist: Path, label: str) -> None:
    exe = _launchctl()
    proc = run_tool([exe, "bootstrap", _domain(), str(plist)])
    if proc.returncode != 0:
        # already loaded (an agent whose file was replaced by hand): unload, then load again
        bootout(label)
        proc = run_tool([exe, "bootstrap", _domain(), str(plist)])
    if proc.returncode != 0:
        raise UserError(f"launchctl bootstrap {_domain()} {plist} failed "
                        f"({first_line(proc.stderr or proc.stdout) or f'exit {proc.returncode}'}); "
                        f"check the plist with 'plutil -lint {plist}'")


def scheduled() -> List[Scheduled]:
    found = []
    for path in agent_plists():
        data = read_plist(path) or {}
        argv = data.get("ProgramArguments")
        repo = data.get("WorkingDirectory")
        found.append(Scheduled("launchd", str(path), [str(a) for a in argv] if isinstance(argv, list) else [],
                               detail=str(data.get("Label") or path.stem),
                               repo=repo if isinstance(repo, str) else None))
    return found


def install(inv: Invocation, repo: Path, interval: int = DEFAULT_INTERVAL, *, others: Sequence[Scheduled],
            dry_run: bool = False, say: Callable[[str], None] = print,
            note: Callable[[str], None] = print) -> Path:
    """Install and load the repo's LaunchAgent; drop the cron tick the bash installer managed.

    ``others``: what cron and systemd schedule now (:func:`autometta.schedule.lookup.others_than`): a
    systemd timer or a crontab line not autometta's refuses the install.
    """
    from . import cron

    require_macos("install-launchagent")
    if interval < 1:
        raise UserError(f"--interval {interval}: give a whole number of seconds, 1 or more")
    hp = HomePaths.from_env()
    home.require_home(hp)
    if home.find_subscriber(hp, repo) is None:
        raise UserError(f"{repo}: not subscribed; run 'autometta subscribe {repo}' first "
                        f"(on macOS it installs the LaunchAgent itself)")
    foreign = [s for s in others if s.kind == "cron-foreign" and not cron.BASH_LINE_RE.match(s.detail)]
    refuse_if_scheduled(foreign + [s for s in others if s.kind == "systemd"], {
        "cron-foreign": "remove that line with 'crontab -e' first",
        "systemd": "run 'autometta uninstall-systemd' first",
    })
    label = label_for(repo)
    plist = agents_dir() / f"{label}.plist"
    path_value = schedule_path(override_var="AUTOMETTA_LAUNCHAGENT_PATH")
    data = render(label, program(inv, repo), interval, repo, path_value, carried_env())
    for message in inv.notes:
        note(f"NOTE {message}")
    if dry_run:
        say(data.decode("utf-8").rstrip("\n"))
        return plist
    files.ensure_dir(RepoPaths(repo).logs)
    files.ensure_dir(plist.parent)
    replacing = plist.exists()
    stale = [p for p in plists_for(repo) if p != plist]
    for old in stale:
        bootout(old.stem)
        old.unlink()
        say(f"PASS launchagent removed {old.stem}")
    if replacing:
        bootout(label)
    files.atomic_write(plist, data, mode=PLIST_MODE)
    bootstrap(plist, label)
    had_cron = any(s.kind == "cron" for s in cron.scheduled())
    cron.remove_for_launchd(say)
    say(f"PASS launchagent label {label}")
    say(f"PASS launchagent plist {plist}")
    if had_cron:
        covered = {os.path.realpath(s.repo) for s in scheduled() if s.repo}
        for sub in home.load_subscribers(hp):
            if sub.enabled and sub.repo_path and os.path.realpath(sub.repo_path) not in covered:
                note(f"NOTE cron no longer ticks {sub.repo_path}; run 'autometta install-launchagent "
                     f"{sub.repo_path}'")
    return plist


def uninstall(repo: Path, *, say: Callable[[str], None] = print) -> List[str]:
    require_macos("uninstall-launchagent")
    targets = plists_for(repo)
    default = agents_dir() / f"{LABEL_PREFIX}{sanitise(repo.name)}.plist"
    if not targets and default.exists() and not (read_plist(default) or {}).get("WorkingDirectory"):
        targets = [default]  # unreadable or hand-edited: go by the bash label
    if not targets:
        say(f"PASS no LaunchAgent for {repo} (nothing to remove)")
        return []
    removed = []
    for plist in targets:
        bootout(plist.stem)
        try:
            plist.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise UserError(f"{plist}: cannot delete ({exc.strerror}); delete it by hand") from exc
        removed.append(plist.stem)
        say(f"PASS launchagent removed {plist.stem}")
    return removed


def install_after_subscribe(repo: Path, say: Callable[[str], None] = print) -> None:
    """What ``subscribe`` does on macOS (spec §8.2): install the repo's agent, unless cron runs the tick.

    A failure here is a WARN line, not a failed subscription: the repo is
    subscribed either way and ``install-launchagent`` can be run again.
    """
    from . import cron, systemd

    if base.platform_name() != "darwin":
        return
    try:
        in_cron = cron.scheduled()
        if any(s.kind in ("cron", "cron-foreign") for s in in_cron):
            say("PASS launchagent skipped: cron already runs the tick ('autometta uninstall-cron' to switch)")
            return
        install(base.resolve_invocation(), repo, DEFAULT_INTERVAL, others=in_cron + systemd.scheduled(),
                say=say, note=say)
    except UserError as exc:
        say(f"WARN launchagent not installed: {exc.message}")

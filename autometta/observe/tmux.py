"""The tmux viewer: one session per repo with three panes.

::

    +--------------------+--------------------+
    | status --watch     | log --follow       |
    | (this repo)        | (this repo's lines)|
    |                    +--------------------+
    |                    | ticker REPO        |
    |                    | (agents)           |
    +--------------------+--------------------+

The session is ``autometta-<repo name>``, the name lower-cased with anything
outside ``[a-z0-9_-]`` made ``-`` (tmux itself rewrites ``.`` and ``:``), or
``$PHAT_CONTROLLER_TMUX_SESSION``. ``$AUTOMETTA_TMUX_SOCKET`` puts it on a
private tmux server (``tmux -L NAME``, or ``-S PATH`` for a path).

Each pane runs autometta the way this process was started: the pyz, or
``python -m autometta`` with the absolute interpreter and the import root
on ``PYTHONPATH``, with ``PHAT_CONTROLLER_HOME`` spelled out (a tmux server
started earlier does not have this shell's environment). When a pane's
command ends (Ctrl-C), a shell opens in the repo.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional

from ..agents.spawn import import_root
from ..errors import UserError
from ..paths import HomePaths
from .settings import SETTINGS

SESSION_ENV = "PHAT_CONTROLLER_TMUX_SESSION"
SOCKET_ENV = "AUTOMETTA_TMUX_SOCKET"
#: Variables a pane needs besides PHAT_CONTROLLER_HOME, passed on when set.
PASS_ENV = tuple(var for var, _default, _meaning in SETTINGS.values()) + ("NO_COLOR",)
#: Size of a session created without a client, until one attaches.
DETACHED_SIZE = ("160", "48")


def slug(name: str) -> str:
    text = re.sub(r"[^a-z0-9_-]", "-", name.lower()).strip("-")
    return text or "repo"


def session_name(repo: Path, env: Optional[Mapping[str, str]] = None) -> str:
    environ = os.environ if env is None else env
    override = environ.get(SESSION_ENV, "").strip()
    if override:
        return re.sub(r"[.:]", "-", override)
    return f"autometta-{slug(repo.name)}"


def tmux_argv(env: Optional[Mapping[str, str]] = None) -> List[str]:
    """``tmux`` plus the socket option, if a private server is asked for."""
    environ = os.environ if env is None else env
    socket = environ.get(SOCKET_ENV, "").strip()
    if not socket:
        return ["tmux"]
    return ["tmux", "-S", socket] if "/" in socket else ["tmux", "-L", socket]


def invocation() -> List[str]:
    """The argv prefix that runs this autometta (absolute interpreter, pyz or -m)."""
    root = import_root()
    python = os.path.abspath(sys.executable or "python3")
    if os.path.isfile(root):
        return [python, root]
    return ["env", f"PYTHONPATH={root}", python, "-m", "autometta"]


@dataclass
class Viewer:
    session: str
    repo: Path
    status: str
    log: str
    ticker: str

    def as_dict(self) -> Dict[str, str]:
        return {"session": self.session, "repo": str(self.repo), "status_pane": self.status,
                "log_pane": self.log, "ticker_pane": self.ticker}


def _pane(repo: Path, env_prefix: List[str], argv: List[str], banner: Optional[str] = None) -> str:
    body = shlex.join(env_prefix + argv)
    script = f"cd {shlex.quote(str(repo))} || exit 1; "
    if banner:
        script += f"printf '%s\\n\\n' {shlex.quote(banner)}; "
    script += body + '; exec "${SHELL:-/bin/sh}"'
    return shlex.join(["/bin/sh", "-c", script])


def viewer(repo: Path, hp: HomePaths, env: Optional[Mapping[str, str]] = None) -> Viewer:
    environ = os.environ if env is None else env
    prefix = invocation()
    extra = [f"PHAT_CONTROLLER_HOME={os.path.abspath(hp.root)}"]
    extra += [f"{var}={environ[var]}" for var in PASS_ENV if environ.get(var)]
    if prefix[0] == "env":
        env_prefix, argv = prefix[:2] + extra, prefix[2:]
    else:
        env_prefix, argv = ["env"] + extra, prefix
    repo_s = str(repo)
    return Viewer(
        session=session_name(repo, environ), repo=repo,
        status=_pane(repo, env_prefix, argv + ["status", "--watch", "--repo", repo_s]),
        log=_pane(repo, env_prefix, argv + ["log", "--follow", "--repo", repo_s],
                  banner=f"Project: {repo.name}  Repo: {repo_s}"),
        ticker=_pane(repo, env_prefix, argv + ["ticker", repo_s]),
    )


def available() -> bool:
    return shutil.which("tmux") is not None


def _tmux(base: List[str], *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(base + list(args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=30)
    if check and proc.returncode != 0:
        raise UserError(f"tmux {args[0]} failed: {proc.stderr.strip() or f'exit {proc.returncode}'}")
    return proc


def has_session(view: Viewer, env: Optional[Mapping[str, str]] = None) -> bool:
    return _tmux(tmux_argv(env), "has-session", "-t", f"={view.session}", check=False).returncode == 0


def ensure(view: Viewer, env: Optional[Mapping[str, str]] = None) -> str:
    """Create the session (or add its missing ticker pane); returns what was done, one line."""
    base = tmux_argv(env)
    if not has_session(view, env):
        first = _tmux(base, "new-session", "-d", "-P", "-F", "#{pane_id}", "-s", view.session,
                      "-x", DETACHED_SIZE[0], "-y", DETACHED_SIZE[1], "-c", str(view.repo), view.status).stdout.strip()
        right = _tmux(base, "split-window", "-h", "-P", "-F", "#{pane_id}", "-t", first, "-c", str(view.repo),
                      view.log).stdout.strip()
        _tmux(base, "split-window", "-v", "-t", right, "-c", str(view.repo), view.ticker)
        _tmux(base, "select-pane", "-t", first)
        return f"PASS tmux viewer created {view.session}"
    panes = _tmux(base, "list-panes", "-t", f"={view.session}:", "-F", "#{pane_id}").stdout.split()
    if len(panes) == 2:
        _tmux(base, "split-window", "-v", "-t", panes[1], "-c", str(view.repo), view.ticker)
        _tmux(base, "select-pane", "-t", panes[0])
        return f"PASS tmux ticker pane added to {view.session}"
    return f"PASS tmux viewer exists {view.session}"


def attach(view: Viewer, env: Optional[Mapping[str, str]] = None) -> None:
    """Replace this process with a tmux client on the session (switch, when already inside tmux)."""
    environ = os.environ if env is None else env
    base = tmux_argv(environ)
    if environ.get("TMUX"):
        _tmux(base, "switch-client", "-t", f"={view.session}")
        return
    sys.stdout.flush()
    os.execvp(base[0], base + ["attach-session", "-t", f"={view.session}"])

"""What a scheduler runs: the interpreter and the pyz (never a shim, never the live checkout), the
``PATH`` and environment a scheduled tick gets, and running the scheduler's own tools.

See :mod:`autometta.schedule` for why a built pyz and never a shim.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Mapping, NamedTuple, Optional, Sequence

from .. import home
from ..errors import UserError
from ..paths import HomePaths
from . import pyzinfo

if TYPE_CHECKING:
    import subprocess

#: Folders every scheduled PATH ends with, after the folders of the tools found.
DEFAULT_PATH_DIRS = ("/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin")
DARWIN_PATH_DIRS = ("/opt/homebrew/bin",)

#: Environment variables a scheduled tick must keep from the installing shell.
CARRIED_ENV = ("PHAT_CONTROLLER_HOME",)

#: The tick command every scheduler runs (plus ``--repo REPO`` for launchd).
TICK_ARGS = ("tick", "--quiet")

_SUBPROCESS_TIMEOUT = 60.0


def platform_name() -> str:
    """``darwin``, ``linux`` or ``sys.platform``; tests replace this function."""
    if sys.platform == "darwin":
        return "darwin"
    if sys.platform.startswith("linux"):
        return "linux"
    return sys.platform


def user_home(env: Optional[Mapping[str, str]] = None) -> Path:
    environ = os.environ if env is None else env
    return Path(environ.get("HOME") or os.path.expanduser("~"))


# --------------------------------------------------------------------------- interpreter


def is_shim(path: str) -> bool:
    """True for a version manager's wrapper script rather than an interpreter.

    pyenv, asdf, mise and rbenv all keep theirs in a ``shims`` folder; any
    other file that starts with ``#!`` is a wrapper too: a real Python
    interpreter is a binary.
    """
    if "shims" in path.replace(os.sep, "/").split("/")[:-1]:
        return True
    try:
        with open(path, "rb") as handle:
            return handle.read(2) == b"#!"
    except OSError:
        return False


_CELLAR_RE = re.compile(r"^(?P<prefix>.*)/Cellar/(?P<name>[^/]+)/[^/]+/(?P<rest>.+)$")


def stable_path(path: str) -> str:
    """``<prefix>/Cellar/<formula>/<version>/x`` -> ``<prefix>/opt/<formula>/x`` when that exists.

    A Cellar path dies at the next ``brew upgrade`` (spec §15.28); the ``opt``
    link follows upgrades.
    """
    match = _CELLAR_RE.match(path)
    if match:
        candidate = f"{match['prefix']}/opt/{match['name']}/{match['rest']}"
        if os.path.exists(candidate):
            return candidate
    return path


def _inside(path: str, folder: str) -> bool:
    folder = os.path.normpath(folder)
    return os.path.normpath(path).startswith(folder.rstrip(os.sep) + os.sep)


#: where version managers keep the interpreters they install (real binaries, but
#: they vanish when that version is uninstalled)
_MANAGED_PARTS = ("/.pyenv/versions/", "/.asdf/installs/", "/mise/installs/", "/.rtx/installs/",
                  "/uv/python/", "/.local/share/uv/")
#: interpreters that outlive any version manager, in order of preference
SYSTEM_PYTHONS = ("/usr/bin/python3", "/usr/local/bin/python3", "/opt/homebrew/bin/python3")


def is_managed(path: str) -> bool:
    norm = path.replace(os.sep, "/")
    return any(part in norm for part in _MANAGED_PARTS)


def _usable(path: str) -> bool:
    if not (os.path.isfile(path) and os.access(path, os.X_OK)) or is_shim(path):
        return False
    try:
        probe = run_tool([path, "-c", "import sys; print(sys.version_info >= (3, 9))"], timeout=15)
    except UserError:
        return False
    return probe.returncode == 0 and probe.stdout.strip() == "True"


def default_interpreter(executable: Optional[str] = None, prefix: Optional[str] = None,
                        base_prefix: Optional[str] = None, notes: Optional[List[str]] = None,
                        system_pythons: Sequence[str] = SYSTEM_PYTHONS) -> str:
    """The interpreter a scheduler should name: the system's, else this one out of its venv, never a shim.

    When this interpreter belongs to a version manager (pyenv, asdf, mise,
    uv), a system ``python3`` of 3.9 or newer is preferred: the pyz runs on
    any of them, and uninstalling a pyenv version must not stop the tick.
    """
    exe = sys.executable if executable is None else executable
    prefix = sys.prefix if prefix is None else prefix
    base_prefix = getattr(sys, "base_prefix", prefix) if base_prefix is None else base_prefix
    if not exe or not os.path.isabs(exe):
        raise UserError("cannot tell which Python runs autometta (sys.executable is empty); "
                        "pass --python /absolute/path/to/python3")
    if prefix != base_prefix:
        # a venv: follow its python symlink out to the interpreter it was made from
        seen = 0
        while _inside(exe, prefix) and os.path.islink(exe) and seen < 16:
            exe = os.path.normpath(os.path.join(os.path.dirname(exe), os.readlink(exe)))
            seen += 1
        if _inside(exe, prefix):
            for name in ("python3", "python"):
                candidate = os.path.join(base_prefix, "bin", name)
                if os.path.isfile(candidate):
                    exe = candidate
                    break
    if is_shim(exe):
        real = os.path.realpath(exe)
        if is_shim(real):
            raise UserError(f"{exe}: a version manager's shim, not an interpreter; "
                            f"pass --python with the real one (e.g. the output of 'pyenv which python3')")
        exe = real
    if is_managed(exe):
        for candidate in system_pythons:
            if _usable(candidate):
                if notes is not None:
                    notes.append(f"{exe} belongs to a version manager; using the system's {candidate} "
                                 f"instead (pass --python to choose)")
                return candidate
        if notes is not None:
            notes.append(f"{exe} belongs to a version manager and no system python3 3.9+ was found; "
                         f"the tick stops if that version is uninstalled")
    return stable_path(exe)


def check_interpreter(path: str) -> str:
    """Validate a ``--python`` choice: absolute, executable, not a shim, Python 3.9+."""
    if not os.path.isabs(path):
        raise UserError(f"--python {path}: give an absolute path (cron and launchd have no useful PATH)")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise UserError(f"--python {path}: no such executable; pass the interpreter's absolute path")
    if is_shim(path):
        raise UserError(f"--python {path}: a version manager's shim or wrapper script, not an interpreter; "
                        f"pass the real interpreter (e.g. the output of 'pyenv which python3')")
    probe = run_tool([path, "-c", "import sys; print(sys.version_info >= (3, 9))"])
    if probe.returncode != 0 or probe.stdout.strip() != "True":
        raise UserError(f"--python {path}: not Python 3.9 or newer; autometta needs 3.9+")
    return path


# --------------------------------------------------------------------------- what to run


class Invocation(NamedTuple):  # not a dataclass: status runs the schedule checks, and dataclasses is slow to import
    """What a scheduler runs: ``python pyz`` or ``python -m autometta``, and why."""

    python: str
    pyz: Optional[str]
    notes: Sequence[str] = ()

    def argv(self, *args: str) -> List[str]:
        head = [self.python, self.pyz] if self.pyz else [self.python, "-m", "autometta"]
        return head + list(args)


def _checkout_root(root: str) -> Optional[str]:
    if os.path.isdir(root) and os.path.isfile(os.path.join(root, "build_pyz.py")):
        return root
    return None


def find_pyz(pyz_arg: Optional[str] = None, root: Optional[str] = None) -> tuple:
    """(pyz path or None, notes): ``--pyz``, the running pyz, or a checkout's built pyz.

    None means an installed package (run it with ``-m autometta``); a
    checkout without a built pyz is an error naming the build command.
    """
    root = home.install_root() if root is None else root
    notes: List[str] = []
    if pyz_arg:
        path = os.path.abspath(os.path.expanduser(pyz_arg))
        if pyzinfo.read_build_info(path) is None:
            raise UserError(f"--pyz {path}: not an autometta pyz; build one with 'python3 build_pyz.py'")
        return stable_path(path), notes
    if os.path.isfile(root):
        return stable_path(root), notes
    checkout = _checkout_root(root)
    if checkout is not None:
        built = os.path.join(checkout, "dist", "autometta.pyz")
        if pyzinfo.read_build_info(built) is None:
            raise UserError(
                f"{built}: not built; autometta schedules, packages and vendors a built pyz, never "
                f"the live checkout (half-edited code would run every tick); run "
                f"'python3 {checkout}/build_pyz.py' first, or pass --pyz PATH")
        notes.append(f"running from the checkout {checkout}; using its built pyz {built} "
                     f"(rebuild with 'python3 build_pyz.py' to change what runs)")
        return built, notes
    return None, notes


def resolve_invocation(pyz_arg: Optional[str] = None, python_arg: Optional[str] = None,
                       root: Optional[str] = None) -> Invocation:
    pyz, notes = find_pyz(pyz_arg, root)
    if python_arg:
        python = check_interpreter(python_arg)
    elif pyz is None:
        # an installed package lives in this interpreter's site-packages: keep it, venv and all
        python = sys.executable
        if not python or is_shim(python):
            raise UserError(f"{python or 'sys.executable'}: not a usable interpreter; pass --python")
    else:
        python = default_interpreter(notes=notes)
    return Invocation(python=python, pyz=pyz, notes=tuple(notes))


# --------------------------------------------------------------------------- environment


def schedule_path(env: Optional[Mapping[str, str]] = None, system: Optional[str] = None,
                  override_var: Optional[str] = None) -> str:
    """PATH for a scheduled tick: the folders where check-deps found its tools, then the system's.

    ``AUTOMETTA_SCHEDULE_PATH`` (or ``override_var``, e.g. the bash version's
    ``AUTOMETTA_LAUNCHAGENT_PATH``) replaces it outright. Folders are kept as
    found, not resolved: ``claude`` under nvm needs the ``node`` beside it.
    """
    from .. import deps

    environ = os.environ if env is None else env
    for var in (override_var, "AUTOMETTA_SCHEDULE_PATH"):
        if var and environ.get(var):
            return str(environ[var])
    system = platform_name() if system is None else system
    dirs: List[str] = []
    wanted = {tool for tool, _required, _purpose in deps.tools()}
    for dep in deps.check(path=environ.get("PATH"), system="Darwin" if system == "darwin" else "Linux"):
        if dep.path and dep.name in wanted:
            dirs.append(os.path.dirname(dep.path))
    dirs += list(DARWIN_PATH_DIRS if system == "darwin" else ()) + list(DEFAULT_PATH_DIRS)
    out: List[str] = []
    for d in dirs:
        if d and os.path.isabs(d) and d not in out and ":" not in d:
            out.append(d)
    return ":".join(out)


def carried_env(env: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """The variables a scheduled tick needs to find the same controller home."""
    environ = os.environ if env is None else env
    return {k: str(environ[k]) for k in CARRIED_ENV if environ.get(k)}


def check_line_safe(*values: str) -> None:
    for value in values:
        if "\n" in value or "\r" in value or "\0" in value:
            raise UserError(f"{value!r}: a path with a line break cannot be scheduled; move or rename it")


# --------------------------------------------------------------------------- subprocess


def run_tool(argv: Sequence[str], input_text: Optional[str] = None,
             timeout: float = _SUBPROCESS_TIMEOUT) -> subprocess.CompletedProcess:
    """Run a tool found on PATH; an unstartable tool is a UserError, a failing one is returned."""
    import subprocess

    try:
        return subprocess.run(
            list(argv),
            input=input_text,
            stdin=None if input_text is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            universal_newlines=True,
            timeout=timeout,
        )
    except OSError as exc:
        raise UserError(f"{argv[0]}: cannot run ({exc.strerror})") from exc
    except subprocess.TimeoutExpired:
        raise UserError(f"{argv[0]}: no answer after {int(timeout)} s; "
                        f"run '{' '.join(argv)}' by hand") from None


def first_line(text: str) -> str:
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()
    return ""


def require_home() -> HomePaths:
    hp = HomePaths.from_env()
    home.require_home(hp)
    return hp

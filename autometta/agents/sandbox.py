"""The optional OS sandbox around every process a stage runs: ``sandbox: bwrap`` or ``sandbox: seatbelt``.

With ``sandbox:`` set in ``.autometta.local.yaml``, the worker, the verifier
(each member of a verifier panel; autometta's own panel process and API
transport are not agents and run outside) and the commands that run what
the worker wrote (acceptance, postmerge) start inside a sandbox where the whole filesystem is read-only except:

* the stage's working tree (its worktree; the repo itself under ``isolation: tree``,
  where ``state/``, ``.git``, the manifest and the card are made read-only again);
* the role's own hand-off folder: the worker's ``AUTOMETTA_HANDOFF``, the
  verifier's ``AUTOMETTA_ARTEFACT`` (their folders: the CLIs write by rename);
* the agent CLI's own config and session folder (``~/.claude`` or
  ``$CLAUDE_CONFIG_DIR``, ``~/.codex`` or ``$CODEX_HOME``), except the
  settings and instruction files in it (:meth:`Family.guarded_files`): a
  hook or a ``notify`` command written there would run outside the sandbox
  the next time you use the CLI;
* a private ``TMPDIR``, emptied at each start (``<controller home>/sandbox-tmp/``;
  set by the sandbox's own argv, so each panellist gets its own);
* the folders the manifest lists under ``sandbox_writable`` (``~/.npm``).

So a worker that writes ``~/.ssh/x``, the user's checkout or
``state/budget.json`` fails to (EROFS), and its work in the worktree lands.
Reads are not restricted, and the network is left alone (the CLIs need it).

``bwrap`` (Linux, bubblewrap) runs the agent as ``bwrap --ro-bind / / ...
--unshare-pid --die-with-parent -- <argv>``: when the agent's first process
ends, everything it left in the sandbox ends too, and the sandbox dies with
the runner that supervises it. ``seatbelt`` (macOS) runs ``sandbox-exec -p
<profile> <argv>`` with a profile denying writes outside the same folders;
it cannot be run on Linux, so its profile is tested as text.

codex runs its own sandbox inside ours (bwrap nests when user namespaces
do; :func:`nesting_works` measures it) with ``/tmp`` left out of its
writable roots, since ours makes ``/tmp`` read-only; macOS cannot nest
sandboxes, so under seatbelt codex defaults to running without its own.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from ..errors import UserError

KINDS = ("none", "bwrap", "seatbelt")
#: Stall marker: the configured sandbox cannot run here (tool missing, wrong OS, no nesting for codex).
UNAVAILABLE = "sandbox_unavailable"
#: Stall marker: the agent ended at once, its log ending with the sandbox tool's own complaint.
FAILED = "sandbox_failed"
SEATBELT_EXEC = "/usr/bin/sandbox-exec"
PROBE_TIMEOUT = 20
_SYSTEM_FOR = {"bwrap": "Linux", "seatbelt": "Darwin"}

#: Writable on every system for the terminal and /dev/null (seatbelt; bwrap's --dev gives its own /dev).
_SEATBELT_DEVICES = ('(literal "/dev/null")', '(literal "/dev/zero")', '(literal "/dev/dtracehelper")',
                     '(regex #"^/dev/tty")', '(regex #"^/dev/fd/")', '(literal "/dev/ptmx")')


class SandboxError(UserError):
    """The sandbox cannot be set up; the tick stalls the stage with :data:`UNAVAILABLE`."""

    marker = UNAVAILABLE


def kind_of(manifest: Mapping[str, Any], manifest_path: Optional[Path] = None) -> str:
    """``sandbox:`` of the manifest: ``none`` (also when unset or false), ``bwrap`` or ``seatbelt``."""
    value = manifest.get("sandbox") if isinstance(manifest, Mapping) else None
    if value in (None, False, "", "none", "off"):
        return "none"
    if isinstance(value, str) and value.strip().lower() in KINDS:
        return value.strip().lower()
    raise UserError(f"{manifest_path or '.autometta.local.yaml'}: sandbox {value!r} is not one of "
                    f"{', '.join(KINDS)}; write 'sandbox: bwrap' (Linux) or 'sandbox: seatbelt' (macOS)")


def extra_writable(manifest: Mapping[str, Any], home: str) -> List[Path]:
    """``sandbox_writable`` of the manifest, ``~`` meaning the agent's HOME."""
    items = manifest.get("sandbox_writable") if isinstance(manifest, Mapping) else None
    out = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, str) and item.strip():
            text = item.strip()
            out.append(Path(home + text[1:] if text.startswith("~") else text))
    return out


# ------------------------------------------------------------------ the plan


@dataclass
class Plan:
    """What one sandboxed process may write. Paths are absolute and resolved; order matters."""

    kind: str
    #: Writable folders.
    writable: List[Path] = field(default_factory=list)
    #: Folders and files inside a writable folder that are read-only again (state/, .git, the manifest).
    protected: List[Path] = field(default_factory=list)
    #: Writable again inside a protected folder (the hand-off folder under state/).
    reopened: List[Path] = field(default_factory=list)
    tmpdir: Optional[Path] = None


def _real(path: Path) -> Path:
    return Path(os.path.realpath(str(path)))


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def make_plan(kind: str, work: Path, repo: Path, role_dirs: Sequence[Path], config_dirs: Sequence[Path],
              tmpdir: Optional[Path], extra: Sequence[Path] = (), guarded: Sequence[Path] = ()) -> Plan:
    """The plan for a process working in ``work`` (pure apart from resolving symlinks).

    ``role_dirs`` are its hand-off folders, ``config_dirs`` its CLI's folders,
    ``extra`` the manifest's ``sandbox_writable``. Whatever of the repo's
    ``state/``, ``.git`` and ``.autometta.local.yaml``, and of ``guarded``
    (the stage card, the CLI's settings and instruction files), lies inside a
    writable folder is protected again, and a role folder inside that reopened.
    """
    plan = Plan(kind=kind, tmpdir=_real(tmpdir) if tmpdir is not None else None)
    wanted = [work, *role_dirs, *config_dirs, *extra] + ([tmpdir] if tmpdir is not None else [])
    for folder in (_real(p) for p in wanted):
        if folder not in plan.writable:
            plan.writable.append(folder)
    repo = _real(repo)
    for path in [repo / "state", repo / ".git", repo / ".autometta.local.yaml", *(_real(g) for g in guarded)]:
        if any(_inside(path, w) for w in plan.writable) and path not in plan.protected:
            plan.protected.append(path)
    for folder in (_real(p) for p in role_dirs):
        if any(_inside(folder, g) for g in plan.protected) and folder not in plan.reopened:
            plan.reopened.append(folder)
    return plan


def bwrap_argv(bwrap: str, plan: Plan, argv: Sequence[str]) -> List[str]:
    """``bwrap`` around ``argv``: everything read-only, then the plan's folders writable.

    Binds apply in order, so a protected folder inside a writable one is
    read-only and a reopened one inside that writable again. Paths that do
    not exist are skipped (a bind needs its source). ``TMPDIR`` is set to the
    plan's private folder.
    """
    out = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-pid", "--die-with-parent"]
    for flag, paths in (("--bind", plan.writable), ("--ro-bind", plan.protected), ("--bind", plan.reopened)):
        for path in paths:
            if os.path.lexists(str(path)):
                out += [flag, str(path), str(path)]
    if plan.tmpdir is not None:
        out += ["--setenv", "TMPDIR", str(plan.tmpdir)]
    return out + ["--", *argv]


def _sbpl(path: Path) -> str:
    return '"' + str(path).replace("\\", "\\\\").replace('"', '\\"') + '"'


def seatbelt_profile(plan: Plan) -> str:
    """The ``sandbox-exec`` profile for ``plan``: allow all, deny writes, then allow the plan's folders.

    In a seatbelt profile the last rule that matches wins, so the layers read
    like bwrap's binds: writable folders, protected ones inside them, reopened ones.
    """
    lines = [";; autometta: read-only except the stage's folders (docs/permissions.md)",
             "(version 1)", "(allow default)", "(deny file-write*)",
             "(allow file-write*", *(f"    {d}" for d in _SEATBELT_DEVICES), ")"]
    for verb, paths in (("allow", plan.writable), ("deny", plan.protected), ("allow", plan.reopened)):
        if paths:
            lines.append(f"({verb} file-write*")
            lines.extend(f"    (subpath {_sbpl(p)})" for p in paths)
            lines.append(")")
    return "\n".join(lines) + "\n"


def seatbelt_argv(plan: Plan, argv: Sequence[str]) -> List[str]:
    """``sandbox-exec -p <profile> [/usr/bin/env TMPDIR=<private>] <argv>``."""
    tmp = ["/usr/bin/env", f"TMPDIR={plan.tmpdir}"] if plan.tmpdir is not None else []
    return [SEATBELT_EXEC, "-p", seatbelt_profile(plan), *tmp, *argv]


# ------------------------------------------------------------------ is it there?


_PROBES: Dict[Tuple[str, str], Tuple[bool, str]] = {}


def _probe(key: Tuple[str, str], argv: List[str]) -> Tuple[bool, str]:
    """Run ``argv`` once per process; (ran, its last complaint)."""
    if key not in _PROBES:
        try:
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  timeout=PROBE_TIMEOUT)
            lines = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            _PROBES[key] = (proc.returncode == 0, lines[-1] if lines else f"exit {proc.returncode}")
        except (OSError, subprocess.TimeoutExpired) as exc:
            _PROBES[key] = (False, str(exc))
    return _PROBES[key]


def tool(kind: str, path: Optional[str] = None) -> Optional[str]:
    """The sandbox program for ``kind`` on ``path`` (bwrap) or at its fixed place (sandbox-exec)."""
    if kind == "bwrap":
        return shutil.which("bwrap", path=path)
    if kind == "seatbelt":
        return SEATBELT_EXEC if os.access(SEATBELT_EXEC, os.X_OK) else None
    return None


def tool_name(kind: str) -> str:
    return "sandbox-exec" if kind == "seatbelt" else kind


def available(kind: str, path: Optional[str] = None, system: Optional[str] = None) -> Tuple[bool, str]:
    """Whether ``kind`` can run here, and what was found (or why not)."""
    if kind == "none":
        return True, "no sandbox"
    system = system or platform.system()
    if system != _SYSTEM_FOR[kind]:
        where = "Linux" if kind == "bwrap" else "macOS"
        return False, f"sandbox: {kind} runs on {where} only, not {system}"
    program = tool(kind, path)
    if program is None:
        hint = ("install bubblewrap (apt-get install bubblewrap, dnf install bubblewrap)" if kind == "bwrap"
                else f"{SEATBELT_EXEC} is missing")
        return False, f"{tool_name(kind)} not found; {hint}"
    if kind == "bwrap":
        ran, said = _probe(("bwrap", program), [program, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
                                                "--unshare-pid", "--die-with-parent", "--", "/bin/true"])
        if not ran:
            return False, f"{program} cannot start a sandbox here: {said}"
    return True, program


def nesting_works(bwrap: str) -> Tuple[bool, str]:
    """Whether a bwrap sandbox can start inside ours (codex's own does, with a user namespace)."""
    return _probe(("nest", bwrap), [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-pid",
                                    "--die-with-parent", "--", bwrap, "--unshare-user", "--ro-bind", "/", "/",
                                    "--", "/bin/true"])


def diagnose(log_text: str) -> Optional[str]:
    """:data:`FAILED` when the log's last line is bwrap's or sandbox-exec's own complaint (the agent never ran)."""
    lines = log_text.strip().splitlines()
    return FAILED if lines and lines[-1].strip().startswith(("bwrap: ", "sandbox-exec: ")) else None


# ------------------------------------------------------------------ wrapping a process


def private_tmpdir(controller_home: Path, repo: Path, stage_id: str, role: str) -> Path:
    """``<home>/sandbox-tmp/<repo key>-<stage>-<role>``, emptied and created 0700."""
    key = hashlib.sha256(str(_real(repo)).encode()).hexdigest()[:10]
    folder = controller_home / "sandbox-tmp" / f"{key}-{stage_id}-{role}"
    shutil.rmtree(str(folder), ignore_errors=True)
    try:
        folder.mkdir(parents=True, mode=0o700)
    except OSError as exc:
        raise SandboxError(f"{folder}: cannot create the sandbox's private TMPDIR ({exc.strerror})") from exc
    return folder


def _ensure(folders: Iterable[Path]) -> None:
    for folder in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise SandboxError(f"{folder}: cannot create it for the sandbox to make writable "
                               f"({exc.strerror})") from exc


def wrap(kind: str, argv: Sequence[str], env: Mapping[str, str], *, work: Path, repo: Path, controller_home: Path,
         stage_id: str, role: str, role_dirs: Sequence[Path] = (), config_dirs: Sequence[Path] = (),
         extra: Sequence[Path] = (), guarded: Sequence[Path] = (), nests: bool = False) -> List[str]:
    """``argv`` inside the ``kind`` sandbox, with ``TMPDIR`` its private folder; SandboxError if it cannot.

    ``env`` is the environment the process gets (its ``PATH`` finds bwrap).

    ``nests``: the program starts a bwrap sandbox of its own (codex), which needs nesting to work here.
    """
    ok, found = available(kind, env.get("PATH"))
    if not ok:
        raise SandboxError(f"sandbox: {kind} cannot run: {found}; fix it, or remove 'sandbox:' from the manifest")
    if nests and kind == "bwrap":
        nested, said = nesting_works(found)
        if not nested:
            raise SandboxError(f"codex's own sandbox cannot start inside bwrap here ({said}); set "
                               "'permissions: {codex: {mode: bypass}}' in the manifest to let autometta's "
                               "sandbox alone confine codex")
    _ensure([*role_dirs, *config_dirs, *extra])
    tmpdir = private_tmpdir(controller_home, repo, stage_id, role)
    plan = make_plan(kind, work, repo, role_dirs, config_dirs, tmpdir, extra, guarded)
    if kind == "bwrap":
        return bwrap_argv(found, plan, argv)
    return seatbelt_argv(plan, argv)


@dataclass
class Status:
    """The sandbox a repo asks for and whether it runs here, as ``auth status`` and ``check-deps`` show it."""

    kind: str
    available: bool
    detail: str
    #: Whether codex's own sandbox starts inside ours (bwrap only; None when not measured).
    nesting: Optional[bool] = None
    problem: Optional[str] = None

    def line(self) -> str:
        if self.problem:
            return f"{self.kind}: {self.problem}"
        if self.kind == "none":
            return "none (agents are confined by their permission modes only)"
        if not self.available:
            return f"{self.kind}: NOT AVAILABLE: {self.detail}"
        nest = {True: "; codex's own sandbox nests inside it", False: "; codex's own sandbox cannot nest inside it: "
                "give codex 'mode: bypass'", None: ""}[self.nesting]
        return f"{self.kind} ({self.detail}{nest})"


def status(manifest: Mapping[str, Any], manifest_path: Optional[Path] = None, path: Optional[str] = None,
           system: Optional[str] = None) -> Status:
    """What ``sandbox:`` the manifest asks for and whether it can run here (runs bwrap once to find out)."""
    try:
        kind = kind_of(manifest, manifest_path)
    except UserError as exc:
        return Status("?", False, "", problem=exc.message)
    ok, detail = available(kind, path, system)
    nesting = nesting_works(detail)[0] if ok and kind == "bwrap" else None
    return Status(kind, ok, detail, nesting)

"""What several commands share: finding the repo a command is about, its manifest, and argument helpers.

Light on purpose: every command that names a repo imports it, so what a helper
needs beyond the standard library's ``os`` is imported inside it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..errors import UserError

TYPE_CHECKING = False  # not typing's: commands import no typing (tests/test_startup.py)
if TYPE_CHECKING:
    from typing import Any, Dict, Mapping, Optional, Tuple


# --------------------------------------------------------------------------- the repo a command is about


def resolve_repo(arg: str) -> Path:
    """The repo's real path; it must be the top of a git work tree."""
    repo = Path(os.path.realpath(arg))
    if not repo.is_dir():
        raise UserError(f"{repo}: no such folder")
    if not (repo / ".git").exists():
        raise UserError(f"{repo}: not the top of a git repository (no .git); run 'git init' there first")
    return repo


def find_repo(arg: Optional[str]) -> Optional[Path]:
    """The git work tree ``arg`` names (UserError if it is none), or the one around ``.`` (None if none)."""
    start = Path(os.path.realpath(arg or "."))
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    if arg is not None:
        raise UserError(f"{start}: not inside a git repository; give --repo the repo autometta runs on")
    return None


def repo_manifest(repo: Optional[Path]) -> Tuple[Dict[str, Any], Optional[Path]]:
    """The manifest the tick would use for ``repo`` (the subscriber's, else the repo's) and its path."""
    from .. import home, manifest
    from ..paths import HomePaths, RepoPaths

    if repo is None:
        return {}, None
    paths = RepoPaths(repo)
    sub_manifest = None
    hp = HomePaths.from_env()
    if hp.subscribers.is_dir():
        sub = home.find_subscriber(hp, repo)
        sub_manifest = sub.manifest_path if sub is not None else None
    for candidate in (sub_manifest, paths.manifest):
        if candidate is not None and Path(candidate).is_file():
            return manifest.load_manifest(paths, Path(candidate)), Path(candidate)
    return {}, None


def repo_context(repo: Any, environ: Optional[Mapping[str, str]] = None) -> Any:
    """A :class:`autometta.repo.RepoContext` for a command run by hand in ``repo``.

    Config and manifest are read as the tick reads them: config.yaml from the
    controller home, and the subscriber's ``manifest_path`` when the repo is
    subscribed, else the repo's own ``.autometta.local.yaml``.
    """
    from .. import home, manifest
    from ..repo import RepoContext
    from ..paths import HomePaths, RepoPaths

    env = dict(os.environ if environ is None else environ)
    hp = HomePaths.from_env(env)
    paths = RepoPaths(Path(repo))
    config = home.load_config(hp)
    sub = home.find_subscriber(hp, paths.root) if hp.subscribers.is_dir() else None
    return RepoContext(paths=paths, home=hp, config=config,
                       manifest=manifest.load_manifest(paths, sub.manifest_path if sub else None), environ=env)


# --------------------------------------------------------------------------- arguments and advice


def positive_int(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be 1 or more")
    return value


def add_program_args(parser, pyz_only: bool = False) -> None:
    """``--pyz`` (and ``--python``): which autometta a scheduler or package runs."""
    parser.add_argument("--pyz", metavar="PATH",
                        help="the built pyz to use (default: this one, or a checkout's dist/autometta.pyz)")
    if not pyz_only:
        parser.add_argument("--python", metavar="PATH",
                            help="absolute interpreter to run it with (default: this one, never a shim)")


def note(message: str) -> None:
    """Advice on stderr, so stdout stays what the command produced (a crontab, a plist)."""
    print(message, file=sys.stderr)


def print_started(role: str, result: Mapping[str, Any], agent: str, *files: Tuple[str, str]) -> None:
    """What a by-hand run (``dispatch``, ``verify``) prints once its agent started: the stage, the pid, who
    runs, and ``(label, path)`` for each file to watch (its log, its answer)."""
    print(f"{role} started for {result['stage_id']}: pid {result['pid']} ({agent})")
    for label, path in files:
        print(f"  {label + ':':<8} {path}")

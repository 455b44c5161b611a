"""Install the secret scan as the repo's pre-commit and pre-push hooks, for commits made by hand.

The hooks run ``autometta scan-secrets --staged`` and ``--pre-push`` (the same
scan the tick runs before its PASS commit) with the interpreter and install
this command ran from, or ``autometta`` on PATH if that install is gone. A hook
already there is kept as ``<hook>.pre-autometta`` and runs first, with the same
arguments and input; re-running updates autometta's hooks in place. Hooks go
where git looks for them (``core.hooksPath`` is honoured). Bypass once, on
purpose: ``git commit --no-verify`` / ``git push --no-verify``. Uninstall:
delete the hook, and rename ``<hook>.pre-autometta`` back if there is one.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path
from typing import List

from .. import files
from ..agents.spawn import import_root
from ..errors import UserError
from ..git import gitops
from .common import resolve_repo

#: The line that marks a hook as autometta's own.
SIGNATURE = "# autometta-guard"
CHAINED_SUFFIX = ".pre-autometta"
#: ``python -I -c BOOTSTRAP ROOT args``: run autometta's CLI from ROOT (a checkout folder or the pyz).
BOOTSTRAP = ("import sys; sys.path.insert(0, sys.argv.pop(1)); "
             "from autometta.cli import main; sys.exit(main(sys.argv[1:]))")

HOOKS = {
    "pre-commit": ("refuses a commit whose staged changes hold a secret", "scan-secrets --staged"),
    "pre-push": ("refuses a push whose commits hold a secret", "scan-secrets --pre-push"),
}


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("repo", nargs="?", default=".", help="the repo (default: .)")


def hook_text(hook: str, python: str, root: str) -> str:
    what, command = HOOKS[hook]
    chained = f'"$hook_dir/{hook}{CHAINED_SUFFIX}"'
    lines = [
        "#!/bin/sh",
        f"{SIGNATURE} {hook}: installed by `autometta install-guards`; it {what}.",
        "# The rules: autometta/scan.py, plus your own patterns in .publish-guard.local.",
        f"# Bypass once, on purpose: git {hook.split('-')[1]} --no-verify",
        'hook_dir=$(dirname "$0")',
        "autometta_guard() {",
        f"  if [ -x {shlex.quote(python)} ] && [ -e {shlex.quote(root)} ]; then",
        f"    {shlex.quote(python)} -I -c {shlex.quote(BOOTSTRAP)} {shlex.quote(root)} \"$@\"",
        "  elif command -v autometta >/dev/null 2>&1; then",
        '    autometta "$@"',
        "  else",
        f"    echo \"autometta guard: autometta is gone from {root} and not on PATH; run "
        f"'autometta install-guards' again (or bypass once with --no-verify)\" >&2",
        "    return 1",
        "  fi",
        "}",
    ]
    if hook == "pre-push":
        lines += [
            "input=$(cat)",
            f"if [ -x {chained} ]; then",
            f"  printf '%s\\n' \"$input\" | {chained} \"$@\" || exit $?",
            "fi",
            f"printf '%s\\n' \"$input\" | autometta_guard {command}",
        ]
    else:
        lines += [
            f"if [ -x {chained} ]; then",
            f"  {chained} \"$@\" || exit $?",
            "fi",
            f"autometta_guard {command}",
        ]
    return "\n".join(lines) + "\n"


def hooks_dir(repo: Path) -> Path:
    """Where git runs this repo's hooks from; UserError when that is not inside the repo's git folder.

    A ``core.hooksPath`` pointing into the work tree (tracked hooks, husky)
    or at a folder shared by other repos is left alone: autometta writes
    only inside ``.git``.
    """
    _, out, _ = gitops._run(repo, ["rev-parse", "--git-path", "hooks", "--git-common-dir"])
    lines = out.decode("utf-8", "surrogateescape").splitlines()
    where, common = (Path(p.strip()) for p in lines[:2])
    where = where if where.is_absolute() else repo / where
    common = common if common.is_absolute() else repo / common
    if not os.path.realpath(where).startswith(os.path.realpath(common) + os.sep):
        raise UserError(f"git runs this repo's hooks from {where} (core.hooksPath), outside {common}; "
                        "autometta will not write there: add the line `autometta scan-secrets --staged` to "
                        "its pre-commit and `autometta scan-secrets --pre-push` to its pre-push (stdin passed on)")
    return where


def install(repo: Path, python: str, root: str) -> List[str]:
    """Install both hooks; one line per hook saying what was done."""
    folder = hooks_dir(repo)
    files.ensure_dir(folder)
    said = []
    for hook in HOOKS:
        target = folder / hook
        text = hook_text(hook, python, root)
        chained = folder / (hook + CHAINED_SUFFIX)
        note = ""
        if target.is_file() or target.is_symlink():
            current = target.read_bytes() if target.is_file() else b""
            if SIGNATURE.encode() in current:
                if current.decode("utf-8", "replace") == text:
                    said.append(f"PASS {hook} already installed at {target}")
                    continue
            else:
                if chained.exists() or chained.is_symlink():
                    raise UserError(f"{target} is not autometta's and {chained} exists too; merge them into "
                                    f"{chained} by hand, remove {target}, and run install-guards again")
                os.replace(target, chained)
                note = f"; your previous hook is now {chained.name} and runs first"
        if chained.is_file() and not note:
            note = f"; {chained.name} runs first"
        files.atomic_write(target, text, mode=0o755)
        said.append(f"PASS {hook} installed at {target}{note}")
    return said


def run(args: argparse.Namespace) -> int:
    repo = resolve_repo(args.repo)
    if not sys.executable:
        raise UserError("cannot find the Python interpreter (sys.executable is empty); run autometta with python3")
    for line in install(repo, sys.executable, import_root()):
        print(line)
    return 0

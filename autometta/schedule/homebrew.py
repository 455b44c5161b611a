"""``install-homebrew-local``: a Homebrew formula for one built pyz, in a local tap.

The formula (``templates/homebrew/autometta.rb.template``) is rendered with
the pyz's version, commit, sha256 and a ``file://`` URL of a copy kept in the
tap, then installed with ``brew install <tap>/autometta``: current Homebrew
refuses formula files outside a tap. Nothing is downloaded (the bash version
fetched Chart.js even in a dry run, §15.28) and only the pyz is shipped (the
bash tarball swept in every untracked file of the checkout).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from .. import files, resources
from ..errors import UsageError, UserError
from . import pyzinfo
from .invocation import find_pyz, first_line, run_tool

TEMPLATE = "templates/homebrew/autometta.rb.template"
DEFAULT_TAP = "local/autometta"
FALLBACK_BREW_REPOSITORY = "/opt/homebrew"
_TAP_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
_PLACEHOLDER_RE = re.compile(r"__[A-Z0-9]+__")
#: Lines of the template meant for whoever edits it, dropped from the formula.
_NOTE_RE = re.compile(r"^#%.*(?:\n|$)", re.M)


def check_tap(tap: str) -> str:
    if not _TAP_RE.match(tap):
        raise UsageError(f"--tap {tap}: give owner/name, e.g. {DEFAULT_TAP}")
    owner, name = tap.split("/")
    if name.startswith("homebrew-"):
        name = name[len("homebrew-"):]
    return f"{owner}/{name}"


def render(template: str, *, version: str, commit: str, url: str, sha256: str) -> str:
    """The formula: the template's notes (``#%`` lines) dropped, its placeholders filled."""
    values = {"__VERSION__": version, "__COMMIT__": commit, "__URL__": url, "__SHA256__": sha256}
    template = _NOTE_RE.sub("", template)
    for key, value in values.items():
        if '"' in value or "\\" in value or "#{" in value or "\n" in value:
            raise UserError(f"{value!r} cannot go into a Ruby string in the formula; "
                            f"rename the folder it names")
        template = template.replace(key, value)
    left = sorted(set(_PLACEHOLDER_RE.findall(template)))
    if left:
        raise UserError(f"{TEMPLATE}: unknown placeholder {', '.join(left)}; "
                        f"use only __VERSION__, __COMMIT__, __URL__, __SHA256__")
    return template


@dataclass
class Plan:
    pyz: str
    version: str
    commit: str
    sha256: str
    tap: str
    tap_dir: Path
    archive: Path
    formula_path: Path
    formula: str


def _tap_dir(brew: Optional[str], tap: str) -> Path:
    owner, name = tap.split("/")
    if brew:
        proc = run_tool([brew, "--repository", tap])
        if proc.returncode == 0 and proc.stdout.strip():
            return Path(proc.stdout.strip())
        repo = run_tool([brew, "--repository"])
        base = repo.stdout.strip() if repo.returncode == 0 else ""
        base = base or FALLBACK_BREW_REPOSITORY
    else:
        base = FALLBACK_BREW_REPOSITORY
    return Path(base) / "Library" / "Taps" / owner.lower() / f"homebrew-{name.lower()}"


def plan(pyz_arg: Optional[str], tap: str, brew: Optional[str]) -> Plan:
    pyz, _notes = find_pyz(pyz_arg)
    if pyz is None:
        raise UserError("no pyz to package: this autometta is an installed package; build one with "
                        "'python3 build_pyz.py' in a checkout and pass --pyz dist/autometta.pyz")
    info = pyzinfo.read_build_info(pyz) or {}
    version = str(info.get("version") or "0")
    commit = str(info.get("commit") or "unknown")
    sha256 = pyzinfo.sha256_file(pyz)
    tap_dir = _tap_dir(brew, tap)
    archive = tap_dir / f"autometta-{version}-{commit}.pyz"
    formula = render(resources.read_text(TEMPLATE), version=version, commit=commit,
                     url=archive.as_uri(), sha256=sha256)
    return Plan(pyz, version, commit, sha256, tap, tap_dir, archive,
                tap_dir / "Formula" / "autometta.rb", formula)


def install(pyz_arg: Optional[str] = None, tap: str = DEFAULT_TAP, *, dry_run: bool = False,
            say: Callable[[str], None] = print, note: Callable[[str], None] = print) -> Plan:
    tap = check_tap(tap)
    brew = shutil.which("brew")
    p = plan(pyz_arg, tap, brew)
    fresh = pyzinfo.freshness(p.pyz)
    if fresh.status == "WARN":
        note(f"WARN {fresh.detail}")
    say(f"autometta pyz: {p.pyz} ({p.version}, commit {p.commit})")
    say(f"sha256: {p.sha256}")
    say(f"Homebrew tap: {p.tap}")
    say(f"Formula path: {p.formula_path}")
    say(f"Archive path: {p.archive}")
    if dry_run or not brew:
        say("")
        say(p.formula.rstrip("\n"))
        if dry_run:
            say("")
            say("Dry run only; no files written and no brew command run.")
            return p
        raise UserError("brew not found on PATH; the formula above is what would be installed. "
                        "Install Homebrew (https://brew.sh), or put the pyz on your PATH instead")
    if not p.tap_dir.is_dir():
        proc = run_tool([brew, "tap-new", "--no-git", p.tap])
        if proc.returncode != 0:
            reason = first_line(proc.stderr or proc.stdout)
            raise UserError(f"brew tap-new --no-git {p.tap} failed ({reason}); "
                            f"create the tap by hand or pass --tap owner/name")
        say(f"PASS tap created {p.tap_dir}")
    files.ensure_dir(p.formula_path.parent)
    for old in p.tap_dir.glob("autometta-*.pyz"):
        if old != p.archive:
            old.unlink()
    with open(p.pyz, "rb") as handle:
        files.atomic_write(p.archive, handle.read(), mode=0o644)
    files.atomic_write(p.formula_path, p.formula, mode=0o644)
    say(f"PASS formula written {p.formula_path}")
    name = f"{p.tap}/autometta"
    listed = run_tool([brew, "list", "--formula", name])
    verb = "reinstall" if listed.returncode == 0 else "install"
    try:
        code = subprocess.run([brew, verb, name], stdin=subprocess.DEVNULL).returncode
    except OSError as exc:
        raise UserError(f"{brew}: cannot run ({exc.strerror})") from exc
    if code != 0:
        raise UserError(f"brew {verb} {name} failed (exit {code}); the formula is {p.formula_path}")
    say(f"PASS installed {name} ({p.version}, commit {p.commit}); check it with 'brew test {name}'")
    note("NOTE to tick with this copy, run the scheduler install again from it "
         "('autometta install-cron', or 'autometta install-launchagent REPO')")
    return p

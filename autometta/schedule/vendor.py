"""``autometta vendor REPO``: pin one autometta pyz inside a repo's ``tools/``.

Writes ``tools/autometta.pyz`` (mode 0755) and ``tools/autometta.VERSION``,
a short ``key: value`` note of what was pinned (version, commit, sha256) so a
reviewer can see which build a diff brings in. Nothing is committed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, Optional

from .. import files
from ..errors import UserError
from . import pyzinfo
from .invocation import find_pyz

PYZ_NAME = "autometta.pyz"
NOTE_NAME = "autometta.VERSION"


def render_note(info: Dict[str, object], sha256: str) -> str:
    return (
        "# The autometta build pinned in this repo; update it with 'autometta vendor <repo>'\n"
        "# run from the build you want. Run it with: python3 tools/autometta.pyz --version\n"
        f"version: {info.get('version') or 'unknown'}\n"
        f"commit: {info.get('commit') or 'unknown'}\n"
        f"dirty: {'true' if info.get('dirty') else 'false'}\n"
        f"sha256: {sha256}\n"
    )


def vendor(repo: Path, pyz_arg: Optional[str] = None, *, dry_run: bool = False,
           say: Callable[[str], None] = print, note: Callable[[str], None] = print) -> Path:
    pyz, _notes = find_pyz(pyz_arg)
    if pyz is None:
        raise UserError("no pyz to vendor: this autometta is an installed package; build one with "
                        "'python3 build_pyz.py' in a checkout and pass --pyz dist/autometta.pyz")
    info = pyzinfo.read_build_info(pyz) or {}
    sha256 = pyzinfo.sha256_file(pyz)
    tools = repo / "tools"
    target = tools / PYZ_NAME
    note_path = tools / NOTE_NAME
    text = render_note(info, sha256)
    fresh = pyzinfo.freshness(pyz, info)
    if fresh.status == "WARN":
        note(f"WARN {fresh.detail}")
    if info.get("dirty"):
        note(f"WARN {pyz} was built from uncommitted changes; its commit does not name what it holds")
    if dry_run:
        say(f"would copy {pyz} to {target}")
        say(f"would write {note_path}:")
        say(text.rstrip("\n"))
        return target
    unchanged = (target.is_file() and pyzinfo.sha256_file(str(target)) == sha256
                 and note_path.is_file() and note_path.read_text(encoding="utf-8") == text)
    if unchanged:
        say(f"PASS vendored pyz unchanged {target} ({pyzinfo.describe(info)})")
        return target
    files.ensure_dir(tools)
    with open(pyz, "rb") as handle:
        files.atomic_write(target, handle.read(), mode=0o755)
    files.atomic_write(note_path, text, mode=0o644)
    say(f"PASS vendored {target} ({pyzinfo.describe(info)}, sha256 {sha256[:12]})")
    say(f"PASS pinned version {note_path}")
    say(f"Next: git -C {repo} add tools/{PYZ_NAME} tools/{NOTE_NAME} && git -C {repo} commit -m "
        f"'Vendor autometta {info.get('version') or ''} ({info.get('commit') or 'unknown'})'")
    return target

"""Teach an orchestrator session autometta: the Claude Code skill and the AGENTS.md text.

Writes the ``autometta`` skill (``SKILL.md`` and the orchestrator checklist)
to ``~/.claude/skills/autometta/`` (``$CLAUDE_CONFIG_DIR/skills/autometta/``
when that is set, or ``--dest``), leaving files that are already up to date
alone. Then prints the section for a repo's ``AGENTS.md`` (read by Codex) on
stdout, or with ``--agents-md REPO`` writes it into ``REPO/AGENTS.md``
itself, replacing an earlier copy between its markers. Safe to run again.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import List, Mapping, Optional, Tuple

from .. import files, resources
from ..errors import UserError
from .common import resolve_repo

#: (file in the skill folder, resource it is copied from)
SKILL_FILES: Tuple[Tuple[str, str], ...] = (
    ("SKILL.md", "templates/skill/SKILL.md"),
    ("orchestrator-checklist.md", "templates/orchestrator-checklist.md"),
)
AGENTS_SECTION = "templates/agents-section.md"
START, END = "<!-- autometta:start -->", "<!-- autometta:end -->"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dest", metavar="DIR", help="the skill folder (default: ~/.claude/skills/autometta)")
    parser.add_argument("--agents-md", metavar="REPO",
                        help="write the AGENTS.md section into REPO/AGENTS.md instead of printing it")


def skill_dir(environ: Optional[Mapping[str, str]] = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get("CLAUDE_CONFIG_DIR"):
        return Path(env["CLAUDE_CONFIG_DIR"]).expanduser() / "skills" / "autometta"
    home = env.get("HOME") or os.path.expanduser("~")
    return Path(home) / ".claude" / "skills" / "autometta"


def _write_if_changed(target: Path, text: str) -> str:
    try:
        if target.is_file() and files.read_text(target) == text:
            return "unchanged"
    except UserError:
        pass
    existed = target.exists()
    files.atomic_write(target, text, mode=0o644)
    return "updated" if existed else "installed"


def install_skill(dest: Optional[Path] = None) -> List[Tuple[str, Path]]:
    folder = dest or skill_dir()
    files.ensure_dir(folder)
    done = []
    for name, resource in SKILL_FILES:
        text = resources.read_text(resource)  # copied as shipped: they are read by people and agents, not filled
        done.append((_write_if_changed(folder / name, text), folder / name))
    return done


def agents_section() -> str:
    """The AGENTS.md section, markers included."""
    return resources.read_text(AGENTS_SECTION).rstrip("\n") + "\n"


def merge_agents_md(existing: str, section: str) -> str:
    """``existing`` with the autometta section replaced (between its markers) or appended."""
    start, end = existing.find(START), existing.find(END)
    if start >= 0 and end > start:
        return existing[:start] + section.rstrip("\n") + existing[end + len(END):]
    if not existing.strip():
        return section
    return existing.rstrip("\n") + "\n\n" + section


def write_agents_md(repo_arg: str) -> Tuple[str, Path]:
    target = resolve_repo(repo_arg) / "AGENTS.md"
    existing = files.read_text(target) if target.is_file() else ""
    return _write_if_changed(target, merge_agents_md(existing, agents_section())), target


def run(args: argparse.Namespace) -> int:
    for action, path in install_skill(Path(args.dest).expanduser() if args.dest else None):
        print(f"{action}: {path}", file=sys.stderr)
    if args.agents_md:
        action, path = write_agents_md(args.agents_md)
        print(f"{action}: {path}", file=sys.stderr)
    else:
        print("# Add this section to a repo's AGENTS.md (or run with --agents-md REPO):", file=sys.stderr)
        sys.stdout.write(agents_section())
    return 0

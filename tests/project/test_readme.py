"""The README's command reference is generated from the parser and must match it.

Regenerate with: python3 tests/project/test_readme.py --write
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
START, END = "<!-- commands:start -->", "<!-- commands:end -->"


def _synopsis(name: str, parser: argparse.ArgumentParser) -> str:
    parts = [f"autometta {name}"]
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if action.option_strings:
            flag = max(action.option_strings, key=len)
            if action.nargs == 0:
                parts.append(f"[{flag}]")
            else:
                parts.append(f"[{flag} {action.metavar or action.dest.upper()}]")
        else:
            meta = action.metavar or action.dest.upper()
            parts.append(f"[{meta}]" if action.nargs == "?" else meta)
    return " ".join(parts)


def generate() -> str:
    sys.path.insert(0, str(ROOT))
    from autometta import cli

    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    lines = ["| Command | What it does |", "|---|---|", "| `autometta --version` | print the version and build commit |"]
    for _module, name, summary in cli.COMMANDS:
        lines.append(f"| `{_synopsis(name, sub.choices[name])}` | {summary} |")
    return "\n".join(lines)


def current() -> str:
    text = README.read_text()
    match = re.search(re.escape(START) + r"\n(.*?)\n?" + re.escape(END), text, re.S)
    assert match, "README lacks the commands markers"
    return match.group(1).strip()


def test_readme_commands_match_parser():
    assert current() == generate(), "run: python3 tests/project/test_readme.py --write"


def test_readme_names_the_test_command_ci_runs():
    assert "bash tests/run.sh" in README.read_text()
    assert "tests/run.sh" in (ROOT / ".ci" / "run").read_text()


if __name__ == "__main__" and "--write" in sys.argv:
    text = README.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    README.write_text(f"{head}{START}\n{generate()}\n{END}{tail}")

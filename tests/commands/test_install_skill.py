"""``autometta install-skill``: the Claude Code skill in ~/.claude/skills/autometta, the AGENTS.md section."""

from __future__ import annotations

import os
import re

from autometta import resources
from autometta.commands.install_skill import END, START, merge_agents_md
from tests.testing.repos import make_repo


def front_matter(text):
    match = re.match(r"^---\n(.*?)\n---\n", text, re.S)
    assert match, "SKILL.md must start with YAML front matter"
    return dict(line.split(": ", 1) for line in match.group(1).splitlines())


def test_skill_front_matter_names_it_and_says_when_to_use_it():
    meta = front_matter(resources.read_text("templates/skill/SKILL.md"))
    assert meta["name"] == "autometta"
    assert 40 < len(meta["description"]) <= 1024 and "stage card" in meta["description"]


def test_installs_into_home_idempotently_and_prints_the_agents_section(run, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CLAUDE_CONFIG_DIR", raising=False)
    res = run("install-skill")
    assert res.code == 0, res.err
    folder = tmp_path / "home" / ".claude" / "skills" / "autometta"
    assert (folder / "SKILL.md").read_text() == resources.read_text("templates/skill/SKILL.md")
    assert (folder / "orchestrator-checklist.md").is_file()
    assert f"installed: {folder / 'SKILL.md'}" in res.err
    assert res.out.startswith(START) and res.out.rstrip().endswith(END)
    mtime = os.stat(folder / "SKILL.md").st_mtime_ns
    again = run("install-skill")
    assert again.code == 0 and f"unchanged: {folder / 'SKILL.md'}" in again.err
    assert os.stat(folder / "SKILL.md").st_mtime_ns == mtime
    (folder / "SKILL.md").write_text("old\n")
    assert f"updated: {folder / 'SKILL.md'}" in run("install-skill").err


def test_claude_config_dir_and_dest(run, tmp_path, monkeypatch):
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "cfg"))
    assert run("install-skill").code == 0
    assert (tmp_path / "cfg" / "skills" / "autometta" / "SKILL.md").is_file()
    assert run("install-skill", "--dest", str(tmp_path / "elsewhere")).code == 0
    assert (tmp_path / "elsewhere" / "SKILL.md").is_file()


def test_agents_md_is_written_once_and_replaced_in_place(run, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    repo = make_repo(tmp_path / "proj")
    (repo / "AGENTS.md").write_text("# Agents\n\nBe kind.\n")
    res = run("install-skill", "--agents-md", str(repo))
    assert res.code == 0 and res.out == "" and f"updated: {repo / 'AGENTS.md'}" in res.err
    text = (repo / "AGENTS.md").read_text()
    assert text.startswith("# Agents\n\nBe kind.\n\n" + START) and text.count(START) == 1
    assert "unchanged" in run("install-skill", "--agents-md", str(repo)).err
    stale = text.replace("## Working with autometta", "## Old autometta notes")
    (repo / "AGENTS.md").write_text(stale + "\nMore after.\n")
    run("install-skill", "--agents-md", str(repo))
    text = (repo / "AGENTS.md").read_text()
    assert text.count(START) == 1 and "Old autometta" not in text and text.endswith("More after.\n")


def test_merge_into_empty_file():
    assert merge_agents_md("", START + "\nx\n" + END + "\n") == START + "\nx\n" + END + "\n"

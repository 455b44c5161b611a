"""The one renderer: unfilled placeholders are errors, comments are for template editors."""

from __future__ import annotations

from pathlib import Path

import pytest

from autometta import families, render, resources, verdicts
from autometta.agents import provision
from autometta.card import parse_card_text
from autometta.errors import UserError
from autometta.paths import RepoPaths
from autometta.repo import RepoContext


def test_unfilled_placeholder_is_an_error_naming_the_template():
    with pytest.raises(UserError) as info:
        render.render("Hello <<name>>, stage <<stage-id>>.", {"name": "x"}, source="templates/worker-prompt.md")
    assert str(info.value).startswith("templates/worker-prompt.md: placeholder <<stage-id>> has no value;")


def test_values_are_literal_and_comments_are_dropped():
    out = render.render("<!-- note <<ignored>> -->\nA <<a>> B", {"a": r"\1 & | <<b>>"})
    assert out == "A \\1 & | <<b>> B"  # a value is never rendered again


def test_kept_comments_stay_and_their_slots_are_text():
    text = "<!-- fill every <<placeholder>> -->\n# <<title>>\n"
    assert render.render(text, {"title": "T"}, keep_comments=True) == "<!-- fill every <<placeholder>> -->\n# T\n"
    with pytest.raises(UserError):
        render.render(text, {}, keep_comments=True)


@pytest.mark.parametrize("name", ["worker-prompt", "verifier-prompt"])
@pytest.mark.parametrize("family", ["claude", "codex", "script"])
def test_the_dispatcher_fills_every_prompt_placeholder(tmp_path, name, family):
    card = parse_card_text("# Stage card 01-x: X\n- **Acceptance command:** `true`\n", tmp_path / "01-x.md")
    ctx = RepoContext(paths=RepoPaths(tmp_path))
    stage = {"id": "01-x", "worker": "Claude Sonnet 4.6", "verifier": "Codex GPT-5.5", "acceptance": "pass"}
    run = verdicts.new_run(ctx.paths, "01-x")
    stage.update(run.fields(ctx.paths))  # made at the verifier's dispatch
    role = "verifier" if name == "verifier-prompt" else "worker"
    values = provision.prompt_values(ctx, stage, card, role, families.get(family))
    text = render.render(resources.read_text(f"templates/{name}.md"), values)
    assert render.unfilled(text) == [] and "<<" not in text and "<!--" not in text
    assert str(RepoPaths(tmp_path).handoff("01-x")) in text or name == "verifier-prompt"
    assert (str(run.artefact) in text) == (role == "verifier")  # the verdict path is the verifier's alone
    assert ("artefact-path" in values) == (role == "verifier")


def test_templates_folder_lists_what_is_shipped():
    names = resources.list_dir("templates")
    for expected in ("stage-card.md", "worker-prompt.md", "verifier-prompt.md", "orchestrator-checklist.md",
                     "agents-section.md", "skill/"):
        assert expected in names
    assert Path(resources.location())

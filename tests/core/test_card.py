from __future__ import annotations

from pathlib import Path

import pytest

from autometta.card import (
    DEFAULT_BUDGET_SECONDS,
    DEFAULT_CARD_GLOBS,
    STAGE_ID_RE,
    budget_seconds,
    card_globs,
    check_stage_id,
    find_card,
    list_cards,
    parse_card,
    parse_card_text,
    parse_depends,
    parse_duration,
    resolve_dependency,
)
from autometta.cardlint import queue_problems as problems_for_queue
from autometta.errors import UserError

# A card shaped like the bash template (templates/stage-card.md), filled in.
REALISTIC_CARD = """\
<!--
Stage card 05a: phat-controller hardening. Authored by copying templates/stage-card.md.
Fill in every <<placeholder>> before dispatching a worker.
- **Worker:** Claude Opus 4.8 <claude-opus-4-8@local>
-->

# Stage card 05a: phat-controller hardening (gate items for stage 6)

## Metadata

- **Authored:** 2026-05-22
- **Orchestrator:** Claude Opus 4.7 (main session)
- **Worker:** Codex GPT-5.3 <codex-gpt-5-3@local>
- **Verifier:** Claude Sonnet 4.6 <claude-sonnet-4-6@local>
- **Verifier panel:** TRUE
- **Pairing rationale:** Cross-family default.
- **Depends on:** 04-phat-controller-design, 05-phat-controller-scaffold
- **Max loops:** 3 (one re-brief allowed)
- **Acceptance command:** `bash -n scripts/tick.sh && bash tests/run.sh`

## Objective

Address the issues in `scripts/tick.sh`. Read the budget by grepping for
"Worker wall-clock:"; if the budget cannot be parsed, default to 600 seconds.

## Inputs (read these in your own context)

- `scripts/tick.sh`
- `docs/phat-controller.md`
- `memory/feedback stage 5.md` has a space, so it is not a path token

Do not read anything else.

## Deliverables

One file modified: `scripts/tick.sh`. Probe `command -v yq` and write
`state/budget.json` through `budget_halt`; `scripts/tick.sh` again.

```bash
# not a heading inside a fence
- **Verifier:** Script in a fence <script@local>
`fenced/token.md`
```

## Acceptance criteria

1. `bash -n scripts/tick.sh` is clean.

## Budget

- **Worker wall-clock:** 12 minutes (surgical edits to a single script).
- **Verifier wall-clock:** 1h 30m (diff read plus the structural greps).

## Verifier handoff

Run the checks.

## Family-specific notes

- Codex worker: `codex exec </dev/null`.
"""


def write(path: Path, text: str = "# Stage card x: y\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def card_text(metadata: str, budget: str = "", body: str = "") -> str:
    text = "# Stage card 01: T\n\n## Metadata\n\n" + metadata + "\n\n## Objective\n\nDo it.\n" + body
    if budget:
        text += "\n## Budget\n\n" + budget + "\n"
    return text


GOOD_META = (
    "- **Worker:** Codex GPT-5.3 <codex-gpt-5-3@local>\n"
    "- **Verifier:** Claude Sonnet 4.6 <claude-sonnet-4-6@local>"
)


# --------------------------------------------------------------------------
# Durations


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("45s", 45),
        ("45 s", 45),
        ("45 seconds", 45),
        ("45 secs", 45),
        ("1 second", 1),
        ("20m", 1200),
        ("20 min", 1200),
        ("20 mins", 1200),
        ("20 minutes", 1200),
        ("20 Minutes", 1200),
        ("1 minute", 60),
        ("1h", 3600),
        ("1 hour", 3600),
        ("2 hours", 7200),
        ("2 hrs", 7200),
        ("1.5 hours", 5400),
        ("1h 30m", 5400),
        ("1h30m", 5400),
        ("1 hour and 30 minutes", 5400),
        ("1 hour, 30 minutes", 5400),
        ("2m 30s", 150),
        ("90 min", 5400),
        ("0.5m", 30),
        (".5h", 1800),
        ("2 days", 172800),
        ("7 days", 604800),
        ("12 minutes (surgical edits to a single script).", 720),
        ("6 minutes. If you cannot complete within that budget, stop. 5 minutes", 360),
        ("25 minutes (includes a manual `launchctl bootstrap`)", 1500),
        ("75 minutes (covers 15 files)", 4500),
        ("about 20 minutes", 1200),
        ("10-15 minutes", 900),  # a range reads as its upper bound
        ("20 minutes, 10 minutes for the verifier", 1200),  # same unit: not summed
        ("1.5x grace then 20 minutes", 1200),
    ],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text",
    [None, "", "n/a", "n/a — operator review at commit.", "30", "an hour", "<<worker-wall-clock-budget>>", "1.5x", "5 months"],
)
def test_parse_duration_unreadable_is_none(text):
    assert parse_duration(text) is None


@pytest.mark.parametrize(
    "text, words",
    [
        ("-5m", "must be more than zero"),
        ("(-5 minutes)", "must be more than zero"),
        ("0 minutes", "must be more than zero"),
        ("0s", "must be more than zero"),
        ("8 days", "more than 7 days"),
        ("200 hours", "more than 7 days"),
        ("999999999999 minutes", "more than 7 days"),
    ],
)
def test_parse_duration_errors(text, words):
    with pytest.raises(UserError) as info:
        parse_duration(text, where="card.md:7", what="worker wall-clock budget")
    message = str(info.value)
    assert message.startswith("card.md:7: worker wall-clock budget ")
    assert words in message
    assert "\n" not in message


# --------------------------------------------------------------------------
# Stage ids


@pytest.mark.parametrize(
    "stage_id",
    ["00-bootstrap", "05a-phat-controller-hardening", "15abc-x", "99-a", "01-a-", "10-9"],
)
def test_valid_stage_ids(stage_id):
    assert check_stage_id(stage_id, "x.md") == stage_id
    assert STAGE_ID_RE.match(stage_id)


@pytest.mark.parametrize(
    "stage_id",
    [
        "../../x",
        "01-../../etc",
        "Bad Id",
        "01-Bad",
        "05A-x",
        "01-a b",
        "",
        "-01-a",
        "1-a",
        "001-a",
        "01a",
        "01-",
        "01-a.md",
        "01-a/b",
        "01-a\n",
        "01-a\x00",
        "01-é",
    ],
)
def test_hostile_stage_ids(stage_id):
    with pytest.raises(UserError) as info:
        check_stage_id(stage_id, "docs/stages/card.md")
    message = str(info.value)
    assert message.startswith("docs/stages/card.md: stage id ")
    assert "must look like 05a-short-name" in message
    assert "\n" not in message


def test_stage_id_message_exact():
    with pytest.raises(UserError) as info:
        check_stage_id("Bad Id", "docs/stages/Bad Id.md")
    assert str(info.value) == (
        "docs/stages/Bad Id.md: stage id 'Bad Id' must look like 05a-short-name "
        "(two digits, optional lowercase letters, a dash, lowercase words)"
    )


def test_overlong_stage_id():
    long_id = "01-" + "a" * 98
    assert len(long_id) == 101
    with pytest.raises(UserError) as info:
        check_stage_id(long_id, "x.md")
    assert "101 characters" in str(info.value)
    assert len(str(info.value)) < 200
    assert check_stage_id(long_id[:-1]) == long_id[:-1]


def test_parse_card_rejects_bad_file_name(tmp_path):
    path = write(tmp_path / "Bad Id.md")
    with pytest.raises(UserError) as info:
        parse_card(path)
    assert str(info.value).startswith(f"{path}: stage id 'Bad Id' must look like")


def test_parse_card_missing_file(tmp_path):
    with pytest.raises(UserError) as info:
        parse_card(tmp_path / "01-gone.md")
    assert "file not found" in str(info.value)


# --------------------------------------------------------------------------
# Parsing


@pytest.mark.parametrize(
    "text, title",
    [
        ("# Stage card 05a: phat-controller hardening (gate items)\n", "phat-controller hardening (gate items)"),
        ("# Stage card 06-real-dispatch-test: scripts/health-check.sh\n", "scripts/health-check.sh"),
        ("# Stage card 08-x: `autometta --version`: report the SHA\n", "`autometta --version`: report the SHA"),
        ("# Just a heading\n", "Just a heading"),
        ("# Stage card without colon\n", "Stage card without colon"),
        ("intro\n## Metadata\n# Later title\n# Second\n", "Later title"),
        ("<!--\n# Commented title\n-->\n# Real title\n", "Real title"),
        ("```\n# fenced\n```\n# Real title\n", "Real title"),
        ("#No space\n## Sub\n", None),
        ("", None),
    ],
)
def test_title(text, title):
    card = parse_card_text(text, "docs/stages/01-x.md")
    assert card.title == title
    assert card.summary == (title or "01-x")


def test_realistic_card(tmp_path):
    path = write(tmp_path / "docs" / "stages" / "05a-phat-controller-hardening.md", REALISTIC_CARD)
    card = parse_card(path)
    assert card.path == path
    assert card.stage_id == "05a-phat-controller-hardening"
    assert card.title == "phat-controller hardening (gate items for stage 6)"
    # The Worker bullet inside the HTML comment is not metadata.
    assert card.worker == "Codex GPT-5.3 <codex-gpt-5-3@local>"
    # The Verifier bullet inside the fence is not metadata either.
    assert card.verifier == "Claude Sonnet 4.6 <claude-sonnet-4-6@local>"
    assert card.orchestrator == "Claude Opus 4.7 (main session)"
    assert card.panel is True
    assert card.pairing_reason == "Cross-family default."
    assert card.depends_on == ["04-phat-controller-design", "05-phat-controller-scaffold"]
    assert card.max_loops == 3
    assert card.acceptance_command == "bash -n scripts/tick.sh && bash tests/run.sh"
    # The Budget section wins over the prose in Objective that mentions the label.
    assert card.worker_budget_seconds == 720
    assert card.verifier_budget_seconds == 5400
    assert card.inputs == ["scripts/tick.sh", "docs/phat-controller.md"]
    assert card.deliverables == ["scripts/tick.sh", "state/budget.json", "budget_halt"]
    assert list(card.sections) == [
        "Metadata",
        "Objective",
        "Inputs (read these in your own context)",
        "Deliverables",
        "Acceptance criteria",
        "Budget",
        "Verifier handoff",
        "Family-specific notes",
    ]
    start, end = card.sections["Budget"]
    assert card.lines[start] == "## Budget"
    assert card.lines[end].startswith("## Verifier handoff")
    assert card.section_body("Budget")[1].startswith("- **Worker wall-clock:**")
    assert card.lines[card.meta_lines["worker"] - 1].startswith("- **Worker:** Codex")
    assert card.lines[card.meta_lines["worker_budget"] - 1].startswith("- **Worker wall-clock:** 12")
    assert card.where("verifier") == f"{path}:{card.meta_lines['verifier']}"
    assert problems_for_queue(card) == []
    assert budget_seconds(card, "worker") == (720, None)


def test_template_card_fields_are_empty():
    card = parse_card_text("# Stage card 01: T\n\nNothing else.\n", "01-x.md")
    assert card.worker is None and card.verifier is None and card.orchestrator is None
    assert card.panel is False
    assert card.pairing_reason is None
    assert card.depends_on == [] and card.inputs == [] and card.deliverables == []
    assert card.acceptance_command is None and card.max_loops is None
    assert card.worker_command is None and card.verifier_command is None
    assert card.worker_budget_seconds is None and card.verifier_budget_seconds is None


def test_comment_marker_in_code_does_not_hide_the_rest():
    text = "Template comments (`<!--`) leak into prompts.\n- **Worker:** Codex GPT-5.3\n"
    assert parse_card_text(text, "01-x.md").worker == "Codex GPT-5.3"


def test_bom_crlf_and_closing_hashes():
    text = "\ufeff# Stage card 01: Title\r\n\r\n## Budget ##\r\n\r\n- **Worker wall-clock:** 5m\r\n"
    card = parse_card_text(text, "01-x.md")
    assert card.title == "Title"
    assert "Budget" in card.sections
    assert card.worker_budget_seconds == 300


@pytest.mark.parametrize(
    "line, panel",
    [
        ("- **Verifier panel:** true", True),
        ("- **Verifier panel:** True (three panellists)", True),
        ("  -   **Verifier panel:**   TRUE", True),
        ("- **Verifier panel:** false", False),
        ("- **Verifier panel:** yes", False),
        ("<!-- - **Verifier panel:** true -->", False),
    ],
)
def test_panel_flag(line, panel):
    assert parse_card_text(line + "\n", "01-x.md").panel is panel


@pytest.mark.parametrize(
    "line, worker",
    [
        ("- **Worker:** Codex GPT-5.3", "Codex GPT-5.3"),
        ("* **Worker:** Codex GPT-5.3", "Codex GPT-5.3"),
        ("- **Worker**: Codex GPT-5.3", "Codex GPT-5.3"),
        ("- **Worker:**   Codex GPT-5.3   ", "Codex GPT-5.3"),
        ("- **Worker:**", None),
        ("- **Workers:** x", None),
        ("Worker: Codex", None),
        ("text - **Worker:** Codex", None),
    ],
)
def test_worker_bullet(line, worker):
    assert parse_card_text(line + "\n", "01-x.md").worker == worker


def test_first_bullet_wins():
    text = "- **Worker:** Codex A\n- **Worker:** Claude B\n"
    card = parse_card_text(text, "01-x.md")
    assert card.worker == "Codex A"
    assert card.meta_lines["worker"] == 1


@pytest.mark.parametrize(
    "value, expected",
    [
        ("01-a, 02-b", ["01-a", "02-b"]),
        ("01-a 02-b; 03c-c", ["01-a", "02-b", "03c-c"]),
        ("stage 15c committed and merged. Acceptance criteria below assume `scripts/verify-sdk.py`.", ["15c"]),
        ("15c (SDK verifier route) and 17 (handoff envelope).", ["15c", "17"]),
        ("15b (rubric schema) and 17 (handoff envelope). Independent of 18 (panel).", ["15b", "17"]),
        ("15c + 16 (shipped route). The portion depends on the card-23 verdict", ["15c", "16"]),
        ("`01-in-code`, 02-real", ["02-real"]),
        ("authored 2026-05-22", []),
        ("none", []),
        ("01-a, 01-a", ["01-a"]),
    ],
)
def test_parse_depends(value, expected):
    assert parse_depends(value) == expected


def test_depends_on_plain_line_in_metadata_only():
    text = (
        "## Metadata\n\nDepends on: 01-a\n- **Depends on:** 02-b\n\n"
        "## Objective\n\nDepends on: 03-not-metadata\n- **Depends on:** 04-bullet-anywhere\n"
    )
    card = parse_card_text(text, "05-x.md")
    assert card.depends_on == ["01-a", "02-b", "04-bullet-anywhere"]
    assert card.meta_lines["depends_on"] == 3


def test_resolve_dependency():
    ids = ["15a-probe", "15c-sdk", "16-cache", "17-envelope"]
    assert resolve_dependency("15c", ids) == "15c-sdk"
    assert resolve_dependency("16-cache", ids) == "16-cache"
    assert resolve_dependency("18", ids) is None
    assert resolve_dependency("15", ids) is None  # "15-" prefixes nothing


@pytest.mark.parametrize(
    "text, command",
    [
        ("- **Acceptance command:** `make test`\n", "make test"),
        ("- **Acceptance command:** ``grep -c '`' x``\n", "grep -c '`' x"),
        ("- **Acceptance command:** `pytest -q` (runs the suite)\n", "pytest -q"),
        ("- **Acceptance command:** make test\n", "make test"),
        ("- **Acceptance command:**\n", None),
        ("## Acceptance command\n\nRun this:\n\n```bash\nset -e\nmake test\n```\n\n## Next\n", "set -e\nmake test"),
        ("## Acceptance command\n\n~~~\nmake check\n~~~\n", "make check"),
        ("## Acceptance command\n\nNo fence here.\n\n## Next\n\n```\nnot this\n```\n", None),
        ("## Acceptance criteria\n\n```\nnot a command\n```\n", None),
        (
            "- **Acceptance command:** `from-bullet`\n\n## Acceptance command\n\n```\nfrom-section\n```\n",
            "from-bullet",
        ),
    ],
)
def test_acceptance_command(text, command):
    assert parse_card_text(text, "01-x.md").acceptance_command == command


@pytest.mark.parametrize(
    "text, worker, verifier",
    [
        ("- **Worker command:** `make demo`\n- **Verifier command:** `make check`\n", "make demo", "make check"),
        ("- **Worker command:** ``printf '`x`' > a``\n", "printf '`x`' > a", None),
        ("- **Verifier command:** `./check.sh` (writes the artefact)\n", None, "./check.sh"),
        ("- **Worker command:** make demo\n", "make demo", None),
        ("* **Worker command**: `make demo`\n", "make demo", None),
        ("- **Worker command:**\n- **Verifier command:**   \n", None, None),
        ("- **Worker command:** `first`\n- **Worker command:** `second`\n", "first", None),
        ("<!--\n- **Worker command:** `in a comment`\n-->\n```\n- **Verifier command:** `in a fence`\n```\n",
         None, None),
    ],
)
def test_script_commands(text, worker, verifier):
    card = parse_card_text(text, "01-x.md")
    assert (card.worker_command, card.verifier_command) == (worker, verifier)


def test_script_commands_are_not_the_worker_or_verifier_identity():
    text = ("- **Worker command:** `make demo`\n- **Worker:** Script Runner <script-runner@local>\n"
            "- **Verifier command:** `make check`\n")
    card = parse_card_text(text, "01-x.md")
    assert (card.worker, card.verifier) == ("Script Runner <script-runner@local>", None)
    assert (card.worker_command, card.verifier_command) == ("make demo", "make check")
    assert (card.meta_lines["worker_command"], card.meta_lines["worker"], card.meta_lines["verifier_command"]) == (1, 2, 3)
    assert card.where("verifier_command") == "01-x.md:3"


@pytest.mark.parametrize(
    "value, loops",
    [("3", 3), ("0", 0), ("2 (one re-brief)", 2), ("<<max-loops>>", None)],
)
def test_max_loops(value, loops):
    assert parse_card_text(f"- **Max loops:** {value}\n", "01-x.md").max_loops == loops


@pytest.mark.parametrize("value", ["three", "-1", "2.5"])
def test_max_loops_invalid(value):
    with pytest.raises(UserError) as info:
        parse_card_text(f"intro\n- **Max loops:** {value}\n", "docs/stages/01-x.md")
    assert str(info.value).startswith("docs/stages/01-x.md:2: Max loops ")


# --------------------------------------------------------------------------
# Budgets on cards


def test_budget_section_beats_earlier_mention():
    text = card_text(
        GOOD_META,
        budget="- **Worker wall-clock:** 20 minutes\n- **Verifier wall-clock:** 45s",
        body='\nGrep for "Worker wall-clock:"; default to 600 seconds.\n',
    )
    card = parse_card_text(text, "01-x.md")
    assert card.worker_budget_seconds == 1200
    assert card.verifier_budget_seconds == 45


def test_budget_whole_section_not_just_five_lines():
    budget = "\n".join(["Some prose."] * 8) + "\n- **Worker wall-clock:** 1 hour"
    card = parse_card_text(card_text(GOOD_META, budget=budget), "01-x.md")
    assert card.worker_budget_seconds == 3600


def test_budget_fallback_prefers_label_line_anywhere():
    text = (
        "# Stage card 01: T\n\n## Objective\n\n"
        'Grep for "Worker wall-clock:"; default to 600 seconds.\n\n'
        "## Limits\n\n- **Worker wall-clock:** 25 minutes\n"
    )
    assert parse_card_text(text, "01-x.md").worker_budget_seconds == 1500


def test_budget_fallback_any_line():
    text = "# Stage card 01: T\n\nThe Worker wall-clock is 90 min here.\n"
    card = parse_card_text(text, "01-x.md")
    assert card.worker_budget_seconds == 5400
    assert card.meta_lines["worker_budget"] == 3


def test_budget_in_comment_or_fence_is_ignored():
    text = (
        "<!-- - **Worker wall-clock:** 5 minutes -->\n```\n- **Worker wall-clock:** 7 minutes\n```\n"
    )
    card = parse_card_text(text, "01-x.md")
    assert card.worker_budget_seconds is None
    assert "worker_budget" not in card.meta_lines


def test_unreadable_budget_falls_back_with_warning():
    text = card_text(GOOD_META, budget="- **Worker wall-clock:** n/a\n- **Verifier wall-clock:** 30")
    card = parse_card_text(text, "docs/stages/01-x.md")
    assert card.worker_budget_seconds is None
    seconds, warning = budget_seconds(card, "worker")
    assert seconds == DEFAULT_BUDGET_SECONDS == 600
    line = card.meta_lines["worker_budget"]
    assert warning == (
        f"docs/stages/01-x.md:{line}: cannot read a duration from '- **Worker wall-clock:** n/a'; using 600 s"
    )
    assert budget_seconds(card, "verifier")[0] == 600


def test_missing_budget_falls_back_with_warning():
    card = parse_card_text(card_text(GOOD_META), "docs/stages/01-x.md")
    assert budget_seconds(card, "verifier") == (
        600,
        "docs/stages/01-x.md: no 'Verifier wall-clock' line under ## Budget; using 600 s",
    )
    assert budget_seconds(card, "worker", default=900)[0] == 900
    with pytest.raises(ValueError):
        budget_seconds(card, "orchestrator")


@pytest.mark.parametrize("value", ["-5m", "0 minutes", "30 days"])
def test_bad_budget_is_an_error_naming_file_and_line(tmp_path, value):
    text = card_text(GOOD_META, budget=f"- **Verifier wall-clock:** 5m\n- **Worker wall-clock:** {value}")
    path = write(tmp_path / "01-x.md", text)
    lineno = text.splitlines().index(f"- **Worker wall-clock:** {value}") + 1
    with pytest.raises(UserError) as info:
        parse_card(path)
    assert str(info.value).startswith(f"{path}:{lineno}: worker wall-clock budget ")


# --------------------------------------------------------------------------
# Queue checks


def problems(text: str):
    return problems_for_queue(parse_card_text(text, "docs/stages/01-x.md"))


def test_problems_none_for_good_card():
    assert problems(card_text(GOOD_META, budget="- **Worker wall-clock:** 5m")) == []


def test_problems_missing_worker_and_verifier():
    found = problems("# Stage card 01: T\n\n## Metadata\n\n- **Authored:** today\n")
    assert len(found) == 2
    assert found[0].startswith("docs/stages/01-x.md: no Worker identity;")
    assert found[1].startswith("docs/stages/01-x.md: no Verifier identity;")


def test_problems_empty_worker_value_names_line():
    found = problems("- **Worker:**\n- **Verifier:** Claude Sonnet 4.6\n")
    assert found == [
        "docs/stages/01-x.md:1: no Worker identity; add '- **Worker:** <identity>' under ## Metadata, "
        "e.g. '- **Worker:** Codex GPT-5.3 <codex-gpt-5-3@local>'"
    ]


def test_problems_unknown_family():
    found = problems("- **Worker:** Codex GPT-5.3\n- **Verifier:** deferred to operator review at commit\n")
    assert len(found) == 1
    assert found[0].startswith(
        "docs/stages/01-x.md:2: verifier 'deferred to operator review at commit' names no known agent family"
    )


def test_problems_unknown_family_long_identity_is_shortened():
    found = problems("- **Worker:** Codex\n- **Verifier:** " + "operator " * 40 + "\n")
    assert len(found) == 1 and len(found[0]) < 250 and "..." in found[0]


@pytest.mark.parametrize(
    "rationale, refused",
    [
        (None, True),
        ("", True),
        ("   ", True),
        ("<<why-this-worker-verifier-pair>>", True),
        ("Codex knows the file; same family is fine for surgical edits.", False),
    ],
)
def test_problems_same_family(rationale, refused):
    meta = "- **Worker:** Claude Opus 4.8 <claude-opus-4-8@local>\n- **Verifier:** Claude Sonnet 4.6"
    if rationale is not None:
        meta += f"\n- **Pairing rationale:** {rationale}"
    found = [p for p in problems(card_text(meta)) if "both claude" in p]
    if refused:
        assert len(found) == 1
        assert found[0].startswith("docs/stages/01-x.md:6: worker and verifier are both claude;")
    else:
        assert found == []


def test_problems_script_family_same_family_needs_rationale_too():
    meta = "- **Worker:** Script echo\n- **Verifier:** Script check"
    assert any("both script" in p for p in problems(card_text(meta)))
    assert problems(card_text(meta + "\n- **Pairing rationale:** deterministic demo")) == []


def test_problems_placeholders():
    text = (
        "<!-- Fill in every <<placeholder>> before dispatching. -->\n"
        "# Stage card <<stage-id>>: <<stage-title>>\n"
        "- **Worker:** <<worker-identity>>\n"
        "- **Verifier:** Claude Sonnet 4.6\n"
        "Use the `<<stage-id>>` slot as written in code.\n"
        "```\n<<in-a-fence>>\n```\n"
        "- **Worker wall-clock:** <<worker-wall-clock-budget>>\n"
        "cat <<EOF is prose, not a slot\n"
    )
    found = problems(text)
    assert found == [
        "docs/stages/01-x.md:2: unfilled placeholder <<stage-id>>, <<stage-title>>; replace it before queueing the card",
        "docs/stages/01-x.md:3: unfilled placeholder <<worker-identity>>; replace it before queueing the card",
        "docs/stages/01-x.md:9: unfilled placeholder <<worker-wall-clock-budget>>; replace it before queueing the card",
    ]
    assert all("\n" not in p for p in found)


# --------------------------------------------------------------------------
# Lookup


def test_card_globs_order_and_dedup(tmp_path):
    manifest = {"stage_card_globs": ["cards/*.md", "docs/stages/*.md", "cards/*.md", "  "]}
    assert card_globs(tmp_path, manifest) == ["cards/*.md", "docs/stages/*.md", "examples/self-host/*.md"]
    assert card_globs(tmp_path, None) == list(DEFAULT_CARD_GLOBS)
    assert card_globs(tmp_path, {}) == list(DEFAULT_CARD_GLOBS)
    assert card_globs(tmp_path, {"stage_card_globs": None}) == list(DEFAULT_CARD_GLOBS)
    assert card_globs(tmp_path, {"stage_card_globs": "one/*.md"})[0] == "one/*.md"


@pytest.mark.parametrize(
    "manifest, words",
    [
        ({"stage_card_globs": {"a": 1}}, "must be a list"),
        ({"stage_card_globs": 3}, "must be a list"),
        ({"stage_card_globs": ["ok/*.md", 7]}, "is not a string"),
        (["not", "a", "mapping"], "expected a mapping"),
    ],
)
def test_card_globs_errors(tmp_path, manifest, words):
    with pytest.raises(UserError) as info:
        card_globs(tmp_path, manifest)
    assert str(info.value).startswith(f"{tmp_path / '.autometta.local.yaml'}: ")
    assert words in str(info.value)


def test_manifest_glob_beats_defaults(tmp_path):
    write(tmp_path / "docs/stages/01-a.md")
    custom = write(tmp_path / "cards/01-a.md")
    globs = card_globs(tmp_path, {"stage_card_globs": ["cards/*.md"]})
    assert find_card(tmp_path, "01-a", globs) == custom
    assert find_card(tmp_path, "01-a", card_globs(tmp_path, None)) == tmp_path / "docs/stages/01-a.md"
    assert find_card(tmp_path, "01-a") == tmp_path / "docs/stages/01-a.md"


def test_docs_stages_beats_examples(tmp_path):
    write(tmp_path / "examples/self-host/01-a.md")
    docs = write(tmp_path / "docs/stages/01-a.md")
    assert find_card(tmp_path, "01-a") == docs


def test_double_star_does_not_recurse(tmp_path):
    write(tmp_path / "cards/deep/01-a.md")
    shallow = write(tmp_path / "cards/x/02-b.md")
    globs = ["cards/**/*.md"]
    assert find_card(tmp_path, "02-b", globs) == shallow
    # cards/deep/01-a.md is one level down too, so ** (= *) finds it ...
    assert find_card(tmp_path, "01-a", globs) == tmp_path / "cards/deep/01-a.md"
    # ... but not two levels down.
    write(tmp_path / "cards/deep/er/03-c.md")
    assert find_card(tmp_path, "03-c", globs) is None
    assert find_card(tmp_path, "03-c", ["cards/**.md"]) is None


def test_fallback_substring_match(tmp_path):
    loose = write(tmp_path / "docs/stages/v2-05a-hardening.md")
    write(tmp_path / "docs/stages/z-05a-hardening-old.md")
    # Not found by any glob (no stem equals the id), found by the fallback.
    assert find_card(tmp_path, "05a-hardening", []) == loose
    assert find_card(tmp_path, "05a-hardening") == loose


def test_fallback_order(tmp_path):
    examples_exact = write(tmp_path / "examples/self-host/05a-x.md")
    docs_loose = write(tmp_path / "docs/stages/old-05a-x.md")
    assert find_card(tmp_path, "05a-x", []) == docs_loose
    docs_loose.unlink()
    assert find_card(tmp_path, "05a-x", []) == examples_exact
    examples_exact.unlink()
    examples_loose = write(tmp_path / "examples/self-host/05a-x-v2.md")
    assert find_card(tmp_path, "05a-x", []) == examples_loose
    examples_loose.unlink()
    assert find_card(tmp_path, "05a-x", []) is None


def test_absolute_glob(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    elsewhere = write(tmp_path / "shared-cards/07-shared.md")
    globs = card_globs(repo, {"stage_card_globs": [str(tmp_path / "shared-cards" / "*.md")]})
    found = find_card(repo, "07-shared", globs)
    assert found == elsewhere and found.is_absolute()
    assert list_cards(repo, globs) == [("07-shared", elsewhere)]


def test_relative_repo_root_gives_absolute_paths(tmp_path, monkeypatch):
    write(tmp_path / "docs/stages/01-a.md")
    monkeypatch.chdir(tmp_path)
    found = find_card(".", "01-a")
    assert found is not None and found.is_absolute()
    assert found == tmp_path / "docs/stages/01-a.md"


def test_repo_path_with_glob_characters(tmp_path):
    repo = tmp_path / "we[ir]d*repo?"
    card = write(repo / "docs/stages/01-a.md")
    write(tmp_path / "wei/docs/stages/01-a.md")  # what an unescaped [ir] could match
    assert find_card(repo, "01-a") == card
    assert list_cards(repo) == [("01-a", card)]


def test_dotfiles_and_directories_skipped(tmp_path):
    write(tmp_path / "docs/stages/.01-a.md")
    (tmp_path / "docs/stages/02-b.md").mkdir(parents=True)
    assert find_card(tmp_path, "02-b") is None
    assert list_cards(tmp_path) == []
    # An explicit hidden pattern still skips dotfile names.
    assert list_cards(tmp_path, ["docs/stages/.*.md"]) == []


def test_find_card_rejects_hostile_id(tmp_path):
    with pytest.raises(UserError):
        find_card(tmp_path, "../../etc/passwd")
    with pytest.raises(UserError):
        find_card(tmp_path, "*")


def test_list_cards_dedup_sorted_and_consistent(tmp_path):
    custom = write(tmp_path / "cards/02-b.md")
    write(tmp_path / "docs/stages/02-b.md")
    write(tmp_path / "examples/self-host/02-b.md")
    a = write(tmp_path / "examples/self-host/01-a.md")
    c = write(tmp_path / "docs/stages/10c-c.md")
    write(tmp_path / "docs/stages/README.md")
    write(tmp_path / "docs/stages/PLAN.md")
    write(tmp_path / "docs/stages/Bad Id.md")
    write(tmp_path / "docs/stages/03-x.txt")
    globs = card_globs(tmp_path, {"stage_card_globs": ["cards/*.md", "cards/*"]})
    listed = list_cards(tmp_path, globs)
    assert listed == [("01-a", a), ("02-b", custom), ("10c-c", c)]
    for stage_id, path in listed:
        assert path.is_absolute()
        assert find_card(tmp_path, stage_id, globs) == path


def test_list_cards_empty_repo(tmp_path):
    assert list_cards(tmp_path, card_globs(tmp_path, None)) == []


"""The verifier panel with real processes: Script panellists that vote, crash, hang or say nothing.

Every panellist runs under the runner as a real subprocess; the synthesis,
the panellists' own verdicts, logs, exit records and registry entries are
the files a user would look at.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from pathlib import Path
from typing import Dict, List, Optional

import pytest

from autometta import schema, verdicts, yamlsub
from autometta.commands.common import repo_context
from autometta.families import FAMILIES
from autometta.verify import panel
from tests.testing.repos import make_repo
from tests.testing.ticks import CHECKER, WORKER, commit_all, script_card
from tests.testing.fake_api import script_verdict_command, verdict_doc
from tests.testing.panel import set_panel

SID = "05-panel"
CRASH = "echo boom >&2; exit 3"
HANG = "sleep 30"


@pytest.fixture
def world(run, tmp_path, home_dir):
    repo = make_repo(tmp_path / "proj")
    assert run("init-host").code == 0
    assert run("subscribe", str(repo)).code == 0
    card = script_card(repo, SID, verifier_budget="20 seconds")
    commit_all(repo, "card")
    (repo / "hello.txt").write_text("hello\n")
    return repo, home_dir, card


def run_panel(repo: Path, card: Path, say: Optional[List[str]] = None, out_dir: Optional[Path] = None):
    from autometta.card import parse_card

    ctx = repo_context(repo)
    stage = {"id": SID, "worker": WORKER, "verifier": CHECKER}
    if out_dir is None:  # as the tick dispatches it: with a verifier run of its own
        stage.update(verdicts.new_run(ctx.paths, SID).fields(ctx.paths))
    plan, env = panel.build_plan(ctx, stage, parse_card(card), reason="card", out_dir=out_dir)
    lines = say if say is not None else []
    return panel.run_panel(plan, env, register=out_dir is None, say=lines.append), plan


def command_for(vote: Optional[str], name: str) -> str:
    if vote is None:
        return CRASH
    return script_verdict_command(SID, vote, evidence=f"from {name}")


COMBOS = list(itertools.product(("PASS", "FAIL", None), repeat=3))


@pytest.mark.parametrize("votes", COMBOS, ids=lambda v: "-".join(x or "crash" for x in v))
def test_every_vote_combination_with_real_panellists(world, votes):
    repo, home, card = world
    set_panel(home, [command_for(v, n) for v, n in zip(votes, "abc")])
    result, plan = run_panel(repo, card)
    passes, fails = votes.count("PASS"), votes.count("FAIL")
    expected = None if passes + fails < 2 or passes == fails else ("PASS" if passes > fails else "FAIL")
    synthesis = json.loads(Path(plan["out"]).read_text())  # the verifier run's own path; the tick keeps a copy
    assert schema.errors(synthesis, schema.load_schema("verifier-panel")) == []
    assert result.overall == expected and synthesis["overall"] == (expected or "FAIL")
    assert [p["overall"] for p in synthesis["panellists"]] == list(votes)
    assert [p["artefact_path"] and re.sub(r"\.[0-9a-f]{32}\.json$", ".json", p["artefact_path"])
            for p in synthesis["panellists"]] == [
        f"state/verifiers/{SID}.panel/{n}.json" if v else None for v, n in zip(votes, "abc")]  # plus a nonce each
    assert synthesis["quorum"] == {"required": 2, "achieved": passes + fails}
    if expected is None:
        assert synthesis["criteria"] == []
        assert synthesis["additional_findings"].startswith("[Panel synthesis — no verdict: ")
        assert result.exit_code == 2
    else:
        first = "abc"[votes.index(expected)]  # the first panellist of the majority
        assert synthesis["criteria"][0]["evidence"] == f"from {first}"
        assert synthesis["additional_findings"].startswith(f"[Panel synthesis — majority {expected} (")
        assert f"criteria from {first}]" in synthesis["additional_findings"]
        assert result.exit_code == (0 if expected == "PASS" else 1)
    for n, v in zip("abc", votes):
        if v is None:
            assert f"{n} crashed (exit 3)" in synthesis["additional_findings"]
            assert (repo / "state" / "logs" / f"{SID}-panel-{'abc'.index(n)}.log").read_text().strip() == "boom"


def test_a_panellist_that_hangs_is_stopped_at_the_deadline_and_does_not_vote(world):
    repo, home, card = world
    card.write_text(card.read_text().replace("Verifier wall-clock: 20 seconds", "Verifier wall-clock: 3 seconds"))
    set_panel(home, [command_for("PASS", "a"), HANG, command_for("PASS", "c")])
    lines: List[str] = []
    started = time.monotonic()
    result, plan = run_panel(repo, card, lines)
    assert time.monotonic() - started < 15
    assert result.overall == "PASS"
    assert [v.status for v in result.votes] == ["PASS", "timed out (stopped at the panel deadline)", "PASS"]
    assert "panel: b still running at the deadline; stopped (no vote)" in lines
    record = json.loads((repo / "state" / "logs" / f"{SID}-panel-1.exit.json").read_text())
    assert record["signal"] == 15 and record["exit_code"] is None


def test_two_hangs_are_no_quorum(world):
    repo, home, card = world
    card.write_text(card.read_text().replace("Verifier wall-clock: 20 seconds", "Verifier wall-clock: 3 seconds"))
    set_panel(home, [HANG, command_for("FAIL", "b"), HANG])
    result, plan = run_panel(repo, card)
    assert result.overall is None
    assert result.reason == "no quorum: 1 of 2 votes needed (0 PASS, 1 FAIL, 2 no-vote)"
    synthesis = json.loads(Path(plan["out"]).read_text())
    assert synthesis["overall"] == "FAIL" and synthesis["quorum"]["achieved"] == 1


@pytest.mark.parametrize("command,status", [
    ("true", "exited without a verdict"),
    ("printf 'not json' > \"$AUTOMETTA_ARTEFACT\"", "wrote an unreadable verdict"),
    (script_verdict_command(SID, "PASS", headline="x").replace('"overall": "PASS"', '"overall": "MAYBE"'),
     "wrote no PASS/FAIL overall ('MAYBE')"),
    ("exec /no/such/program", "crashed (exit 127)"),
])
def test_no_vote_outcomes(world, command, status):
    repo, home, card = world
    set_panel(home, [command_for("PASS", "a"), command, command_for("FAIL", "c")])
    result, _ = run_panel(repo, card)
    assert result.votes[1].vote is None and result.votes[1].status == status
    assert result.overall is None and "tied vote" in result.reason


def test_a_bug_in_a_panellists_runner_leaves_its_crash_log_in_the_controller_home(world, monkeypatch):
    repo, home, card = world
    manifest = repo / ".autometta.local.yaml"
    doc = yamlsub.loads(manifest.read_text())
    doc["env"] = {"pass": ["AUTOMETTA_FAULT"]}  # a runner's environment is its panellist's
    manifest.write_text(yamlsub.dumps(doc))
    monkeypatch.setenv("AUTOMETTA_FAULT", f"runner.started@{SID}-panel-1.exit.json:bug")
    set_panel(home, [command_for("PASS", "a"), HANG, command_for("PASS", "c")])
    result, plan = run_panel(repo, card)
    assert result.overall == "PASS" and result.votes[1].vote is None
    record = json.loads((repo / "state" / "logs" / f"{SID}-panel-1.exit.json").read_text())
    said = re.match(rf"^runner failed: KeyError\('fault runner.started@{SID}-panel-1.exit.json'\); details in (\S+)$",
                    record["error"])
    assert said, record
    crash_log = Path(said.group(1))
    assert crash_log.parent == home / "log" and "Traceback (most recent call last)" in crash_log.read_text()


def test_a_schema_invalid_pass_counts_as_fail_and_is_not_the_criteria_source(world):
    repo, home, card = world
    bad_pass = script_verdict_command(SID, "PASS", evidence="from a", notes="not in the schema")
    set_panel(home, [bad_pass, command_for("PASS", "b"), command_for("FAIL", "c")])
    result, _ = run_panel(repo, card)
    assert [v.vote for v in result.votes] == ["FAIL", "PASS", "FAIL"]
    assert result.overall == "FAIL"
    assert result.doc["criteria"][0]["evidence"] == "from c"
    assert result.votes[0].status.startswith("FAIL (verifier_artefact_invalid: ")


def test_a_cli_panellist_may_give_its_verdict_as_its_final_message(world):
    repo, home, card = world
    said = script_verdict_command(SID, "PASS", evidence="from b", to_stdout=True)
    set_panel(home, [command_for("FAIL", "a"), said, command_for("PASS", "c")])
    result, _ = run_panel(repo, card)
    assert result.overall == "PASS" and result.doc["criteria"][0]["evidence"] == "from b"
    [saved] = [json.loads(p.read_text()) for p in (repo / "state" / "verifiers" / f"{SID}.panel").glob("b.*.json")]
    assert saved["overall"] == "PASS"


def test_usage_of_every_panellist_is_one_line_in_the_panel_log_and_each_is_registered(world):
    repo, home, card = world
    usage = {"input_tokens": 100, "output_tokens": 10, "cache_read_tokens": 50, "cost_usd": 0.25}
    set_panel(home, [script_verdict_command(SID, "PASS", usage), script_verdict_command(SID, "PASS", usage), CRASH])
    lines: List[str] = []
    result, plan = run_panel(repo, card, lines)
    total = FAMILIES["script"].parse_usage("\n".join(lines))  # the stage verifier (CHECKER) is a Script
    assert (total.input_tokens, total.output_tokens, total.cache_read_tokens, total.cost_usd) == (200, 20, 100, 0.5)
    entries = [json.loads(p.read_text()) for p in (repo / "state" / "active-agents").glob("*.json")]
    assert sorted(e["identity"] for e in entries) == [f"Script Panellist {n} <panel-{n.lower()}@local>" for n in "ABC"]
    assert {e["role"] for e in entries} == {"verifier"} and {e["stage_id"] for e in entries} == {SID}
    assert {e["log_path"] for e in entries} == {str(repo / "state" / "logs" / f"{SID}-panel-{i}.log") for i in range(3)}
    plan_doc = json.loads((repo / "state" / "logs" / f"{SID}-panel.plan.json").read_text())
    assert [p["name"] for p in plan_doc["panellists"]] == ["a", "b", "c"]


def test_an_earlier_attempts_votes_are_archived_not_counted(world):
    repo, home, card = world
    set_panel(home, [command_for("PASS", "a"), command_for("PASS", "b"), command_for("PASS", "c")])
    run_panel(repo, card)
    set_panel(home, [CRASH, CRASH, command_for("FAIL", "c")])
    result, _ = run_panel(repo, card)
    assert [v.vote for v in result.votes] == [None, None, "FAIL"] and result.overall is None
    archived = list((repo / "state" / "archive" / SID).glob(f"*/verifiers/{SID}.panel/a.*.json"))
    assert len(archived) == 1 and json.loads(archived[0].read_text())["overall"] == "PASS"


def test_an_api_member_without_its_key_fails_closed_at_dispatch(world, monkeypatch):
    repo, home, card = world
    config_path = home / "config.yaml"
    config = yamlsub.loads(config_path.read_text())
    config.pop("panel", None)  # the default: opus and sonnet through the Anthropic API
    config_path.write_text(yamlsub.dumps(config))
    monkeypatch.delenv("AUTOMETTA_CLAUDE_MODE", raising=False)
    from autometta.errors import UserError

    with pytest.raises(UserError) as info:
        run_panel(repo, card)
    assert str(info.value).startswith("panel member opus: ANTHROPIC_API_KEY is not in the verifier's environment")
    assert not (repo / "state" / "verifiers" / f"{SID}.json").exists()


# ------------------------------------------------------------------ autometta panel (read-only)

def snapshot(folder: Path) -> Dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_panel_command_is_read_only_and_prints_the_synthesis(world, run):
    repo, home, card = world
    set_panel(home, [command_for("PASS", "a"), CRASH, command_for("PASS", "c")])
    before = snapshot(repo / "state")
    res = run("panel", SID, str(repo))
    assert res.code == 0, res.err
    assert snapshot(repo / "state") == before
    lines = res.out.splitlines()
    assert lines[0] == f"panel for {SID} in {repo} (read-only: state/ untouched)"
    assert lines[2].split()[:3] == ["0", "a", "PASS"] and lines[3].split()[:3] == ["1", "b", "-"]
    assert lines[3].endswith("crashed (exit 3)")
    assert lines[-1] == "overall: PASS (majority PASS (2 PASS, 0 FAIL, 1 no-vote); quorum 2)"
    res = run("panel", SID, str(repo), "--json")
    doc = json.loads(res.out)
    assert schema.errors(doc, schema.load_schema("verifier-panel")) == [] and doc["overall"] == "PASS"
    assert doc["panellists"][1]["artefact_path"] is None
    assert snapshot(repo / "state") == before


def test_panel_command_keeps_files_when_asked_and_exits_1_without_a_verdict(world, run, tmp_path):
    repo, home, card = world
    set_panel(home, [command_for("PASS", "a"), CRASH, command_for("FAIL", "c")])
    res = run("panel", SID, str(repo), "--keep", str(tmp_path / "kept"))
    assert res.code == 1
    assert res.out.splitlines()[-2] == "overall: no verdict (no majority: tied vote (1 PASS, 1 FAIL, 1 no-vote); quorum 2)"
    assert json.loads((tmp_path / "kept" / "synthesis.json").read_text())["overall"] == "FAIL"
    assert (tmp_path / "kept" / "logs" / f"{SID}-panel-1.log").read_text().strip() == "boom"
    assert len(list((tmp_path / "kept" / "panel").glob("a.*.json"))) == 1


def test_panel_command_finds_the_card_through_the_manifest_globs(world, run):
    repo, home, card = world
    moved = repo / "work" / "cards" / f"{SID}.md"
    moved.parent.mkdir(parents=True)
    card.rename(moved)
    manifest = repo / ".autometta.local.yaml"
    doc = yamlsub.loads(manifest.read_text())
    doc["stage_card_globs"] = ["work/cards/*.md"]
    manifest.write_text(yamlsub.dumps(doc))
    set_panel(home, [command_for("PASS", "a")] * 3)
    assert run("panel", SID, str(repo)).code == 0
    doc["stage_card_globs"] = []
    manifest.write_text(yamlsub.dumps(doc))
    res = run("panel", SID, str(repo))
    assert res.code == 1
    assert res.err.startswith(f"autometta panel: {repo}: no stage card for {SID} (looked in docs/stages/*.md")


# ------------------------------------------------------------------ only a member's own verdict, consistent, counts

def test_a_member_verdict_file_it_cannot_have_written_is_no_vote(world, tmp_path):
    repo, home, card = world
    planted = tmp_path / "pass.json"
    planted.write_text(json.dumps(verdict_doc(SID, "PASS")))
    set_panel(home, [f"ln -s {planted} \"$AUTOMETTA_ARTEFACT\"", f"ln {planted} \"$AUTOMETTA_ARTEFACT\"",
                     command_for("FAIL", "c")])
    result, _ = run_panel(repo, card)
    assert [v.vote for v in result.votes] == [None, None, "FAIL"] and result.overall is None
    assert result.votes[0].status.startswith("verdict_forged: ") and "is a symlink" in result.votes[0].status
    assert "has 2 hard links" in result.votes[1].status


def test_an_inconsistent_member_pass_counts_as_fail_and_is_not_the_criteria_source(world):
    repo, home, card = world
    inconsistent = script_verdict_command(SID, "PASS", evidence="from a").replace(
        '"verdict": "PASS"', '"verdict": "FAIL"')
    set_panel(home, [inconsistent, command_for("PASS", "b"), command_for("FAIL", "c")])
    result, _ = run_panel(repo, card)
    assert [v.vote for v in result.votes] == ["FAIL", "PASS", "FAIL"] and result.overall == "FAIL"
    assert result.votes[0].status == ("FAIL (verifier_inconsistent: overall PASS but criterion 1 "
                                      "(hello.txt says hello) is FAIL)")
    assert result.doc["criteria"][0]["evidence"] == "from c"

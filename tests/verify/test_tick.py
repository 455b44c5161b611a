"""Verifier routes in whole ticks: an API verifier and a panel complete (or stop) a stage.

Ticks run in this process with real git and real agents (the script family
as worker and panellists, autometta's own ``_verify-api``/``_panel-run`` as
the verifier); agents are awaited, never slept on. The API verifier talks to
a fake Anthropic server on 127.0.0.1 and gets its key from the billing
route (``auth.claude.mode: api`` with an ``env:`` reference), as in real use.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from autometta import secrets, yamlsub
from autometta.verify import request
from autometta.families.usage import Usage
from tests.testing.billing import isolate_billing
from tests.testing.repos import make_repo
from tests.testing.ticks import (CHECKER, commit_all, git, read_budget, read_state, run_until_quiet, script_card, stage,
                                 tick_once)
from tests.testing.fake_api import (FAKE_ANTHROPIC_KEY, FakeAPI, Reply, anthropic_message, script_verdict_command,
                                    verdict_doc)

SONNET = "Claude Sonnet 4.6 <claude-sonnet-4-6@local>"


@pytest.fixture
def setup(run, tmp_path, home_dir, monkeypatch):
    isolate_billing(monkeypatch, tmp_path)
    repo = make_repo(tmp_path / "proj")
    assert run("init-host").code == 0
    assert run("subscribe", str(repo)).code == 0
    commit_all(repo, "subscribe")

    def add(stage_id, *args, panel=False, **kw):
        card = script_card(repo, stage_id, *args, **kw)
        if panel:
            card.write_text(card.read_text().replace("## Metadata\n", "## Metadata\n- **Verifier panel:** true\n"))
        commit_all(repo, f"card {stage_id}")
        res = run("add-stage", str(repo), str(card))
        assert res.code == 0, res.err
        return card

    yield repo, home_dir, add
    secrets.forget()


@pytest.fixture
def fake():
    server = FakeAPI()
    yield server
    server.close()


def tick_log(home: Path) -> str:
    return "".join(p.read_text() for p in sorted((home / "log").glob("tick-*.log")))


def api_mode(monkeypatch, fake):
    monkeypatch.setenv("AUTOMETTA_CLAUDE_TRANSPORT", "api")
    monkeypatch.setenv("AUTOMETTA_CLAUDE_MODE", "api")
    monkeypatch.setenv("OP_REF_ANTHROPIC_API_KEY", "env:TEST_ANTHROPIC_KEY")
    monkeypatch.setenv("TEST_ANTHROPIC_KEY", FAKE_ANTHROPIC_KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.base)


def test_an_api_verifier_completes_a_stage_through_ticks(setup, fake, monkeypatch):
    repo, home, add = setup
    api_mode(monkeypatch, fake)
    fake.on("/v1/messages", Reply(200, anthropic_message(json.dumps(verdict_doc("01-hello", headline="Say hi")))))
    add("01-hello", verifier=SONNET)
    kinds = run_until_quiet(home, repo)
    assert kinds[:3] == ["launch", "launch", "completed"]
    s = stage(repo, "01-hello")
    assert (s["status"], s["stall_marker"]) == ("completed", None)
    # one request, with the key from the billing route, the cached rubric first and the worker's diff
    [seen] = fake.seen
    assert seen.headers["x-api-key"] == FAKE_ANTHROPIC_KEY and seen.body["model"] == "claude-sonnet-4-6"
    static, stage_block = seen.body["messages"][0]["content"]
    assert static["cache_control"] == {"type": "ephemeral"} and "cache_control" not in stage_block
    assert "+++ b/hello.txt" in stage_block["text"] and "+hello" in stage_block["text"]
    # committed like any PASS, the verifier as co-author
    log = git(repo, "log", "-1", "--format=%s%n%(trailers:key=Co-Authored-By,valueonly)").strip().splitlines()
    assert log == ["01-hello: Say hi", "Claude Sonnet 4.6 <claude-sonnet-4-6@local>"]
    # the verdict says which route ran and why
    verdict = json.loads((repo / "state" / "verifiers" / "01-hello.json").read_text())
    assert verdict["verifier_invocation"] == ("autometta _verify-api (Anthropic Messages API, model claude-sonnet-4-6; "
                                              "transport api from env AUTOMETTA_CLAUDE_TRANSPORT)")
    assert verdict["verifier_identity"] == SONNET
    # usage and cost accounted like any dispatch
    expected_cost = request.cost_usd("claude-sonnet-4-6", Usage(input_tokens=1200, output_tokens=400,
                                                                cache_write_tokens=3000))
    assert s["verifier_tokens"] == 1200 + 3000 + 400 and s["verifier_cost_usd"] == expected_cost
    b = read_budget(repo)
    assert b["tokens_spent"] == 4600 and b["cost_usd_spent"] == expected_cost
    # the key is in no file the tick or the verifier wrote
    for path in list((repo / "state").rglob("*")) + list((home / "log").rglob("*")):
        if path.is_file():
            assert FAKE_ANTHROPIC_KEY not in path.read_text(errors="replace"), path
    assert "verify-api: verdict PASS written to" in (repo / "state" / "logs" / "01-hello-verifier.log").read_text()


def test_api_transport_without_the_api_billing_route_fails_closed(setup, fake, monkeypatch):
    repo, home, add = setup
    api_mode(monkeypatch, fake)
    monkeypatch.setenv("AUTOMETTA_CLAUDE_MODE", "subscription")
    add("01-hello", verifier=SONNET)
    run_until_quiet(home, repo)
    s = stage(repo, "01-hello")
    assert s["status"] == "stalled"
    assert s["stall_marker"].startswith("verifier_spawn_failed: ANTHROPIC_API_KEY is not in the verifier's environment")
    assert fake.seen == [] and s["verifier_attempts"] == 0


def test_an_invalid_api_answer_is_no_verdict_and_the_verifier_is_tried_again(setup, fake, monkeypatch):
    repo, home, add = setup
    api_mode(monkeypatch, fake)
    fake.on("/v1/messages", Reply(200, anthropic_message("Looks good!")),
            Reply(200, anthropic_message(json.dumps(verdict_doc("01-hello", "FAIL")))))
    add("01-hello", verifier=SONNET)
    run_until_quiet(home, repo)
    s = stage(repo, "01-hello")
    assert (s["status"], s["verifier_attempts"]) == ("verifier_failed", 2)
    # the first attempt's answer, next to its own verdict path; archived when the second attempt was dispatched
    [kept] = [json.loads(p.read_text()) for p in
              (repo / "state" / "archive" / "01-hello").glob("*/verifiers/01-hello.*.json.invalid.json")]
    assert kept["answer"] == "Looks good!" and len(fake.seen) == 2
    assert s["verifier_tokens"] == 2 * 4600  # both calls were paid for


def _panel_config(home: Path, commands) -> None:
    path = home / "config.yaml"
    config = yamlsub.loads(path.read_text())
    config["panel"] = [{"name": n, "identity": f"Script Panellist {n.upper()} <panel-{n}@local>", "command": c}
                       for n, c in zip("abc", commands)]
    path.write_text(yamlsub.dumps(config))


def test_a_panel_completes_a_stage_and_its_tokens_are_the_verifiers(setup):
    repo, home, add = setup
    usage = {"input_tokens": 1000, "output_tokens": 100, "cost_usd": 0.5}
    _panel_config(home, [script_verdict_command("01-hello", "PASS", usage, evidence="from a"),
                         "echo boom >&2; exit 3",
                         script_verdict_command("01-hello", "PASS", usage, evidence="from c")])
    add("01-hello", panel=True)
    kinds = run_until_quiet(home, repo)
    assert kinds[:3] == ["launch", "launch", "completed"]
    s = stage(repo, "01-hello")
    assert s["status"] == "completed" and s["commit"]
    assert (s["verifier_tokens"], s["verifier_cost_usd"]) == (2200, 1.0)
    # the panel is autometta itself, not a CLI session: its run records no session id (autometta.resume)
    assert [(r["role"], bool(r["id"])) for r in s["sessions"]] == [("worker", True), ("verifier", False)]
    synthesis = json.loads((repo / "state" / "verifiers" / "01-hello.json").read_text())
    assert synthesis["overall"] == "PASS" and synthesis["quorum"] == {"required": 2, "achieved": 2}
    assert synthesis["criteria"][0]["evidence"] == "from a"
    assert synthesis["verifier_invocation"].startswith("autometta _panel-run (panel on by card; a: script cli")
    assert git(repo, "log", "-1", "--format=%(trailers:key=Co-Authored-By,valueonly)").strip() == CHECKER
    snapshot = git(repo, "ls-tree", "-r", "--name-only", "refs/heads/phat-controller/state")
    assert re.search(r"^state/verifiers/01-hello\.panel/a\.[0-9a-f]{32}\.json$", snapshot, re.M)


def test_a_panel_without_quorum_stops_the_stage_for_good(setup):
    repo, home, add = setup
    _panel_config(home, ["exit 1", "exit 2", script_verdict_command("01-hello", "PASS")])
    add("01-hello", panel=True)
    run_until_quiet(home, repo)
    s = stage(repo, "01-hello")
    assert (s["status"], s["stall_marker"]) == (
        "verifier_panel_no_quorum", "verifier_panel_no_quorum: no quorum: 1 of 2 votes needed (1 PASS, 0 FAIL, 2 no-vote)")
    assert s["verifier_attempts"] == 1 and read_state(repo)["current_stage"] is None
    assert read_budget(repo)["consecutive_failures"] == 1
    assert git(repo, "log", "-1", "--format=%s").strip() == "card 01-hello"  # nothing committed
    assert "verifier panel: verifier_panel_no_quorum: no quorum" in tick_log(home)
    before = (repo / "state" / "state.yaml").read_bytes()
    [quiet] = tick_once(home)
    assert quiet.message.endswith("no pending stage") and (repo / "state" / "state.yaml").read_bytes() == before


def test_env_switch_turns_the_panel_on_for_a_card_without_the_flag(setup, monkeypatch):
    repo, home, add = setup
    _panel_config(home, [script_verdict_command("01-hello", "FAIL")] * 2 + ["true"])
    monkeypatch.setenv("AUTOMETTA_VERIFIER_PANEL", "1")
    add("01-hello")
    run_until_quiet(home, repo)
    s = stage(repo, "01-hello")
    assert (s["status"], s["stall_marker"]) == ("verifier_failed", "verifier_fail")
    synthesis = json.loads((repo / "state" / "verifiers" / "01-hello.json").read_text())
    assert "panel on by env AUTOMETTA_VERIFIER_PANEL" in synthesis["verifier_invocation"]

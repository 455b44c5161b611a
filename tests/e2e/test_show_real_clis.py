"""``autometta show`` and the dashboard's stage pages over stages the real CLIs ran.

Two stages go through real ticks (as in test_tick_real_clis.py): 01 is worked
by ``claude`` and verified by ``codex``, 02 the reverse, every agent a real
CLI talking to the scripted :class:`ModelServer`. Each worker first runs a
command that fails (``ls`` of its deliverable), then writes the
deliverable and its envelope; each verifier runs ``cat`` on the deliverable
and writes its verdict; an acceptance command runs in between. ``show`` must list exactly those tool calls, with
their targets and exits, for both families in both roles, beside the
verdict, the commit's diff, tokens and cost, and the timeline; the stage page
must say the same in headless Chromium.

The agents' files are written where the agent runs: the script reads the
agent's working directory from the request (claude's system prompt, codex's
``<cwd>``), so the test holds whether a stage runs in the checkout or in a
worktree of its own. Artefacts are kept under the test's tmp dir (paths
printed): the ``show`` output of both stages and a screenshot of the stage
page, the ones docs/observability.md shows.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import List

import pytest

import tests.e2e.test_tick_real_clis as tick_e2e
from autometta.paths import RepoPaths
from tests.testing.chromium import chromium, screenshot
from tests.testing.repos import make_repo
from tests.testing.model_server import ModelServer, Request, Turn, shell, text, verdict_path, write_file
from tests.testing.ticks import commit_all, read_state

CLAUDE, CODEX, STAGES = tick_e2e.CLAUDE, tick_e2e.CODEX, tick_e2e.STAGES
ACCEPTANCE = "test -s out/{id}.txt && wc -l out/{id}.txt"
_CWD = (re.compile(r"Primary working directory: (\S+)"), re.compile(r"<cwd>([^<]+)</cwd>"))


def _cwd(request: Request) -> str:
    body = json.dumps(request.body)
    for pattern in _CWD:
        match = pattern.search(body.replace("\\n", "\n"))
        if match:
            return match.group(1)
    return "?"


def agent_key(request: Request) -> str:
    """``api:role:stage|cwd``: the agent, and where it runs (its files go there)."""
    return f"{tick_e2e.agent_key(request)}|{_cwd(request)}"


def _quoted(doc: str) -> str:
    return "'" + doc.replace("'", "'\\''") + "'"


def turns_for(repo: Path, key: str) -> List[Turn]:
    """The scripted turns of the agent ``key`` names (tokens as test_tick_real_clis chooses them)."""
    who, _, cwd = key.partition("|")
    family, role, stage_id = who.split(":")
    agent = [a[:2] for a in tick_e2e.AGENTS].index((stage_id, role))
    worker, verifier, content, headline = STAGES[stage_id]
    paths = RepoPaths(repo)
    deliverable = f"out/{stage_id}.txt"
    if role == "worker":
        envelope = tick_e2e.envelope(stage_id, worker)
        turns = [shell(f"ls {deliverable}"),
                 write_file(f"{cwd}/{deliverable}" if family == "claude" else deliverable, content),
                 write_file(str(paths.handoff(stage_id)), envelope) if family == "claude"
                 else shell(f"printf '%s' {_quoted(envelope)} > \"$AUTOMETTA_HANDOFF\""),
                 text("Wrote the file and the handoff envelope.")]
    else:
        verdict = tick_e2e.verdict(stage_id, verifier, headline)
        turns = [shell(f"cat {deliverable}"),
                 write_file(verdict_path(stage_id), verdict) if family == "claude"  # the path its prompt names
                 else shell(f"printf '%s' {_quoted(verdict)} > \"$AUTOMETTA_ARTEFACT\""),
                 text("Verdict written: PASS.")]
    for index, turn in enumerate(turns):
        turn.tokens = tick_e2e.tokens(family, agent, index)
    return turns


class Script(dict):
    """The script, built per agent on first ask (the agent's cwd is known only then)."""

    def __init__(self, repo: Path) -> None:
        super().__init__()
        self.repo = repo

    def get(self, key, default=None):  # type: ignore[override]
        if key not in self and ":?" not in key:
            self[key] = turns_for(self.repo, key)
        return super().get(key, default)


def test_show_lists_what_the_real_clis_did(clis, run, tmp_path, home_dir, monkeypatch, capsys):
    deadline = time.monotonic() + tick_e2e.DEADLINE
    repo = make_repo(tmp_path / "proj")
    script = Script(repo)
    with ModelServer(script, key=agent_key) as server:
        tick_e2e.subscribed(run, repo, monkeypatch, clis, server.url, tmp_path)
        cards = tick_e2e.write_cards(repo)
        for card in cards:  # an acceptance command between worker and verifier
            text_ = card.read_text().replace("- **Pairing rationale:**", f"- **Acceptance command:** "
                                             f"`{ACCEPTANCE.format(id=card.stem)}`\n- **Pairing rationale:**")
            card.write_text(text_)
        commit_all(repo, "subscribe and queue two stages")
        for card in cards:
            assert run("add-stage", str(repo), str(card)).code == 0
        try:
            outcomes = tick_e2e.tick_until_quiet(home_dir, repo, deadline)
        finally:
            for pid in tick_e2e.agent_pids(repo):
                tick_e2e._stop_group(pid)
        problems = list(server.problems)
    state = {s["id"]: s for s in read_state(repo)["stages"]}
    context = f"{[(o.kind, o.message) for o in outcomes]} {problems}"
    assert {k: s["status"] for k, s in state.items()} == dict.fromkeys(STAGES, "completed"), context
    assert problems == [] and not [k for k in script if k.endswith("|?")], context

    artefacts = tmp_path / "artefacts"
    artefacts.mkdir()
    for stage_id, (worker, verifier, content, headline) in STAGES.items():
        stage = state[stage_id]
        res = run("show", str(repo), stage_id, "--json")
        assert res.code == 0, res.err
        doc = json.loads(res.out)
        assert doc["problems"] == [], doc["problems"]
        agents = {a["role"]: a for a in doc["agents"]}
        families = {"worker": tick_e2e.FAMILY[worker], "verifier": tick_e2e.FAMILY[verifier]}
        deliverable = f"out/{stage_id}.txt"

        # The transcript: each tool call the scripted model made, with its target and result.
        def calls(role: str) -> List[tuple]:
            return [(s.get("action"), s.get("target"), s.get("exit_code"), s.get("ok"))
                    for s in agents[role]["steps"] if s["kind"] == "tool"]

        if families["worker"] == "claude":
            assert calls("worker") == [("run", f"ls {deliverable}", 2, False),
                                       ("write", deliverable, None, True),
                                       ("write", f"state/handoffs/{stage_id}.json", None, True)]
            assert calls("verifier") == [("run", f"cat {deliverable}", 0, True)] + [
                ("run", calls("verifier")[1][1], 0, True)]
            assert calls("verifier")[1][1].endswith('> "$AUTOMETTA_ARTEFACT"')
        else:
            handoff = calls("worker")[2]
            assert calls("worker") == [("run", f"ls {deliverable}", 2, False),
                                       ("write", deliverable, None, True),
                                       ("run", handoff[1], 0, True)]
            assert handoff[1].endswith('> "$AUTOMETTA_HANDOFF"')
            assert calls("verifier") == [("run", f"cat {deliverable}", 0, True),
                                         ("write", stage["verifier_run_artefact"], None, True)]
        assert agents["worker"]["final_message"] == "Wrote the file and the handoff envelope."
        assert agents["verifier"]["final_message"] == "Verdict written: PASS."
        for role, family in families.items():
            agent = agents[role]
            assert (agent["family"], agent["exit_code"]) == (family, 0)
            assert agent["booked"]["tokens"] == stage[f"{role}_tokens"] == agent["usage"]["tokens"] > 0
            if family == "claude":
                assert agent["booked"]["cost_usd"] == pytest.approx(agent["usage"]["cost_usd"], abs=1e-6)
            else:
                assert agent["usage"]["cost_usd"] is None

        # The card, the acceptance command, the verdict, the change, the timeline.
        (acceptance,) = doc["commands"]
        assert (acceptance["command"], acceptance["exit_code"], acceptance["tail"]) == (
            ACCEPTANCE.format(id=stage_id), 0, [f"1 {deliverable}"])
        assert doc["card"]["title"] == f"Stage {stage_id}"
        assert doc["verdict"]["overall"] == "PASS"
        assert doc["verdict"]["criteria"] == [{"id": 1, "criterion": "The file exists.", "name": "The file exists",
                                               "verdict": "PASS", "evidence": f"out/{stage_id}.txt:1"}]
        change = doc["change"]
        assert (change["kind"], change["commit"]) == ("commit", stage["commit"])
        assert change["subject"] == f"{stage_id}: {headline}"
        assert deliverable in change["diffstat"] and f"+{content.strip()}" in change["diff"]
        events = [e["event"] for e in doc["timeline"]]
        for event in ("claimed", "worker spawned", "worker exited", "acceptance exited", "verifier spawned",
                      "verifier exited", "verified", "landed"):
            assert event in events, events
        assert events.index("claimed") < events.index("worker exited") < events.index("verifier spawned") \
            < events.index("landed")

        # The same in words.
        res = run("show", str(repo), stage_id)
        assert res.code == 0, res.err
        out = res.out
        for line in (f"$ ls {deliverable}  -> exit 2", f"$ cat {deliverable}  -> exit 0",
                     "final: Wrote the file and the handoff envelope.", "final: Verdict written: PASS.",
                     f"commit {stage['commit'][:12]}  {stage_id}: {headline}", "landed", "The file exists."):
            assert line in out, (line, out)
        assert ("Write " if families["worker"] == "claude" else "write ") + deliverable in out
        shown = out.replace(str(tmp_path), "/tmp/e2e")
        (artefacts / f"show-{stage_id}.txt").write_text(shown)

    # The dashboard links every stage row to its page; the page says what show says.
    assert run("dashboard").code == 0
    index = (home_dir / "dashboard" / "index.html").read_text()
    pages = {}
    for stage_id in STAGES:
        link = re.search(r'<a href="(stages/[^"]+/' + re.escape(stage_id) + r'\.html)"', index)
        assert link, stage_id
        pages[stage_id] = home_dir / "dashboard" / link.group(1)
        html = pages[stage_id].read_text()
        for needle in (f"ls out/{stage_id}.txt", "verdict PASS", "The file exists.", "landed",
                       state[stage_id]["commit"][:12]):
            assert needle in html.replace("&gt;", ">"), (stage_id, needle)
    with capsys.disabled():
        print(f"\nshow output: {artefacts}/show-*.txt")
    if chromium() is None:
        return
    page = pages["01-claude-works"]
    shot = artefacts / "stage-page.png"
    screenshot(page.as_uri(), shot, tmp_path / "profile", size="1100,2400", min_bytes=0,
               env={**os.environ, "TMPDIR": "/tmp"})  # its socket path must be short
    with capsys.disabled():
        print(f"stage page screenshot: {shot}")

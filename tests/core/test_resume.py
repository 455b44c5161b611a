"""Resume, don't restart (issue 19): a worker sent back continues its own session; verifiers never resume.

The decision is a table (:func:`autometta.resume.plan`); every path and fallback also runs through whole ticks
with real git and the script family, whose command is told by environment that it continues a session
(``AUTOMETTA_CONTINUATION``, ``AUTOMETTA_RESUME_SESSION``, ``AUTOMETTA_CONTINUATION_OF``). Each test's
commands append what they were told to a file, so the test reads what the agent saw.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Dict, List

import pytest

from autometta import families, resume, yamlsub
from autometta.books.budget import initial_budget
from autometta.books.state import initial_state, new_stage
from autometta.families.usage import Usage
from autometta.paths import RepoPaths
from autometta.tick import decide as d
from tests.testing.ticks import (CHECKER, await_agents, commit_all, git, read_state, run_until_quiet,
                                 script_card, stage, tick_once)

SID = "01-hello"

# ------------------------------------------------------------------ the decision, as a table

W = {"role": "worker", "loop": 1, "id": "s1", "family": "claude", "model": "m", "route": "claude subscription"}
WANT = resume.Want("claude", "m", "claude subscription")


def _stage(*runs: Dict[str, Any], loops: Any = None) -> Dict[str, Any]:
    return {"id": SID, "sessions": list(runs), "loops": loops}


@pytest.mark.parametrize("stage_doc,role,want,expected", [
    # the first worker run, and every verifier run: a new session
    (_stage(), "worker", WANT, (None, "", None)),
    (_stage(W), "verifier", WANT, (None, "", None)),
    (_stage(W, dict(W, role="verifier", id="v1")), "verifier", WANT, (None, "", None)),
    # sent back after a FAIL or a failed acceptance (a later loop): the re-brief continues the session
    (_stage(W, loops=2), "worker", WANT, ("s1", "rebrief", None)),
    # started again in the same loop (a usage limit's reset, a lost runner): it goes on where it stopped
    (_stage(W), "worker", WANT, ("s1", "interrupted", None)),
    # the last worker run is the one continued
    (_stage(W, dict(W, id="s2", loop=2), loops=3), "worker", WANT, ("s2", "rebrief", None)),
    # fallbacks: a cold start, saying why
    (_stage(W, loops=2), "worker", WANT._replace(off="the card"), (None, "rebrief", "resume_off")),
    (_stage(dict(W, refused=True)), "worker", WANT, (None, "interrupted", "resume_refused")),
    (_stage(dict(W, id=None)), "worker", WANT, (None, "interrupted", "no_session_id")),
    (_stage(W), "worker", WANT._replace(family="codex"), (None, "interrupted", "family_changed")),
    (_stage(W), "worker", WANT._replace(model="other"), (None, "interrupted", "model_changed")),
    (_stage(W), "worker", WANT._replace(route="claude api"), (None, "interrupted", "route_changed")),
    (_stage(W), "worker", WANT._replace(can=False), (None, "interrupted", "resume_unsupported")),
    (_stage(W), "worker", WANT._replace(available=lambda sid: False), (None, "interrupted", "session_gone")),
    # the setting is checked first, then the session itself
    (_stage(dict(W, refused=True)), "worker", WANT._replace(off="x", available=lambda s: False),
     (None, "interrupted", "resume_off")),
])
def test_the_decision(stage_doc, role, want, expected):
    p = resume.plan(stage_doc, role, want)
    assert (p.resume, p.of, p.fallback) == expected
    if p.fallback:
        assert p.why.startswith("starting cold: ")


@pytest.mark.parametrize("diagnosis,expected", [
    ("claude_resume_refused", True), ("codex_resume_refused", True), ("script_resume_refused", True),
    ("claude_auth_error", False), (None, False), ("", False)])
def test_a_refused_resume_is_read_from_the_diagnosis(diagnosis, expected):
    assert resume.refused(diagnosis) is expected


def _lane_facts(fields: Dict[str, Any], **kw: Any) -> "d.Facts":
    doc = initial_state()
    st = new_stage(SID, "Claude Sonnet 4.6 <claude-sonnet-4-6@local>", "Codex GPT-5.5 <codex-gpt-5-5@local>")
    st.update(status="in_progress", worktree="/r/.autometta/worktrees/" + SID, **fields)
    doc["stages"].append(st)
    cur = d.InFlight(stage=st, lane=True)
    for key, value in kw.items():
        setattr(cur, key, value)
    return d.Facts(repo="/r", budget=initial_budget(), state=doc, cur=cur)


@pytest.mark.parametrize("fields,kw,expected,finish", [
    # the worker's runner is gone and nothing of its run is left (a reboot): it starts again (and resumes)
    ({"worker_pid": 4}, {"worker": d.Proc(pid=4, lost=True)},
     ["account:worker", "set:worker_exit", "set:worker_restarts", "launch:worker"], None),
    ({"worker_pid": 4, "worker_restarts": 1}, {"worker": d.Proc(pid=4, lost=True)},
     ["account:worker", "set:worker_exit", "set:worker_restarts", "launch:worker"], None),
    # ... but only twice a claim; and never while processes of the run still live (an agent that killed
    # its own runner): then it is stopped and the stage stalls, as before
    ({"worker_pid": 4, "worker_restarts": 2}, {"worker": d.Proc(pid=4, lost=True)},
     ["kill:worker", "account:worker"], ("stalled", "runner_lost")),
    ({"worker_pid": 4}, {"worker": d.Proc(pid=4, lost=True), "worker_leftover": "pid 9 still runs"},
     ["kill:worker", "account:worker"], ("stalled", "runner_lost")),
    ({"worker_pid": 4}, {"worker": d.Proc(pid=4, lost=True), "card_found": False},
     ["kill:worker", "account:worker"], ("stalled", "runner_lost")),
    # a worker whose CLI refused to resume its session, with no handoff: started again (cold) at once
    ({"worker_pid": 4, "sessions": [dict(W, resumed=True)]},
     {"worker": d.Proc(pid=4, exit={"exit_code": 1}), "worker_diagnosis": "claude_resume_refused"},
     ["account:worker", "set:worker_exit", "launch:worker"], None),
    # ... but a run that was not a resume and says so is not started again (no loop): it stalls as any other
    ({"worker_pid": 4, "sessions": [dict(W, resumed=False)]},
     {"worker": d.Proc(pid=4, exit={"exit_code": 1}), "worker_diagnosis": "script_resume_refused"},
     ["account:worker", "record_tree"], ("stalled", "script_resume_refused")),
])
def test_the_tick_sends_a_vanished_or_refused_worker_back(fields, kw, expected, finish):
    dec = d.decide_lane(_lane_facts(fields, **kw), SID)
    shown = [f"{e.name}:{e.arg[0] if isinstance(e.arg, tuple) else e.arg}" if e.arg is not None else e.name
             for e in dec.effects]
    assert (shown, dec.finish) == (expected, finish), dec.message


# ------------------------------------------------------------------ the families

def test_claude_chooses_the_id_and_resumes_it(tmp_path):
    claude = families.get("claude")
    sid = claude.new_session_id()
    card = type("C", (), {"path": tmp_path / "c.md"})()
    argv = claude.command("worker", "do it", model="claude-sonnet-4-6", repo=tmp_path, card=card, session_id=sid)
    assert argv[:4] == ["claude", "-p", "--session-id", sid] and argv[-2:] == ["--", "do it"]
    again = claude.resume_command("worker", "go on", sid, model="claude-sonnet-4-6", repo=tmp_path, card=card)
    assert again[:4] == ["claude", "-p", "--resume", sid] and again[-2:] == ["--", "go on"]
    assert "--model" in again and "--permission-mode" in again  # the same flags as the first run
    log = "\n".join([json.dumps({"type": "system", "subtype": "init", "session_id": sid}),
                     json.dumps({"type": "result", "session_id": sid, "usage": {}})])
    assert claude.session_id(log) == sid
    env = {"HOME": str(tmp_path)}
    assert not claude.session_available(env, sid)
    (tmp_path / ".claude" / "projects" / "-work-x").mkdir(parents=True)
    (tmp_path / ".claude" / "projects" / "-work-x" / f"{sid}.jsonl").write_text("{}\n")
    assert claude.session_available(env, sid)
    assert not claude.session_available(env, "../../etc/passwd")
    refused = ('{"type":"result","is_error":true,"errors":["No conversation found with session ID: x"]}\n'
               "No conversation found with session ID: x\n")
    assert claude.resume_refused(1, refused) and claude.diagnose(1, refused) == "claude_resume_refused"
    assert not claude.resume_refused(0, refused)


def test_codex_resumes_with_the_sandbox_as_settings(tmp_path):
    codex = families.get("codex")
    card = type("C", (), {"path": tmp_path / "c.md"})()
    assert codex.new_session_id() is None  # codex picks it
    argv = codex.resume_command("worker", "go on", "0190aa", model="gpt-5.5", repo=tmp_path, card=card,
                                extra_dirs=[tmp_path / "handoffs"])
    assert argv[:3] == ["codex", "exec", "resume"] and argv[-2:] == ["0190aa", "go on"]
    assert 'sandbox_mode="workspace-write"' in argv and "--json" in argv and "-C" not in argv
    assert f'sandbox_workspace_write.writable_roots=["{tmp_path / "handoffs"}"]' in argv
    log = '{"type":"thread.started","thread_id":"0190aa"}\n{"type":"turn.started"}\n'
    assert codex.session_id(log) == "0190aa"
    # a thread.started the agent prints (or appends to its log) later does not move the id codex named first
    assert codex.session_id(log + '{"type":"thread.started","thread_id":"0190bb"}\n') == "0190aa"
    thread = "01a243fe-7468-76e2-8276-07fa9c772c5f"
    env = {"CODEX_HOME": str(tmp_path / "ch")}
    assert not codex.session_available(env, thread)
    day = tmp_path / "ch" / "sessions" / "2026" / "12" / "05"
    day.mkdir(parents=True)
    (day / f"rollout-2026-12-05T02-17-59-{thread}.jsonl").write_text("{}\n")
    assert codex.session_available(env, thread)
    refused = (f"Error: thread/resume: thread/resume failed: no rollout found for thread id {thread} "
               "(code -32600)\n\nStack backtrace:\n   0: <unknown>\n")
    assert codex.resume_refused(1, refused) and codex.diagnose(1, refused) == "codex_resume_refused"


def test_a_resumed_runs_own_usage():
    """claude: usage is the run's, total_cost_usd the session's; codex: the counts are the session's."""
    claude, codex = families.get("claude"), families.get("codex")
    usage = {"input_tokens": 100, "output_tokens": 5, "cache_read_input_tokens": 500,
             "cache_creation_input_tokens": 0}
    # claude 2.1.332, resumed: total_cost_usd is the session's, model_usage_since_last_result the run's own
    resumed = {"type": "result", "session_id": "s", "usage": usage, "total_cost_usd": 0.00111,
               "modelUsage": {"claude-opus-5-5": {"costUSD": 0.00111}},
               "model_usage_since_last_result": {"claude-opus-5-5": {"costUSD": 0.0006000000000000001}}}
    own = claude.run_usage(claude.parse_usage(json.dumps(resumed)), Usage(cost_usd=0.00051))
    assert (own.total_tokens, own.cache_read_tokens, own.cost_usd) == (105, 500, pytest.approx(0.0006))
    # claude 2.1.197, resumed: no such field, and total_cost_usd is the run's own
    older = {"type": "result", "session_id": "s", "usage": usage, "total_cost_usd": 0.000875,
             "modelUsage": {"claude-opus-4-8": {"costUSD": 0.000875}}}
    own = claude.run_usage(claude.parse_usage(json.dumps(older)), Usage(cost_usd=0.00065))
    assert own.cost_usd == pytest.approx(0.000875)
    first = Usage(input_tokens=100, output_tokens=10, cache_read_tokens=0)
    second = Usage(input_tokens=200, output_tokens=20, cache_read_tokens=30)
    own = codex.run_usage(second, first)
    assert (own.input_tokens, own.output_tokens, own.cache_read_tokens, own.cost_usd) == (100, 10, 30, None)
    assert families.get("script").run_usage(second, first) is second


# ------------------------------------------------------------------ whole ticks, script family

#: Appended by every run: role, loop-visible environment (session, continuation), one JSON line a run.
TOLD = ('printf \'{"role":"%s","session":"%s","continuation":"%s","resume":"%s","of":"%s"}\\n\' '
        '"$AUTOMETTA_ROLE" "$AUTOMETTA_SESSION_ID" "$AUTOMETTA_CONTINUATION" "$AUTOMETTA_RESUME_SESSION" '
        '"$AUTOMETTA_CONTINUATION_OF" >> {told}; ')
HANDOFF = ("printf '%s' '{\"stage_id\":\"" + SID + "\",\"status\":\"pass\",\"deliverables\":[\"hello.txt\"],"
           "\"notes\":\"done\"}' > \"$AUTOMETTA_HANDOFF\"")


def _told_cmd(told: Path) -> str:
    return TOLD.replace("{told}", str(told))


def _verdict(overall: str, evidence: str) -> str:
    return json.dumps({"stage_id": SID, "verifier_identity": CHECKER, "verifier_invocation": "sh",
                       "ran_at": "2026-11-26T00:00:00Z",
                       "criteria": [{"id": 1, "name": "hello.txt says hello", "verdict": overall,
                                     "evidence": evidence}], "additional_findings": "", "overall": overall})


def _fail_once_verifier(tmp_path: Path, told: Path) -> str:
    flag = tmp_path / "judged-once"
    fail, ok = _verdict("FAIL", "hello.txt is empty"), _verdict("PASS", "hello.txt:1")
    return (_told_cmd(told) + f"if [ -f {flag} ]; then printf '%s' '{ok}' > \"$AUTOMETTA_ARTEFACT\"; "
            f"else touch {flag}; printf '%s' '{fail}' > \"$AUTOMETTA_ARTEFACT\"; fi")


def _told(path: Path) -> List[Dict[str, str]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _add(run, repo: Path, card: Path) -> None:
    commit_all(repo, "card")
    assert run("add-stage", str(repo), str(card)).code == 0


def _tick_log(home: Path) -> str:
    return "".join(p.read_text() for p in (home / "log").glob("tick-*.log"))


def test_a_verifier_fail_resumes_the_workers_session_and_verifiers_start_fresh(run, setup, tmp_path):
    repo, home, _ = setup
    told = tmp_path / "told.jsonl"
    worker = _told_cmd(told) + "printf 'hello\\n' >> hello.txt && " + HANDOFF
    card = script_card(repo, SID, worker, _fail_once_verifier(tmp_path, told), max_loops=2)
    _add(run, repo, card)
    base = git(repo, "rev-parse", "HEAD").strip()
    run_until_quiet(home, repo)

    s = stage(repo, SID)
    assert (s["status"], s["loops"]) == ("completed", 2), s
    runs = _told(told)
    assert [r["role"] for r in runs] == ["worker", "verifier", "worker", "verifier"]
    w1, v1, w2, v2 = runs
    assert (w1["continuation"], w2["continuation"], w2["of"]) == ("", "1", "rebrief")
    assert w2["resume"] == w2["session"] == w1["session"]  # the same session goes on
    assert v1["continuation"] == v2["continuation"] == ""  # verifiers never resume
    assert len({w1["session"], v1["session"], v2["session"]}) == 3
    records = s["sessions"]
    assert [(r["role"], r["loop"], r["id"], r["resumed"], r["of"], r["fallback"]) for r in records] == [
        ("worker", 1, w1["session"], False, None, None), ("verifier", 1, v1["session"], False, None, None),
        ("worker", 2, w1["session"], True, "rebrief", None), ("verifier", 2, v2["session"], False, None, None)]
    prompt = (repo / "state" / "logs" / f"{SID}-worker.prompt.md").read_text()  # what the continuation was told
    assert "continuing your own session" in prompt and f"state/rebriefs/{SID}-2.md" in prompt
    assert "hello.txt says hello: FAIL. Evidence: hello.txt is empty" in prompt
    assert f"resuming session {w1['session']} (rebrief)" in _tick_log(home)
    assert git(repo, "rev-list", "--count", f"{base}..HEAD").strip() == "1"  # lands with one commit

    shown = json.loads(run("show", str(repo), SID, "--json").out)
    assert [(r["role"], r["id"], r["resumed"]) for r in shown["sessions"]] == [
        (r["role"], r["id"], r["resumed"]) for r in records]
    assert "reported" not in json.dumps(shown["sessions"])
    text = run("show", str(repo), SID).out
    assert f"session loop 2: {w1['session']} resumed (rebrief)" in text


def test_a_failed_acceptance_command_resumes_with_its_log_tail(run, setup, tmp_path):
    repo, home, _ = setup
    told = tmp_path / "told.jsonl"
    worker = _told_cmd(told) + "printf 'hello\\n' >> hello.txt && " + HANDOFF
    acceptance = "test $(wc -l < hello.txt) -ge 2 || { echo 'hello.txt has one line, wants two'; exit 3; }"
    card = script_card(repo, SID, worker, _told_cmd(told) + "printf '%s' '" + _verdict("PASS", "ok")
                       + "' > \"$AUTOMETTA_ARTEFACT\"", acceptance=acceptance, max_loops=2)
    _add(run, repo, card)
    run_until_quiet(home, repo)
    s = stage(repo, SID)
    assert (s["status"], s["loops"]) == ("completed", 2), s
    w1, w2, v = _told(told)
    assert (w2["role"], w2["of"], w2["resume"]) == ("worker", "rebrief", w1["session"]) and v["continuation"] == ""
    prompt = (repo / "state" / "logs" / f"{SID}-worker.prompt.md").read_text()
    assert "exited 3" in prompt and "hello.txt has one line, wants two" in prompt


def test_a_usage_limit_resumes_the_interrupted_session_after_the_reset(run, setup, tmp_path):
    repo, home, _ = setup
    told = tmp_path / "told.jsonl"
    reset = int(time.time()) + 3600
    flag = tmp_path / "limited-once"
    worker = (_told_cmd(told) + "printf 'hello\\n' > hello.txt; "
              f"if [ ! -f {flag} ]; then touch {flag}; echo 'Claude AI usage limit reached|{reset}'; exit 1; fi; "
              + HANDOFF)
    _add(run, repo, script_card(repo, SID, worker))
    tick_once(home)
    await_agents(repo)
    [outcome] = tick_once(home)
    assert "hit a usage limit" in outcome.message
    [outcome] = tick_once(home, now=reset + 61)
    assert "dispatching the worker again" in outcome.message
    await_agents(repo)
    run_until_quiet(home, repo)
    assert stage(repo, SID)["status"] == "completed"
    w1, w2 = _told(told)  # the verifier is the card's default one
    assert (w2["continuation"], w2["of"], w2["resume"]) == ("1", "interrupted", w1["session"])
    assert f"resuming session {w1['session']} (interrupted)" in _tick_log(home)
    prompt = (repo / "state" / "logs" / f"{SID}-worker.prompt.md").read_text()
    assert "was interrupted" in prompt and str(RepoPaths(repo).handoff(SID)) in prompt


# -- fallbacks: each starts the worker cold, and says so in the tick log and the stage


def _fail_once_then_pass(run, repo: Path, home: Path, tmp_path: Path, worker: str, **card_kw: Any):
    told = tmp_path / "told.jsonl"
    card = script_card(repo, SID, _told_cmd(told) + worker, _fail_once_verifier(tmp_path, told),
                       max_loops=2, **card_kw)
    return told, card


@pytest.mark.parametrize("where", ["card", "manifest"])
def test_resume_turned_off_starts_cold(run, setup, tmp_path, where):
    repo, home, _ = setup
    told, card = _fail_once_then_pass(run, repo, home, tmp_path, "printf 'hello\\n' > hello.txt && " + HANDOFF)
    if where == "card":
        card.write_text(card.read_text().replace("- **Max loops:** 2", "- **Max loops:** 2\n- **Resume:** no"))
    else:
        path = RepoPaths(repo).manifest
        doc = yamlsub.loads(path.read_text())
        doc["resume"] = False
        path.write_text(yamlsub.dumps(doc))
    _add(run, repo, card)
    run_until_quiet(home, repo)
    s = stage(repo, SID)
    assert s["status"] == "completed", s
    w1, _v1, w2, _v2 = _told(told)
    assert w2["continuation"] == "" and w2["session"] != w1["session"]
    second = [r for r in s["sessions"] if r["role"] == "worker"][1]
    assert (second["resumed"], second["fallback"]) == (False, "resume_off")
    assert "starting cold: resume is turned off" in _tick_log(home)
    prompt = (repo / "state" / "logs" / f"{SID}-worker.prompt.md").read_text()
    assert "hello.txt is empty" in prompt  # a cold start still gets the re-brief after its prompt


def test_a_session_whose_files_are_gone_starts_cold(run, setup, tmp_path, monkeypatch):
    repo, home, _ = setup
    kept = tmp_path / "sessions"
    kept.mkdir()
    monkeypatch.setenv("AUTOMETTA_SCRIPT_SESSIONS", str(kept))  # the script's sessions live there: none does
    told, card = _fail_once_then_pass(run, repo, home, tmp_path, "printf 'hello\\n' > hello.txt && " + HANDOFF)
    _add(run, repo, card)
    run_until_quiet(home, repo)
    s = stage(repo, SID)
    assert s["status"] == "completed", s
    second = [r for r in s["sessions"] if r["role"] == "worker"][1]
    assert (second["resumed"], second["fallback"]) == (False, "session_gone")
    assert _told(told)[2]["continuation"] == ""
    assert "are gone" in _tick_log(home)


def test_a_session_the_script_keeps_is_resumed(run, setup, tmp_path, monkeypatch):
    repo, home, _ = setup
    kept = tmp_path / "sessions"
    kept.mkdir()
    monkeypatch.setenv("AUTOMETTA_SCRIPT_SESSIONS", str(kept))
    keep = f'touch "{kept}/$AUTOMETTA_SESSION_ID"; '
    told, card = _fail_once_then_pass(run, repo, home, tmp_path, keep + "printf 'hello\\n' > hello.txt && " + HANDOFF)
    _add(run, repo, card)
    run_until_quiet(home, repo)
    assert _told(told)[2]["continuation"] == "1"


def test_a_cli_that_refuses_the_session_is_started_again_cold(run, setup, tmp_path):
    repo, home, _ = setup
    refuse = 'if [ -n "$AUTOMETTA_RESUME_SESSION" ]; then echo autometta-resume-refused; exit 1; fi; '
    told, card = _fail_once_then_pass(run, repo, home, tmp_path,
                                      refuse + "printf 'hello\\n' > hello.txt && " + HANDOFF)
    _add(run, repo, card)
    run_until_quiet(home, repo)
    s = stage(repo, SID)
    assert s["status"] == "completed", s
    runs = _told(told)
    assert [(r["role"], r["continuation"]) for r in runs] == [
        ("worker", ""), ("verifier", ""), ("worker", "1"), ("worker", ""), ("verifier", "")]
    workers = [r for r in s["sessions"] if r["role"] == "worker"]
    assert [(r["resumed"], r.get("refused", False), r["fallback"]) for r in workers] == [
        (False, False, None), (True, True, None), (False, False, "resume_refused")]
    log = _tick_log(home)
    assert "refused to resume its session (script_resume_refused)" in log
    assert "starting cold: its CLI refused to resume session" in log


def test_a_new_claim_starts_a_new_session(run, setup, tmp_path):
    """Sessions belong to one claim: a stage queued again starts cold, with no fallback to report."""
    repo, home, _ = setup
    told = tmp_path / "told.jsonl"
    _add(run, repo, script_card(repo, SID, _told_cmd(told) + "exit 1"))
    run_until_quiet(home, repo)
    assert stage(repo, SID)["status"] == "stalled"
    assert len(stage(repo, SID)["sessions"]) == 1
    assert run("requeue", str(repo), SID).code == 0
    run_until_quiet(home, repo)
    runs = _told(told)
    assert len(runs) == 2 and runs[1]["continuation"] == "" and runs[1]["session"] != runs[0]["session"]
    assert [(r["resumed"], r["fallback"]) for r in stage(repo, SID)["sessions"]] == [(False, None)]


def test_a_worker_whose_whole_run_vanished_resumes_its_session(run, setup, tmp_path):
    """A reboot: the runner and every process of the worker's run are gone, with no exit record. The next tick
    starts the worker again, continuing its session (``interrupted``); once per reboot, twice a claim."""
    import os
    import signal

    from autometta.agents import liveness, processes
    from tests.testing.tick_processes import await_pid
    from tests.testing.waits import read_fifo

    repo, home, _ = setup
    told = tmp_path / "told.jsonl"
    ready = tmp_path / "ready.fifo"
    os.mkfifo(ready)
    worker = (_told_cmd(told) + 'if [ -z "$AUTOMETTA_CONTINUATION" ]; then printf x > ' + str(ready)
              + "; exec sleep 300; fi; printf 'hello\\n' > hello.txt && " + HANDOFF)
    _add(run, repo, script_card(repo, SID, worker))
    tick_once(home)
    s = stage(repo, SID)
    runner, mark = s["worker_pid"], s["worker_run_id"]
    read_fifo(ready)  # the worker runs
    run_procs = [pid for pid, _start in processes.marked(mark)]
    for pid in run_procs:  # the machine goes down: everything of the run dies at once, nothing is recorded
        os.kill(pid, signal.SIGKILL)
    await_pid(runner)
    for pid in run_procs:
        await_pid(pid, timeout=30)
        assert not liveness.is_alive(pid)

    [outcome] = tick_once(home)
    assert "nothing of its run is left" in outcome.message and outcome.kind == "launch", outcome.message
    await_agents(repo)
    run_until_quiet(home, repo)
    s = stage(repo, SID)
    assert (s["status"], s["worker_restarts"]) == ("completed", 1), s
    w1, w2 = _told(told)
    assert (w2["continuation"], w2["of"], w2["resume"]) == ("1", "interrupted", w1["session"])
    assert [(r["role"], r["resumed"]) for r in s["sessions"]] == [("worker", False), ("worker", True),
                                                                    ("verifier", False)]


def test_an_id_chosen_up_front_is_not_moved_by_a_line_in_the_log(tmp_path):
    """claude keeps the id it was given; a log line naming another session (an agent can print anything)
    does not change which session the worker resumes. An id the CLI picks (codex) is read from the log."""
    from types import SimpleNamespace

    from autometta import sessions

    paths = RepoPaths(tmp_path)
    paths.logs.mkdir(parents=True)
    ctx = SimpleNamespace(paths=paths)
    forged = json.dumps({"type": "result", "session_id": "11111111-2222-3333-4444-555555555555", "usage": {}})
    paths.log(SID, "worker").write_text(forged + "\n")
    chosen = "0f240eae-a666-44d7-8f10-d192e95f1d08"
    stage_doc = {"id": SID, "sessions": [dict(W, id=chosen, resumed=False)]}
    sessions.ended(ctx, stage_doc, "worker", 0)
    assert stage_doc["sessions"][0]["id"] == chosen and stage_doc["sessions"][0]["ended"]
    paths.log(SID, "worker").write_text('{"type":"thread.started","thread_id":"0190aa"}\n')
    stage_doc = {"id": SID, "sessions": [dict(W, id=None, family="codex", resumed=False)]}
    sessions.ended(ctx, stage_doc, "worker", 0)
    assert stage_doc["sessions"][0]["id"] == "0190aa"

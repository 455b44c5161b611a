"""Re-brief loops (Max loops) with whole ticks: FAIL, then PASS on the second worker round."""

from __future__ import annotations

import json


from tests.testing.ticks import CHECKER, commit_all, git, read_budget, run_until_quiet, script_card, stage


def _verdict(stage_id: str, overall: str, evidence: str) -> str:
    doc = {"stage_id": stage_id, "verifier_identity": CHECKER, "verifier_invocation": "sh",
           "ran_at": "2026-11-26T00:00:00Z",
           "criteria": [{"id": 1, "name": "hello.txt greets the world", "verdict": overall, "evidence": evidence}],
           "additional_findings": "", "overall": overall}
    return json.dumps(doc)


def test_verifier_fail_then_pass_on_the_second_loop(run, setup, tmp_path):
    repo, home, _ = setup
    sid = "01-hello"
    flag = tmp_path / "judged-once"
    fail = _verdict(sid, "FAIL", "hello.txt says hello but not world")
    ok = _verdict(sid, "PASS", "hello.txt:1 says hello world")
    verifier = (f"if [ -f {flag} ]; then printf '%s' '{ok}' > \"$AUTOMETTA_ARTEFACT\"; "
                f"else touch {flag}; printf '%s' '{fail}' > \"$AUTOMETTA_ARTEFACT\"; fi")
    worker = ("cat hello.txt >> seen.txt 2>/dev/null; printf 'hello world\\n' > hello.txt && printf '%s' "
              f"'{{\"stage_id\":\"{sid}\",\"status\":\"pass\",\"deliverables\":[\"hello.txt\"],\"notes\":\"done\"}}' "
              "> \"$AUTOMETTA_HANDOFF\"")
    card = script_card(repo, sid, worker, verifier, max_loops=2)
    commit_all(repo)
    assert run("add-stage", str(repo), str(card)).code == 0

    run_until_quiet(home, repo)
    final = stage(repo, sid)
    assert final["status"] == "completed" and final["loops"] == 2, final
    assert (repo / "seen.txt").read_text() == "hello world\n"  # the second round ran on the first one's tree

    rebrief = (repo / "state" / "rebriefs" / f"{sid}-2.md").read_text()
    assert "hello.txt greets the world: FAIL. Evidence: hello.txt says hello but not world" in rebrief
    prompt = (repo / "state" / "logs" / f"{sid}-worker.prompt.md").read_text()
    assert rebrief in prompt
    archived = list((repo / "state" / "archive" / sid).glob(f"*/verifiers/{sid}.json"))  # autometta's copy
    assert len(archived) == 1 and json.loads(archived[0].read_text())["overall"] == "FAIL"
    log = "".join(p.read_text() for p in (home / "log").glob("tick-*.log"))
    assert "re-briefing the worker (loop 2 of 2)" in log
    assert git(repo, "log", "-1", "--format=%s").startswith(sid)
    assert read_budget(repo)["consecutive_failures"] == 0


def test_the_last_loop_stops_as_today(run, setup):
    repo, home, _ = setup
    sid = "01-hello"
    fail = _verdict(sid, "FAIL", "still wrong")
    card = script_card(repo, sid, None, f"printf '%s' '{fail}' > \"$AUTOMETTA_ARTEFACT\"", max_loops=2)
    commit_all(repo)
    assert run("add-stage", str(repo), str(card)).code == 0
    run_until_quiet(home, repo)
    final = stage(repo, sid)
    assert (final["status"], final["stall_marker"], final["loops"]) == ("verifier_failed", "verifier_fail", 2)
    assert sorted(p.name for p in (repo / "state" / "rebriefs").iterdir()) == [f"{sid}-2.md"]
    assert final["verifier_attempts"] == 1


def test_acceptance_failure_rebriefs_with_the_command_output(run, setup):
    repo, home, _ = setup
    sid = "01-hello"
    card = script_card(repo, sid, acceptance="test -f second || { echo 'need a second file'; touch second; exit 1; }",
                       max_loops=3, deliverables=["hello.txt", "second"])
    commit_all(repo)
    assert run("add-stage", str(repo), str(card)).code == 0
    run_until_quiet(home, repo)
    final = stage(repo, sid)
    assert final["status"] == "completed" and final["loops"] == 2, final
    rebrief = (repo / "state" / "rebriefs" / f"{sid}-2.md").read_text()
    assert "exited 1" in rebrief and "need a second file" in rebrief


def test_two_rebriefs_in_one_second_each_keep_their_archive(run, setup, tmp_path):
    """Both FAIL verdicts stay archived: the second re-brief no longer overwrites the first's folder."""
    from tests.testing.ticks import await_agents, tick_once

    repo, home, _ = setup
    sid = "01-hello"
    verdicts = [_verdict(sid, "FAIL", f"round {n}") for n in (1, 2, 3)]
    rounds = tmp_path / "rounds"
    verifier = (f"n=$(cat {rounds} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {rounds}; "
                + "; ".join(f"[ $n = {i} ] && printf '%s' '{v}' > \"$AUTOMETTA_ARTEFACT\"" for i, v in
                            enumerate(verdicts, 1)) + "; true")
    card = script_card(repo, sid, None, verifier, max_loops=3)
    commit_all(repo)
    assert run("add-stage", str(repo), str(card)).code == 0
    frozen = 1_795_000_000.0  # every tick in the same second
    for _ in range(20):
        tick_once(home, now=frozen)
        await_agents(repo)
        if stage(repo, sid)["status"] != "in_progress":
            break
    assert stage(repo, sid)["status"] == "verifier_failed"
    archived = sorted((repo / "state" / "archive" / sid).glob(f"*/verifiers/{sid}.json"))
    assert [json.loads(p.read_text())["criteria"][0]["evidence"] for p in archived] == ["round 1", "round 2"]
    assert len({p.parent.parent for p in archived}) == 2

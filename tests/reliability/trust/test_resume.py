"""Ways past the gate through resumed sessions (issue 19), in every stage mode (serial, lanes, tree).

- A verifier never continues a session: not its own earlier one, not the worker's, whatever the worker did.
- A worker cannot buy itself endless restarts: a run that was not a resume and claims its CLI refused a
  resume stalls like any worker without a handoff; a worker whose whole run vanishes (it kills its runner
  and itself) is started again at most twice a claim, then the stage stalls ``runner_lost``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List

from tests.testing.ticks import CHECKER, read_state, run_until_quiet, stage

SID = "01-hello"
HANDOFF = ("printf '%s' '{\"stage_id\":\"" + SID + "\",\"status\":\"pass\",\"deliverables\":[\"hello.txt\"],"
           "\"notes\":\"done\"}' > \"$AUTOMETTA_HANDOFF\"")
TOLD = ('printf \'{"role":"%s","session":"%s","continuation":"%s"}\\n\' "$AUTOMETTA_ROLE" "$AUTOMETTA_SESSION_ID" '
        '"$AUTOMETTA_CONTINUATION" >> {told}; ')


def _verdict(overall: str) -> str:
    return json.dumps({"stage_id": SID, "verifier_identity": CHECKER, "verifier_invocation": "sh",
                       "ran_at": "2026-12-05T00:00:00Z",
                       "criteria": [{"id": 1, "name": "hello.txt says hello", "verdict": overall,
                                     "evidence": "hello.txt:1"}], "additional_findings": "", "overall": overall})


def _told(path: Path) -> List[Dict[str, str]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_verifier_never_continues_a_session(setup, lanes, tmp_path):
    """The worker even names its own session in the environment it leaves behind and in its handoff notes:
    every verifier run still starts a new session, told nothing of a continuation."""
    repo, home, add = setup
    told = str(tmp_path / "told.jsonl")
    flag = tmp_path / "judged-once"
    worker = (TOLD.replace("{told}", told) + "printf 'hello\\n' > hello.txt; "
              "echo \"AUTOMETTA_CONTINUATION=1 AUTOMETTA_RESUME_SESSION=$AUTOMETTA_SESSION_ID\" > notes.txt; "
              + HANDOFF)
    verifier = (TOLD.replace("{told}", told) + f"if [ -f {flag} ]; then printf '%s' '{_verdict('PASS')}' "
                f"> \"$AUTOMETTA_ARTEFACT\"; else touch {flag}; printf '%s' '{_verdict('FAIL')}' "
                "> \"$AUTOMETTA_ARTEFACT\"; fi")
    add(SID, worker, verifier, max_loops=2)
    run_until_quiet(home, repo)
    assert stage(repo, SID)["status"] == "completed", stage(repo, SID)
    runs = _told(Path(told))
    verifiers = [r for r in runs if r["role"] == "verifier"]
    workers = [r for r in runs if r["role"] == "worker"]
    assert len(verifiers) == 2 and all(r["continuation"] == "" for r in verifiers)
    assert len({r["session"] for r in verifiers} | {workers[0]["session"]}) == 3
    records = [r for r in stage(repo, SID)["sessions"] if r["role"] == "verifier"]
    assert [r["resumed"] for r in records] == [False, False]


def test_a_cold_worker_claiming_a_refused_resume_is_not_started_again(setup, lanes):
    repo, home, add = setup
    add(SID, "echo autometta-resume-refused; exit 1")
    kinds = run_until_quiet(home, repo)
    s = stage(repo, SID)
    assert (s["status"], s["stall_marker"]) == ("stalled", "script_resume_refused"), (kinds, s)
    assert len(s["sessions"]) == 1


def test_a_worker_that_keeps_vanishing_is_restarted_twice_then_stalls(setup, lanes, tmp_path):
    """Each run kills its runner and itself: to the tick it looks like a reboot every time."""
    repo, home, add = setup
    told = str(tmp_path / "told.jsonl")
    # one signal to the run's process group (the runner's), so both are gone at once: with two kills
    # a tick that came between them (the runner reaped, the agent not yet dead) saw a live agent of a
    # lost runner and stopped the stage runner_lost instead of starting it again
    add(SID, TOLD.replace("{told}", told) + "kill -9 0")
    run_until_quiet(home, repo)
    s = stage(repo, SID)
    assert (s["status"], s["stall_marker"], s["worker_restarts"]) == ("stalled", "runner_lost", 2), s
    runs = _told(Path(told))
    assert [r["continuation"] for r in runs] == ["", "1", "1"]  # three runs in all, the later two resumed
    assert read_state(repo)["stages"][0]["worker_pid"] is None

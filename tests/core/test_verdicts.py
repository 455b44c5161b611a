"""Which verdict counts (autometta.verdicts) and whether it agrees with itself (tick.outcomes.verdict_problem).

Real files in a scratch ``state/verifiers/``; the whole-tick and by-hand cases
are in tests/reliability/trust/test_verdict.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import pytest

from autometta import verdicts
from autometta.agents import processes
from autometta.agents.spawn import LaunchSpec, launch
from autometta.books.budget import initial_budget
from autometta.books.state import initial_state, new_stage
from autometta.paths import RepoPaths
from autometta.tick import decide as d
from autometta.tick.outcomes import criteria_problem, verdict_problem

SID = "01-hello"
NONCE = "ab" * 16
OTHER = "cd" * 16


def doc(overall: str = "PASS", *verdicts_: str) -> dict:
    return {"stage_id": SID, "overall": overall,
            "criteria": [{"id": i + 1, "name": f"c{i + 1}", "verdict": v, "evidence": "x"}
                         for i, v in enumerate(verdicts_ or (overall,))]}


# ------------------------------------------------------------------ consistency: one rule for every verdict

@pytest.mark.parametrize("verdict,expected", [
    (doc("PASS", "PASS", "PASS"), None),
    (doc("FAIL", "PASS", "FAIL"), None),
    (doc("PASS", "PASS", "FAIL"), ("verifier_failed", "verifier_inconsistent: overall PASS but criterion 2 (c2) is FAIL")),
    (doc("PASS", "FAIL", "FAIL"),
     ("verifier_failed", "verifier_inconsistent: overall PASS but criterion 1 (c1) is FAIL (and 1 more)")),
    (doc("FAIL", "PASS", "PASS"), ("verifier_failed", "verifier_inconsistent: overall FAIL but every criterion PASSes")),
    (dict(doc("PASS"), criteria=[]), None),  # no criteria: the schema's business, not this rule's
    (dict(doc("MAYBE")), None),  # a malformed overall has its own marker
    (None, None),
    # a panel synthesis: its votes are counted first, then its criteria are held to the same rule
    (dict(doc("PASS", "PASS", "FAIL"), quorum={"required": 2, "achieved": 2},
          panellists=[{"id": i, "identity": "p", "artefact_path": None, "overall": v}
                      for i, v in enumerate(["PASS", "PASS", None])]),
     ("verifier_failed", "verifier_inconsistent: overall PASS but criterion 2 (c2) is FAIL")),
    (dict(doc("PASS"), quorum={"required": 2, "achieved": 2},
          panellists=[{"id": i, "identity": "p", "artefact_path": None, "overall": v}
                      for i, v in enumerate(["FAIL", "FAIL", "PASS"])]),
     ("verifier_failed", "verifier_panel_inconsistent: overall 'PASS' but the panellists' majority FAIL "
                         "(1 PASS, 2 FAIL, 0 no-vote)")),
])
def test_a_verdict_must_agree_with_its_own_criteria(verdict, expected):
    assert verdict_problem(verdict) == expected
    assert (criteria_problem(verdict) is None) == (expected is None or "panel" in expected[1])


# ------------------------------------------------------------------ what is forged

@pytest.fixture
def paths(tmp_path) -> RepoPaths:
    p = RepoPaths(tmp_path / "repo")
    p.verifiers.mkdir(parents=True)
    p.logs.mkdir(parents=True)
    return p


def put(path: Path, content: Optional[dict] = None, *, mtime: Optional[float] = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content if content is not None else doc()))
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def run_at(paths: RepoPaths, nonce: str = NONCE, at: Optional[float] = None) -> verdicts.Run:
    return verdicts.Run(paths.verifier_run_artefact(SID, nonce), time.time() - 60 if at is None else at)


def plan(paths: RepoPaths, run: verdicts.Run, names=("a", "b", "c")) -> None:
    panel = paths.verifiers / f"{SID}.panel"
    entries = [{"artefact": str(panel / f"{n}.{NONCE}.json")} for n in names]
    put(paths.logs / f"{SID}-panel.plan.json", {"out": str(run.artefact), "panellists": entries})


def setup_case(paths: RepoPaths, case: str) -> Optional[verdicts.Run]:
    run = run_at(paths)
    canonical = paths.verifier_artefact(SID)
    if case == "nothing":
        return None
    if case == "run, no verdict yet":
        return run
    if case == "old path, no run":
        put(canonical)
        return None
    if case == "old path, copy of the run's verdict":
        put(run.artefact)
        put(canonical)
        return run
    if case == "old path, other than the run's verdict":
        put(run.artefact, doc("FAIL"))
        put(canonical, doc("PASS"))
        return run
    if case == "old path, run wrote nothing":
        put(canonical)
        return run
    if case == "old path as a symlink":
        target = put(paths.root / "elsewhere.json")
        canonical.symlink_to(target)
        return None
    if case == "another nonce":
        put(paths.verifier_run_artefact(SID, OTHER))
        return run
    if case == "a guessed name":
        put(paths.verifiers / f"{SID}.verdict.json")
        return run
    if case == "the quarantine and the run's invalid answer":
        put(paths.verifiers / f"{SID}.json.invalid.json")
        put(run.artefact.with_name(run.artefact.name + ".invalid.json"))
        return run
    if case == "another stage's files":
        put(paths.verifiers / "01-hello-world.json")
        put(paths.verifiers / "01-hellox.json")
        return run
    if case == "run file as a symlink":
        run.artefact.symlink_to(put(paths.root / "pass.json"))
        return run
    if case == "run file with a second hard link":
        os.link(put(paths.root / "pass.json"), run.artefact)
        return run
    if case == "run file older than the dispatch":
        put(run.artefact, mtime=run.dispatched_at - 3600)
        return run
    if case == "run file a folder":
        run.artefact.mkdir()
        return run
    if case == "run file written after the dispatch":
        put(run.artefact)
        return run
    if case == "a panel vote before any panel":
        put(paths.verifiers / f"{SID}.panel" / "codex.json")
        return None
    if case == "the panel's own member votes":
        plan(paths, run)
        put(paths.verifiers / f"{SID}.panel" / f"a.{NONCE}.json")
        put(paths.verifiers / f"{SID}.panel" / f"b.{NONCE}.json.invalid.json")
        return run
    if case == "a vote beside the panel's":
        plan(paths, run)
        put(paths.verifiers / f"{SID}.panel" / "a.json")
        return run
    if case == "a panel vote older than the dispatch":
        plan(paths, run)
        put(paths.verifiers / f"{SID}.panel" / f"a.{NONCE}.json", mtime=run.dispatched_at - 3600)
        return run
    raise AssertionError(case)


@pytest.mark.parametrize("case,expected", [
    ("nothing", None),
    ("run, no verdict yet", None),
    ("old path, no run", "state/verifiers/01-hello.json exists, but no verifier has run for this stage"),
    ("old path, copy of the run's verdict", None),
    ("old path, other than the run's verdict", "state/verifiers/01-hello.json is not autometta's copy"),
    ("old path, run wrote nothing", "state/verifiers/01-hello.json is not autometta's copy"),
    ("old path as a symlink", "state/verifiers/01-hello.json is a symlink (to "),
    ("another nonce", f"state/verifiers/01-hello.{OTHER}.json is not the verdict path of this stage's verifier run"),
    ("a guessed name", "state/verifiers/01-hello.verdict.json is not the verdict path"),
    ("the quarantine and the run's invalid answer", None),
    ("another stage's files", None),
    ("run file as a symlink", f"state/verifiers/01-hello.{NONCE}.json is a symlink"),
    ("run file with a second hard link", f"state/verifiers/01-hello.{NONCE}.json has 2 hard links"),
    ("run file older than the dispatch", "before its verifier was dispatched at"),
    ("run file a folder", "is not a regular file"),
    ("run file written after the dispatch", None),
    ("a panel vote before any panel", "state/verifiers/01-hello.panel/codex.json is not the verdict path of a member"),
    ("the panel's own member votes", None),
    ("a vote beside the panel's", "state/verifiers/01-hello.panel/a.json is not the verdict path of a member"),
    ("a panel vote older than the dispatch", f"state/verifiers/01-hello.panel/a.{NONCE}.json was last written at"),
])
def test_what_is_forged(paths, case, expected):
    run = setup_case(paths, case)
    problem = verdicts.forged(paths, SID, run, started=True)
    if expected is None:
        assert problem is None
    else:
        assert problem is not None and expected in problem, problem


def test_a_verdict_without_a_started_verifier_is_forged(paths):
    run = run_at(paths)
    put(run.artefact)
    assert "no verifier was started for it" in verdicts.forged(paths, SID, run, started=False)
    # started: its pid is recorded, or its runner's exit record says it started after the dispatch
    assert verdicts.run_started(paths, SID, run, 1234)
    assert not verdicts.run_started(paths, SID, run, None)
    exit_record = paths.exit_record(SID, "verifier")
    put(exit_record, {"exit_code": 0, "started_at": "2000-01-01T00:00:00Z"})
    assert not verdicts.run_started(paths, SID, run, None)
    put(exit_record, {"exit_code": 0, "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    assert verdicts.run_started(paths, SID, run, None)


def test_a_legacy_stage_reads_the_old_path_as_its_verdict(paths):
    """A stage whose verifier a bash tick dispatched: it was told state/verifiers/<id>.json."""
    stage = {"id": SID, "verifier_pid": 5, "verifier_artefact": f"state/verifiers/{SID}.json"}
    assert verdicts.is_legacy(stage) and verdicts.run_of(paths, SID, stage) is None
    put(paths.verifier_artefact(SID))
    assert verdicts.forged(paths, SID, None, started=True, legacy=True) is None
    assert verdicts.read(paths, SID, None, legacy=True).kind == "verdict"
    assert verdicts.read(paths, SID, None).kind == "missing"  # without that record, it is nobody's verdict
    assert verdicts.current_path(paths, stage) == paths.verifier_artefact(SID)


@pytest.mark.parametrize("recorded", [
    {"verifier_run_artefact": f"state/verifiers/{SID}.{NONCE}.json", "verifier_dispatched_at": "soon"},
    {"verifier_run_artefact": "state/verifiers/01-hello.json", "verifier_dispatched_at": 1.0},
    {"verifier_run_artefact": f"state/verifiers/02-other.{NONCE}.json", "verifier_dispatched_at": 1.0},
    {"verifier_run_artefact": f"../elsewhere/{SID}.{NONCE}.json", "verifier_dispatched_at": 1.0},
    {"verifier_run_artefact": f"state/verifiers/{SID}.{NONCE}.json", "verifier_dispatched_at": True},
])
def test_a_run_is_only_a_path_autometta_makes(paths, recorded):
    assert verdicts.run_of(paths, SID, recorded) is None
    with pytest.raises(Exception):
        verdicts.artefact_of(paths, dict(recorded, id=SID))


def test_begin_archives_the_last_attempt_and_refuses_a_planted_verdict(paths):
    first = verdicts.begin(paths, SID, None, now=time.time())
    assert first.artefact.parent == paths.verifiers and first.artefact.name.startswith(f"{SID}.")
    stage = {"id": SID, **first.fields(paths)}
    assert verdicts.run_of(paths, SID, stage) == first
    put(first.artefact.with_name(first.artefact.name + ".invalid.json"))  # the first attempt's bad answer
    second = verdicts.begin_stage(paths, stage)
    assert second.artefact != first.artefact and stage["verifier_run_artefact"].endswith(second.artefact.name)
    assert sorted(p.name for p in paths.verifiers.iterdir()) == []
    assert list(paths.archive.rglob(first.artefact.name + ".invalid.json"))
    put(paths.verifier_artefact(SID))  # something writes the old path before the next dispatch
    with pytest.raises(verdicts.Forged) as info:
        verdicts.begin_stage(paths, stage)
    assert info.value.marker == "verdict_forged" and "no verifier has run" not in info.value.message
    assert paths.verifier_artefact(SID).exists()  # left in place for review


def test_store_keeps_autometta_s_copy_and_a_final_message_at_its_run_path(paths):
    run = run_at(paths)
    verdicts.store(paths, SID, doc("FAIL"), run)  # given as the final message: no file at the run's path yet
    assert json.loads(run.artefact.read_text()) == json.loads(paths.verifier_artefact(SID).read_text()) == doc("FAIL")
    assert verdicts.forged(paths, SID, run, started=True) is None
    paths.verifier_artefact(SID).unlink()
    paths.verifier_artefact(SID).symlink_to(put(paths.root / "x.json"))
    verdicts.store(paths, SID, doc("FAIL"), run)  # replaces a symlink, never writes through it
    assert not paths.verifier_artefact(SID).is_symlink() and json.loads((paths.root / "x.json").read_text())["overall"] == "PASS"


# ------------------------------------------------------------------ the worker's run


def test_worker_run_alive_while_its_runner_runs(paths, tmp_path):
    fifo = tmp_path / "hold"
    os.mkfifo(fifo)
    hold = os.open(str(fifo), os.O_RDWR | os.O_NONBLOCK)  # kept open: what is written waits for the reader
    try:
        launched = launch(LaunchSpec(argv=["/bin/sh", "-c", f"read x < {fifo}"], cwd=paths.root,
                                     env=dict(os.environ), log_path=paths.log(SID, "worker"),
                                     exit_path=paths.exit_record(SID, "worker")))
        try:
            assert verdicts.worker_run_alive(paths, SID) == f"the worker's runner (pid {launched.pid}) is still running"
        finally:
            os.write(hold, b"go\n")
            os.waitpid(launched.pid, 0)
    finally:
        os.close(hold)
    assert verdicts.worker_run_alive(paths, SID) is None


def test_worker_run_alive_names_what_is_left_in_its_process_group(paths):
    # a process in the group the record names (the runner's group outlives the runner while a member lives)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        put(paths.exit_record(SID, "worker"), {"exit_code": 0, "runner_pid": child.pid})
        assert verdicts.worker_run_alive(paths, SID) == (
            f"process(es) {child.pid} of the worker's run (process group {child.pid}) are still running")
    finally:
        child.kill()
        child.wait()
    assert verdicts.worker_run_alive(paths, SID) is None


def test_worker_run_alive_names_a_setsid_escapee_by_the_runs_mark(paths):
    # left the group and outlived the runner, but exec'd with the run's mark in its environment
    mark = processes.new_mark()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True,
                             env={**os.environ, processes.ENV: mark})
    try:
        put(paths.exit_record(SID, "worker"), {"exit_code": 0, "runner_pid": 999999, "run_id": mark})
        assert verdicts.worker_run_alive(paths, SID) == (
            f"process(es) {child.pid} of the worker's run (marked {mark}) are still running")
    finally:
        child.kill()
        child.wait()
    assert verdicts.worker_run_alive(paths, SID) is None


# ------------------------------------------------------------------ the decisions


def in_flight(**stage_fields) -> tuple:
    doc_ = initial_state()
    stage = new_stage(SID, "Script Worker <w@local>", "Script Checker <c@local>")
    stage.update(status="in_progress", **stage_fields)
    doc_["stages"].append(stage)
    doc_["current_stage"] = SID
    return doc_, d.InFlight(stage=stage)


def test_a_forged_verdict_fails_the_stage_and_stops_what_runs():
    doc_, c = in_flight(worker_pid=7, worker_started=1.0)
    c.worker = d.Proc(pid=7, alive=True, elapsed=5)
    c.forged = "state/verifiers/01-hello.json exists, but no verifier has run for this stage"
    c.artefact = verdicts.Artefact("verdict", "PASS", doc=doc())  # never read
    dec = d.decide(d.Facts(repo="/r", budget=initial_budget(), state=doc_, cur=c))
    assert dec.finish == ("failed", f"verdict_forged: {c.forged}")
    assert dec.effects == [d.Kill("worker"), d.Account("worker")]


def test_a_forged_verdict_wins_over_a_verdict_of_a_dead_verifier():
    doc_, c = in_flight(verifier_pid=9, verifier_attempts=1, worker_tree="t")
    c.verifier = d.Proc(pid=9, exit={"exit_code": 0})
    c.forged = "... is a symlink"
    c.artefact = verdicts.Artefact("verdict", "PASS", doc=doc())
    dec = d.decide(d.Facts(repo="/r", budget=initial_budget(), state=doc_, cur=c))
    assert dec.finish[0] == "failed" and dec.effects == [d.Account("verifier")]


@pytest.mark.parametrize("reaped_now", [True, False])
def test_no_verifier_is_dispatched_while_a_process_of_the_workers_run_lives(reaped_now):
    from autometta.envelope import Envelope

    if reaped_now:  # the worker's runner just ended: reap it (a transition), dispatch nothing
        doc_, c = in_flight(worker_pid=7, worker_started=1.0)
        c.worker = d.Proc(pid=7, exit={"exit_code": 0})
        c.envelope = Envelope("pass", doc={})
    else:  # a later tick: nothing to record, nothing to do
        doc_, c = in_flight(worker_tree="t", worker_exit=0)
    c.worker_leftover = "process(es) 42 of the worker's run (process group 7) are still running"
    dec = d.decide(d.Facts(repo="/r", budget=initial_budget(), state=doc_, cur=c))
    assert d.Launch("verifier") not in dec.effects and dec.finish is None
    assert dec.transition == reaped_now and "so the verifier waits for it" in dec.message
    c.worker_leftover = None
    if reaped_now:
        doc_, c2 = in_flight(worker_pid=7, worker_started=1.0)
        c2.worker, c2.envelope = c.worker, c.envelope
        c = c2
    assert d.Launch("verifier") in d.decide(d.Facts(repo="/r", budget=initial_budget(), state=doc_, cur=c)).effects


def test_a_verdict_is_kept_at_the_old_path_once_acted_on():
    doc_, c = in_flight(verifier_pid=9, verifier_attempts=1, worker_tree="t")
    c.verifier = d.Proc(pid=9, exit={"exit_code": 0})
    c.artefact = verdicts.Artefact("verdict", "PASS", doc=doc("PASS", "PASS", "FAIL"))
    dec = d.decide(d.Facts(repo="/r", budget=initial_budget(), state=doc_, cur=c))
    assert dec.effects == [d.Account("verifier"), d.SaveArtefact(doc("PASS", "PASS", "FAIL"))]
    assert dec.finish == ("verifier_failed", "verifier_inconsistent: overall PASS but criterion 2 (c2) is FAIL")


def test_a_legacy_stage_keeps_its_bash_panel_votes(paths):
    put(paths.verifier_artefact(SID))
    put(paths.verifiers / f"{SID}.panel" / "opus.json")
    assert verdicts.forged(paths, SID, None, started=True, legacy=True) is None
    assert verdicts.forged(paths, SID, None, started=True) is not None


def test_temporary_files_beside_a_verdict_are_no_forgery(paths):
    """An editor or an atomic write leaves a temporary file next to the verdict for a moment."""
    run = run_at(paths)
    plan(paths, run)
    put(run.artefact.with_name(run.artefact.name + ".tmp"))
    put(paths.verifiers / f".{SID}.json.x1y2.tmp")
    put(paths.verifiers / f"{SID}.panel" / f".a.{NONCE}.json.x1y2.tmp")
    put(paths.verifiers / f"{SID}.panel" / f"a.{NONCE}.json~")
    assert verdicts.forged(paths, SID, run, started=True) is None

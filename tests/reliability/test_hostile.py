"""Hostile and broken input: each gives one clear error, a non-zero exit where a command
failed, changes no file it should not, and writes nothing outside the repo and the home."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Dict

import pytest

from tests.testing.fuzz_world import TRACEBACK
from tests.testing.repos import write_card
from tests.testing.tick_processes import await_all_runners, tick_process
from tests.testing.ticks import git, read_state, stage, tick_once, verdict

SID = "01-hello"
HUGE = b"x" * (10 * 1024 * 1024)

BROKEN: Dict[str, bytes] = {
    "truncated": None,  # the first half of the real file, filled in per test
    "empty": b"",
    "binary": bytes(range(256)) * 4,
    "huge": HUGE,
}


def _snapshot(*roots: Path) -> Dict[str, bytes]:
    """Every regular file under ``roots`` (logs and the lock excluded) -> its bytes."""
    out = {}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if d not in (".git", "log", "dashboard")]
            for name in filenames:
                p = Path(dirpath) / name
                if name.endswith(".lock") or p.is_symlink():
                    continue
                out[str(p)] = p.read_bytes()
    return out


def _content(kind: str, original: bytes) -> bytes:
    if kind == "truncated":
        return original[: max(1, len(original) // 2)]
    if kind == "wrong-type":
        return b"[1, 2, 3]\n"
    if kind == "wrong-field":  # the right shape, one field of the wrong type
        if original.lstrip().startswith(b"{"):
            doc = json.loads(original)
            ints = [k for k, v in doc.items() if isinstance(v, int) and not isinstance(v, bool)]
            lists = [k for k, v in doc.items() if isinstance(v, list)]
            doc[(ints or lists)[0]] = "lots"
            return json.dumps(doc).encode()
        import re
        return re.sub(rb"(?m)^tick_count: .*$", b"tick_count: many", original)
    return BROKEN[kind]


def _no_traceback(result) -> None:
    assert "Traceback" not in result.stderr, result.stderr[-3000:]


@pytest.mark.parametrize("kind", ["truncated", "empty", "binary", "huge", "wrong-type", "wrong-field"])
def test_broken_budget_stops_the_repo_and_writes_nothing(setup, kind):
    repo, home, add = setup
    add(SID)
    path = repo / "state" / "budget.json"
    path.write_bytes(_content(kind, path.read_bytes()))
    before = _snapshot(repo / "state", home)
    result = tick_process()
    _no_traceback(result)
    assert result.returncode == 1
    lines = [l for l in result.stderr.splitlines() if "budget.json" in l]
    assert len(lines) == 1, result.stderr
    assert _snapshot(repo / "state", home) == before
    assert stage(repo, SID)["status"] == "pending"


@pytest.mark.parametrize("kind", ["truncated", "empty", "binary", "huge", "wrong-type", "wrong-field"])
def test_broken_state_is_restored_from_bak_or_halts(setup, kind):
    repo, home, add = setup
    add(SID)  # add-stage leaves the pre-add document in state.yaml.bak
    path = repo / "state" / "state.yaml"
    good_bak = (repo / "state" / "state.yaml.bak").read_bytes()
    path.write_bytes(_content(kind, path.read_bytes()))
    result = tick_process()
    _no_traceback(result)
    assert "state-integrity" in result.stderr and "restored from .bak" in result.stderr
    assert read_state(repo)  # valid again
    await_all_runners(repo)
    # without a usable .bak: the repo halts with state-corrupt and the broken file is left for review
    # (half of a YAML document can itself be a valid, shorter one; cut mid-flow instead)
    broken = _content(kind, good_bak) if kind != "truncated" else good_bak.split(b"stages:")[0] + b"stages: [\n"
    path.write_bytes(broken)
    (repo / "state" / "state.yaml.bak").write_bytes(b"")
    for record in (home / "books").glob("*.json"):  # nor a copy in the books (tests/reliability/trust)
        record.unlink()
    result = tick_process()
    _no_traceback(result)
    assert "state-corrupt" in result.stderr
    assert path.read_bytes() == broken
    assert json.loads((repo / "state" / "budget.json").read_text())["halt_reason"] == "state-corrupt"


@pytest.mark.parametrize("kind", ["truncated", "empty", "binary", "huge", "wrong-type"])
def test_broken_subscriber_is_reported_and_others_go_on(setup, kind):
    repo, home, add = setup
    add(SID)
    sub = next((home / "subscribers").glob("*.yaml"))
    original = sub.read_bytes()
    (home / "subscribers" / "zz-broken.yaml").write_bytes(_content(kind, original) if kind != "truncated"
                                                            else b"repo_path: /nowhere\nenabled: [")
    result = tick_process()
    _no_traceback(result)
    assert result.returncode == 1
    assert any("zz-broken.yaml" in l for l in result.stderr.splitlines())
    assert stage(repo, SID)["status"] == "in_progress"  # the good repo still ticked
    await_all_runners(repo)


@pytest.mark.parametrize("kind", ["truncated", "empty", "binary", "huge", "wrong-type", "wrong-field"])
def test_broken_envelope_stalls_the_stage_and_is_kept(setup, kind):
    repo, home, add = setup
    add(SID)
    tick_once(home)
    await_all_runners(repo)
    env = repo / "state" / "handoffs" / f"{SID}.json"
    broken = _content(kind, env.read_bytes())
    env.write_bytes(broken)
    result = tick_process()
    _no_traceback(result)
    s = stage(repo, SID)
    assert s["status"] == "stalled" and s["stall_marker"].startswith("worker_envelope_"), s
    assert s.get("verifier_pid") is None


@pytest.mark.parametrize("kind", ["truncated", "empty", "binary", "huge", "wrong-type"])
def test_broken_verdict_never_commits(setup, kind):
    repo, home, add = setup
    body = verdict(SID)
    broken = _content(kind, body.encode())
    if kind == "huge":
        cmd = "head -c 10485760 /dev/zero | tr '\\\\0' x > \"$AUTOMETTA_ARTEFACT\""
    else:
        (repo.parent / "verdict.bin").write_bytes(broken)
        cmd = f"cat '{repo.parent / 'verdict.bin'}' > \"$AUTOMETTA_ARTEFACT\""
    add(SID, verifier_cmd=cmd)
    head = git(repo, "rev-parse", "HEAD")
    for _ in range(6):
        result = tick_process()
        _no_traceback(result)
        await_all_runners(repo)
        if stage(repo, SID)["status"] != "in_progress":
            break
    s = stage(repo, SID)
    assert s["status"] in ("stalled", "verifier_failed"), s
    assert git(repo, "rev-parse", "HEAD") == head


HOSTILE_IDS = ["--upload-pack=touch PWNED", "01-$(touch PWNED)", "../../01-escape", "01-a\nb", "01-" + "a" * 5000]


@pytest.mark.parametrize("stage_id", HOSTILE_IDS)
def test_card_with_hostile_id_is_refused(setup, run, stage_id):
    repo, home, _ = setup
    card = repo / "docs" / "stages" / "hostile.md"
    card.parent.mkdir(parents=True, exist_ok=True)
    card.write_text(write_card(repo, "01-x").read_text().replace("01-x", stage_id))
    before = (repo / "state" / "state.yaml").read_bytes()
    res = run("add-stage", str(repo), str(card))
    assert res.code == 1
    assert res.err.strip() and "Traceback" not in res.err
    assert (repo / "state" / "state.yaml").read_bytes() == before
    assert not list(repo.rglob("PWNED")) and not (repo.parent / "PWNED").exists()


@pytest.mark.parametrize("change", ["no-deliverables", "no-criteria", "budget-minus", "huge"])
def test_broken_card_is_refused(setup, run, change):
    repo, home, _ = setup
    card = write_card(repo, "01-broken")
    text = card.read_text()
    if change == "no-deliverables":
        text = text.replace("## Deliverables\n- `out/01-broken.txt`\n", "")
    elif change == "no-criteria":
        text = text.replace("## Acceptance criteria\n1. The file exists.\n", "")
    elif change == "budget-minus":
        text = text.replace("Worker wall-clock: 10 minutes", "Worker wall-clock: -5m")
    else:
        text = text + ("lorem ipsum " * 1024 * 1024)
    card.write_text(text)
    before = (repo / "state" / "state.yaml").read_bytes()
    res = run("add-stage", str(repo), str(card))
    assert res.code == 1, res
    assert res.err.strip() and "Traceback" not in res.err
    assert (repo / "state" / "state.yaml").read_bytes() == before


def test_symlinked_state_file_is_replaced_not_written_through(setup, tmp_path):
    repo, home, add = setup
    add(SID)
    outside = tmp_path / "outside.yaml"
    state_yaml = repo / "state" / "state.yaml"
    outside.write_bytes(state_yaml.read_bytes())
    state_yaml.unlink()
    state_yaml.symlink_to(outside)
    before = outside.read_bytes()
    result = tick_process()
    _no_traceback(result)
    await_all_runners(repo)
    assert outside.read_bytes() == before
    assert not state_yaml.is_symlink()


@pytest.mark.parametrize("folder", ["state", "state/verifiers", "state/logs", "state/handoffs"])
def test_symlinked_state_folder_is_refused(setup, tmp_path, folder):
    import shutil

    repo, home, add = setup
    add(SID)
    outside = tmp_path / "elsewhere"
    shutil.copytree(repo / folder, outside)
    shutil.rmtree(repo / folder)
    (repo / folder).symlink_to(outside)
    before = _snapshot(outside)
    result = tick_process()
    _no_traceback(result)
    assert result.returncode == 1
    assert "is a symlink" in result.stderr and "refuses" in result.stderr
    assert _snapshot(outside) == before


def test_headline_cannot_inject_into_git(setup):
    repo, home, add = setup
    headline = "$(touch PWNED) `touch PWNED2`\n--upload-pack=touch PWNED3\n\nSigned-off-by: evil"
    doc = json.loads(verdict(SID))
    doc["headline"] = headline
    (repo.parent / "v.json").write_text(json.dumps(doc))
    add(SID, verifier_cmd=f"cat '{repo.parent / 'v.json'}' > \"$AUTOMETTA_ARTEFACT\"")
    for _ in range(4):
        tick_once(home)
        await_all_runners(repo)
    assert stage(repo, SID)["status"] == "completed"
    subject = git(repo, "log", "-1", "--format=%s").strip()
    assert subject.startswith(f"{SID}: $(touch PWNED)") and "\n" not in subject
    assert git(repo, "log", "-1", "--format=%(trailers:key=Signed-off-by,valueonly)").strip() == ""
    for name in ("PWNED", "PWNED2", "PWNED3"):
        assert not (repo / name).exists() and not (repo.parent / name).exists()


@pytest.mark.parametrize("stage_id", ["--upload-pack=touch PWNED", "01-$(touch PWNED)", "01-a;touch PWNED"])
def test_hostile_id_edited_into_state_is_refused(setup, stage_id):
    from autometta.books import state as states
    from autometta import yamlsub
    from autometta.paths import RepoPaths

    repo, home, add = setup
    add(SID)
    paths = RepoPaths(repo)
    doc = states.load_state(paths)
    doc["stages"].insert(0, states.new_stage(stage_id, "w", "v"))
    paths.state_yaml.write_text(yamlsub.dumps(doc))  # by hand: save_state would refuse it
    head = git(repo, "rev-parse", "HEAD")
    result = tick_process()
    _no_traceback(result)
    assert "restored from .bak" in result.stderr
    assert stage_id not in states.stage_ids(states.load_state(paths))
    await_all_runners(repo)
    assert git(repo, "rev-parse", "HEAD") == head
    assert not list(repo.parent.rglob("PWNED"))


def test_restoring_from_bak_keeps_the_last_change_and_says_why(setup):
    repo, home, add = setup
    add(SID)
    path = repo / "state" / "state.yaml"
    path.write_text(path.read_text().replace("tick_count: 0", "tick_count: many"))
    result = tick_process()
    _no_traceback(result)
    await_all_runners(repo)
    assert "tick_count" in result.stderr  # what was wrong with the file
    assert SID in [s["id"] for s in read_state(repo)["stages"]]


def _break_budget(path: Path, kind: str) -> None:
    doc = json.loads(path.read_text())
    if kind == "wrong-type":
        doc["tokens_spent"] = "lots"
    elif kind == "not-a-number":
        doc["cost_usd_spent"] = "NaN"
    else:
        doc["tokens_spent"] = "DEEP"
    text = json.dumps(doc)
    if kind == "deep-list":
        text = text.replace('"DEEP"', "[" * 5000 + "]" * 5000)
    elif kind == "not-a-number":
        text = text.replace('"NaN"', "NaN")
    path.write_text(text)


@pytest.mark.parametrize("kind", ["wrong-type", "deep-list", "not-a-number"])
def test_views_show_a_broken_budget_as_unreadable_and_the_other_repos(setup, run, tmp_path, kind):
    """report and dashboard crashed (TypeError, ValueError, RecursionError) on these; now every view
    names the file for that repo and shows the others."""
    from tests.testing.cli import run_process
    from tests.testing.repos import make_repo

    repo, home, add = setup
    add(SID)
    other = make_repo(tmp_path / "second-repo")
    assert run("subscribe", str(other)).code == 0
    _break_budget(repo / "state" / "budget.json", kind)
    for cmd in [("report",), ("report", "--json"), ("dashboard",), ("dashboard", "--json"), ("status",),
                ("status", "--json"), ("ticker", "--once"), ("ticker", "--json"), ("status", "--watch", "--once")]:
        res = run_process(*cmd)
        assert "Traceback" not in res.err, (cmd, res.err)
        assert res.code in (0, 1), (cmd, res.code, res.err)
        shown = res.out + res.err
        if cmd == ("dashboard",):
            shown = (home / "dashboard" / "index.html").read_text()
        assert "budget.json" in shown and other.name in shown, (cmd, shown[-3000:])
    page = (home / "dashboard" / "index.html").read_text()
    assert 'class="need k-unreadable"' in page  # what needs you: the file, named


@pytest.mark.parametrize("target", ["outside", "system"])
def test_a_handoff_symlinked_outside_the_repo_is_refused(setup, tmp_path, target):
    repo, home, add = setup
    secret = tmp_path / "outside.json"
    secret.write_text(json.dumps({"stage_id": SID, "status": "pass", "deliverables": [], "notes": "TOP-SECRET-NOTES"}))
    link_to = str(secret) if target == "outside" else "/etc/passwd"
    add(SID, worker_cmd=f"printf 'hi\\n' > hello.txt && ln -s '{link_to}' \"$AUTOMETTA_HANDOFF\"")
    tick_once(home)
    await_all_runners(repo)
    result = tick_process()
    _no_traceback(result)
    s = stage(repo, SID)
    assert s["status"] == "stalled" and s["stall_marker"] == "worker_envelope_invalid", s
    assert "is a symlink" in result.stderr and f"{SID}.json" in result.stderr, result.stderr
    kept = repo / "state" / "handoffs" / f"{SID}.invalid.json"
    assert kept.is_symlink()  # kept for review as it was, never read
    for path in [repo / "state" / "state.yaml", *(home / "log").glob("*.log")]:
        assert "TOP-SECRET-NOTES" not in path.read_text() and "root:x:0" not in path.read_text()


def test_a_verdict_symlinked_outside_the_repo_never_counts(setup, tmp_path):
    repo, home, add = setup
    outside = tmp_path / "verdict.json"
    outside.write_text(verdict(SID))  # a valid PASS, but not the verifier's own file
    add(SID, verifier_cmd=f"ln -s '{outside}' \"$AUTOMETTA_ARTEFACT\"")
    head = git(repo, "rev-parse", "HEAD")
    for _ in range(4):
        result = tick_process()
        _no_traceback(result)
        await_all_runners(repo)
    s = stage(repo, SID)
    assert s["status"] == "failed" and s["stall_marker"].startswith("verdict_forged: ") \
        and "is a symlink" in s["stall_marker"], s
    assert git(repo, "rev-parse", "HEAD") == head


def test_an_invalid_current_stage_halts_with_invalid_stage_id_as_documented(setup):
    repo, home, add = setup
    add(SID)
    path = repo / "state" / "state.yaml"
    path.write_text(path.read_text().replace("current_stage: null", "current_stage: Not_An_Id"))
    result = tick_process()
    _no_traceback(result)
    budget = json.loads((repo / "state" / "budget.json").read_text())
    assert budget["halt_reason"] == "invalid-stage-id"
    doc = (Path(__file__).resolve().parents[2] / "docs" / "troubleshooting.md").read_text()
    entry = doc.split("### `invalid-stage-id`", 1)[1].split("\n### ", 1)[0]
    assert "`current_stage`" in entry


def test_an_invalid_stage_record_id_restores_the_bak_as_documented(setup):
    """The documented invalid-stage-id halt for a *pending* stage can never happen (the schema rejects
    the file first); the docs say what does happen, and this is it."""
    repo, home, add = setup
    add(SID)
    path = repo / "state" / "state.yaml"
    path.write_text(path.read_text().replace(f"id: {SID}", "id: Bad_Id"))
    result = tick_process()
    _no_traceback(result)
    assert "restored from .bak" in result.stderr and "Bad_Id" in result.stderr, result.stderr
    assert list((repo / "state").glob("state.yaml.corrupt-*"))
    assert json.loads((repo / "state" / "budget.json").read_text())["halt_reason"] != "invalid-stage-id"
    await_all_runners(repo)
    doc = (Path(__file__).resolve().parents[2] / "docs" / "troubleshooting.md").read_text()
    entry = doc.split("### `invalid-stage-id`", 1)[1].split("\n### ", 1)[0]
    assert "restores `state.yaml` from" in entry and "pending stage" not in entry, entry


def test_a_handoff_that_is_a_fifo_stalls_the_stage_instead_of_hanging_the_tick(setup):
    repo, home, add = setup
    add(SID, worker_cmd='mkfifo "$AUTOMETTA_HANDOFF"')
    tick_once(home)
    await_all_runners(repo)
    result = tick_process(timeout=60)  # reading a FIFO waits for a writer that never comes
    _no_traceback(result)
    s = stage(repo, SID)
    assert s["status"] == "stalled" and s["stall_marker"] == "worker_envelope_invalid", s
    assert "not a regular file" in result.stderr


@pytest.mark.parametrize("kind", ["wrong-type", "outside"])
def test_a_books_record_not_as_autometta_writes_it_is_no_record(setup, tmp_path, kind):
    """The books in the controller home, read by every tick: an entry of the wrong type crashed the
    tick (AttributeError: 'str' object has no attribute 'get'), and an entry naming a file outside
    the repo had the tick move that file aside and write the record's copy in its place."""
    repo, home, add = setup
    add(SID)
    result = tick_process()  # claimed; its worker runs: the books say the stage is in flight
    _no_traceback(result)
    await_all_runners(repo)
    [record] = (home / "books").glob("*.json")
    doc = json.loads(record.read_text())
    assert doc["in_flight"] == [SID]
    victim = tmp_path / "victim.txt"
    victim.write_text("mine\n")
    if kind == "outside":
        doc["files"][os.path.relpath(victim, repo)] = {"sha256": "0" * 64, "stat": None, "copy": True}
        doc["copies"]["0" * 64] = "PWNED\n"
    else:
        doc["files"]["state/state.yaml"] = "lots"
        doc["copies"] = ["a list"]
    record.write_text(json.dumps(doc))
    result = tick_process()
    assert not TRACEBACK.search(result.stderr), result.stderr  # not even one turned into a line
    assert result.returncode in (0, 1), result.stderr
    assert victim.read_text() == "mine\n" and not list(tmp_path.glob("victim.txt.tampered-*"))
    assert read_state(repo)["stages"][0]["id"] == SID  # state.yaml still reads


def test_a_fifo_in_place_of_the_heartbeat_hangs_no_view(setup):
    """An agent can put a FIFO where the heartbeat's findings are: the dashboard (and the tick's
    refresh of it) opened it for reading and waited for a writer forever."""
    from tests.testing.cli import run_process

    repo, home, add = setup
    add(SID)
    _no_traceback(tick_process())
    await_all_runners(repo)
    assert run_process("heartbeat").code == 0 and run_process("dashboard").code == 0
    path = repo / "state" / "heartbeat.json"
    assert path.is_file()
    path.unlink()
    os.mkfifo(path)
    for cmd in [("status", "--json"), ("ticker", "--once"), ("report",), ("dashboard", "--json"), ("tick",)]:
        res = run_process(*cmd)  # a hang is a TimeoutExpired
        assert res.code in (0, 1) and not TRACEBACK.search(res.err), (cmd, res.code, res.err)


@pytest.mark.parametrize("plant", ["fifo", "symlink", "hard link"])
def test_what_a_worker_leaves_at_its_verifier_s_log_path_is_never_written_through(setup, tmp_path, plant):
    """The verifier's log is opened anew in state/logs/, which the worker can write: a FIFO left there
    hung the tick that started the verifier (opening it for writing waits for a reader forever); a
    symlink or a hard link to a file of the user's had that file emptied and the verifier's log
    written into it."""
    from tests.testing.ticks import PASS_WORKER

    repo, home, add = setup
    victim = tmp_path / "victim.txt"
    victim.write_text("mine\n")
    log = f'"$(dirname "$AUTOMETTA_HANDOFF")/../logs/{SID}-verifier.log"'
    how = {"fifo": f"mkfifo {log}", "symlink": f"ln -s '{victim}' {log}", "hard link": f"ln '{victim}' {log}"}
    add(SID, worker_cmd=f"{PASS_WORKER.replace('{id}', SID)} && {how[plant]}")
    tick_once(home)
    await_all_runners(repo)
    assert os.path.lexists(repo / "state" / "logs" / f"{SID}-verifier.log")  # planted
    for _ in range(3):  # the verifier starts, then its PASS lands
        result = tick_process(timeout=60)  # a hang is a TimeoutExpired
        assert not TRACEBACK.search(result.stderr), result.stderr
        await_all_runners(repo)
    assert stage(repo, SID)["status"] == "completed", stage(repo, SID)
    assert victim.read_text() == "mine\n"
    assert (repo / "state" / "logs" / f"{SID}-verifier.log").is_file()


def test_a_one_shot_record_of_the_wrong_shape_is_no_record(setup, run):
    """state/logs/<id>-oneshot.json, which dispatch writes in the agents' reach: a branch that is a list
    crashed tick --repair (TypeError: unhashable type: 'list'); it is now read through its schema."""
    from tests.testing.cli import run_process
    from tests.testing.ticks import commit_all, script_card

    repo, home, _ = setup
    card = script_card(repo, SID)
    commit_all(repo, "card")
    assert run("dispatch", "--wait", str(card)).code == 0
    record = repo / "state" / "logs" / f"{SID}-oneshot.json"
    doc = json.loads(record.read_text())
    assert doc["worktree"]
    doc["branch"] = ["a", "list"]
    record.write_text(json.dumps(doc))
    for cmd in [("tick", "--repair", "--dry-run"), ("tick", "--repair"), ("verify", str(card))]:
        res = run_process(*cmd)
        assert res.code in (0, 1) and not TRACEBACK.search(res.err), (cmd, res.code, res.err)


def test_a_fifo_in_place_of_the_spend_ledger_hangs_no_tick(setup):
    """The ledger (<home>/ledger/<repo>-<hash>.jsonl) is read before each run is booked: a FIFO in its
    place had the tick wait for a writer forever; the run's spend now goes to budget.json directly."""
    repo, home, add = setup
    add(SID)
    for _ in range(2):  # the worker runs, then is booked in the ledger
        _no_traceback(tick_process())
        await_all_runners(repo)
    [ledger] = (home / "ledger").glob("*.jsonl")
    ledger.unlink()
    os.mkfifo(ledger)
    for _ in range(2):  # the verifier runs, then is booked: not in the ledger, in budget.json
        result = tick_process(timeout=60)  # a hang is a TimeoutExpired
        assert not TRACEBACK.search(result.stderr), result.stderr
        await_all_runners(repo)
    assert stage(repo, SID)["status"] == "completed"

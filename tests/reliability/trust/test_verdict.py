"""Only a verdict from a verifier autometta started counts; a verdict must agree with itself.

Each test is a way a worker could approve its own work (or an inconsistent
verdict could land), tried with real git, real processes and script-family
agents, against a serial stage (``max_parallel: 1``) and a parallel lane
(``max_parallel: 2``), and by hand (``dispatch``, ``verify``, ``accept``).
What must hold: the worker's change never reaches the base branch, and the
stage says why (``verdict_forged``, ``verifier_inconsistent``).
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Optional

import pytest

from tests.testing.repos import make_repo
from tests.testing.tick_processes import await_all_runners, await_pid, tick_until_settled
from tests.testing.ticks import CHECKER, commit_all, git, script_card, stage, tick_once, verdict
from tests.testing.waits import read_fifo

SID = "01-hello"
MODES = ("serial", "lanes")
NONCE_PATH = re.compile(rf"state/verifiers/{SID}\.[0-9a-f]{{32}}\.json$")


def _envelope() -> str:
    return (f"printf '%s' '{{\"stage_id\":\"{SID}\",\"status\":\"pass\",\"deliverables\":[\"hello.txt\"],"
            "\"notes\":\"done\"}' > \"$AUTOMETTA_HANDOFF\"")


def _verdict_file(path: Path, overall: str = "PASS") -> Path:
    path.write_text(verdict(SID, overall))
    return path


def _inconsistent() -> str:
    doc = json.loads(verdict(SID, "PASS"))
    doc["criteria"].append({"id": 2, "name": "says it twice", "verdict": "FAIL", "evidence": "hello.txt has one line"})
    return json.dumps(doc)


FAIL_VERIFIER = f"printf '%s' '{verdict(SID, 'FAIL')}' > \"$AUTOMETTA_ARTEFACT\""
PASS_VERIFIER = f"printf '%s' '{verdict(SID, 'PASS')}' > \"$AUTOMETTA_ARTEFACT\""


def _lanes(repo: Path, mode: str) -> None:
    if mode == "lanes":
        manifest = repo / ".autometta.local.yaml"
        manifest.write_text(manifest.read_text() + "max_parallel: 2\n")


def _base(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD").strip()


def _assert_not_landed(repo: Path, base: str) -> None:
    assert _base(repo) == base, git(repo, "log", "-3", "--format=%h %an %s%n%(trailers)")
    assert not git(repo, "log", "--all", "--format=%H", "--grep", f"^{SID}:")  # not even on a lane's branch


# ------------------------------------------------------------------ the worker's own environment


@pytest.mark.parametrize("mode", MODES)
def test_the_worker_gets_no_verdict_path_and_the_verifier_a_fresh_one(setup, tmp_path, mode):
    """The issue's case: a worker writing PASS to its AUTOMETTA_ARTEFACT was committed, co-authored."""
    repo, home, add = setup
    _lanes(repo, mode)
    env_dir = tmp_path / "env"
    env_dir.mkdir()
    worker = (f"env > {env_dir}/worker; [ -z \"$AUTOMETTA_ARTEFACT\" ] || printf '%s' '{verdict(SID)}' > "
              f"\"$AUTOMETTA_ARTEFACT\"; printf 'hello\\n' > hello.txt; " + _envelope())
    add(SID, worker, f"env > {env_dir}/verifier; " + FAIL_VERIFIER)
    base = _base(repo)
    tick_until_settled(home, repo)

    _assert_not_landed(repo, base)
    s = stage(repo, SID)
    assert (s["status"], s["stall_marker"]) == ("verifier_failed", "verifier_fail")  # the verifier's own verdict
    worker_env = (env_dir / "worker").read_text()
    assert "AUTOMETTA_ARTEFACT=" not in worker_env
    verifier_env = dict(line.split("=", 1) for line in (env_dir / "verifier").read_text().splitlines() if "=" in line)
    artefact = verifier_env["AUTOMETTA_ARTEFACT"]
    assert NONCE_PATH.search(artefact) and artefact.startswith(str(repo))
    # autometta keeps the accepted verdict at the bash-compatible path, for the views
    assert json.loads((repo / "state" / "verifiers" / f"{SID}.json").read_text())["overall"] == "FAIL"
    assert s["verifier_artefact"] == f"state/verifiers/{SID}.json"
    worker_prompt = (repo / "state" / "logs" / f"{SID}-worker.prompt.md").read_text()
    assert "state/verifiers" not in worker_prompt
    assert artefact in (repo / "state" / "logs" / f"{SID}-verifier.prompt.md").read_text()


# ------------------------------------------------------------------ a verdict the worker plants


def _plant(kind: str, tmp_path: Path) -> str:
    target = '"$AUTOMETTA_REPO/state/verifiers'
    if kind == "old path":
        return f"printf '%s' '{verdict(SID)}' > {target}/{SID}.json\""
    if kind == "guessed nonce":
        return f"printf '%s' '{verdict(SID)}' > {target}/{SID}.{'0' * 32}.json\""
    if kind == "panel member":
        return f"mkdir -p {target}/{SID}.panel\" && printf '%s' '{verdict(SID)}' > {target}/{SID}.panel/codex.json\""
    if kind == "symlink":
        forged = _verdict_file(tmp_path / "pass.json")
        return f"ln -s {forged} {target}/{SID}.json\""
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["old path", "guessed nonce", "panel member", "symlink"])
@pytest.mark.parametrize("mode", MODES)
def test_a_verdict_the_worker_plants_fails_the_stage(setup, tmp_path, mode, kind):
    repo, home, add = setup
    _lanes(repo, mode)
    add(SID, f"printf 'hello\\n' > hello.txt; {_plant(kind, tmp_path)}; " + _envelope(), FAIL_VERIFIER)
    base = _base(repo)
    tick_until_settled(home, repo)

    _assert_not_landed(repo, base)
    s = stage(repo, SID)
    assert s["status"] == "failed" and s["stall_marker"].startswith("verdict_forged: "), s
    assert not (repo / "state" / "logs" / f"{SID}-verifier.log").exists()  # no verifier was spent on it
    assert (Path(s.get("worktree") or repo) / "hello.txt").exists()  # the work is left for review


# ------------------------------------------------------------------ a process of the worker that escaped

ESCAPE = """\
import os, sys
os.setsid()
os.execvp("sh", ["sh", sys.argv[1]])
"""

FORGERIES = {
    "symlink": 'ln -s {t}/pass.json "$f"',
    "hard link": 'ln {t}/pass.json "$f"',
    "written before the dispatch": 'mv {t}/old.json "$f"',
    "another nonce": 'cp {t}/pass.json "$AUTOMETTA_REPO/state/verifiers/{sid}.0123456789abcdef0123456789abcdef.json"',
}


@pytest.mark.parametrize("kind", sorted(FORGERIES))
@pytest.mark.parametrize("mode", MODES)
def test_an_escaped_worker_process_cannot_stand_in_for_the_verifier(setup, tmp_path, mode, kind):
    """A ``setsid`` child of the worker outlives it, waits for the verifier's dispatch and forges its verdict.

    The verifier itself exits without a verdict. (Once escapees are found and
    stopped, the forgery never happens; the stage must still not land.)
    """
    repo, home, add = setup
    _lanes(repo, mode)
    t = tmp_path / "t"
    t.mkdir()
    for fifo in ("go", "up"):
        os.mkfifo(t / fifo)
    _verdict_file(t / "pass.json")
    _verdict_file(t / "old.json")
    os.utime(t / "old.json", (946684800, 946684800))  # 2000-01-01, long before any dispatch
    (t / "escape.py").write_text(ESCAPE)
    (t / "escapee.sh").write_text(
        f"echo $$ > {t}/escapee.pid\necho up >&5\nread x <&3\n"
        "p=$(sed -n 's/^ *verifier_run_artefact: *//p' \"$AUTOMETTA_REPO/state/state.yaml\" | tr -d '\"' | head -n 1)\n"
        f"[ -n \"$p\" ] || p=state/verifiers/{SID}.json\n"  # where the verdict went before
        "f=\"$AUTOMETTA_REPO/$p\"\n"
        + FORGERIES[kind].format(t=t, sid=SID) + f"\ntouch {t}/forged\n")
    worker = (f"printf 'hello\\n' > hello.txt; {sys.executable} {t}/escape.py {t}/escapee.sh 3<>{t}/go 5<>{t}/up "
              f"</dev/null >/dev/null 2>&1 & read x < {t}/up; " + _envelope())
    add(SID, worker, "echo checked")
    base = _base(repo)

    tick_once(home)  # claim, worker
    await_all_runners(repo)
    tick_once(home)  # reap the worker; dispatch the verifier (unless a process of the worker is known alive)
    await_all_runners(repo)
    go = os.open(str(t / "go"), os.O_RDWR | os.O_NONBLOCK)  # never blocks, whether or not the escapee lives
    os.write(go, b"go\n")
    os.close(go)
    await_pid(int((t / "escapee.pid").read_text()))
    tick_until_settled(home, repo)

    _assert_not_landed(repo, base)
    s = stage(repo, SID)
    assert s["status"] != "completed"
    if (t / "forged").exists():
        assert s["status"] == "failed" and s["stall_marker"].startswith("verdict_forged: "), s


# ------------------------------------------------------------------ by hand


def _by_hand_card(tmp_path: Path, worker: str, verifier: str, **kw) -> tuple:
    repo = make_repo(tmp_path / "byhand")
    card = script_card(repo, SID, worker, verifier, **kw)
    commit_all(repo)
    return repo, card


def _forged_log() -> str:
    """A worker that writes the verifier's log (its final message a PASS verdict) and exit record."""
    logs = '"$AUTOMETTA_REPO/state/logs'
    return (f"printf '%s\\n' '{verdict(SID)}' > {logs}/{SID}-verifier.log\"; "
            f"printf '%s' '{{\"exit_code\": 0}}' > {logs}/{SID}-verifier.exit.json\"")


def _forged_record(tmp_path: Path) -> str:
    """A worker that adds to dispatch's record what ``verify`` would, writes a verdict at the run path it names,
    the old path, and the verifier's exit record."""
    run = f"state/verifiers/{SID}.{'e' * 32}.json"
    fields = {"worker_tree": None, "verify_started_at": "2026-01-01T00:00:00Z", "verifier_run_artefact": run,
              "verifier_dispatched_at": 0, "verifier_pid": 1, "verifier_started": None}
    script = tmp_path / "forge_record.py"
    script.write_text("import json, os, sys\n"
                      f"path = os.path.join(os.environ['AUTOMETTA_REPO'], 'state/logs/{SID}-oneshot.json')\n"
                      "doc = json.load(open(path))\n"
                      f"doc.update({fields!r})\n"
                      "json.dump(doc, open(path, 'w'))\n")
    repo = '"$AUTOMETTA_REPO'
    return (f"{sys.executable} {script}; "
            f"printf '%s' '{verdict(SID)}' > {repo}/{run}\"; "
            f"printf '%s' '{verdict(SID)}' > {repo}/state/verifiers/{SID}.json\"; "
            f"printf '%s' '{{\"exit_code\": 0, \"runner_pid\": 1}}' > {repo}/state/logs/{SID}-verifier.exit.json\"")


@pytest.mark.parametrize("plant", ["verdict file", "final message", "a verify record"])
def test_by_hand_accept_refuses_without_a_verify_run(run, tmp_path, plant):
    forge = {"verdict file": f"printf '%s' '{verdict(SID)}' > \"$AUTOMETTA_REPO/state/verifiers/{SID}.json\"",
             "final message": _forged_log(), "a verify record": _forged_record(tmp_path)}[plant]
    repo, card = _by_hand_card(tmp_path, f"printf 'hello\\n' > hello.txt; {forge}; " + _envelope(), FAIL_VERIFIER)
    base = _base(repo)
    assert run("dispatch", str(card), "--wait").code == 0
    res = run("accept", str(card))
    assert res.code == 1 and "no record of a verify run" in res.err and f"autometta verify {card}" in res.err
    _assert_not_landed(repo, base)

    res = run("verify", str(card), "--wait")
    assert res.code == 1
    if plant == "a verify record":  # not the record autometta wrote: the controller's books say so
        assert f"{SID}-oneshot.json: changed since autometta wrote it, not by autometta (state_tampered)" in res.err
        assert not (repo / "state" / "logs" / f"{SID}-verifier.log").exists()  # no verifier was spent on it
    elif plant != "final message":
        assert f"{SID}: FAIL (verdict_forged: " in res.out
        assert not (repo / "state" / "logs" / f"{SID}-verifier.log").exists()  # no verifier was spent on it
    else:
        assert f"{SID}: FAIL (verifier_fail)" in res.out  # the verifier ran, in a log of its own
    assert run("accept", str(card)).code == 1
    _assert_not_landed(repo, base)


def test_by_hand_accept_refuses_a_record_autometta_never_wrote(run, tmp_path):
    """An agent that can reach ``state/`` plants the whole by-hand record of a stage nobody dispatched: a
    worktree it made with its change committed, a verify run, the verifier's verdict and exit record.

    Only a record the controller's books know is autometta's; ``accept`` (and ``verify``) refuse this one.
    """
    repo, card = _by_hand_card(tmp_path, f"printf 'hello\\n' > hello.txt; {_envelope()}", PASS_VERIFIER)
    base = _base(repo)
    branch = git(repo, "rev-parse", "--abbrev-ref", "HEAD").strip()
    where = tmp_path / "planted"
    git(repo, "worktree", "add", "-q", "-b", f"autometta/{SID}", str(where))
    (where / "hello.txt").write_text("unreviewed\n")
    git(where, "add", "hello.txt")
    git(where, "-c", "user.name=agent", "-c", "user.email=agent@local", "commit", "-qm", "planted")
    nonce = "e" * 32
    run_path = f"state/verifiers/{SID}.{nonce}.json"
    (repo / "state" / "verifiers").mkdir(parents=True)
    (repo / "state" / "logs").mkdir(parents=True)
    _verdict_file(repo / run_path)
    (repo / "state" / "logs" / f"{SID}-verifier.exit.json").write_text(json.dumps({"exit_code": 0, "runner_pid": 1}))
    tree = git(where, "rev-parse", "HEAD^{tree}").strip()
    planted = {"stage_id": SID, "worktree": str(where), "branch": f"autometta/{SID}", "base": branch,
               "base_sha": base, "dispatched_at": "2026-01-01T00:00:00Z", "worker_tree": tree, "checked_tree": tree,
               "verify_started_at": "2026-01-01T00:00:00Z", "verifier_run_artefact": run_path,
               "verifier_dispatched_at": 0, "verifier_pid": 1, "verifier_started": None}
    (repo / "state" / "logs" / f"{SID}-oneshot.json").write_text(json.dumps(planted))
    (repo / "state" / "handoffs").mkdir()
    (repo / "state" / "handoffs" / f"{SID}.json").write_text(json.dumps(
        {"stage_id": SID, "status": "pass", "deliverables": ["hello.txt"], "notes": "done"}))

    said = f"{SID}-oneshot.json: not written by autometta"
    res = run("accept", str(card))
    assert res.code == 1 and said in res.err and "(state_tampered)" in res.err, res.out + res.err
    _assert_not_landed(repo, base)
    res = run("verify", str(card), "--wait")
    assert res.code == 1 and said in res.err, res.out + res.err
    assert not (repo / "state" / "logs" / f"{SID}-verifier.log").exists()  # no verifier was spent on it
    res = run("show", str(repo), SID, "--json")
    assert said in res.out + res.err
    git(repo, "worktree", "remove", "--force", str(where))  # reviewed: the planted worktree and branch go
    git(repo, "branch", "-D", f"autometta/{SID}")
    assert run("dispatch", str(card), "--wait").code == 0  # a new dispatch starts afresh, as autometta's
    _assert_not_landed(repo, base)
    assert run("verify", str(card), "--wait").code == 0
    assert run("accept", str(card)).code == 0  # autometta's own record: the stage lands, reviewed
    assert (repo / "hello.txt").read_text() == "hello\n" != "unreviewed\n"


def test_by_hand_verify_waits_for_every_process_of_the_workers_run(run, tmp_path):
    t = tmp_path / "t"
    t.mkdir()
    os.mkfifo(t / "ready")
    os.mkfifo(t / "hold")
    # hands off, says so, then keeps running (a process of its run could still change the tree)
    worker = f"printf 'hello\\n' > hello.txt; {_envelope()}; echo ready > {t}/ready; exec 3<>{t}/hold; read x <&3"
    repo, card = _by_hand_card(tmp_path, worker, PASS_VERIFIER)
    started = json.loads(run("dispatch", str(card), "--json").out)
    assert read_fifo(t / "ready") == "ready\n"  # the handoff is written and the worker still runs
    res = run("verify", str(card), "--wait")
    assert res.code == 1 and "still running" in res.err, res.out + res.err
    assert not (repo / "state" / "logs" / f"{SID}-verifier.log").exists()
    hold = os.open(str(t / "hold"), os.O_RDWR | os.O_NONBLOCK)
    os.write(hold, b"go\n")
    os.close(hold)
    os.waitpid(started["pid"], 0)
    assert run("verify", str(card), "--wait").code == 0
    assert run("accept", str(card)).code == 0
    assert git(repo, "log", "-1", "--format=%s").strip() == f"{SID}: Say hello"


# ------------------------------------------------------------------ an inconsistent verdict


@pytest.mark.parametrize("mode", MODES)
def test_an_inconsistent_verdict_is_not_committed(setup, mode):
    repo, home, add = setup
    _lanes(repo, mode)
    add(SID, verifier_cmd=f"printf '%s' '{_inconsistent()}' > \"$AUTOMETTA_ARTEFACT\"")
    base = _base(repo)
    tick_until_settled(home, repo)
    _assert_not_landed(repo, base)
    s = stage(repo, SID)
    assert s["status"] == "verifier_failed"
    assert s["stall_marker"] == "verifier_inconsistent: overall PASS but criterion 2 (says it twice) is FAIL"


def test_by_hand_an_inconsistent_verdict_is_not_accepted(run, tmp_path):
    repo, card = _by_hand_card(tmp_path, None, f"printf '%s' '{_inconsistent()}' > \"$AUTOMETTA_ARTEFACT\"")
    base = _base(repo)
    assert run("dispatch", str(card), "--wait").code == 0
    res = run("verify", str(card), "--wait")
    assert res.code == 1 and f"{SID}: FAIL (verifier_inconsistent: overall PASS but criterion 2" in res.out
    res = run("accept", str(card))
    assert res.code == 1 and "verifier_inconsistent" in res.err
    _assert_not_landed(repo, base)


# ------------------------------------------------------------------ panel members


def _panel(home: Path, commands) -> None:
    from autometta import yamlsub

    path = home / "config.yaml"
    config = yamlsub.loads(path.read_text())
    config["panel"] = [{"name": n, "identity": f"Script Panellist {n.upper()} <panel-{n}@local>", "command": c}
                       for n, c in zip("abc", commands)]
    path.write_text(yamlsub.dumps(config))


def _panel_card(repo: Path, worker: Optional[str] = None) -> Path:
    card = script_card(repo, SID, worker)
    card.write_text(card.read_text().replace("## Metadata\n", "## Metadata\n- **Verifier panel:** true\n"))
    return card


@pytest.mark.parametrize("mode", MODES)
def test_a_panel_vote_the_worker_plants_fails_the_stage(setup, tmp_path, mode, run):
    repo, home, add = setup
    _lanes(repo, mode)
    spent = tmp_path / "spent"
    _panel(home, [f"touch {spent}; " + FAIL_VERIFIER] * 3)
    plant = (f"mkdir -p \"$AUTOMETTA_REPO/state/verifiers/{SID}.panel\"; for n in a b; do printf '%s' "
             f"'{verdict(SID)}' > \"$AUTOMETTA_REPO/state/verifiers/{SID}.panel/$n.json\"; done")
    card = _panel_card(repo, f"printf 'hello\\n' > hello.txt; {plant}; " + _envelope())
    commit_all(repo, "card")
    assert run("add-stage", str(repo), str(card)).code == 0
    base = _base(repo)
    tick_until_settled(home, repo)
    _assert_not_landed(repo, base)
    s = stage(repo, SID)
    assert s["status"] == "failed" and s["stall_marker"].startswith("verdict_forged: "), s
    assert not spent.exists()  # no panellist was spent on it


@pytest.mark.parametrize("mode", MODES)
def test_each_panel_member_writes_to_a_path_made_for_it_alone(setup, tmp_path, mode, run):
    repo, home, add = setup
    _lanes(repo, mode)
    env_dir = tmp_path / "env"
    env_dir.mkdir()
    _panel(home, [f"env > {env_dir}/{n}; " + FAIL_VERIFIER for n in "abc"])
    card = _panel_card(repo)
    commit_all(repo, "card")
    assert run("add-stage", str(repo), str(card)).code == 0
    tick_until_settled(home, repo)
    s = stage(repo, SID)
    assert (s["status"], s["stall_marker"]) == ("verifier_failed", "verifier_fail")
    paths = []
    for n in "abc":
        env = dict(line.split("=", 1) for line in (env_dir / n).read_text().splitlines() if "=" in line)
        paths.append(env["AUTOMETTA_ARTEFACT"])
        assert re.search(rf"state/verifiers/{SID}\.panel/{n}\.[0-9a-f]{{32}}\.json$", env["AUTOMETTA_ARTEFACT"])
    assert len(set(paths)) == 3
    synthesis = json.loads((repo / "state" / "verifiers" / f"{SID}.json").read_text())
    assert synthesis["overall"] == "FAIL" and synthesis["verifier_identity"] != CHECKER
    for path, entry in zip(paths, synthesis["panellists"]):
        assert path.endswith(entry["artefact_path"])

"""Secrets and file modes after a full api-mode run (fake ``op``, stand-in claude and codex), and an agent
that tries every way to leak its key."""

from __future__ import annotations

import contextlib
import io
import json
import os
import stat
import subprocess
import time
from pathlib import Path
from typing import Dict, List

import pytest

from autometta import cli, secrets
from tests.testing.billing import (
    ANTHROPIC_KEY,
    ANTHROPIC_REF,
    OPENAI_KEY,
    OPENAI_REF,
    VAULT,
    codex_home,
    fake_op,
    files_holding,
    refs_file,
)
from tests.testing.repos import make_repo
from tests.testing.tick_processes import await_all_runners
from tests.testing.billing import world  # noqa: F401  (the fixture)
from tests.testing.ticks import git_history
from tests.testing.ticks import QUIET, commit_all, read_state, run_until_quiet, script_card, stage, tick_once


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def _api_run(world, tmp_path, monkeypatch):  # noqa: F811
    repo, home, reports, add = world
    monkeypatch.setenv("AUTOMETTA_CLAUDE_MODE", "api")
    monkeypatch.setenv("AUTOMETTA_CODEX_MODE", "api")
    monkeypatch.setenv("AUTOMETTA_CODEX_HOME", str(codex_home(tmp_path / "codex-api")))
    add("01-hello")
    run_until_quiet(home, repo)
    assert stage(repo, "01-hello")["status"] == "completed"
    return repo, home


def test_no_secret_anywhere_and_state_is_private(world, tmp_path, monkeypatch):  # noqa: F811
    repo, home = _api_run(world, tmp_path, monkeypatch)
    values = [ANTHROPIC_KEY, OPENAI_KEY]
    assert files_holding([repo, home], values) == []
    assert not any(v in git_history(repo) for v in values)
    state = repo / "state"
    loose = []
    for folder in (state, state / "logs", state / "verifiers", state / "handoffs", home / "log"):
        if _mode(folder) & 0o077:
            loose.append(f"{folder} {oct(_mode(folder))}")
    # files the product writes; envelopes and verdicts are the agents' own, private by their 0700 folders
    for path in [state / "state.yaml", state / "state.yaml.bak", state / "budget.json",
                 *sorted((state / "logs").iterdir())]:
        if path.exists() and _mode(path) & 0o077:
            loose.append(f"{path} {oct(_mode(path))}")
    assert loose == []


def test_controller_logs_are_private(world, tmp_path, monkeypatch):  # noqa: F811
    _repo, home = _api_run(world, tmp_path, monkeypatch)
    loose = [f"{p} {oct(_mode(p))}" for p in sorted((home / "log").iterdir()) if _mode(p) & 0o077]
    assert loose == []


# ----------------------------------------------------------------------------
# An agent that tries every way to leak its key (issue 15, "Secrets reach git")
#
# claude on the api route, its key from a fake ``op``, plays a worker that puts
# the key in its handoff notes, a file name, a binary file, a text file, its
# output (plain, stream-json, stderr), files under state/ and its own log. The
# verifier (codex, api route too) puts its key in the verdict's headline. Each
# tick runs with nothing resolved beforehand, as a cron tick would. Afterwards
# the key is in no file autometta wrote (only in the files the agent wrote
# itself, which are named here), no git object reachable or not, nothing under
# the controller home, and no view's output.

STAGE = "01-leak"
LEAKY_WORKER = "Claude Sonnet 4.6 <claude-sonnet-4-6@local>"
LEAKY_VERIFIER = "Codex GPT-5.5 <codex-gpt-5-5@local>"
#: Keys with no recognisable shape: only the resolved values can find them.
SHAPELESS = {ANTHROPIC_REF: "hunter2-claude-api-shapeless-0000-wxyz", OPENAI_REF: "hunter2-codex-api-shapeless-1111-abcd"}

#: What the worker does for each vector (sh; $K is its key, $S the repo's state folder).
WORKER_DOES = {
    "notes": None,  # the handoff below carries the key in its notes
    "failnotes": None,  # a failing handoff whose notes (the stage's marker) carry the key
    "name": 'printf "harmless\\n" > "k-$K.txt"',
    "binary": 'printf "\\000\\001PNG%s\\000\\377" "$K" > blob.bin',
    "tree": 'printf "API_KEY=%s\\n" "$K" > config.txt',
    "print": ('printf \'{"type":"assistant","message":{"content":[{"type":"text","text":"my key: %s"}]}}\\n\' "$K"; '
              'echo "stderr $K" >&2; echo "plain: the key is $K"; '
              'printf \'{"type":"assistant","message":{"content":[{"type":"text","text":"still %s"}]}}\\n\' "$K"; '
              'cat "$GO" > /dev/null'),  # waits here: the views are read while it runs
    "state": ('printf "%s\\n" "$K" > "$S/leak.txt"; printf \'{"k":"%s"}\' "$K" > "$S/verifiers/extra.json"; '
              'printf x > "$S/handoffs/k-$K.json"'),
    # into its own log: masked there too, and the stage fails (agent_log_forged) before anything is judged
    "ownlog": 'echo "direct $K" >> "$S/logs/$AUTOMETTA_STAGE_ID-worker.log"',
}
#: Files the agents wrote themselves (path suffixes), which may hold the key afterwards.
AGENTS_OWN = {
    "notes": ["state/handoffs/01-leak.json"], "failnotes": ["state/handoffs/01-leak.json"], "name": ["/k-{K}.txt"], "binary": ["/blob.bin"],
    "tree": ["/config.txt"], "print": [], "headline": ["state/verifiers/01-leak.json"],
    "state": ["state/leak.txt", "state/verifiers/extra.json", "state/handoffs/k-{K}.json"],
}


def leaky_cli(bin_dir: Path, name: str, vectors: List[str], go: Path) -> None:
    lines = ["#!/bin/sh", f"GO='{go}'", 'S="$AUTOMETTA_REPO/state"']
    if name == "claude":
        lines.append('K="$ANTHROPIC_API_KEY"; [ -n "$K" ] || { echo "no key" >&2; exit 3; }')
        lines += [WORKER_DOES[v] for v in vectors if WORKER_DOES.get(v)]
        notes = "I used $K" if {"notes", "failnotes"} & set(vectors) else "done"
        status = "fail" if "failnotes" in vectors else "pass"
        lines += ['printf "hello\\n" > hello.txt',
                  f'printf \'{{"stage_id":"%s","status":"{status}","deliverables":["hello.txt"],"notes":"%s"}}\' '
                  f'"$AUTOMETTA_STAGE_ID" "{notes}" > "$AUTOMETTA_HANDOFF"']
    else:
        lines.append('K="$OPENAI_API_KEY"; [ -n "$K" ] || { echo "no key" >&2; exit 3; }')
        headline, evidence = ("all good, $K", "hello.txt:1 $K") if "headline" in vectors else ("all good", "hello.txt:1")
        lines.append(f'printf \'{{"stage_id":"%s","verifier_identity":"x","verifier_invocation":"sh",'
                     f'"ran_at":"2026-11-26T00:00:00Z","headline":"%s","criteria":[{{"id":1,"name":"hello",'
                     f'"verdict":"PASS","evidence":"%s"}}],"additional_findings":"","overall":"PASS"}}\' '
                     f'"$AUTOMETTA_STAGE_ID" "{headline}" "{evidence}" > "$AUTOMETTA_ARTEFACT"')
    path = bin_dir / name
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o755)


@pytest.fixture
def leaky(run, tmp_path, home_dir, monkeypatch):
    """(start(vectors, vault, lanes) -> (repo, home, go)): a repo, claude and codex on their api routes."""
    secrets.forget()
    monkeypatch.setattr(secrets, "install_folder", lambda: tmp_path / "install")
    for name in list(os.environ):
        if name.startswith(("AUTOMETTA_", "OP_REF_", "CLAUDE_", "CODEX_", "XDG_", "ANTHROPIC_", "OPENAI_")):
            monkeypatch.delenv(name)

    def start(vectors: List[str], vault: Dict[str, str], lanes: bool = False):
        bin_dir, go = tmp_path / "bin", tmp_path / "go"
        bin_dir.mkdir()
        os.mkfifo(go)
        fake_op(bin_dir, vault=vault)
        leaky_cli(bin_dir, "claude", vectors, go)
        leaky_cli(bin_dir, "codex", vectors, go)
        monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
        monkeypatch.setenv("HOME", str(tmp_path / "user-home"))
        monkeypatch.setenv("AUTOMETTA_LOCAL_REFS", str(refs_file(tmp_path / "refs.sh", OP_REF_ANTHROPIC_API_KEY=ANTHROPIC_REF,
                                                                 OP_REF_OPENAI_API_KEY=OPENAI_REF)))
        monkeypatch.setenv("AUTOMETTA_CLAUDE_MODE", "api")
        monkeypatch.setenv("AUTOMETTA_CODEX_MODE", "api")
        monkeypatch.setenv("AUTOMETTA_CODEX_HOME", str(codex_home(tmp_path / "codex-api", key=vault[OPENAI_REF])))
        monkeypatch.setenv("IS_SANDBOX", "1")
        repo = make_repo(tmp_path / "proj")
        assert run("init-host").code == 0
        assert run("subscribe", str(repo)).code == 0
        if lanes:
            manifest = repo / ".autometta.local.yaml"
            manifest.write_text(manifest.read_text() + "max_parallel: 2\n")
        commit_all(repo, "subscribe")
        card = script_card(repo, STAGE, "unused", "unused", worker=LEAKY_WORKER, verifier=LEAKY_VERIFIER,
                           may_also_change=("*.txt", "*.bin"))  # the files the leaks go to are in scope
        commit_all(repo, "card")
        assert run("add-stage", str(repo), str(card)).code == 0
        return repo, home_dir, go

    yield start
    secrets.forget()


def tick_as_cron(home: Path, repo: Path, go: Path, waits: bool, views: List) -> List[str]:
    """Tick until settled, each tick knowing no secret beforehand (a new process, as from cron).

    A worker that ``waits`` on ``go`` is looked at with the views while it runs, then let go.
    """
    kinds = []
    for _ in range(20):
        secrets.forget()
        outcomes = tick_once(home)
        kinds.append(outcomes[0].kind if outcomes else "none")
        running = [s for s in read_state(repo)["stages"] if s.get("worker_pid")]
        if running and waits:
            log = repo / "state" / "logs" / f"{STAGE}-worker.log"
            deadline = time.monotonic() + 30
            while "still" not in log.read_text():  # the last line before it waits
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.02)
            views.append(("while running", view_outputs(home, repo)))
            with open(go, "w"):
                pass
        await_all_runners(repo)
        if kinds[-1] in QUIET and not any(s.get("status") == "in_progress" for s in read_state(repo)["stages"]):
            return kinds
    raise AssertionError(f"not settled: {kinds}")


def view_outputs(home: Path, repo: Path) -> str:
    """Everything every view prints, and writes (the dashboard), with no secret resolved (a fresh process)."""
    secrets.forget()
    out = []
    for args in (["status"], ["status", "--json"], ["status", "--watch", "--once"], ["report"], ["report", "--json"],
                 ["ticker", str(repo), "--json"], ["ticker", str(repo), "--once"], ["dashboard", "--json"],
                 ["log", "--lines", "500"], ["list-cards", str(repo), "--json"]):
        stdout, stderr = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = cli.main(args)
        assert code in (0, 1), (args, stderr.getvalue())
        out.append(f"$ {' '.join(args)}\n{stdout.getvalue()}{stderr.getvalue()}")
    return "\n".join(out)


def all_objects(repo: Path) -> bytes:
    """Every object in the repo's store, reachable or not, each read whole."""
    listing = subprocess.run(["git", "-C", str(repo), "cat-file", "--batch-all-objects", "--batch-check=%(objectname)"],
                             check=True, capture_output=True).stdout
    return subprocess.run(["git", "-C", str(repo), "cat-file", "--batch"], input=listing, check=True,
                          capture_output=True).stdout


def holding(roots: List[Path], values: List[str]) -> List[str]:
    """Every file or folder under ``roots`` whose name or bytes hold one of ``values``."""
    found = []
    for root in roots:
        for folder, dirs, names in os.walk(root):
            for leaf in names + dirs:
                path = Path(folder) / leaf
                if any(v in leaf for v in values):
                    found.append(str(path))
                elif leaf in names and not path.is_symlink():
                    data = path.read_bytes()
                    if any(v.encode() in data for v in values):
                        found.append(str(path))
    return found


CASES = [(["notes"], "completed"), (["failnotes"], "failed"), (["name"], "secret_blocked"), (["binary"], "secret_blocked"),
         (["tree"], "secret_blocked"), (["print", "state"], "completed"), (["print", "ownlog"], "failed"),
         (["headline"], "completed")]


@pytest.mark.parametrize("vectors, status", CASES, ids=["+".join(v) for v, _ in CASES])
def test_a_shapeless_key_leaks_nowhere(leaky, vectors, status):
    check_no_leak(leaky, vectors, status, SHAPELESS)


@pytest.mark.parametrize("lanes", [False, True], ids=["serial", "lanes"])
def test_every_vector_at_once(leaky, lanes):
    vectors = [v for v in WORKER_DOES if v not in ("failnotes", "ownlog")] + ["headline"]
    check_no_leak(leaky, vectors, "secret_blocked", VAULT, lanes=lanes)


def check_no_leak(leaky, vectors: List[str], status: str, vault: Dict[str, str], lanes: bool = False) -> None:
    repo, home, go = leaky(vectors, vault, lanes)
    values = [vault[ANTHROPIC_REF], vault[OPENAI_REF]]
    views: List = []
    tick_as_cron(home, repo, go, "print" in vectors, views)
    s = read_state(repo)["stages"][0]
    assert s["status"] == status, s
    if status == "secret_blocked":
        assert s["stall_marker"].startswith("secret_in_diff: ")
    if status == "failed" and "ownlog" in vectors:
        assert s["stall_marker"] == "agent_log_forged: worker: something other than its runner wrote into its log"
    elif status == "failed":  # the notes are the marker, masked
        assert s["stall_marker"] == "I used ****wxyz"
    noted = {"notes", "failnotes"} & set(vectors)
    if noted or "state" in vectors:  # the state snapshot kept them out, and said so
        events = (home / "events.jsonl").read_text()
        assert '"kind": "secret_in_state"' in events
        shown = subprocess.run(["git", "-C", str(repo), "ls-tree", "-r", "--name-only", "phat-controller/state"],
                               capture_output=True, text=True, check=True).stdout.splitlines()
        assert "state/state.yaml" in shown and "state/verifiers/extra.json" not in shown
        assert ("state/handoffs/01-leak.json" in shown) == (not noted)
    if "headline" in vectors and status == "completed":
        subject = subprocess.run(["git", "-C", str(repo), "log", "-1", "--format=%s"], capture_output=True, text=True,
                                 check=True).stdout
        assert subject.startswith(f"{STAGE}: all good, ****")

    own = [suffix.format(K=vault[ANTHROPIC_REF]) for v in vectors for suffix in AGENTS_OWN.get(v, [])]
    if "headline" in vectors and s.get("verifier_run_artefact"):
        own.append(s["verifier_run_artefact"])  # the verifier's own verdict, at the path made for its run
    strays = [p for p in holding([repo, home], values)
              if "/.git/" not in p + "/" and not any(p.endswith(suffix) for suffix in own)]
    assert strays == []  # state.yaml, logs, prompts, snapshots, the tick log, events, the dashboard: all clean
    git_dir = repo / ".git"
    assert [p for p in holding([git_dir], values) if "/objects/" not in p] == []  # refs, logs, index, config
    assert not any(v.encode() in all_objects(repo) for v in values)  # no object, reachable or not
    assert not list(git_dir.rglob("autometta-index-*"))
    views.append(("after", view_outputs(home, repo)))
    for when, text in views:
        assert not any(v in text for v in values), f"{when}:\n{text}"
    if "print" in vectors:
        running = views[0][1]
        assert "says: still ****" in running  # the ticker shows the agent's last line, masked
        log = (repo / "state" / "logs" / f"{STAGE}-worker.log").read_text()
        assert "plain: the key is ****" in log and ("direct ****" in log) == ("ownlog" in vectors)
        assert all(json.loads(line) for line in log.splitlines() if line.startswith("{"))

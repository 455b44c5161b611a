"""The real ``claude`` and ``codex`` CLIs started by ``dispatch.start`` on each billing route.

* claude in **api** mode: the key comes from a fake ``op`` (the reference in a
  refs file), the scripted model server sees exactly that key in
  ``x-api-key``, and a stray ``ANTHROPIC_API_KEY`` exported in the tick's
  environment never reaches it;
* codex in **api** mode: refused until its sibling ``CODEX_HOME`` is logged
  in; the one-time command autometta prints does that with the real
  ``codex login --with-api-key`` and the key from the fake ``op``; then the
  server sees that key (codex bills ``auth.json``'s key, not the
  environment's: lessons H8);
* codex in **subscription** mode: its own ``CODEX_HOME`` (a config pointing
  at the server, no key), with a stray ``OPENAI_API_KEY`` exported that it
  never sends.

Each run goes through the one launch path (clean environment, detached
runner, exit record) and must leave no resolved secret in the repo or the
controller home. Skips like tests/e2e/test_real_clis.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Dict

import pytest

from autometta import card as cards, families, secrets
from autometta.agents import dispatch, provision, spawn
from autometta.paths import HomePaths, RepoPaths
from autometta.repo import RepoContext
from tests.testing.agent_clis import CODEX_CONFIG
from tests.testing.billing import (ANTHROPIC_KEY, ANTHROPIC_REF, OPENAI_KEY, OPENAI_REF, STRAY, fake_op,
                                   files_holding, refs_file)
from tests.testing.model_server import ModelServer, Tokens, text, write_file
from tests.testing.repos import make_repo, write_card

TIMEOUT = 120
STAGE = "07-billing"
CLAUDE_ID = "Claude Sonnet 4.6 <claude-sonnet-4-6@local>"
CODEX_ID = "Codex GPT-5.5 <codex-gpt-5-5@local>"
T = Tokens(input=900, output=40)


@pytest.fixture(autouse=True)
def _fresh(tmp_path, monkeypatch):
    secrets.forget()
    monkeypatch.setattr(secrets, "install_folder", lambda: tmp_path / "install")
    yield
    secrets.forget()


def tick_environ(clis: Dict[str, str], tmp_path: Path, **extra: str) -> Dict[str, str]:
    """The tick's own environment as cron would have it: stray keys exported, the CLIs and a fake op on PATH."""
    drop = ("ANTHROPIC_", "CLAUDE", "CODEX_", "OPENAI_", "AWS_", "XDG_", "OP_REF_", "AUTOMETTA_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop) and k != "IS_SANDBOX"}
    bins = sorted({os.path.dirname(p) for p in clis.values()})
    fake_op(tmp_path / "op-bin")
    env["PATH"] = os.pathsep.join([str(tmp_path / "op-bin"), *bins, env.get("PATH", os.defpath)])
    env["HOME"] = str(tmp_path / "agent-home")
    (tmp_path / "agent-home").mkdir()
    env.update(STRAY)
    env.update(extra)
    return env


def context(env: Dict[str, str], repo: Path, tmp_path: Path) -> RepoContext:
    return RepoContext(paths=RepoPaths(repo), home=HomePaths(tmp_path / "controller-home"),
                                config={}, manifest={}, environ=env)


def run_worker(env: Dict[str, str], repo: Path, identity: str, tmp_path: Path) -> Dict:
    """``dispatch.start`` the worker for a card with ``identity``; wait for it; its exit record."""
    card = cards.parse_card(write_card(repo, STAGE, worker=identity, verifier=identity))
    ctx = context(env, repo, tmp_path)
    family = families.for_identity(identity)
    assert provision.preflight(ctx, identity) is None
    launched = dispatch.start(ctx, {"id": STAGE, "worker": identity, "verifier": identity}, card, "worker")
    runner = next(p for p in spawn._CHILDREN if p.pid == launched.pid)
    try:
        runner.wait(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(launched.pgid, signal.SIGKILL)
        runner.wait()
        log = ctx.paths.log(STAGE, "worker").read_text()
        pytest.fail(f"{family.name} worker still running after {TIMEOUT}s:\n{log[-3000:]}")
    record = spawn.read_exit(ctx.paths.exit_record(STAGE, "worker"))
    assert record is not None
    record["log"] = ctx.paths.log(STAGE, "worker").read_text()
    return record


def envelope() -> str:
    return json.dumps({"stage_id": STAGE, "status": "pass", "deliverables": ["out/x.txt"], "notes": "done"})


def test_claude_api_mode_bills_the_key_from_op(clis, tmp_path):
    repo = make_repo(tmp_path / "proj")
    handoff = RepoPaths(repo).handoff(STAGE)
    refs = refs_file(tmp_path / "refs.sh", OP_REF_ANTHROPIC_API_KEY=ANTHROPIC_REF)
    script = [write_file(str(handoff), envelope(), T), text("handed off", T)]
    with ModelServer({"claude": script}) as server:
        env = tick_environ(clis, tmp_path, ANTHROPIC_BASE_URL=server.url, CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
                           CLAUDE_CODE_MAX_RETRIES="0", IS_SANDBOX="1", AUTOMETTA_CLAUDE_MODE="api",
                           AUTOMETTA_LOCAL_REFS=str(refs))
        record = run_worker(env, repo, CLAUDE_ID, tmp_path)

    assert record["exit_code"] == 0, record["log"][-3000:]
    assert server.problems == []
    requests = server.model_requests("claude")
    assert requests and {r.headers.get("x-api-key") for r in requests} == {ANTHROPIC_KEY}
    assert all(STRAY["ANTHROPIC_API_KEY"] not in json.dumps(r.headers) for r in server.requests)
    assert json.loads(handoff.read_text())["status"] == "pass"
    usage = families.get("claude").parse_usage(record["log"])
    assert (usage.input_tokens, usage.output_tokens) == (1800, 80)
    assert files_holding([repo, tmp_path / "controller-home"], [ANTHROPIC_KEY]) == []


def test_codex_subscription_mode_sends_no_stray_key(clis, tmp_path):
    repo = make_repo(tmp_path / "proj")
    relative = os.path.relpath(RepoPaths(repo).handoff(STAGE), repo)  # codex writes relative to the repo
    script = [write_file(relative, envelope(), T, codex_via="exec_command"), text("handed off", T)]
    with ModelServer({"codex": script}) as server:
        codex_home = tmp_path / "codex-home"
        codex_home.mkdir()
        (codex_home / "config.toml").write_text(CODEX_CONFIG.format(base_url=server.url))
        env = tick_environ(clis, tmp_path, CODEX_HOME=str(codex_home))
        record = run_worker(env, repo, CODEX_ID, tmp_path)

    assert record["exit_code"] == 0, record["log"][-3000:]
    assert server.problems == []
    requests = server.model_requests("codex")
    assert requests
    assert all(STRAY["OPENAI_API_KEY"] not in json.dumps(r.headers) for r in server.requests)
    assert json.loads(RepoPaths(repo).handoff(STAGE).read_text())["status"] == "pass"
    usage = families.get("codex").parse_usage(record["log"])
    assert usage is not None and usage.output_tokens == 80


#: A codex config whose provider is the scripted server and that authenticates like OpenAI's
#: (``requires_openai_auth``: the key from ``$CODEX_HOME/auth.json``).
CODEX_API_CONFIG = CODEX_CONFIG.replace('wire_api = "responses"', 'wire_api = "responses"\nrequires_openai_auth = true')


def test_codex_api_mode_runs_on_the_sibling_home_logged_in_with_the_op_key(clis, tmp_path):
    repo = make_repo(tmp_path / "proj")
    sibling = tmp_path / "codex-api-only"
    refs = refs_file(tmp_path / "refs.sh", OP_REF_OPENAI_API_KEY=OPENAI_REF)
    relative = os.path.relpath(RepoPaths(repo).handoff(STAGE), repo)
    script = [write_file(relative, envelope(), T, codex_via="exec_command"), text("handed off", T)]
    with ModelServer({"codex": script}) as server:
        env = tick_environ(clis, tmp_path, AUTOMETTA_CODEX_MODE="api", AUTOMETTA_CODEX_HOME=str(sibling),
                           AUTOMETTA_LOCAL_REFS=str(refs), CODEX_HOME=str(tmp_path / "subscription-home"))
        problem = provision.preflight(context(env, repo, tmp_path), CODEX_ID)
        assert problem is not None and problem.startswith(
            f"auth_route_failed: codex api mode needs CODEX_HOME {sibling} logged in with an API key, "
            "and it is not set up; run once: ")
        setup = problem.split("run once: ", 1)[1]
        assert OPENAI_KEY not in setup and "codex login --with-api-key" in setup
        done = subprocess.run(["sh", "-c", setup], env=env, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=TIMEOUT)
        assert done.returncode == 0, done.stderr
        assert json.loads((sibling / "auth.json").read_text()) == {"auth_mode": "apikey", "OPENAI_API_KEY": OPENAI_KEY}
        (sibling / "config.toml").write_text(CODEX_API_CONFIG.format(base_url=server.url))
        record = run_worker(env, repo, CODEX_ID, tmp_path)

    assert record["exit_code"] == 0, record["log"][-3000:]
    assert server.problems == []
    assert {r.headers.get("authorization") for r in server.model_requests("codex")} == {f"Bearer {OPENAI_KEY}"}
    assert json.loads(RepoPaths(repo).handoff(STAGE).read_text())["status"] == "pass"
    assert files_holding([repo, tmp_path / "controller-home"], [OPENAI_KEY]) == []

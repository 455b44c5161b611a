"""The exact argv ``families.get(...).command(...)`` builds, run with the real CLIs.

Each run goes the way the launcher runs an agent: cwd the repo, stdin
/dev/null, stdout and stderr into one log file, the bare program name found on
the environment's PATH. The scripted model server plays the model, so the test
knows which file the agent wrote, what it spent and its last words, and can
check that the family reads them back from the log. The failure runs pin down
what each CLI prints when it cannot authenticate, which ``diagnose`` matches.

Skips like tests/e2e/test_real_clis.py. ``AUTOMETTA_REGEN_CLI_FIXTURES=1``
saves the failure outputs under tests/data/cli/ (temp paths and the server's
port normalised), the samples tests/families/test_families.py reads.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from autometta import families
from autometta.agents import privilege
from autometta.card import parse_card_text
from autometta.families.models import resolve_model
from tests.testing.agent_clis import claude_env, codex_env
from tests.testing.model_server import ModelServer, Tokens, error, text, write_file
from tests.testing.repos import CARD

FIXTURES = Path(__file__).resolve().parent.parent / "data" / "cli"
TIMEOUT = 120
STAGE = "05-family-run"
T1 = Tokens(input=1000, output=50, cache_read=200)
T2 = Tokens(input=1100, output=7, cache_read=900)

#: The bodies the real APIs send for a bad key.
ANTHROPIC_401 = {"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}
OPENAI_401 = {"error": {"message": "Incorrect API key provided: sk-test. You can find your API key at "
                                   "https://platform.openai.com/account/api-keys.",
                        "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}}


def agent_env(family: str, clis: Dict[str, str], url: str, home: Path, sandbox: bool = True) -> Dict[str, str]:
    """The test environment for ``family``, with the CLI's folder first on PATH."""
    env = claude_env(url, home, sandbox=sandbox) if family == "claude" else codex_env(url, home)
    env["PATH"] = os.path.dirname(clis[family]) + os.pathsep + env.get("PATH", os.defpath)
    return env


def launch(argv: List[str], repo: Path, env: Dict[str, str], log: Path) -> Tuple[int, str]:
    """Run ``argv`` as the launcher does; the exit code and the log."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, cwd=str(repo), env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            code = proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            pytest.fail(f"{argv[0]} still running after {TIMEOUT}s:\n{log.read_text()[-2000:]}")
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    return code, log.read_text()


def stage_card(repo: Path, worker: str, verifier: str):
    path = repo / "docs" / "stages" / f"{STAGE}.md"
    return parse_card_text(CARD.format(stage_id=STAGE, title="Run a family", worker=worker, verifier=verifier), path)


def save_fixture(name: str, content: str, tmp_path: Path, server: ModelServer) -> None:
    if os.environ.get("AUTOMETTA_REGEN_CLI_FIXTURES") != "1":
        return
    slug = re.sub(r"[^A-Za-z0-9]", "-", str(tmp_path))
    content = content.replace(str(tmp_path), "/tmp/e2e").replace(slug, "-tmp-e2e")
    (FIXTURES / name).write_text(content.replace(server.url, "http://127.0.0.1:PORT"))


@pytest.mark.parametrize("family, role, identity, model", [
    ("claude", "worker", "Claude Sonnet 4.6 <claude-sonnet-4-6@local>", "claude-sonnet-4-6"),
    ("claude", "verifier", "Claude Haiku 4.5 <claude-haiku-4-5@local>", "claude-haiku-4-5"),
    ("codex", "worker", "Codex GPT-5.5 <codex-gpt-5-5@local>", "gpt-5.5"),
    ("codex", "verifier", "Codex GPT-5.3 <codex-gpt-5-3@local>", "gpt-5.3"),
])
def test_family_argv_runs_the_real_cli(clis, repo, tmp_path, family, role, identity, model):
    card = stage_card(repo, worker=identity, verifier=identity)
    (repo / "state" / "verifiers").mkdir(parents=True)
    relative = f"out/{STAGE}.txt" if role == "worker" else f"state/verifiers/{STAGE}.json"
    target = repo / relative
    (repo / "out").mkdir()
    final = "wrote the file" if role == "worker" else json.dumps({"stage_id": STAGE, "overall": "PASS"})
    where = str(target) if family == "claude" else relative  # claude's Write wants an absolute path
    script = [write_file(where, "made by the agent\n", T1, codex_via="exec_command"), text(final, T2)]
    fam = families.get(family)
    resolved = resolve_model(identity, family, {})
    assert resolved == model

    with ModelServer({family: script}) as server:
        env = agent_env(family, clis, server.url, tmp_path / "home")
        assert fam.preflight(env, os.geteuid(), tmp_path / "home") is None
        argv = fam.command(role, "Do the scripted task.", model=resolved, repo=repo, card=card)
        assert argv[0] == family and not os.path.isabs(argv[0])  # found on the env's PATH
        code, log = launch(argv, repo, env, tmp_path / f"{role}.log")

    assert code == 0, log[-3000:]
    assert server.problems == []
    assert target.read_text() == "made by the agent\n"
    assert {r.body["model"] for r in server.model_requests(family)} == {model}
    usage = fam.parse_usage(log)
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_tokens) == (2100, 57, 1100)
    if family == "claude":
        assert usage.cost_usd is not None and usage.cost_usd > 0
    else:
        assert usage.cost_usd is None
    assert fam.final_message(log) == final
    assert fam.diagnose(code, log) is None


def run_failure(clis, repo, tmp_path, family, turns, fixture, plain=False, adjust=None):
    """Run the family's worker argv against ``turns``; save its output as ``fixture``.

    ``adjust`` changes the environment first; ``plain`` drops the JSON Lines
    flags, as the bash version ran the CLIs.
    """
    fam = families.get(family)
    card = stage_card(repo, "Claude Sonnet 4.6", "Codex GPT-5.5")
    argv = fam.command("worker", "Do the scripted task.", model="claude-sonnet-4-6" if family == "claude" else None,
                       repo=repo, card=card)
    if plain:  # the bash version's launch, for its logs: no JSON Lines
        argv = [a for a in argv if a not in ("--json", "--verbose")]
        if family == "claude":
            argv[argv.index("stream-json")] = "text"
    with ModelServer({family: turns}) as server:
        env = agent_env(family, clis, server.url, tmp_path / "home")
        if adjust is not None:
            adjust(env)
        proc = subprocess.run(argv, cwd=str(repo), env=env, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=TIMEOUT)
        saved = proc.stdout if not plain else proc.stderr if family == "codex" else proc.stdout + proc.stderr
        save_fixture(fixture, saved, tmp_path, server)
    return proc


def test_claude_rejected_key(clis, repo, tmp_path):
    proc = run_failure(clis, repo, tmp_path, "claude", [error(401, body=ANTHROPIC_401)], "claude-401.jsonl")
    assert (proc.returncode, proc.stderr) == (1, "")
    assistant, result = [json.loads(line) for line in proc.stdout.splitlines()][-2:]
    assert assistant["error"] == "authentication_failed"
    assert (result["is_error"], result["api_error_status"], result["result"]) == (
        True, 401, "Invalid API key · Fix external API key")
    fam = families.get("claude")
    assert fam.diagnose(1, proc.stdout) == fam.diagnose(None, proc.stdout) == "claude_auth_error"
    assert fam.final_message(proc.stdout) is None


def test_claude_rejected_key_plain_text(clis, repo, tmp_path):
    proc = run_failure(clis, repo, tmp_path, "claude", [error(401, body=ANTHROPIC_401)], "claude-401.txt", plain=True)
    assert (proc.returncode, proc.stdout + proc.stderr) == (1, "Invalid API key · Fix external API key\n")
    assert families.get("claude").diagnose(1, proc.stdout) == "claude_auth_error"


def test_claude_without_credentials(clis, repo, tmp_path):
    proc = run_failure(clis, repo, tmp_path, "claude", [text("never asked")], "claude-not-logged-in.jsonl",
                       adjust=lambda env: env.pop("ANTHROPIC_API_KEY"))
    assert proc.returncode == 1
    assistant, result = [json.loads(line) for line in proc.stdout.splitlines()][-2:]
    assert assistant["error"] == "authentication_failed"
    assert (result["is_error"], result["api_error_status"], result["result"]) == (
        True, None, "Not logged in · Please run /login")
    assert families.get("claude").diagnose(1, proc.stdout) == "claude_auth_error"


def test_codex_rejected_key(clis, repo, tmp_path):
    proc = run_failure(clis, repo, tmp_path, "codex", [error(401, body=OPENAI_401)], "codex-401.jsonl")
    assert proc.returncode == 1
    failed = json.loads(proc.stdout.splitlines()[-1])
    assert failed["type"] == "turn.failed"
    assert failed["error"]["message"].startswith("unexpected status 401 Unauthorized: Incorrect API key provided")
    fam = families.get("codex")
    assert fam.diagnose(1, proc.stdout + proc.stderr) == fam.diagnose(None, proc.stdout) == "codex_auth_error"


def test_codex_rejected_key_plain_mode(clis, repo, tmp_path):
    proc = run_failure(clis, repo, tmp_path, "codex", [error(401, body=OPENAI_401)], "codex-401-plain.stderr",
                       plain=True)
    assert (proc.returncode, proc.stdout) == (1, "")
    assert "ERROR: unexpected status 401 Unauthorized: Incorrect API key provided" in proc.stderr
    assert families.get("codex").diagnose(1, proc.stderr) == "codex_auth_error"


def test_codex_provider_key_variable_unset(clis, repo, tmp_path):
    def with_env_key(env):
        config = Path(env["CODEX_HOME"]) / "config.toml"
        config.write_text(config.read_text().replace('wire_api = "responses"',
                                                     'wire_api = "responses"\nenv_key = "FAKE_PROVIDER_API_KEY"'))

    proc = run_failure(clis, repo, tmp_path, "codex", [text("never asked")], "codex-missing-key.jsonl",
                       adjust=with_env_key)
    assert proc.returncode == 1
    message = "Missing environment variable: `FAKE_PROVIDER_API_KEY`."
    assert [json.loads(line) for line in proc.stdout.splitlines()][-2:] == [
        {"type": "error", "message": message}, {"type": "turn.failed", "error": {"message": message}}]
    assert families.get("codex").diagnose(1, proc.stdout) == "codex_auth_error"


def test_claude_as_root_without_is_sandbox_is_caught_before_and_after(clis, repo, tmp_path):
    """bypass (--dangerously-skip-permissions) as root needs IS_SANDBOX; the default mode does not."""
    if os.geteuid() != 0:
        pytest.skip("the refusal happens only as root")
    fam = families.get("claude")
    home = tmp_path / "home"
    bypass = privilege.Permission("claude", "bypass", "test")
    card = stage_card(repo, "Claude Sonnet 4.6", "Codex GPT-5.5")
    with ModelServer({"claude": [text("never asked")] * 3}) as server:
        env = agent_env("claude", clis, server.url, home, sandbox=False)
        assert fam.preflight(env, 0, home, bypass) == "claude_refused_root_without_is_sandbox"
        assert fam.preflight(env, 0, home) is None  # the default, acceptEdits, runs as root:
        argv = fam.command("worker", "Do the scripted task.", model="claude-sonnet-4-6", repo=repo, card=card)
        assert "--permission-mode" in argv
        assert launch(argv, repo, env, tmp_path / "default.log")[0] == 0
        (home / ".claude").mkdir(parents=True, exist_ok=True)
        (home / ".claude" / "settings.json").write_text(json.dumps({"env": {"IS_SANDBOX": "1"}}))
        assert fam.preflight(env, 0, home, bypass) is None  # and claude agrees:
        argv = fam.command("worker", "Do the scripted task.", model="claude-sonnet-4-6", repo=repo, card=card,
                           permission=bypass)
        assert launch(argv, repo, env, tmp_path / "ok.log")[0] == 0
        (home / ".claude" / "settings.json").unlink()
        code, log = launch(argv, repo, env, tmp_path / "refused.log")
    assert code == 1
    assert fam.diagnose(code, log) == "claude_refused_root_without_is_sandbox"
    assert len(server.model_requests("claude")) == 2  # only the runs it allowed reached the model


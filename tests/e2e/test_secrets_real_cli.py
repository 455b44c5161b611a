"""The real ``claude`` CLI on the api route prints its key: the agent log, and every view, masks it.

The scripted model server has claude run ``printenv ANTHROPIC_API_KEY`` (the
tool result, with the key, comes back in claude's ``stream-json``) and then
say the key in its final message. The runner masks both as it writes the log,
every line stays JSON that the usage parser reads, and nothing in the repo or
the controller home holds the key. Skips like tests/e2e/test_real_clis.py.
"""

from __future__ import annotations

import json

from autometta import families, secrets
from autometta.paths import RepoPaths
from tests.testing.billing import ANTHROPIC_KEY, ANTHROPIC_REF, files_holding, refs_file
from tests.testing.repos import make_repo
from tests.e2e.test_auth_real_clis import CLAUDE_ID, STAGE, T, envelope, run_worker, tick_environ
from tests.testing.model_server import ModelServer, shell, text, write_file


def test_real_claude_printing_its_key_leaves_it_in_no_log(clis, tmp_path, monkeypatch):
    secrets.forget()
    monkeypatch.setattr(secrets, "install_folder", lambda: tmp_path / "install")
    repo = make_repo(tmp_path / "proj")
    handoff = RepoPaths(repo).handoff(STAGE)
    refs = refs_file(tmp_path / "refs.sh", OP_REF_ANTHROPIC_API_KEY=ANTHROPIC_REF)
    script = [shell("printenv ANTHROPIC_API_KEY", T), write_file(str(handoff), envelope(), T),
              text(f"done; my key is {ANTHROPIC_KEY}", T)]
    try:
        with ModelServer({"claude": script}) as server:
            env = tick_environ(clis, tmp_path, ANTHROPIC_BASE_URL=server.url,
                               CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1", CLAUDE_CODE_MAX_RETRIES="0",
                               IS_SANDBOX="1", AUTOMETTA_CLAUDE_MODE="api", AUTOMETTA_LOCAL_REFS=str(refs))
            record = run_worker(env, repo, CLAUDE_ID, tmp_path)
    finally:
        secrets.forget()
    log = record["log"]
    assert record["exit_code"] == 0, log[-3000:]
    assert server.problems == []
    assert ANTHROPIC_KEY not in log
    events = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert events and len(events) == len([line for line in log.splitlines() if line.strip()])
    said = json.dumps(events)
    assert "****wxyz" in said  # the tool result and the final message, masked
    assert events[-1]["type"] == "result" and events[-1]["result"].endswith("my key is ****wxyz")
    usage = families.get("claude").parse_usage(log)
    assert usage.input_tokens == 3 * T.input
    assert files_holding([repo, tmp_path / "controller-home"], [ANTHROPIC_KEY]) == []

"""The real ``claude`` and ``codex`` CLIs, run against the scripted model server.

These pin down what autometta relies on: the tools really run in the repo, the
logs are JSON Lines with the usage the "model" reported, and what each CLI
prints on a root refusal and on rate and usage limits. They skip with the
reason when the CLIs cannot be installed (no npm, no registry), and when
AUTOMETTA_SKIP_E2E=1.

``AUTOMETTA_REGEN_CLI_FIXTURES=1`` also saves each run's output under
``tests/data/cli/`` (temp paths and the server's port normalised), the samples
``tests/families/test_usage.py`` parses.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

import pytest

from autometta.families.claude import parse_claude_log
from autometta.families.codex import parse_codex_log
from autometta.families.usage import Usage, find_usage_limit
from tests.testing.agent_clis import claude_env, codex_env
from tests.testing.model_server import ModelServer, Tokens, error, shell, text, write_file

FIXTURES = Path(__file__).resolve().parent.parent / "data" / "cli"
TIMEOUT = 120  # seconds; a run takes about 1 s, a dead server hangs codex forever
CLAUDE_MODEL = "claude-sonnet-4-6"

#: What claude prints to stderr (exit 1) for --dangerously-skip-permissions as root without IS_SANDBOX=1.
ROOT_REFUSAL = "--dangerously-skip-permissions cannot be used with root/sudo privileges for security reasons"

#: An epoch far enough ahead that both CLIs print the reset with its date: 2030-03-17T17:46:40Z.
RESETS_AT = 1900000000

# Three scripted replies; the CLIs report their sums.
T1 = Tokens(input=1000, output=50, cache_read=200, cache_write=300, reasoning=7)
T2 = Tokens(input=1100, output=60, cache_read=500)
T3 = Tokens(input=1200, output=5, cache_read=600)


@dataclass
class Run:
    code: int
    out: str
    err: str

    def events(self) -> List[Dict]:
        """stdout as JSON Lines; fails the test on a line that is not a JSON object."""
        events = [json.loads(line) for line in self.out.splitlines() if line.strip()]
        assert all(isinstance(e, dict) for e in events)
        return events


def run(cmd: List[str], cwd: Path, env: Dict[str, str]) -> Run:
    """Run one CLI in its own session; stdin is /dev/null (an open pipe blocks codex)."""
    proc = subprocess.Popen(cmd, cwd=str(cwd), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"{Path(cmd[0]).name} still running after {TIMEOUT}s\nstdout: {out[-2000:]}\nstderr: {err[-2000:]}")
    try:  # anything it left behind in its session
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    return Run(proc.returncode, out, err)


def claude(clis: Dict[str, str], repo: Path, env: Dict[str, str], *flags: str, fmt: str = "stream-json") -> Run:
    output = ["--output-format", fmt] + (["--verbose"] if fmt == "stream-json" else [])
    return run([clis["claude"], "-p", "--model", CLAUDE_MODEL, *output, *flags, "Do the scripted task."], repo, env)


def codex(clis: Dict[str, str], repo: Path, env: Dict[str, str], json_lines: bool = True) -> Run:
    return run([clis["codex"], "exec", "-C", str(repo), "--sandbox", "workspace-write",
                *(["--json"] if json_lines else []), "-m", "gpt-5.5", "Do the scripted task."], repo, env)


def save_fixture(name: str, content: str, tmp_path: Path, server: ModelServer) -> None:
    if os.environ.get("AUTOMETTA_REGEN_CLI_FIXTURES") != "1":
        return
    slug = re.sub(r"[^A-Za-z0-9]", "-", str(tmp_path))  # claude's project folder name for a path
    content = content.replace(str(tmp_path), "/tmp/e2e").replace(slug, "-tmp-e2e")
    content = content.replace(server.url, "http://127.0.0.1:PORT")
    FIXTURES.mkdir(parents=True, exist_ok=True)
    (FIXTURES / name).write_text(content)


# -- claude --------------------------------------------------------------------

def test_claude_runs_write_and_bash_and_reports_usage_and_cost(clis, repo, tmp_path):
    script = [write_file(str(repo / "hello.txt"), "from the Write tool\n", T1),
              shell("printf 'from Bash\\n' > bash.txt", T2),
              text("done", T3)]
    with ModelServer({"claude": script}) as server:
        result = claude(clis, repo, claude_env(server.url, tmp_path / "home"), "--dangerously-skip-permissions")
        save_fixture("claude-stream.jsonl", result.out, tmp_path, server)

    assert result.code == 0, result.err
    assert (repo / "hello.txt").read_text() == "from the Write tool\n"
    assert (repo / "bash.txt").read_text() == "from Bash\n"
    assert server.problems == []
    posts = server.model_requests("claude")
    # 2.1.197 checks connectivity with a HEAD / first; 2.1.332 does not
    assert [r.path for r in server.requests if r.path != "/"] == ["/v1/messages"] * 3
    assert all(r.query == {"beta": ["true"]} and r.body["model"] == CLAUDE_MODEL and r.body["stream"] for r in posts)
    last_user = posts[1].body["messages"][-1]["content"]
    assert any(block.get("type") == "tool_result" for block in last_user)

    events = result.events()
    assert (events[0]["type"], events[0]["subtype"]) == ("system", "init")
    assert [e["type"] for e in events[1:]] == ["assistant", "user", "assistant", "user", "assistant", "result"]
    final = events[-1]
    assert (final["subtype"], final["is_error"], final["num_turns"], final["result"]) == ("success", False, 3, "done")
    assert final["permission_denials"] == []
    # The result sums the three requests' usage...
    assert {k: final["usage"][k] for k in ("input_tokens", "output_tokens", "cache_creation_input_tokens",
                                           "cache_read_input_tokens")} == {
        "input_tokens": 3300, "output_tokens": 115, "cache_creation_input_tokens": 300, "cache_read_input_tokens": 1300}
    # ...and prices it at Sonnet's list prices per million: $3 input, $15 output, $3.75 cache write, $0.30 cache read.
    assert final["total_cost_usd"] == pytest.approx((3300 * 3 + 115 * 15 + 300 * 3.75 + 1300 * 0.30) / 1e6)
    assert final["modelUsage"][CLAUDE_MODEL]["costUSD"] == pytest.approx(final["total_cost_usd"])
    # The assistant events only carry each reply's first chunk: output_tokens is 1 there.
    assert events[1]["message"]["usage"]["output_tokens"] == 1

    assert parse_claude_log(result.out) == Usage(input_tokens=3300, output_tokens=115, cache_read_tokens=1300,
                                                 cache_write_tokens=300, cost_usd=final["total_cost_usd"])


def test_claude_json_output_is_one_result_object(clis, repo, tmp_path):
    with ModelServer({"claude": [text("nothing to do", T1)]}) as server:
        result = claude(clis, repo, claude_env(server.url, tmp_path / "home"), "--dangerously-skip-permissions",
                        fmt="json")
        save_fixture("claude-result.json", result.out, tmp_path, server)
    assert result.code == 0, result.err
    (final,) = result.events()
    assert (final["type"], final["is_error"], final["result"]) == ("result", False, "nothing to do")
    usage = parse_claude_log(result.out)
    assert (usage.input_tokens, usage.output_tokens, usage.cache_write_tokens) == (1000, 50, 300)


def test_claude_as_root_refuses_to_skip_permissions_without_is_sandbox(clis, repo, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("the refusal happens only as root")
    with ModelServer({"claude": [text("never asked")]}) as server:
        result = claude(clis, repo, claude_env(server.url, tmp_path / "home", sandbox=False),
                        "--dangerously-skip-permissions")
        save_fixture("claude-root-refusal.txt", result.err, tmp_path, server)
    assert result.code == 1
    assert result.out == ""
    assert result.err.strip() == ROOT_REFUSAL
    assert server.model_requests("claude") == []


def test_claude_api_key_rate_limit(clis, repo, tmp_path):
    body = {"type": "error", "error": {"type": "rate_limit_error",
                                       "message": "This request would exceed your organization's rate limit."}}
    with ModelServer({"claude": [error(429, body=body)]}) as server:
        result = claude(clis, repo, claude_env(server.url, tmp_path / "home"), "--dangerously-skip-permissions")
        save_fixture("claude-429.jsonl", result.out, tmp_path, server)
    assert result.code == 1
    assert result.err == ""
    message = "API Error: Request rejected (429) · This request would exceed your organization's rate limit."
    assistant, final = result.events()[-2:]
    assert (assistant["error"], assistant["message"]["model"]) == ("rate_limit", "<synthetic>")
    assert assistant["message"]["content"] == [{"type": "text", "text": message}]
    # subtype says success; is_error and the exit code say otherwise
    assert (final["subtype"], final["is_error"], final["api_error_status"], final["result"]) == (
        "success", True, 429, message)
    assert find_usage_limit(result.out).kind == "rate"


def test_claude_subscription_usage_limit(clis, repo, tmp_path):
    with ModelServer({"claude": [error(429, resets_at=RESETS_AT)]}) as server:
        env = dict(claude_env(server.url, tmp_path / "home", subscription=True), TZ="UTC")
        result = claude(clis, repo, env, "--dangerously-skip-permissions")
        save_fixture("claude-usage-limit.jsonl", result.out, tmp_path, server)
    assert result.code == 1
    # 2.1.197 says "session limit", 2.1.332 "5-hour limit"
    messages = {f"You've hit your {name} limit · resets Mar 17, 2030, 5:46pm (UTC)" for name in ("session", "5-hour")}
    events = result.events()
    limit_event = next(e for e in events if e["type"] == "rate_limit_event")
    assert limit_event["rate_limit_info"] == {"status": "rejected", "resetsAt": RESETS_AT,
                                              "rateLimitType": "five_hour", "isUsingOverage": False}
    assert (events[-1]["is_error"], events[-1]["api_error_status"]) == (True, 429)
    assert events[-1]["result"] in messages
    limit = find_usage_limit(result.out)
    assert (limit.kind, limit.resets_at) == ("usage", "2030-03-17T17:46:40Z")


# -- codex ---------------------------------------------------------------------

def test_codex_runs_apply_patch_and_exec_command_and_reports_usage(clis, repo, tmp_path):
    script = [write_file("hello.txt", "from apply_patch\n", T1),
              shell("printf 'from exec_command\\n' > exec.txt", T2),
              text("done", T3)]
    with ModelServer({"codex": script}) as server:
        result = codex(clis, repo, codex_env(server.url, tmp_path / "home"))
        save_fixture("codex-exec.jsonl", result.out, tmp_path, server)

    assert result.code == 0, result.err
    assert (repo / "hello.txt").read_text() == "from apply_patch\n"
    assert (repo / "exec.txt").read_text() == "from exec_command\n"
    assert server.problems == []
    posts = server.model_requests("codex")
    assert len(posts) == 3 and [r.path for r in server.requests] == ["/v1/responses"] * 3
    assert all(r.body["model"] == "gpt-5.5" and r.body["stream"] for r in posts)
    assert posts[1].body["input"][-1]["type"] == "custom_tool_call_output"
    assert posts[2].body["input"][-1]["type"] == "function_call_output"

    events = result.events()
    assert [e["type"] for e in events] == ["thread.started", "turn.started", "item.started", "item.completed",
                                           "item.started", "item.completed", "item.completed", "turn.completed"]
    items = [e["item"] for e in events if e["type"] == "item.completed"]
    assert [i["type"] for i in items] == ["file_change", "command_execution", "agent_message"]
    assert items[0]["changes"] == [{"path": str(repo / "hello.txt"), "kind": "add"}]
    assert (items[1]["exit_code"], items[1]["status"]) == (0, "completed")
    assert items[2]["text"] == "done"
    # input_tokens include the cached ones (4600 = 3300 + 1300); reasoning is part of output.
    assert events[-1]["usage"] == {"input_tokens": 4600, "cached_input_tokens": 1300, "cache_write_input_tokens": 0,
                                   "output_tokens": 115, "reasoning_output_tokens": 7}

    usage = parse_codex_log(result.out)
    assert usage == Usage(input_tokens=3300, output_tokens=115, cache_read_tokens=1300)
    assert usage.total_tokens == 3415


def test_codex_plain_mode_prints_tokens_used_on_stderr(clis, repo, tmp_path):
    script = [write_file("hello.txt", "from apply_patch\n", T1),
              shell("printf 'from exec_command\\n' > exec.txt", T2),
              text("done", T3)]
    with ModelServer({"codex": script}) as server:
        result = codex(clis, repo, codex_env(server.url, tmp_path / "home"), json_lines=False)
        save_fixture("codex-exec-plain.stderr", result.err, tmp_path, server)
    assert result.code == 0, result.err
    assert result.out == "done\n"
    assert result.err.endswith("tokens used\n3,415\n")
    # codex's own count (input - cached + output) is what Usage.total_tokens means for the JSON log
    assert parse_codex_log(result.err).total_tokens == 3415


def test_codex_usage_limit(clis, repo, tmp_path):
    with ModelServer({"codex": [error(429, resets_at=RESETS_AT)]}) as server:
        env = dict(codex_env(server.url, tmp_path / "home"), TZ="UTC")
        result = codex(clis, repo, env)
        save_fixture("codex-429.jsonl", result.out, tmp_path, server)
        plain = codex(clis, repo, env, json_lines=False)
        save_fixture("codex-429-plain.stderr", plain.err, tmp_path, server)
    message = ("You\u2019ve hit your usage limit. Visit https://chatgpt.com/settings/usage to purchase more credits"
               " or try again at Mar 17th, 2030 5:46 PM.")
    assert result.code == 1
    assert result.events()[-2:] == [{"type": "error", "message": message},
                                    {"type": "turn.failed", "error": {"message": message}}]
    limit = find_usage_limit(result.out)
    assert (limit.kind, limit.resets_at) == ("usage", "Mar 17th, 2030 5:46 PM")

    assert plain.code == 1
    assert plain.out == ""
    assert f"ERROR: {message}\n" in plain.err
    assert find_usage_limit(plain.err).resets_at == "Mar 17th, 2030 5:46 PM"


def test_codex_api_rate_limit(clis, repo, tmp_path):
    with ModelServer({"codex": [error(429)]}) as server:
        result = codex(clis, repo, codex_env(server.url, tmp_path / "home"))
        save_fixture("codex-429-rate.jsonl", result.out, tmp_path, server)
    message = "exceeded retry limit, last status: 429 Too Many Requests"
    assert result.code == 1
    assert result.events()[-2:] == [{"type": "error", "message": message},
                                    {"type": "turn.failed", "error": {"message": message}}]
    assert find_usage_limit(result.out).kind == "rate"


# -- the scripted server itself (no CLI needed) ----------------------------------

def _post(url: str, body: Dict) -> tuple:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


def test_server_answers_non_streaming_requests_and_picks_turns_by_history():
    script = [shell("true", Tokens(input=7, output=3)), text("bye")]
    with ModelServer({"claude": script}) as server:
        first = {"model": "m", "stream": False, "messages": [{"role": "user", "content": "hi"}]}
        status, _, body = _post(server.url + "/v1/messages?beta=true", first)
        reply = json.loads(body)
        assert status == 200
        assert reply["content"][0]["name"] == "Bash" and reply["stop_reason"] == "tool_use"
        assert reply["usage"] == {"input_tokens": 7, "output_tokens": 3, "cache_creation_input_tokens": 0,
                                  "cache_read_input_tokens": 0}
        second = dict(first, messages=first["messages"] + [{"role": "assistant", "content": reply["content"]}])
        assert json.loads(_post(server.url + "/v1/messages", second)[2])["content"] == [{"type": "text", "text": "bye"}]
        third = dict(second, messages=second["messages"] + [{"role": "assistant", "content": "bye"}])
        assert _post(server.url + "/v1/messages", third)[0] == 500
        assert server.problems == ["claude request /v1/messages wants turn 2, script has 2"]
        assert [r.query for r in server.requests] == [{"beta": ["true"]}, {}, {}]


def test_server_usage_limit_errors_have_each_apis_shape():
    with ModelServer([error(429, resets_at=RESETS_AT)]) as server:
        status, headers, body = _post(server.url + "/v1/messages", {"messages": []})
        assert status == 429 and json.loads(body)["error"]["type"] == "rate_limit_error"
        assert headers["anthropic-ratelimit-unified-reset"] == str(RESETS_AT)
        status, _, body = _post(server.url + "/v1/responses", {"input": []})
        assert status == 429 and json.loads(body)["error"]["type"] == "usage_limit_reached"
        assert json.loads(body)["error"]["resets_at"] == RESETS_AT

"""Billing routes: mode and provenance, references, the agent environment per route, refusals, redaction.

A fake ``op`` on PATH plays 1Password (tests/testing/billing.py).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from autometta import auth, families, secrets
from autometta.families.codex import codex_home_state
from autometta.agents.spawn import LaunchSpec, runner_args
from tests.testing.billing import (
    ANTHROPIC_KEY,
    ANTHROPIC_REF,
    OAUTH_REF,
    OAUTH_TOKEN,
    OPENAI_KEY,
    OPENAI_REF,
    STRAY,
    codex_home,
    fake_op,
    refs_file,
)

CLAUDE, CODEX = families.get("claude"), families.get("codex")


@pytest.fixture(autouse=True)
def _fresh(tmp_path, monkeypatch):
    secrets.forget()
    monkeypatch.setattr(secrets, "install_folder", lambda: tmp_path / "install")
    yield
    secrets.forget()


@pytest.fixture
def environ(tmp_path):
    """A tick's environment: fake op on PATH, a refs file, stray keys exported, a private HOME."""
    bin_dir = tmp_path / "bin"
    fake_op(bin_dir, calls=tmp_path / "op-calls")
    refs = refs_file(tmp_path / "refs.sh", OP_REF_ANTHROPIC_API_KEY=ANTHROPIC_REF,
                     OP_REF_OPENAI_API_KEY=OPENAI_REF)
    return {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path / "home"), "LANG": "C.UTF-8",
            "AUTOMETTA_LOCAL_REFS": str(refs), **STRAY}


def op_calls(tmp_path: Path) -> list:
    path = tmp_path / "op-calls"
    return path.read_text().splitlines() if path.exists() else []


# ----------------------------------------------------------------- the mode

@pytest.mark.parametrize("env_value, manifest_value, mode, provenance", [
    (None, None, "subscription", "default"),
    (None, "api", "api", "manifest"),
    ("api", None, "api", "env"),
    ("subscription", "api", "subscription", "env"),  # the environment beats the manifest
    ("api", "subscription", "api", "env"),
    ("", "api", "api", "manifest"),  # an empty variable is unset, as in bash
])
def test_mode_env_then_manifest_then_default(env_value, manifest_value, mode, provenance):
    environ = {} if env_value is None else {"AUTOMETTA_CLAUDE_MODE": env_value}
    manifest = {} if manifest_value is None else {"auth": {"claude": {"mode": manifest_value}}}
    got = auth.mode_for("claude", environ, manifest, Path("/r/.autometta.local.yaml"))
    assert (got.mode, got.provenance) == (mode, provenance)
    assert auth.mode_for("codex", environ, manifest).provenance == "default"  # per family


def test_an_invalid_mode_blocks_and_names_where_it_was_set(environ):
    route = auth.plan("codex", dict(environ, AUTOMETTA_CODEX_MODE="key"), {})
    assert route.problem == "AUTOMETTA_CODEX_MODE is 'key'; set it to subscription or api"
    with pytest.raises(auth.RouteError) as exc:
        auth.agent_env(dict(environ, AUTOMETTA_CODEX_MODE="key"), {}, CODEX, "worker")
    assert exc.value.marker == "auth_route_failed"


# ------------------------------------------------------- the refs file

def test_refs_file_search_order(tmp_path):
    xdg = refs_file(tmp_path / "xdg" / "autometta" / "op-refs.local.sh", OP_REF_OPENAI_API_KEY="op://X/xdg/c")
    explicit = refs_file(tmp_path / "explicit.sh", OP_REF_OPENAI_API_KEY="op://X/explicit/c")
    beside = refs_file(tmp_path / "install" / "op-refs.local.sh", OP_REF_OPENAI_API_KEY="op://X/install/c")
    environ = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "xdg"), "AUTOMETTA_LOCAL_REFS": str(explicit)}
    for expected, origin in ((explicit, "AUTOMETTA_LOCAL_REFS"), (xdg, "XDG_CONFIG_HOME"), (beside, "install")):
        refs = secrets.load_refs_file(environ)
        assert (refs.path, refs.origin) == (expected, origin)
        expected.unlink()
    refs = secrets.load_refs_file(environ)
    assert refs.path is None
    assert secrets.lookup("OP_REF_OPENAI_API_KEY", environ, refs).value == "op://YOUR_VAULT/openai-api-key/credential"


def test_default_xdg_folder_is_under_home(tmp_path):
    path = refs_file(tmp_path / ".config" / "autometta" / "op-refs.local.sh", OP_REF_OPENAI_API_KEY="op://V/i/f")
    assert secrets.load_refs_file({"HOME": str(tmp_path)}).path == path


def test_refs_file_is_parsed_never_run(tmp_path):
    text = "\n".join([
        "#!/usr/bin/env bash",
        "# export OP_REF_OPENAI_API_KEY=op://commented/out/x",
        'export OP_REF_ANTHROPIC_API_KEY="op://Private/Anthropic/credential"  # trailing comment',
        ": \"${OP_REF_OPENAI_API_KEY:=op://Private/OpenAI/credential}\"",
        "OP_REF_CLAUDE_CODE_OAUTH_TOKEN='file:~/token'",
        f"OP_REF_EVIL=$(touch {tmp_path}/ran)",
        'OP_REF_EXPANDED="op://$VAULT/x/y"',
        "export OP_REF_ANTHROPIC_API_KEY OP_REF_OPENAI_API_KEY",
        "PLAIN=op://V/i/f; export PLAIN",
    ])
    found, skipped = secrets.parse_refs(text)
    assert found == {
        "OP_REF_ANTHROPIC_API_KEY": ("op://Private/Anthropic/credential", False),
        "OP_REF_OPENAI_API_KEY": ("op://Private/OpenAI/credential", True),
        "OP_REF_CLAUDE_CODE_OAUTH_TOKEN": ("file:~/token", False),
        "PLAIN": ("op://V/i/f", False),
    }
    assert skipped == [6, 7]
    assert not (tmp_path / "ran").exists()


def test_assignment_beats_the_environment_and_default_form_yields_to_it(tmp_path):
    path = tmp_path / "refs.sh"
    path.write_text('export OP_REF_ANTHROPIC_API_KEY="op://File/a/c"\n: "${OP_REF_OPENAI_API_KEY:=op://File/o/c}"\n')
    environ = {"AUTOMETTA_LOCAL_REFS": str(path), "OP_REF_ANTHROPIC_API_KEY": "op://Env/a/c",
               "OP_REF_OPENAI_API_KEY": "op://Env/o/c", "HOME": str(tmp_path)}
    refs = secrets.load_refs_file(environ)
    assert secrets.lookup("OP_REF_ANTHROPIC_API_KEY", environ, refs) == secrets.Ref(
        "OP_REF_ANTHROPIC_API_KEY", "op://File/a/c", str(path))
    assert secrets.lookup("OP_REF_OPENAI_API_KEY", environ, refs) == secrets.Ref(
        "OP_REF_OPENAI_API_KEY", "op://Env/o/c", "environment")


# ------------------------------------------------- the environment per route

def test_claude_api_gets_the_key_from_op_and_nothing_stray(environ, tmp_path):
    env = auth.agent_env(dict(environ, AUTOMETTA_CLAUDE_MODE="api", CLAUDE_CODE_OAUTH_TOKEN="sk-ant-oat01-zzzz"),
                         {"env": {"pass": ["CLAUDE_CODE_OAUTH_TOKEN", "OPENAI_API_KEY"]}}, CLAUDE, "worker")
    assert env["ANTHROPIC_API_KEY"] == ANTHROPIC_KEY
    assert "OPENAI_API_KEY" not in env and "CLAUDE_CODE_OAUTH_TOKEN" not in env
    assert op_calls(tmp_path) == [f"read {ANTHROPIC_REF}"]


def test_claude_subscription_strips_keys_and_injects_no_token_without_a_ref(environ, tmp_path):
    env = auth.agent_env(environ, {}, CLAUDE, "worker")
    assert not {"ANTHROPIC_API_KEY", "OPENAI_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN"} & set(env)
    assert op_calls(tmp_path) == []  # nothing to fetch


def test_claude_subscription_injects_the_oauth_token_ref(environ, tmp_path):
    refs_file(Path(environ["AUTOMETTA_LOCAL_REFS"]), OP_REF_CLAUDE_CODE_OAUTH_TOKEN=OAUTH_REF)
    env = auth.agent_env(environ, {}, CLAUDE, "verifier")
    assert env["CLAUDE_CODE_OAUTH_TOKEN"] == OAUTH_TOKEN
    assert "ANTHROPIC_API_KEY" not in env
    # a placeholder token ref means "use the CLI's login", as in bash
    refs_file(Path(environ["AUTOMETTA_LOCAL_REFS"]),
              OP_REF_CLAUDE_CODE_OAUTH_TOKEN="op://YOUR_VAULT/claude-code-oauth-token/credential")
    assert "CLAUDE_CODE_OAUTH_TOKEN" not in auth.agent_env(environ, {}, CLAUDE, "verifier")


def test_codex_api_gets_the_key_and_the_sibling_home(environ, tmp_path):
    sibling = codex_home(tmp_path / "codex-api")
    env = auth.agent_env(dict(environ, AUTOMETTA_CODEX_MODE="api", AUTOMETTA_CODEX_HOME=str(sibling),
                              CODEX_HOME=str(tmp_path / "subscription-home")), {}, CODEX, "worker")
    assert env["OPENAI_API_KEY"] == OPENAI_KEY and env["CODEX_HOME"] == str(sibling)
    assert "ANTHROPIC_API_KEY" not in env


def test_codex_sibling_home_defaults_to_codex_api_only(environ):
    codex_home(Path(environ["HOME"]) / ".codex-api-only")
    env = auth.agent_env(dict(environ, AUTOMETTA_CODEX_MODE="api"), {}, CODEX, "worker")
    assert env["CODEX_HOME"] == os.path.join(environ["HOME"], ".codex-api-only")


def test_codex_subscription_keeps_its_home_and_strips_keys(environ, tmp_path):
    env = auth.agent_env(dict(environ, CODEX_HOME="/h/.codex"), {"auth": {"codex": {"mode": "subscription"}}},
                         CODEX, "worker")
    assert env["CODEX_HOME"] == "/h/.codex"
    assert "OPENAI_API_KEY" not in env and "ANTHROPIC_API_KEY" not in env
    assert op_calls(tmp_path) == []


def test_env_override_beats_the_manifest_for_the_environment(environ):
    manifest = {"auth": {"claude": {"mode": "api"}}}
    assert "ANTHROPIC_API_KEY" in auth.agent_env(environ, manifest, CLAUDE, "worker")
    assert "ANTHROPIC_API_KEY" not in auth.agent_env(dict(environ, AUTOMETTA_CLAUDE_MODE="subscription"),
                                                    manifest, CLAUDE, "worker")


def test_script_family_and_acceptance_get_no_credentials(environ):
    for family in (families.get("script"), None):
        env = auth.agent_env(dict(environ, AUTOMETTA_CLAUDE_MODE="api"), {}, family, "worker")
        assert not set(STRAY) & set(env)


def test_op_fetch_is_preferred_when_present(environ, tmp_path):
    fake_op(tmp_path / "bin", name="op-fetch", calls=tmp_path / "op-calls")
    env = auth.agent_env(dict(environ, AUTOMETTA_CLAUDE_MODE="api"), {}, CLAUDE, "worker")
    assert env["ANTHROPIC_API_KEY"] == ANTHROPIC_KEY
    assert op_calls(tmp_path) == [f"--print {ANTHROPIC_REF}"]


def test_env_and_file_references_need_no_1password(tmp_path):
    key_file = tmp_path / "keys" / "anthropic"
    key_file.parent.mkdir()
    key_file.write_text("sk-ant-from-a-file-0000\n")
    refs = refs_file(tmp_path / "refs.sh", OP_REF_ANTHROPIC_API_KEY="file:keys/anthropic",
                     OP_REF_OPENAI_API_KEY="env:MY_OPENAI_KEY")
    environ = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "AUTOMETTA_LOCAL_REFS": str(refs),
               "AUTOMETTA_CLAUDE_MODE": "api", "AUTOMETTA_CODEX_MODE": "api",
               "AUTOMETTA_CODEX_HOME": str(codex_home(tmp_path / "cx")), "MY_OPENAI_KEY": "sk-proj-from-env-0000"}
    assert auth.agent_env(environ, {}, CLAUDE, "worker")["ANTHROPIC_API_KEY"] == "sk-ant-from-a-file-0000"
    assert auth.agent_env(environ, {}, CODEX, "worker")["OPENAI_API_KEY"] == "sk-proj-from-env-0000"


# ------------------------------------------------------------- refusals

def test_placeholder_is_refused_before_anything_is_fetched(environ, tmp_path):
    environ = dict(environ, AUTOMETTA_CLAUDE_MODE="api")
    environ.pop("AUTOMETTA_LOCAL_REFS")
    with pytest.raises(auth.RouteError) as exc:
        auth.agent_env(environ, {}, CLAUDE, "worker", resolve=False)
    assert exc.value.message.startswith(
        "claude api mode: OP_REF_ANTHROPIC_API_KEY is still the placeholder "
        "op://YOUR_VAULT/anthropic-api-key/credential; set OP_REF_ANTHROPIC_API_KEY in ")
    assert "unset AUTOMETTA_CLAUDE_MODE to bill claude to the subscription" in exc.value.message
    assert op_calls(tmp_path) == []


def test_manifest_mode_is_named_in_the_fix(environ):
    environ = dict(environ)
    environ.pop("AUTOMETTA_LOCAL_REFS")
    route = auth.plan("claude", environ, {"auth": {"claude": {"mode": "api"}}}, Path("/r/.autometta.local.yaml"))
    assert "set auth.claude.mode: subscription in /r/.autometta.local.yaml" in route.problem


def test_unresolvable_reference_is_refused_naming_it(environ, tmp_path):
    refs_file(Path(environ["AUTOMETTA_LOCAL_REFS"]), OP_REF_ANTHROPIC_API_KEY="op://Private/Gone/credential")
    environ = dict(environ, AUTOMETTA_CLAUDE_MODE="api")
    auth.agent_env(environ, {}, CLAUDE, "worker", resolve=False)  # the route itself is fine
    with pytest.raises(auth.RouteError) as exc:
        auth.agent_env(environ, {}, CLAUDE, "worker")
    assert exc.value.message == (
        "claude api mode: could not resolve op://Private/Gone/credential (OP_REF_ANTHROPIC_API_KEY): "
        "`op read` exited 1: [ERROR] could not read secret 'op://Private/Gone/credential': "
        "isn't an item in any vault")


def test_a_secret_pasted_as_a_reference_is_refused_without_repeating_it(environ):
    refs_file(Path(environ["AUTOMETTA_LOCAL_REFS"]), OP_REF_ANTHROPIC_API_KEY=ANTHROPIC_KEY)
    route = auth.plan("claude", dict(environ, AUTOMETTA_CLAUDE_MODE="api"), {})
    assert "is not a reference; write op://vault/item/field, env:NAME or file:PATH there" in route.problem
    assert ANTHROPIC_KEY not in route.problem and ANTHROPIC_KEY[-8:] not in route.problem


def test_op_reference_without_op_on_path_is_refused(environ):
    route = auth.plan("claude", dict(environ, AUTOMETTA_CLAUDE_MODE="api", PATH="/usr/bin:/bin"), {})
    assert route.problem == ("claude api mode: OP_REF_ANTHROPIC_API_KEY is op://Private/Anthropic/credential, "
                             "but neither op-fetch nor op is on PATH; install the 1Password CLI (op), "
                             "or use an env:NAME or file:PATH reference")


def test_a_broken_subscription_token_ref_fails_closed(environ):
    refs_file(Path(environ["AUTOMETTA_LOCAL_REFS"]), OP_REF_CLAUDE_CODE_OAUTH_TOKEN="op://Private/Gone/credential")
    auth.agent_env(environ, {}, CLAUDE, "worker", resolve=False)
    with pytest.raises(auth.RouteError, match=r"^claude subscription mode: could not resolve op://Private/Gone"):
        auth.agent_env(environ, {}, CLAUDE, "worker")


@pytest.mark.parametrize("mode, why", [
    (None, "is not set up"),
    ("chatgpt", "is not logged in with an API key (auth_mode chatgpt)"),
])
def test_codex_api_refuses_a_missing_or_subscription_sibling_home(environ, tmp_path, mode, why):
    sibling = codex_home(tmp_path / "codex-api", mode=mode)
    environ = dict(environ, AUTOMETTA_CODEX_MODE="api", AUTOMETTA_CODEX_HOME=str(sibling))
    with pytest.raises(auth.RouteError) as exc:
        auth.agent_env(environ, {}, CODEX, "worker", resolve=False)
    assert exc.value.message == (
        f"codex api mode needs CODEX_HOME {sibling} logged in with an API key, and it {why}; run once: "
        f"mkdir -m 700 -p {sibling} && op read {OPENAI_REF} | "
        f"CODEX_HOME={sibling} codex login --with-api-key")
    assert op_calls(tmp_path) == []


def test_codex_home_state_reads_what_codex_login_writes(tmp_path):
    # codex 0.171.0, `codex login --with-api-key` with the key on stdin, wrote exactly this:
    (tmp_path / "auth.json").write_text('{\n  "auth_mode": "apikey",\n  "OPENAI_API_KEY": "sk-proj-x"\n}')
    assert codex_home_state(tmp_path)[0] == "apikey"
    (tmp_path / "auth.json").write_text("{not json")
    assert codex_home_state(tmp_path)[0] == "unreadable"


# ------------------------------------------------------------- redaction

def test_resolved_values_are_masked_in_any_text(environ):
    auth.agent_env(dict(environ, AUTOMETTA_CLAUDE_MODE="api"), {}, CLAUDE, "worker")
    assert secrets.redact(f"key={ANTHROPIC_KEY}!") == "key=****wxyz!"
    assert secrets.mask("short") == "****"


def test_secrets_never_reach_the_runner_argv(environ):
    env = auth.agent_env(dict(environ, AUTOMETTA_CLAUDE_MODE="api"), {}, CLAUDE, "worker")
    spec = LaunchSpec(argv=["claude", "-p", "x"], cwd=Path("/"), env=env, log_path=Path("/l"), exit_path=Path("/e"))
    assert not any(ANTHROPIC_KEY in arg for arg in runner_args(spec))


# ------------------------------------------------------------- the commands

@pytest.fixture
def shell(environ, monkeypatch, tmp_path):
    """The user's shell for in-process CLI runs: the test environment, in a folder outside any repo."""
    for name in list(os.environ):
        if name.startswith(("AUTOMETTA_", "OP_REF_", "XDG_")) or name in STRAY:
            monkeypatch.delenv(name)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    outside = tmp_path / "outside"
    outside.mkdir()
    monkeypatch.chdir(outside)
    return environ


def fake_cli(tmp_path: Path, name: str) -> None:
    script = tmp_path / "bin" / name
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o755)


def test_auth_status_shows_routes_provenance_refs_and_stray_keys(run, shell, tmp_path, monkeypatch, repo):
    (repo / ".autometta.local.yaml").write_text("auth:\n  codex:\n    mode: api\n")
    monkeypatch.setenv("AUTOMETTA_CLAUDE_MODE", "api")
    fake_cli(tmp_path, "claude")
    fake_cli(tmp_path, "codex")
    res = run("auth", "status", "--repo", str(repo))
    assert res.code == 1, res.err  # a route is blocked
    lines = res.out.splitlines()
    assert f"manifest:        {repo}/.autometta.local.yaml" in lines
    assert f"refs file:       {tmp_path}/refs.sh (AUTOMETTA_LOCAL_REFS)" in lines
    assert f"op:              {tmp_path}/bin/op" in lines
    assert "op-fetch:        not found" in lines
    assert any(line.startswith("codex api home:  ") and "not set up" in line for line in lines)
    start = next(i for i, line in enumerate(lines) if line.startswith("FAMILY"))
    table = [line.split() for line in lines[start + 1:start + 3]]
    assert table == [
        ["claude", "api", "env", "ANTHROPIC_API_KEY", ANTHROPIC_REF, "(refs", "file)", "ready"],
        ["codex", "api", "manifest", "OPENAI_API_KEY", OPENAI_REF, "(refs", "file)", "BLOCKED"],
    ]
    assert any(line.startswith("codex: codex api mode needs CODEX_HOME") for line in lines)
    assert "warning: ANTHROPIC_API_KEY is set in this environment" in res.err
    assert "warning: OPENAI_API_KEY is set in this environment" in res.err
    assert ANTHROPIC_KEY not in res.out + res.err
    res = run("auth", "status", "--repo", str(repo), "--json")
    assert res.code == 1
    doc = json.loads(res.out)
    assert [(r["family"], r["mode"], r["provenance"], r["ok"], r["ready"]) for r in doc["routes"]] == [
        ("claude", "api", "env", True, True), ("codex", "api", "manifest", False, False)]
    assert doc["routes"][0]["cli"] == f"{tmp_path}/bin/claude"
    assert doc["stray_keys"] == ["ANTHROPIC_API_KEY", "OPENAI_API_KEY"]
    assert doc["tools"] == {"op-fetch": None, "op": f"{tmp_path}/bin/op"}


def test_auth_status_is_not_ready_without_the_cli_and_exits_0_only_when_both_are(run, shell, tmp_path):
    fake_cli(tmp_path, "codex")
    res = run("auth", "status")  # both subscription routes work; claude is not installed
    assert res.code == 1
    rows: dict = {}
    for line in res.out.splitlines():  # the routes table comes first, then the permissions table
        if line.startswith(("claude  ", "codex  ")):
            rows.setdefault(line.split()[0], line)
    assert rows["claude"].rstrip().endswith("NOT INSTALLED") and "ready" not in rows["claude"]
    assert rows["codex"].rstrip().endswith("ready (the CLI's own login)")
    assert any(line.startswith("claude: claude is not on PATH") for line in res.out.splitlines())
    fake_cli(tmp_path, "claude")
    res = run("auth", "status")
    assert res.code == 0 and "NOT INSTALLED" not in res.out


def test_auth_check_passes_with_the_secret_redacted(run, shell, tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOMETTA_CLAUDE_MODE", "api")
    res = run("auth", "check", "claude")
    assert (res.code, res.out) == (0, "PASS  claude  api           OP_REF_ANTHROPIC_API_KEY -> ****wxyz "
                                      "(env ANTHROPIC_API_KEY)\n")
    res = run("auth", "check", "codex")
    assert res.code == 0 and res.out.startswith("PASS  codex   subscription  no key to fetch")


def test_auth_check_codex_api_passes_with_a_sibling_home(run, shell, tmp_path, monkeypatch):
    other = "sk-" + "proj-another-key-0000-9876"
    sibling = codex_home(tmp_path / "codex-api", key=other)
    monkeypatch.setenv("AUTOMETTA_CODEX_MODE", "api")
    monkeypatch.setenv("AUTOMETTA_CODEX_HOME", str(sibling))
    res = run("auth", "check", "codex", "--json")
    assert res.code == 0
    [result] = json.loads(res.out)
    assert result["result"] == "PASS"
    assert result["secrets"] == {"OPENAI_API_KEY": {"var": "OP_REF_OPENAI_API_KEY", "ref": OPENAI_REF,
                                                     "redacted": "****abcd"}}
    assert "its auth.json holds another key (****9876), and codex bills that one" in result["detail"]
    assert OPENAI_KEY not in res.out and other not in res.out


def test_auth_check_fails_closed(run, shell, tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOMETTA_CLAUDE_MODE", "api")
    refs_file(tmp_path / "refs.sh", OP_REF_ANTHROPIC_API_KEY="op://Private/Gone/credential")
    res = run("auth", "check", "claude")
    assert res.code == 1 and res.out == ""
    assert res.err.startswith("FAIL  claude  api           claude api mode: could not resolve "
                              "op://Private/Gone/credential (OP_REF_ANTHROPIC_API_KEY)")
    monkeypatch.setenv("AUTOMETTA_CODEX_MODE", "api")
    res = run("auth", "check")  # both families; one failure is enough
    assert res.code == 1 and "FAIL  codex" in res.err and "FAIL  claude" in res.err


def test_auth_usage_errors(run, shell):
    assert run("auth", "check", "gemini").code == 2
    assert run("auth", "status", "claude").code == 2
    res = run("auth", "status", "--repo", "/")
    assert res.code == 1 and "not inside a git repository" in res.err


def test_error_lines_never_show_a_resolved_secret(run, shell, tmp_path):
    secrets.register(ANTHROPIC_KEY)
    res = run("scan-secrets", str(tmp_path / ANTHROPIC_KEY))
    assert res.code == 1 and "****wxyz: no such folder" in res.err
    assert ANTHROPIC_KEY not in res.err

"""The agent environment: an allowlist, never a stray API key."""

from __future__ import annotations

from autometta import auth

PARENT = {
    "PATH": "/bin", "HOME": "/h", "LANG": "C.UTF-8", "LC_ALL": "C", "TERM": "xterm",
    "ANTHROPIC_API_KEY": "sk-ant-stray", "OPENAI_API_KEY": "sk-proj-stray",
    "CLAUDE_CODE_OAUTH_TOKEN": "oauth", "CLAUDE_CODE_MAX_RETRIES": "0", "IS_SANDBOX": "1",
    "AWS_SECRET_ACCESS_KEY": "nope", "ANTHROPIC_BASE_URL": "http://127.0.0.1:1",
}


def test_only_the_allowlist_crosses():
    env = auth.clean_env(PARENT)
    assert env == {"PATH": "/bin", "HOME": "/h", "LANG": "C.UTF-8", "LC_ALL": "C", "TERM": "xterm"}


def test_family_names_and_prefixes_cross_but_secrets_do_not():
    env = auth.clean_env(PARENT, ("IS_SANDBOX", "CLAUDE_CODE_*"), (), ("CLAUDE_CODE_OAUTH_TOKEN",))
    assert env["IS_SANDBOX"] == "1" and env["CLAUDE_CODE_MAX_RETRIES"] == "0"
    assert "CLAUDE_CODE_OAUTH_TOKEN" not in env and "ANTHROPIC_API_KEY" not in env


def test_env_pass_adds_names_but_never_api_keys():
    env = auth.clean_env(PARENT, (), ["ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN"],
                         ("CLAUDE_CODE_OAUTH_TOKEN",))
    assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:1" and env["CLAUDE_CODE_OAUTH_TOKEN"] == "oauth"
    assert "ANTHROPIC_API_KEY" not in env


def test_manifest_pass_reads_env_pass():
    assert auth.manifest_pass({"env": {"pass": ["A", 3, "B"]}}) == ["A", "B"]
    assert auth.manifest_pass({}) == [] and auth.manifest_pass({"env": {"pass": "A"}}) == []


def test_env_pass_token_reaches_only_its_own_family():
    from autometta import families

    parent = dict(PARENT)
    manifest = {"env": {"pass": ["CLAUDE_CODE_OAUTH_TOKEN"]}}
    claude = auth.agent_env(parent, manifest, families.get("claude"), "worker", resolve=False)
    codex = auth.agent_env(parent, manifest, families.get("codex"), "worker", resolve=False)
    acceptance = auth.agent_env(parent, manifest, None, "acceptance", resolve=False)
    assert claude.get("CLAUDE_CODE_OAUTH_TOKEN") == "oauth"
    assert "CLAUDE_CODE_OAUTH_TOKEN" not in codex and "CLAUDE_CODE_OAUTH_TOKEN" not in acceptance

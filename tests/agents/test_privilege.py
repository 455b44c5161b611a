"""Permission modes: which mode each family runs in, the argv each CLI gets for it, and whole ticks.

The modes themselves (what claude and codex run and refuse in each) are
measured with the real CLIs in tests/e2e/test_permission_modes.py; here the
decisions are tested as tables, and a tick with stand-in CLIs on PATH shows
what a CLI receives.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from autometta import families, yamlsub
from autometta.agents import privilege
from autometta.card import parse_card_text
from autometta.errors import UserError
from autometta.paths import RepoPaths
from tests.testing.billing import fake_agent
from tests.testing.repos import make_repo
from tests.testing.ticks import commit_all, run_until_quiet, script_card, stage

REPO = Path("/work/repo")
CARD_PATH = REPO / "docs" / "stages" / "05-x.md"
PROMPT = "Do stage 05-x."
HANDOFFS = Path("/work/repo/state/handoffs")
WORKER = "Claude Sonnet 4.6 <claude-sonnet-4-6@local>"
VERIFIER = "Codex GPT-5.5 <codex-gpt-5-5@local>"
MANIFEST = Path("/work/repo/.autometta.local.yaml")


def card(*bullets: str, acceptance: str = ""):
    lines = ["# Stage card 05-x: t", "", "## Metadata", f"- **Worker:** {WORKER}", f"- **Verifier:** {VERIFIER}"]
    if acceptance:
        lines.append(f"- **Acceptance command:** `{acceptance}`")
    return parse_card_text("\n".join(lines + list(bullets)) + "\n", CARD_PATH)


# -- which mode --------------------------------------------------------------------

@pytest.mark.parametrize("family, manifest, bullet, sandbox, mode, source", [
    ("claude", {}, None, "none", "acceptEdits", "default"),
    ("codex", {}, None, "none", "workspace-write", "default"),
    ("claude", {}, None, "bwrap", "bypass", "default under sandbox: bwrap"),
    ("codex", {}, None, "bwrap", "workspace-write", "default under sandbox: bwrap"),
    ("claude", {}, None, "seatbelt", "bypass", "default under sandbox: seatbelt"),
    ("codex", {}, None, "seatbelt", "bypass", "default under sandbox: seatbelt"),
    ("claude", {"permissions": {"claude": {"mode": "dontAsk"}}}, None, "none", "dontAsk",
     f"permissions.claude.mode in {MANIFEST}"),
    ("claude", {"permissions": {"claude": {"mode": "acceptEdits"}}}, None, "bwrap", "acceptEdits",
     f"permissions.claude.mode in {MANIFEST}"),
    ("codex", {"permissions": {"codex": {"mode": "approve-for-me"}}}, None, "none", "approve-for-me",
     f"permissions.codex.mode in {MANIFEST}"),
    # the card wins over the manifest, one family at a time
    ("claude", {"permissions": {"claude": {"mode": "dontAsk"}}}, "claude auto, codex bypass", "none", "auto",
     f"{CARD_PATH}:6"),
    ("codex", {"permissions": {"codex": {"mode": "approve-for-me"}}}, "claude auto; codex=bypass", "none", "bypass",
     f"{CARD_PATH}:6"),
    ("codex", {}, "claude: dontAsk", "none", "workspace-write", "default"),
    # a bare mode: every family that has it; spellings forgiven
    ("claude", {}, "bypass", "none", "bypass", f"{CARD_PATH}:6"),
    ("codex", {}, "bypass", "none", "bypass", f"{CARD_PATH}:6"),
    ("claude", {}, "`bypassPermissions`", "none", "bypass", f"{CARD_PATH}:6"),
    ("claude", {}, "dontask", "none", "dontAsk", f"{CARD_PATH}:6"),
    ("codex", {}, "dontAsk", "none", "workspace-write", "default"),
    ("codex", {}, "Codex danger-full-access", "none", "bypass", f"{CARD_PATH}:6"),
])
def test_which_mode(family, manifest, bullet, sandbox, mode, source):
    the_card = card(f"- **Permission mode:** {bullet}") if bullet else card()
    permission = privilege.resolve(family, manifest, the_card, sandbox, MANIFEST)
    assert (permission.mode, permission.source, permission.sandbox) == (mode, source, sandbox)


def test_script_has_no_modes():
    assert privilege.resolve("script", {}, card()) is None


@pytest.mark.parametrize("bullet, message", [
    ("claude yolo", f"{CARD_PATH}:6: claude has no permission mode 'yolo'; choose one of acceptEdits, auto, "
                    "dontAsk, bypass"),
    ("codex acceptEdits", f"{CARD_PATH}:6: codex has no permission mode 'acceptEdits'; choose one of "
                          "workspace-write, approve-for-me, bypass"),
    ("anything goes", f"{CARD_PATH}:6: 'anything goes' is no permission mode; write it as '- **Permission mode:** "
                      "claude dontAsk, codex workspace-write' (claude: acceptEdits, auto, dontAsk, bypass; "
                      "codex: workspace-write, approve-for-me, bypass)"),
])
def test_a_card_naming_no_mode_is_an_error_naming_its_line_and_the_choices(bullet, message):
    with pytest.raises(privilege.ModeError) as info:
        privilege.resolve("claude", {}, card(f"- **Permission mode:** {bullet}"))
    assert info.value.message == message
    assert info.value.marker == "permission_mode_invalid"


def test_a_manifest_naming_no_mode_is_an_error_naming_the_file():
    with pytest.raises(UserError, match=r"^/work/repo/.autometta.local.yaml: permissions.codex.mode 'yolo' is no "
                                        r"codex permission mode; choose one of workspace-write, approve-for-me, bypass$"):
        privilege.resolve("codex", {"permissions": {"codex": {"mode": "yolo"}}}, None, "none", MANIFEST)


def test_allowed_commands_come_from_the_manifest_then_the_card():
    the_card = card("- **Allowed commands:** `npm test`, `make lint`, `npm test`", acceptance="make check")
    permission = privilege.resolve("claude", {"permissions": {"allow": ["Bash(git diff:*)", "make lint"]}}, the_card)
    assert permission.allow == ("Bash(git diff:*)", "make lint", "npm test")
    assert permission.acceptance == "make check"
    assert card("- **Allowed commands:** pytest -q, ruff check").allowed_commands == ["pytest -q", "ruff check"]


# -- claude's rules ----------------------------------------------------------------

@pytest.mark.parametrize("command, parts", [
    ("python3 -m pytest -q", ["python3 -m pytest -q"]),
    ("cd app && npm test", ["cd app", "npm test"]),
    ("make a; make b || echo 'x; y' | tee out", ["make a", "make b", "echo 'x; y'", "tee out"]),
    ('python3 -c "import a; a.run()" & wait', ['python3 -c "import a; a.run()"', "wait"]),
    ("echo a\\;b", ["echo a\\;b"]),
    ("  ", []),
])
def test_simple_commands(command, parts):
    assert privilege.simple_commands(command) == parts


def test_claude_rules():
    permission = privilege.Permission("claude", "acceptEdits", "default", acceptance="cd app && npm test",
                                      allow=("make  lint", "Bash(git diff:*)", "WebFetch(domain:docs.python.org)",
                                             "npm test"))
    assert privilege.claude_rules(permission) == [
        "Bash(cd app && npm test)", "Bash(cd app)", "Bash(npm test)", "Bash(make lint:*)", "Bash(git diff:*)",
        "WebFetch(domain:docs.python.org)", "Bash(npm test:*)"]
    strict = privilege.Permission("claude", "dontAsk", "default", acceptance="make check")
    assert privilege.claude_rules(strict, (REPO, HANDOFFS)) == [
        "Bash(make check)", "Edit(//work/repo/**)", "Edit(//work/repo/state/handoffs/**)"]
    assert privilege.claude_rules(privilege.Permission("claude", "bypass", "x", acceptance="make check")) == []
    block = privilege.Permission("claude", "acceptEdits", "default", acceptance="make a\nmake b")
    assert privilege.claude_rules(block) == ["Bash(make a)", "Bash(make b)"]  # a block is never one command


# -- the argv ----------------------------------------------------------------------

CLAUDE_HEAD = ["claude", "-p", "--model", "claude-sonnet-4-6", "--add-dir", str(HANDOFFS),
               "--output-format", "stream-json", "--verbose"]
CODEX_HEAD = ["codex", "exec", "-C", str(REPO)]


@pytest.mark.parametrize("family, mode, sandbox, tail", [
    ("claude", "acceptEdits", "none", ["--permission-mode", "acceptEdits", "--allowedTools", "Bash(make check)",
                                       "Bash(npm test:*)", "--", PROMPT]),
    ("claude", "auto", "none", ["--permission-mode", "auto", "--allowedTools", "Bash(make check)",
                                "Bash(npm test:*)", "--", PROMPT]),
    ("claude", "dontAsk", "none", ["--permission-mode", "dontAsk", "--allowedTools", "Bash(make check)",
                                   "Bash(npm test:*)", "Edit(//work/repo/**)", "Edit(//work/repo/state/handoffs/**)",
                                   "--", PROMPT]),
    ("claude", "bypass", "none", ["--dangerously-skip-permissions", "--", PROMPT]),
    ("claude", "bypass", "bwrap", ["--dangerously-skip-permissions", "--", PROMPT]),
    ("codex", "workspace-write", "none", ["--sandbox", "workspace-write", "--json", "--add-dir", str(HANDOFFS),
                                          "-m", "gpt-5.5", PROMPT]),
    ("codex", "workspace-write", "bwrap", ["--sandbox", "workspace-write", "--json", "-c",
                                           "sandbox_workspace_write.exclude_slash_tmp=true", "--add-dir",
                                           str(HANDOFFS), "-m", "gpt-5.5", PROMPT]),
    ("codex", "approve-for-me", "none", ["--approve-for-me", "--json", "--add-dir", str(HANDOFFS), "-m", "gpt-5.5",
                                         PROMPT]),
    ("codex", "bypass", "none", ["--dangerously-bypass-approvals-and-sandbox", "--json", "--add-dir", str(HANDOFFS),
                                 "-m", "gpt-5.5", PROMPT]),
    ("codex", "bypass", "seatbelt", ["--dangerously-bypass-approvals-and-sandbox", "--json", "--add-dir",
                                     str(HANDOFFS), "-m", "gpt-5.5", PROMPT]),
])
def test_argv(family, mode, sandbox, tail):
    the_card = card("- **Allowed commands:** `npm test`", acceptance="make check")
    permission = privilege.Permission(family, mode, "test", allow=tuple(the_card.allowed_commands),
                                      acceptance=the_card.acceptance_command, sandbox=sandbox)
    model = "claude-sonnet-4-6" if family == "claude" else "gpt-5.5"
    argv = families.get(family).command("worker", PROMPT, model=model, repo=REPO, card=the_card,
                                        extra_dirs=(HANDOFFS,), permission=permission)
    assert argv == (CLAUDE_HEAD if family == "claude" else CODEX_HEAD) + tail


def test_claude_gets_is_sandbox_only_for_bypass_inside_autometta_sandbox():
    claude = families.get("claude")
    assert claude.extra_env(privilege.Permission("claude", "bypass", "x", sandbox="bwrap")) == {"IS_SANDBOX": "1"}
    assert claude.extra_env(privilege.Permission("claude", "bypass", "x")) == {}
    assert claude.extra_env(privilege.Permission("claude", "acceptEdits", "x", sandbox="bwrap")) == {}
    assert families.get("codex").extra_env(privilege.Permission("codex", "bypass", "x", sandbox="bwrap")) == {}


def test_config_dirs():
    assert families.get("claude").config_dirs({"HOME": "/h"}) == [Path("/h/.claude")]
    assert families.get("claude").config_dirs({"HOME": "/h", "CLAUDE_CONFIG_DIR": "/c"}) == [Path("/c")]
    assert families.get("codex").config_dirs({"HOME": "/h"}) == [Path("/h/.codex")]
    assert families.get("codex").config_dirs({"HOME": "/h", "CODEX_HOME": "/x"}) == [Path("/x")]
    assert families.get("script").config_dirs({"HOME": "/h"}) == []


# -- whole ticks with stand-in CLIs ----------------------------------------------------

ARGV_DUMP = """printf '%s\\0' "$@" > '{reports}'/"$AUTOMETTA_ROLE".argv
"""


@pytest.fixture
def world(run, tmp_path, home_dir, monkeypatch):
    """A subscribed repo and stand-in claude (worker) and codex (verifier) that save their argv and env."""
    bin_dir, reports = tmp_path / "bin", tmp_path / "reports"
    reports.mkdir()
    for name in ("claude", "codex"):
        path = fake_agent(bin_dir, name, reports)
        text = path.read_text()
        path.write_text(text.replace("#!/bin/sh\n", "#!/bin/sh\n" + ARGV_DUMP.format(reports=reports), 1))
    for name in list(os.environ):
        if name.startswith(("AUTOMETTA_", "CLAUDE_", "CODEX_")) or name == "IS_SANDBOX":
            monkeypatch.delenv(name)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    repo = make_repo(tmp_path / "proj")
    assert run("init-host").code == 0
    assert run("subscribe", str(repo)).code == 0

    def configure(**settings) -> None:
        path = RepoPaths(repo).manifest
        doc = yamlsub.loads(path.read_text())
        doc.update(settings)
        path.write_text(yamlsub.dumps(doc))

    def add(stage_id: str, *bullets: str, acceptance=None) -> None:
        card_path = script_card(repo, stage_id, worker=WORKER, verifier=VERIFIER, acceptance=acceptance)
        if bullets:
            text = card_path.read_text().replace("## Deliverables", "\n".join(bullets) + "\n\n## Deliverables")
            card_path.write_text(text)
        commit_all(repo, f"card {stage_id}")
        result = run("add-stage", str(repo), str(card_path))
        assert result.code == 0, result.err

    return repo, home_dir, reports, configure, add


def argv(reports: Path, role: str):
    return (reports / f"{role}.argv").read_text().split("\0")[:-1]


def test_the_cards_acceptance_command_and_allowed_commands_reach_claude(world):
    repo, home, reports, configure, add = world
    configure(permissions={"allow": ["make lint"], "codex": {"mode": "approve-for-me"}})
    commit_all(repo, "subscribe")
    add("01-hello", "- **Allowed commands:** `npm test`", acceptance="test -s hello.txt")
    run_until_quiet(home, repo)
    assert stage(repo, "01-hello")["status"] == "completed"
    worker = argv(reports, "worker")
    assert worker[worker.index("--permission-mode") + 1] == "acceptEdits"
    rules = worker[worker.index("--allowedTools") + 1:worker.index("--")]
    assert rules == ["Bash(test -s hello.txt)", "Bash(make lint:*)", "Bash(npm test:*)"]
    assert "--dangerously-skip-permissions" not in worker
    verifier = argv(reports, "verifier")
    assert "--approve-for-me" in verifier and "--sandbox" not in verifier


@pytest.mark.skipif(os.geteuid() != 0, reason="claude refuses bypass only as root")
def test_as_root_claude_runs_by_default_and_bypass_still_needs_is_sandbox(world):
    repo, home, reports, configure, add = world
    commit_all(repo, "subscribe")
    add("01-default")
    run_until_quiet(home, repo)
    assert stage(repo, "01-default")["status"] == "completed"  # no IS_SANDBOX anywhere: acceptEdits runs as root
    configure(permissions={"claude": {"mode": "bypass"}})
    commit_all(repo, "bypass")
    add("02-bypass")
    run_until_quiet(home, repo)
    second = stage(repo, "02-bypass")
    assert (second["status"], second["stall_marker"]) == ("stalled", "claude_refused_root_without_is_sandbox")


def test_a_card_naming_no_mode_is_refused_by_add_stage_and_stalls_a_queued_stage(world, run):
    repo, home, reports, configure, add = world
    commit_all(repo, "subscribe")
    card_path = script_card(repo, "01-odd", worker=WORKER, verifier=VERIFIER)
    text = card_path.read_text().replace("## Deliverables", "- **Permission mode:** claude yolo\n\n## Deliverables")
    card_path.write_text(text)
    commit_all(repo, "odd card")
    result = run("add-stage", str(repo), str(card_path))
    assert result.code == 1
    assert "claude has no permission mode 'yolo'" in result.err
    good = script_card(repo, "02-fine", worker=WORKER, verifier=VERIFIER)
    commit_all(repo, "a good card")
    assert run("add-stage", str(repo), str(good)).code == 0
    card_path_2 = repo / "docs" / "stages" / "02-fine.md"
    card_path_2.write_text(card_path_2.read_text().replace("## Deliverables",
                                                           "- **Permission mode:** claude yolo\n\n## Deliverables"))
    commit_all(repo, "the card changed after it was queued")
    run_until_quiet(home, repo)
    stalled = stage(repo, "02-fine")
    assert stalled["status"] == "stalled"
    assert stalled["stall_marker"].startswith("permission_mode_invalid: "), stalled
    assert not (reports / "worker.argv").exists()


# -- what auth status and check-deps say ---------------------------------------------

def test_auth_status_and_check_deps_say_each_familys_mode_and_the_sandbox(run, repo, monkeypatch):
    monkeypatch.chdir(repo)
    for name in list(os.environ):
        if name.startswith("AUTOMETTA_"):
            monkeypatch.delenv(name)
    out = run("auth", "status").out
    assert "claude  acceptEdits      default  none" in out, out
    assert "codex   workspace-write  default  none" in out, out
    deps_out = run("check-deps").out
    assert "PASS permissions claude acceptEdits (default); codex workspace-write (default)" in deps_out, deps_out
    assert "PASS sandbox none (the default: no repo manifest here)" in deps_out, deps_out

    manifest = RepoPaths(repo).manifest
    manifest.write_text(yamlsub.dumps({"version": 1, "sandbox": "seatbelt" if os.uname().sysname == "Linux"
                                       else "bwrap", "permissions": {"codex": {"mode": "approve-for-me"},
                                                                     "allow": ["make lint"]}}))
    kind = yamlsub.loads(manifest.read_text())["sandbox"]
    report = json.loads(run("auth", "status", "--json").out)
    assert [(r["family"], r["mode"], r["source"]) for r in report["permissions"]] == [
        ("claude", "bypass", f"default under sandbox: {kind}"),
        ("codex", "approve-for-me", f"permissions.codex.mode in {manifest}")]
    assert report["permissions"][0]["allow"] == ["make lint"]
    assert (report["sandbox"]["kind"], report["sandbox"]["available"]) == (kind, False)
    out = run("auth", "status").out
    assert f"sandbox:         {kind}: NOT AVAILABLE: sandbox: {kind} runs on" in out, out
    assert "allowed commands: make lint" in out
    result = run("check-deps")
    assert result.code == 1  # the repo asks for a sandbox that cannot run here
    assert f"MISSING sandbox {kind}: NOT AVAILABLE" in result.out, result.out
    assert (f"PASS permissions claude bypass (default under sandbox: {kind}); codex approve-for-me "
            f"(permissions.codex.mode in {manifest})") in result.out


def test_a_broken_mode_in_the_manifest_fails_check_deps(run, repo, monkeypatch):
    monkeypatch.chdir(repo)
    RepoPaths(repo).manifest.write_text(yamlsub.dumps({"version": 1, "permissions": {"claude": {"mode": "yolo"}}}))
    result = run("check-deps")
    assert result.code == 1
    assert "permissions.claude.mode" in result.err or "permissions.claude.mode" in result.out


def test_the_tick_log_says_which_mode_each_agent_ran_in(world):
    repo, home, reports, configure, add = world
    configure(permissions={"codex": {"mode": "bypass"}})
    commit_all(repo, "subscribe")
    add("01-hello", "- **Permission mode:** claude dontAsk")
    run_until_quiet(home, repo)
    log = "".join(p.read_text() for p in sorted((home / "log").glob("tick-*.log")))
    card_line = f"{repo}/docs/stages/01-hello.md:"
    assert re.search(r"worker pid \d+ started for 01-hello \(billing: claude subscription, from default\) "
                     rf"\[permission dontAsk \({re.escape(card_line)}\d+\)\]", log), log
    assert re.search(r"verifier pid \d+ started for 01-hello \(billing: codex subscription, from default\) "
                     rf"\[permission bypass \(permissions.codex.mode in {re.escape(str(RepoPaths(repo).manifest))}\)\]",
                     log), log

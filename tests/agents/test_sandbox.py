"""The OS sandbox: the plan of what may be written, bwrap's argv, seatbelt's profile, and whole ticks.

What a sandboxed agent is refused (the books, git, the manifest, ~/.ssh) is in
tests/reliability/trust/test_sandbox_writes.py; the real CLIs inside it in
tests/e2e/test_sandbox_real_clis.py.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from autometta import families, yamlsub
from autometta.agents import sandbox
from autometta.errors import UserError
from autometta.paths import RepoPaths
from tests.testing.ticks import commit_all, run_until_quiet, stage

REPO = Path("/srv/proj")
LANE = REPO / ".autometta" / "worktrees" / "01-a"
HANDOFFS = REPO / "state" / "handoffs"
CLAUDE = Path("/home/u/.claude")
TMP = Path("/home/u/.phat-controller/sandbox-tmp/k-01-a-worker")
BWRAP_HEAD = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-pid",
              "--die-with-parent"]


def _bwrap_reason() -> str:
    ok, found = sandbox.available("bwrap")
    return "" if ok else found


needs_bwrap = pytest.mark.skipif(bool(_bwrap_reason()), reason=f"bwrap cannot run here: {_bwrap_reason()}")


@pytest.mark.parametrize("value, kind", [(None, "none"), ("none", "none"), (False, "none"), ("bwrap", "bwrap"),
                                         ("Seatbelt", "seatbelt"), ("off", "none")])
def test_kind_of(value, kind):
    assert sandbox.kind_of({} if value is None else {"sandbox": value}) == kind


def test_an_unknown_kind_names_the_file_and_the_choices():
    with pytest.raises(UserError, match=r"^/srv/proj/.autometta.local.yaml: sandbox 'docker' is not one of none, "
                                        r"bwrap, seatbelt; write 'sandbox: bwrap' \(Linux\) or 'sandbox: seatbelt' "
                                        r"\(macOS\)$"):
        sandbox.kind_of({"sandbox": "docker"}, REPO / ".autometta.local.yaml")


def test_plan_in_a_worktree_protects_nothing_more():
    """A lane's tree is outside state/ and .git: only its own folders are writable, nothing is re-protected."""
    plan = sandbox.make_plan("bwrap", LANE, REPO, [HANDOFFS], [CLAUDE], TMP)
    assert plan.writable == [LANE, HANDOFFS, CLAUDE, TMP]
    assert (plan.protected, plan.reopened, plan.tmpdir) == ([], [], TMP)


def test_plan_in_the_repo_itself_protects_the_books_git_and_the_manifest_and_reopens_the_handoff():
    plan = sandbox.make_plan("bwrap", REPO, REPO, [HANDOFFS], [CLAUDE], TMP, [Path("/home/u/.npm")])
    assert plan.writable == [REPO, HANDOFFS, CLAUDE, Path("/home/u/.npm"), TMP]
    assert plan.protected == [REPO / "state", REPO / ".git", REPO / ".autometta.local.yaml"]
    assert plan.reopened == [HANDOFFS]


def test_bwrap_argv_binds_in_order_and_skips_what_does_not_exist(tmp_path):
    repo = tmp_path / "repo"
    for folder in (repo / "state" / "handoffs", repo / ".git"):
        folder.mkdir(parents=True)
    plan = sandbox.make_plan("bwrap", repo, repo, [repo / "state" / "handoffs"], [tmp_path / "no-such-config"], None)
    assert sandbox.bwrap_argv("bwrap", plan, ["sh", "-c", "true"]) == BWRAP_HEAD + [
        "--bind", str(repo), str(repo), "--bind", str(repo / "state" / "handoffs"), str(repo / "state" / "handoffs"),
        "--ro-bind", str(repo / "state"), str(repo / "state"), "--ro-bind", str(repo / ".git"), str(repo / ".git"),
        "--bind", str(repo / "state" / "handoffs"), str(repo / "state" / "handoffs"),
        "--", "sh", "-c", "true"]
    plan.tmpdir = tmp_path / "tmp"
    assert sandbox.bwrap_argv("bwrap", plan, ["true"])[-5:] == ["--setenv", "TMPDIR", str(tmp_path / "tmp"), "--",
                                                                "true"]


def test_seatbelt_profile_text():
    plan = sandbox.make_plan("seatbelt", REPO, REPO, [HANDOFFS], [Path('/Users/u/odd "dir"')], TMP)
    assert sandbox.seatbelt_profile(plan) == '''\
;; autometta: read-only except the stage's folders (docs/permissions.md)
(version 1)
(allow default)
(deny file-write*)
(allow file-write*
    (literal "/dev/null")
    (literal "/dev/zero")
    (literal "/dev/dtracehelper")
    (regex #"^/dev/tty")
    (regex #"^/dev/fd/")
    (literal "/dev/ptmx")
)
(allow file-write*
    (subpath "/srv/proj")
    (subpath "/srv/proj/state/handoffs")
    (subpath "/Users/u/odd \\"dir\\"")
    (subpath "/home/u/.phat-controller/sandbox-tmp/k-01-a-worker")
)
(deny file-write*
    (subpath "/srv/proj/state")
    (subpath "/srv/proj/.git")
    (subpath "/srv/proj/.autometta.local.yaml")
)
(allow file-write*
    (subpath "/srv/proj/state/handoffs")
)
'''
    argv = sandbox.seatbelt_argv(plan, ["claude", "-p"])
    assert argv[:2] + argv[3:] == ["/usr/bin/sandbox-exec", "-p", "/usr/bin/env", f"TMPDIR={TMP}", "claude", "-p"]


def test_availability_names_the_system_and_the_fix(tmp_path):
    assert sandbox.available("seatbelt", system="Linux") == (False, "sandbox: seatbelt runs on macOS only, not Linux")
    assert sandbox.available("bwrap", system="Darwin") == (False, "sandbox: bwrap runs on Linux only, not Darwin")
    assert sandbox.available("bwrap", path=str(tmp_path), system="Linux") == (
        False, "bwrap not found; install bubblewrap (apt-get install bubblewrap, dnf install bubblewrap)")
    assert sandbox.available("none") == (True, "no sandbox")


@pytest.mark.parametrize("log, marker", [
    ("bwrap: Can't find source path /nope: No such file or directory\n", "sandbox_failed"),
    ("sandbox-exec: sandbox_apply: Operation not permitted\n", "sandbox_failed"),
    ("hello\nbwrap: is what this worker printed first\nand then more\n", None),
    ("", None),
])
def test_diagnose(log, marker):
    assert sandbox.diagnose(log) == marker


def test_private_tmpdir_is_emptied_at_each_start(tmp_path):
    first = sandbox.private_tmpdir(tmp_path, REPO, "01-a", "worker")
    (first / "left-over").write_text("x")
    again = sandbox.private_tmpdir(tmp_path, REPO, "01-a", "worker")
    assert again == first and list(again.iterdir()) == []
    assert oct(again.stat().st_mode & 0o777) == "0o700"
    assert sandbox.private_tmpdir(tmp_path, REPO, "01-a", "verifier") != first


def _configure(repo: Path, **settings) -> None:
    path = RepoPaths(repo).manifest
    doc = yamlsub.loads(path.read_text())
    doc.update(settings)
    path.write_text(yamlsub.dumps(doc))


def test_a_sandbox_that_cannot_run_here_stalls_the_stage_before_any_agent_runs(setup):
    repo, home, add = setup
    _configure(repo, sandbox="seatbelt" if os.uname().sysname == "Linux" else "bwrap")
    add("01-hello")
    run_until_quiet(home, repo)
    s = stage(repo, "01-hello")
    assert s["status"] == "stalled"
    assert s["stall_marker"].startswith("sandbox_unavailable: sandbox: "), s["stall_marker"]
    assert not (repo / "hello.txt").exists()


@needs_bwrap
def test_a_sandboxed_stage_runs_with_a_private_tmpdir_and_lands(setup, tmp_path, monkeypatch):
    repo, home, add = setup
    monkeypatch.setenv("HOME", str(tmp_path / "user-home"))
    _configure(repo, sandbox="bwrap", sandbox_writable=["~/.cache/tool"])
    worker = ("echo \"tmp=$TMPDIR\"; echo cached > \"$HOME/.cache/tool/x\"; printf 'hello\\n' > hello.txt && "
              "printf '{\"stage_id\":\"01-hello\",\"status\":\"pass\",\"deliverables\":[\"hello.txt\"],\"notes\":"
              "\"done\"}' > \"$AUTOMETTA_HANDOFF\"")
    add("01-hello", worker)
    run_until_quiet(home, repo)
    assert stage(repo, "01-hello")["status"] == "completed"
    log = RepoPaths(repo).log("01-hello", "worker").read_text()
    # the agent's own output (under load the runner may add a line: stopping the sandbox's init, left behind)
    said = "".join(line for line in log.splitlines(keepends=True) if not line.startswith("autometta-runner: "))
    assert f"tmp={home}/sandbox-tmp/" in said and said.strip().endswith("-01-hello-worker"), log
    assert (tmp_path / "user-home" / ".cache" / "tool" / "x").read_text() == "cached\n"


@needs_bwrap
@pytest.mark.parametrize("family, settings", [("claude", "settings.json"), ("codex", "config.toml")])
def test_the_clis_folder_is_writable_but_not_its_settings_and_instructions(tmp_path, family, settings):
    """A hook or notify command written there would run outside the sandbox on the CLI's next run."""
    home, tree = tmp_path / "home", tmp_path / "tree"
    tree.mkdir()
    fam = families.get(family)
    env = {"HOME": str(home), "PATH": os.environ["PATH"]}
    (config,) = fam.config_dirs(env)
    config.mkdir(parents=True)
    (config / settings).write_text("# the user's\n")
    (config / ("hooks" if family == "claude" else "rules")).mkdir()
    script = (f"echo session > {config}/session.jsonl; echo evil >> {config}/{settings}; "
              f"echo evil > {config}/{'hooks' if family == 'claude' else 'rules'}/x; exit 0")
    argv = sandbox.wrap("bwrap", ["sh", "-c", script], env, work=tree, repo=tree, controller_home=tmp_path / "ctl",
                        stage_id="01-a", role="worker", config_dirs=fam.config_dirs(env),
                        guarded=fam.guarded_files(env))
    proc = subprocess.run(argv, env=env, cwd=str(tree), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert (config / "session.jsonl").read_text() == "session\n"
    assert (config / settings).read_text() == "# the user's\n"
    assert list((config / ("hooks" if family == "claude" else "rules")).iterdir()) == []
    assert proc.stderr.count("Read-only file system") == 2, proc.stderr


@needs_bwrap
def test_a_verifier_panel_runs_inside_the_sandbox_and_its_verdict_lands(setup, tmp_path, monkeypatch):
    from tests.testing.panel import set_panel
    from tests.testing.fake_api import script_verdict_command

    repo, home, add = setup
    monkeypatch.setenv("HOME", str(tmp_path / "user-home"))
    _configure(repo, sandbox="bwrap")
    books = RepoPaths(repo).budget
    set_panel(home, [f"echo '{{}}' > {books} 2>/dev/null; " + script_verdict_command("01-hello", vote, evidence=n)
                     for vote, n in (("PASS", "a"), ("PASS", "b"), ("FAIL", "c"))])
    card = add("01-hello")
    card.write_text(card.read_text().replace("## Deliverables", "- **Verifier panel:** true\n\n## Deliverables"))
    commit_all(repo, "a panel")
    run_until_quiet(home, repo)
    s = stage(repo, "01-hello")
    assert s["status"] == "completed", (s, RepoPaths(repo).log("01-hello", "verifier").read_text()[-2000:])
    assert "clock_ticks_used" in json.loads(books.read_text())  # each panellist ran sandboxed

"""The registry commands as a user runs them: files written, lines printed, exit codes."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
from pathlib import Path

import pytest

from autometta import cli, yamlsub
from tests.testing.cli import run_process
from tests.testing.repos import make_repo, write_card


def read_yaml(path: Path):
    return yamlsub.loads(path.read_text(), source=str(path))


# ---------------------------------------------------------------- init-host / init


def test_init_host_creates_private_home(run, home_dir):
    res = run("init-host")
    assert res.code == 0, res.err
    assert stat.S_IMODE(os.stat(home_dir).st_mode) == 0o700
    assert (home_dir / "subscribers" / "template.yaml").is_file()
    config = read_yaml(home_dir / "config.yaml")
    assert config["version"] == 1 and config["max_per_fire"] == 20 and config["default_weight"] == 100
    assert res.out.strip().splitlines()[-1] == f"PASS init complete {home_dir}"


def test_init_host_is_idempotent_and_keeps_user_comments(run, home_dir):
    assert run("init-host").code == 0
    cfg = home_dir / "config.yaml"
    cfg.write_text("# my settings\nversion: 1\nautometta_root: /old/place\nmax_per_fire: 5\n")
    assert run("init-host").code == 0
    text = cfg.read_text()
    assert text.startswith("# my settings\n") and "max_per_fire: 5" in text
    assert "/old/place" not in text


def test_init_subscribes_and_reminds_to_commit(run, repo, home_dir):
    res = run("init", str(repo))
    assert res.code == 0, res.err
    assert "git add .gitignore state/state.yaml state/budget.json" in res.out
    assert (repo / "state" / "state.yaml").is_file()


def test_git_status_is_quiet_after_init_and_a_stage(run, repo, home_dir):
    from tests.testing.ticks import commit_all, run_until_quiet, script_card

    assert run("init", str(repo)).code == 0
    subprocess.run(["git", "-C", str(repo), "add", ".gitignore", "state/state.yaml", "state/budget.json"], check=True)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", "autometta: subscribe"], check=True)
    script_card(repo, "01-hello")
    commit_all(repo, "card")
    assert run("add-stage", str(repo), str(repo / "docs" / "stages" / "01-hello.md")).code == 0
    run_until_quiet(home_dir, repo)
    for name in ("handoffs/01-hello.json", "verifiers/01-hello.json", "heartbeat.json"):
        assert (repo / "state" / name).exists(), name
    assert list((repo / "state" / "recent-agents").iterdir())
    status = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=all"],
                            capture_output=True, text=True, check=True).stdout
    assert [line for line in status.splitlines() if not line.startswith(" M ")] == [], status  # nothing untracked
    tracked = subprocess.run(["git", "-C", str(repo), "ls-files", "state"], capture_output=True, text=True,
                             check=True).stdout.split()
    assert tracked == ["state/budget.json", "state/state.yaml"]  # still tracked, as the bash version has them


def test_init_host_on_read_only_home_is_one_clear_line(tmp_path, monkeypatch):
    if os.geteuid() == 0:
        # root ignores permission bits; make the parent a file instead
        parent = tmp_path / "not-a-folder"
        parent.write_text("x")
        monkeypatch.setenv("PHAT_CONTROLLER_HOME", str(parent / "home"))
    else:
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        monkeypatch.setenv("PHAT_CONTROLLER_HOME", str(ro / "home"))
    res = run_process("init-host")
    assert res.code == 1
    assert len(res.err.strip().splitlines()) == 1 and "Traceback" not in res.err
    assert "home" in res.err


# ---------------------------------------------------------------- subscribe


def test_subscribe_writes_bash_compatible_files(run, repo, home_dir):
    assert run("init-host").code == 0
    res = run("subscribe", str(repo))
    assert res.code == 0, res.err
    real = os.path.realpath(repo)
    sub = read_yaml(home_dir / "subscribers" / "myrepo.yaml")
    assert sub == {"repo_path": real, "manifest_path": f"{real}/.autometta.local.yaml",
                   "weight": 100, "enabled": True}
    state = read_yaml(repo / "state" / "state.yaml")
    assert state["stages"] == [] and state["current_stage"] is None and state["version"] == 1
    budget = json.loads((repo / "state" / "budget.json").read_text())
    assert budget["token_cap_total"] == 1000000 and budget["clock_tick_cap"] == 100
    assert budget["consecutive_failure_cap"] == 3 and budget["halted"] is False
    gitignore = (repo / ".gitignore").read_text().splitlines()
    assert "state/logs/" in gitignore and ".autometta.local.yaml" in gitignore
    manifest = read_yaml(repo / ".autometta.local.yaml")
    assert manifest["stage_card_globs"] == ["docs/stages/*.md", "examples/self-host/*.md"]


def test_subscribe_twice_changes_nothing(run, repo, home_dir):
    run("init-host")
    assert run("subscribe", str(repo)).code == 0
    snapshot = {p: p.read_bytes() for p in [repo / ".gitignore", repo / "state" / "state.yaml",
                                            home_dir / "subscribers" / "myrepo.yaml"]}
    assert run("subscribe", str(repo)).code == 0
    assert {p: p.read_bytes() for p in snapshot} == snapshot


def test_subscribe_weight_updates_existing_file(run, repo, home_dir):
    run("init-host")
    run("subscribe", str(repo))
    assert run("subscribe", str(repo), "--weight", "7").code == 0
    assert read_yaml(home_dir / "subscribers" / "myrepo.yaml")["weight"] == 7


def test_subscribe_same_basename_does_not_collide(run, tmp_path, home_dir):
    run("init-host")
    a = make_repo(tmp_path / "one" / "app")
    b = make_repo(tmp_path / "two" / "app")
    assert run("subscribe", str(a)).code == 0
    assert run("subscribe", str(b)).code == 0
    files = sorted(p.name for p in (home_dir / "subscribers").glob("app*.yaml"))
    assert len(files) == 2
    paths = {read_yaml(home_dir / "subscribers" / f)["repo_path"] for f in files}
    assert paths == {os.path.realpath(a), os.path.realpath(b)}


def test_subscribe_accepts_a_worktree_checkout(run, repo, tmp_path):
    import subprocess

    wt = tmp_path / "wt"
    subprocess.run(["git", "-C", str(repo), "worktree", "add", "-q", str(wt)], check=True)
    run("init-host")
    assert run("subscribe", str(wt)).code == 0


def test_subscribe_refuses_non_repo_and_uninitialised_home(run, tmp_path, repo):
    plain = tmp_path / "plain"
    plain.mkdir()
    run("init-host")
    res = run("subscribe", str(plain))
    assert res.code == 1 and "not the top of a git repository" in res.err
    assert not (plain / "state").exists()


def test_subscribe_without_home_says_run_init_host(run, repo):
    res = run("subscribe", str(repo))
    assert res.code == 1 and "autometta init-host" in res.err


def test_subscribe_refuses_to_overwrite_corrupt_state(run, repo):
    run("init-host")
    (repo / "state").mkdir()
    bad = "version: 1\nstages: {not: a list}\n"
    (repo / "state" / "state.yaml").write_text(bad)
    res = run("subscribe", str(repo))
    assert res.code == 1 and "state.yaml" in res.err
    assert (repo / "state" / "state.yaml").read_text() == bad


def test_unsubscribe_removes_only_the_subscriber(run, repo, home_dir):
    run("init-host")
    run("subscribe", str(repo))
    res = run("unsubscribe", str(repo))
    assert res.code == 0
    assert not (home_dir / "subscribers" / "myrepo.yaml").exists()
    assert (repo / "state" / "state.yaml").exists()
    assert run("unsubscribe", str(repo)).code == 0  # idempotent


# ---------------------------------------------------------------- add-stage


@pytest.fixture
def subscribed(run, repo):
    assert run("init-host").code == 0
    assert run("subscribe", str(repo)).code == 0
    return repo


def test_add_stage_appends_pending_record(run, subscribed):
    card = write_card(subscribed, "01-first")
    res = run("add-stage", str(subscribed), str(card))
    assert res.code == 0 and "added: 01-first" in res.err
    state = read_yaml(subscribed / "state" / "state.yaml")
    assert state["stages"] == [{
        "id": "01-first", "status": "pending",
        "worker": "Claude Sonnet 4.6 <claude-sonnet-4-6@local>",
        "verifier": "Codex GPT-5.5 <codex-gpt-5-5@local>",
        "started_at": None, "worker_pid": None, "verifier_pid": None,
        "verifier_artefact": None, "verifier_attempts": 0, "completed_at": None,
    }]
    again = run("add-stage", str(subscribed), str(card))
    assert again.code == 0 and "exists: 01-first" in again.err
    assert len(read_yaml(subscribed / "state" / "state.yaml")["stages"]) == 1


def test_add_stage_mirrors_the_newest_valid_state_to_the_backup(run, subscribed):
    run("add-stage", str(subscribed), str(write_card(subscribed, "01-first")))
    run("add-stage", str(subscribed), str(write_card(subscribed, "02-second")))
    bak = read_yaml(subscribed / "state" / "state.yaml.bak")
    assert [s["id"] for s in bak["stages"]] == ["01-first", "02-second"]


@pytest.mark.parametrize("name", ["../../x", "Bad Id", "UPPER-case", "1-short", "01_under"])
def test_add_stage_refuses_hostile_ids(run, subscribed, tmp_path, name):
    card = tmp_path / "cards" / f"{name}.md"
    card.parent.mkdir(parents=True, exist_ok=True)
    try:
        card.write_text("# x\n")
    except OSError:
        pytest.skip("file name not representable")
    before = (subscribed / "state" / "state.yaml").read_bytes()
    res = run("add-stage", str(subscribed), str(card))
    assert res.code == 1
    assert "stage id" in res.err and len(res.err.strip().splitlines()) == 1
    assert (subscribed / "state" / "state.yaml").read_bytes() == before


def test_add_stage_refuses_same_family_without_reason(run, subscribed):
    text = """# Stage card 03-same: same

## Metadata
- **Worker:** Claude Sonnet 4.6 <claude-sonnet-4-6@local>
- **Verifier:** Claude Opus 4.8 <claude-opus-4-8@local>
"""
    card = write_card(subscribed, "03-same", text=text)
    res = run("add-stage", str(subscribed), str(card))
    assert res.code == 1 and "famil" in res.err


def test_add_stage_refuses_missing_worker(run, subscribed):
    card = write_card(subscribed, "04-noworker", text="# Stage card 04-noworker: x\n\n## Metadata\n"
                                                        "- **Verifier:** Codex GPT-5.5 <c@local>\n")
    res = run("add-stage", str(subscribed), str(card))
    assert res.code == 1 and "Worker" in res.err


def test_add_stage_refuses_card_the_tick_cannot_find(run, subscribed):
    card = write_card(subscribed, "05-elsewhere", folder="notes")
    res = run("add-stage", str(subscribed), str(card))
    assert res.code == 1 and "stage_card_globs" in res.err


def test_add_stage_with_missing_state_is_clear(run, repo):
    card = write_card(repo, "01-first")
    res = run("add-stage", str(repo), str(card))
    assert res.code == 1 and "state.yaml" in res.err and "subscribe" in res.err


# ---------------------------------------------------------------- list-cards


def test_list_cards_shows_queue_status(run, subscribed):
    c1 = write_card(subscribed, "01-first")
    write_card(subscribed, "02-second")
    run("add-stage", str(subscribed), str(c1))
    res = run("list-cards", str(subscribed))
    assert res.code == 0
    lines = res.out.strip().splitlines()
    assert lines[0].split("\t")[:2] == ["01-first", "pending"]
    assert lines[1].split("\t")[:2] == ["02-second", "unqueued"]
    data = json.loads(run("list-cards", str(subscribed), "--json").out)
    assert [r["id"] for r in data] == ["01-first", "02-second"]


# ---------------------------------------------------------------- status


def test_status_rows_and_json(run, subscribed):
    run("add-stage", str(subscribed), str(write_card(subscribed, "01-first")))
    res = run("status")
    assert res.code == 0, res.err
    assert "myrepo" in res.out and "idle" in res.out and "0/100" in res.out and "0/3" in res.out
    data = json.loads(run("status", "--json").out)
    row = data["repos"][0]
    assert row["status"] == "idle" and row["clock_tick_cap"] == 100 and row["tokens_spent"] == 0
    assert row["queue"]["pending"] == 1


def test_status_shows_halt_reason(run, subscribed):
    path = subscribed / "state" / "budget.json"
    budget = json.loads(path.read_text())
    budget.update(halted=True, halt_reason="tick-cap", halted_at="2026-11-26T00:00:00Z")
    path.write_text(json.dumps(budget))
    assert "halted:tick-cap" in run("status").out


def test_status_fits_80_columns(run, subscribed):
    for line in run("status").out.splitlines():
        assert len(line) <= 80 or line.startswith(("phat-controller home", "latest controller log"))


@pytest.mark.parametrize("content,fragment", [
    ("", "empty"),
    ("version: 1\nstages: [\n", "state.yaml"),
    ("\x00\x01binary", "state.yaml"),
    ("version: 1\ncurrent_stage: null\nstages:\n  - id: 01-x\n    status: exploded\n"
     "    worker: a\n    verifier: b\n", "status"),
])
def test_status_reports_corrupt_state(run, subscribed, content, fragment):
    (subscribed / "state" / "state.yaml").write_text(content)
    res = run("status")
    assert res.code == 1
    assert fragment in res.err and "state.yaml" in res.err
    assert "Traceback" not in res.err


@pytest.mark.parametrize("content", ["", "{", "[]", '{"version": "one"}'])
def test_status_reports_corrupt_budget(run, subscribed, content):
    (subscribed / "state" / "budget.json").write_text(content)
    res = run("status")
    assert res.code == 1 and "budget.json" in res.err


def test_status_reports_missing_repo_and_unknown_field(run, subscribed, home_dir, tmp_path):
    (home_dir / "subscribers" / "gone.yaml").write_text(
        f'repo_path: "{tmp_path}/gone"\nweight: 1\nenabled: true\n')
    (home_dir / "subscribers" / "typo.yaml").write_text(
        f'repo_path: "{subscribed}"\nwieght: 1\nenabled: true\n')
    res = run("status")
    assert res.code == 1
    assert "gone.yaml" in res.err and "does not exist" in res.err
    assert "typo.yaml" in res.err and "wieght" in res.err
    assert "myrepo" in res.out  # the healthy repo is still shown


def test_status_reads_bash_written_files(run, subscribed, home_dir):
    (home_dir / "subscribers" / "myrepo.yaml").write_text(
        f'repo_path: "{os.path.realpath(subscribed)}"\n'
        f'manifest_path: "{os.path.realpath(subscribed)}/.autometta.local.yaml"\n'
        'weight: 100\nenabled: true\n')
    (subscribed / "state" / "state.yaml").write_text("""\
version: 1
current_stage: 05a-phat-controller-hardening
stages:
  - id: 05a-phat-controller-hardening
    status: in_progress
    worker: Codex GPT-5.3 <codex-gpt-5-3@local>
    verifier: Claude Opus 4.8 <claude-opus-4-8@local>
    started_at: "2026-05-01T10:00:00Z"
    worker_pid: 12345
    verifier_pid: null
    verifier_artefact: null
    verifier_attempts: 0
    completed_at: null
    worker_tokens: 117339
    tokens: 117339
last_tick_at: "1970-01-01T00:00:00Z"
tick_count: 0
clock_tick_budget_remaining: 100
halted: false
halt_reason: null
""")
    res = run("status", "--json")
    assert res.code == 0, res.err
    row = json.loads(res.out)["repos"][0]
    assert row["stage"] == "05a-phat-controller-hardening" and row["status"] == "in_progress"


def test_status_without_home(run):
    res = run("status")
    assert res.code == 1 and "init-host" in res.err


# ---------------------------------------------------------------- check-deps and CLI


def test_check_deps_lines_and_json(run):
    res = run("check-deps")
    assert res.code == 0  # git is present wherever the tests run
    names = [line.split()[1] for line in res.out.splitlines()]
    assert names[:3] == ["python3", "git", "claude"]
    data = json.loads(run("check-deps", "--json").out)
    assert {d["name"] for d in data} >= {"git", "tmux", "claude", "codex"}


def test_check_deps_missing_git_exits_1(tmp_path):
    res = run_process("check-deps", env={"PATH": str(tmp_path)})
    assert res.code == 1 and "MISSING git" in res.out


def test_unknown_command_and_bad_flag_exit_2():
    res = run_process("frobnicate")
    assert res.code == 2 and "invalid choice" in res.err
    res = run_process("status", "--bogus")
    assert res.code == 2 and "--bogus" in res.err


@pytest.mark.parametrize("command", ["init-host", "init", "subscribe", "unsubscribe", "add-stage",
                                     "list-cards", "status", "check-deps"])
def test_every_command_has_help(run, command):
    res = run(command, "--help")
    assert res.code == 0 and "usage: autometta" in res.out


@pytest.mark.parametrize("command", [name for _module, name, _summary in cli.COMMANDS])
def test_help_texts_are_plain_text_not_rst(run, command):
    res = run(command, "--help")
    assert res.code == 0 and "usage: autometta" in res.out
    assert "``" not in res.out, res.out
    assert not re.search(r":(?:func|class|mod|data|attr|meth):", res.out), res.out
    assert not re.search(r"\S::$", res.out, re.M), res.out


def test_bare_autometta_prints_usage_and_points_at_demo():
    res = run_process()
    assert res.code == 2 and res.err.startswith("usage: autometta")
    assert "'autometta demo' runs the whole loop on a scratch repo" in res.err


def test_status_accepts_quoted_values_the_bash_parser_accepted(run, subscribed, home_dir):
    (home_dir / "subscribers" / "myrepo.yaml").write_text(
        f"repo_path: '{os.path.realpath(subscribed)}'\nweight: \"50\"\nenabled: \"true\"\n")
    row = json.loads(run("status", "--json").out)["repos"][0]
    assert row["enabled"] is True and row["status"] == "idle"

"""The secret scan: rules, diff reading, the tick's refusal to commit, and the hand-commit guards."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from autometta import scan, secrets
from tests.testing.ticks import commit_all, git, read_state, run_until_quiet, stage, verifier_writes

#: Built at run time so that no file of this repo holds a key-shaped string.
FAKE_KEY = "sk-ant-" + "api03-" + "WORKERleakedTHISkey0123456789"
LEAK_WORKER = ("printf 'API_KEY = \"sk-ant-%s\"\\n' \"$(printf api03-WORKERleakedTHIS)key0123456789\" > config.py && "
               "printf '%s' '{\"stage_id\":\"01-leak\",\"status\":\"pass\",\"deliverables\":[\"config.py\"],"
               "\"notes\":\"done\"}' > \"$AUTOMETTA_HANDOFF\"")


@pytest.fixture(autouse=True)
def _fresh():
    secrets.forget()
    yield
    secrets.forget()


# ------------------------------------------------------------------ rules

@pytest.mark.parametrize("line, rule", [
    (f'KEY = "{FAKE_KEY}"', "anthropic_key"),
    ("token: sk-ant-" + "oat01-abcdefghijklmnop", "anthropic_key"),
    ("OPENAI_API_KEY=sk-" + "proj-abcdefghijklmnopqrstuv", "openai_key"),
    ("sk-" + "A" * 48, "openai_key"),
    ("aws_access_key_id = AKIA" + "ABCDEFGHIJKLMNOP", "aws_access_key"),
    ("-----BEGIN " + "OPENSSH PRIVATE KEY-----", "private_key"),
    ("-----BEGIN " + "PRIVATE KEY-----", "private_key"),
    ("gh" + "p_" + "a" * 36, "github_token"),
    ("ref = op://" + "Private/Anthropic/credential", "op_reference"),
    ("default op://YOUR_VAULT/anthropic-api-key/credential", None),
    ("see op://vault/item/field", None),
    ("op://<vault>/<item>/<field>", None),
    ("sk-ant-stray", None),  # too short to be a key
    ("the word AKIA alone", None),
    ("-----BEGIN PUBLIC KEY-----", None),
    ("STRIPE_KEY=sk" + "_live_" + "51HxAbCdEfGhIjKlMnOpQrSt", "stripe_key"),
    ("rk" + "_live_" + "x" * 24, "stripe_key"),
    ("sk" + "_test_" + "x" * 24, None),  # a test-mode key, not a live one
    ("aws_secret_access_key = " + "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY", "aws_secret_key"),
    ('"AWS_SECRET_ACCESS_KEY": "' + "wJalrXUtnFEMI/K7MDENG/" + 'bPxRfiCYEXAMPLEKEY"', "aws_secret_key"),
    ("aws_secret_access_key = <your secret here>", None),
    ("Authorization: Bearer " + "ey" + "JhbGciOiJIUzI1NiJ9." + "ey" + "JzdWIiOiIxMjM0NTY3ODkwIn0." + "SflKxwRJSMeKKF2QT4f",
     "jwt"),
    ("eyJ alone is no token", None),
])
def test_line_rules(line, rule):
    assert scan.line_rule(line, known=()) == rule


def test_a_resolved_value_is_found_whatever_its_shape():
    assert scan.line_rule("password=hunter2-but-longer", known=["hunter2-but-longer"]) == "resolved_secret"


@pytest.mark.parametrize("path, rule", [
    (".env", "env_file"), ("app/.env.production", "env_file"), (".env.local", "env_file"),
    (".env.example", None), ("config/.env.sample", None), ("op-refs.local.sh", "op_refs_file"),
    ("op-refs.local.sh.example", None), ("environment.md", None),
])
def test_path_rules(path, rule):
    assert scan.path_rule(path) == rule


def test_patch_reading_gives_file_and_line_of_added_lines_only():
    patch = "\n".join([
        'diff --git "a/d\\303\\251j\\303\\240 vu.txt" "b/d\\303\\251j\\303\\240 vu.txt"',
        "index 1..2 100644",
        '--- "a/d\\303\\251j\\303\\240 vu.txt"',
        '+++ "b/d\\303\\251j\\303\\240 vu.txt"',
        "@@ -3 +3,2 @@ context",
        f"-old {FAKE_KEY}",
        "+fine",
        f"+++ {FAKE_KEY}",  # an added line that starts with '++'
        "diff --git a/.env b/.env",
        "new file mode 100644",
        "index 0000000..e69de29",
        "diff --git a/img.png b/img.png",
        "Binary files /dev/null and b/img.png differ",
    ])
    hits = scan.scan_patch(patch)
    assert [h.describe() for h in hits] == ["déjà vu.txt:4 (anthropic_key)", ".env (env_file)"]


def test_publish_guard_patterns(tmp_path):
    (tmp_path / ".publish-guard.local").write_text("# personal\n\nmy-secret-host\\.example\n")
    extra = scan.guard_patterns(tmp_path)
    assert scan.line_rule("url = https://my-secret-host.example/x", (), extra) == ".publish-guard.local:3"
    (tmp_path / ".publish-guard.local").write_text("(unclosed\n")
    with pytest.raises(scan.UserError, match=r"\.publish-guard\.local:1: not a regular expression"):
        scan.guard_patterns(tmp_path)


def test_pending_scan_sees_what_the_commit_would_and_leaves_the_index_alone(repo):
    (repo / ".gitignore").write_text("ignored.txt\n")
    commit_all(repo, "ignore")
    (repo / "state").mkdir()
    (repo / "state" / "notes.txt").write_text(f"{FAKE_KEY}\n")  # state/ is never committed
    (repo / "ignored.txt").write_text(f"{FAKE_KEY}\n")  # neither are ignored files
    (repo / "README.md").write_text(f"hello\nkey: {FAKE_KEY}\n")
    (repo / "new.txt").write_text("one\ntwo\n" + "x = AKIA" + "ABCDEFGHIJKLMNOP\n")
    index = repo / ".git" / "index"
    before = index.read_bytes()
    hits = scan.scan_pending(repo)
    assert [h.describe() for h in hits] == ["README.md:2 (anthropic_key)", "new.txt:3 (aws_access_key)"]
    assert index.read_bytes() == before


def all_objects(repo: Path) -> bytes:
    """Every object in the repo's store, reachable or not, decompressed: ``git cat-file --batch-all-objects``."""
    listing = subprocess.run(["git", "-C", str(repo), "cat-file", "--batch-all-objects", "--batch-check=%(objectname)"],
                             check=True, capture_output=True).stdout
    return subprocess.run(["git", "-C", str(repo), "cat-file", "--batch"], input=listing, check=True,
                          capture_output=True).stdout


def test_a_key_in_a_file_name_is_found_and_never_shown(repo):
    secret = "hunter2-shapeless-name-value"
    (repo / f"k-{secret}.txt").write_text("harmless\n")
    (repo / f"{FAKE_KEY}.md").write_text("also harmless\n")
    hits = scan.scan_pending(repo, [secret])
    assert sorted(h.describe() for h in hits) == ["****6789.md (anthropic_key in the file name)",
                                                  "k-****alue.txt (resolved_secret in the file name)"]
    assert not any(secret in h.path or FAKE_KEY in h.path for h in hits)


def test_a_key_inside_a_binary_file_is_found_byte_for_byte(repo):
    secret = "hunter2-shapeless-binary-value"
    (repo / "blob.bin").write_bytes(b"\x00\x01PNG" + secret.encode() + b"\x00" * 10)
    (repo / "wide.bin").write_bytes(b"\x00\xff" + secret.encode("utf-16-le"))
    (repo / "shaped.bin").write_bytes(b"\x00\x02" + FAKE_KEY.encode() + b"\x00")
    assert "Binary files" in scan.pending_patch(repo)
    hits = scan.scan_pending(repo, [secret])
    assert sorted(h.describe() for h in hits) == ["blob.bin (resolved_secret in the binary content)",
                                                  "shaped.bin (anthropic_key in the binary content)",
                                                  "wide.bin (resolved_secret in the binary content)"]
    assert scan.scan_pending(repo, []) and [h.path for h in scan.scan_pending(repo, [])] == ["shaped.bin"]


def test_a_binary_file_changed_elsewhere_is_no_new_hit(repo):
    (repo / "shaped.bin").write_bytes(b"\x00\x02" + FAKE_KEY.encode() + b"\x00")
    commit_all(repo, "an old mistake, already in history")
    (repo / "shaped.bin").write_bytes(b"\x00\x03" + FAKE_KEY.encode() + b"\x00 more")
    assert scan.scan_pending(repo) == []


def test_the_scan_and_the_fingerprint_write_nothing_into_the_object_store(repo):
    from autometta.git import gitops

    secret = "hunter2-shapeless-objects-value"
    (repo / "leak.txt").write_text(f"{secret}\n")
    (repo / f"k-{secret}.bin").write_bytes(b"\x00" + secret.encode())
    before = all_objects(repo)
    assert scan.scan_pending(repo, [secret])
    assert gitops.worktree_fingerprint(repo)
    assert scan.pending_patch(repo)
    after = all_objects(repo)
    assert after == before and secret.encode() not in after
    assert not [p for p in (repo / ".git").iterdir() if p.name.startswith("autometta-index-")]


def test_a_throwaway_folder_left_by_a_killed_scan_is_removed_by_the_next(repo):
    from autometta.git import gitops

    left = repo / ".git" / "autometta-index-999999999-x"
    (left / "objects").mkdir(parents=True)
    (left / "objects" / "blob").write_text("left behind")
    os.utime(left, (1, 1))
    fresh = repo / ".git" / f"autometta-index-{os.getpid()}-y"  # a live owner's: kept
    fresh.mkdir()
    os.utime(fresh, (1, 1))
    gitops.worktree_fingerprint(repo)
    assert not left.exists() and fresh.exists()


# --------------------------------------------------------- the tick refuses

@pytest.fixture
def leaked(setup):
    """(stage's worktree, home): a worker wrote a key into its deliverable, run by the tick until quiet.

    The worktree, kept for review, shares the repo's hooks and remotes.
    """
    repo, home_dir, add = setup
    add("01-leak", LEAK_WORKER, verifier_writes("01-leak"), deliverables=["config.py"])
    run_until_quiet(home_dir, repo)
    return Path(stage(repo, "01-leak")["worktree"]), home_dir


def test_a_worker_that_writes_a_key_is_stopped_at_the_commit(leaked, setup, run):
    work, home = leaked
    repo = setup[0]
    s = stage(repo, "01-leak")
    assert s["status"] == "secret_blocked"  # not verifier_failed: the verdict was PASS
    assert s["stall_marker"].startswith("secret_in_diff: config.py:1 (anthropic_key); nothing committed")
    assert not s.get("commit")
    assert git(repo, "log", "-1", "--format=%s").strip() == "card 01-leak"
    assert git(work, "log", "-1", "--format=%s").strip() == "card 01-leak"
    assert (work / "config.py").read_text() == f'API_KEY = "{FAKE_KEY}"\n'  # left for the operator
    assert not (repo / "config.py").exists()
    assert git(work, "diff", "--cached", "--name-only") == ""  # nothing was staged
    log = "".join(p.read_text() for p in (home / "log").glob("tick-*.log"))
    assert "commit refused by the secret scan for 01-leak: secret_in_diff: config.py:1 (anthropic_key)" in log
    assert FAKE_KEY not in log and FAKE_KEY not in (repo / "state" / "state.yaml").read_text()
    assert read_state(repo)["current_stage"] is None
    # the event and every view say what happened
    from autometta.observe import events
    from autometta.paths import HomePaths

    raised = {e["kind"]: e for e in events.journal(HomePaths(home))}
    assert "stage_verifier_failed" not in raised
    blocked = raised["stage_secret_blocked"]
    assert blocked["needs_human"] is True and blocked["status"] == "secret_blocked"
    assert "secret scan found a secret" in blocked["summary"] and "nothing was committed" in blocked["summary"]
    assert raised["queue_drained"]["needs_human"] is True
    assert raised["queue_drained"]["needs_you"][0]["status"] == "secret_blocked"
    status = run("status", "--json")
    assert status.code == 0 and '"secret_blocked": 1' in status.out
    report = run("report")
    assert "01-leak  secret_blocked: secret_in_diff: config.py:1 (anthropic_key)" in report.out
    ticker = run("ticker", str(repo), "--once")
    assert "01-leak: secret_blocked (secret_in_diff: config.py:1" in ticker.out
    listed = run("events")
    assert "stage_secret_blocked  proj" in listed.out
    page = run("dashboard")
    assert page.code == 0 and '<span class="badge s-secret_blocked">secret_blocked</span>' in \
        Path(page.out.strip().splitlines()[-1]).read_text()
    for shown in (status.out, report.out, ticker.out, listed.out):
        assert FAKE_KEY not in shown
    for shown in (report.out, ticker.out, listed.out):
        assert "verifier_failed" not in shown


def commit_by_hand(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(repo), "commit", "-m", "by hand", *args], capture_output=True, text=True)


def test_the_guard_hook_refuses_the_same_commit_by_hand(leaked, run, setup):
    work, _ = leaked
    res = run("install-guards", str(setup[0]))
    assert res.code == 0
    assert res.out.splitlines() == [f"PASS pre-commit installed at {setup[0]}/.git/hooks/pre-commit",
                                    f"PASS pre-push installed at {setup[0]}/.git/hooks/pre-push"]
    repo = work  # the hooks the repo installs run in its worktrees too
    head = git(repo, "rev-parse", "HEAD")
    git(repo, "add", "config.py")
    done = commit_by_hand(repo)
    assert done.returncode != 0
    assert "secret_in_diff: config.py:1 (anthropic_key)" in done.stdout + done.stderr
    assert "nothing was committed" in done.stderr and FAKE_KEY not in done.stdout + done.stderr
    assert git(repo, "rev-parse", "HEAD") == head
    # `git commit -a` commits through a temporary index; the hook scans that one
    (repo / "README.md").write_text(f"{FAKE_KEY}\n")
    git(repo, "reset", "-q")
    assert commit_by_hand(repo, "-a").returncode != 0
    assert git(repo, "rev-parse", "HEAD") == head


def test_the_push_guard_refuses_commits_that_hold_a_key(leaked, run, tmp_path, setup):
    repo, _ = leaked  # the stage's worktree: the repo's remotes and hooks are its own
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "origin", "HEAD:refs/heads/main")
    assert run("install-guards", str(setup[0])).code == 0
    git(repo, "add", "config.py")
    assert commit_by_hand(repo, "--no-verify").returncode == 0  # bypassed on purpose
    pushed = subprocess.run(["git", "-C", str(repo), "push", "origin", "HEAD:refs/heads/main"],
                            capture_output=True, text=True)
    assert pushed.returncode != 0
    assert "config.py:1 (anthropic_key)" in pushed.stdout + pushed.stderr
    assert "nothing was pushed" in pushed.stderr
    fresh = subprocess.run(["git", "-C", str(repo), "push", "origin", "HEAD:refs/heads/other"],
                           capture_output=True, text=True)  # a new branch: its commits not on any remote
    assert fresh.returncode != 0
    assert subprocess.run(["git", "--git-dir", str(remote), "rev-parse", "--verify", "-q", "refs/heads/other"],
                          capture_output=True).returncode != 0


def test_install_guards_chains_an_existing_hook(run, repo, tmp_path):
    hooks = repo / ".git" / "hooks"
    hooks.mkdir(exist_ok=True)
    marker = tmp_path / "ran"
    old = hooks / "pre-commit"
    old.write_text(f"#!/bin/sh\necho \"old hook $#\" >> '{marker}'\nexit \"${{OLD_HOOK_EXIT:-0}}\"\n")
    old.chmod(0o755)
    res = run("install-guards", str(repo))
    assert res.out.splitlines()[0] == (f"PASS pre-commit installed at {hooks}/pre-commit; your previous hook "
                                       "is now pre-commit.pre-autometta and runs first")
    assert (hooks / "pre-commit.pre-autometta").read_text().startswith("#!/bin/sh\necho \"old hook")
    (repo / "clean.txt").write_text("nothing secret\n")
    git(repo, "add", "clean.txt")
    assert commit_by_hand(repo).returncode == 0
    assert marker.read_text() == "old hook 0\n"
    (repo / "clean2.txt").write_text("still nothing\n")
    git(repo, "add", "clean2.txt")
    failing = subprocess.run(["git", "-C", str(repo), "commit", "-m", "x"], capture_output=True, text=True,
                             env=dict(os.environ, OLD_HOOK_EXIT="3"))
    assert failing.returncode != 0  # the old hook still has its say
    again = run("install-guards", str(repo))
    assert again.out.splitlines() == [f"PASS pre-commit already installed at {hooks}/pre-commit",
                                      f"PASS pre-push already installed at {hooks}/pre-push"]


def test_scan_secrets_command(run, repo):
    res = run("scan-secrets", str(repo))
    assert (res.code, res.out) == (0, f"PASS no secrets in the changes outside state/ of {repo}\n")
    (repo / "leak.txt").write_text(f"{FAKE_KEY}\n")
    res = run("scan-secrets", str(repo))
    assert res.code == 1 and res.out == "secret_in_diff: leak.txt:1 (anthropic_key)\n"
    assert run("scan-secrets", str(repo), "--staged").code == 0  # not staged yet
    git(repo, "add", "leak.txt")
    res = run("scan-secrets", str(repo), "--staged", "--json")
    assert res.code == 1
    assert '"path": "leak.txt"' in res.out and FAKE_KEY not in res.out


def test_scan_secrets_finds_live_stripe_keys_aws_secret_values_and_jwts(run, repo):
    (repo / "settings.py").write_text("STRIPE = 'sk" + "_live_" + "51HxAbCdEfGhIjKlMnOpQrSt'\n")
    (repo / "credentials").write_text("[default]\naws_access_key_id = x\naws_secret_access_key = "
                                      + "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY\n")
    (repo / "token.txt").write_text("ey" + "JhbGciOiJIUzI1NiJ9." + "ey" + "JzdWIiOiIxMjM0NTY3ODkwIn0."
                                    + "SflKxwRJSMeKKF2QT4fwpMeJf36\n")
    res = run("scan-secrets", str(repo))
    assert res.code == 1
    assert res.out.splitlines() == ["secret_in_diff: credentials:3 (aws_secret_key)",
                                    "secret_in_diff: settings.py:1 (stripe_key)",
                                    "secret_in_diff: token.txt:1 (jwt)"]
    assert "EXAMPLEKEY" not in res.out + res.err and "51HxAbCd" not in res.out + res.err


def test_install_guards_leaves_a_hooks_path_outside_git_alone(run, repo):
    git(repo, "config", "core.hooksPath", ".husky")
    res = run("install-guards", str(repo))
    assert res.code == 1
    assert f"git runs this repo's hooks from {repo}/.husky (core.hooksPath), outside {repo}/.git" in res.err
    assert not (repo / ".husky").exists()

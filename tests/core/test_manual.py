"""``dispatch``, ``verify`` and ``accept`` by hand: the tick's launch path and commit, no queue."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from tests.testing.repos import make_repo
from tests.testing.ticks import (CHECKER, WORKER, commit_all, git, run_until_quiet, script_card, verdict,
                                 verifier_writes)

LOG_FORMAT = "%an <%ae>%n%cn <%ce>%n%s%n%b"


def by_hand(run, card: Path, *, expect_ok: bool = True):
    results = [run("dispatch", str(card), "--wait"), run("verify", str(card), "--wait")]
    if expect_ok:
        for res in results:
            assert res.code == 0, res.out + res.err
        results.append(run("accept", str(card)))
        assert results[-1].code == 0, results[-1].err
    return results


@pytest.mark.parametrize("headline", [None, "Greet the world"])
def test_by_hand_commits_exactly_what_the_tick_commits(run, tmp_path, home_dir, headline):
    assert run("init-host").code == 0
    queued = make_repo(tmp_path / "queued")
    assert run("subscribe", str(queued)).code == 0
    commit_all(queued, "subscribe")
    kw = dict(verifier_cmd=verifier_writes("01-hello", headline=headline), title="Write the greeting",
              acceptance="grep -q hello hello.txt")
    card = script_card(queued, "01-hello", **kw)
    commit_all(queued, "card")
    assert run("add-stage", str(queued), str(card)).code == 0
    run_until_quiet(home_dir, queued)

    manual = make_repo(tmp_path / "manual")
    assert run("subscribe", str(manual)).code == 0
    commit_all(manual, "subscribe")
    card = script_card(manual, "01-hello", **kw)
    commit_all(manual, "card")
    queue_before = [(manual / "state" / name).read_bytes() for name in ("state.yaml", "budget.json")]
    results = by_hand(run, card)

    tick_commit = git(queued, "log", "-1", f"--format={LOG_FORMAT}")
    hand_commit = git(manual, "log", "-1", f"--format={LOG_FORMAT}")
    assert hand_commit == tick_commit
    subject = f"01-hello: {headline or 'Write the greeting'}"
    assert tick_commit.strip().splitlines() == [WORKER, "Test Human <human@example.com>", subject,
                                        f"Co-Authored-By: {CHECKER}"]
    assert git(manual, "show", "--name-status", "--format=", "HEAD") == git(queued, "show", "--name-status",
                                                                           "--format=", "HEAD")
    assert results[-1].out.splitlines()[-1].startswith("committed ") and subject in results[-1].out
    # the queue and the budget were never touched; state/ was never committed
    assert [(manual / "state" / name).read_bytes() for name in ("state.yaml", "budget.json")] == queue_before
    assert git(manual, "status", "--porcelain", "--", ".", ":(exclude)state") == ""
    assert (manual / "state" / "logs" / "01-hello-acceptance.log").exists()


def test_an_unsubscribed_repo_works_and_leaves_no_queue(run, tmp_path):
    repo = make_repo(tmp_path / "plain")
    card = script_card(repo, "02-hi")
    commit_all(repo)
    dispatched, verified, accepted = by_hand(run, card)
    assert "handoff status=pass" in dispatched.out and "02-hi: PASS" in verified.out
    assert not (repo / "state" / "state.yaml").exists() and not (repo / "state" / "budget.json").exists()
    assert git(repo, "log", "-1", "--format=%s").strip() == "02-hi: Say hello"
    assert "nothing to commit" in run("accept", str(card)).out  # accepting twice changes nothing


def test_with_isolation_tree_dispatch_refuses_a_dirty_tree_and_a_stage_in_flight(run, tmp_path):
    repo = make_repo(tmp_path / "r")
    (repo / ".autometta.local.yaml").write_text("isolation: tree\n")
    (repo / ".gitignore").write_text(".autometta.local.yaml\n")
    card = script_card(repo, "01-hello")
    res = run("dispatch", str(card))
    assert res.code == 1 and "uncommitted changes outside state/" in res.err and "docs/stages/01-hello.md" in res.err
    commit_all(repo)
    assert run("init-host").code == 0 and run("subscribe", str(repo)).code == 0
    commit_all(repo, "subscribe")
    state = repo / "state" / "state.yaml"
    state.write_text(state.read_text().replace("current_stage: null", "current_stage: 01-hello"))
    res = run("dispatch", str(card))
    assert res.code == 1 and "in flight" in res.err
    assert not (repo / "state" / "logs" / "01-hello-worker.log").exists()


def test_dispatch_refuses_a_card_with_lint_errors(run, tmp_path):
    repo = make_repo(tmp_path / "r")
    card = script_card(repo, "01-hello", worker="Script Worker <w@local>")
    card.write_text(card.read_text().replace("- **Worker command:**", "- **Other:**"))
    commit_all(repo)
    res = run("dispatch", str(card))
    assert res.code == 1 and "script: a Script worker runs the card's shell command" in res.err


def test_worker_failures_are_reported_with_the_ticks_markers(run, tmp_path):
    repo = make_repo(tmp_path / "r")
    card = script_card(repo, "01-hello", "true")
    commit_all(repo)
    res = run("dispatch", str(card), "--wait")
    assert res.code == 1 and "handoff status=missing (worker_envelope_missing_after_exit)" in res.out
    res = run("verify", str(card))
    assert res.code == 1 and "no handoff from the worker yet" in res.err


def test_worker_fail_handoff_stops_verify(run, tmp_path):
    repo = make_repo(tmp_path / "r")
    fail = ("printf '%s' '{\"stage_id\":\"01-hello\",\"status\":\"fail\",\"deliverables\":[],"
            "\"notes\":\"no way\"}' > \"$AUTOMETTA_HANDOFF\"")
    card = script_card(repo, "01-hello", fail)
    commit_all(repo)
    data = json.loads(run("dispatch", str(card), "--wait", "--json").out)
    assert (data["handoff_status"], data["marker"], data["exit_code"]) == ("fail", "no way", 0)
    res = run("verify", str(card))
    assert res.code == 1 and "status=fail" in res.err


def test_acceptance_failure_runs_no_verifier(run, tmp_path):
    repo = make_repo(tmp_path / "r")
    card = script_card(repo, "01-hello", acceptance="grep -q goodbye hello.txt")
    commit_all(repo)
    assert run("dispatch", str(card), "--wait").code == 0
    res = run("verify", str(card), "--wait")
    assert res.code == 1 and "FAIL (acceptance_failed)" in res.out
    assert not (repo / "state" / "logs" / "01-hello-verifier.log").exists()
    assert run("accept", str(card)).code == 1
    assert git(repo, "log", "-1", "--format=%s").strip() == "cards"


def test_fail_verdict_commits_nothing(run, tmp_path):
    repo = make_repo(tmp_path / "r")
    card = script_card(repo, "01-hello", verifier_cmd=verifier_writes("01-hello", "FAIL"))
    commit_all(repo)
    assert run("dispatch", str(card), "--wait").code == 0
    res = run("verify", str(card), "--wait")
    assert res.code == 1 and "01-hello: FAIL (verifier_fail)" in res.out and "1  FAIL  hello" in res.out
    res = run("accept", str(card))
    assert res.code == 1 and "the verdict is FAIL" in res.err
    assert git(repo, "log", "-1", "--format=%s").strip() == "cards" and not (repo / "hello.txt").exists()
    assert (repo / ".autometta" / "worktrees" / "01-hello" / "hello.txt").exists()  # kept there for review


def test_a_verifier_that_changes_the_tree_is_not_accepted(run, tmp_path):
    repo = make_repo(tmp_path / "r")
    card = script_card(repo, "01-hello", verifier_cmd="printf 'x\\n' >> hello.txt && " + verifier_writes("01-hello"))
    commit_all(repo)
    run("dispatch", str(card), "--wait")
    res = run("verify", str(card), "--wait")
    assert res.code == 1 and "FAIL (verifier_modified_tree)" in res.out
    assert run("accept", str(card)).code == 1
    assert git(repo, "log", "-1", "--format=%s").strip() == "cards"


def test_verdict_given_as_the_final_message_is_saved(run, tmp_path):
    repo = make_repo(tmp_path / "r")
    card = script_card(repo, "01-hello", verifier_cmd=f"printf '%s\\n' '{verdict('01-hello')}'")
    commit_all(repo)
    run("dispatch", str(card), "--wait")
    assert run("verify", str(card), "--wait").code == 0
    assert json.loads((repo / "state" / "verifiers" / "01-hello.json").read_text())["overall"] == "PASS"
    assert run("accept", str(card)).code == 0


def test_without_wait_the_agents_run_detached(run, tmp_path):
    repo = make_repo(tmp_path / "r")
    card = script_card(repo, "01-hello")
    commit_all(repo)
    started = json.loads(run("dispatch", str(card), "--json").out)
    assert started["waited"] is False and started["log"].endswith("state/logs/01-hello-worker.log")
    os.waitpid(started["pid"], 0)  # the runner is this process's child
    started = json.loads(run("verify", str(card), "--json").out)
    os.waitpid(started["pid"], 0)
    data = json.loads(run("accept", str(card), "--json").out)
    assert data["overall"] == "PASS" and data["commit"] and data["subject"] == "01-hello: Say hello"
    registry = list((repo / "state" / "active-agents").glob("*.json")) + \
        list((repo / "state" / "recent-agents").glob("*.json"))
    assert registry  # registered like the tick's agents


def test_a_rerun_archives_the_previous_handoff_and_verdict(run, tmp_path):
    repo = make_repo(tmp_path / "r")
    card = script_card(repo, "01-hello", verifier_cmd=verifier_writes("01-hello", "FAIL"))
    commit_all(repo)
    run("dispatch", str(card), "--wait")
    run("verify", str(card), "--wait")
    git(repo, "clean", "-fdq", "-e", "state")
    assert run("dispatch", str(card), "--wait").code == 0
    archived = sorted(f"{p.parent.name}/{p.name}" for p in (repo / "state" / "archive" / "01-hello").rglob("*.json"))
    assert len(archived) == 3 and archived[0] == "handoffs/01-hello.json"  # the old handoff and verdicts:
    assert archived[2] == "verifiers/01-hello.json"  # autometta's copy, and its verifier run's own
    assert re.fullmatch(r"verifiers/01-hello\.[0-9a-f]{32}\.json", archived[1])
    assert not (repo / "state" / "verifiers" / "01-hello.json").exists()


# ---------------------------------------------------------------- never in the user's checkout


def test_the_agents_run_in_a_worktree_and_accept_lands_only_their_work(run, tmp_path):
    repo = make_repo(tmp_path / "r")
    card = script_card(repo, "01-hello", acceptance="test -f hello.txt")
    commit_all(repo)
    start = git(repo, "rev-parse", "HEAD").strip()
    (repo / "README.md").write_text("the user's edit\n")  # the user keeps working in the checkout
    dispatched = json.loads(run("dispatch", str(card), "--wait", "--json").out)
    work = repo / ".autometta" / "worktrees" / "01-hello"
    assert dispatched["worktree"] == str(work) and dispatched["handoff_status"] == "pass"
    assert (work / "hello.txt").exists() and not (repo / "hello.txt").exists()
    (repo / "note.txt").write_text("the user's note\n")
    git(repo, "add", "note.txt")
    assert run("verify", str(card), "--wait").code == 0
    res = run("accept", str(card))
    assert res.code == 0, res.err
    assert git(repo, "log", "--format=%s", f"{start}..HEAD").splitlines() == ["01-hello: Say hello"]
    assert git(repo, "show", "--name-only", "--format=", "HEAD").split() == ["hello.txt"]
    assert (repo / "README.md").read_text() == "the user's edit\n"
    assert git(repo, "diff", "--cached", "--name-only").split() == ["note.txt"]  # still staged, not committed
    assert not work.exists() and git(repo, "branch", "--list", "autometta/*") == ""
    assert not (repo / "state" / "logs" / "01-hello-postmerge.log").exists()  # nothing moved: no recheck
    assert "nothing to commit" in run("accept", str(card)).out  # accepting twice changes nothing


def test_accept_rechecks_on_a_moved_base_and_names_the_files_it_would_overwrite(run, tmp_path):
    repo = make_repo(tmp_path / "r")
    card = script_card(repo, "01-hello", acceptance="test -f hello.txt")
    commit_all(repo)
    by_hand(run, card, expect_ok=False)
    (repo / "later.txt").write_text("the user's commit\n")
    commit_all(repo, "the user commits meanwhile")
    (repo / "hello.txt").write_text("the user's own hello\n")
    res = run("accept", str(card))
    assert res.code == 1 and "(hello.txt)" in res.err and "dirty-working-tree" in res.err
    assert git(repo, "log", "-1", "--format=%s").strip() == "the user commits meanwhile"
    assert (repo / "state" / "logs" / "01-hello-postmerge.log").exists()  # rebased onto it, checked again
    (repo / "hello.txt").unlink()
    res = run("accept", str(card))
    assert res.code == 0, res.err
    assert git(repo, "log", "--format=%s", "-2").splitlines() == ["01-hello: Say hello", "the user commits meanwhile"]


def test_with_isolation_tree_a_fail_takes_the_workers_commit_off_the_branch(run, tmp_path):
    repo = make_repo(tmp_path / "r")
    (repo / ".autometta.local.yaml").write_text("isolation: tree\n")
    (repo / ".gitignore").write_text(".autometta.local.yaml\n")
    commits = ("printf 'hello\\n' > hello.txt && git add hello.txt && git commit -qm 'worker commits' && printf '%s' "
               "'{\"stage_id\":\"01-hello\",\"status\":\"pass\",\"deliverables\":[\"hello.txt\"],\"notes\":\"x\"}' "
               "> \"$AUTOMETTA_HANDOFF\"")
    card = script_card(repo, "01-hello", commits, verifier_writes("01-hello", "FAIL"))
    commit_all(repo)
    start = git(repo, "rev-parse", "HEAD").strip()
    by_hand(run, card, expect_ok=False)
    assert git(repo, "log", "-1", "--format=%s").strip() == "worker commits"
    res = run("accept", str(card))
    assert res.code == 1 and "the verdict is FAIL" in res.err and "moved back" in res.err
    assert git(repo, "rev-parse", "HEAD").strip() == start and (repo / "hello.txt").exists()


def test_accept_does_not_land_what_failed_its_recheck_when_run_again(run, tmp_path):
    repo = make_repo(tmp_path / "r")
    card = script_card(repo, "01-hello", acceptance="test -f hello.txt && test ! -f later.txt")
    commit_all(repo)
    by_hand(run, card, expect_ok=False)
    (repo / "later.txt").write_text("breaks the stage's acceptance\n")
    commit_all(repo, "the user commits meanwhile")
    for _ in range(2):  # the second accept finds the rebase done already: it checks again all the same
        res = run("accept", str(card))
        assert res.code == 1 and "post_merge_acceptance_failed" in res.err
        assert git(repo, "log", "-1", "--format=%s").strip() == "the user commits meanwhile"

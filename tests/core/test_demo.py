"""``autometta demo``: the README's main command drains its queue and commits."""

from __future__ import annotations

import subprocess

from autometta.demo import run_demo
from autometta.books.state import load_state
from autometta.paths import RepoPaths


def test_demo_drains_the_queue_with_worker_authors_and_verifier_coauthors(tmp_path):
    lines = []
    repo = run_demo(tmp_path / "d", say=lines.append)
    doc = load_state(RepoPaths(repo.resolve()))
    assert [s["status"] for s in doc["stages"]] == ["completed"] * 3
    log = subprocess.run(["git", "-C", str(repo), "log", "-3", "--format=%an|%s|%(trailers:key=Co-Authored-By,valueonly)"],
                         capture_output=True, text=True, check=True).stdout
    entries = [e.strip() for e in log.strip().split("\n\n")]
    assert [e.split("|")[1] for e in entries] == ["03-summary: Summarise the demo files", "02-numbers: Count to five",
                                                  "01-greeting: Add a greeting"]
    assert all(e.startswith("Script Worker|") and e.endswith("Script Checker <script-checker@local>") for e in entries)
    text = "\n".join(lines)
    assert "co-author: Script Checker <script-checker@local>" in text and "idle" in text
    assert "in its worktree" in text  # serial stages run in worktrees too, removed once landed
    worktrees = subprocess.run(["git", "-C", str(repo), "worktree", "list"], capture_output=True, text=True,
                               check=True).stdout
    assert len(worktrees.splitlines()) == 1
    assert [p.name for p in (repo / ".autometta" / "worktrees").iterdir()] == [".gitignore"]


def test_demo_parallel_runs_the_first_two_at_once_and_the_summary_after_both(tmp_path, run):
    res = run("demo", "--dir", str(tmp_path / "p"), "--parallel", "3")
    assert res.code == 0, res.err
    first = next(line for line in res.out.splitlines() if line.startswith("tick  1:"))
    assert "claimed 01-greeting" in first and "claimed 02-numbers" in first and "03-summary" not in first
    repo = tmp_path / "p" / "demo-repo"
    subjects = subprocess.run(["git", "-C", str(repo), "log", "-3", "--format=%s"], capture_output=True, text=True,
                              check=True).stdout.split("\n")
    assert subjects[0] == "03-summary: Summarise the demo files"
    assert (repo / "demo" / "SUMMARY.txt").read_text().split() == ["SUMMARY.txt", "greeting.txt", "numbers.txt"]
    branches = subprocess.run(["git", "-C", str(repo), "branch", "--list", "autometta/*"], capture_output=True,
                              text=True, check=True).stdout
    assert branches == "" and [p.name for p in (repo / ".autometta" / "worktrees").iterdir()] == [".gitignore"]


def test_demo_parallel_refuses_a_bad_count(run, tmp_path):
    res = run("demo", "--dir", str(tmp_path / "x"), "--parallel", "0")
    assert res.code == 2 and "at least 1" in res.err

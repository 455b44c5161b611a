"""Disk full and read-only: a write that fails with ENOSPC or EROFS leaves the previous
document intact, says so, and the next tick (disk fixed) carries on."""

from __future__ import annotations

import pytest

from tests.testing.tick_processes import assert_documents_valid, await_all_runners, tick_process, tick_until_settled
from tests.testing.ticks import stage, tick_once

SID = "01-hello"
REASON = {"enospc": "the disk is full", "erofs": "the file system is read-only"}


@pytest.mark.parametrize("action", ["enospc", "erofs"])
@pytest.mark.parametrize("target", ["state.yaml", "budget.json", "state.yaml.bak"])
@pytest.mark.parametrize("when", ["before", "during"])
def test_failed_write_keeps_the_previous_document(setup, action, target, when):
    repo, home, add = setup
    add(SID, "true")  # the worker exits without an envelope: the next transition is a stall, no spawn
    tick_once(home)
    await_all_runners(repo)
    path = repo / "state" / target
    before = path.read_bytes()
    result = tick_process(fault=f"atomic_write.{when}@{target}:1:{action}")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert f"{target}: cannot write ({REASON[action]}); the previous version is unchanged" in result.stderr
    assert path.read_bytes() == before
    assert not list((repo / "state").glob(".*.tmp")), "a temp file was left behind"
    assert_documents_valid(repo)
    assert stage(repo, SID)["status"] in ("in_progress", "stalled")
    tick_until_settled(home, repo)
    s = stage(repo, SID)
    assert (s["status"], s["stall_marker"]) == ("stalled", "worker_envelope_missing_after_exit")


@pytest.mark.parametrize("action", ["enospc", "erofs"])
def test_add_stage_on_a_full_disk_changes_nothing(setup, run, action, monkeypatch):
    repo, home, add = setup
    from tests.testing.ticks import commit_all, script_card

    card = script_card(repo, SID)
    commit_all(repo)
    before = (repo / "state" / "state.yaml").read_bytes()
    monkeypatch.setenv("AUTOMETTA_FAULT", f"atomic_write.before@state.yaml:1:{action}")
    from autometta import faults
    faults._hits.clear()
    res = run("add-stage", str(repo), str(card))
    monkeypatch.delenv("AUTOMETTA_FAULT")
    assert res.code == 1 and REASON[action] in res.err and "previous version is unchanged" in res.err
    assert (repo / "state" / "state.yaml").read_bytes() == before

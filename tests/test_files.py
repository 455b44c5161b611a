"""Atomic writes, the rolling backup, and the lock."""

from __future__ import annotations

import errno
import multiprocessing
import os
import stat

import pytest

from autometta import files
from autometta.errors import UserError


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "doc.json"
    files.atomic_write(target, "one\n", mode=0o600)
    files.atomic_write(target, "two\n")
    assert target.read_text() == "two\n"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600  # kept from the first write
    assert [p.name for p in tmp_path.iterdir()] == ["doc.json"]


def test_symlink_is_replaced_not_written_through(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("precious\n")
    link = tmp_path / "state.yaml"
    link.symlink_to(outside)
    files.atomic_write(link, "new\n")
    assert outside.read_text() == "precious\n"
    assert not link.is_symlink() and link.read_text() == "new\n"


@pytest.mark.parametrize("code,words", [(errno.ENOSPC, "disk is full"), (errno.EROFS, "read-only")])
def test_write_failure_keeps_previous_and_says_why(tmp_path, monkeypatch, code, words):
    target = tmp_path / "budget.json"
    target.write_text("old\n")

    def failing_replace(src, dst):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(files.os, "replace", failing_replace)
    with pytest.raises(UserError) as info:
        files.atomic_write(target, "new\n")
    assert words in str(info.value) and "budget.json" in str(info.value)
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["budget.json"]


def test_read_json_errors_name_file_and_position(tmp_path):
    bad = tmp_path / "budget.json"
    bad.write_text('{"a": 1,\n "b": }\n')
    with pytest.raises(UserError) as info:
        files.read_json(bad)
    assert str(info.value).startswith(f"{bad}:2:")


def test_read_refuses_huge_files(tmp_path):
    big = tmp_path / "state.yaml"
    big.write_bytes(b"x" * (files.MAX_DOCUMENT_BYTES + 1))
    with pytest.raises(UserError, match="larger than"):
        files.read_text(big)


def _hold_lock(path, ready, release):
    with files.locked(path):
        ready.set()
        release.wait(10)


def test_lock_excludes_other_processes_and_frees_on_exit(tmp_path):
    lock = tmp_path / "x.lock"
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(lock, ready, release))
    holder.start()
    try:
        assert ready.wait(10)
        with pytest.raises(files.LockBusy):
            with files.locked(lock, timeout=0.05):
                pass
    finally:
        release.set()
        holder.join(10)
    with files.locked(lock, timeout=1):
        pass


def test_lock_of_a_killed_holder_is_free(tmp_path):
    lock = tmp_path / "x.lock"
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(lock, ready, release))
    holder.start()
    assert ready.wait(10)
    holder.kill()
    holder.join(10)
    with files.locked(lock, timeout=0):
        pass

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


@pytest.mark.parametrize("text,where", [
    ("[" * 65 + "]" * 65, "1:65"),
    ('{"a": ' * 65 + "1" + "}" * 65, "1:385"),
    ('{"ok": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",\n "x": ' + "[" * 100000
     + "]" * 100000 + "}", "2:70"),
])
def test_json_nested_too_deep_is_refused_at_its_line(tmp_path, text, where):
    path = tmp_path / "deep.json"
    path.write_text(text)
    with pytest.raises(UserError) as err:
        files.read_json(path)
    assert str(err.value).startswith(f"{path}:{where}: nested more than 64 levels deep")


def test_json_at_the_depth_bound_and_brackets_in_strings_are_fine(tmp_path):
    assert files.parse_json("[" * 64 + "]" * 64, "f") is not None
    assert files.parse_json('{"a": "' + "[" * 500 + '\\"]"}', "f") == {"a": "[" * 500 + '"]'}


@pytest.mark.parametrize("text,message", [
    ('{"a": NaN}', "NaN is not a JSON value"),
    ('{"a": -Infinity}', "-Infinity is not a JSON value"),
    ('{"a": "x\\u0000y"}', "1:9: holds a NUL character"),
    ('{"a": 1}\n\0', "2:1: holds a NUL character"),
])
def test_json_without_a_json_value_or_with_a_nul_is_refused(text, message):
    with pytest.raises(UserError) as err:
        files.parse_json(text, "f.json")
    assert message in str(err.value)
    assert files.parse_json('{"a": "x\\\\u0000"}', "f") == {"a": "x\\u0000"}  # an escaped backslash is no NUL


def test_only_a_regular_file_is_read(tmp_path):
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)  # opening it for reading would wait for a writer forever
    with pytest.raises(UserError) as err:
        files.read_json(fifo)
    assert "not a regular file" in str(err.value)
    with pytest.raises(UserError) as err:
        files.read_text(tmp_path)
    assert "is a folder" in str(err.value)


def test_follow_false_refuses_a_symlink_naming_it(tmp_path):
    target = tmp_path / "target.json"
    target.write_text("{}")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    assert files.read_json(link) == {}
    with pytest.raises(UserError) as err:
        files.read_json(link, follow=False)
    assert str(err.value).startswith(f"{link}: is a symlink (to {target})")


@pytest.mark.parametrize("left", ["nothing", "file", "fifo", "symlink", "hard link", "dangling symlink"])
def test_open_fresh_empties_a_plain_file_of_its_own_and_follows_nothing(tmp_path, left):
    path, other = tmp_path / "agent.log", tmp_path / "users-file"
    other.write_text("mine\n")
    if left == "file":
        path.write_text("old log\n")
    elif left == "fifo":
        os.mkfifo(path)  # opened for writing as it was, it waits for a reader forever
    elif left == "symlink":
        path.symlink_to(other)
    elif left == "hard link":
        os.link(other, path)
    elif left == "dangling symlink":
        path.symlink_to(tmp_path / "made-elsewhere")
    fd = files.open_fresh(path)
    try:
        os.write(fd, b"new\n")
    finally:
        os.close(fd)
    assert not path.is_symlink() and path.read_text() == "new\n"
    assert os.stat(path).st_nlink == 1 and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert other.read_text() == "mine\n" and not (tmp_path / "made-elsewhere").exists()


def test_open_fresh_refuses_a_folder(tmp_path):
    (tmp_path / "agent.log").mkdir()
    with pytest.raises(OSError):
        files.open_fresh(tmp_path / "agent.log")


def test_a_lock_records_its_holders_pid_in_place(tmp_path):
    """The pid is rewritten in one width over the last holder's, never by truncating (a journal entry per lock)."""
    lock = tmp_path / "x.lock"
    lock.write_text("4194303\nleft by an older version\n")
    with files.locked(lock):
        assert int(lock.read_text()) == os.getpid()
    size = lock.stat().st_size
    with files.locked(lock):
        assert int(lock.read_text()) == os.getpid() and lock.stat().st_size == size

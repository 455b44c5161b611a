"""A world built once by real ticks, handed to each test as a fresh copy at the same path.

Some tests share a costly starting point: subscribed repos whose stages real
agents ran and real git landed. Built once per module (:func:`building`), it is
copied back before each test (:func:`fresh`): milliseconds instead of seconds.
The copy is made at the very path the world was built at, so every absolute
path its files hold (the home's subscriptions, the state's worktrees, git's
own links) stays right, and each test starts from the bytes it would have
built itself, in a world no other test has touched::

    @pytest.fixture(scope="module")
    def _fleet(tmp_path_factory):
        root = tmp_path_factory.mktemp("fleet")
        with building(root):
            ...  # make repos, run_ok("init-host"), run_until_quiet(...)
        return root

    @pytest.fixture
    def fleet(_fleet, monkeypatch):
        root = fresh(_fleet, monkeypatch)
        ...
"""

from __future__ import annotations

import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from autometta import cli
from tests.testing.env import isolate_env


def _frozen(root: Path) -> Path:
    return root.with_name(root.name + "-frozen")


@contextmanager
def building(root: Path) -> Iterator[pytest.MonkeyPatch]:
    """Build under ``root`` in a test's environment rooted there; the world is frozen when the block ends."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        isolate_env(monkeypatch, root)
        yield monkeypatch
    shutil.copytree(root, _frozen(root), symlinks=True)


def fresh(root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``root`` as it was frozen, and this test's environment (controller home, git config) pointed at it."""
    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(_frozen(root), root, symlinks=True)
    isolate_env(monkeypatch, root)
    return root


def run_ok(*args: str) -> None:
    """The CLI in-process, as the ``run`` fixture does (which a module's fixture cannot use); it must exit 0."""
    try:
        code = cli.main(list(args))
    except SystemExit as exc:
        code = exc.code
    assert code == 0, f"autometta {' '.join(args)} exited {code}"

"""What an idle tick imports: a short list, kept on purpose (issue 17).

Start-up is most of what an idle tick costs, and most of start-up is
importing. The tick of a repo with nothing to do is decided from state.yaml,
budget.json and the agent registry, so it must not import what decides,
observes, starts or checks stages, nor the heavy parts of the standard
library they use. A module added to :data:`IDLE_TICK` is a conscious change:
measure it with ``python3 bench/startup.py`` first.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from autometta.timeutil import is_date
from tests.testing.pyz import pyz  # noqa: F401 - the fixture

#: Every autometta module an idle tick over one subscribed repo imports.
IDLE_TICK = {
    "autometta", "autometta.books.budget", "autometta.bytecache", "autometta.cli", "autometta.commands",
    "autometta.commands.tick", "autometta.repo", "autometta.errors", "autometta.faults", "autometta.files",
    "autometta.home", "autometta.logretention", "autometta.manifest", "autometta.observe",
    "autometta.agents.registry", "autometta.paths", "autometta.resources",
    "autometta.schema", "autometta.books.state", "autometta.timeutil", "autometta.yamlsub",
    "autometta.tick", "autometta.tick.loop", "autometta.tick.idle",  # the loop, and an idle repo told without deciding
    "autometta.secrets", "autometta.redact",  # every line of the tick log is masked
    "autometta.git.isolation",  # the repo's isolation mode is checked (tree with max_parallel > 1 is an error)
    "autometta.ticklog",  # a repeated decision is written once; every tick stamps log/.last-tick
    "autometta.books.digests",  # every tick audits the books first (a file changed behind autometta's back halts)
    "autometta.observe.fresh",  # every tick restamps the dashboard's 'data as of' (or rewrites the page)
    "autometta.bytecache_finder",  # the cache's finder, from the cache (with no cache to be had, not imported)
    "autometta.books.ledger",  # runs started by hand are booked, and a repo with runs to fold takes the full path
    "autometta.tick.turns",  # under max_per_fire, repos take turns
    "autometta.agents", "autometta.books", "autometta.git",  # the packages of the registry, the books and isolation (docstrings only)
}

#: Standard-library modules an idle tick never needs (each costs a millisecond or more to import).
NEVER = {"dataclasses", "inspect", "ast", "dis", "tokenize", "subprocess", "hashlib", "tempfile",
         "zipfile", "datetime", "platform", "plistlib", "email", "http", "urllib.request",
         "typing", "shutil", "bz2", "lzma",
         "textwrap",  # help texts are made plain (cli.plain_doc) when help is printed only
         "gettext", "locale"}  # argparse gets a gettext that answers at once (cli._argparse)

HOOK = """\
import atexit, json, os, sys

_spawned = []

def _hook(event, args):
    if event in ("subprocess.Popen", "os.posix_spawn", "os.fork", "os.exec", "os.system", "os.spawn"):
        _spawned.append(event)

sys.addaudithook(_hook)

@atexit.register
def _report():
    import gc

    with open(os.environ["IMPORTS_OUT"], "w") as handle:
        json.dump({"modules": sorted(sys.modules), "spawned": _spawned,
                   "gc": {"enabled": gc.isenabled(), "frozen": gc.get_freeze_count()}}, handle)
"""


def _run(pyz, tmp_path: Path, *args: str) -> dict:
    hook = tmp_path / "hook"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(HOOK)
    out = tmp_path / "imports.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(PYTHONPATH=str(hook), IMPORTS_OUT=str(out))
    proc = subprocess.run([sys.executable, str(pyz), *args], env=env, cwd=str(tmp_path), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(out.read_text())


def _floor(tmp_path: Path) -> set:
    """What any zipapp imports on this interpreter (an empty one): e.g. 3.9's runpy imports typing."""
    import zipfile

    empty = tmp_path / "empty.pyz"
    with zipfile.ZipFile(empty, "w") as archive:
        archive.writestr("__main__.py", "")
    return set(_run(empty, tmp_path)["modules"])


@pytest.mark.parametrize("cache", ["warm", "none"])
def test_an_idle_tick_imports_the_listed_modules_only(pyz, setup, tmp_path, cache):
    repo, home, _ = setup
    if cache == "none":  # no bytecode cache to be had: the same modules, compiled from the zip
        blocked = tmp_path / "not-a-folder"
        blocked.write_text("")
        os.environ["XDG_CACHE_HOME"] = str(blocked)  # the autouse fixture restores it
    _run(pyz, tmp_path, "tick", "--quiet")  # the first tick writes the dashboard page (and fills the cache)
    seen = _run(pyz, tmp_path, "tick", "--quiet")
    ours = {m for m in seen["modules"] if m == "autometta" or m.startswith("autometta.")}
    listed = IDLE_TICK - ({"autometta.bytecache_finder"} if cache == "none" else set())
    assert ours == listed, (f"added: {sorted(ours - listed)}; gone: {sorted(listed - ours)} "
                            "(measure with bench/startup.py, then update IDLE_TICK)")
    never = NEVER - _floor(tmp_path)
    assert not never & set(seen["modules"]), sorted(never & set(seen["modules"]))
    assert seen["spawned"] == []  # not one subprocess
    # start-up imported with the collector off, froze what it made (cli._imports_in), and the command ran with
    # it on: a long command still collects its garbage
    assert seen["gc"]["enabled"] and seen["gc"]["frozen"] > 10000, seen["gc"]
    assert "idle " in (home / "log").joinpath(sorted(p.name for p in (home / "log").iterdir())[-1]).read_text()


def test_a_second_status_starts_no_process_and_opens_no_pyz(pyz, setup, tmp_path):
    """The schedule's health is remembered between runs (autometta/schedulememo.py): no ``crontab -l``."""
    first = _run(pyz, tmp_path, "status")
    assert "autometta.schedule.health" in first["modules"]  # checked once (crontab -l, where there is one)
    seen = _run(pyz, tmp_path, "status")
    assert seen["spawned"] == []
    assert not {"subprocess", "zipfile", "autometta.schedule", "autometta.schedule.health"} & set(seen["modules"])
    never = NEVER - _floor(tmp_path)  # nor what an idle tick never needs (typing, dataclasses, hashlib, ...)
    assert not never & set(seen["modules"]), sorted(never & set(seen["modules"]))


def test_the_tick_without_git_on_path_still_refuses(setup, tmp_path, monkeypatch):
    """tick looks for git without shutil (autometta.tick.loop._on_path): the same answer as shutil.which."""
    import shutil

    from autometta.tick import loop as tick
    from autometta.errors import UserError
    from autometta.paths import HomePaths

    _, home, _ = setup
    tools = tmp_path / "tools"
    (tools / "git").mkdir(parents=True)  # a folder named git is not git
    (tools / "notgit").write_text("#!/bin/sh\n")
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{tmp_path / 'missing'}")
    assert shutil.which("git") is None
    with pytest.raises(UserError, match="git not found on PATH"):
        tick.run_tick(HomePaths(home), echo=False)
    (tools / "git").rmdir()
    (tools / "git").write_text("#!/bin/sh\n")  # not executable: not found either
    with pytest.raises(UserError, match="git not found on PATH"):
        tick.run_tick(HomePaths(home), echo=False)
    (tools / "git").chmod(0o755)
    assert shutil.which("git") and [o.kind for o in tick.run_tick(HomePaths(home), echo=False)] == ["wait"]


@pytest.mark.parametrize("columns", ["70", "90"])  # a description is wrapped to 60..100 (cli.plain_doc)
def test_help_fits_columns_as_shutil_would_size_it(run, monkeypatch, columns):
    """The parsers' help formatter sizes itself without shutil, from $COLUMNS (else the terminal, else 80)."""
    monkeypatch.setenv("COLUMNS", columns)
    res = run("subscribe", "--help")
    assert res.code == 0
    lines = res.out.splitlines()
    assert max(len(line) for line in lines) <= int(columns)
    assert max(len(line) for line in lines) > int(columns) - 20  # filled to the width, not to 80


LAZY_SHAPES = """\
from autometta import redact
r = redact.Redactor()
assert r.text("idle /r: no pending stage") == "idle /r: no pending stage"
assert r.bytes(b"idle /r") == b"idle /r"
assert redact._SHAPES is None and redact._SHAPES_B is None, "compiled for text that holds no trigger"
key = "sk-ant-" + "a1B2" * 8
assert r.text("key " + key) == "key ****" + key[-4:]
assert r.bytes(b"key " + key.encode()) == b"key ****" + key[-4:].encode()
assert [rule for rule, _ in redact.SHAPES][0] == "anthropic_key" and redact.SHAPES is redact.shapes()
"""


def test_key_shapes_are_compiled_when_a_line_may_hold_one():
    """Every tick log line is masked; an idle tick's lines hold no key trigger, so no shape is compiled."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    proc = subprocess.run([sys.executable, "-c", LAZY_SHAPES], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_is_date_agrees_with_datetime():
    """schema checks date-times with timeutil.is_date, so it need not import datetime."""
    for year in (0, 1, 4, 100, 1900, 1999, 2000, 2023, 2024, 2100, 2400, 9999, 10000):
        for month in range(-1, 14):
            for day in range(-1, 33):
                try:
                    datetime.date(year, month, day)
                    real = True
                except ValueError:
                    real = False
                assert is_date(year, month, day) == real, (year, month, day)


def test_sha256_without_hashlib_is_hashlibs():
    """files.sha256_hex takes SHA-256 from the interpreter's own module (no OpenSSL to load): the same digest."""
    import hashlib

    from autometta import files

    for data in (b"", b"/src/proj", "/home/\u00e9/r\udcff".encode("utf-8", "surrogateescape"), b"x" * 100000):
        assert files.sha256_hex(data) == hashlib.sha256(data).hexdigest()


ARGPARSE_WITHOUT_GETTEXT = """\
import sys
from autometta import cli
argparse = cli._argparse()
assert "gettext" not in sys.modules and argparse._("usage: ") == "usage: "
assert argparse.ngettext("%s arg", "%s args", 1) == "%s arg" and argparse.ngettext("%s arg", "%s args", 2) == "%s args"
import gettext
assert hasattr(gettext, "translation"), "the real gettext for whoever imports it later"
assert cli._argparse() is argparse
"""


def test_argparse_is_imported_without_gettext_and_says_the_same_words(run):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    proc = subprocess.run([sys.executable, "-c", ARGPARSE_WITHOUT_GETTEXT], env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    res = run("tick", "--repo")
    assert res.code == 2 and "argument --repo: expected one argument" in res.err


def test_the_collector_is_left_alone_when_cli_main_is_called_in_process(run):
    import gc

    before = (gc.isenabled(), gc.get_freeze_count())
    assert run("tick", "--repo", "/nowhere").code == 1
    assert (gc.isenabled(), gc.get_freeze_count()) == before

"""build_pyz.py: one reproducible, runnable zipapp with the package and its data.

Reproducibility is checked on a frozen copy of the tree (its own git repo), so
other people editing the checkout while the tests run cannot make two builds
differ; the real checkout is built once to check the recorded commit.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Dict, List

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from autometta import __version__  # noqa: E402

PY39 = Path("/root/.pyenv/versions/3.9.18/bin/python3")
PY313 = Path("/root/.pyenv/versions/3.13.0/bin/python3")
HAVE_GIT = shutil.which("git") is not None
DATA_TREES = ("templates", "schemas")
FIXED = (1980, 1, 1, 0, 0, 0)


def _interpreters() -> List[pytest.param]:
    return [
        pytest.param(Path(sys.executable), id="current"),
        pytest.param(PY39, id="3.9", marks=pytest.mark.skipif(not PY39.exists(), reason=f"{PY39} absent")),
        pytest.param(PY313, id="3.13", marks=pytest.mark.skipif(not PY313.exists(), reason=f"{PY313} absent")),
    ]


def _env() -> Dict[str, str]:
    """The environment for child interpreters: nothing that could put the checkout on sys.path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "GIT_"))}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _hidden(name: str) -> bool:
    return name.startswith(".") or name == "__pycache__" or name.endswith((".pyc", ".pyo"))


def _tree_files(top: Path, only_py: bool = False) -> List[str]:
    """What the builder should pick up under ``top``, '/'-separated and sorted."""
    found = []
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = [d for d in dirnames if not _hidden(d)]
        for name in filenames:
            if _hidden(name) or (only_py and not name.endswith(".py")):
                continue
            found.append(Path(dirpath, name).relative_to(top).as_posix())
    return sorted(found)


def _snapshot(dest: Path) -> Path:
    """A frozen copy of what build_pyz.py reads, committed to a git repo of its own."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    dest.mkdir(parents=True)
    for tree in ("autometta", *DATA_TREES):
        shutil.copytree(ROOT / tree, dest / tree, ignore=ignore)
    shutil.copy2(ROOT / "build_pyz.py", dest / "build_pyz.py")
    # edge cases the real trees may not have yet: a sub-folder, a hidden file
    (dest / "templates" / "zz-test-sub").mkdir()
    (dest / "templates" / "zz-test-sub" / "nested.md").write_bytes(b"nested\r\nline\n")
    (dest / "templates" / ".hidden-scratch").write_text("never shipped\n")
    if HAVE_GIT:
        git = ["git", "-C", str(dest), "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"]
        subprocess.run(git + ["init", "-q"], check=True, env=_env())
        subprocess.run(git + ["add", "-A"], check=True, env=_env())
        subprocess.run(git + ["commit", "-qm", "snapshot"], check=True, env=_env())
    return dest


def _build(root: Path, output: Path, *extra: str, python: Path = Path(sys.executable), env=None) -> str:
    proc = subprocess.run(
        [str(python), str(root / "build_pyz.py"), "--output", str(output), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        universal_newlines=True,
        env=env or _env(),
        cwd=str(output.parent),
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == str(output)
    digest = hashlib.sha256(output.read_bytes()).hexdigest()
    assert lines[1] == f"sha256 {digest}"
    return digest


def _head(root: Path) -> str:
    out = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "HEAD"], stdout=subprocess.PIPE, universal_newlines=True, env=_env()
    )
    return out.stdout.strip()[:12] if out.returncode == 0 else "unknown"


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory) -> Path:
    return _snapshot(tmp_path_factory.mktemp("snap") / "src")


@pytest.fixture(scope="module")
def built(snapshot, tmp_path_factory):
    """The snapshot built twice, into two different folders."""
    first = tmp_path_factory.mktemp("one") / "autometta.pyz"
    second = tmp_path_factory.mktemp("two") / "other-name.pyz"
    return _build(snapshot, first), first, _build(snapshot, second), second


def test_two_builds_of_one_commit_are_byte_identical(built):
    digest1, first, digest2, second = built
    assert digest1 == digest2
    assert first.read_bytes() == second.read_bytes()


def test_archive_starts_with_the_shebang_and_is_executable(built):
    _, pyz, _, _ = built
    assert pyz.read_bytes().startswith(b"#!/usr/bin/env python3\n")
    assert stat.S_IMODE(pyz.stat().st_mode) == 0o755


def test_python_option_sets_the_shebang(snapshot, tmp_path):
    out = tmp_path / "custom.pyz"
    _build(snapshot, out, "--python", "/usr/bin/python3 -E")
    assert out.read_bytes().split(b"\n", 1)[0] == b"#!/usr/bin/python3 -E"
    with zipfile.ZipFile(out) as zf:
        assert zf.testzip() is None


def test_entries_are_sorted_and_hold_package_and_data_only(built, snapshot):
    _, pyz, _, _ = built
    with zipfile.ZipFile(pyz) as zf:
        names = zf.namelist()
    assert names == sorted(names)
    assert len(names) == len(set(names))
    files = [n for n in names if not n.endswith("/")]
    expected = ["__main__.py", "autometta/_build.json"]
    expected += [f"autometta/{rel}" for rel in _tree_files(snapshot / "autometta", only_py=True)]
    for tree in DATA_TREES:
        expected += [f"autometta/_data/{tree}/{rel}" for rel in _tree_files(snapshot / tree)]
    assert sorted(files) == sorted(expected)
    assert "autometta/_data/templates/zz-test-sub/nested.md" in files
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    assert not any(n.startswith("packaging/") or "/." in n or n.startswith(".") for n in names)
    # every folder of every file is listed (zipimport on 3.9 needs them for namespace packages)
    for name in files:
        parts = name.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            assert "/".join(parts[:i]) + "/" in names


def test_entries_have_fixed_dates_modes_and_compression(built):
    _, pyz, _, _ = built
    with zipfile.ZipFile(pyz) as zf:
        for info in zf.infolist():
            assert info.date_time == FIXED, info.filename
            assert info.create_system == 3, info.filename
            if info.filename.endswith("/"):
                assert info.external_attr >> 16 == 0o040755, info.filename
            else:
                assert info.external_attr >> 16 == 0o100644, info.filename
                stored = info.filename == "__main__.py"  # --version reads it without importing zlib
                assert info.compress_type == (zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED), info.filename


def test_data_and_sources_are_stored_byte_for_byte(built, snapshot):
    _, pyz, _, _ = built
    with zipfile.ZipFile(pyz) as zf:
        assert zf.read("autometta/cli.py") == (snapshot / "autometta" / "cli.py").read_bytes()
        for tree in DATA_TREES:
            for rel in _tree_files(snapshot / tree):
                assert zf.read(f"autometta/_data/{tree}/{rel}") == (snapshot / tree / rel).read_bytes()


@pytest.mark.skipif(not HAVE_GIT, reason="git not installed")
def test_build_info_records_commit_and_dirtiness(built, snapshot, tmp_path):
    _, pyz, _, _ = built
    with zipfile.ZipFile(pyz) as zf:
        info = json.loads(zf.read("autometta/_build.json"))
    assert info == {"commit": _head(snapshot), "dirty": False, "version": __version__}
    assert re.fullmatch(r"[0-9a-f]{12}", info["commit"])

    dirty_copy = tmp_path / "dirty"
    shutil.copytree(snapshot, dirty_copy)
    (dirty_copy / "schemas" / "zz-new-untracked.json").write_text("{}\n")
    out = tmp_path / "dirty.pyz"
    _build(dirty_copy, out)
    with zipfile.ZipFile(out) as zf:
        info = json.loads(zf.read("autometta/_build.json"))
    assert info["commit"] == _head(snapshot)
    assert info["dirty"] is True


def test_build_without_git_records_commit_unknown(snapshot, tmp_path):
    plain = tmp_path / "plain"
    shutil.copytree(snapshot, plain, ignore=shutil.ignore_patterns(".git"))
    out = tmp_path / "plain.pyz"
    env = _env()
    env["GIT_CEILING_DIRECTORIES"] = str(tmp_path)  # do not find a repo above the tmp dir
    _build(plain, out, env=env)
    with zipfile.ZipFile(out) as zf:
        info = json.loads(zf.read("autometta/_build.json"))
    assert info["commit"] == "unknown"
    proc = subprocess.run(
        [sys.executable, str(out), "--version"], stdout=subprocess.PIPE, universal_newlines=True,
        env=env, cwd=str(tmp_path),
    )
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"autometta {__version__} (commit unknown)"


def test_source_date_epoch_sets_every_timestamp(snapshot, tmp_path):
    env = _env()
    env["SOURCE_DATE_EPOCH"] = "1700000000"  # 2023-11-14 22:13:20 UTC
    a = _build(snapshot, tmp_path / "a.pyz", env=env)
    b = _build(snapshot, tmp_path / "b.pyz", env=env)
    assert a == b
    with zipfile.ZipFile(tmp_path / "a.pyz") as zf:
        assert {i.date_time for i in zf.infolist()} == {(2023, 11, 14, 22, 13, 20)}


@pytest.mark.skipif(not PY39.exists(), reason=f"{PY39} absent")
def test_builder_runs_on_39_and_gives_the_same_archive(built, snapshot, tmp_path):
    digest, _, _, _ = built
    out = tmp_path / "py39.pyz"
    digest39 = _build(snapshot, out, python=PY39)
    # same zipfile format and the same system zlib: the very same bytes
    assert digest39 == digest


@pytest.mark.parametrize("python", _interpreters())
def test_built_pyz_prints_version_and_commit(python, built, snapshot, tmp_path):
    _, pyz, _, _ = built
    proc = subprocess.run(
        [str(python), str(pyz), "--version"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        universal_newlines=True,
        env=_env(),
        cwd=str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr
    expected_commit = _head(snapshot) if HAVE_GIT else "unknown"
    assert proc.stdout == f"autometta {__version__} (commit {expected_commit})\n"


@pytest.mark.skipif(not HAVE_GIT, reason="git not installed")
def test_pyz_built_from_the_checkout_names_its_head(tmp_path):
    out = tmp_path / "autometta.pyz"
    _build(ROOT, out)
    proc = subprocess.run(
        [sys.executable, str(out), "--version"], stdout=subprocess.PIPE, universal_newlines=True,
        env=_env(), cwd=str(tmp_path),
    )
    assert proc.returncode == 0
    assert re.fullmatch(
        re.escape(f"autometta {__version__} (commit {_head(ROOT)}") + r"(-dirty)?\)\n", proc.stdout
    ), proc.stdout


@pytest.mark.skipif(not HAVE_GIT, reason="git not installed")
def test_checkout_version_comes_from_git(snapshot, tmp_path):
    """``python -m autometta --version`` from a checkout names its HEAD (no build info there)."""
    proc = subprocess.run(
        [sys.executable, "-m", "autometta", "--version"], stdout=subprocess.PIPE, universal_newlines=True,
        env=_env(), cwd=str(snapshot),
    )
    assert proc.returncode == 0
    assert proc.stdout == f"autometta {__version__} (commit {_head(snapshot)})\n"


def test_version_is_unknown_when_the_package_is_not_a_repo_top_level(snapshot, tmp_path):
    """A package copied into some other repo's sub-folder (a venv inside a checkout) does not
    borrow that repo's commit."""
    repo = tmp_path / "repo"
    shutil.copytree(snapshot, repo)
    nested = repo / "zz-venv" / "site-packages"
    shutil.copytree(snapshot / "autometta", nested / "autometta")
    proc = subprocess.run(
        [sys.executable, "-c", "from autometta.version import describe; print(describe())"],
        stdout=subprocess.PIPE, universal_newlines=True, env=_env(), cwd=str(nested),
    )
    assert proc.returncode == 0
    assert proc.stdout == f"autometta {__version__} (commit unknown)\n"


@pytest.mark.skipif(not HAVE_GIT, reason="git not installed")
def test_two_clones_of_one_commit_build_the_same_bytes_and_the_ledger_knows_each(snapshot, tmp_path):
    clones = []
    for name in ("clone-a", "clone-b"):
        dest = tmp_path / name
        subprocess.run(["git", "clone", "-q", str(snapshot), str(dest)], check=True, env=_env())
        clones.append(dest)
    ledger_home = tmp_path / "state"
    env = dict(_env(), XDG_STATE_HOME=str(ledger_home))
    digests = [_build(c, tmp_path / f"{c.name}.pyz", env=env) for c in clones]
    assert digests[0] == digests[1]
    ledger = json.loads((ledger_home / "autometta" / "builds.json").read_text())
    assert ledger[digests[0]] == os.path.realpath(clones[1])  # the newest build of those bytes

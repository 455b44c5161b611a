"""autometta.resources reads the same bytes from a checkout, an installed package and the pyz.

The three layouts are made from one frozen copy of the tree (plus a nested
folder and a hidden file the real trees may not have), and the same probe runs
in each; the probe's answers must be identical and match the files on disk.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from autometta import resources  # noqa: E402
from autometta.errors import UserError  # noqa: E402

PY39 = Path("/root/.pyenv/versions/3.9.18/bin/python3")
PY313 = Path("/root/.pyenv/versions/3.13.0/bin/python3")
DATA_TREES = ("templates", "schemas")

#: Runs in a child interpreter with sys.argv[1] first on sys.path; prints what it read.
PROBE = r"""
import hashlib, json, sys
sys.path.insert(0, sys.argv[1])
from autometta import resources
from autometta.errors import UserError
out = {"location": resources.location(), "module": resources.__file__, "files": {}, "dirs": {}, "errors": {}}
def walk(rel):
    names = resources.list_dir(rel)
    out["dirs"][rel] = names
    for name in names:
        if name.endswith("/"):
            walk(rel + "/" + name[:-1])
        else:
            path = rel + "/" + name
            data = resources.read_bytes(path)
            try:
                same_text = resources.read_text(path) == data.decode("utf-8")
            except UserError as exc:  # binary: read_text refuses it, naming the file
                same_text = None if repr(path) in str(exc) else "wrong message"
            out["files"][path] = [hashlib.sha256(data).hexdigest(), same_text]
for root in resources.ROOTS:
    walk(root)
for bad in ("templates/zz-no-such-file.md", "templates/../pyproject.toml", "templates/zz-test-sub",
            "/etc/passwd", "autometta/cli.py"):
    try:
        resources.read_bytes(bad)
        out["errors"][bad] = None
    except UserError as exc:
        out["errors"][bad] = str(exc)
try:
    resources.list_dir("schemas/zz-no-such-dir")
    out["errors"]["list"] = None
except UserError as exc:
    out["errors"]["list"] = str(exc)
print(json.dumps(out))
"""


def _env() -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "GIT_"))}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _hidden(name: str) -> bool:
    return name.startswith(".") or name == "__pycache__" or name.endswith((".pyc", ".pyo"))


def _expected(root: Path) -> dict:
    """What the probe should report for the data trees under ``root``, read from disk."""
    files, dirs = {}, {}
    for tree in DATA_TREES:
        for dirpath, dirnames, filenames in os.walk(root / tree):
            dirnames[:] = [d for d in dirnames if not _hidden(d)]
            rel = Path(dirpath).relative_to(root).as_posix()
            dirs[rel] = sorted([d + "/" for d in dirnames] + [f for f in filenames if not _hidden(f)])
            for name in filenames:
                if _hidden(name):
                    continue
                data = Path(dirpath, name).read_bytes()
                try:
                    data.decode("utf-8")
                    text_ok = True
                except UnicodeDecodeError:
                    text_ok = None
                files[f"{rel}/{name}"] = [hashlib.sha256(data).hexdigest(), text_ok]
    return {"files": files, "dirs": dirs}


def _probe(python: Path, path_entry: Path, cwd: Path) -> dict:
    proc = subprocess.run(
        [str(python), "-c", PROBE, str(path_entry)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        universal_newlines=True,
        env=_env(),
        cwd=str(cwd),
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _interpreters() -> List[pytest.param]:
    return [
        pytest.param(Path(sys.executable), id="current"),
        pytest.param(PY39, id="3.9", marks=pytest.mark.skipif(not PY39.exists(), reason=f"{PY39} absent")),
        pytest.param(PY313, id="3.13", marks=pytest.mark.skipif(not PY313.exists(), reason=f"{PY313} absent")),
    ]


def _setuptools_python() -> Optional[str]:
    """An interpreter with setuptools >= 62.3: this one, else python3 on PATH or a pyenv one
    (3.12+ venvs come without setuptools, and the build needs no network this way)."""
    check = "import setuptools, sys; v = setuptools.__version__.split('.'); sys.exit(0 if (int(v[0]), int(v[1])) >= (62, 3) else 1)"
    candidates = [sys.executable, shutil.which("python3") or ""]
    candidates += sorted(str(p) for p in Path("/root/.pyenv/versions").glob("3.*/bin/python3"))
    for python in candidates:
        if not python or not os.path.exists(python):
            continue
        try:
            proc = subprocess.run([python, "-c", check], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  env=_env(), timeout=60)
        except (OSError, subprocess.SubprocessError):
            continue
        if proc.returncode == 0:
            return python
    return None


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory) -> Path:
    """A frozen copy of the project, with a nested folder, a CRLF file and a hidden file."""
    dest = tmp_path_factory.mktemp("snap") / "src"
    dest.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for tree in ("autometta", *DATA_TREES):
        shutil.copytree(ROOT / tree, dest / tree, ignore=ignore)
    for name in ("build_pyz.py", "pyproject.toml", "LICENSE", "README.md"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, dest / name)
    if not (dest / "README.md").exists():  # pyproject names it; being written elsewhere
        (dest / "README.md").write_text("autometta\n")
    (dest / "templates" / "zz-test-sub").mkdir()
    (dest / "templates" / "zz-test-sub" / "nested.md").write_bytes(b"nested\r\nline \xe2\x9c\x93\n")
    (dest / "templates" / "zz-test-sub" / "deeper").mkdir()
    (dest / "templates" / "zz-test-sub" / "deeper" / "blob.bin").write_bytes(bytes(range(256)))
    (dest / "templates" / ".hidden-scratch").write_text("never shipped\n")
    return dest


@pytest.fixture(scope="module")
def pyz(snapshot, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pyz") / "autometta.pyz"
    proc = subprocess.run(
        [sys.executable, str(snapshot / "build_pyz.py"), "--output", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, env=_env(),
    )
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture(scope="module")
def installed(snapshot, tmp_path_factory) -> Path:
    """The package as pip installs it: setuptools' build_py output, which is what a wheel's
    purelib holds, built from pyproject.toml with no network and no ``wheel`` package."""
    builder = _setuptools_python()
    if builder is None:
        pytest.skip("no interpreter here has setuptools >= 62.3 (needed for the '**' package-data globs)")
    work = tmp_path_factory.mktemp("inst")
    src = work / "src"
    shutil.copytree(snapshot, src)  # setuptools may write next to the sources; not in the checkout
    lib = work / "site-packages"
    proc = subprocess.run(
        [builder, "-c", "from setuptools import setup; setup()", "-q", "build_py", "--build-lib", str(lib)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, env=_env(), cwd=str(src),
    )
    assert proc.returncode == 0, proc.stderr
    return lib


# ------------------------------------------------------------------ in-process, this checkout


def test_checkout_reads_every_data_file_byte_for_byte():
    assert resources.location().startswith("checkout ")
    expected = _expected(ROOT)
    for rel in expected["files"]:
        assert resources.read_bytes(rel) == (ROOT / rel).read_bytes(), rel
    for rel, names in expected["dirs"].items():
        assert resources.list_dir(rel) == names, rel


def test_read_text_is_utf8_with_line_endings_untouched():
    some = sorted(_expected(ROOT)["files"])
    assert some, "templates/ and schemas/ are empty"
    for rel in some:
        data = (ROOT / rel).read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        assert resources.read_text(rel) == text


@pytest.mark.parametrize(
    "relpath",
    [
        "templates/../pyproject.toml",
        "../templates/README.md",
        "schemas/../../etc/passwd",
        "templates/sub/../../..",
        "..",
        "/etc/passwd",
        "templates\\..\\pyproject.toml",
        "autometta/cli.py",
        "pyproject.toml",
        "",
        "templates",
        "templates/.hidden-scratch",
        "schemas/__pycache__/x.pyc",
    ],
)
def test_paths_outside_the_resource_folders_are_refused(relpath):
    with pytest.raises(UserError) as info:
        resources.read_bytes(relpath)
    assert repr(relpath) in str(info.value)


def test_missing_resource_is_a_user_error_naming_it():
    with pytest.raises(UserError) as info:
        resources.read_text("templates/zz-no-such-template.md")
    assert "'templates/zz-no-such-template.md' not found" in str(info.value)
    with pytest.raises(UserError) as info:
        resources.list_dir("schemas/zz-no-such-dir")
    assert "schemas/zz-no-such-dir/" in str(info.value)
    with pytest.raises(UserError):
        resources.read_bytes("templates")  # a folder is not a file
    with pytest.raises(UserError):
        resources.list_dir("templates/..")


def test_roots_can_be_listed():
    assert resources.list_dir("templates/") == resources.list_dir("templates")
    assert resources.list_dir("./schemas") == resources.list_dir("schemas")


# ------------------------------------------------------------------ the three layouts, one tree


def _check(report: dict, snapshot: Path, location_prefix: str) -> None:
    assert report["location"].startswith(location_prefix), report["location"]
    expected = _expected(snapshot)
    assert report["files"] == expected["files"]
    assert report["dirs"] == expected["dirs"]
    assert "zz-test-sub/" in report["dirs"]["templates"]
    assert ".hidden-scratch" not in report["dirs"]["templates"]
    errors = report["errors"]
    assert "'templates/zz-no-such-file.md' not found" in errors["templates/zz-no-such-file.md"]
    assert "refused" in errors["templates/../pyproject.toml"]
    assert "not found" in errors["templates/zz-test-sub"]
    assert errors["/etc/passwd"] and errors["autometta/cli.py"]
    assert "schemas/zz-no-such-dir/" in errors["list"]


@pytest.mark.parametrize("python", _interpreters())
def test_checkout_layout(python, snapshot, tmp_path):
    report = _probe(python, snapshot, tmp_path)
    assert report["module"] == str(snapshot / "autometta" / "resources.py")
    _check(report, snapshot, "checkout ")


@pytest.mark.parametrize("python", _interpreters())
def test_pyz_layout(python, pyz, snapshot, tmp_path):
    report = _probe(python, pyz, tmp_path)
    assert report["module"].startswith(str(pyz) + os.sep)
    _check(report, snapshot, "pyz ")


@pytest.mark.parametrize("python", _interpreters())
def test_installed_layout(python, installed, snapshot, tmp_path):
    report = _probe(python, installed, tmp_path)
    assert report["module"] == str(installed / "autometta" / "resources.py")
    _check(report, snapshot, "installed package ")


def test_three_layouts_agree(pyz, installed, snapshot, tmp_path):
    reports = [_probe(Path(sys.executable), where, tmp_path) for where in (snapshot, pyz, installed)]
    strip = [{k: v for k, v in r.items() if k in ("files", "dirs")} for r in reports]
    assert strip[0] == strip[1] == strip[2]


def test_installed_package_holds_every_module_and_data_file(installed, snapshot):
    """pyproject.toml lists the packages by hand; a new sub-package that is not listed
    would be missing from pip installs (but not from the pyz)."""
    shipped = sorted(p.relative_to(installed).as_posix() for p in installed.rglob("*") if p.is_file())
    modules = sorted(
        p.relative_to(snapshot).as_posix() for p in (snapshot / "autometta").rglob("*.py")
        if "__pycache__" not in p.parts
    )
    data = sorted(f"autometta/_data/{rel}" for rel in _expected(snapshot)["files"])
    missing = sorted(set(modules) - set(shipped))
    assert missing == [], (
        "pip installs would lack these modules; add their packages to [tool.setuptools] packages "
        f"in pyproject.toml: {missing}"
    )
    assert shipped == sorted(modules + data)

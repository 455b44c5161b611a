#!/usr/bin/env python3
"""Build ``dist/autometta.pyz``: the whole tool as one reproducible zipapp.

    python3 build_pyz.py [--output PATH] [--python "/usr/bin/env python3"]

The archive holds:

* ``__main__.py``                 answers ``--version`` (the line is written in at build time),
                                  else installs the bytecode cache (``autometta/bytecache.py``),
                                  calls ``autometta.cli.main()`` and exits with its code;
* ``autometta/**.py``             the package (sources only, no ``__pycache__``);
* ``autometta/_data/templates/``  the top-level ``templates/`` tree;
* ``autometta/_data/schemas/``    the top-level ``schemas/`` tree;
* ``autometta/_build.json``       ``{"commit", "dirty", "version"}`` read with git now.

After a build, the pyz's sha256 and the checkout's path are noted in a
per-user ledger (``~/.local/state/autometta/builds.json``, see
``autometta.paths.build_ledger``; skipped with ``--no-source``), so
``check-deps`` can tell a copied pyz is older than its checkout.

Two builds of the same tree give the same bytes: entries are sorted, every
entry carries the same timestamp (1980-01-01 00:00:00, or ``SOURCE_DATE_EPOCH``
when set), the same permissions (0644 files, 0755 directories), the same
creator system (Unix) and the same deflate level; nothing records the build
time, the host or the folder. The bytes do depend on the zlib that
CPython links (every interpreter here uses the same system zlib).

Standard library only; runs on Python 3.9 and later. ``zipfile`` is used
directly (not ``zipapp``) so timestamps and permissions are ours to set.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from typing import Dict, List, Optional, Sequence, Tuple

ROOT = os.path.dirname(os.path.abspath(__file__))
PACKAGE = "autometta"
#: top-level data trees -> where they live inside the package
DATA_TREES = ("templates", "schemas")
DATA_PREFIX = PACKAGE + "/_data/"
BUILD_INFO = PACKAGE + "/_build.json"
DEFAULT_OUTPUT = os.path.join(ROOT, "dist", "autometta.pyz")
DEFAULT_PYTHON = "/usr/bin/env python3"

FIXED_DATE = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644
DIR_MODE = 0o040755
COMPRESS_LEVEL = 9
#: Entries stored uncompressed: ``__main__.py`` answers ``--version`` without importing zlib to inflate itself.
STORED = frozenset({"__main__.py"})
UNIX = 3  # ZipInfo.create_system

MAIN_PY = '''\
"""Entry point of the autometta zipapp: ``python3 autometta.pyz ...``."""
import sys

VERSION = @VERSION@  # what autometta.version.describe() says of this build (build_pyz.py writes it here)

if sys.argv[1:2] in (["--version"], ["version"]):  # as autometta.cli.main: before the cache, nothing imported
    print(VERSION)
    sys.exit(0)

import gc  # noqa: E402

gc.disable()  # no collection while start-up imports: cli.main freezes what they made, then collects as usual


def _bytecache():
    """autometta.bytecache, compiled once: zipimport compiles each module it imports twice (its spec asks for
    the file name, which zipimport finds by compiling), and this one cannot come from the cache it installs."""
    import zipimport
    from importlib.util import module_from_spec, spec_from_file_location

    import autometta

    name, folder = "autometta.bytecache", autometta.__path__[0]
    loader = zipimport.zipimporter(folder)
    module = module_from_spec(spec_from_file_location(name, folder + "/bytecache.py", loader=loader))
    sys.modules[name] = module
    try:
        exec(loader.get_code(name), module.__dict__)
    except BaseException:
        del sys.modules[name]
        raise
    autometta.bytecache = module
    return module


_bytecache().install()  # bytecode from a per-user cache, compiled on first use (autometta/bytecache.py)

from autometta.cli import main  # noqa: E402

sys.exit(main(started=True))
'''


class BuildError(Exception):
    pass


# --------------------------------------------------------------------------- inputs


def _skipped(name: str) -> bool:
    """Names never shipped: hidden files (``.DS_Store``, editor swap files) and bytecode.

    Hidden names are skipped because setuptools' ``**/*`` package-data glob skips
    them too, so the pyz and an installed package carry the same data files.
    """
    return name.startswith(".") or name == "__pycache__" or name.endswith((".pyc", ".pyo"))


def _walk(top: str, only_py: bool) -> List[str]:
    """Files under ``top`` as sorted '/'-separated paths relative to ``top``."""
    found = []
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if not _skipped(d))
        for name in filenames:
            if _skipped(name) or (only_py and not name.endswith(".py")):
                continue
            rel = os.path.relpath(os.path.join(dirpath, name), top)
            found.append(rel.replace(os.sep, "/"))
    return sorted(found)


def _read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def collect_files(root: str = ROOT) -> Dict[str, bytes]:
    """Archive name -> content for everything except the build info."""
    package_dir = os.path.join(root, PACKAGE)
    if not os.path.isfile(os.path.join(package_dir, "__init__.py")):
        raise BuildError(f"{package_dir}/__init__.py not found; run build_pyz.py from an autometta checkout")
    files: Dict[str, bytes] = {}
    for rel in _walk(package_dir, only_py=True):
        name = f"{PACKAGE}/{rel}"
        if name.startswith(DATA_PREFIX):
            raise BuildError(f"{name} clashes with the bundled data folder {DATA_PREFIX}; move it")
        files[name] = _read(os.path.join(package_dir, *rel.split("/")))
    for tree in DATA_TREES:
        top = os.path.join(root, tree)
        if not os.path.isdir(top):
            raise BuildError(f"{top} not found; the pyz needs the top-level {tree}/ folder")
        for rel in _walk(top, only_py=False):
            files[f"{DATA_PREFIX}{tree}/{rel}"] = _read(os.path.join(top, *rel.split("/")))
    return files


def read_version(root: str = ROOT) -> str:
    """``__version__`` from ``autometta/__init__.py``, read without importing it."""
    source = _read(os.path.join(root, PACKAGE, "__init__.py")).decode("utf-8")
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets
        ):
            value = node.value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                return value.value
    raise BuildError(f"no __version__ = '...' in {PACKAGE}/__init__.py")


def _git(root: str, *args: str) -> Optional[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE")}
    try:
        proc = subprocess.run(
            ["git", "-C", root, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0:
        return None
    return proc.stdout.decode("utf-8", "replace")


def git_info(root: str = ROOT) -> Tuple[str, bool]:
    """(12-character commit, dirty) of the checkout; ("unknown", False) without git.

    "dirty" means the shipped inputs (the package, the data trees) differ from
    that commit, tracked or untracked; other files in the tree do not count.
    """
    head = _git(root, "rev-parse", "--verify", "HEAD")
    if not head or not head.strip():
        return "unknown", False
    commit = head.strip()[:12]
    status = _git(root, "status", "--porcelain", "--untracked-files=all", "--", PACKAGE, *DATA_TREES)
    dirty = status is None or any(line.strip() for line in status.splitlines())
    return commit, dirty


def build_info(root: str = ROOT) -> bytes:
    commit, dirty = git_info(root)
    info = {"commit": commit, "dirty": dirty, "version": read_version(root)}
    return (json.dumps(info, sort_keys=True, indent=2) + "\n").encode("utf-8")


def main_py(info: bytes) -> bytes:
    """``__main__.py`` for a build whose ``_build.json`` is ``info``: it answers ``--version`` itself."""
    doc = json.loads(info)
    line = f"autometta {doc['version']} (commit {doc['commit']}{'-dirty' if doc['dirty'] else ''})"
    return MAIN_PY.replace("@VERSION@", repr(line)).encode("utf-8")


def record_build(digest: str, root: str) -> None:
    """Note in the per-user ledger that the pyz ``digest`` was built from ``root``."""
    sys.path.insert(0, root)
    try:
        from autometta.paths import build_ledger
    finally:
        sys.path.pop(0)
    ledger = build_ledger()
    try:
        data = json.loads(ledger.read_text()) if ledger.is_file() else {}
    except (OSError, ValueError):
        data = {}
    if not isinstance(data, dict):
        data = {}
    data[digest] = os.path.realpath(root)
    if len(data) > 200:  # keep the newest entries only
        data = dict(list(data.items())[-200:])
    try:
        ledger.parent.mkdir(parents=True, exist_ok=True)
        tmp = f"{ledger}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, ledger)
    except OSError:
        pass  # the ledger only powers a staleness warning


# --------------------------------------------------------------------------- archive


def entry_date() -> Tuple[int, int, int, int, int, int]:
    """The one timestamp every entry carries."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not epoch:
        return FIXED_DATE
    try:
        seconds = int(epoch)
    except ValueError:
        raise BuildError(f"SOURCE_DATE_EPOCH={epoch!r} is not an integer number of seconds") from None
    stamp = time.gmtime(max(seconds, 315532800))  # zip cannot store dates before 1980
    return tuple(stamp[:6])  # type: ignore[return-value]


def _dirs_of(names: Sequence[str]) -> List[str]:
    """Every parent folder of ``names`` as ``a/``, ``a/b/``: zipimport needs them on
    3.9 to find namespace packages (package folders without ``__init__.py``)."""
    dirs = set()
    for name in names:
        parts = name.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]) + "/")
    return sorted(dirs)


def archive_bytes(files: Dict[str, bytes], shebang: str) -> bytes:
    """The pyz: a shebang line, then a zip of ``files`` plus their folders, sorted."""
    date = entry_date()
    entries: Dict[str, Optional[bytes]] = dict(files)
    for folder in _dirs_of(list(files)):
        entries[folder] = None
    buffer = io.BytesIO()
    buffer.write(f"#!{shebang}\n".encode("utf-8"))
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=date)
            info.create_system = UNIX
            data = entries[name]
            if data is None:
                info.external_attr = (DIR_MODE << 16) | 0x10  # 0x10: MS-DOS directory flag
                info.compress_type = zipfile.ZIP_STORED
                archive.writestr(info, b"")
            else:
                info.external_attr = FILE_MODE << 16
                if name in STORED:
                    info.compress_type = zipfile.ZIP_STORED
                    archive.writestr(info, data)
                else:
                    info.compress_type = zipfile.ZIP_DEFLATED
                    archive.writestr(info, data, compresslevel=COMPRESS_LEVEL)
    return buffer.getvalue()


def write_executable(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically with mode 0755."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".autometta-pyz-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o755)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def build(output: str = DEFAULT_OUTPUT, python: str = DEFAULT_PYTHON, root: str = ROOT,
          record_source: bool = True) -> str:
    """Build the pyz at ``output``; return its sha256 (hex)."""
    python = python.strip()
    if not python or "\n" in python or "\r" in python:
        raise BuildError(f"--python {python!r} cannot be a shebang interpreter; give e.g. '/usr/bin/env python3'")
    files = collect_files(root)
    files[BUILD_INFO] = build_info(root)
    files["__main__.py"] = main_py(files[BUILD_INFO])
    data = archive_bytes(files, python)
    write_executable(output, data)
    digest = hashlib.sha256(data).hexdigest()
    if record_source:
        record_build(digest, root)
    return digest


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="build_pyz.py", description="Build the autometta zipapp.")
    parser.add_argument("--output", default=DEFAULT_OUTPUT, help="where to write the pyz (default: dist/autometta.pyz)")
    parser.add_argument(
        "--python", default=DEFAULT_PYTHON, help=f"interpreter for the shebang line (default: {DEFAULT_PYTHON!r})"
    )
    parser.add_argument(
        "--no-source", action="store_true",
        help="do not note this build's checkout in the per-user ledger (no staleness check for this copy)",
    )
    args = parser.parse_args(argv)
    try:
        digest = build(args.output, args.python, record_source=not args.no_source)
    except (BuildError, OSError) as exc:
        print(f"build_pyz.py: {exc}", file=sys.stderr)
        return 1
    print(args.output)
    print(f"sha256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Bytecode for the pyz that survives between runs.

A zipapp carries sources only (so one build runs on every interpreter and two
builds are byte-identical), and ``zipimport`` compiles every module it imports
from source, on every run. :func:`install` puts a finder in front of it, for
this package only, that takes each module's code object from a per-user cache
and puts it there the first time a module is compiled.

* **Where**: ``$XDG_CACHE_HOME/autometta/pyc/`` (``~/.cache/autometta/pyc/``;
  ``~/Library/Caches/autometta/pyc/`` on macOS), one folder per build and
  interpreter, ``<key>-<cache tag>`` (e.g. ``3f09c2a1b7e4d05c-cpython-311``),
  one file per module, named after it.
* **Key**: CRC-32 and Adler-32 of the archive's central directory, which lists
  every entry's name, sizes and CRC-32: a change to any file in the pyz changes
  the key, while the shebang line (not part of the zip) does not. The cache tag
  names the interpreter's bytecode format.
* **Each file**: a header (:data:`FORMAT`, the interpreter's magic number, the
  key, a CRC-32 of the rest), whether the module is a package, then the code
  object in ``marshal`` form. A file whose header or checksum does not match
  (truncated, corrupt, copied from another build or interpreter) is ignored:
  the module is compiled from the zip as without a cache, and the file written
  again.
* **Races**: a file is written to a temporary name and renamed into place, so
  two runs filling the cache at once each leave a whole file (the same bytes).
* **Unusable cache**: a folder that cannot be created or written, or that is
  not the user's own or is writable by others, is left alone and the run
  imports from the zip as it would without a cache. Nothing here prints or
  raises.
* **Not** ``__pycache__``: ``PYTHONDONTWRITEBYTECODE`` and ``-B`` govern the
  bytecode Python writes beside sources and leave this cache alone (many
  containers set the variable, and every tick would compile again); point
  ``XDG_CACHE_HOME`` somewhere read-only to go without it.
* **Pruning**: when a new build's folder is created, folders of builds not
  used for 30 days, and all but the 10 most recently used, are removed
  (:mod:`autometta.bytecache_fill`). A folder in use has its time refreshed
  once a day.

Learned from ``shiv`` and ``pex`` (both extract the archive into a per-user
folder named after the build and let Python write ``__pycache__`` there) and
from ``zipimport`` (which reads bytecode only from inside the archive): here
nothing is extracted; modules, data files and ``__file__`` stay in the zip, as
without a cache, and only code objects live outside it.

This module is compiled from the zip on every run (it loads the others), so it
is kept small: the finder and its loader are in :mod:`autometta.bytecache_finder`,
whose code this module takes from the cache too (compiled from the zip, once,
when it is not there), and what writes the cache is in
:mod:`autometta.bytecache_fill`, loaded (and cached) on the first miss.
"""

from __future__ import annotations

import marshal
import os
import sys
import time
import zipimport
import zlib

try:
    import _imp
    from importlib.util import MAGIC_NUMBER
except ImportError:  # pragma: no cover - not CPython
    MAGIC_NUMBER = b""

#: first bytes of every cache file: the layout below, version 1
FORMAT = b"amc1"
#: FORMAT, magic number (4), key (16 hex digits), CRC-32 (4) of the rest: flags (4) and payload
HEADER_SIZE = 32
PACKAGE = 1  #: flag: the module is a package (its ``__init__.py``)
_DAY = 86400

#: the cache root :func:`install` is using in this process, or None
_active = None  # type: str | None


def cache_root(env=None) -> str:
    """``$XDG_CACHE_HOME/autometta/pyc`` (``~/.cache``, ``~/Library/Caches`` on macOS when unset)."""
    environ = os.environ if env is None else env
    base = environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):  # unset, empty or relative: the XDG spec says ignore it
        home = environ.get("HOME") or os.path.expanduser("~")
        caches = ("Library", "Caches") if sys.platform == "darwin" else (".cache",)
        base = os.path.join(home, *caches)
    return os.path.join(base, "autometta", "pyc")


_CODE = type(cache_root.__code__)


def active_root():
    """The cache root this process loads bytecode from, or None (not a pyz, or no usable cache)."""
    return _active


def archive_key(archive: str) -> str:
    """16 hex digits naming the zip's contents: checksums of its central directory."""
    with open(archive, "rb") as handle:
        size = handle.seek(0, 2)
        tail_size = min(size, 22 + 65535)  # the end record, after a comment of at most 64 KiB
        handle.seek(size - tail_size)
        tail = handle.read(tail_size)
        end = tail.rfind(b"PK\x05\x06")
        if end < 0 or len(tail) - end < 22:
            raise ValueError(f"{archive}: no zip end record")
        directory_size = int.from_bytes(tail[end + 12:end + 16], "little")
        start = size - tail_size + end - directory_size
        if start < 0:
            raise ValueError(f"{archive}: bad zip end record")
        handle.seek(start)
        directory = handle.read(directory_size) + tail[end:end + 22]
    return "%08x%08x" % (zlib.crc32(directory), zlib.adler32(directory))


def install(root=None) -> bool:
    """Load this package's modules through the cache under ``root`` (default :func:`cache_root`).

    Does nothing (False) unless this module was itself imported from a zip;
    never raises. ``root`` is given explicitly by launchers whose child gets
    someone else's environment (the runner gets the agent's).
    """
    global _active
    loader = globals().get("__loader__")
    if not isinstance(loader, zipimport.zipimporter) or not MAGIC_NUMBER:
        return False
    if any(getattr(finder, "bytecache_root", None) for finder in sys.meta_path):
        return _active is not None
    try:
        tag = sys.implementation.cache_tag
        root = cache_root() if root is None else root
        if not tag or not root:
            return False
        key = archive_key(loader.archive)
        folder = os.path.join(root, f"{key}-{tag}")
        created = _usable(root, folder)
        if created is None:
            return False
        package = __name__.rpartition(".")[0]
        header = FORMAT + MAGIC_NUMBER + key.encode("ascii")
        module, compiled = _finder_module(loader.archive, package, folder, header)
        finder = module.Finder(loader.archive, package, root, folder, header)
        finder.new_folder = created  # the first write prunes old builds' folders (bytecache_fill.write)
        sys.meta_path.insert(0, finder)
        if compiled is not None:
            from .bytecache_fill import write

            write(finder, module.__name__, compiled, 0)  # the finder's module: no package
    except Exception:  # noqa: BLE001 - the cache is an optimisation; plain zip import still works
        return False
    _active = root
    return True


def _usable(root: str, folder: str):
    """None unless ``folder`` (created when missing) is the user's alone; else whether this run created it."""
    created = False
    try:
        st = os.stat(folder)
    except FileNotFoundError:
        os.makedirs(root, mode=0o700, exist_ok=True)
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:  # another run got there first
            pass
        else:
            created = True
        st = os.stat(folder)
    uid = os.getuid()
    for info in (st, os.stat(root)):
        if info.st_uid != uid or info.st_mode & 0o022 or (info.st_mode & 0o170000) != 0o040000:
            return None  # someone else could put code in it
    if st.st_mtime < time.time() - _DAY:
        try:
            os.utime(folder)  # in use: not pruned
        except OSError:
            pass
    return created


def read_code(folder: str, header: bytes, fullname: str):
    """(code, is_package) of ``fullname`` from the cache ``folder``, or (None, False) when its file is
    missing, damaged or for another build or interpreter (``header``: :data:`FORMAT`, magic number, key)."""
    try:
        with open(os.path.join(folder, fullname), "rb") as handle:
            data = handle.read()
    except OSError:
        return None, False
    if data[:24] != header or len(data) < HEADER_SIZE \
            or int.from_bytes(data[24:28], "little") != zlib.crc32(data[28:]):
        return None, False
    try:
        code = marshal.loads(data[HEADER_SIZE:])
    except (EOFError, ValueError, TypeError):
        return None, False
    if type(code) is not _CODE:
        return None, False
    return code, bool(int.from_bytes(data[28:32], "little") & PACKAGE)


def _finder_module(archive: str, package: str, folder: str, header: bytes):
    """(the module :mod:`autometta.bytecache_finder`, its code when compiled now, for the cache, else None):
    its code from the cache when there, else from the zip, compiled once (zipimport would compile it twice)."""
    name = f"{package}.bytecache_finder"
    location = os.path.join(archive, package)
    code, _ = read_code(folder, header, name)
    compiled = code is None
    loader = zipimport.zipimporter(location)
    if compiled:
        code = loader.get_code(name)
    module = type(sys)(name)
    module.__file__ = os.path.join(location, "bytecache_finder.py")
    module.__package__ = package
    module.__loader__ = loader  # tracebacks read its source from the zip
    _imp._fix_co_filename(code, module.__file__)  # the same build run from another path
    sys.modules[name] = module
    try:
        exec(code, module.__dict__)
    except BaseException:
        del sys.modules[name]
        raise
    return module, code if compiled else None

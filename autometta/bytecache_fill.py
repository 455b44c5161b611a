"""The writing half of :mod:`autometta.bytecache`: a module's file, pruning old builds' folders.

Kept apart so a run whose modules are all cached compiles only the reading
half (that module is itself compiled from the zip on every run). It imports
nothing of the reading half: what it needs of the format comes as arguments.
"""

from __future__ import annotations

import marshal
import os
import time
import zlib

#: build folders kept: the one in use and the most recently used others
KEEP = 10
#: folders of builds not used for this long are removed
MAX_AGE_DAYS = 30
TRASH = ".trash-"


def prune(root: str, keep: str) -> None:
    """Remove folders unused for MAX_AGE_DAYS and all but the KEEP most recently used; never raises.

    A folder is renamed out of the way before it is deleted, so a run still
    using it only misses from then on (and imports from the zip).
    """
    try:
        found = []
        for entry in os.scandir(root):
            if entry.name != keep and entry.is_dir(follow_symlinks=False):
                found.append((entry.stat(follow_symlinks=False).st_mtime, entry.name))
    except OSError:
        return
    builds = sorted((item for item in found if not item[1].startswith(TRASH)), reverse=True)
    oldest = time.time() - MAX_AGE_DAYS * 86400
    doomed = [name for _, name in found if name.startswith(TRASH)]  # left by a run killed while pruning
    doomed += [name for i, (mtime, name) in enumerate(builds) if i >= KEEP - 1 or mtime < oldest]
    if not doomed:
        return
    import shutil

    for name in doomed:
        path = os.path.join(root, name)
        trash = path if name.startswith(TRASH) else os.path.join(root, f"{TRASH}{os.getpid()}-{name}")
        try:
            os.rename(path, trash)
        except OSError:
            continue
        shutil.rmtree(trash, ignore_errors=True)


def write(finder, fullname: str, code, flags: int) -> None:
    """Cache ``code`` for ``fullname``, its header's ``flags`` (:data:`autometta.bytecache.PACKAGE` for a
    package): a temporary file renamed into place, so a racing run sees either no file or a whole one. The
    first failure (read-only, full, gone) stops writing for this run."""
    if finder.new_folder:  # this run made the build's folder: the first write prunes the others
        finder.new_folder = False
        prune(finder.root, keep=os.path.basename(finder.folder))
    body = flags.to_bytes(4, "little") + marshal.dumps(code)
    data = finder.header + zlib.crc32(body).to_bytes(4, "little") + body
    path = os.path.join(finder.folder, fullname)
    temp = f"{path}.{os.getpid()}.tmp"
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        os.replace(temp, path)
    except OSError:
        finder.writable = False
        try:
            os.unlink(temp)
        except OSError:
            pass

"""The one loader for the files autometta ships: ``templates/...`` and ``schemas/...``.

Callers name a resource by its path in the source tree, e.g.
``read_text("templates/stage-card.md")`` or ``read_bytes("schemas/state.json")``,
and get the same bytes however autometta was started:

* **checkout** -- ``<repo>/autometta/`` runs from source; the files are the
  top-level ``<repo>/templates/`` and ``<repo>/schemas/`` next to it;
* **installed** -- ``pip install`` copied them into the package as
  ``autometta/_data/templates/`` and ``autometta/_data/schemas/``
  (see ``[tool.setuptools]`` in ``pyproject.toml``);
* **pyz** -- ``build_pyz.py`` put them at the same ``autometta/_data/...``
  inside the zip; they are read through the zipimport loader, never extracted.

The package has ``_data/`` next to its modules in the last two cases and not in
a checkout, which is how the modes are told apart. Hidden files and
``__pycache__`` are never listed, matching what the pyz and the wheel carry.
"""

from __future__ import annotations

import os

from .errors import UserError

TYPE_CHECKING = False  # not typing's: an idle tick and status import no typing (tests/test_startup.py)
if TYPE_CHECKING:
    from typing import List, Optional, Tuple

#: the top-level folders that are resources; nothing else may be read through here
ROOTS = ("templates", "schemas")

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_DATA_DIRNAME = "_data"


def _normalise(relpath: str, *, allow_root: bool = False) -> str:
    """``relpath`` as a clean ``root/a/b`` path, or UserError if it could escape the roots."""
    if not isinstance(relpath, str) or not relpath:
        raise UserError(f"resource path {relpath!r} is empty; name one like 'templates/<file>'")
    if "\\" in relpath or "\0" in relpath or relpath.startswith("/"):
        raise UserError(f"resource path {relpath!r} must be relative and use '/', like 'templates/<file>'")
    parts = [p for p in relpath.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise UserError(f"resource path {relpath!r} refused: '..' may not leave the resource folders")
    if any(_hidden(p) for p in parts):
        # not shipped in the pyz or a wheel, so not readable from a checkout either
        raise UserError(f"resource path {relpath!r} refused: hidden files and bytecode are not shipped")
    if not parts or parts[0] not in ROOTS or (len(parts) == 1 and not allow_root):
        raise UserError(f"resource path {relpath!r} must start with one of {', '.join(r + '/' for r in ROOTS)}")
    return "/".join(parts)


def _hidden(name: str) -> bool:
    return name.startswith(".") or name == "__pycache__" or name.endswith((".pyc", ".pyo"))


def _zip_location() -> Optional[Tuple[object, str, str]]:
    """(loader, archive path, package prefix inside it) when running from a zip, else None."""
    loader = globals().get("__loader__")
    archive = getattr(loader, "archive", None)
    prefix = getattr(loader, "prefix", None)
    if isinstance(archive, str) and isinstance(prefix, str) and hasattr(loader, "get_data"):
        prefix = prefix.replace(os.sep, "/")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        return loader, archive, prefix
    return None


def _fs_base() -> Tuple[str, str]:
    """(folder holding ``templates/`` and ``schemas/``, mode name) outside a zip."""
    data = os.path.join(_PACKAGE_DIR, _DATA_DIRNAME)
    if os.path.isdir(data):
        return data, "installed package"
    return os.path.dirname(os.path.abspath(_PACKAGE_DIR)), "checkout"


def _missing(rel: str, where: str) -> UserError:
    return UserError(
        f"resource {rel!r} not found in {where}; this autometta install is incomplete "
        "(reinstall it, or rebuild the pyz with build_pyz.py)"
    )


def read_bytes(relpath: str) -> bytes:
    """The content of ``relpath`` (``templates/...`` or ``schemas/...``)."""
    rel = _normalise(relpath)
    located = _zip_location()
    if located is not None:
        loader, archive, prefix = located
        key = f"{prefix}{_DATA_DIRNAME}/{rel}"
        try:
            return loader.get_data(key)  # type: ignore[attr-defined]
        except OSError:
            raise _missing(rel, archive) from None
    base, mode = _fs_base()
    path = os.path.join(base, *rel.split("/"))
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise _missing(rel, f"{base} ({mode})") from None
    except OSError as exc:
        raise UserError(f"resource {rel!r} unreadable at {path}: {exc.strerror or exc}") from None


def read_text(relpath: str) -> str:
    """``read_bytes`` decoded as UTF-8; line endings are left exactly as shipped."""
    data = read_bytes(relpath)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"resource {relpath!r} is not UTF-8 text (byte {exc.start}); read it with read_bytes") from None


def list_dir(relpath: str) -> List[str]:
    """Sorted names in the resource folder ``relpath`` (e.g. ``"templates"``).

    Sub-folders are listed with a trailing ``/`` (``"prompts/"``) so callers can
    tell them from files; hidden files and ``__pycache__`` are left out.
    """
    rel = _normalise(relpath, allow_root=True)
    located = _zip_location()
    if located is not None:
        _loader, archive, prefix = located
        folder = f"{prefix}{_DATA_DIRNAME}/{rel}/"
        import zipfile

        try:
            with zipfile.ZipFile(archive) as zf:
                names = zf.namelist()
        except (OSError, zipfile.BadZipFile) as exc:
            raise UserError(f"cannot list resource {rel!r}: {archive} unreadable ({exc})") from None
        entries = set()
        for name in names:
            if not name.startswith(folder) or name == folder:
                continue
            head, sep, _rest = name[len(folder):].partition("/")
            if head and not _hidden(head):
                entries.add(head + sep)
        if not entries and not any(n.startswith(folder) for n in names):
            raise _missing(rel + "/", archive)
        return sorted(entries)
    base, mode = _fs_base()
    path = os.path.join(base, *rel.split("/"))
    try:
        with os.scandir(path) as it:
            entries_fs = [e.name + ("/" if e.is_dir() else "") for e in it if not _hidden(e.name)]
    except (FileNotFoundError, NotADirectoryError):
        raise _missing(rel + "/", f"{base} ({mode})") from None
    except OSError as exc:
        raise UserError(f"cannot list resource {rel!r} at {path}: {exc.strerror or exc}") from None
    return sorted(entries_fs)


def location() -> str:
    """Where resources are read from, for ``--debug`` output and bug reports."""
    located = _zip_location()
    if located is not None:
        _loader, archive, prefix = located
        return f"pyz {archive} ({prefix}{_DATA_DIRNAME}/)"
    base, mode = _fs_base()
    return f"{mode} {base}"


__all__ = ["ROOTS", "list_dir", "location", "read_bytes", "read_text"]

"""The finder and loader of :mod:`autometta.bytecache`, kept apart from it so they come from the cache too.

:mod:`autometta.bytecache` is compiled from the zip on every run (it installs the
cache), and compiling costs a run about as much as all it reads from the cache;
this half is taken from the cache like any module (compiled once when it is not
there). How the cache works, and why, is said there.
"""

from __future__ import annotations

import os
import zipimport

import _imp
from importlib.machinery import ModuleSpec

from .bytecache import PACKAGE, read_code


class Finder:
    """A meta path finder for ``<package>.*`` that loads code objects from ``folder``."""

    new_folder = False  #: this run created ``folder``: prune the others

    def __init__(self, archive: str, package: str, root: str, folder: str, header: bytes) -> None:
        self.archive = archive
        self.package = package
        self.root = root
        self.bytecache_root = root  #: marks a finder of this cache (bytecache.install looks)
        self.folder = folder
        self.header = header
        self.loaders = {}  # parent package -> its Loader
        self.writable = True

    def find_spec(self, fullname, path=None, target=None):
        parent, _, name = fullname.rpartition(".")
        if not parent or not (parent == self.package or parent.startswith(self.package + ".")):
            return None
        folder = self.archive + os.sep + parent.replace(".", os.sep)
        if not path or folder not in path:
            return None  # the package came from somewhere else
        loader = self.loaders.get(parent)
        if loader is None:
            try:
                loader = Loader(folder)
            except zipimport.ZipImportError:  # the archive is gone: let zipimport say so
                return None
            loader.finder = self
            self.loaders[parent] = loader
        code, is_package = self.read(fullname)
        if code is None:
            try:
                is_package = loader.is_package(fullname)
            except zipimport.ZipImportError:
                return None  # not in the zip
        base = folder + os.sep + name
        spec = ModuleSpec(fullname, loader, origin=base + (os.sep + "__init__.py" if is_package else ".py"),
                          loader_state=code, is_package=is_package)
        spec.has_location = True
        if is_package:
            spec.submodule_search_locations.append(base)
        return spec

    def read(self, fullname):
        """(code, is_package) from the cache, or (None, False)."""
        return read_code(self.folder, self.header, fullname)


class Loader(zipimport.zipimporter):
    """zipimport's loader for one package folder of the archive (``get_data``, ``get_source``, resources and
    ``archive``/``prefix`` as usual), executing code from the cache, or compiled and then cached."""

    finder = None  # type: Finder

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        spec = module.__spec__
        code, spec.loader_state = spec.loader_state, None
        if code is None:
            code = self.get_code(module.__name__)  # compiled, as zipimport does
            exec(code, module.__dict__)
            if self.finder.writable:
                from .bytecache_fill import write

                flags = PACKAGE if spec.submodule_search_locations is not None else 0
                write(self.finder, module.__name__, code, flags)
            return
        _imp._fix_co_filename(code, spec.origin)  # the same build run from another path
        exec(code, module.__dict__)

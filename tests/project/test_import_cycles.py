"""No import circles in autometta/ (issue 18).

A function-level import hides a circle from Python (the module is imported
when the function runs, by then its importer is whole), not from a reader: two
modules that import each other are one module in two files. This walks every
import statement of every module under ``autometta/``, those inside functions
included, and fails on a circle. Not counted: imports under ``if
TYPE_CHECKING:`` (never run), and the implicit import of a package's
``__init__`` (they hold no logic and import nothing of ours).

:data:`KNOWN` lists the imports that still close a circle, each with the
change that removes it. Nothing may be added to it; an import that goes must
leave it too (the second test says which).
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Set, Tuple

from tests.testing.env import ROOT

#: None left: the core loop's went with the tick/ package, dispatch -> verify.launcher with provision.py, the API
#: transports into their families, and the books audit takes state's and budget's parsers from the tick (which
#: halts the repo itself). Keep it empty: break a new circle instead of listing it.
KNOWN: Dict[Tuple[str, str], str] = {}

PACKAGE = "autometta"


def modules(root: Path, package: str = PACKAGE) -> Dict[str, Tuple[Path, bool]]:
    """Every module of ``package`` under ``root``: name -> (file, is a package's __init__)."""
    out = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        is_init = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_init else parts)] = (path, is_init)
    return out


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(tree: ast.AST) -> Iterator[ast.stmt]:
    """Every import statement, at any depth (functions, methods, branches), but not under TYPE_CHECKING."""
    stack: List[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child):
                stack.extend(child.orelse)
            elif isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child
            else:
                stack.append(child)


def imports(root: Path, package: str = PACKAGE) -> Dict[str, Dict[str, int]]:
    """module -> {module of the package it imports: the line of the (first) import}."""
    known = modules(root, package)
    graph: Dict[str, Dict[str, int]] = {}
    for name, (path, is_init) in known.items():
        here = name if is_init else name.rpartition(".")[0]
        edges: Dict[str, int] = {}
        for node in _import_nodes(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            targets: List[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                if node.level:
                    base = here.split(".")[:len(here.split(".")) - (node.level - 1)]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                for alias in node.names:  # from X import y: y is a module of X, or a name in X
                    sub = f"{module}.{alias.name}"
                    targets.append(sub if sub in known else module)
            for target in targets:
                if target in known and target != name:
                    edges.setdefault(target, node.lineno)
        graph[name] = edges
    return graph


def find_cycle(graph: Dict[str, Dict[str, int]], skip: Set[Tuple[str, str]]) -> Optional[List[str]]:
    """One circle of imports (its modules, the first repeated at the end), not using ``skip``; else None."""
    state: Dict[str, int] = {}  # 1: on the path, 2: done
    path: List[str] = []

    def visit(node: str) -> Optional[List[str]]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, {})):
            if (node, nxt) in skip:
                continue
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def _shown(cycle: List[str], graph: Dict[str, Dict[str, int]], root: Path) -> str:
    known = modules(root)
    steps = [f"{a} -> {b} ({known[a][0].relative_to(root)}:{graph[a][b]})" for a, b in zip(cycle, cycle[1:])]
    return "\n  ".join(steps)


def test_autometta_has_no_import_circle_but_the_known_ones():
    graph = imports(ROOT)
    cycle = find_cycle(graph, set(KNOWN))
    assert cycle is None, ("an import circle (break it: move what both need below both, or hand it in):\n  "
                           + _shown(cycle, graph, ROOT))


def test_every_known_circle_is_still_there():
    graph = imports(ROOT)
    gone = [f"{a} -> {b} ({why})" for (a, b), why in KNOWN.items() if b not in graph.get(a, {})]
    assert not gone, "no longer imported: take them out of KNOWN in tests/project/test_import_cycles.py:\n  " + \
        "\n  ".join(gone)


def test_the_walk_sees_imports_in_functions_and_every_form(tmp_path):
    pkg = tmp_path / "autometta"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from .sub import b\n")
    (pkg / "sub" / "b.py").write_text("def g():\n    if True:\n        from .. import c\n")
    (pkg / "c.py").write_text("import autometta.d\nTYPE_CHECKING = False\nif TYPE_CHECKING:\n    from . import a\n")
    (pkg / "d.py").write_text("class K:\n    def m(self):\n        from .a import f\n")
    graph = imports(tmp_path)
    assert graph["autometta.a"] == {"autometta.sub.b": 2} and graph["autometta.c"] == {"autometta.d": 1}
    assert find_cycle(graph, set()) == ["autometta.a", "autometta.sub.b", "autometta.c", "autometta.d",
                                        "autometta.a"]
    assert find_cycle(graph, {("autometta.d", "autometta.a")}) is None

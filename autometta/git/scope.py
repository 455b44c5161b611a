"""Scope and protected paths: does a stage's change stay inside its card? (pure)

A worker may change the files its card names under ``## Deliverables`` and
those matching the globs of an optional ``- **May also change:**`` bullet.
Anything else stops the stage ``out_of_scope_change: <files>``.

Some files decide whether the work is judged fairly, so changing them stops
the stage ``protected_path_changed: <files>`` (the "don't weaken the check"
guard), even when a glob would allow them:

* the stage card itself;
* the acceptance command's own files: the paths it names that existed before
  the stage (``sh scripts/check.sh``, ``pytest tests/test_x.py``, a folder it
  names, and the ``Makefile`` of a ``make`` command);
* CI configuration (``.github/workflows/``, ``.gitlab-ci.yml``, ``.ci/``,
  ``.circleci/``, ``Jenkinsfile``, ... see :data:`CI_PATTERNS`);
* test files (``tests/``, ``test_*.py``, ``*.test.ts``, ... see
  :func:`is_test_file`).

A file named *exactly* (no glob) under Deliverables or May also change is
one the card's author asked for, so the last three do not protect it; the
card itself is always protected.

Globs: ``*`` and ``?`` stay inside one path segment, ``**`` spans any number
of segments, ``[...]`` is a character class; an entry ending in ``/`` (or a
plain path that is a folder prefix of the file) covers everything under it.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from dataclasses import dataclass, field
from typing import Iterable, List, Optional, Sequence, Tuple

#: Stage marker: the change touches files the card neither delivers nor allows.
OUT_OF_SCOPE_MARKER = "out_of_scope_change"
#: Stage marker: the change touches the card, the acceptance command's files, CI config or tests.
PROTECTED_MARKER = "protected_path_changed"

MARKERS = (OUT_OF_SCOPE_MARKER, PROTECTED_MARKER)

#: CI configuration: the checks that run on every push.
CI_PATTERNS = (
    ".github/workflows/**", ".github/actions/**", ".gitlab-ci.yml", ".gitlab-ci/**", ".gitlab/ci/**", ".ci/**",
    ".circleci/**", "Jenkinsfile", "Jenkinsfile.*", "**/Jenkinsfile", ".travis.yml", "azure-pipelines.yml",
    ".azure-pipelines/**", ".buildkite/**", "bitbucket-pipelines.yml", ".drone.yml", "appveyor.yml",
    ".appveyor.yml", ".woodpecker.yml", ".woodpecker/**", ".cirrus.yml", "buildspec.yml", ".semaphore/**",
)

#: Folders whose files are tests (a path segment equal to one of these).
TEST_DIRS = ("test", "tests", "__tests__", "testdata")
#: File names that are tests wherever they are.
TEST_NAMES = (
    "test_*.py", "*_test.py", "conftest.py", "*_test.go", "*.test.[jt]s", "*.test.[jt]sx", "*.test.mjs",
    "*.test.cjs", "*.spec.[jt]s", "*.spec.[jt]sx", "*.spec.mjs", "*.spec.cjs", "*_spec.rb", "*_test.rb",
    "*Test.java", "*Tests.java", "*Test.kt", "*Tests.kt", "*_test.exs", "*_test.dart", "*Tests.swift",
    "*Test.php", "test_*.sh", "*.bats",
)
#: Byte-compiled caches are not tests (they are out of scope unless a glob allows them).
_CACHE_RE = re.compile(r"(^|/)__pycache__/|\.py[co]$")

_GLOB_CHARS = set("*?[")


# ------------------------------------------------------------------ globs


def is_glob(pattern: str) -> bool:
    return any(c in _GLOB_CHARS for c in pattern)


def normalise(path: str) -> Optional[str]:
    """A repo-relative POSIX path, or None for one that is absolute or leaves the repo."""
    text = path.strip()
    if not text or text.startswith("/"):
        return None
    folder = text.endswith("/")
    normal = posixpath.normpath(text)
    if normal == ".." or normal.startswith("../"):
        return None
    if normal == ".":
        return "" if folder else None
    return normal + ("/" if folder else "")


def _glob_regex(pattern: str) -> "re.Pattern[str]":
    out, i, n = [], 0, len(pattern)
    while i < n:
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append(r"(?:[^/]+/)*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(r".*")
            i += 2
        elif c == "*":
            out.append(r"[^/]*")
            i += 1
        elif c == "?":
            out.append(r"[^/]")
            i += 1
        elif c == "[":
            end = pattern.find("]", i + 2)
            if end < 0:
                out.append(re.escape(c))
                i += 1
            else:
                body = pattern[i + 1:end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = end + 1
        else:
            out.append(re.escape(c))
            i += 1
    return re.compile("".join(out) + r"\Z")


def matches(path: str, pattern: str) -> bool:
    """Does repo-relative ``path`` fall under ``pattern`` (a path, a folder, or a glob)?"""
    normal = normalise(pattern)
    if normal is None:
        return False
    if normal == "" or normal.endswith("/"):
        return path.startswith(normal)
    if not is_glob(normal):
        return path == normal or path.startswith(normal + "/")
    regex = _glob_regex(normal)
    if regex.match(path):
        return True
    # a glob naming folders covers what is inside them (``src/*`` covers src/a/b.py too)
    parts = path.split("/")
    return any(regex.match("/".join(parts[:k])) for k in range(1, len(parts)))


def _any(path: str, patterns: Iterable[str]) -> bool:
    return any(matches(path, p) for p in patterns)


# ------------------------------------------------------------------ what is protected


def is_ci_config(path: str) -> bool:
    return _any(path, CI_PATTERNS)


def is_test_file(path: str) -> bool:
    if _CACHE_RE.search(path):
        return False
    parts = path.split("/")
    if any(part in TEST_DIRS for part in parts[:-1]):
        return True
    name = parts[-1]
    return any(_glob_regex(p).match(name) for p in TEST_NAMES)


_SHELL_WORDS = {"&&", "||", "|", ";", "&", "(", ")", "{", "}", "!", "then", "do", "done", "fi", "if", "else"}


def command_paths(command: Optional[str]) -> List[str]:
    """The repo-relative paths an acceptance command names, as written (whether they exist is the caller's).

    ``sh ./scripts/check.sh && pytest -q tests/test_x.py::test_y --cov=src`` gives
    ``scripts/check.sh``, ``tests/test_x.py``, ``src``, and every other word
    that could be a path (``sh``, ``pytest``); a ``make`` command adds its
    ``Makefile``. Quoted sub-commands (``bash -c '...'``) are read too; what
    it redirects its output to is not its file.
    """
    if not command:
        return []
    out: List[str] = []
    pending = [command]
    seen_commands = 0
    while pending and seen_commands < 20:
        seen_commands += 1
        text = pending.pop(0)
        try:
            words = shlex.split(text, comments=True)
        except ValueError:
            words = text.split()
        first, previous = True, ""
        for word in words:
            before, previous = previous, word
            if before == "-c" and any(c.isspace() for c in word):
                pending.append(word)  # a quoted script: bash -c '...'
                continue
            if word in _SHELL_WORDS or word.endswith(";"):
                first = True
                continue
            if _OUTPUT_REDIRECT.match(before) or _OUTPUT_REDIRECT.match(word):
                continue  # what the command writes is its output, not its check
            if first and posixpath.basename(word) in ("make", "gmake"):
                out += ["Makefile", "makefile", "GNUmakefile"]
            first = False
            for candidate in _candidates(word):
                normal = normalise(candidate)
                if normal and normal not in out:
                    out.append(normal.rstrip("/"))
    return [p for p in dict.fromkeys(out) if p]


_OUTPUT_REDIRECT = re.compile(r"^[0-9&]?>>?(?:&?[0-9-]?)?$|^[0-9&]?>>?\S")


def _candidates(word: str) -> List[str]:
    if "=" in word:  # --config=ci/conf.toml, VAR=value
        word = word.split("=", 1)[1]
    word = re.sub(r"^[0-9]?<", "", word)  # an input redirect: the file is read by the check
    if word.startswith("-") or not word or "$" in word or word.startswith("<") or word.startswith(">"):
        return []
    word = word.split("::", 1)[0]  # pytest node ids
    for redirect in ("<", ">"):
        word = word.split(redirect, 1)[0]
    return [word] if word else []


# ------------------------------------------------------------------ the rules


@dataclass(frozen=True)
class Rules:
    """What a stage's card allows. Paths are repo-relative, POSIX."""

    card: str
    deliverables: Tuple[str, ...] = ()
    may_also_change: Tuple[str, ...] = ()
    #: Files the acceptance command names (and folders it names, as ``dir/``) that existed before the stage.
    acceptance_files: Tuple[str, ...] = ()

    @property
    def named(self) -> Tuple[str, ...]:
        """Entries naming a file exactly: the author asked for them, so only the card stays protected."""
        return tuple(n for n in (normalise(p) for p in self.deliverables + self.may_also_change)
                     if n and not is_glob(n) and not n.endswith("/"))


@dataclass
class Finding:
    """The files a change may not touch, by kind; empty lists: the change is in scope."""

    protected: List[str] = field(default_factory=list)
    out_of_scope: List[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.protected and not self.out_of_scope

    @property
    def marker(self) -> Optional[str]:
        if self.protected:
            return PROTECTED_MARKER
        return OUT_OF_SCOPE_MARKER if self.out_of_scope else None

    @property
    def files(self) -> List[str]:
        return self.protected or self.out_of_scope

    def text(self, limit: int = 300) -> Optional[str]:
        """``<marker>: <files>`` as the stage records it, or None when in scope."""
        if self.marker is None:
            return None
        return stall_text(self.marker, self.files, limit)


def stall_text(marker: str, paths: Sequence[str], limit: int = 300) -> str:
    shown = ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")
    return f"{marker}: {shown}"[:limit]


def protected_kind(path: str, rules: Rules) -> Optional[str]:
    """Why ``path`` is protected (``card``, ``acceptance command``, ``CI config``, ``test``), or None."""
    if path == rules.card:
        return "card"
    if path in rules.named:
        return None
    if any(path == a or (a.endswith("/") and path.startswith(a)) for a in rules.acceptance_files):
        return "acceptance command"
    if is_ci_config(path):
        return "CI config"
    if is_test_file(path):
        return "test"
    return None


def classify(changed: Iterable[str], rules: Rules) -> Finding:
    """Sort the paths a stage changed into protected and out-of-scope ones (in the order given)."""
    out = Finding()
    allowed = rules.deliverables + rules.may_also_change
    for path in dict.fromkeys(changed):
        if protected_kind(path, rules):
            out.protected.append(path)
        elif not _any(path, allowed):
            out.out_of_scope.append(path)
    return out

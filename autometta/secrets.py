"""Secret references: where they are written down, how they are resolved, and redaction.

A billing route names its credential by *reference*, never by value. The
references live where the bash version kept them: the first existing file of

1. ``$AUTOMETTA_LOCAL_REFS``,
2. ``$XDG_CONFIG_HOME/autometta/op-refs.local.sh`` (default ``~/.config``),
3. ``op-refs.local.sh`` beside the install (the checkout, or the pyz's folder).

The file is a shell fragment, but it is read, never run: only lines of the
forms ``NAME=value``, ``export NAME=value`` and ``: "${NAME:=value}"`` count
(values may be quoted; no ``$`` expansion). A plain assignment wins over the
environment; ``:=`` fills a name only when the environment leaves it empty.
Names the file and the environment leave unset get the bash version's
placeholders, ``op://YOUR_VAULT/<item>/credential``.

A reference is one of

* ``op://vault/item/field``: ``op-fetch --print REF`` when ``op-fetch`` is on
  ``PATH`` (as the bash version did), else ``op read REF``;
* ``env:NAME``: the variable ``NAME`` of autometta's own environment;
* ``file:PATH``: the file's content without its trailing newline (``~`` is
  expanded; a relative path is relative to the refs file).

A placeholder, an empty reference or anything else is refused with a message
naming the variable and, for real references, the reference; a value is
never put in a message. Every resolved value is registered here, and
:func:`redact` masks registered values, and anything shaped like a key
(:data:`autometta.redact.SHAPES`), in any text autometta writes or shows (tick
log, error lines, stall markers, events, views).
"""

from __future__ import annotations

import os
import re
from collections import namedtuple
from pathlib import Path

from . import files
from . import redact as masking
from .errors import UserError

TYPE_CHECKING = False  # not typing's: an idle tick and status import no typing (tests/test_startup.py)
if TYPE_CHECKING:
    from typing import Dict, List, Mapping, Optional, Tuple

REFS_FILE_NAME = "op-refs.local.sh"

#: The bash version's three references and their placeholders (op-refs.sh).
PLACEHOLDERS: Dict[str, str] = {
    "OP_REF_OPENAI_API_KEY": "op://YOUR_VAULT/openai-api-key/credential",
    "OP_REF_ANTHROPIC_API_KEY": "op://YOUR_VAULT/anthropic-api-key/credential",
    "OP_REF_CLAUDE_CODE_OAUTH_TOKEN": "op://YOUR_VAULT/claude-code-oauth-token/credential",
}
#: A reference holding one of these was never filled in.
PLACEHOLDER_WORDS = ("YOUR_VAULT", "YOUR_ITEM")

#: Seconds one ``op``/``op-fetch`` call may take (1Password may wait for an unlock).
RESOLVE_TIMEOUT = 60.0
#: Values shorter than this are not registered for redaction (they would shred ordinary text).
MIN_REDACT_LENGTH = masking.MIN_LENGTH

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
#: compiled on first use (``re`` keeps them): the tick's log masks with this module, but seldom reads refs
_ASSIGN_RE = rf"^(?:export\s+)?({_NAME})=(.*)$"
_DEFAULT_RE = rf"""^:\s+(["']?)\$\{{({_NAME}):?=(.*)\}}\1\s*(?:[;#].*)?$"""
_EXPORT_ONLY_RE = rf"^export(?:\s+{_NAME})+\s*(?:#.*)?$"


class SecretError(UserError):
    """A reference that cannot be used or resolved; the message never holds a secret."""


# ----------------------------------------------------------------- the refs file

class RefsFile(namedtuple("RefsFile", "path origin assignments skipped candidates", defaults=(None, "", {}, [], []))):
    """The refs file in force: which one was loaded, and what it says.

    A named tuple, not a dataclass or typing's NamedTuple: the tick's log masks with this module, and
    both are slow to import."""

    __slots__ = ()
    path: Optional[Path]  # None
    origin: str  # "": AUTOMETTA_LOCAL_REFS | XDG_CONFIG_HOME | install
    #: name -> (value, only_if_unset) for every line understood
    assignments: Mapping[str, Tuple[str, bool]]  # {}
    #: line numbers of lines that mention OP_REF_ but were not understood
    skipped: List[int]  # []
    candidates: List[Tuple[Path, str]]  # []


class Ref(namedtuple("Ref", "var value source")):
    """One reference variable and where its value came from."""

    __slots__ = ()
    var: str
    value: str
    source: str  # "environment", the refs file's path, or "default"

    @property
    def placeholder(self) -> bool:
        return is_placeholder(self.value)

    @property
    def set(self) -> bool:
        return bool(self.value) and not self.placeholder

    def shown(self) -> str:
        """The reference for a message: real references in full, other text never."""
        return self.value if kind_of(self.value) else "(not a reference)"


def install_folder() -> Path:
    """The folder beside the install: the source checkout, or the folder holding the pyz."""
    from .home import install_root

    root = Path(install_root())
    return root.parent if root.is_file() else root


def refs_candidates(environ: Mapping[str, str]) -> List[Tuple[Path, str]]:
    """Where a refs file is looked for, in order, with the name of each place."""
    out: List[Tuple[Path, str]] = []
    explicit = environ.get("AUTOMETTA_LOCAL_REFS")
    if explicit:
        out.append((Path(explicit).expanduser(), "AUTOMETTA_LOCAL_REFS"))
    home = environ.get("HOME") or os.path.expanduser("~")
    xdg = environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
    out.append((Path(xdg).expanduser() / "autometta" / REFS_FILE_NAME, "XDG_CONFIG_HOME"))
    out.append((install_folder() / REFS_FILE_NAME, "install"))
    return out


def parse_refs(text: str) -> Tuple[Dict[str, Tuple[str, bool]], List[int]]:
    """The assignments a refs file makes, without running it; and the OP_REF_ lines not understood."""
    found: Dict[str, Tuple[str, bool]] = {}
    skipped: List[int] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#") or re.match(_EXPORT_ONLY_RE, line):
            continue
        match = re.match(_DEFAULT_RE, line)
        if match and "$" not in match.group(3):
            found[match.group(2)] = (_unquote_inner(match.group(3)), True)
            continue
        match = re.match(_ASSIGN_RE, line)
        value = _shell_value(match.group(2)) if match else None
        if match and value is not None:
            found[match.group(1)] = (value, False)
        elif "OP_REF_" in line:
            skipped.append(number)
    return found, skipped


def _unquote_inner(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def _shell_value(text: str) -> Optional[str]:
    """The word a shell would assign, for the simple cases; None when it would need expansion."""
    text = text.strip()
    if not text:
        return ""
    quote = text[0]
    if quote in "'\"":
        end = text.find(quote, 1)
        if end < 0:
            return None
        value, rest = text[1:end], text[end + 1:].strip()
        if quote == '"' and ("$" in value or "`" in value or "\\" in value):
            return None
        if rest and not rest.startswith(("#", ";")):
            return None
        return value
    value = re.split(r"\s", text, maxsplit=1)[0]
    rest = text[len(value):].strip()
    if value.endswith(";"):  # `X=ref; export X`
        value, rest = value[:-1], ""
    if any(ch in value for ch in "$`\\'\"()<>|&;") or (rest and not rest.startswith(("#", ";"))):
        return None
    return value


def load_refs_file(environ: Mapping[str, str]) -> RefsFile:
    """The first refs file that exists (see the module docstring); an empty RefsFile when none does."""
    candidates = refs_candidates(environ)
    for path, origin in candidates:
        if path.is_file():
            assignments, skipped = parse_refs(files.read_text(path))
            return RefsFile(path=path, origin=origin, assignments=assignments, skipped=skipped,
                            candidates=candidates)
    return RefsFile(candidates=candidates)


def lookup(var: str, environ: Mapping[str, str], refs: RefsFile) -> Ref:
    """The reference ``var`` holds: the refs file, the environment, then the placeholder."""
    given = refs.assignments.get(var)
    env_value = environ.get(var) or ""
    if given is not None and (not given[1] or not env_value):
        return Ref(var, given[0], str(refs.path))
    if env_value:
        return Ref(var, env_value, "environment")
    return Ref(var, PLACEHOLDERS.get(var, ""), "default")


# -------------------------------------------------------------- the references

def is_placeholder(ref: str) -> bool:
    return any(word in ref for word in PLACEHOLDER_WORDS)


def kind_of(ref: str) -> Optional[str]:
    """``op``, ``env`` or ``file``; None for text that is not a reference."""
    if ref.startswith("op://") and len(ref) > len("op://"):
        return "op"
    if re.match(rf"^env:{_NAME}$", ref):
        return "env"
    if ref.startswith("file:") and len(ref) > len("file:"):
        return "file"
    return None


def resolver(environ: Mapping[str, str]) -> Optional[List[str]]:
    """The argv prefix that prints an ``op://`` reference's value, or None without op-fetch or op."""
    path = environ.get("PATH", os.defpath)
    import shutil  # not at import: the tick's log masks with secrets but seldom resolves one

    fetch = shutil.which("op-fetch", path=path)
    if fetch:
        return [fetch, "--print"]
    op = shutil.which("op", path=path)
    if op:
        return [op, "read"]
    return None


def check(ref: Ref, environ: Mapping[str, str], fix: str) -> None:
    """Refuse a reference that cannot be resolved here, without resolving it.

    ``fix`` says where to set it (the caller knows the route).
    """
    if not ref.value:
        raise SecretError(f"{ref.var} is empty; {fix}")
    if ref.placeholder:
        raise SecretError(f"{ref.var} is still the placeholder {ref.value}; {fix}")
    what = kind_of(ref.value)
    if what is None:
        raise SecretError(f"{ref.var} (from {ref.source}) is not a reference; write op://vault/item/field, "
                          "env:NAME or file:PATH there, never the secret itself")
    if what == "op" and resolver(environ) is None:
        raise SecretError(f"{ref.var} is {ref.value}, but neither op-fetch nor op is on PATH; install the "
                          "1Password CLI (op), or use an env:NAME or file:PATH reference")


_CACHE: Dict[str, str] = {}
_REGISTERED: Dict[str, str] = {}


def resolve(ref: Ref, environ: Mapping[str, str], *, fresh: bool = False) -> str:
    """The secret ``ref`` names; :class:`SecretError` (naming the reference) when it cannot be had.

    Values are cached for the life of the process (a tick is one short
    process) and registered for :func:`redact`. ``fresh`` skips the cache.
    """
    check(ref, environ, "set it in the refs file")
    if not fresh and ref.value in _CACHE:
        return _CACHE[ref.value]
    what = kind_of(ref.value)
    if what == "env":
        name = ref.value[len("env:"):]
        value = environ.get(name) or ""
        if not value:
            raise SecretError(f"{ref.var} is {ref.value}, but {name} is not set in autometta's environment")
    elif what == "file":
        value = _read_secret_file(ref)
    else:
        value = _run_resolver(ref, environ)
    register(value)
    _CACHE[ref.value] = value
    return value


def _read_secret_file(ref: Ref) -> str:
    path = Path(ref.value[len("file:"):]).expanduser()
    if not path.is_absolute() and ref.source not in ("environment", "default"):
        path = Path(ref.source).parent / path
    try:
        with open(path, "r", encoding="utf-8") as handle:
            value = handle.read(64 * 1024).rstrip("\r\n")
    except OSError as exc:
        raise SecretError(f"{ref.var} is {ref.value}, but {path} cannot be read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise SecretError(f"{ref.var} is {ref.value}, but {path} is not UTF-8 text") from None
    if not value.strip():
        raise SecretError(f"{ref.var} is {ref.value}, but {path} is empty")
    return value


def _run_resolver(ref: Ref, environ: Mapping[str, str]) -> str:
    prefix = resolver(environ)
    assert prefix is not None  # check() refused it otherwise
    tool = " ".join([os.path.basename(prefix[0])] + prefix[1:])
    import subprocess

    try:
        proc = subprocess.run(prefix + [ref.value], stdin=subprocess.DEVNULL, capture_output=True,
                              env=dict(environ), timeout=RESOLVE_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise SecretError(f"could not resolve {ref.value} ({ref.var}): `{tool}` took over "
                          f"{RESOLVE_TIMEOUT:g}s; is 1Password locked or offline?") from None
    except OSError as exc:
        raise SecretError(f"could not resolve {ref.value} ({ref.var}): `{tool}` did not start "
                          f"({exc.strerror or exc})") from None
    value = proc.stdout.decode("utf-8", "replace").rstrip("\r\n")
    if proc.returncode != 0 or not value.strip():
        register(value)  # whatever it printed stays out of the message
        said = [line.strip() for line in proc.stderr.decode("utf-8", "replace").splitlines() if line.strip()]
        reason = f"exited {proc.returncode}" if proc.returncode else "printed nothing"
        detail = f": {redact(said[-1])[:200]}" if said else ""
        raise SecretError(f"could not resolve {ref.value} ({ref.var}): `{tool}` {reason}{detail}")
    return value


# ------------------------------------------------------------------- redaction

def mask(value: str) -> str:
    """``****`` and the last four characters (only ``****`` for a short value)."""
    return masking.mask(value)


def register(value: str) -> None:
    """Remember a secret so :func:`redact` hides it from everything autometta writes."""
    global _REDACTOR
    if value and len(value) >= MIN_REDACT_LENGTH and value not in _REGISTERED:
        _REGISTERED[value] = mask(value)
        _REDACTOR = None


def registered() -> List[str]:
    """The secret values this process has resolved (for the commit scan and the runner's log)."""
    return list(_REGISTERED)


_REDACTOR: Optional[masking.Redactor] = None


def redactor() -> masking.Redactor:
    """A :class:`autometta.redact.Redactor` for the registered values and the key shapes."""
    global _REDACTOR
    if _REDACTOR is None:
        _REDACTOR = masking.Redactor(_REGISTERED)
    return _REDACTOR


def redact(text: str) -> str:
    """``text`` with every registered secret, and every key-shaped string, replaced by its mask."""
    if not text:
        return text
    return redactor().text(text)


def redact_doc(doc):
    """A JSON-like document with :func:`redact` applied to every string in it (for views)."""
    return masking.deep(doc, redact)


def forget() -> None:
    """Drop every cached and registered value (tests, and a long-lived caller between runs)."""
    global _REDACTOR
    _CACHE.clear()
    _REGISTERED.clear()
    _REDACTOR = None

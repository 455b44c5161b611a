"""The secret scan: no secret is ever committed by the loop, nor by hand once the guards are in.

What is scanned is the *added* lines of a diff, and the paths it adds:

* ``pending``: what the tick's PASS commit would commit (every change outside
  ``state/``, as :func:`autometta.gitops.commit_stage` stages it), computed in
  a throwaway index so the user's index is never touched;
* ``staged``: what ``git commit`` is about to commit (the pre-commit hook);
* ``push``: the commits ``git push`` is about to send (the pre-push hook).

A hit is a resolved secret's value (whatever this process resolved; the tick
resolves the stage's routes again before committing), a key shape
(:data:`RULES`: Anthropic, OpenAI, AWS, GitHub, Slack, Google keys, private
key blocks), a real ``op://`` reference (placeholders such as
``op://YOUR_VAULT/...`` and ``op://vault/item/field`` are fine), an
``.env`` file or ``op-refs.local.sh``, or a line matching a pattern in the
repo's ``.publish-guard.local`` (one regular expression a line, as the bash
version's publish guard read it). A hit names the file and line and the rule,
never the value.

In the tick a hit stops the stage *before* anything is staged: status
``verifier_failed`` (the verdict was PASS, but the tree is left for the
operator, as for any commit that cannot be made), marker
``secret_in_diff: <file>:<line> (<rule>)``. Remove the secret, then requeue.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, List, Mapping, Optional, Pattern, Sequence, Tuple

from . import files, gitops, secrets
from .errors import UserError

MARKER = "secret_in_diff"
GUARD_PATTERNS_FILE = ".publish-guard.local"
#: Hits shown in a marker or message before "and N more".
SHOWN = 3

#: (rule, pattern) for secret shapes in an added line.
RULES: List[Tuple[str, Pattern[str]]] = [
    ("anthropic_key", re.compile(r"sk-ant-[A-Za-z0-9_-]{20,}")),
    ("openai_key", re.compile(r"\bsk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{20,}|\bsk-[A-Za-z0-9]{32,}\b")),
    ("aws_access_key", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("github_token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})")),
    ("slack_token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("google_api_key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b")),
    ("private_key", re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")),
]
_OP_REF_RE = re.compile(r"op://[^\s'\"`<>()\[\]{},;]+")
#: Vault names of example references.
_EXAMPLE_VAULTS = ("vault", "example", "my-vault", "myvault")
_EXAMPLE_ENV_SUFFIXES = (".example", ".sample", ".template", ".dist", ".defaults")

_HUNK_RE = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,\d+)? @@")
_ZERO = "0" * 40


@dataclass(frozen=True)
class Hit:
    path: str
    line: Optional[int]  # None: the path itself is the problem
    rule: str
    commit: Optional[str] = None

    def where(self) -> str:
        place = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{self.commit[:12]} {place}" if self.commit else place

    def describe(self) -> str:
        return f"{self.where()} ({self.rule})"

    def as_dict(self) -> dict:
        return {"path": self.path, "line": self.line, "rule": self.rule, "commit": self.commit}


class SecretInDiff(UserError):
    """What would be committed holds a secret; the tick's marker is :data:`MARKER`."""

    marker = MARKER

    def __init__(self, hits: Sequence[Hit], what: str = "the stage's changes") -> None:
        self.hits = list(hits)
        shown = ", ".join(h.describe() for h in self.hits[:SHOWN])
        more = f" and {len(self.hits) - SHOWN} more" if len(self.hits) > SHOWN else ""
        super().__init__(f"{shown}{more}; nothing committed: remove the secret from {what}, "
                         "then requeue the stage")


# ----------------------------------------------------------------- the rules

def is_example_ref(ref: str) -> bool:
    """A placeholder or documentation ``op://`` reference (never a real vault)."""
    if secrets.is_placeholder(ref):
        return True
    vault = ref[len("op://"):].split("/", 1)[0]
    return not vault or vault.lower() in _EXAMPLE_VAULTS or vault.startswith(("<", "{", "$", "YOUR"))


def path_rule(path: str) -> Optional[str]:
    """The rule a path breaks just by being committed, or None."""
    name = path.rsplit("/", 1)[-1]
    if name == ".env" or (name.startswith(".env.") and not name.endswith(_EXAMPLE_ENV_SUFFIXES)):
        return "env_file"
    if name == secrets.REFS_FILE_NAME:
        return "op_refs_file"
    return None


def line_rule(text: str, known: Sequence[str], extra: Sequence[Tuple[str, Pattern[str]]] = ()) -> Optional[str]:
    """The first rule an added line breaks, or None."""
    for value in known:
        if value and value in text:
            return "resolved_secret"
    for rule, pattern in RULES:
        if pattern.search(text):
            return rule
    for match in _OP_REF_RE.finditer(text):
        if not is_example_ref(match.group(0)):
            return "op_reference"
    for rule, pattern in extra:
        if pattern.search(text):
            return rule
    return None


def guard_patterns(repo: Path) -> List[Tuple[str, Pattern[str]]]:
    """The repo's ``.publish-guard.local`` patterns, one per non-comment line (UserError if one is invalid)."""
    path = Path(repo) / GUARD_PATTERNS_FILE
    if not path.is_file():
        return []
    out = []
    for number, raw in enumerate(files.read_text(path).splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            out.append((f"{GUARD_PATTERNS_FILE}:{number}", re.compile(line)))
        except re.error as exc:
            raise UserError(f"{path}:{number}: not a regular expression ({exc}); fix or remove the line") from None
    return out


# ------------------------------------------------------------ reading diffs

def _unquote(text: str) -> str:
    """A path as git prints it: plain, or C-quoted (``"a\\303\\251b"``)."""
    if not (len(text) >= 2 and text[0] == '"' and text[-1] == '"'):
        return text
    body, out, i = text[1:-1], bytearray(), 0
    simple = {"n": 10, "t": 9, "r": 13, '"': 34, "\\": 92, "a": 7, "b": 8, "f": 12, "v": 11}
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt in simple:
                out.append(simple[nxt])
                i += 2
                continue
            if re.match(r"[0-7]{3}", body[i + 1:i + 4]):
                out.append(int(body[i + 1:i + 4], 8))
                i += 4
                continue
        out += ch.encode("utf-8", "surrogateescape")
        i += 1
    return out.decode("utf-8", "surrogateescape")


def _strip_prefix(path: str) -> str:
    path = _unquote(path)
    return path[2:] if path[:2] in ("a/", "b/") else path


def _header_path(rest: str) -> Optional[str]:
    """The path in ``diff --git a/P b/P`` (both names are equal without renames)."""
    if rest.startswith('"'):
        end = rest.find('" ', 1)
        return _strip_prefix(rest[:end + 1]) if end > 0 else None
    half = (len(rest) - 1) // 2
    if len(rest) % 2 == 1 and rest[half] == " " and rest[2:half] == rest[half + 3:]:
        return rest[2:half]
    return None


def parse_patch(text: str) -> Iterator[Tuple[Optional[str], str, Optional[int], Optional[str]]]:
    """(commit, path, line, added text) for each added line; line None once per file (its path).

    Reads ``git diff -U0`` / ``git log -p -U0`` output; a commit starts at a
    line holding ``\\0`` and the sha (``--format=%x00%H``).
    """
    commit: Optional[str] = None
    path: Optional[str] = None
    number = 0
    in_hunk = False
    for raw in text.split("\n"):
        if raw.startswith("\0"):
            commit, path, in_hunk = raw[1:].strip() or None, None, False
        elif raw.startswith("diff --git "):
            path, in_hunk = _header_path(raw[len("diff --git "):]), False
            if path is not None:
                yield commit, path, None, None
        elif not in_hunk and raw.startswith("+++ "):
            target = raw[4:].rstrip("\t")
            new = _strip_prefix(target) if target != "/dev/null" else None
            if new is not None and new != path:
                path = new
                yield commit, path, None, None
        elif raw.startswith("@@"):
            match = _HUNK_RE.match(raw)
            in_hunk = match is not None
            number = int(match.group(1)) if match else 0
        elif in_hunk and raw.startswith("+") and path is not None:
            yield commit, path, number, raw[1:]
            number += 1


def scan_patch(text: str, known: Sequence[str] = (),
               extra: Sequence[Tuple[str, Pattern[str]]] = ()) -> List[Hit]:
    """Every hit in a patch: one per line, and per path for path rules."""
    known = [v for v in known if v and len(v) >= secrets.MIN_REDACT_LENGTH]
    hits: List[Hit] = []
    seen = set()
    for commit, path, line, added in parse_patch(text):
        if line is None:
            rule = path_rule(path)
            if rule and (commit, path) not in seen:
                seen.add((commit, path))
                hits.append(Hit(path, None, rule, commit))
            continue
        rule = line_rule(added or "", known, extra)
        if rule:
            hits.append(Hit(path, line, rule, commit))
    return hits


# ------------------------------------------------------------- what to scan

_DIFF_ARGS = ["-U0", "--no-color", "--no-ext-diff", "--no-textconv", "--no-renames", "--diff-filter=ACMRT",
              "--src-prefix=a/", "--dst-prefix=b/"]


def _git(repo: Path, args: List[str], env: Optional[Mapping[str, str]] = None) -> str:
    _, out, _ = gitops._run(repo, ["-c", "core.quotepath=off", *args], env=dict(env) if env else None)
    return out.decode("utf-8", "surrogateescape")


def pending_patch(repo: Path) -> str:
    """The patch of what :func:`autometta.gitops.commit_stage` would commit now (user's index untouched)."""
    return gitops.work_tree_diff(repo, *_DIFF_ARGS)


def staged_patch(repo: Path, environ: Optional[Mapping[str, str]] = None) -> str:
    """The patch ``git commit`` is about to commit; honours the ``GIT_INDEX_FILE`` git gives a hook."""
    environ = os.environ if environ is None else environ
    index = environ.get("GIT_INDEX_FILE")
    env = {"GIT_INDEX_FILE": os.path.abspath(index)} if index else None
    return _git(repo, ["diff", "--cached", *_DIFF_ARGS], env)


def push_patch(repo: Path, updates: Iterable[str]) -> str:
    """The commits a push sends, from git's pre-push lines ``<local ref> <sha> <remote ref> <sha>``."""
    out = []
    for line in updates:
        fields = line.split()
        if len(fields) != 4 or fields[1] == _ZERO:
            continue  # blank, or a deletion
        local, remote = fields[1], fields[3]
        if remote != _ZERO and _has_commit(repo, remote):
            revs = [f"{remote}..{local}"]
        else:
            revs = [local, "--not", "--remotes"]
        out.append(_git(repo, ["log", "-p", "--format=%x00%H", *_DIFF_ARGS, *revs]))
    return "\n".join(out)


def _has_commit(repo: Path, sha: str) -> bool:
    code, _, _ = gitops._run(repo, ["cat-file", "-e", f"{sha}^{{commit}}"], ok=(0, 1, 128))
    return code == 0


def scan_pending(repo: Path, known: Sequence[str] = ()) -> List[Hit]:
    return scan_patch(pending_patch(repo), known, guard_patterns(repo))


def check_stage_commit(ctx: Any, stage: Mapping[str, Any]) -> None:
    """Before the tick's PASS commit: raise :class:`SecretInDiff` if the stage's changes hold a secret.

    ``ctx`` is the tick's :class:`autometta.dispatch.RepoContext`. The
    secrets of the worker's and verifier's routes are resolved again (best
    effort), so a key the agent was given is found even where it has no
    recognisable shape.
    """
    from . import auth
    from .dispatch import identity_for
    from .identity import family_of

    names = [family_of(identity_for(stage, role)) for role in ("worker", "verifier")]
    known = auth.secrets_in_force(ctx.environ, ctx.manifest, [n for n in names if n],
                                  manifest_path=ctx.paths.manifest)
    hits = scan_pending(ctx.work, known)
    if hits:
        raise SecretInDiff(hits)

"""The secret scan: no secret is ever committed by the loop, nor by hand once the guards are in.

What is scanned is the *added* lines of a diff, the paths it adds (the file
*names*: ``k-<key>.txt``), and the content of every binary file it adds or
changes (git shows those as "Binary files differ"), byte for byte:

* ``pending``: what the tick's PASS commit would commit (every change outside
  ``state/``, as :func:`autometta.git.gitops.commit_stage` stages it), computed in
  a throwaway index and a throwaway object folder
  (:func:`autometta.git.gitops.work_tree_index`), so neither the user's index nor
  the repo's object store is touched;
* ``staged``: what ``git commit`` is about to commit (the pre-commit hook);
* ``push``: the commits ``git push`` is about to send (the pre-push hook).

A hit is a resolved secret's value (whatever this process resolved; the tick
resolves the stage's routes again before committing), a key shape
(:data:`RULES`, which are :data:`autometta.redact.SHAPES`, the one list every
mask uses, plus private key blocks: Anthropic, OpenAI, AWS access keys and
``aws_secret_access_key = <value>``, GitHub, Slack, Google, live Stripe keys,
JWTs), a real ``op://`` reference (placeholders such as
``op://YOUR_VAULT/...`` and ``op://vault/item/field`` are fine), an
``.env`` file or ``op-refs.local.sh``, or a line matching a pattern in the
repo's ``.publish-guard.local`` (one regular expression a line, as the bash
version's publish guard read it). In a binary file, resolved values are
matched byte-wise (UTF-8 and UTF-16) and key shapes as bytes; a hit there is
one that the file's previous version did not hold. A hit names the file and
line and the rule, never the value: a file name holding a secret is shown
masked.

The same rules keep a file out of the state snapshot
(:func:`snapshot_state`): the ``phat-controller/state`` branch is a real
branch, which ``git push --all`` sends.

In the tick a hit stops the stage *before* anything is staged: status
``secret_blocked`` (the verdict was PASS, but the tree is left for the
operator), marker ``secret_in_diff: <file>:<line> (<rule>)``, event
``stage_secret_blocked``. Remove the secret, then requeue.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Pattern, Sequence, Set, Tuple

from . import files, secrets, redact as masking
from .errors import UserError
from .git import gitops

MARKER = "secret_in_diff"
GUARD_PATTERNS_FILE = ".publish-guard.local"
#: Hits shown in a marker or message before "and N more".
SHOWN = 3

#: (rule, pattern) for secret shapes in an added line: the key shapes every
#: view and log masks (:data:`autometta.redact.SHAPES`), and private key blocks.
RULES: List[Tuple[str, Pattern[str]]] = list(masking.SHAPES) + [
    ("private_key", re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")),
]
_RULES_B = [(rule, re.compile(p.pattern.encode("ascii"))) for rule, p in RULES]
_OP_REF_RE = re.compile(r"op://[^\s'\"`<>()\[\]{},;]+")
#: Vault names of example references.
_EXAMPLE_VAULTS = ("vault", "example", "my-vault", "myvault")
_EXAMPLE_ENV_SUFFIXES = (".example", ".sample", ".template", ".dist", ".defaults")

_HUNK_RE = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,\d+)? @@")
_RAW_RE = re.compile(r"^:\d{6} \d{6} ([0-9a-f]{40,64}) ([0-9a-f]{40,64}) [A-Z]\d*\t(.*)$")
_ZERO = "0" * 40
#: ``line`` of a :func:`parse_patch` item for a binary file (real lines start at 1).
BINARY = 0
#: Where in a file a hit is, when not on a line: its name, or its (binary) content.
NAME, CONTENT = "file name", "binary content"


@dataclass(frozen=True)
class Hit:
    path: str  # as shown: a secret in it is masked
    line: Optional[int]  # None: the path itself, or the whole (binary) file, is the problem
    rule: str
    commit: Optional[str] = None
    part: Optional[str] = None  # NAME or CONTENT for a hit that is not on a line nor a path rule

    def where(self) -> str:
        place = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{self.commit[:12]} {place}" if self.commit else place

    def describe(self) -> str:
        part = f" in the {self.part}" if self.part else ""
        return f"{self.where()} ({self.rule}{part})"

    def as_dict(self) -> dict:
        return {"path": self.path, "line": self.line, "rule": self.rule, "commit": self.commit,
                "part": self.part}


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
    """(commit, path, line, added text) for each added line; line None once per file (its path),
    :data:`BINARY` for a file git shows as "Binary files ... differ".

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
        elif not in_hunk and raw.startswith("Binary files ") and raw.endswith(" differ") and path is not None:
            yield commit, path, BINARY, None
        elif raw.startswith("@@"):
            match = _HUNK_RE.match(raw)
            in_hunk = match is not None
            number = int(match.group(1)) if match else 0
        elif in_hunk and raw.startswith("+") and path is not None:
            yield commit, path, number, raw[1:]
            number += 1


def parse_raw(text: str) -> Dict[Tuple[Optional[str], str], Tuple[str, str]]:
    """(commit, path) -> (old blob, new blob) from the ``--raw`` lines of a patch (full ids: ``--no-abbrev``)."""
    commit: Optional[str] = None
    out: Dict[Tuple[Optional[str], str], Tuple[str, str]] = {}
    for raw in text.split("\n"):
        if raw.startswith("\0"):
            commit = raw[1:].strip() or None
        elif raw.startswith(":"):
            match = _RAW_RE.match(raw)
            if match:
                out[(commit, _unquote(match.group(3)))] = (match.group(1), match.group(2))
    return out


#: A blob's content, as (rule, what matched) pairs: ``read(blob id) -> set``.
BlobItems = Callable[[str], Set[Tuple[str, str]]]


def content_items(data: bytes, known: Sequence[str]) -> Set[Tuple[str, str]]:
    """What in ``data`` (bytes) breaks a rule: each known value (UTF-8 or UTF-16) and each key shape match."""
    found: Set[Tuple[str, str]] = set()
    for index, value in enumerate(known):
        for encoding in ("utf-8", "utf-16-le"):
            try:
                needle = value.encode(encoding)
            except UnicodeEncodeError:
                continue
            if needle in data:
                found.add((masking.RESOLVED, f"value {index}"))
    for rule, pattern in _RULES_B:
        for match in pattern.finditer(data):
            found.add((rule, match.group(0).decode("ascii", "replace")))
    return found


def _first(items: Set[Tuple[str, str]]) -> Optional[str]:
    order = [masking.RESOLVED] + [rule for rule, _ in RULES]
    rules = {rule for rule, _ in items}
    return next((rule for rule in order if rule in rules), None)


def scan_patch(text: str, known: Sequence[str] = (),
               extra: Sequence[Tuple[str, Pattern[str]]] = (), blobs: Optional[BlobItems] = None) -> List[Hit]:
    """Every hit in a patch: one per line, per path (path rules, a secret in the name), per binary file.

    ``blobs`` reads a blob's :func:`content_items`; without it binary files
    are not read. Paths are shown with any secret in them masked.
    """
    known = [v for v in known if v and len(v) >= secrets.MIN_REDACT_LENGTH]
    shown = masking.Redactor(known).text
    raw = parse_raw(text) if blobs is not None else {}
    hits: List[Hit] = []
    seen = set()
    for commit, path, line, added in parse_patch(text):
        if line is None:
            if (commit, path) in seen:
                continue
            seen.add((commit, path))
            rule = path_rule(path)
            if rule:
                hits.append(Hit(shown(path), None, rule, commit))
            rule = line_rule(path, known, extra)
            if rule:
                hits.append(Hit(shown(path), None, rule, commit, NAME))
            continue
        if line == BINARY:
            ids = raw.get((commit, path))
            if blobs is None or ids is None or set(ids[1]) == {"0"}:
                continue
            new = blobs(ids[1])
            old = blobs(ids[0]) if set(ids[0]) != {"0"} else set()
            rule = _first(new - old)
            if rule:
                hits.append(Hit(shown(path), None, rule, commit, CONTENT))
            continue
        rule = line_rule(added or "", known, extra)
        if rule:
            hits.append(Hit(shown(path), line, rule, commit))
    return hits


# ------------------------------------------------------------- what to scan

_DIFF_ARGS = ["-U0", "--no-color", "--no-ext-diff", "--no-textconv", "--no-renames", "--diff-filter=ACMRT",
              "--src-prefix=a/", "--dst-prefix=b/", "-p", "--raw", "--no-abbrev"]
_READ_CHUNK = 1024 * 1024


def _git(repo: Path, args: List[str], env: Optional[Mapping[str, str]] = None) -> str:
    _, out, _ = gitops._run(repo, ["-c", "core.quotepath=off", *args], env=dict(env) if env else None)
    return out.decode("utf-8", "surrogateescape")


def blob_reader(repo: Path, known: Sequence[str], env: Optional[Mapping[str, str]] = None) -> BlobItems:
    """Reads a blob with ``git cat-file`` (in ``env``: a throwaway index's objects) a chunk at a time."""
    known = [v for v in known if v and len(v) >= secrets.MIN_REDACT_LENGTH]
    overlap = max([len(v.encode("utf-8")) * 2 for v in known] + [4096])

    def read(blob: str) -> Set[Tuple[str, str]]:
        proc = subprocess.Popen([gitops._git_exe(), "-C", os.fspath(repo), "cat-file", "blob", blob],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=gitops._env(dict(env) if env else None), start_new_session=True)
        found: Set[Tuple[str, str]] = set()
        tail = b""
        assert proc.stdout is not None
        try:
            while True:
                chunk = proc.stdout.read(_READ_CHUNK)
                if not chunk:
                    break
                window = tail + chunk
                found |= content_items(window, known)
                tail = window[-overlap:]
        finally:
            proc.stdout.close()
            err = proc.stderr.read() if proc.stderr else b""
            code = proc.wait()
        if code != 0:
            raise UserError(f"`git cat-file blob {blob[:12]}` failed in {repo} (exit {code}): {gitops._tail(err)}")
        return found

    return read


def pending_patch(repo: Path) -> str:
    """The patch of what :func:`autometta.git.gitops.commit_stage` would commit now (user's index untouched)."""
    return gitops.work_tree_diff(repo, *_DIFF_ARGS)


def _hook_index_env(environ: Optional[Mapping[str, str]]) -> Optional[Dict[str, str]]:
    environ = os.environ if environ is None else environ
    index = environ.get("GIT_INDEX_FILE")
    return {"GIT_INDEX_FILE": os.path.abspath(index)} if index else None


def staged_patch(repo: Path, environ: Optional[Mapping[str, str]] = None) -> str:
    """The patch ``git commit`` is about to commit; honours the ``GIT_INDEX_FILE`` git gives a hook."""
    return _git(repo, ["diff", "--cached", *_DIFF_ARGS], _hook_index_env(environ))


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
    """What the stage commit would commit now, scanned without writing it into the repo's object store."""
    extra = guard_patterns(repo)
    with gitops.work_tree_index(repo) as env:
        patch = _git(repo, ["diff", "--cached", *_DIFF_ARGS], env)
        return scan_patch(patch, known, extra, blob_reader(repo, known, env))


def scan_staged(repo: Path, known: Sequence[str] = (), environ: Optional[Mapping[str, str]] = None) -> List[Hit]:
    env = _hook_index_env(environ)
    return scan_patch(_git(repo, ["diff", "--cached", *_DIFF_ARGS], env), known, guard_patterns(repo),
                      blob_reader(repo, known, env))


def scan_push(repo: Path, updates: Iterable[str], known: Sequence[str] = ()) -> List[Hit]:
    return scan_patch(push_patch(repo, updates), known, guard_patterns(repo), blob_reader(repo, known))


def secrets_for(ctx: Any, stages: Iterable[Mapping[str, Any]]) -> List[str]:
    """Best effort: the secrets of the billing routes the stages' worker and verifier use, resolved.

    A tick that reads an agent's output is not the tick that started it, so
    the values are fetched again (once per process; they are registered, so
    :func:`autometta.secrets.redact` masks them from then on).
    """
    from . import auth
    from .agents.provision import identity_for
    from .families import family_of

    names = {family_of(identity_for(stage, role)) for stage in stages if isinstance(stage, Mapping)
             for role in ("worker", "verifier")}
    try:
        return auth.secrets_in_force(ctx.environ, ctx.manifest, sorted(n for n in names if n),
                                     manifest_path=ctx.paths.manifest)
    except UserError:  # a refs file that cannot be read: the key shapes still count
        return secrets.registered()


def check_stage_commit(ctx: Any, stage: Mapping[str, Any]) -> None:
    """Before the tick's PASS commit: raise :class:`SecretInDiff` if the stage's changes hold a secret.

    ``ctx`` is the tick's :class:`autometta.agents.dispatch.RepoContext`. The
    secrets of the worker's and verifier's routes are resolved again (best
    effort), so a key the agent was given is found even where it has no
    recognisable shape.
    """
    hits = scan_pending(ctx.work, secrets_for(ctx, [stage]))
    if hits:
        raise SecretInDiff(hits)


# ------------------------------------------------------------ the state snapshot

#: The event a state file kept out of the snapshot raises.
SNAPSHOT_EVENT = "secret_in_state"


def state_file_rule(path: str, data: bytes, known: Sequence[str],
                    extra: Sequence[Tuple[str, Pattern[str]]] = ()) -> Optional[str]:
    """Why the state file ``path`` must stay out of the snapshot: a secret in its name or content; or None.

    Content is matched as bytes (values in UTF-8 and UTF-16, key shapes,
    private key blocks) and, decoded, against ``.publish-guard.local``
    (``op://`` references are no secret here: markers name them).
    """
    known = [v for v in known if v and len(v) >= secrets.MIN_REDACT_LENGTH]
    rule = line_rule(path, known, extra)
    if rule:
        return rule
    rule = _first(content_items(data, known))
    if rule:
        return rule
    text = data.decode("utf-8", "replace")
    for rule, pattern in extra:
        if pattern.search(text):
            return rule
    return None


def snapshot_state(ctx: Any, files_: Sequence[str], log: Callable[[str], None]) -> Optional[str]:
    """Commit the state files to the snapshot ref (:func:`autometta.git.gitops.snapshot_state`), minus secrets.

    Each file is read once, checked with :func:`state_file_rule` (the
    resolved secrets of the routes the repo's stages use, and the rules),
    and only those bytes are committed. A file that holds a secret stays
    out, stays on disk, and raises the event :data:`SNAPSHOT_EVENT` (once
    per content); the tick log names it and the rule, never the value.
    """
    from .books import state as states

    paths = ctx.paths
    cache: Dict[str, Any] = {}

    def screen(path: str, data: bytes) -> Optional[str]:
        if "known" not in cache:
            try:
                stages = states.load_state(paths).get("stages") or []
            except UserError:
                stages = []
            cache["known"] = secrets_for(ctx, stages)
            try:
                cache["extra"] = guard_patterns(paths.root)
            except UserError:
                cache["extra"] = []
        return state_file_rule(path, data, cache["known"], cache["extra"])

    kept: List[Tuple[str, str, str]] = []
    sha = gitops.snapshot_state(ctx.repo, list(files_), screen=screen, kept_out=kept)
    if kept:
        from .observe import events

        shown = masking.Redactor(cache.get("known") or []).text
        for path, rule, digest in kept:
            where = shown(path)
            log(f"state snapshot: kept {where} out of {gitops.STATE_REF[len('refs/heads/'):]}: it holds a "
                f"secret ({rule}); the file stays on disk, remove the secret from it")
            if ctx.home is not None:
                events.emit(ctx.home, paths, SNAPSHOT_EVENT,
                            {"path": where, "rule": rule, "content_sha256": digest[:16], "repo": str(paths.root)})
    return sha

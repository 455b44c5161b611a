"""The controller's books: a digest of every file autometta writes in ``state/``, kept outside the repo.

An agent runs as the user, in (or next to) the repo, so it can reach
``state/budget.json`` (its caps, its spend), ``state/state.yaml`` (every
stage's status), the verdicts and the archive. This module makes those files
tamper-evident. Every write of them goes through :func:`write_files` (and
``state.save_state``, ``budget.save_budget`` call it), which records the
file's SHA-256, and a copy of what was written, in the controller home:
``<home>/books/<repo-name>-<hash>.json`` (:meth:`HomePaths.books_record`).

Before the tick reads anything it calls :func:`audit`:

* a file that still matches its digest is read as usual;
* a file that changed while a stage was in flight (the last ``state.yaml``
  autometta wrote had a stage ``in_progress``) was changed by something
  other than autometta, most likely an agent: the changed file is kept
  beside it as ``<name>.tampered-<time>``, the last copy autometta wrote is
  put back, and the repo halts ``state_tampered: <file>``. Nothing the
  changed file says is honoured; after a review, ``tick --reset-halt`` lets
  the restored books run on;
* a file that changed while nothing was in flight is a person's edit: it is
  accepted, logged, and its digest recorded;
* a home with no books for the repo (a first run, or a home the bash
  version kept) records the files as they are.

Writes check too: a write over a file that changed behind autometta's back
while a stage is in flight is refused (:class:`StateTampered`), so no
by-hand command (``add-stage``, ``requeue``, ``tick --reset-halt``, ...) can
launder an agent's edit into the books. While idle, it accepts and logs it.

A write is recorded in two steps, so a tick killed at any instruction never
looks like tampering: the new digest is noted as ``pending`` first, the file
is written, then the digest is confirmed. A file that matches either is
autometta's.

What this does not stop: an agent that can write the controller home can
rewrite the books too. Run agents under ``sandbox:`` (the home is then out
of their reach) where that matters.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from .. import files, yamlsub
from ..errors import UserError
from ..paths import HomePaths, RepoPaths

# Every tick audits the books, an idle one too: this module imports neither typing nor dataclasses nor
# hashlib (OpenSSL), each of which costs that tick more than the audit (tests/test_startup.py).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

    Log = Callable[[str], None]
    Data = Union[str, bytes]

#: Halt marker: a controller file changed behind autometta's back while a stage was in flight.
TAMPERED_MARKER = "state_tampered"

VERSION = 1
RECORD_MODE = 0o600


class StateTampered(UserError):
    """A write over a controller file that changed behind autometta's back while a stage was in flight."""

    marker = TAMPERED_MARKER


# ------------------------------------------------------------------ the record


def _rel(paths: RepoPaths, path: Union[str, Path]) -> str:
    return Path(os.path.relpath(str(path), str(paths.root))).as_posix()


def digest(data: bytes) -> str:
    return files.sha256_hex(data)


def _stat(path: Path) -> Optional[List[int]]:
    """What changes whenever the content can have changed (a write or a rename moves ctime)."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_mode]


def _read(path: Path) -> Optional[bytes]:
    """The file's bytes, or None when it is missing or not a regular file (a symlink, a folder)."""
    try:
        if os.path.islink(path) or not path.is_file():
            return None if not os.path.lexists(path) else b"\0not a regular file\0"
        return files.read_bytes(path)
    except UserError:
        return b"\0unreadable\0"


def _decode(data: Optional[bytes]) -> Optional[str]:
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _masked(text: str) -> str:
    """The copy kept in the home: no secret leaves the repo for it (a verifier's headline may quote one).

    A masked copy no longer matches its file's digest; :func:`_restore` records
    what it put back.
    """
    from .. import secrets

    return secrets.redact(text)


def in_flight_of(doc: Any) -> List[str]:
    """The stages a state document has in flight (``in_progress``)."""
    stages = doc.get("stages") if isinstance(doc, dict) else None
    return [str(s.get("id")) for s in stages or [] if isinstance(s, dict) and s.get("status") == "in_progress"]


def _in_flight_text(text: Optional[str]) -> Optional[List[str]]:
    if text is None:
        return None
    try:
        return in_flight_of(yamlsub.loads(text, source="state.yaml"))
    except Exception:  # a file a person broke: what it says about flight is not knowable
        return None


class Record:
    """The books of one repo: ``data`` as stored, whether it was on disk, whether it changed since."""

    def __init__(self, path: Path, data: Optional[Dict[str, Any]] = None, exists: bool = False,
                 changed: bool = False) -> None:
        self.path = path
        self.data: Dict[str, Any] = {} if data is None else data
        self.exists = exists
        self.changed = changed

    @property
    def entries(self) -> Dict[str, Dict[str, Any]]:
        return self.data.setdefault("files", {})

    @property
    def copies(self) -> Dict[str, str]:
        return self.data.setdefault("copies", {})

    @property
    def in_flight(self) -> List[str]:
        value = self.data.get("in_flight")
        return [str(v) for v in value] if isinstance(value, list) else []

    def set_in_flight(self, ids: Iterable[str]) -> None:
        value = sorted(set(ids))
        if value != self.in_flight:
            self.data["in_flight"] = value
            self.changed = True

    def note(self, rel: str, sha: Optional[str], text: Optional[str], stat: Optional[List[int]],
             *, copy: bool) -> None:
        if sha is None:
            if self.entries.pop(rel, None) is not None:
                self.changed = True
            return
        entry: Dict[str, Any] = {"sha256": sha, "stat": stat}
        if copy and text is not None:
            self.copies[sha] = _masked(text)
            entry["copy"] = True
        if self.entries.get(rel) != entry:
            self.entries[rel] = entry
            self.changed = True

    def gc(self) -> None:
        """Drop copies no entry (or pending write) refers to."""
        wanted = set()
        for entry in self.entries.values():
            wanted.add(entry.get("sha256"))
            wanted.add(entry.get("pending"))
        for sha in [s for s in self.copies if s not in wanted]:
            del self.copies[sha]
            self.changed = True

    def save(self) -> None:
        if not self.changed:
            return
        self.gc()
        self.data["version"] = VERSION
        files.ensure_dir(self.path.parent, mode=0o700)
        files.write_json(self.path, self.data, mode=RECORD_MODE)
        self.exists, self.changed = True, False


def _well_formed(doc: Any) -> bool:
    """A record as autometta writes it (schemas/books-record.json), naming only files inside the repo.
    One that is not is no record, as an unreadable one: its entries are never read, nor its paths followed."""
    from .. import schema

    if not isinstance(doc, dict) or schema.problems(doc, "books-record"):
        return False
    return all(rel and not os.path.isabs(rel) and ".." not in Path(rel).parts and "\0" not in rel
               for rel in doc["files"])


@contextlib.contextmanager
def _opened(paths: RepoPaths) -> Iterator[Record]:
    """The repo's record, under its own lock; saved on the way out if it changed.

    The books always live in the controller home the environment names
    (``PHAT_CONTROLLER_HOME``, else ``~/.phat-controller``), whoever writes.
    """
    target = HomePaths.from_env().books_record(paths.root)
    files.ensure_dir(target.parent, mode=0o700)
    with files.locked(target.with_name(target.name + ".lock"), timeout=30):
        record = Record(target)
        if target.exists():
            try:
                doc = files.read_json(target)
                if _well_formed(doc):
                    record.data, record.exists = doc, True
            except UserError:
                pass  # an unreadable record is no record: the files are recorded as they are
        if not record.data:
            record.data = {"version": VERSION, "repo": str(paths.root), "in_flight": [], "files": {}, "copies": {}}
        yield record
        record.save()


def _matches(entry: Dict[str, Any], sha: Optional[str]) -> bool:
    return sha is not None and sha in (entry.get("sha256"), entry.get("pending"))


def _settle(record: Record, rel: str, sha: Optional[str], stat: Optional[List[int]]) -> None:
    """A file found matching its entry: a pending write it shows is confirmed, one it does not is dropped."""
    entry = record.entries[rel]
    if "pending" in entry:
        if sha == entry["pending"]:
            entry["sha256"] = sha
            entry["copy"] = entry.get("pending_copy", entry.get("copy", False))
        entry.pop("pending", None)
        entry.pop("pending_copy", None)
        record.changed = True
    if entry.get("stat") != stat:
        entry["stat"] = stat
        record.changed = True


def _default_log(paths: RepoPaths, message: str) -> None:
    from ..ticklog import TickLog  # the tick log: where a person looks for what autometta did

    TickLog(HomePaths.from_env(), echo=True)(message, repo=paths.root)  # tagged: 'log --repo' finds it


def _accepted_line(paths: RepoPaths, rels: Sequence[str]) -> str:
    return (f"books: {', '.join(rels)} in {paths.root} changed outside autometta while no stage was in flight; "
            "accepted as a person's edit (its digest is recorded)")


# ------------------------------------------------------------------ writes


def write_files(paths: RepoPaths, items: Sequence[Tuple[Path, Data]], *, mode: int = 0o600,
                in_flight: Optional[List[str]] = None, copy: bool = True,
                log: Optional[Log] = None) -> None:
    """Write controller files atomically and record their digests (and copies) in the controller home.

    ``in_flight``: the stages in flight in the state document being written
    (only a write of ``state.yaml`` knows it). Raises :class:`StateTampered`,
    writing nothing, when one of the files changed behind autometta's back
    while a stage is in flight.
    """
    payloads = [(Path(p), d.encode("utf-8") if isinstance(d, str) else d) for p, d in items]
    with _opened(paths) as record:
        accepted = []
        for path, _ in payloads:
            rel = _rel(paths, path)
            entry = record.entries.get(rel)
            if entry is None:
                continue
            current = _read(path)
            sha = digest(current) if current is not None else None
            if _matches(entry, sha) or (sha is None and entry.get("sha256") is None):
                continue
            if record.in_flight:
                raise StateTampered(
                    f"{path}: changed by something other than autometta while {', '.join(record.in_flight)} "
                    f"was in flight ({TAMPERED_MARKER}); nothing was written. Run 'autometta tick --repo "
                    f"{paths.root}': it keeps the changed file for review, puts back the last copy autometta "
                    "wrote and halts the repo")
            accepted.append(rel)
        if accepted:
            line = _accepted_line(paths, accepted)
            if log is not None:
                log(line)
            else:
                _default_log(paths, line)
        # 1. note what is about to be written, so a write killed half-way is never taken for tampering
        for path, payload in payloads:
            rel = _rel(paths, path)
            entry = record.entries.get(rel)
            if entry is None or rel in accepted:
                current = _read(path)
                entry = {"sha256": digest(current) if current is not None else None, "stat": _stat(path)}
                record.entries[rel] = entry
            sha = digest(payload)
            entry["pending"] = sha
            text = _decode(payload)
            if copy and text is not None:
                record.copies[sha] = _masked(text)
                entry["pending_copy"] = True
            record.changed = True
        if in_flight is not None:
            record.set_in_flight(record.in_flight + list(in_flight))  # either document may be on disk
        record.save()
        # 2. write
        for path, payload in payloads:
            files.atomic_write(path, payload, mode=mode)
        # 3. confirm
        for path, payload in payloads:
            entry = record.entries[_rel(paths, path)]
            entry.pop("pending", None)
            entry.pop("pending_copy", None)
            entry.update(sha256=digest(payload), stat=_stat(path), copy=copy and digest(payload) in record.copies)
            record.changed = True
        if in_flight is not None:
            record.set_in_flight(in_flight)


def write_text(paths: RepoPaths, path: Union[str, Path], data: Data, *, mode: int = 0o600,
               log: Optional[Log] = None) -> None:
    """Write one controller file (a verdict autometta stores, ...) and record its digest."""
    write_files(paths, [(Path(path), data)], mode=mode, log=log)


def write_json(paths: RepoPaths, path: Union[str, Path], doc: Any, *, mode: int = 0o600,
               log: Optional[Log] = None) -> None:
    """``files.write_json`` for a controller file: the JSON layout autometta writes, digest recorded."""
    write_text(paths, path, files.dump_json(doc), mode=mode, log=log)


def changed_behind(paths: RepoPaths, path: Union[str, Path]) -> bool:
    """Has ``path`` changed (or gone) since autometta last wrote it? False when the books do not know it.

    For a file a by-hand command wrote and reads back later (its agents ran
    in between), with no tick to audit it first.
    """
    with _opened(paths) as rec:
        entry = rec.entries.get(_rel(paths, path))
        if entry is None:
            return False
        data = _read(Path(path))
        sha = digest(data) if data is not None else None
        return not (_matches(entry, sha) or (sha is None and entry.get("sha256") is None
                                             and entry.get("pending") is None))


def knows(paths: RepoPaths, path: Union[str, Path]) -> bool:
    """Do the books hold ``path`` (did autometta write it, and not forget it since)?

    A file autometta alone writes and no tick audits (a by-hand record) is
    autometta's only if they do: one an agent put there is not.
    """
    with _opened(paths) as rec:
        return rec.entries.get(_rel(paths, path)) is not None


def record(paths: RepoPaths, path_list: Iterable[Union[str, Path]], *, copy: bool = True) -> None:
    """Take files as they are on disk now as autometta's (one autometta just moved or wrote itself)."""
    with _opened(paths) as rec:
        for path in path_list:
            path = Path(path)
            data = _read(path)
            rec.note(_rel(paths, path), digest(data) if data is not None else None,
                     _decode(data), _stat(path),
                     copy=copy)


def moved(paths: RepoPaths, moves: Sequence[Tuple[Union[str, Path], Union[str, Path]]]) -> None:
    """autometta moved ``src`` to ``dest`` (archive, quarantine): ``src`` is forgotten, ``dest`` recorded (digest only)."""
    if not moves:
        return
    with _opened(paths) as rec:
        for src, dest in moves:
            rec.note(_rel(paths, src), None, None, None, copy=False)
            data = _read(Path(dest))
            rec.note(_rel(paths, dest), digest(data) if data is not None else None, None, _stat(Path(dest)),
                     copy=False)


def forget(paths: RepoPaths, path_list: Iterable[Union[str, Path]]) -> None:
    """Stop tracking files autometta itself removed or moved aside."""
    with _opened(paths) as rec:
        for path in path_list:
            rec.note(_rel(paths, path), None, None, None, copy=False)


# ------------------------------------------------------------------ the audit


class Audit:
    """What :func:`audit` found. ``texts``: the verified text of state.yaml and budget.json (None: missing)."""

    def __init__(self) -> None:
        self.texts: Dict[str, Optional[str]] = {}
        #: Files changed behind autometta's back while a stage was in flight: restored, repo halted.
        self.tampered: List[str] = []
        #: Files a person changed while nothing was in flight: accepted.
        self.accepted: List[str] = []
        #: The books were started now (a first run, or a home without them).
        self.first = False
        self.in_flight: List[str] = []

    def __repr__(self) -> str:
        return (f"Audit(texts={self.texts!r}, tampered={self.tampered!r}, accepted={self.accepted!r}, "
                f"first={self.first!r}, in_flight={self.in_flight!r})")

    def text(self, path: Path, paths: RepoPaths) -> Optional[str]:
        return self.texts.get(_rel(paths, path))

    def reread(self, path: Path, paths: RepoPaths) -> None:
        """Take ``path``'s text as it is now (after the caller halted the repo on the restored books)."""
        self.texts[_rel(paths, path)] = _decode(_read(path))

    @property
    def halt_reason(self) -> Optional[str]:
        return f"{TAMPERED_MARKER}: {', '.join(self.tampered)}"[:300] if self.tampered else None


def audit(paths: RepoPaths, log: Log, *, now: Optional[float] = None,
          parsers: Optional[Dict[Path, Callable[[str, str], Any]]] = None) -> Audit:
    """Check every recorded controller file against its digest; restore, or accept and record.

    Call it under the repo's lock, before reading state or budget, and read
    them from :attr:`Audit.texts` (the very bytes that were checked). A file
    changed behind autometta's back (:attr:`Audit.tampered`) is restored
    here; halting the repo on the restored books is the caller's (the tick's,
    which reads and writes state and budget). ``parsers``: path -> ``parse(text,
    source)`` raising :class:`UserError`, handed in by the owners of those
    documents (state.yaml, its backup, budget.json): a person's change to one
    of them is taken into the books only if it still reads.
    """
    paths.check_contained()
    out = Audit()
    core = [paths.state_yaml, paths.state_backup, paths.budget]
    with _opened(paths) as rec:
        found: Dict[str, Optional[bytes]] = {}
        if not rec.exists:
            out.first = True
            for path in core:
                data = _read(path)
                found[_rel(paths, path)] = data
                rec.note(_rel(paths, path), digest(data) if data is not None else None,
                         _decode(data), _stat(path),
                         copy=True)
            rec.set_in_flight(_in_flight_text(_decode(found[_rel(paths, paths.state_yaml)])) or [])
            rec.changed = True
            log(f"books: no digests recorded for {paths.root} yet (a first run, or a home the bash version "
                f"kept); recorded {', '.join(r for r, d in found.items() if d is not None) or 'nothing'} "
                "as they are")
        else:
            changed: List[Tuple[str, Path, Optional[bytes]]] = []
            for rel, entry in sorted(rec.entries.items()):
                path = paths.root / rel
                stat = _stat(path)
                if path not in core and stat is not None and stat == entry.get("stat"):
                    continue  # untouched since autometta recorded it: no need to read it
                data = _read(path)
                found[rel] = data
                sha = digest(data) if data is not None else None
                if _matches(entry, sha) or (sha is None and entry.get("sha256") is None
                                            and entry.get("pending") is None):
                    _settle(rec, rel, sha, stat)
                else:
                    changed.append((rel, path, data))
            for path in core:  # a core file that appeared since (or was never recorded)
                rel = _rel(paths, path)
                if rel not in rec.entries and rel not in found:
                    data = _read(path)
                    found[rel] = data
                    if data is not None:
                        changed.append((rel, path, data))
            if changed and rec.in_flight:
                out.tampered = [rel for rel, _, _ in changed]
                out.in_flight = rec.in_flight
                _restore(paths, rec, changed, found, log, now)
            elif changed:
                # a file that does not even read is not taken into the books: the tick reports it (or
                # restores state.yaml from its .bak) exactly as it would without them
                changed = [(rel, path, data) for rel, path, data in changed
                           if _readable((parsers or {}).get(path), path, data)]
                out.accepted = [rel for rel, _, _ in changed]
                for rel, path, data in changed:
                    rec.note(rel, digest(data) if data is not None else None,
                             _decode(data), _stat(path),
                             copy=path in core or bool(rec.entries.get(rel, {}).get("copy")))
                state_rel = _rel(paths, paths.state_yaml)
                if state_rel in out.accepted:
                    flying = _in_flight_text(_decode(found[state_rel]))
                    if flying is not None:
                        rec.set_in_flight(flying)
                if out.accepted:
                    log(_accepted_line(paths, out.accepted))
        out.in_flight = out.in_flight or rec.in_flight
        for path in (paths.state_yaml, paths.budget):
            rel = _rel(paths, path)
            data = found[rel] if rel in found else _read(path)
            out.texts[rel] = _decode(data)
    return out


def would_tamper(paths: RepoPaths) -> List[str]:
    """The files :func:`audit` would find changed behind autometta's back with a stage in flight (it would
    restore them and halt the repo), read without a lock or a write: for ``tick --dry-run``."""
    target = HomePaths.from_env().books_record(paths.root)
    try:
        doc = files.read_json(target)
    except UserError:
        return []  # no books yet: the first audit records the files as they are
    entries = doc.get("files") if isinstance(doc, dict) else None
    flying = doc.get("in_flight") if isinstance(doc, dict) else None
    if not isinstance(entries, dict) or not flying:
        return []
    out = []
    core = [paths.state_yaml, paths.state_backup, paths.budget]
    for rel, entry in sorted(entries.items()):
        path = paths.root / rel
        if not isinstance(entry, dict) or (path not in core and _stat(path) == entry.get("stat")):
            continue
        data = _read(path)
        sha = digest(data) if data is not None else None
        if not (_matches(entry, sha) or (sha is None and entry.get("sha256") is None
                                         and entry.get("pending") is None)):
            out.append(rel)
    out += [_rel(paths, path) for path in core if _rel(paths, path) not in entries and _read(path) is not None]
    return out


def _readable(parse: Optional[Callable[[str, str], Any]], path: Path, data: Optional[bytes]) -> bool:
    """Whether a changed file reads as the document it should be (one with no parser handed in does)."""
    if parse is None or data is None:
        return True
    text = _decode(data)
    if text is None:
        return False
    try:
        parse(text, str(path))
    except UserError:
        return False
    return True


def _restore(paths: RepoPaths, rec: Record, changed: List[Tuple[str, Path, Optional[bytes]]],
             found: Dict[str, Optional[bytes]], log: Log, now: Optional[float]) -> None:
    """Keep each changed file aside, put back the last copy autometta wrote (where it kept one)."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    for rel, path, data in changed:
        entry = rec.entries.get(rel)
        kept = ""
        if os.path.lexists(path):
            aside = path.with_name(f"{path.name}.tampered-{stamp}")
            os.replace(path, aside)
            kept = f"; the changed file is kept as {_rel(paths, aside)}"
        text = rec.copies.get(entry.get("sha256")) if entry and entry.get("copy") else None
        if text is not None:
            payload = text.encode("utf-8")
            files.atomic_write(path, payload, mode=0o600)
            found[rel] = payload
            if digest(payload) == entry["sha256"]:
                _settle(rec, rel, entry["sha256"], _stat(path))
            else:  # the copy was kept masked
                rec.note(rel, digest(payload), text, _stat(path), copy=True)
            what = "put back the last copy autometta wrote"
        else:
            found[rel] = None
            rec.note(rel, None, None, None, copy=False)  # no copy kept (an archived file): the halt says it
            what = "no copy to put back"
        log(f"books: {rel} in {paths.root} changed while {', '.join(rec.in_flight)} was in flight "
            f"({TAMPERED_MARKER}); {what}{kept}")

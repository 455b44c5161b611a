"""The tick log (:class:`TickLog`) and its lines about one repo: tagged with the repo, and a repeated line said once.

Every line the tick writes while it visits a repo carries the repo's path
after the time stamp (``<UTC ts> [<repo>] <message>``), so ``autometta log
--repo REPO`` and the attach log pane can follow one repo exactly.

A decision that changes nothing (``worker 4242 for 05-x still running,
skipping verifier dispatch``, ``no pending stages``, a park, a halt already
recorded) is written the first time it is made. While the next ticks make
the same decision it is not written again (a tick run by hand still echoes
it on stderr); when the decision changes, one line says how often and since
when it was made, then the new one follows::

    10:00:02Z [/src/proj] worker 4242 for 05-x still running, skipping verifier dispatch
    10:55:01Z [/src/proj] (worker 4242 for 05-x still running, skipping verifier dispatch: 12 ticks since 10:00:02Z)
    10:55:01Z [/src/proj] stage 05-x worker envelope status=pass, proceeding to verifier dispatch

What was last said per repo is kept in ``<home>/log/repeats/`` (the
controller's own folder: an agent cannot reach it to silence the log).
Each repo and each of its lanes (by stage id) is followed on its own. As a
quiet tick may write no line at all, every tick touches
``<home>/log/.last-tick`` (:func:`stamp`), which the views read to say when
the controller last ran.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from . import files, secrets
from .paths import HomePaths
from .timeutil import now_iso

TYPE_CHECKING = False  # not typing's: an idle tick imports no typing (tests/test_startup.py)
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, Optional

    #: ``write(message, repo, file)``: the tick log's writer (:class:`TickLog`).
    Writer = Callable[..., None]


class TickLog:
    """``<home>/log/tick-YYYY-MM-DD.log``: one ``<UTC ts> <message>`` line per decision.

    A line about one repo reads ``<UTC ts> [<repo>] <message>`` (:func:`tag`);
    ``file=False`` only echoes it (a decision the log already holds).
    """

    def __init__(self, home_paths: HomePaths, echo: bool = True) -> None:
        self.home = home_paths
        self.echo = echo

    def __call__(self, message: str, repo: Optional[Any] = None, file: bool = True) -> None:
        where = f"{tag(repo)} " if repo is not None else ""
        line = f"{now_iso()} {where}{secrets.redact(message)}"  # never a resolved secret
        try:
            if file:
                self.home.log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
                fd = os.open(str(self.home.tick_log()),  # O_NONBLOCK: a FIFO put in its place fails, never hangs
                             os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NONBLOCK", 0), 0o600)
                with open(fd, "a", encoding="utf-8") as handle:  # the log is the user's alone
                    handle.write(line + "\n")
        except OSError as exc:
            print(f"autometta tick: cannot write the tick log ({exc.strerror})", file=sys.stderr)
        if self.echo:
            print(line, file=sys.stderr)


def tag(repo: Path) -> str:
    """What follows the time stamp on a line about ``repo``."""
    return f"[{repo}]"


def stamp(home: HomePaths) -> None:
    """Mark that a tick ran (:attr:`HomePaths.tick_stamp`): its log may have had nothing new to say."""
    try:
        os.utime(home.tick_stamp)  # its time is what counts: cheaper than writing it
        return
    except OSError:
        pass
    try:
        home.log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.close(os.open(str(home.tick_stamp), os.O_WRONLY | os.O_CREAT | getattr(os, "O_NONBLOCK", 0),
                         0o600))  # the user's alone; a FIFO in its place fails, never hangs
    except OSError:
        pass


def memory_path(home: HomePaths, repo: Path) -> Path:
    digest = files.sha256_hex(str(repo).encode("utf-8", "surrogateescape"))[:16]
    return home.log_dir / "repeats" / f"{digest}.json"


class RepoLog:
    """A callable logger for one repo's lines, with :meth:`decision` for what may repeat."""

    def __init__(self, write: Writer, home: HomePaths, repo: Path, now: Optional[float] = None) -> None:
        self.write = write
        self.home = home
        self.repo = repo
        self.now = now
        self.path = memory_path(home, repo)
        self.before: Dict[str, Dict[str, Any]] = self._load()
        self.after: Dict[str, Dict[str, Any]] = {}
        self.changed = False

    def __call__(self, message: str) -> None:
        self.write(message, repo=self.repo)

    def _load(self) -> Dict[str, Dict[str, Any]]:
        try:
            doc = json.loads(files.read_text(self.path))
        except Exception:  # missing, unreadable, half-written: start afresh, lose only a count
            return {}
        if not isinstance(doc, dict) or doc.get("repo") != str(self.repo) or not isinstance(doc.get("said"), dict):
            return {}
        return {k: {"message": v["message"], "count": v["count"], "since": str(v.get("since") or "?")}
                for k, v in doc["said"].items()
                if isinstance(v, dict) and isinstance(v.get("message"), str) and isinstance(v.get("count"), int)
                and not isinstance(v.get("count"), bool)}

    def _ended(self, key: str) -> None:
        """The decision last said for ``key`` is no longer made: say how often it was, if more than once."""
        prev = self.before.pop(key, None)
        if prev is not None:
            self.changed = True
            if prev["count"] > 1:
                self(f"({prev['message']}: {prev['count']} ticks since {prev.get('since') or '?'})")

    def decision(self, key: str, message: str, transition: bool) -> None:
        """Log a decision for ``key`` (``serial``, a lane's stage id, ``claim``) once per change."""
        if transition:
            self._ended(key)
            self.after.pop(key, None)
            self(message)
            return
        prev = self.before.get(key)
        if prev is not None and prev["message"] == message:
            self.before.pop(key)
            self.after[key] = dict(prev, count=prev["count"] + 1)
            self.changed = True
            self.write(message, repo=self.repo, file=False)  # a tick run by hand still shows it
            return
        self._ended(key)
        self(message)
        self.after[key] = {"message": message, "count": 1, "since": now_iso(self.now)}
        self.changed = True

    def close(self) -> None:
        """After the tick's visit: end what was not said again, and remember what was.

        A visit that decided nothing (the repo was locked, or skipped) changes nothing.
        """
        if not self.changed:
            return
        for key in list(self.before):
            self._ended(key)
        try:
            if self.after:
                self._save(json.dumps({"repo": str(self.repo), "said": self.after}, sort_keys=True).encode("utf-8"))
            elif self.path.exists():
                self.path.unlink()
        except Exception:  # the log's memory must never break a tick
            pass

    def _save(self, data: bytes) -> None:
        """Rewrite the memory; in place when it fits (a count went up), which costs no new file each tick.

        It is a cache: a torn write reads as unreadable and only loses a count.
        """
        try:
            fd = os.open(str(self.path), os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        except OSError:
            fd = -1
        if fd >= 0:
            try:
                size = os.fstat(fd).st_size
                if len(data) < size:
                    os.pwrite(fd, data + b" " * (size - len(data) - 1) + b"\n", 0)
                    return
            finally:
                os.close(fd)
        files.ensure_dir(self.path.parent, mode=0o700)
        files.atomic_write(self.path, data + b" " * 16 + b"\n", mode=0o600, durable=False)  # room to grow

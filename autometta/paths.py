"""Every path autometta reads or writes, computed in one place.

The layout is the bash version's (spec §2), so an existing controller home
and an existing repo's ``state/`` keep working unchanged.
"""

from __future__ import annotations

import os
import time
from collections import namedtuple
from pathlib import Path

TYPE_CHECKING = False  # not typing's: an idle tick and status import no typing (tests/test_startup.py)
if TYPE_CHECKING:
    from typing import Mapping, Optional, Union

STATE_DIRNAME = "state"
MANIFEST_NAME = ".autometta.local.yaml"


def controller_home(env: Optional[Mapping[str, str]] = None) -> Path:
    """``$PHAT_CONTROLLER_HOME``, else ``~/.phat-controller`` (the bash default)."""
    environ = os.environ if env is None else env
    value = environ.get("PHAT_CONTROLLER_HOME")
    if value:
        return Path(value).expanduser()
    return Path(environ.get("HOME") or os.path.expanduser("~")) / ".phat-controller"


def build_ledger(env: Optional[Mapping[str, str]] = None) -> Path:
    """Where ``build_pyz.py`` notes which checkout each pyz (by sha256) was built from.

    Kept outside the pyz, so two builds of one commit are byte-identical
    wherever they are made, while ``check-deps`` can still find the checkout
    a copied pyz came from and say when it is stale.
    """
    environ = os.environ if env is None else env
    base = environ.get("XDG_STATE_HOME") or os.path.join(environ.get("HOME") or os.path.expanduser("~"),
                                                         ".local", "state")
    return Path(base) / "autometta" / "builds.json"


def _repo_key(repo: Union[str, Path], length: int, unnamed: str) -> str:
    """``<folder name>-<first length hex digits of the sha256 of its real path>``: a repo's name in the home."""
    from .files import sha256_hex  # not hashlib: every tick asks, an idle one too (tests/test_startup.py)

    real = os.path.realpath(str(repo))
    return f"{os.path.basename(real) or unnamed}-{sha256_hex(real.encode('utf-8', 'surrogateescape'))[:length]}"


class HomePaths(namedtuple("HomePaths", "root")):  # not a dataclass: every command builds one (and imports)
    __slots__ = ()
    root: Path

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None) -> "HomePaths":
        return cls(controller_home(env))

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def subscribers(self) -> Path:
        return self.root / "subscribers"

    @property
    def subscriber_template(self) -> Path:
        return self.subscribers / "template.yaml"

    @property
    def log_dir(self) -> Path:
        return self.root / "log"

    @property
    def cron_log(self) -> Path:
        return self.log_dir / "cron.log"

    @property
    def dashboard(self) -> Path:
        return self.root / "dashboard"

    @property
    def dashboard_page(self) -> Path:
        return self.dashboard / "index.html"

    @property
    def dashboard_data(self) -> Path:
        return self.dashboard / "data.json"

    @property
    def events(self) -> Path:
        """Every event raised for a human, one JSON line each: the notification ledger and journal."""
        return self.root / "events.jsonl"

    @property
    def events_lock(self) -> Path:
        return self.root / ".events.lock"

    @property
    def events_pending(self) -> Path:
        """Present while a delivery may still be owed (retry due, or cut short): the tick looks then only."""
        return self.root / ".events-pending"

    @property
    def reports(self) -> Path:
        """Reports autometta writes for a person (retro-grade), one folder per repo; never in a work tree."""
        return self.root / "reports"

    @property
    def tick_stamp(self) -> Path:
        """Touched by every tick: when the controller last ran, though a quiet tick writes no log line."""
        return self.log_dir / ".last-tick"

    @property
    def books(self) -> Path:
        """Digests of the files autometta writes in each repo's ``state/`` (see autometta.books.digests)."""
        return self.root / "books"

    def books_record(self, repo_root: Path) -> Path:
        """``books/<repo-name>-<hash of its real path>.json``: one record per repo."""
        return self.books / f"{_repo_key(repo_root, 12, 'repo')}.json"

    @property
    def ledger_dir(self) -> Path:
        """The spend ledger: one append-only ``<repo>-<hash>.jsonl`` per repo (autometta.books.ledger)."""
        return self.root / "ledger"

    def ledger(self, repo: Union[str, Path]) -> Path:
        """The ledger file of ``repo``: its folder name and a hash of its real path."""
        return self.ledger_dir / f"{_repo_key(repo, 10, 'root')}.jsonl"

    @property
    def open_runs(self) -> Path:
        """Runs started by hand and not booked yet: one JSON file each, removed once booked."""
        return self.ledger_dir / "open"

    @property
    def parks(self) -> Path:
        """Billing routes parked on a usage limit, for every repo on this host (autometta.books.parking)."""
        return self.root / "parked.json"

    @property
    def turns(self) -> Path:
        """Whose turn it is under ``max_per_fire``: the weighted round robin's passes (autometta.tick.turns)."""
        return self.root / "turns.json"

    def tick_log(self, now: Optional[float] = None) -> Path:
        """``log/tick-YYYY-MM-DD.log``; the file date is local time, as in bash."""
        day = time.strftime("%Y-%m-%d", time.localtime(time.time() if now is None else now))
        return self.log_dir / f"tick-{day}.log"


class RepoPaths(namedtuple("RepoPaths", "root")):
    __slots__ = ()
    root: Path

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIRNAME

    @property
    def state_yaml(self) -> Path:
        return self.state_dir / "state.yaml"

    @property
    def state_backup(self) -> Path:
        """The rolling copy of the last valid ``state.yaml`` (see autometta.books.state.save_state)."""
        return self.state_dir / "state.yaml.bak"

    @property
    def budget(self) -> Path:
        return self.state_dir / "budget.json"

    @property
    def lock(self) -> Path:
        return self.state_dir / ".autometta.lock"

    @property
    def bash_lock_dir(self) -> Path:
        """The bash version's ``mkdir`` lock, honoured during a migration."""
        return self.state_dir / ".tick.lock"

    @property
    def logs(self) -> Path:
        return self.state_dir / "logs"

    @property
    def handoffs(self) -> Path:
        return self.state_dir / "handoffs"

    @property
    def verifiers(self) -> Path:
        return self.state_dir / "verifiers"

    @property
    def active_agents(self) -> Path:
        return self.state_dir / "active-agents"

    @property
    def recent_agents(self) -> Path:
        return self.state_dir / "recent-agents"

    @property
    def heartbeat(self) -> Path:
        return self.state_dir / "heartbeat.json"

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST_NAME

    @property
    def gitignore(self) -> Path:
        return self.root / ".gitignore"

    def log(self, stage_id: str, role: str) -> Path:
        return self.logs / f"{stage_id}-{role}.log"

    def exit_record(self, stage_id: str, role: str) -> Path:
        """The runner's record of how an agent ended (``agents.spawn.read_exit``)."""
        return self.logs / f"{stage_id}-{role}.exit.json"

    def oneshot_record(self, stage_id: str) -> Path:
        """What ``autometta verify`` noted for ``autometta accept``: the tree the verifier judged."""
        return self.logs / f"{stage_id}-oneshot.json"

    def claim_record(self, stage_id: str) -> Path:
        """``isolation: tree``: the paths already changed when the stage was claimed (autometta.git.isolation)."""
        return self.logs / f"{stage_id}-claim.json"

    @property
    def archive(self) -> Path:
        """Old envelopes and verdicts of a re-queued stage, kept for review."""
        return self.state_dir / "archive"

    def handoff(self, stage_id: str) -> Path:
        return self.handoffs / f"{stage_id}.json"

    @property
    def rebriefs(self) -> Path:
        """What each re-briefed worker was told on top of its prompt (``Max loops``), kept for review."""
        return self.state_dir / "rebriefs"

    def rebrief(self, stage_id: str, loop: int) -> Path:
        return self.rebriefs / f"{stage_id}-{loop}.md"

    def verifier_artefact(self, stage_id: str) -> Path:
        """Where autometta keeps a stage's accepted verdict (the bash version's path); see autometta.verdicts."""
        return self.verifiers / f"{stage_id}.json"

    def verifier_run_artefact(self, stage_id: str, nonce: str) -> Path:
        """The verdict path made for one verifier dispatch: ``state/verifiers/<id>.<nonce>.json``."""
        return self.verifiers / f"{stage_id}.{nonce}.json"

    def check_contained(self) -> None:
        """Refuse a ``state/`` (or a folder in it) that is a symlink: writes would land outside the repo.

        A symlinked *file* in ``state/`` is harmless (the atomic write replaces
        it, never writes through it); a symlinked folder is not.
        """
        state = os.path.join(str(self.root), STATE_DIRNAME)  # strings, not Paths: every tick asks three times
        for folder in [state] + [os.path.join(state, name) for name in (
                "logs", "handoffs", "verifiers", "archive", "active-agents", "recent-agents")]:
            if os.path.islink(folder):
                from .errors import UserError

                raise UserError(f"{folder}: is a symlink (to {os.readlink(folder)}); autometta refuses to "
                                "write state outside the repo: replace it with a real folder")

    @staticmethod
    def verifier_artefact_rel(stage_id: str) -> str:
        """As recorded in state.yaml's ``verifier_artefact`` (repo-relative)."""
        return f"{STATE_DIRNAME}/verifiers/{stage_id}.json"

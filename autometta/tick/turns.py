"""Fair scheduling under ``max_per_fire``: repos with work take turns, carried across ticks.

``max_per_fire`` in config.yaml bounds how many repos a tick *works on*: a
repo whose visit made a transition (a claim, a dispatch, an accounting, a
merge, a halt) took a turn; a repo with nothing to do, or only an agent
still running, costs nothing (the bash design: "total work per cron fire is
bounded by min(N_subscribers, max_per_fire)", and lower weight "fires first
when multiple repos have pending work").

The turn order is stride scheduling, a weighted round robin: each repo has a
*pass*, and its *stride* is its subscriber ``weight`` (missing: 9999), so a
repo of weight 50 gets two turns for every turn of a repo of weight 100, as
"lower fires first" has always meant, and none waits forever. A tick visits
repos by pass, lowest first (ties: the old weight-then-path order); a repo
that takes a turn moves its pass on by its stride. A repo that was idle
re-enters at the scheduler's clock (the pass of the last turn given), so
idleness banks no credit. The passes live in ``<home>/turns.json``, written
only when some repo took a turn (an idle tick writes nothing).

:func:`order` and :func:`take` are the pure decisions (table tests in
tests/test_turns.py); :func:`load` and :func:`record` the file.
"""

from __future__ import annotations

from ..paths import HomePaths

TYPE_CHECKING = False  # not typing's: every tick under max_per_fire loads the turns (tests/test_startup.py)
if TYPE_CHECKING:
    from typing import Any, Dict, Iterable, List, Sequence, Tuple

    #: (repo key, weight, tie-break) of one repo that may be visited.
    Entry = Tuple[str, Any, Any]

VERSION = 1
#: The stride of a subscriber without a weight (the bash tick sorted those last).
MISSING_WEIGHT = 9999
LOCK_WAIT_SECONDS = 10.0


def stride(weight: Any) -> int:
    """A repo's stride: its weight, at least 1; missing or odd weights get :data:`MISSING_WEIGHT`."""
    if isinstance(weight, bool) or not isinstance(weight, int):
        return MISSING_WEIGHT
    return max(1, weight)


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def effective(turns: Dict[str, Any], key: str) -> float:
    """Where ``key`` stands: its pass, or the clock when it is behind it (idleness banks nothing)."""
    clock = _number(turns.get("clock"))
    passes = turns.get("passes") if isinstance(turns.get("passes"), dict) else {}
    return max(clock, _number(passes.get(key, clock)))


def order(entries: Sequence[Entry], turns: Dict[str, Any]) -> List[str]:
    """The visiting order: lowest pass first; ties by weight, then the tie-break (the repo path)."""
    return [key for key, _w, _t in sorted(entries, key=lambda e: (effective(turns, e[0]), stride(e[1]), str(e[2])))]


def take(turns: Dict[str, Any], taken: Sequence[Tuple[str, Any]]) -> Dict[str, Any]:
    """``turns`` after one tick gave a turn to each ``(key, weight)`` of ``taken``.

    Each pass moves on by its stride from where the repo stood; the clock
    moves to the lowest of those (the scheduler's time: no repo served this
    tick is behind it), never back.
    """
    clock = _number(turns.get("clock"))
    passes = dict(turns.get("passes") if isinstance(turns.get("passes"), dict) else {})
    starts = {key: effective(turns, key) for key, _weight in taken}
    for key, weight in taken:
        passes[key] = starts[key] + stride(weight)
    if starts:
        clock = max(clock, min(starts.values()))
    return {"version": VERSION, "clock": clock, "passes": passes}


def load(hp: HomePaths) -> Dict[str, Any]:
    """The passes, or a fresh start when the file is missing or unreadable."""
    from .. import files
    from ..errors import UserError

    try:
        doc = files.read_json(hp.turns)
    except UserError:
        return {"version": VERSION, "clock": 0, "passes": {}}
    if not isinstance(doc, dict) or not isinstance(doc.get("passes"), dict):
        return {"version": VERSION, "clock": 0, "passes": {}}
    return doc


def record(hp: HomePaths, taken: Iterable[Tuple[str, Any]], keep: Iterable[str]) -> None:
    """Note the turns this tick gave (``(key, weight)`` in the order given); passes of repos not in ``keep``
    (unsubscribed) are dropped."""
    from .. import files

    taken = list(taken)
    if not taken:
        return
    files.ensure_dir(hp.root, mode=0o700)
    with files.locked(hp.root / ".turns.lock", timeout=LOCK_WAIT_SECONDS):
        turns = take(load(hp), taken)
        wanted = set(keep)
        turns["passes"] = {k: v for k, v in turns["passes"].items() if k in wanted}
        files.write_json(hp.turns, turns, mode=0o600)

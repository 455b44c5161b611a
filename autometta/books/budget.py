"""``state/budget.json``: caps, counters and the halt flag (spec §3.5).

The bash version enforced nothing when this file was missing or corrupt
(§15.12); here an unreadable budget is an error the tick turns into a halt.

Two kinds of number live here. The *counters* a cap compares
(``tokens_spent``, ``cost_usd_spent``, ``wall_clock_elapsed_seconds``, ...)
are the bash version's and keep its names; ``tick --reset-halt`` sets the one
that tripped back to 0. The *lifetime totals* (:data:`LIFETIME`) only ever
grow: what the repo has spent since autometta first accounted it, through any
number of resets. A budget.json without them (the bash version's, or an
older autometta's) starts them at the counters' values.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: an idle tick and status import no typing (tests/test_startup.py)
if TYPE_CHECKING:
    from typing import Any, Dict, Optional, Tuple

    from ..paths import RepoPaths

DEFAULTS: Dict[str, Any] = {
    "version": 1,
    "token_cap_total": 1000000,
    "tokens_spent": 0,
    "wall_clock_cap_seconds": 3600,
    "wall_clock_elapsed_seconds": 0,
    "clock_tick_cap": 100,
    "clock_ticks_used": 0,
    "consecutive_failure_cap": 3,
    "consecutive_failures": 0,
    "halted": False,
    "halt_reason": None,
    "halted_at": None,
}

#: (halt reason, counter, cap, cap optional?) in the order the tick checks them.
CAPS: Tuple[Tuple[str, str, str, bool], ...] = (
    ("token-cap", "tokens_spent", "token_cap_total", False),
    ("cost-cap", "cost_usd_spent", "cost_cap_usd", True),
    ("wall-clock-cap", "wall_clock_elapsed_seconds", "wall_clock_cap_seconds", False),
    ("tick-cap", "clock_ticks_used", "clock_tick_cap", False),
    ("failure-cap", "consecutive_failures", "consecutive_failure_cap", False),
)

#: (lifetime total, the counter it runs beside): never reset, and never below the counter.
LIFETIME: Tuple[Tuple[str, str], ...] = (
    ("lifetime_tokens", "tokens_spent"),
    ("lifetime_cost_usd", "cost_usd_spent"),
    ("lifetime_wall_clock_seconds", "wall_clock_elapsed_seconds"),
)

FILE_MODE = 0o600


# ------------------------------------------------------------------ pure: the tick's decision asks these
# (autometta.tick.decide imports nothing that reads or writes files: the file's own functions, below,
# import what they need when called)

def initial_budget() -> Dict[str, Any]:
    return dict(DEFAULTS)


def cap_hit(budget: Dict[str, Any]) -> Optional[str]:
    """The first cap the counters have reached, as a halt reason, or None.

    A required cap that is missing counts as reached, as it did under jq: an
    unbounded loop is worse than a halted one. ``cost_cap_usd`` is optional.
    """
    for reason, counter, cap, optional in CAPS:
        limit = budget.get(cap)
        if limit is None:
            if optional:
                continue
            return reason
        if (budget.get(counter) or 0) >= limit:
            return reason
    return None


def _number(value: Any) -> float:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def lifetime(budget: Dict[str, Any]) -> Dict[str, Any]:
    """The lifetime totals: each the larger of its own value and its counter's.

    A file from before they existed (or that another tool added spend to)
    therefore never shows a lifetime smaller than the spend since the last reset.
    """
    out: Dict[str, Any] = {}
    for total, counter in LIFETIME:
        value = max(_number(budget.get(total)), _number(budget.get(counter)))
        out[total] = round(value, 6) if total == "lifetime_cost_usd" else int(value)
    return out


def spend(budget: Dict[str, Any], *, tokens: int = 0, cost_usd: float = 0.0, seconds: int = 0) -> None:
    """Add a run's spend to the counters the caps compare and to the lifetime totals."""
    totals = lifetime(budget)
    if seconds:
        budget["wall_clock_elapsed_seconds"] = (budget.get("wall_clock_elapsed_seconds") or 0) + seconds
    if tokens:
        budget["tokens_spent"] = (budget.get("tokens_spent") or 0) + tokens
    if cost_usd:
        budget["cost_usd_spent"] = round((budget.get("cost_usd_spent") or 0) + cost_usd, 6)
    budget["lifetime_tokens"] = totals["lifetime_tokens"] + tokens
    budget["lifetime_cost_usd"] = round(totals["lifetime_cost_usd"] + cost_usd, 6)
    budget["lifetime_wall_clock_seconds"] = totals["lifetime_wall_clock_seconds"] + seconds


# ------------------------------------------------------------------ the file

def parse_budget(text: str, source: str) -> Dict[str, Any]:
    from .. import files, schema
    from ..errors import UserError

    doc = files.parse_json(text, source)
    if not isinstance(doc, dict):
        raise UserError(f"{source}: expected a JSON object; restore it from git or re-create it with the defaults")
    schema.check(doc, "budget", source)
    return doc


def load_budget(paths: RepoPaths, text: Optional[str] = None) -> Dict[str, Any]:
    """The budget; ``text``: its contents as already read (and checked by ``digests.audit``)."""
    from .. import files
    from ..errors import UserError

    paths.check_contained()  # every tick reads this first: a symlinked state/ stops it before any write
    if text is None:
        if not paths.budget.exists():
            raise UserError(f"{paths.budget}: not found; run 'autometta subscribe {paths.root}' to create it")
        text = files.read_text(paths.budget)
    return parse_budget(text, str(paths.budget))


def save_budget(paths: RepoPaths, doc: Dict[str, Any]) -> None:
    """Write atomically through :func:`autometta.books.digests.write_files` (its digest is recorded)."""
    from . import digests
    from .. import files, schema

    schema.check(doc, "budget", str(paths.budget))
    digests.write_files(paths, [(paths.budget, files.dump_json(doc))], mode=FILE_MODE)

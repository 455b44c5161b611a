"""The thresholds and intervals of the observability commands, by name.

Each setting has one name, one environment variable and one default. The
value comes from, in order: the environment variable (the bash version's
names where it had one), the ``observe:`` section of ``config.yaml``, the
default::

    observe:
      stall_seconds: 300            # a streaming log this old means stuck
      quiet_seconds: 60             # ... this old means quiet
      watch_poll_seconds: 60
      watch_stall_grace_seconds: 120

A value that is not a non-negative number is an error naming where it came
from and what to write instead.
"""

from __future__ import annotations

import math
import os

from ..errors import UserError
from ..frozen import Frozen

TYPE_CHECKING = False  # not typing's: status imports no typing (tests/test_startup.py)
if TYPE_CHECKING:
    from typing import Any, Dict, Mapping, Optional, Tuple

#: name -> (environment variable, default, meaning)
SETTINGS: Dict[str, Tuple[str, float, str]] = {
    "stall_seconds": ("PHAT_CONTROLLER_HEARTBEAT_STALL", 300,
                      "a running agent whose streaming log has not grown for this long is stuck"),
    "quiet_seconds": ("AUTOMETTA_HEARTBEAT_QUIET", 60,
                      "a running agent whose log has not grown for this long is quiet"),
    "watch_poll_seconds": ("PHAT_CONTROLLER_WATCH_POLL", 60, "how often 'autometta watch' looks"),
    "watch_stall_grace_seconds": ("PHAT_CONTROLLER_WATCH_STALL_GRACE", 120,
                                  "how long 'autometta watch' lets an agent stay stuck before exit 2"),
    "ticker_interval_seconds": ("PHAT_CONTROLLER_TICKER_INTERVAL", 5, "agent ticker refresh"),
    "status_ticker_interval_seconds": ("PHAT_CONTROLLER_STATUS_TICKER_INTERVAL", 5, "status --watch refresh"),
    "completed_limit": ("PHAT_CONTROLLER_COMPLETED_LIMIT", 8, "stages listed under COMPLETED"),
    "tick_warn_seconds": ("AUTOMETTA_TICK_WARN", 900, "no tick for this long: the tickers say WARN"),
    "tick_stale_seconds": ("AUTOMETTA_TICK_STALE", 3600, "no tick for this long: the tickers say STALE"),
    "tick_interval_seconds": ("AUTOMETTA_TICK_INTERVAL", 0,
                              "how often the tick runs (0: read the installed schedule, else 300); the "
                              "dashboard turns red when its data is older than two of these"),
}

SECTION = "observe"


class Settings(Frozen):
    """The values of :data:`SETTINGS`, read-only (``Settings(stall_seconds=600)``: the others as defaults).

    Not a dataclass: ``status`` builds one, and importing dataclasses costs it more than its own work.
    """

    __slots__ = tuple(SETTINGS)

    def __init__(self, **values: float) -> None:
        unknown = sorted(set(values) - set(SETTINGS))
        if unknown:
            raise TypeError(f"Settings() got an unexpected keyword argument {unknown[0]!r}")
        self._set((name, values.get(name, spec[1])) for name, spec in SETTINGS.items())


def _number(raw: Any, where: str, fix: str) -> float:
    if isinstance(raw, bool):
        raw = None
    value: Optional[float]
    if isinstance(raw, (int, float)):
        value = float(raw)
    else:
        try:
            value = float(str(raw).strip())
        except ValueError:
            value = None
    if value is None or math.isnan(value) or math.isinf(value) or value < 0:
        raise UserError(f"{where}: {raw!r} is not a number of seconds (or a count) >= 0; {fix}")
    return int(value) if value == int(value) else value


def load(config: Optional[Mapping[str, Any]] = None, env: Optional[Mapping[str, str]] = None,
         config_file: str = "config.yaml") -> Settings:
    """The settings from ``env`` (default ``os.environ``) over ``config`` over the defaults."""
    environ = os.environ if env is None else env
    section = (config or {}).get(SECTION) or {}
    if not isinstance(section, dict):
        raise UserError(f"{config_file}: '{SECTION}:' must be a mapping of setting names to numbers")
    unknown = sorted(set(section) - set(SETTINGS))
    if unknown:
        raise UserError(f"{config_file}: unknown setting '{SECTION}.{unknown[0]}'; "
                        f"known: {', '.join(SETTINGS)}")
    values: Dict[str, float] = {}
    for name, (var, default, _meaning) in SETTINGS.items():
        if environ.get(var, "").strip():
            values[name] = _number(environ[var], var, f"unset it or set e.g. {var}={default}")
        elif name in section:
            values[name] = _number(section[name], f"{config_file}: {SECTION}.{name}",
                                   f"write e.g. '{name}: {default}'")
        else:
            values[name] = default
    return Settings(**values)


def from_home(home: Any, env: Optional[Mapping[str, str]] = None) -> Settings:
    """:func:`load` with ``home``'s config.yaml (a missing file means defaults)."""
    from .. import home as homes

    config = homes.load_config(home) if home is not None else {}
    return load(config, env, str(home.config) if home is not None else "config.yaml")

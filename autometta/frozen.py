"""A read-only record with named fields, for the values views build on every run.

Not a dataclass: importing dataclasses (with inspect, ast and dis) costs
``status`` more than its own work. A subclass names its fields in
``__slots__`` and sets them once, in ``__init__``, with :meth:`Frozen._set`.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: start-up's paths import no typing (tests/test_startup.py)
if TYPE_CHECKING:
    from typing import Any, Dict, Iterable, Tuple


class Frozen:
    __slots__: Tuple[str, ...] = ()

    def _set(self, pairs: Iterable[Tuple[str, Any]]) -> None:
        for name, value in pairs:
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}")

    def __eq__(self, other: object) -> bool:
        return self.as_dict() == other.as_dict() if type(other) is type(self) else NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self.as_dict().values()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.as_dict().items())})"

    def as_dict(self) -> Dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

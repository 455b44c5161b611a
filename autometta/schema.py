"""Validate documents against the small subset of JSON Schema our schemas use.

The schemas in ``schemas/`` describe every file autometta reads or writes
(``state/state.yaml``, ``state/budget.json``, envelopes, verdicts, ...). They
are ordinary Draft 2020-12 documents, but they only use the keywords in
:data:`KNOWN_KEYWORDS`, so this module can check them without ``jsonschema``:

* ``type`` (a name or a list of names: object, array, string, integer,
  number, boolean, null). ``true`` is neither an integer nor a number; a
  float with no fractional part is an integer, as JSON Schema says; NaN and
  the infinities are not numbers at all.
* ``required``, ``properties``, ``additionalProperties`` (``false`` or a
  schema), ``enum``, ``const``, ``pattern`` (``re.search``), ``items``,
  ``minimum``, ``maximum``, ``minItems``, ``maxItems``, ``minLength``,
  ``maxLength`` (a longer string is not matched against its ``pattern``) and
  ``format: date-time`` (``YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)``).
* Annotations, which never fail: ``$schema``, ``$id``, ``title``,
  ``description``, ``default``, ``examples``, ``$comment``.

:func:`errors` lists every problem as ``<JSON path>: <what is wrong>``, the
path starting at ``$`` (``$.stages[2].status``). :func:`check` turns the first
of them into a one-line :class:`~autometta.errors.UserError` naming the file.
Keywords outside the subset are ignored here; the test suite uses
:func:`unknown_keywords` to make sure no schema relies on one.
"""

from __future__ import annotations

import json
import math
import os
import re

from . import timeutil
from .errors import UserError

TYPE_CHECKING = False  # not typing's: an idle tick and status import no typing (tests/test_startup.py)
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional, Pattern, Union

_ANNOTATIONS = frozenset(
    {"$schema", "$id", "title", "description", "default", "examples", "$comment"}
)

#: Every keyword a schema in ``schemas/`` may use.
KNOWN_KEYWORDS = frozenset(
    {
        "type",
        "required",
        "properties",
        "additionalProperties",
        "enum",
        "const",
        "pattern",
        "items",
        "minimum",
        "maximum",
        "minItems",
        "maxItems",
        "minLength",
        "maxLength",
        "format",
    }
) | _ANNOTATIONS

_TYPES = ("object", "array", "string", "integer", "number", "boolean", "null")
_FORMATS = frozenset({"date-time"})

_SHOW_LIMIT = 60

_patterns: Dict[str, Pattern[str]] = {}
_CACHE: Dict[str, Dict[str, Any]] = {}


# --- what a value is -------------------------------------------------------


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and math.isfinite(value)


def _is_type(value: Any, name: str) -> bool:
    if name == "object":
        return isinstance(value, dict)
    if name == "array":
        return isinstance(value, (list, tuple))
    if name == "string":
        return isinstance(value, str)
    if name == "integer":
        return _is_number(value) and (isinstance(value, int) or float(value).is_integer())
    if name == "number":
        return _is_number(value)
    if name == "boolean":
        return isinstance(value, bool)
    if name == "null":
        return value is None
    return False


def _equal(a: Any, b: Any) -> bool:
    """JSON equality: ``1 == 1.0`` but ``true != 1``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        return a == b
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return set(a) == set(b) and all(_equal(a[k], b[k]) for k in a)
    return False


def _digits(text: str) -> bool:
    return text.isdigit() and text.isascii()  # [0-9]+


def _is_date_time(text: str) -> bool:
    """``YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)``, a real date and time (RFC 3339).

    Told by position rather than by a regular expression: every state file holds a few, and compiling the
    expression costs an idle tick more than checking them.
    """
    if len(text) < 20 or text[4] != "-" or text[7] != "-" or text[10] != "T" or text[13] != ":" \
            or text[16] != ":":
        return False
    fields = (text[0:4], text[5:7], text[8:10], text[11:13], text[14:16], text[17:19])
    if not all(_digits(field) for field in fields):
        return False
    year, month, day, hour, minute, second = (int(field) for field in fields)
    rest = text[19:]
    if rest[:1] == ".":
        end = len(rest) - len(rest[1:].lstrip("0123456789"))  # after the fraction's digits
        if end == 1:
            return False
        rest = rest[end:]
    if rest != "Z" and not (len(rest) == 6 and rest[0] in "+-" and rest[3] == ":" and _digits(rest[1:3])
                            and _digits(rest[4:6]) and int(rest[1:3]) <= 23 and int(rest[4:6]) <= 59):
        return False
    if not timeutil.is_date(year, month, day):
        return False
    return hour <= 23 and minute <= 59 and second <= 60  # 60: a leap second


# --- how a value is shown in a message -------------------------------------


def _show(value: Any) -> str:
    """A short one-line rendering: strings quoted, JSON words for the rest."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        if len(value) > _SHOW_LIMIT:
            value = value[: _SHOW_LIMIT - 3] + "..."
        return repr(value)
    if isinstance(value, (int, float)):
        return repr(value)
    try:
        text = json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    if len(text) > _SHOW_LIMIT:
        text = text[: _SHOW_LIMIT - 3] + "..."
    return text


def _choice(value: Any) -> str:
    return value if isinstance(value, str) else _show(value)


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean " + _show(value)
    if isinstance(value, int):
        return "integer " + _show(value)
    if isinstance(value, float):
        return ("number " if math.isfinite(value) else "non-finite number ") + _show(value)
    if isinstance(value, str):
        return "string " + _show(value)
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _plural(count: Any, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


class _At:
    """The JSON path of a value inside ``parent``, as text only when a problem names it (most values have
    none: every tick validates a few documents, and writing each key's path out cost more than the checks)."""

    __slots__ = ("parent", "key", "index")

    def __init__(self, parent: Any, key: Any = None, index: Optional[int] = None) -> None:
        self.parent, self.key, self.index = parent, key, index

    def __str__(self) -> str:
        if self.index is not None:
            return f"{self.parent}[{self.index}]"
        return _key_path(str(self.parent), self.key)

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


def _key_path(path: str, key: Any) -> str:
    if isinstance(key, str) and key.isascii() and key.isidentifier():  # [A-Za-z_][A-Za-z0-9_]*
        return f"{path}.{key}"
    return f"{path}[{json.dumps(str(key))}]"


def _pattern(source: str) -> Pattern[str]:
    compiled = _patterns.get(source)
    if compiled is None:
        compiled = _patterns[source] = re.compile(source)
    return compiled


# --- validation ---------------------------------------------------------------


def errors(instance: Any, schema: Dict[str, Any]) -> List[str]:
    """Every way ``instance`` breaks ``schema``, as ``<JSON path>: <problem>``.

    The order is fixed: within a value, type first (a wrong type stops the
    checks of that value), then enum/const, then the checks of its kind; in
    an object, missing required fields in schema order, then the present
    keys sorted by name; in an array, items by index.
    """
    found: List[str] = []
    _validate(instance, schema, "$", found)
    return found


def _validate(value: Any, schema: Any, path: str, out: List[str]) -> None:
    if not isinstance(schema, dict):
        return
    wanted = schema.get("type")
    if wanted is not None:
        if isinstance(wanted, str):
            typed = _is_type(value, wanted)
        else:
            typed = False
            for name in wanted:  # a loop, not any(<generator>): this runs for every value of every document
                if _is_type(value, name):
                    typed = True
                    break
        if not typed:
            names = [wanted] if isinstance(wanted, str) else list(wanted)
            out.append(f"{path}: expected {' or '.join(names)}, got {_describe(value)}")
            return
    if "enum" in schema and not any(_equal(value, c) for c in schema["enum"]):
        choices = ", ".join(_choice(c) for c in schema["enum"])
        out.append(f"{path}: {_show(value)} is not one of {choices}")
    if "const" in schema and not _equal(value, schema["const"]):
        out.append(f"{path}: must be {_show(schema['const'])}, got {_show(value)}")
    if isinstance(value, str):
        _validate_string(value, schema, path, out)
    elif _is_number(value):
        _validate_number(value, schema, path, out)
    elif isinstance(value, dict):
        _validate_object(value, schema, path, out)
    elif isinstance(value, (list, tuple)):
        _validate_array(value, schema, path, out)


def _length_ok(value: Any, schema: Dict[str, Any], low: str, high: str, unit: str, path: str,
               out: List[str]) -> bool:
    """Check ``len(value)`` against the schema's ``low``/``high`` keywords; False when it is over the most."""
    least = schema.get(low)
    if least is not None and len(value) < least:
        out.append(f"{path}: expected at least {_plural(least, unit)}, got {len(value)}")
    most = schema.get(high)
    if most is not None and len(value) > most:
        out.append(f"{path}: expected at most {_plural(most, unit)}, got {len(value)}")
        return False
    return True


def _validate_string(value: str, schema: Dict[str, Any], path: str, out: List[str]) -> None:
    if not _length_ok(value, schema, "minLength", "maxLength", "character", path, out):
        return  # a runaway string is not worth a regular expression's time
    pattern = schema.get("pattern")
    if pattern is not None and not _pattern(pattern).search(value):
        out.append(f"{path}: {_show(value)} does not match {pattern}")
    if schema.get("format") == "date-time" and not _is_date_time(value):
        out.append(f"{path}: {_show(value)} is not a date-time like 2025-01-31T09:30:00Z")


def _validate_number(value: Any, schema: Dict[str, Any], path: str, out: List[str]) -> None:
    low = schema.get("minimum")
    if low is not None and value < low:
        out.append(f"{path}: {_show(value)} is less than the minimum {_show(low)}")
    high = schema.get("maximum")
    if high is not None and value > high:
        out.append(f"{path}: {_show(value)} is greater than the maximum {_show(high)}")


def _validate_object(value: Dict[Any, Any], schema: Dict[str, Any], path: str, out: List[str]) -> None:
    for name in schema.get("required", ()):
        if name not in value:
            out.append(f"{path}: missing required field {_show(name)}")
    properties = schema.get("properties", {})
    extra = schema.get("additionalProperties", True)
    for key in sorted(value, key=str):
        if key in properties:
            _validate(value[key], properties[key], _At(path, key), out)
        elif extra is False:
            hint = ""
            import difflib  # only to name the key meant

            close = difflib.get_close_matches(str(key), list(properties), n=1)
            if close:
                hint = f" (did you mean {_show(close[0])}?)"
            out.append(f"{path}: unknown field {_show(key)}{hint}")
        elif isinstance(extra, dict):
            _validate(value[key], extra, _At(path, key), out)


def _validate_array(value: Any, schema: Dict[str, Any], path: str, out: List[str]) -> None:
    _length_ok(value, schema, "minItems", "maxItems", "item", path, out)
    items = schema.get("items")
    if isinstance(items, dict):
        for index, item in enumerate(value):
            _validate(item, items, _At(path, index=index), out)


# --- schemas by name ------------------------------------------------------------


def _schema(name: str) -> Dict[str, Any]:
    cached = _CACHE.get(name)
    if cached is None:
        from . import resources  # imported late: resources may import us

        relpath = f"schemas/{name}.json"
        try:
            cached = json.loads(resources.read_text(relpath))
        except ValueError as exc:
            raise ValueError(f"{relpath}: not valid JSON ({exc})") from exc
        _CACHE[name] = cached
    return cached


def load_schema(name: str) -> Dict[str, Any]:
    """The schema ``schemas/<name>.json`` (e.g. ``"state"``), read once and cached.

    Returns a copy, so callers may change it freely.
    """
    import copy

    return copy.deepcopy(_schema(name))


def problems(instance: Any, name: str) -> List[str]:
    """:func:`errors` against ``schemas/<name>.json`` (read once and cached); empty means valid."""
    return errors(instance, _schema(name))


def check(instance: Any, name: str, source: Union[str, "os.PathLike[str]"]) -> None:
    """Raise :class:`UserError` unless ``instance`` matches ``schemas/<name>.json``.

    ``source`` names the file the document came from; the message is one
    line: ``<source>: <JSON path>: <problem> (and N more); see schemas/<name>.json``.
    """
    problems = errors(instance, _schema(name))
    if not problems:
        return
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    raise UserError(f"{os.fspath(source)}: {problems[0]}{more}; see schemas/{name}.json")


# --- schema self-check ------------------------------------------------------------


def unknown_keywords(schema: Any, where: str = "#") -> List[str]:
    """What in ``schema`` this validator would not understand.

    Walks ``properties``, ``additionalProperties`` and ``items``, and lists
    keywords outside :data:`KNOWN_KEYWORDS`, type names outside the seven JSON
    types and formats other than ``date-time``, each as ``<schema pointer>: ...``
    (``#/properties/stages/items: unknown keyword 'maxLength'``). Empty means
    every check in the schema is enforced.
    """
    found: List[str] = []
    if not isinstance(schema, dict):
        return found
    for key in schema:
        if key not in KNOWN_KEYWORDS:
            found.append(f"{where}: unknown keyword {_show(key)}")
    wanted = schema.get("type")
    if wanted is not None:
        for name in [wanted] if isinstance(wanted, str) else wanted:
            if name not in _TYPES:
                found.append(f"{where}: unknown type {_show(name)}")
    if "format" in schema and schema["format"] not in _FORMATS:
        found.append(f"{where}: unknown format {_show(schema['format'])}")
    properties = schema.get("properties")
    if isinstance(properties, dict):
        for name, sub in properties.items():
            pointer = str(name).replace("~", "~0").replace("/", "~1")
            found.extend(unknown_keywords(sub, f"{where}/properties/{pointer}"))
    for keyword in ("additionalProperties", "items"):
        found.extend(unknown_keywords(schema.get(keyword), f"{where}/{keyword}"))
    return found

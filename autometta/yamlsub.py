"""The YAML subset autometta reads and writes: its own files and those of the bash version.

:func:`loads` reads block mappings and sequences, plain, quoted and block
(``|``/``>``) scalars, comments, ``[]``, ``{}`` and small flow sequences of
scalars. Plain scalars resolve with the YAML 1.2 core schema (``08`` and
timestamps stay strings); keys are always strings. :func:`dumps` writes the
layout of ``yq -P`` and double-quotes every string a YAML 1.1 or 1.2 reader
could take for something else. Anything outside the subset (anchors, tags, flow
mappings, several documents, tab indentation, duplicate keys...) raises
:class:`YAMLError`: ``source:line:col: what was found; what is supported``.
"""

from __future__ import annotations

import math
import re

from .errors import UserError

TYPE_CHECKING = False  # not typing's: an idle tick and status import no typing (tests/test_startup.py)
if TYPE_CHECKING:
    from typing import Any

__all__ = ["YAMLError", "loads", "dumps"]


class YAMLError(UserError):
    """A document outside the supported subset, located by 1-based line and column."""

    def __init__(self, source: str, line: int, col: int, found: str, supported: str) -> None:
        super().__init__(f"{source}:{line}:{col}: {found}; {supported}")
        self.source, self.line, self.col = source, line, col


_NULLS = frozenset(["", "~", "null", "Null", "NULL"])
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
# Plain scalars that are numbers (YAML 1.2 core schema). An integer in decimal is told without a regular
# expression (:func:`_resolve`); these are compiled on first use (``re`` keeps them), which reading
# autometta's own files (an idle tick) never needs.
_HEX = r"0x[0-9a-fA-F]+"
_OCT = r"0o[0-7]+"
_FLOAT = r"[-+]?(?:(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[0-9]+[eE][-+]?[0-9]+)"
_INF = r"[-+]?\.(?:inf|Inf|INF)"
_NAN = r"\.(?:nan|NaN|NAN)"
# Strings that some reader (YAML 1.2 core, YAML 1.1 as in PyYAML, go-yaml) takes for another type.
_LOOKALIKE = (  # compiled on first use: only writing needs it
    r"[-+]?(?:0[bBoOxX][0-9a-fA-F_]*|[0-9][0-9_]*(?:\.[0-9_]*)?(?:[eE][-+]?[0-9_]*)?"
    r"|\.[0-9][0-9_]*(?:[eE][-+]?[0-9_]*)?)"  # numbers in any base, with or without '_'
    r"|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?"  # sexagesimal, 12:30
    r"|[-+]?\.(?:inf|Inf|INF|nan|NaN|NAN)|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt \t].*)?"
    r"|y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF|true|True|TRUE|false|False|FALSE"
    r"|~|null|Null|NULL|<<|="
)
# What an emitter may write raw: libyaml's printable characters, minus NEL, LS, PS and BOM.
_PRINTABLE = "\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff"
#: compiled on first use (``re`` keeps them): their ranges take milliseconds to compile, and only writing needs them
_UNSAFE = f"[^{_PRINTABLE}]"
_UNSAFE_IN_BLOCK = f"[^\n{_PRINTABLE}]"
_INDICATORS = frozenset("-?:,[]{}#&*!|>'\"%@`")
_ESCAPES = {"\0": "0", "\a": "a", "\b": "b", "\t": "t", "\n": "n", "\v": "v", "\f": "f", "\r": "r",
            "\x1b": "e", '"': '"', "\\": "\\", "\x85": "N", "\u2028": "L", "\u2029": "P"}
_UNESCAPES = {v: k for k, v in _ESCAPES.items()}
_UNESCAPES.update({" ": " ", "/": "/", "\t": "\t", "_": "\xa0"})
_REFUSED_START = {
    "&": ("an anchor", "anchors and aliases are not supported (write the value out in full)"),
    "*": ("an alias", "anchors and aliases are not supported (write the value out in full)"),
    "!": ("a tag", "tags are not supported (remove it; quote the value if it must be a string)"),
}
_REFUSED_START.update(dict.fromkeys("%@`", ("reserved character", "quote the value")))
_SPACE = " \t"
_NO_NUL = "no file autometta reads holds one (no path, identity or message may: the system refuses them)"


def _resolve(text: str) -> Any:
    """The value of a plain scalar under the YAML 1.2 core schema."""
    if text in _NULLS:
        return None
    if text in _BOOLS:
        return _BOOLS[text]
    if text[0] not in "0123456789+-.":
        return text
    digits = text[1:] if text[0] in "+-" else text
    if digits.isdigit() and digits.isascii() and (digits[0] != "0" or len(digits) == 1):
        return int(text)  # [-+]?(?:0|[1-9][0-9]*)
    if re.fullmatch(_HEX, text) or re.fullmatch(_OCT, text):
        return int(text[2:], 16 if text[1] == "x" else 8)
    if re.fullmatch(_FLOAT, text):
        return float(text)
    if re.fullmatch(_INF, text):
        return -math.inf if text[0] == "-" else math.inf
    return math.nan if re.fullmatch(_NAN, text) else text


# --- loading -----------------------------------------------------------------


#: Deepest nesting of lists and mappings accepted (as files.MAX_DEPTH, for JSON).
MAX_DEPTH = 64


def loads(text: str, source: str = "<string>", *, max_depth: int = MAX_DEPTH, allow_nul: bool = False) -> Any:
    """Parse one YAML document of the supported subset; ``source`` names it in errors.

    Lists and mappings nested more than ``max_depth`` levels are refused at the
    line where they pass it, and so is a NUL character, raw or escaped, unless
    ``allow_nul``: no file autometta reads holds one, and the operating system
    refuses it in a path or a command's argument.
    """
    try:
        return _Parser(text, source, max_depth, allow_nul).document()
    except RecursionError:
        raise YAMLError(source, 1, 1, "found nesting deeper than this reader supports",
                        "no file autometta reads is nested this deeply") from None


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _skip_space(s: str, i: int) -> int:
    return len(s) - len(s[i:].lstrip(_SPACE))


def _ws_after(s: str, i: int) -> bool:
    return i + 1 == len(s) or s[i + 1] in _SPACE


def _is_item(s: str, col: int) -> bool:
    return s[col] == "-" and _ws_after(s, col)


def _is_marker(s: str, marker: str) -> bool:
    return s.startswith(marker) and (len(s) == 3 or s[3] in _SPACE)


def _comment_at(s: str, i: int, start: int) -> bool:
    """Whether a comment starts at ``s[i]`` (a '#' after white space, or at ``start``)."""
    return s[i] == "#" and (i == start or (i > 0 and s[i - 1] in _SPACE))


def _q(text: str) -> str:
    text = text.strip()
    return "'" + (text if len(text) <= 40 else text[:37] + "...") + "'"


def _token(s: str, col: int) -> str:
    end = col + 1
    while end < len(s) and s[end] not in " \t,[]{}":
        end += 1
    return _q(s[col:end])


def _quote_end(s: str, col: int) -> int:
    """Index of the quote closing the one at ``col`` on the same line, or -1.

    What ``"(?:[^"\\\\]|\\\\.)*"`` and ``'(?:[^']|'')*'`` match, without compiling them.
    """
    i = col + 1
    if s[col] == "'":
        pair = -1
        while True:
            end = s.find("'", i)
            if end < 0:
                return pair  # as the pattern backtracks: the last '' read as an escape closes it after all
            if s[end + 1:end + 2] != "'":
                return end
            pair, i = end, end + 2  # '' is an escaped quote
    while True:
        end = s.find('"', i)
        if end < 0:
            return -1
        escape = s.find("\\", i, end)
        if escape < 0:
            return end
        i = escape + 2  # a backslash escapes the next character, a quote too


class _Parser:
    """Line-oriented recursive descent over 0-based (line index, column) positions.

    Node methods return ``(value, next_line)``, the first line they did not consume.
    """

    def __init__(self, text: str, source: str, max_depth: int = MAX_DEPTH, allow_nul: bool = False) -> None:
        self.src = source
        self.max_depth, self.depth, self.allow_nul = max_depth, 0, allow_nul
        text = text[1:] if text.startswith("\ufeff") else text
        self.lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")  # \r\n, \r or \n
        if "\0" in text and not allow_nul:
            li = next(i for i, line in enumerate(self.lines) if "\0" in line)
            self.fail(li, self.lines[li].index("\0"), "found a NUL character", _NO_NUL)
        self.final_break = len(self.lines) > 1 and self.lines[-1] == ""
        if self.final_break:
            del self.lines[-1]  # the break ends the last line; it does not start another
        self.end = len(self.lines)

    def fail(self, li: int, col: int, found: str, supported: str) -> None:
        raise YAMLError(self.src, li + 1, col + 1, found, supported)

    def next_content(self, li: int) -> int | None:
        """The first line at or after ``li`` that is not blank or a comment."""
        while li < self.end:
            s = self.lines[li]
            body = s.lstrip(_SPACE)
            if body and body[0] != "#":
                lead = s[:len(s) - len(body)]
                if "\t" in lead:
                    self.fail(li, lead.index("\t"), "found a tab character in the indentation",
                              "indent with spaces only")
                return li
            li += 1
        return None

    def document(self) -> Any:
        lines, start = self.lines, 0
        first = self.next_content(0)
        if first is not None and lines[first].startswith("%"):
            self.fail(first, 0, f"found a directive {_token(lines[first], 0)}",
                      "directives are not supported (delete the line)")
        if first is not None and _is_marker(lines[first], "---"):
            p = _skip_space(lines[first], 3)
            if p < len(lines[first]) and lines[first][p] != "#":
                self.fail(first, p, "found content on the '---' line", "start the document on the next line")
            start = first + 1
        for j in range(start, len(lines)):
            if _is_marker(lines[j], "---"):
                self.fail(j, 0, "found a second document ('---')", "only one document per file is supported")
            if _is_marker(lines[j], "..."):
                p = _skip_space(lines[j], 3)
                extra = j if p < len(lines[j]) and lines[j][p] != "#" else self.next_content(j + 1)
                if extra is not None:
                    self.fail(extra, p if extra == j else _indent(lines[extra]),
                              "found content after the document end marker '...'",
                              "only one document per file is supported")
                self.end = j
                break
        li = self.next_content(start)
        if li is None:
            return None
        value, li = self.block_node(li, _indent(lines[li]), -1)
        extra = self.next_content(li)
        if extra is not None:
            self.fail(extra, _indent(lines[extra]), "found more content after the document's top-level value",
                      "check the indentation of this line")
        return value

    def check_start(self, li: int, col: int) -> None:
        """Refuse node properties and indicators the subset does not support."""
        s = self.lines[li]
        ch = s[col]
        if ch in _REFUSED_START:
            what, supported = _REFUSED_START[ch]
            self.fail(li, col, f"found {what} {_token(s, col) if ch in '&*!' else _q(ch)}", supported)
        if ch == "?" and _ws_after(s, col):
            self.fail(li, col, "found a complex key ('? ')",
                      "only single-line plain or quoted keys are supported")
        if ch == ":" and _ws_after(s, col):
            self.fail(li, col, "found ':' with no key before it", "write 'key: value'")
        if ch in "]},":
            self.fail(li, col, f"found unexpected {_q(ch)}",
                      "quote the value if it starts with this character")

    def deeper(self, li: int, col: int) -> None:
        self.depth += 1
        if self.depth > self.max_depth:
            self.fail(li, col, f"found lists or mappings nested more than {self.max_depth} levels deep",
                      "no file autometta reads nests like this (restore it, or delete it)")

    def block_node(self, li: int, col: int, parent: int) -> tuple[Any, int]:
        """The node at (li, col) in block context, inside a collection indented ``parent``."""
        self.check_start(li, col)
        if _is_item(self.lines[li], col):
            self.deeper(li, col)
            try:
                return self.sequence(li, col, parent)
            finally:
                self.depth -= 1
        if self.key_at(li, col) is not None:
            self.deeper(li, col)
            try:
                return self.mapping(li, col)
            finally:
                self.depth -= 1
        return self.inline(li, col, parent)

    def key_at(self, li: int, col: int) -> tuple[str, int] | None:
        """``(key, column after its ':')`` if a single-line mapping key starts at (li, col)."""
        s = self.lines[li]
        if s[col] in "|>[{":
            return None
        if s[col] in "\"'":
            end = _quote_end(s, col)
            p = _skip_space(s, end + 1)
            if end < 0 or p == len(s) or s[p] != ":" or not _ws_after(s, p):
                return None
            return self.quoted(li, col, -1)[0], p + 1
        for i in range(col, len(s)):
            if _comment_at(s, i, -1):
                return None
            if s[i] == ":" and _ws_after(s, i):
                return s[col:i].rstrip(_SPACE), i + 1
        return None

    def mapping(self, li: int, col: int) -> tuple[dict, int]:
        result: dict = {}
        seen: dict = {}
        while True:
            s = self.lines[li]
            self.check_start(li, col)
            if _is_item(s, col):
                self.fail(li, col, "found a sequence item ('- ') where a mapping key was expected",
                          "indent the list under its key, or remove the '- '")
            if s[col] == "{":
                self.empty_flow_map(li, col)
            found = self.key_at(li, col)
            if found is None:
                self.fail(li, col, f"found {_q(s[col:])} where a 'key: value' entry was expected",
                          "write each entry as 'key: value', with a space after the colon")
            key, vcol = found
            if key in seen:
                self.fail(li, col, f"found duplicate key {_q(key)} (first on line {seen[key] + 1})",
                          "each key may appear only once in a mapping")
            seen[key] = li
            result[key], li = self.map_value(li, vcol, col)
            nxt = self.next_content(li)
            if nxt is None:
                return result, self.end
            li, ind = nxt, _indent(self.lines[nxt])
            if ind < col:
                return result, li
            if ind > col:
                self.fail(li, ind, "found unexpected indentation",
                          f"align this line with the other keys of its mapping (column {col + 1})")

    def map_value(self, li: int, pos: int, col: int) -> tuple[Any, int]:
        s = self.lines[li]
        p = _skip_space(s, pos)
        if p < len(s) and s[p] != "#":
            return self.inline(li, p, col)
        nxt = self.next_content(li + 1)
        if nxt is not None:
            ind = _indent(self.lines[nxt])
            if ind > col:
                return self.block_node(nxt, ind, col)
            if ind == col and _is_item(self.lines[nxt], col):
                return self.sequence(nxt, col, col)  # a list at its key's indentation (PyYAML writes these)
        return None, li + 1

    def sequence(self, li: int, col: int, parent: int) -> tuple[list, int]:
        items = []
        while True:
            s = self.lines[li]
            p = _skip_space(s, col + 1)
            nxt = None if p < len(s) and s[p] != "#" else self.next_content(li + 1)
            if p < len(s) and s[p] != "#":
                value, li = self.block_node(li, p, col)
            elif nxt is not None and _indent(self.lines[nxt]) > col:
                value, li = self.block_node(nxt, _indent(self.lines[nxt]), col)
            else:
                value, li = None, li + 1
            items.append(value)
            nxt = self.next_content(li)
            if nxt is None:
                return items, self.end
            li, ind = nxt, _indent(self.lines[nxt])
            if ind < col:
                return items, li
            if ind > col:
                self.fail(li, ind, "found unexpected indentation",
                          f"align this line with the other '- ' items of its list (column {col + 1})")
            if not _is_item(self.lines[li], col):
                if col == parent:  # a list at its key's indentation ends at the next key
                    return items, li
                self.fail(li, col, f"found {_q(self.lines[li])} where a sequence item ('- ') was expected",
                          "start each list item with '- ', or outdent this line to the level of its key")

    def inline(self, li: int, col: int, parent: int) -> tuple[Any, int]:
        """A scalar or flow node starting mid-line at (li, col)."""
        s = self.lines[li]
        self.check_start(li, col)
        if _is_item(s, col):
            self.fail(li, col, "found a sequence item ('- ') on the same line as its key",
                      "start the list on the next line, indented under the key")
        if s[col] in "|>":
            return self.block_scalar(li, col, parent)
        if s[col] == "[":
            value, li, end = self.flow_seq(li, col)
        elif s[col] == "{":
            value, end = self.empty_flow_map(li, col), _skip_space(s, col + 1) + 1
        elif s[col] in "\"'":
            value, li, end = self.quoted(li, col, parent)
        else:
            return self.plain(li, col, parent)
        s = self.lines[li]
        p = _skip_space(s, end)
        if p < len(s) and not (s[p] == "#" and p > end):
            self.fail(li, p, f"found unexpected text {_q(s[p:])} after {_q(s[end - 1])}",
                      "only a comment may follow a quoted or flow value on its line")
        return value, li + 1

    def plain(self, li: int, col: int, parent: int) -> tuple[Any, int]:
        """A plain scalar; lines indented deeper than ``parent`` continue it, folded with spaces."""
        text, comment = self.plain_line(li, col, False)
        parts, last, blanks = [text], li, 0
        for j in range(li + 1, self.end):
            line = self.lines[j]
            body = line.strip(_SPACE)
            if comment or (body and (_indent(line) <= parent or body[0] == "#")):
                break
            if not body:
                blanks += 1
                continue
            text, comment = self.plain_line(j, len(line) - len(line.lstrip(_SPACE)), True)
            parts += ["\n" * blanks if blanks else " ", text]
            last, blanks = j, 0
        return _resolve("".join(parts)), last + 1

    def plain_line(self, li: int, col: int, continued: bool) -> tuple[str, bool]:
        """One line of a plain scalar, and whether a comment ended it."""
        s = self.lines[li]
        for i in range(col, len(s)):
            if _comment_at(s, i, -1):
                return s[col:i].rstrip(_SPACE), True
            if s[i] == ":" and _ws_after(s, i):
                if continued:
                    self.fail(li, col, f"found {_q(s[col:])} indented under a key that already has a value",
                              "fix the indentation, or quote the value if the ': ' is part of it")
                self.fail(li, i, f"found ': ' inside the plain value {_q(s[col:])}",
                          "quote the value, or put nested keys on their own lines")
        return s[col:].rstrip(_SPACE), False

    def quoted(self, li: int, col: int, parent: int) -> tuple[str, int, int]:
        """A quoted scalar at (li, col): ``(value, line, column after the closing quote)``."""
        lines, q, i, start = self.lines, self.lines[li][col], col + 1, li
        parts: list = []
        while True:
            s, keep, escaped_break = lines[li], len(parts), False
            while i < len(s):
                c = s[i]
                if c == q and not (q == "'" and s[i + 1:i + 2] == "'"):
                    return "".join(parts), li, i + 1
                if q == '"' and c == "\\":
                    if i + 1 == len(s):
                        escaped_break = True
                        break
                    parts.append(self.escape(li, i))
                    i += {"x": 4, "u": 6, "U": 10}.get(s[i + 1], 2)
                else:
                    parts.append(c)
                    i += 2 if c == q else 1  # '' in single quotes is one quote
                    if c in _SPACE:
                        continue
                keep = len(parts)
            if not escaped_break:
                del parts[keep:]  # a line break folds away the white space around it
            li, blanks = li + 1, 0
            while li < self.end and not lines[li].strip(_SPACE):
                li, blanks = li + 1, blanks + 1
            if li >= self.end or _indent(lines[li]) <= parent:
                kind = "double" if q == '"' else "single"
                self.fail(start, col, f"found an unterminated {kind}-quoted string",
                          f"close it with {q} (its continuation lines must be indented under its key)")
            parts.append("\n" * blanks if blanks or escaped_break else " ")
            i = _skip_space(lines[li], 0)

    def escape(self, li: int, i: int) -> str:
        s = self.lines[li]
        if s[i + 1] == "0" and not self.allow_nul:
            self.fail(li, i, "found an escaped NUL character '\\0'", _NO_NUL)
        if s[i + 1] in _UNESCAPES:
            return _UNESCAPES[s[i + 1]]
        n = {"x": 2, "u": 4, "U": 8}.get(s[i + 1], 0)
        digits = s[i + 2:i + 2 + n]
        if n and len(digits) == n and all(d in "0123456789abcdefABCDEF" for d in digits):
            if int(digits, 16) == 0 and not self.allow_nul:
                self.fail(li, i, f"found an escaped NUL character {_q(s[i:i + 2 + n])}", _NO_NUL)
            if int(digits, 16) <= 0x10FFFF:
                return chr(int(digits, 16))
        self.fail(li, i, f"found an invalid escape {_q(s[i:i + 2 + n])} in a double-quoted string",
                  "use \\\\, \\\", \\n, \\t, \\xXX, \\uXXXX or \\UXXXXXXXX, or single quotes")
        return ""

    def block_scalar(self, li: int, col: int, parent: int) -> tuple[str, int]:
        """A literal (``|``) or folded (``>``) scalar whose header is at (li, col)."""
        lines, s = self.lines, self.lines[li]
        i, chomp, explicit = col + 1, "", 0
        while i < len(s) and (s[i] in "+-" and not chomp or s[i] in "123456789" and not explicit):
            chomp, explicit = (s[i], explicit) if s[i] in "+-" else (chomp, int(s[i]))
            i += 1
        p = _skip_space(s, i)
        if p < len(s) and not (s[p] == "#" and p > i):
            self.fail(li, col, f"found an invalid block scalar header {_q(s[col:])}",
                      "write '|' or '>', optionally followed by '-' or '+' and one indentation digit")
        if explicit:
            ind = max(parent, 0) + explicit
        else:  # the first non-empty line sets the indentation (as in libyaml)
            k, ind = li + 1, max(parent + 1, 1)
            while k < self.end and not lines[k].strip(" "):
                k, ind = k + 1, max(ind, len(lines[k]))
            ind = max(ind, _indent(lines[k]) if k < self.end else 0)
        out: list = []
        j, last, blanks = li + 1, None, 0
        while j < self.end and (_indent(lines[j]) >= ind or not lines[j].strip(" ")):
            line = lines[j][ind:]
            j += 1
            if not line:
                blanks += 1
            elif last is None:
                out += ["\n" * blanks, line]
            elif s[col] == ">" and out[-1][0] not in _SPACE and line[0] not in _SPACE:
                out += ["\n" * blanks if blanks else " ", line]  # folded: a single break becomes a space
            else:
                out += ["\n" * (blanks + 1), line]
            if line:
                last, blanks = j - 1, 0
        text = "".join(out)
        if last is not None and chomp != "-" and (last < len(lines) - 1 or self.final_break):
            text += "\n"
        return text + ("\n" * blanks if chomp == "+" else ""), j

    def flow_seq(self, li: int, col: int) -> tuple[list, int, int]:
        """``[a, "b", 3]``, possibly over several lines: ``(list, line, column after ']')``."""
        start, items, i = (li, col), [], col + 1
        self.deeper(li, col)
        try:
            return self.flow_items(li, i, start, items)
        finally:
            self.depth -= 1

    def flow_items(self, li: int, i: int, start: tuple, items: list) -> tuple[list, int, int]:
        while True:
            li, i = self.flow_skip(li, i, start)
            s, c = self.lines[li], self.lines[li][i]
            if c == "]":
                return items, li, i + 1
            if c == "[":
                value, li, i = self.flow_seq(li, i)
            elif c == "{":
                value, i = self.empty_flow_map(li, i), _skip_space(s, i + 1) + 1
            elif c in "\"'":
                value, li, i = self.quoted(li, i, -1)
            elif c == ",":
                self.fail(li, i, "found an empty entry in a flow sequence", "remove the extra ','")
            else:
                self.check_start(li, i)
                if c in "|>?:#" or (c == "-" and (i + 1 == len(s) or s[i + 1] in " \t,]")):
                    self.fail(li, i, f"found {_q(c)} inside a flow sequence",
                              "only scalars, '[...]' and '{}' are supported inside '[...]' (quote the item)")
                j = i
                while j < len(s) and s[j] not in ",[]{}" and not _comment_at(s, j, -1):
                    if s[j] == ":" and (j + 1 == len(s) or s[j + 1] in " \t,[]{}"):
                        self.fail(li, j, "found a 'key: value' pair inside a flow sequence",
                                  "flow mappings are not supported (write the mapping in block style)")
                    j += 1
                value, i = _resolve(s[i:j].rstrip(_SPACE)), j
            items.append(value)
            li, i = self.flow_skip(li, i, start)
            c = self.lines[li][i]
            if c == "]":
                return items, li, i + 1
            if c != ",":
                self.fail(li, i, f"found {_q(c)} where ',' or ']' was expected", "separate items with ', '")
            i += 1

    def flow_skip(self, li: int, i: int, start: tuple) -> tuple[int, int]:
        """Skip white space, line breaks and comments inside a flow sequence."""
        while True:
            s = self.lines[li]
            i = _skip_space(s, i)
            if i < len(s) and not _comment_at(s, i, 0):
                return li, i
            li, i = li + 1, 0
            if li >= self.end:
                self.fail(start[0], start[1], "found an unterminated flow sequence '['", "close it with ']'")

    def empty_flow_map(self, li: int, col: int) -> dict:
        s = self.lines[li]
        p = _skip_space(s, col + 1)
        if p == len(s) or s[p] != "}":
            self.fail(li, col, f"found a flow mapping {_q(s[col:])}",
                      "only the empty flow mapping '{}' is supported (write the mapping in block style)")
        return {}


# --- dumping -----------------------------------------------------------------


def dumps(obj: Any) -> str:
    """``obj`` (dicts with str keys, lists, str, int, float, bool, None) laid out as ``yq -P`` does."""
    out: list = []
    _emit(obj, "", -2, False, out)
    return "\n".join(out) + "\n"


def _emit(value: Any, head: str, n: int, item: bool, out: list) -> None:
    """Append the lines of ``value``. ``head`` is its line so far (``key:``, ``-`` or '' at the top),
    ``n`` the indentation of the collection holding it; nested nodes go at ``n + 2``, and a
    collection inside a list item starts on the item's line (``- id: x``, ``- - a``)."""
    sep = " " if head else ""
    if isinstance(value, (dict, list)) and value:
        if head and not item:
            out.append(head)
        for i, entry in enumerate(value.items() if isinstance(value, dict) else value):
            lead = head + " " if item and i == 0 else " " * (n + 2)
            if isinstance(value, list):
                _emit(entry, lead + "-", n + 2, True, out)
            elif isinstance(entry[0], str):
                _emit(entry[1], lead + _string(entry[0]) + ":", n + 2, False, out)
            else:
                raise TypeError(f"YAML keys must be str, not {type(entry[0]).__name__}: {entry[0]!r}")
    elif isinstance(value, str) and _literal_ok(value):
        body = value.rstrip("\n")
        newlines = len(value) - len(body)
        out.append(head + sep + ("|-", "|", "|+")[min(newlines, 2)])
        out.extend(" " * max(n + 2, 2) + line if line else "" for line in body.split("\n"))
        out.extend([""] * (newlines - 1))
    else:
        out.append(head + sep + _scalar(value))


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return ".nan" if math.isnan(value) else ".inf" if value > 0 else "-.inf"
        mantissa, e, exponent = float.__repr__(value).partition("e")
        return mantissa + ("" if "." in mantissa else ".0") + e + exponent  # 1e-05 -> 1.0e-05
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, (dict, list)):
        return "{}" if isinstance(value, dict) else "[]"
    raise TypeError(f"cannot write {type(value).__name__} as YAML: {value!r}")


def _plain_ok(s: str) -> bool:
    return (s != "" and s[0] not in _INDICATORS and s[0] != " " and s[-1] not in " :" and ": " not in s
            and " #" not in s and not s.startswith("...") and not re.search(_UNSAFE, s)
            and not re.fullmatch(_LOOKALIKE, s, re.S) and isinstance(_resolve(s), str))


def _string(s: str) -> str:
    """``s`` plain when every reader takes it for that string, else double-quoted."""
    if _plain_ok(s):
        return s
    out = []
    for ch in s:
        code = ord(ch)
        if ch in _ESCAPES:
            out.append("\\" + _ESCAPES[ch])
        elif re.match(_UNSAFE, ch):
            out.append(("\\x%02X" if code < 0x100 else "\\u%04X" if code < 0x10000 else "\\U%08X") % code)
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _literal_ok(s: str) -> bool:
    """Whether a literal block scalar (``|``) gives back exactly ``s``."""
    if "\n" not in s or re.search(_UNSAFE_IN_BLOCK, s):
        return False
    lines = s.rstrip("\n").split("\n")
    first = next((line for line in lines if line), "")
    return first != "" and first[0] != " " and not any(line.endswith(" ") for line in lines)

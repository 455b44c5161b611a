"""The one template renderer: ``<<name>>`` placeholders, filled literally.

HTML comments are notes for whoever edits a template and are dropped; an
unfilled placeholder is an error here, before any prompt reaches an agent
(the bash version sent ``<<stage-id>>`` to workers verbatim, §15.13).
"""

from __future__ import annotations

import re
from typing import Mapping

from .errors import UserError

PLACEHOLDER = re.compile(r"<<([a-z0-9@._-]+)>>")
_COMMENT = re.compile(r"<!--.*?-->\n?", re.S)


def render(template: str, values: Mapping[str, str], source: str = "template") -> str:
    text = _COMMENT.sub("", template)

    def fill(match: "re.Match[str]") -> str:
        key = match.group(1)
        if key not in values:
            raise UserError(f"{source}: placeholder <<{key}>> has no value; "
                            f"fill it in the template or the card (known: {', '.join(sorted(values))})")
        return str(values[key])

    return PLACEHOLDER.sub(fill, text)


def unfilled(text: str) -> list:
    """Placeholders still present in ``text`` (after rendering, this must be empty)."""
    return sorted(set(PLACEHOLDER.findall(_COMMENT.sub("", text))))

"""The one template renderer: ``<<name>>`` placeholders, filled literally.

HTML comments are notes for whoever edits a template and are dropped; an
unfilled placeholder is an error here, before any prompt reaches an agent
(the bash version sent ``<<stage-id>>`` to workers verbatim, §15.13).

A template meant for people rather than agents (the stage card that
``autometta new-card`` writes) keeps its comments with ``keep_comments=True``;
placeholders written inside a kept comment are text, not slots.
"""

from __future__ import annotations

import re
from typing import Mapping

from .errors import UserError

PLACEHOLDER = re.compile(r"<<([a-z0-9@._-]+)>>")
_COMMENT = re.compile(r"<!--.*?-->\n?", re.S)
_COMMENT_SPLIT = re.compile(r"(<!--.*?-->)", re.S)


def render(template: str, values: Mapping[str, str], source: str = "template",
           keep_comments: bool = False) -> str:
    def fill(match: "re.Match[str]") -> str:
        key = match.group(1)
        if key not in values:
            raise UserError(f"{source}: placeholder <<{key}>> has no value; "
                            f"fill it in the template or the card (known: {', '.join(sorted(values))})")
        return str(values[key])

    if not keep_comments:
        return PLACEHOLDER.sub(fill, _COMMENT.sub("", template))
    parts = _COMMENT_SPLIT.split(template)
    return "".join(part if index % 2 else PLACEHOLDER.sub(fill, part) for index, part in enumerate(parts))


def unfilled(text: str) -> list:
    """Placeholders still present in ``text`` (after rendering, this must be empty)."""
    return sorted(set(PLACEHOLDER.findall(_COMMENT.sub("", text))))

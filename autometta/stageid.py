"""What a stage id looks like: two digits, optional letters, a dash and a slug (``05-add-login``, ``12b-fix``).

Its own module, standard library only, so the pure decision (:mod:`autometta.tick.decide`)
checks ids without importing the card parser.
"""

from __future__ import annotations

import re

STAGE_ID_RE = re.compile(r"^[0-9]{2}[a-z]*-[a-z0-9-]+$")

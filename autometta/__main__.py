"""``python -m autometta``: the same entry point as the ``autometta`` script and the pyz."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())

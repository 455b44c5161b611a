"""Write the dashboard, one self-contained HTML page, and print its path.

``<home>/dashboard/index.html``: per repo the stage queue with statuses,
the agents running now, halts, token and cost totals with a per-stage chart,
and the last ticks. Every stage id links to the stage's own page
(``stages/<repo>-<hash>/<id>.html``: what ``autometta show`` prints).
Everything is inside the pages (no network, works from file://);
``data.json`` beside it has the same data. The tick refreshes it after any
transition. ``--open`` opens it with the platform's opener.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys

from .. import home as homes
from ..errors import UserError
from ..observe import dashboard, settings
from ..paths import HomePaths


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--open", action="store_true", help="open the page in the default browser")
    parser.add_argument("--json", action="store_true", help="print the dashboard's data as JSON")


def opener() -> str:
    name = "open" if sys.platform == "darwin" else "xdg-open"
    found = shutil.which(name)
    if found is None:
        raise UserError(f"{name} not found; open the page yourself (its path is printed above)")
    return found


def run(args: argparse.Namespace) -> int:
    hp = HomePaths.from_env()
    homes.require_home(hp)
    conf = settings.from_home(hp)
    try:
        page, data = dashboard.generate_data(hp, conf)
    except dashboard.NotWritten as exc:
        if args.json:  # what the repos hold is known; only the files could not be written
            print(json.dumps(exc.data, indent=2))
        raise
    if args.json:  # what data.json now holds
        print(json.dumps(data, indent=2))
    else:
        print(page)
    if args.open:
        subprocess.Popen([opener(), page.as_uri()], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    return 0

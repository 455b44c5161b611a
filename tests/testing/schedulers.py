"""Shared pieces for the schedule tests: fake tools on PATH, crontabs.

The fixtures (``bin_dir``, ``crontab``, ``built_pyz``, ``controller``) are in
``tests/schedule/conftest.py``.

Fake tools are small Python scripts on a private ``bin/`` at the front of
PATH; each appends its argv (one JSON list per line) to ``<bin>/<name>.calls``.

``crontab`` comes in two kinds (the ``crontab`` fixture is parametrised):

* **real** -- Debian's ``/usr/bin/crontab`` (``apt-get install cron``). As root,
  a wrapper on PATH runs it as ``crontab -u nobody ...``: a scratch user's
  crontab, saved before the test and restored byte for byte after it, under a
  file lock so two test runs never interleave. Skipped when not root, when
  there is no ``nobody`` or no real crontab (a developer's own crontab is
  never touched).
* **fake** -- a script that keeps the table in a file, as ``crontab`` does.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List, Optional


ROOT = Path(__file__).resolve().parents[2]
SCRATCH_USER = "nobody"
REAL_CRONTAB = shutil.which("crontab", path="/usr/bin:/bin:/usr/local/bin")


def write_tool(bin_dir: Path, name: str, body: str = "") -> Path:
    """A Python script ``bin_dir/name`` that logs its argv, then runs ``body`` (argv in ``args``)."""
    calls = bin_dir / f"{name}.calls"
    script = bin_dir / name
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        "args = sys.argv[1:]\n"
        f"with open({str(calls)!r}, 'a') as handle:\n"
        "    handle.write(json.dumps(args) + '\\n')\n"
        + body
    )
    script.chmod(0o755)
    return script


def calls(bin_dir: Path, name: str) -> List[List[str]]:
    path = bin_dir / f"{name}.calls"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


FAKE_CRONTAB = """\
store = os.environ["FAKE_CRONTAB_FILE"]
if args == ["-l"]:
    if not os.path.exists(store):
        sys.stderr.write("no crontab for tester\\n")
        sys.exit(1)
    sys.stdout.buffer.write(open(store, "rb").read())
    sys.exit(0)
if args == ["-"]:
    data = sys.stdin.buffer.read()
    for line in data.decode("utf-8", "replace").splitlines():
        bare = line.strip()
        if bare and not bare.startswith("#") and "=" not in bare.split()[0] and len(bare.split()) < 6 \\
                and not bare.startswith("@"):
            sys.stderr.write('"-":0: bad minute\\nerrors in crontab file, can\\'t install.\\n')
            sys.exit(1)
    open(store, "wb").write(data)
    sys.exit(0)
if args == ["-r"]:
    os.remove(store)
    sys.exit(0)
sys.exit(2)
"""


class Crontab:
    """The crontab a test works on, read and written the way a user would."""

    def __init__(self, kind: str, bin_dir: Path):
        self.kind = kind
        self.bin_dir = bin_dir

    def _argv(self, *args: str) -> List[str]:
        return [str(self.bin_dir / "crontab"), *args]

    def read(self) -> Optional[bytes]:
        """The table as ``crontab -l`` prints it, or None when there is none."""
        proc = subprocess.run(self._argv("-l"), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if proc.returncode != 0:
            assert b"no crontab" in proc.stderr, proc.stderr
            return None
        return proc.stdout

    def write(self, data: bytes) -> None:
        proc = subprocess.run(self._argv("-"), input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.returncode == 0, proc.stderr

    def remove(self) -> None:
        subprocess.run(self._argv("-r"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def can_use_real() -> Optional[str]:
    if REAL_CRONTAB is None:
        return "no real crontab (apt-get install cron)"
    if os.geteuid() != 0:
        return "not root: the real crontab test uses a scratch user's table via 'crontab -u'"
    try:
        pwd.getpwnam(SCRATCH_USER)
    except KeyError:
        return f"no {SCRATCH_USER} user for a scratch crontab"
    return None

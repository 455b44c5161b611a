"""Create the controller home: config.yaml, subscribers/, log/ (mode 700)."""

from __future__ import annotations

import argparse
import os
import stat
from typing import Callable

from .. import deps, files, home, yamlsub
from ..errors import UserError
from ..paths import HomePaths
from ..schedule.invocation import stable_path


def register(parser: argparse.ArgumentParser) -> None:
    pass


def init_host(paths: HomePaths, say: Callable[[str], None] = print) -> None:
    found = deps.check()
    missing = [d for d in found if d.status == "MISSING"]
    if missing:
        raise UserError("; ".join(f"{d.name} {d.detail}" for d in missing)
                        + " (run 'autometta check-deps' for the full list)")
    created = not paths.root.exists()
    home.ensure_private_dir(paths.root)
    say(f"PASS home {'created' if created else 'exists'} {paths.root}")
    mode = stat.S_IMODE(os.stat(paths.root).st_mode)
    say(f"PASS home mode {mode:o}")
    files.ensure_dir(paths.subscribers)
    say(f"PASS subscribers dir {paths.subscribers}")
    home.ensure_private_dir(paths.log_dir)
    say(f"PASS log dir {paths.log_dir}")
    root = stable_path(home.install_root())  # a Cellar path would die at the next brew upgrade
    if paths.config.is_file():
        config = home.load_yaml_file(paths.config, "config") or {}
        if config.get("autometta_root") == root:
            say(f"PASS config exists {paths.config}")
        else:
            text = files.read_text(paths.config)
            files.atomic_write(paths.config, home.set_top_level(text, "autometta_root", root))
            say(f"PASS config autometta_root refreshed {root}")
    else:
        config = dict(home.CONFIG_DEFAULTS, autometta_root=root)
        files.atomic_write(paths.config, yamlsub.dumps(config))
        say(f"PASS config created {paths.config}")
    if not paths.subscriber_template.exists():
        files.atomic_write(paths.subscriber_template, home.SUBSCRIBER_TEMPLATE)
        say(f"PASS template created {paths.subscriber_template}")
    say(f"PASS init complete {paths.root}")


def run(args: argparse.Namespace) -> int:
    init_host(HomePaths.from_env())
    return 0

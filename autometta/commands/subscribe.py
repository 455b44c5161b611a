"""Register a repo with the controller: state files, .gitignore, manifest, subscriber file.

Idempotent: existing files are kept (and checked), missing ones created.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable, Optional

from .. import files, home, manifest, yamlsub
from ..books import budget, state
from ..errors import UserError
from ..paths import HomePaths, RepoPaths
from .common import resolve_repo

#: Lines subscribe keeps in the repo's .gitignore. The first two are the bash
#: version's; the rest keep autometta's private files out of commits and out of
#: ``git status``: everything in state/ but state.yaml and budget.json, which
#: stay tracked as in the bash version (hand-offs, verdicts, the agent registry,
#: heartbeat.json, archives, ... are the controller's working files).
GITIGNORE_LINES = (
    "state/logs/",
    ".autometta.local.yaml",
    "state/*.bak",
    "state/.autometta.lock",
    ".autometta/",
    "state/*",
    "!state/state.yaml",
    "!state/budget.json",
)


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("repo", nargs="?", default=".", help="the repo to subscribe (default: .)")
    parser.add_argument("--weight", type=int, default=None, metavar="N",
                        help="tick order: lower weights tick first (default 100)")


def ensure_gitignore(paths: RepoPaths, say: Callable[[str], None]) -> None:
    target = paths.gitignore
    text = files.read_text(target) if target.exists() else ""
    present = {line.strip() for line in text.splitlines()}
    missing = [line for line in GITIGNORE_LINES if line not in present]
    if not missing:
        say("PASS gitignore entries exist")
        return
    if text and not text.endswith("\n"):
        text += "\n"
    files.atomic_write(target, text + "".join(f"{line}\n" for line in missing))
    for line in missing:
        say(f"PASS gitignore entry added {line}")


def subscribe(hp: HomePaths, repo_arg: str, weight: Optional[int] = None,
              say: Callable[[str], None] = print) -> Path:
    repo = resolve_repo(repo_arg)
    home.require_home(hp)
    if weight is not None and weight < 0:
        raise UserError(f"--weight {weight}: must be 0 or more")
    paths = RepoPaths(repo)
    for folder in (paths.state_dir, paths.verifiers, paths.logs, paths.handoffs):
        files.ensure_dir(folder, mode=0o700)  # agent logs and verdicts are the user's alone
    say(f"PASS state dirs ready {paths.state_dir}")

    if paths.state_yaml.exists():
        state.load_state(paths)  # refuse to go on over a corrupt file; never overwrite it
        say(f"PASS state exists {paths.state_yaml}")
    else:
        state.save_state(paths, state.initial_state())
        say(f"PASS state created {paths.state_yaml}")

    if paths.budget.exists():
        budget.load_budget(paths)
        say(f"PASS budget exists {paths.budget}")
    else:
        budget.save_budget(paths, budget.initial_budget())
        say(f"PASS budget created {paths.budget}")

    ensure_gitignore(paths, say)

    if paths.manifest.exists():
        manifest.load_manifest(paths)
        say(f"PASS manifest exists {paths.manifest}")
    else:
        config = home.load_config(hp)
        root = config.get("autometta_root") or home.install_root()
        files.atomic_write(paths.manifest, yamlsub.dumps(manifest.initial_manifest(str(root))))
        say(f"PASS manifest created {paths.manifest}")

    sub_file = home.subscriber_file_for(hp, repo)
    if sub_file.exists():
        sub = home.read_subscriber(sub_file)
        if sub.error:
            raise UserError(sub.error)
        text = files.read_text(sub_file)
        changed = []
        if "manifest_path" not in sub.raw:
            text = home.set_top_level(text, "manifest_path", str(paths.manifest))
            changed.append("manifest_path added")
        if weight is not None and sub.weight != weight:
            text = home.set_top_level(text, "weight", weight)
            changed.append(f"weight {weight}")
        if not sub.enabled:
            text = home.set_top_level(text, "enabled", True)
            changed.append("enabled")
        if changed:
            files.atomic_write(sub_file, text)
        say(f"PASS subscriber exists {sub_file}" + (f" ({', '.join(changed)})" if changed else ""))
    else:
        config = home.load_config(hp)
        default_weight = config.get("default_weight")
        w = weight if weight is not None else (default_weight if isinstance(default_weight, int) else 100)
        files.atomic_write(sub_file, home.render_subscriber(repo, paths.manifest, w))
        say(f"PASS subscriber created {sub_file}")
    say(f"PASS subscribe complete {repo}")
    from ..schedule import launchd

    launchd.install_after_subscribe(repo, say)  # macOS only (spec §8.2); a no-op elsewhere
    return sub_file


def run(args: argparse.Namespace) -> int:
    subscribe(HomePaths.from_env(), args.repo, args.weight)
    return 0

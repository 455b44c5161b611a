"""The review of one stage: its card and criteria with the verdict and evidence, the acceptance
command's exit and log tail, the change (diffstat and diff), what the worker and the verifier did
(each tool call with its target, the final message), tokens and cost per role, and a timeline.

Reads state/, the logs and git; changes nothing. A piece that is missing or
cannot be read is shown as missing. Exit 1 when the stage has no record in
state.yaml (what is on disk is still shown).
"""

from __future__ import annotations

import argparse
import json
import os

from .. import home as homes
from .. import manifest as manifests
from ..card import check_stage_id
from ..errors import UserError
from ..observe import review
from ..paths import HomePaths, RepoPaths
from .common import resolve_repo


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("repo", help="the repo (a path)")
    parser.add_argument("stage_id", metavar="STAGE_ID", help="the stage to review")
    parser.add_argument("--json", action="store_true", help="print the review as one JSON document")


def _resolve_secrets(manifest: dict, stage_doc: dict) -> None:
    """Best effort, as the tick does before it shows an agent's words: the routes' keys are masked too."""
    from .. import auth
    from ..families import family_of

    names = sorted({n for n in (family_of(str(stage_doc.get(r) or "")) for r in ("worker", "verifier")) if n})
    try:
        auth.secrets_in_force(dict(os.environ), manifest, names)
    except Exception:  # noqa: BLE001 - the key shapes are masked regardless
        pass


def run(args: argparse.Namespace) -> int:
    stage_id = check_stage_id(args.stage_id)
    paths = RepoPaths(resolve_repo(args.repo))
    hp = HomePaths.from_env()
    sub = homes.find_subscriber(hp, paths.root) if hp.subscribers.is_dir() else None
    try:
        manifest = manifests.load_manifest(paths, sub.manifest_path if sub else None)
    except UserError:
        manifest = {}  # shown as missing by the card lookup's defaults
    stage_doc, why = review.read_stage(paths, stage_id)
    _resolve_secrets(manifest, stage_doc or {})
    doc = review.build(paths, stage_id, hp=hp if hp.root.is_dir() else None,
                       name=sub.name if sub else None, manifest=manifest)
    if stage_doc is None and doc["card"].get("missing") and all(a.get("steps_total") is None for a in doc["agents"]):
        raise UserError(why or f"no stage {stage_id}")  # nothing at all to show: a typo, most likely
    print(json.dumps(doc, indent=2) if args.json else review.render(doc))
    return 0 if stage_doc is not None else 1

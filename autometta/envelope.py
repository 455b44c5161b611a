"""The worker's handoff envelope and the verifier's artefact, read as facts.

What is read is an :class:`Envelope` or an :class:`Artefact` (records of
:mod:`autometta.tick.outcomes`, which reads what they mean for the stage).

Reading never raises for bad content: a tick must turn a broken file into a
stage outcome (stalled, verifier_failed), not into a crash. A half-written
artefact (not yet parseable JSON) is reported as such, and is not a verdict.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from . import files, schema
from .books import digests
from .errors import UserError
from .paths import RepoPaths
from .tick.outcomes import Artefact, Envelope


def read_envelope(path: Path, stage_id: str) -> Envelope:
    """The worker's handoff. A symlink is refused, naming it: the worker wrote it, and must not
    get autometta to read (and copy into state, the tick log and git) a file outside the repo."""
    if not os.path.lexists(path):
        return Envelope("missing")
    try:
        doc = files.read_json(path, follow=False)
        if not isinstance(doc, dict):
            raise UserError(f"{path}: expected a JSON object")
        schema.check(doc, "handoff-envelope", str(path))
    except UserError as exc:
        return Envelope("invalid", error=exc.message)
    if doc["stage_id"] != stage_id:
        return Envelope("invalid", error=f"{path}: stage_id {doc['stage_id']!r} is not {stage_id!r}")
    return Envelope(doc["status"], notes=doc.get("notes", ""), doc=doc)


def judge_artefact_doc(doc: Any, stage_id: str, source: str) -> Artefact:
    """A parsed artefact: PASS only if it is schema-valid, for this stage, and says PASS."""
    if not isinstance(doc, dict):
        return Artefact("verdict", "FAIL", f"{source}: not a JSON object", None)
    name = "verifier-panel" if "panellists" in doc else "verifier"
    problems = schema.errors(doc, schema.load_schema(name))
    overall = doc.get("overall")
    if doc.get("stage_id") != stage_id:
        return Artefact("verdict", "FAIL", f"verifier_artefact_wrong_stage: {doc.get('stage_id')!r}", doc)
    if overall not in ("PASS", "FAIL"):
        return Artefact("verdict", "FAIL", f"verifier_overall_malformed: {str(overall)[:40]!r}", doc, problems)
    if problems and overall == "PASS":
        return Artefact("verdict", "FAIL", f"verifier_artefact_invalid: {problems[0]}", doc, problems)
    return Artefact("verdict", overall, "", doc, problems)


def read_artefact(path: Path, stage_id: str) -> Artefact:
    if not os.path.lexists(path):
        return Artefact("missing")
    if os.path.islink(path):  # never a verdict, and never followed out of the repo
        return Artefact("verdict", "FAIL", f"verifier_artefact_invalid: {path} is a symlink")
    try:
        doc = files.read_json(path, follow=False)
    except UserError:
        return Artefact("partial", problem=f"{path}: not (yet) a complete JSON document")
    return judge_artefact_doc(doc, stage_id, str(path))


def load_verdict(path: Path) -> Optional[Dict[str, Any]]:
    """A verdict for a view to show: the document if it is a valid verdict (or panel verdict), else None."""
    try:
        doc = files.read_json(path, follow=False) if os.path.lexists(path) else None
    except UserError:
        return None
    if not isinstance(doc, dict):
        return None
    name = "verifier-panel" if "panellists" in doc else "verifier"
    return None if schema.problems(doc, name) else doc


_FENCE = re.compile(r"^\s*```(?:json)?\s*\n(.*?)\n\s*```\s*$", re.S)


def artefact_from_message(text: Optional[str]) -> Optional[Dict[str, Any]]:
    """A verdict delivered as the verifier's final message (bare JSON or one fenced block)."""
    if not text:
        return None
    body = text.strip()
    match = _FENCE.match(body)
    if match:
        body = match.group(1).strip()
    if not body.startswith("{"):
        start, end = body.find("{"), body.rfind("}")
        if start < 0 or end <= start:
            return None
        body = body[start:end + 1]
    try:
        doc = files.parse_json(body, "the verifier's final message")
    except UserError:
        return None
    return doc if isinstance(doc, dict) and "overall" in doc else None


def archive(paths: RepoPaths, stage_id: str, now: Optional[float] = None, *,
            verdicts_only: bool = False) -> List[Path]:
    """Move a stage's earlier envelope and verdicts to ``state/archive/<id>/<time>/``.

    A re-run must never read them as its own (the bash version re-applied a
    stale verdict, §15.7). Handoff and verdict are both ``<id>.json``, so each
    keeps its folder name (``handoffs/``, ``verifiers/``) under the archive.
    Every file of the stage in ``state/verifiers/`` goes: the kept verdict,
    each verifier run's own (``<id>.<nonce>.json``), a panel's folder, the
    quarantined ones.
    """
    olds: List[Path] = []
    try:
        olds += [paths.verifiers / name for name in sorted(os.listdir(paths.verifiers))
                 if name.startswith(f"{stage_id}.")]  # stage ids hold no dot: no other stage's file
    except OSError:
        pass
    if not verdicts_only:
        olds += [paths.handoff(stage_id), paths.handoffs / f"{stage_id}.invalid.json"]
    found = [old for old in olds if os.path.lexists(old)]
    if not found:
        return []
    folder = _new_folder(paths.archive / stage_id,
                         time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now)))
    moved = []
    for old in found:
        dest = folder / old.parent.name / old.name
        files.ensure_dir(dest.parent)
        os.replace(old, dest)
        moved.append((old, dest))
    digests.moved(paths, moved)  # archived by autometta: their digests are kept, the old names forgotten
    return [dest for _, dest in moved]


def _new_folder(parent: Path, stamp: str) -> Path:
    """``parent/<stamp>``, or ``<stamp>-2``, ``-3``... : a folder no earlier archive has (two
    re-briefs in one second each keep their own), claimed with mkdir so two ticks cannot share it."""
    files.ensure_dir(parent)
    for n in range(1, 10000):
        folder = parent / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue
        except OSError as exc:
            raise UserError(f"{folder}: cannot create folder ({exc.strerror})") from exc
    raise UserError(f"{parent}: 10000 archives in one second; clean it up")

"""The controller home: config.yaml and the subscriber registry.

Layout and defaults are the bash version's (spec §2, §3.1, §3.2), so an
existing ``~/.phat-controller`` keeps working. Subscriber files are read with
the YAML subset and checked against ``schemas/subscriber.json``; a broken one
is reported for that repo alone and never stops the others.
"""

from __future__ import annotations

import os
import sys
from collections import namedtuple
from pathlib import Path

from . import files, schema, yamlsub
from .errors import UserError
from .paths import HomePaths, RepoPaths

TYPE_CHECKING = False  # not typing's: an idle tick and status import no typing (tests/test_startup.py)
if TYPE_CHECKING:
    from typing import Any, Dict, List, Mapping, Optional

CONFIG_DEFAULTS: Dict[str, Any] = {
    "version": 1,
    "autometta_root": "",
    "max_per_fire": 20,
    "default_weight": 100,
    "log_level": "info",
}

#: The bash tick sorts subscribers without a weight last.
MISSING_WEIGHT = 9999

SUBSCRIBER_TEMPLATE = """\
# Copy this file to <repo-name>.yaml to subscribe a repo by hand,
# or run: autometta subscribe /absolute/path/to/repo
repo_path: /absolute/path/to/repo
manifest_path: /absolute/path/to/repo/.autometta.local.yaml
weight: 100
enabled: true
"""


def install_root() -> str:
    """Where this autometta runs from: the pyz file, or the source checkout."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if parent.is_file():  # inside a zipapp: .../autometta.pyz/autometta/home.py
            return str(parent)
    return str(here.parent.parent)


def load_yaml_file(path: Path, schema_name: Optional[str] = None) -> Any:
    """Read a YAML file with the bundled subset, optionally schema-checked."""
    data = yamlsub.loads(files.read_text(path), source=str(path))
    if schema_name is not None:
        schema.check(data, schema_name, str(path))
    return data


def load_config(home: HomePaths) -> Dict[str, Any]:
    """config.yaml merged over the defaults; a missing file means defaults."""
    config = dict(CONFIG_DEFAULTS)
    if home.config.is_file():
        data = load_yaml_file(home.config, "config")
        if data is not None:
            if not isinstance(data, dict):
                raise UserError(f"{home.config}: expected a mapping of settings at the top level")
            config.update(data)
    return config


class Subscriber(namedtuple("Subscriber", "file repo_path manifest_path weight enabled max_parallel error raw",
                            defaults=(None, None, None, False, None, None, {}))):
    """One ``subscribers/*.yaml`` file. ``error`` is set when it cannot be used."""

    __slots__ = ()
    file: Path
    repo_path: Optional[Path]  # None
    manifest_path: Optional[Path]  # None
    weight: Optional[int]  # None
    enabled: bool  # False
    max_parallel: Optional[int]  # None
    error: Optional[str]  # None
    raw: Mapping[str, Any]  # {}

    @property
    def name(self) -> str:
        return self.repo_path.name if self.repo_path else self.file.stem

    @property
    def paths(self) -> RepoPaths:
        assert self.repo_path is not None
        return RepoPaths(self.repo_path)

    @property
    def sort_key(self) -> tuple:
        weight = self.weight if isinstance(self.weight, int) else MISSING_WEIGHT
        return (weight, str(self.repo_path or ""))


def _bash_lenient(data: Dict[str, Any]) -> Dict[str, Any]:
    """Accept what the bash line parser accepted: ``enabled: "true"``, ``weight: "50"``."""
    out = dict(data)
    if isinstance(out.get("enabled"), str) and out["enabled"] in ("true", "false"):
        out["enabled"] = out["enabled"] == "true"
    if isinstance(out.get("weight"), str) and out["weight"].isdigit():
        out["weight"] = int(out["weight"])
    return out


def read_subscriber(path: Path) -> Subscriber:
    try:
        data = yamlsub.loads(files.read_text(path), source=str(path))
        if isinstance(data, dict):
            data = _bash_lenient(data)
        schema.check(data, "subscriber", str(path))
    except UserError as exc:
        return Subscriber(file=path, error=exc.message)
    repo_path = Path(data["repo_path"]) if data.get("repo_path") else None
    manifest = data.get("manifest_path")
    error = None
    if repo_path is None:
        error = f"{path}: repo_path is empty; set it to the repo's absolute path"
    elif not files.is_dir(repo_path):
        error = (f"{path}: repo_path {repo_path} does not exist; "
                 f"fix the path or run 'autometta unsubscribe {repo_path}'")
    return Subscriber(file=path, repo_path=repo_path, manifest_path=Path(manifest) if manifest else None,
                      weight=data.get("weight"), enabled=data.get("enabled") is True,
                      max_parallel=data.get("max_parallel"), error=error, raw=data)


def subscriber_files(home: HomePaths) -> List[Path]:
    """Subscriber files in name order; ``template.yaml`` is always skipped."""
    if not home.subscribers.is_dir():
        return []
    return sorted(
        p for p in home.subscribers.iterdir()
        if p.suffix == ".yaml" and p.name != "template.yaml" and not p.name.startswith(".")
    )


def load_subscribers(home: HomePaths) -> List[Subscriber]:
    """All subscribers, alphabetical by file (the bash status order)."""
    return [read_subscriber(p) for p in subscriber_files(home)]


def tick_order(subscribers: List[Subscriber]) -> List[Subscriber]:
    """Weight ascending (missing weight last), ties by repo path: the tick's order."""
    return sorted(subscribers, key=lambda s: s.sort_key)


def require_home(home: HomePaths) -> None:
    if not home.root.is_dir() or not home.subscribers.is_dir():
        raise UserError(f"{home.root}: controller home not initialised; run 'autometta init-host' first")


def find_subscriber(home: HomePaths, repo: Path) -> Optional[Subscriber]:
    for sub in load_subscribers(home):
        if sub.repo_path is not None and _same_path(sub.repo_path, repo):
            return sub
    return None


def _same_path(a: Path, b: Path) -> bool:
    try:
        return os.path.realpath(a) == os.path.realpath(b)
    except OSError:
        return False


def subscriber_file_for(home: HomePaths, repo: Path) -> Path:
    """``subscribers/<basename>.yaml``, unless another repo already owns that name.

    The bash version keyed files by basename alone, so two repos called ``app``
    silently shared one file (spec §15.27); the second gets a short path hash.
    """
    existing = find_subscriber(home, repo)
    if existing is not None:
        return existing.file
    candidate = home.subscribers / f"{repo.name}.yaml"
    if not candidate.exists():
        return candidate
    import hashlib

    digest = hashlib.sha256(str(repo).encode("utf-8")).hexdigest()[:8]
    return home.subscribers / f"{repo.name}-{digest}.yaml"


def render_subscriber(repo: Path, manifest: Path, weight: int, enabled: bool = True,
                      extra: Optional[Dict[str, Any]] = None) -> str:
    doc: Dict[str, Any] = {
        "repo_path": str(repo),
        "manifest_path": str(manifest),
        "weight": weight,
        "enabled": enabled,
    }
    if extra:
        doc.update(extra)
    return yamlsub.dumps(doc)


def ensure_private_dir(path: Path) -> Path:
    files.ensure_dir(path, mode=0o700)
    try:
        os.chmod(path, 0o700)
    except OSError as exc:
        raise UserError(f"{path}: cannot set mode 700 ({exc.strerror})") from exc
    return path


def program_invocation() -> str:
    """How a scheduler should call this autometta (absolute interpreter + entry)."""
    root = install_root()
    if root.endswith(".pyz"):
        return f"{sys.executable} {root}"
    return f"{sys.executable} -m autometta"


def set_top_level(text: str, key: str, value: object) -> str:
    """Replace (or append) one top-level ``key:`` line, keeping the user's comments."""
    line = yamlsub.dumps({key: value})
    out, done = [], False
    for existing in text.splitlines(keepends=True):
        if not done and existing.startswith(f"{key}:"):
            out.append(line)
            done = True
        else:
            out.append(existing)
    if not done:
        if out and not out[-1].endswith("\n"):
            out.append("\n")
        out.append(line)
    return "".join(out)

"""The real agent CLIs for end-to-end tests: install once, and point them at a local server.

``ensure_clis()`` installs ``@anthropic-ai/claude-code`` and ``@openai/codex`` from
the npm registry into a cache outside the repo (``$AUTOMETTA_CLI_CACHE``, else
``~/.cache/autometta-test-clis``), one folder per version set, and returns the
two executables. A folder is installed only when it is missing or broken, so
after the first run (about 15 s, 660 MB) this costs two ``--version`` calls.
It tries the latest releases first and the pinned versions known to work
(shared/spec/agent-clis.md) when that fails; ``AUTOMETTA_CLI_VERSIONS=pinned``
skips straight to the pins. When npm is missing or every install fails it
returns None and ``unavailable_reason()`` says why, for ``pytest.skip``.

``claude_env`` and ``codex_env`` build the environment that makes each CLI talk
only to a model server on 127.0.0.1 and keep its files in a temporary home.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Tuple

PACKAGES = ("@anthropic-ai/claude-code", "@openai/codex")
PINNED = {"@anthropic-ai/claude-code": "2.1.197", "@openai/codex": "0.171.0"}
INSTALL_TIMEOUT = 900
VERSION_TIMEOUT = 60

_result: Optional[Tuple[Optional[Dict[str, str]], str]] = None


def cache_dir() -> Path:
    return Path(os.environ.get("AUTOMETTA_CLI_CACHE") or Path.home() / ".cache" / "autometta-test-clis")


def _candidates() -> List[Tuple[str, List[str]]]:
    pinned = ("pinned-" + "-".join(f"{p.split('/')[-1]}@{v}" for p, v in PINNED.items()),
              [f"{p}@{v}" for p, v in PINNED.items()])
    # "@latest" explicitly: a bare name lets npm settle for an older release it has cached metadata for
    latest = ("latest", [f"{p}@latest" for p in PACKAGES])
    if os.environ.get("AUTOMETTA_CLI_VERSIONS") == "pinned":
        return [pinned]
    return [latest, pinned]


def _bins(prefix: Path) -> Dict[str, str]:
    return {"claude": str(prefix / "node_modules" / ".bin" / "claude"),
            "codex": str(prefix / "node_modules" / ".bin" / "codex")}


def _versions(prefix: Path) -> Optional[Dict[str, str]]:
    """``--version`` of both CLIs in ``prefix``, or None if either does not run."""
    out = {}
    with tempfile.TemporaryDirectory() as home:
        for name, path in _bins(prefix).items():
            if not os.access(path, os.X_OK):
                return None
            try:
                proc = subprocess.run([path, "--version"], stdin=subprocess.DEVNULL, capture_output=True,
                                      text=True, timeout=VERSION_TIMEOUT, env=dict(os.environ, HOME=home))
            except (OSError, subprocess.TimeoutExpired):
                return None
            if proc.returncode != 0:
                return None
            out[name] = proc.stdout.strip()
    return out


def _install(prefix: Path, specs: List[str]) -> str:
    """npm-install ``specs`` into ``prefix`` (via a temporary sibling); '' on success, else why not."""
    staging = Path(tempfile.mkdtemp(prefix=prefix.name + ".", dir=str(prefix.parent)))
    try:
        proc = subprocess.run(["npm", "install", "--prefix", str(staging), "--no-audit", "--no-fund", *specs],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
        if proc.returncode != 0:
            return f"npm install {' '.join(specs)} exited {proc.returncode}: {proc.stderr.strip()[-500:]}"
        versions = _versions(staging)
        if versions is None:
            return f"npm install {' '.join(specs)} gave CLIs that do not run"
        (staging / "autometta-versions.json").write_text(json.dumps(versions) + "\n")
        shutil.rmtree(prefix, ignore_errors=True)
        os.rename(staging, prefix)
        return ""
    except subprocess.TimeoutExpired:
        return f"npm install {' '.join(specs)} took over {INSTALL_TIMEOUT}s"
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _outdated(prefix: Path) -> bool:
    """Has either package a newer release than the one installed in ``prefix``? False when npm cannot tell."""
    for package in PACKAGES:
        try:
            proc = subprocess.run(["npm", "view", f"{package}@latest", "version"], stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True, timeout=VERSION_TIMEOUT)
            installed = json.loads((prefix / "node_modules" / package / "package.json").read_text())["version"]
        except (OSError, ValueError, KeyError, subprocess.TimeoutExpired):
            return False
        if proc.returncode == 0 and proc.stdout.strip() and proc.stdout.strip() != installed:
            return True
    return False


def _ensure() -> Tuple[Optional[Dict[str, str]], str]:
    if shutil.which("npm") is None or shutil.which("node") is None:
        return None, "npm/node not on PATH: cannot install the real claude and codex CLIs"
    root = cache_dir()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return None, f"cannot create the CLI cache {root}: {exc}"
    problems = []
    with open(root / ".lock", "w") as lock:  # one installer at a time, across processes
        fcntl.flock(lock, fcntl.LOCK_EX)
        for key, _ in _candidates():  # any working install first: no network when one is there
            prefix = root / key
            if (prefix / "autometta-versions.json").is_file() and _versions(prefix) is not None \
                    and not (key == "latest" and _outdated(prefix)):
                return _bins(prefix), ""
        for key, specs in _candidates():
            prefix = root / key
            problem = _install(prefix, specs)
            if not problem:
                return _bins(prefix), ""
            problems.append(problem)
    return None, "; ".join(problems)


def ensure_clis() -> Optional[Dict[str, str]]:
    """``{"claude": path, "codex": path}`` of working real CLIs, or None (see ``unavailable_reason``)."""
    global _result
    if _result is None:
        _result = _ensure()
    return _result[0]


def unavailable_reason() -> str:
    ensure_clis()
    return _result[1] if _result else ""


def cli_versions(clis: Dict[str, str]) -> Dict[str, str]:
    """The versions recorded at install time, e.g. ``{"claude": "2.1.197 (Claude Code)", ...}``."""
    marker = Path(clis["claude"]).parents[2] / "autometta-versions.json"
    return json.loads(marker.read_text())


# -- environments ------------------------------------------------------------

_DROP_PREFIXES = ("ANTHROPIC_", "CLAUDE", "CODEX_", "OPENAI_", "AWS_", "GOOGLE_", "VERTEX_")


def _base_env(home: Path) -> Dict[str, str]:
    """The caller's environment without any model credentials or agent settings, HOME moved."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_DROP_PREFIXES) and k != "IS_SANDBOX"}
    home.mkdir(parents=True, exist_ok=True)
    env["HOME"] = str(home)
    env.pop("XDG_CONFIG_HOME", None)
    env.pop("XDG_DATA_HOME", None)
    env.pop("XDG_STATE_HOME", None)
    env.pop("XDG_CACHE_HOME", None)
    return env


def claude_env(base_url: str, home: Path, sandbox: bool = True, subscription: bool = False) -> Dict[str, str]:
    """Environment for ``claude -p`` against ``base_url``.

    ``sandbox`` sets ``IS_SANDBOX=1``, without which claude refuses
    ``--dangerously-skip-permissions`` when run as root. ``subscription``
    authenticates with a (fake) ``CLAUDE_CODE_OAUTH_TOKEN`` instead of
    ``ANTHROPIC_API_KEY``: only then does claude read the
    ``anthropic-ratelimit-unified-*`` headers and report a plan's usage limit.
    """
    env = _base_env(home)
    env.update({"ANTHROPIC_BASE_URL": base_url,
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "CLAUDE_CODE_MAX_RETRIES": "0"})
    if subscription:
        env["CLAUDE_CODE_OAUTH_TOKEN"] = "sk-ant-oat01-test-token"
    else:
        env["ANTHROPIC_API_KEY"] = "test-key"
    if sandbox:
        env["IS_SANDBOX"] = "1"
    return env


CODEX_CONFIG = """\
model = "gpt-5.5"
model_provider = "fake"

[model_providers.fake]
name = "Fake"
base_url = "{base_url}/v1"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0

[features]
plugins = false

[analytics]
enabled = false
"""


def codex_env(base_url: str, home: Path) -> Dict[str, str]:
    """Environment for ``codex exec`` against ``base_url``: a fresh ``CODEX_HOME`` under ``home``."""
    env = _base_env(home)
    codex_home = home / ".codex"
    codex_home.mkdir(parents=True, exist_ok=True)
    (codex_home / "config.toml").write_text(CODEX_CONFIG.format(base_url=base_url))
    env["CODEX_HOME"] = str(codex_home)
    return env


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m tests.testing.agent_clis --install``: install (or find) the CLIs, print them."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tests.testing.agent_clis", description=main.__doc__)
    parser.add_argument("--install", action="store_true", help="install into the cache if missing")
    args = parser.parse_args(argv)
    if not args.install:
        parser.print_help()
        return 2
    clis = ensure_clis()
    if clis is None:
        print(f"agent CLIs unavailable: {unavailable_reason()}", file=sys.stderr)
        return 1
    for name, version in cli_versions(clis).items():
        print(f"{name}: {clis[name]} ({version})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Helpers for billing-route tests: a fake ``op`` (and ``op-fetch``) on PATH, refs files, codex homes; and
the ``world`` fixture (a subscribed repo, stand-ins for claude, codex and op first on PATH)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Dict, Iterable, List, Optional

import pytest

from autometta import secrets
from tests.testing.repos import make_repo
from tests.testing.ticks import commit_all, script_card

#: What the fake 1Password holds. Shaped like real keys, so the scan knows them too.
#: Built by concatenation, so that no file in this repo holds a key-shaped string (the guards would refuse it).
VAULT: Dict[str, str] = {
    "op://Private/Anthropic/credential": "sk-ant-" + "api03-FAKEkeyFORtestsONLY-0000-wxyz",
    "op://Private/OpenAI/credential": "sk-" + "proj-FAKEkeyFORtestsONLY-1111-abcd",
    "op://Private/Claude-OAuth/credential": "sk-ant-" + "oat01-FAKEtokenFORtests-2222-oaut",
}
ANTHROPIC_REF, OPENAI_REF, OAUTH_REF = list(VAULT)
ANTHROPIC_KEY, OPENAI_KEY, OAUTH_TOKEN = list(VAULT.values())

STRAY = {"ANTHROPIC_API_KEY": "sk-ant-" + "api03-STRAYkeyMUSTnotCROSS-9999",
         "OPENAI_API_KEY": "sk-" + "proj-STRAYkeyMUSTnotCROSS-9999"}


def _script(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def fake_op(bin_dir: Path, vault: Optional[Dict[str, str]] = None, calls: Optional[Path] = None,
            name: str = "op") -> Path:
    """A fake ``op`` (``op read REF``) or ``op-fetch`` (``op-fetch --print REF``) serving ``vault``.

    Each call appends its argv to ``calls`` when given (references only, never values).
    """
    vault = VAULT if vault is None else vault
    cases = "\n".join(f"  '{ref}') printf '%s\\n' '{value}' ;;" for ref, value in vault.items())
    verb = "--print" if name == "op-fetch" else "read"
    log = f"printf '%s\\n' \"$*\" >> '{calls}'\n" if calls else ""
    return _script(bin_dir / name, f"""#!/bin/sh
{log}[ "$1" = {verb} ] || {{ echo "fake {name}: only '{name} {verb} REF'" >&2; exit 2; }}
case "$2" in
{cases}
  *) echo "[ERROR] could not read secret '$2': isn't an item in any vault" >&2; exit 1 ;;
esac
""")


def refs_file(path: Path, **refs: str) -> Path:
    """A refs file in the bash version's style (``export NAME="ref"``)."""
    lines = ["#!/usr/bin/env bash", "# test refs"]
    lines += [f'export {name}="{ref}"' for name, ref in refs.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def codex_home(path: Path, mode: Optional[str] = "apikey", key: str = OPENAI_KEY) -> Path:
    """A codex home as ``codex login`` leaves it: ``--with-api-key`` (apikey) or a ChatGPT login."""
    path.mkdir(parents=True, exist_ok=True)
    if mode == "apikey":
        doc = {"auth_mode": "apikey", "OPENAI_API_KEY": key}
    elif mode is None:
        return path
    else:
        doc = {"auth_mode": mode, "OPENAI_API_KEY": None,
               "tokens": {"id_token": "x", "access_token": "y", "refresh_token": "z"}}
    (path / "auth.json").write_text(json.dumps(doc, indent=2))
    return path


def fake_agent(bin_dir: Path, name: str, report_dir: Path) -> Path:
    """A stand-in ``claude``/``codex``: saves its environment, then plays the worker or the verifier.

    The worker writes ``hello.txt`` and a passing envelope; the verifier a
    PASS verdict. The environment goes to ``report_dir/<role>.env`` (outside
    the repo and the controller home, which the tests scan for secrets).
    """
    return _script(bin_dir / name, f"""#!/bin/sh
env > '{report_dir}'/"$AUTOMETTA_ROLE".env
if [ "$AUTOMETTA_ROLE" = worker ]; then
  printf 'hello\\n' > hello.txt
  printf '{{"stage_id":"%s","status":"pass","deliverables":["hello.txt"],"notes":"done"}}' "$AUTOMETTA_STAGE_ID" > "$AUTOMETTA_HANDOFF"
else
  printf '{{"stage_id":"%s","verifier_identity":"x","verifier_invocation":"sh","ran_at":"2026-11-26T00:00:00Z","criteria":[{{"id":1,"name":"hello","verdict":"PASS","evidence":"hello.txt:1"}}],"additional_findings":"","overall":"PASS"}}' "$AUTOMETTA_STAGE_ID" > "$AUTOMETTA_ARTEFACT"
fi
echo '{name} fake done'
""")


def read_env_dump(path: Path) -> Dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        if "=" in line:
            name, value = line.split("=", 1)
            out[name] = value
    return out


def files_holding(roots: Iterable[Path], values: Iterable[str]) -> List[str]:
    """Every file under ``roots`` whose bytes contain one of ``values`` (git objects are zlib: see git_holding)."""
    wanted = [v.encode() for v in values]
    found = []
    for root in roots:
        for folder, _dirs, names in os.walk(root):
            for leaf in names:
                path = Path(folder) / leaf
                try:
                    data = path.read_bytes()
                except OSError:
                    continue
                if any(w in data for w in wanted):
                    found.append(str(path))
    return found


def isolate_billing(monkeypatch, tmp_path: Path, prefixes=("AUTOMETTA_", "OP_REF_", "ANTHROPIC_", "OPENAI_", "XDG_")) -> None:
    """Forget resolved secrets, hide the install's refs file and the caller's billing setup."""
    from autometta import secrets

    secrets.forget()
    monkeypatch.setattr(secrets, "install_folder", lambda: tmp_path / "install")
    for name in list(os.environ):
        if name.startswith(tuple(prefixes)):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


CLAUDE_WORKER = "Claude Sonnet 4.6 <claude-sonnet-4-6@local>"
CODEX_VERIFIER = "Codex GPT-5.5 <codex-gpt-5-5@local>"


@pytest.fixture
def world(run, tmp_path, home_dir, monkeypatch):
    """A subscribed repo, fake claude/codex/op first on PATH, and the user's environment for the tick."""
    secrets.forget()
    monkeypatch.setattr(secrets, "install_folder", lambda: tmp_path / "install")
    bin_dir, reports = tmp_path / "bin", tmp_path / "reports"
    reports.mkdir()
    fake_op(bin_dir, calls=tmp_path / "op-calls")
    fake_agent(bin_dir, "claude", reports)
    fake_agent(bin_dir, "codex", reports)
    for name in list(os.environ):
        if name.startswith(("AUTOMETTA_", "OP_REF_", "CLAUDE_", "CODEX_", "XDG_")):
            monkeypatch.delenv(name)
    refs = refs_file(tmp_path / "refs.sh", OP_REF_ANTHROPIC_API_KEY=ANTHROPIC_REF, OP_REF_OPENAI_API_KEY=OPENAI_REF)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("HOME", str(tmp_path / "user-home"))
    monkeypatch.setenv("AUTOMETTA_LOCAL_REFS", str(refs))
    monkeypatch.setenv("IS_SANDBOX", "1")  # claude's preflight, when the tests run as root
    for name, value in STRAY.items():
        monkeypatch.setenv(name, value)
    repo = make_repo(tmp_path / "proj")
    assert run("init-host").code == 0
    assert run("subscribe", str(repo)).code == 0
    commit_all(repo, "subscribe")

    def add(stage_id: str) -> None:
        card = script_card(repo, stage_id, worker=CLAUDE_WORKER, verifier=CODEX_VERIFIER)
        commit_all(repo, f"card {stage_id}")
        assert run("add-stage", str(repo), str(card)).code == 0

    yield repo, home_dir, reports, add
    secrets.forget()

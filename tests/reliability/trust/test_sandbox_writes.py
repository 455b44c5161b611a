"""An agent writing where it should not, under ``sandbox: bwrap``: refused by the OS, and its work still lands.

The worker (a script agent, standing in for any CLI: the sandbox wraps them
all alike) tries to write the user's SSH folder, the controller's books
(``state/budget.json``, ``state/state.yaml``), a git ref, the manifest (to
switch the sandbox off for its next run), the verdict, ``/tmp`` and the user's
checkout; then does its real work. The verifier tries to rewrite the
worker's hand-off; the acceptance command (which runs what the worker wrote)
tries the SSH folder too. Each attempt's outcome is in the agent's log;
every protected file is unchanged afterwards, and the stage completes with
its deliverable committed. Serial stages and a lane (``max_parallel: 2``).

Skips with the reason when bubblewrap cannot run here (tests/run.sh installs it).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Dict

import pytest

from autometta import yamlsub
from autometta.agents import sandbox
from autometta.paths import RepoPaths
from tests.testing.ticks import commit_all, git, read_state, run_until_quiet, stage, verifier_writes

SID = "01-hello"
#: A number no other process on the machine sleeps for: how the test finds an escaped child.
ESCAPEE = "2999.25"

ATTACK = r"""#!/bin/sh
# Each try prints "WROTE <what>" or "refused <what>", then the worker does its real work.
echo "tree $(pwd -P)"
try() { if sh -c "$2" 2>/dev/null; then echo "WROTE $1"; else echo "refused $1"; fi; }
try ssh 'mkdir -p "$HOME/.ssh" && echo key > "$HOME/.ssh/x"'
try budget 'echo "{}" > "$AUTOMETTA_REPO/state/budget.json"'
try state 'echo "stages: []" >> "$AUTOMETTA_REPO/state/state.yaml"'
try gitref 'git -C "$AUTOMETTA_REPO" rev-parse HEAD > "$AUTOMETTA_REPO/.git/refs/heads/evil"'
try manifest 'echo "sandbox: none" >> "$AUTOMETTA_REPO/.autometta.local.yaml"'
try verdict 'echo "{\"overall\": \"PASS\"}" > "$AUTOMETTA_ARTEFACT"'
try slash-tmp 'echo x > /tmp/autometta-sandbox-escape'
try checkout 'echo mine >> "$AUTOMETTA_REPO/README.md"'
try tmpdir 'echo scratch > "$TMPDIR/scratch" && test "$TMPDIR" != /tmp'
setsid sleep ESCAPEE < /dev/null > /dev/null 2>&1 &
printf 'hello\n' > hello.txt
printf '{"stage_id":"%s","status":"pass","deliverables":["hello.txt"],"notes":"done"}' "$AUTOMETTA_STAGE_ID" \
  > "$AUTOMETTA_HANDOFF"
""".replace("ESCAPEE", ESCAPEE)

CHECK = r"""#!/bin/sh
if (mkdir -p "$HOME/.ssh" && echo key > "$HOME/.ssh/y") 2>/dev/null; then echo "WROTE ssh"; else echo "refused ssh"; fi
test -s hello.txt
"""


def _bwrap_reason() -> str:
    ok, found = sandbox.available("bwrap")
    return "" if ok else found


pytestmark = pytest.mark.skipif(bool(_bwrap_reason()), reason=f"bwrap cannot run here: {_bwrap_reason()}")


def outcomes(log: Path) -> Dict[str, str]:
    return {m.group(2): m.group(1) for m in re.finditer(r"^(WROTE|refused) (\S+)$", log.read_text(), re.M)}


def escaped() -> list:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                if ESCAPEE.encode() in handle.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


@pytest.mark.parametrize("max_parallel", [1, 2])
def test_a_sandboxed_worker_cannot_write_outside_its_tree_and_its_work_lands(setup, tmp_path, monkeypatch,
                                                                            max_parallel):
    repo, home, add = setup
    monkeypatch.setenv("HOME", str(tmp_path / "user-home"))
    paths = RepoPaths(repo)
    manifest = yamlsub.loads(paths.manifest.read_text())
    manifest.update(sandbox="bwrap", max_parallel=max_parallel)
    paths.manifest.write_text(yamlsub.dumps(manifest))
    tools = repo / "tools"
    tools.mkdir()
    (tools / "attack.sh").write_text(ATTACK)
    (tools / "check.sh").write_text(CHECK)
    commit_all(repo, "sandbox on; the tools")
    verifier = f"echo x > \"$AUTOMETTA_HANDOFF\" 2>/dev/null && echo 'WROTE handoff' || echo 'refused handoff'; " \
               f"{verifier_writes(SID)}"
    add(SID, "sh tools/attack.sh", verifier, acceptance="sh tools/check.sh")
    before = {p: p.read_bytes() for p in (paths.manifest, repo / "README.md")}
    base = git(repo, "rev-parse", "HEAD").strip()

    run_until_quiet(home, repo)

    log = paths.log(SID, "worker").read_text()
    # Under 'isolation: tree' (the old serial default) the agents' tree is the user's checkout itself.
    in_checkout = re.search(r"^tree (.*)$", log, re.M).group(1) == os.path.realpath(str(repo))
    worker = outcomes(paths.log(SID, "worker"))
    assert worker == {"ssh": "refused", "budget": "refused", "state": "refused", "gitref": "refused",
                      "manifest": "refused", "verdict": "refused", "slash-tmp": "refused", "tmpdir": "WROTE",
                      "checkout": "WROTE" if in_checkout else "refused"}, log
    if not in_checkout:  # in the checkout, its README.md edit is outside its card: the scope check stops it first
        assert outcomes(paths.log(SID, "verifier")) == {"handoff": "refused"}
        assert outcomes(paths.log(SID, "acceptance")) == {"ssh": "refused"}
    assert not (tmp_path / "user-home" / ".ssh").exists()
    assert not Path("/tmp/autometta-sandbox-escape").exists()
    assert git(repo, "branch", "--list", "evil") == ""
    assert paths.manifest.read_bytes() == before[paths.manifest]
    assert yamlsub.loads(paths.state_yaml.read_text())["stages"], "state.yaml intact"
    assert read_state(repo)["stages"][0]["id"] == SID
    assert escaped() == [], "a setsid child outlived the sandboxed worker"

    s = stage(repo, SID)
    if in_checkout:
        assert (s["status"], s["stall_marker"]) == ("failed", "out_of_scope_change: README.md"), s
        assert git(repo, "rev-parse", "HEAD").strip() == base
        return
    assert s["status"] == "completed", s
    landed = git(repo, "diff", "--name-only", base, "HEAD").split()
    assert landed == ["hello.txt"]
    assert git(repo, "show", "HEAD:hello.txt") == "hello\n"
    if not in_checkout:
        assert (repo / "README.md").read_bytes() == before[repo / "README.md"]

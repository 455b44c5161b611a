"""Each permission mode with the real ``claude`` and ``codex`` CLIs: what runs, what is refused, nothing hangs.

For every mode autometta offers, the CLI is started with exactly the argv
autometta builds for it (``Family.command`` with the mode's Permission: the
card's acceptance command and one allowed command), in a git repo standing
for the stage's tree, with a hand-off folder outside it (``--add-dir``), and
against the scripted model server, which asks for the same tool calls every
time: edits and a shell command in the tree, ``git status``, the hand-off,
the acceptance command, the allowed command, a command no rule allows
(``python3 -c``), and a write, a redirection and an ``rm`` outside. What ran
is read from the files those calls leave behind (ground truth, not the
CLI's words); the run must end by itself well inside its timeout.

claude's ``auto`` mode asks a classifier (2.1.197; 2.1.332 does not even try
against a base URL that is not Anthropic's): the server answers those
requests with an error, as an unreachable check would. codex's
``approve-for-me`` asks a reviewer model about actions outside its sandbox:
the server's reviewer answers with something that is not a verdict.

The table these tests pin is docs/permissions.md's. Run it against the
pinned CLIs with ``AUTOMETTA_CLI_VERSIONS=pinned``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from autometta import families
from autometta.agents import privilege
from autometta.card import parse_card_text
from tests.testing.agent_clis import claude_env, codex_env
from tests.testing.model_server import ModelServer, Request, Turn, error, shell, text, write_file
from tests.testing.repos import make_repo

TIMEOUT = 120  # seconds; a run takes a few
PROMPT = "Do the scripted task."
ACCEPTANCE = "python3 tools/mark.py accepted"
ALLOWED = "python3 tools/mark.py"  # the card's Allowed commands: this prefix, any arguments

#: Appended to codex's config.toml: pytest's tmp_path is under /tmp, which workspace-write leaves
#: writable; without /tmp and $TMPDIR, "outside" is outside for codex as for a repo anywhere else.
STRICT_SANDBOX = """
[sandbox_workspace_write]
exclude_slash_tmp = true
exclude_tmpdir_env_var = true
"""

MARK = "import sys; open(sys.argv[1] + '.txt', 'w').write('ran')\n"

#: (name, what it leaves behind when it ran, the tool call) -- built per run by calls().
CALLS = ("write-tree", "shell-tree", "mkdir-tree", "git-status", "handoff", "acceptance", "allowed", "not-allowed",
         "write-outside", "redirect-outside", "rm-outside")

#: mode -> the calls that run (all others must be refused).
CLAUDE = {
    "acceptEdits": {"write-tree", "shell-tree", "mkdir-tree", "git-status", "handoff", "acceptance", "allowed"},
    "auto": {"write-tree", "shell-tree", "mkdir-tree", "git-status", "handoff", "acceptance", "allowed"},
    # autometta's Edit(//<tree>/**) rules let edits (and redirections) into the tree through; mkdir is no edit
    "dontAsk": {"write-tree", "shell-tree", "git-status", "handoff", "acceptance", "allowed"},
    "bypass": set(CALLS),
}
CODEX = {
    "workspace-write": set(CALLS) - {"write-outside", "redirect-outside", "rm-outside"},
    "approve-for-me": set(CALLS) - {"write-outside", "redirect-outside", "rm-outside"},
    "bypass": set(CALLS),
}


def calls(family: str, tree: Path, handoff: Path, outside: Path) -> List[Tuple[str, Turn]]:
    here = (lambda name: str(tree / name)) if family == "claude" else (lambda name: name)
    return [
        ("write-tree", write_file(here("written.txt"), "x")),
        ("shell-tree", shell("echo hi > echoed.txt")),
        ("mkdir-tree", shell("mkdir made")),
        ("git-status", shell("git status --short > status.txt")),
        ("handoff", write_file(str(handoff / "05-x.json"), "{}")),
        ("acceptance", shell(ACCEPTANCE)),
        ("allowed", shell(f"{ALLOWED} allowed")),
        ("not-allowed", shell("python3 -c \"open('inline.txt', 'w').write('x')\"")),
        ("write-outside", write_file(str(outside / "written.txt"), "x")),
        ("redirect-outside", shell(f"echo x > {outside}/echoed.txt")),
        ("rm-outside", shell(f"rm {outside}/victim.txt")),
    ]


def ran(name: str, tree: Path, handoff: Path, outside: Path) -> bool:
    """Whether the call left its mark: ground truth from the filesystem."""
    return {
        "write-tree": (tree / "written.txt").exists(),
        "shell-tree": (tree / "echoed.txt").exists(),
        "mkdir-tree": (tree / "made").is_dir(),
        "git-status": (tree / "status.txt").exists(),
        "handoff": (handoff / "05-x.json").exists(),
        "acceptance": (tree / "accepted.txt").exists(),
        "allowed": (tree / "allowed.txt").exists(),
        "not-allowed": (tree / "inline.txt").exists(),
        "write-outside": (outside / "written.txt").exists(),
        "redirect-outside": (outside / "echoed.txt").exists(),
        "rm-outside": not (outside / "victim.txt").exists(),
    }[name]


def key(request: Request) -> str:
    """The main conversation, or the check a mode asks a model for (answered so that it cannot approve)."""
    body = json.dumps(request.body)
    if request.api == "claude" and "security monitor" in body:
        return "claude-check"
    if request.api == "codex" and "You are judging one planned coding-agent action" in body:
        return "codex-review"
    return request.api


def run(argv: List[str], cwd: Path, env: Dict[str, str]) -> Tuple[int, str, float]:
    started = time.monotonic()
    proc = subprocess.Popen(argv, cwd=str(cwd), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"{argv[0]} still running after {TIMEOUT}s (it hung):\n{out[-3000:]}")
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    return proc.returncode, out, time.monotonic() - started


def _denials(out: str) -> str:
    """claude's refused calls (its result's permission_denials), else the end of the output."""
    for line in reversed(out.splitlines()):
        if line.startswith("{") and '"permission_denials"' in line:
            try:
                denied = json.loads(line)["permission_denials"]
            except (ValueError, KeyError):
                break
            return "refused: " + "; ".join(json.dumps(d.get("tool_input"))[:120] for d in denied)
    return out[-2000:]


def scene(tmp_path: Path) -> Tuple[Path, Path, Path]:
    tree = make_repo(tmp_path / "tree")
    (tree / "tools").mkdir()
    (tree / "tools" / "mark.py").write_text(MARK)
    handoff = tmp_path / "state" / "handoffs"
    handoff.mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_text("v")
    return tree, handoff, outside


def stage_card(tree: Path):
    return parse_card_text(f"# Stage card 05-x: t\n\n## Metadata\n- **Acceptance command:** `{ACCEPTANCE}`\n"
                           f"- **Allowed commands:** `{ALLOWED}`\n", tree / "docs" / "stages" / "05-x.md")


def exercise(clis, family: str, mode: str, tmp_path: Path) -> Tuple[Dict[str, bool], str]:
    tree, handoff, outside = scene(tmp_path)
    card = stage_card(tree)
    permission = privilege.Permission(family, mode, "test", allow=tuple(card.allowed_commands),
                                      acceptance=card.acceptance_command)
    script = calls(family, tree, handoff, outside)
    turns = {family: [turn for _, turn in script] + [text("done")],
             "claude-check": [error(500)] * 5, "codex-review": [text("no verdict here")] * 5}
    model = "claude-sonnet-4-6" if family == "claude" else "gpt-5.5"
    argv = families.get(family).command("worker", PROMPT, model=model, repo=tree, card=card,
                                        extra_dirs=(handoff,), permission=permission)
    argv[0] = clis[family]
    with ModelServer(turns, key=key) as server:
        if family == "claude":
            env = claude_env(server.url, tmp_path / "home", sandbox=(mode == "bypass"))
        else:
            env = codex_env(server.url, tmp_path / "home")
            config = Path(env["CODEX_HOME"]) / "config.toml"
            config.write_text(config.read_text() + STRICT_SANDBOX)
        env["TMPDIR"] = os.environ["TMPDIR"]
        code, out, seconds = run(argv, tree, env)
        asked = [key(r) for r in server.model_requests(family if family == "claude" else "codex")]
        problems = list(server.problems)
    context = f"{family} {mode}: exit {code} after {seconds:.1f}s, asked {asked}\n{_denials(out)}"
    assert code == 0, context
    assert problems == [], context
    assert asked.count(family) == len(script) + 1, context  # every call answered, then the final message
    return {name: ran(name, tree, handoff, outside) for name in CALLS}, context


@pytest.mark.parametrize("mode", list(CLAUDE))
def test_claude_mode(clis, tmp_path, mode):
    outcome, context = exercise(clis, "claude", mode, tmp_path)
    assert {name for name, did in outcome.items() if did} == CLAUDE[mode], context


@pytest.mark.parametrize("mode", list(CODEX))
def test_codex_mode(clis, tmp_path, mode):
    outcome, context = exercise(clis, "codex", mode, tmp_path)
    assert {name for name, did in outcome.items() if did} == CODEX[mode], context


def test_codex_approve_for_me_lets_its_reviewer_approve_a_write_outside(clis, tmp_path):
    """Looser than workspace-write: an action outside the sandbox runs when the reviewer model says allow."""
    tree, handoff, outside = scene(tmp_path)
    verdict = json.dumps({"risk_level": "low", "user_authorization": "high", "outcome": "allow", "rationale": "ok"})
    turns = {"codex": [write_file(str(outside / "written.txt"), "x"), text("done")],
             "codex-review": [text(verdict)]}
    argv = families.get("codex").command("worker", PROMPT, model="gpt-5.5", repo=tree, card=stage_card(tree),
                                         permission=privilege.Permission("codex", "approve-for-me", "test"))
    argv[0] = clis["codex"]
    with ModelServer(turns, key=key) as server:
        env = codex_env(server.url, tmp_path / "home")
        config = Path(env["CODEX_HOME"]) / "config.toml"
        config.write_text(config.read_text() + STRICT_SANDBOX)
        env["TMPDIR"] = os.environ["TMPDIR"]
        code, out, _ = run(argv, tree, env)
        asked = [key(r) for r in server.model_requests("codex")]
    assert code == 0, out[-3000:]
    assert asked == ["codex", "codex-review", "codex"], asked
    assert (outside / "written.txt").read_text() == "x\n"

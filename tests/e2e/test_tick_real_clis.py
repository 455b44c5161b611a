"""Whole ticks with the real ``claude`` and ``codex`` CLIs against the scripted model server.

The product path end to end: a scratch git repo is subscribed, two stage cards
are queued (01: claude works and codex verifies; 02: the reverse) and
``autometta tick`` runs until both are committed, each in a git worktree of its
own (``max_parallel`` 1: one at a time) and landed on the checked-out branch.
Every agent is a real CLI
started by the tick's dispatcher with the environment autometta builds from
this process's environment (the allowlist, plus the repo's ``env.pass``), and
talks only to a :class:`ModelServer` on 127.0.0.1 that plays the model: it
tells each request's agent (worker or verifier, which stage) from the prompt
in the conversation and answers with that agent's script (write the files,
say done) and token counts this test chose. So the commits, their trailers
and the token and cost totals in ``state/budget.json`` can be checked against
numbers known in advance. A two-line shell wrapper ahead of each CLI on PATH
saves the environment autometta started it with, so the test sees exactly
which variables crossed the allowlist.

Skips like tests/e2e/test_real_clis.py: when the CLIs cannot be installed
(no npm, no registry) and when AUTOMETTA_SKIP_E2E=1.
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest

from autometta import families, yamlsub
from autometta.tick import loop as tick
from autometta.agents.logwriter import read_log
from autometta.paths import HomePaths, RepoPaths
from autometta.agents.roles import ROLES
from tests.testing.repos import CARD, make_repo
from tests.testing.agent_clis import CODEX_CONFIG
from tests.testing.model_server import ModelServer, Request, Tokens, Turn, shell, text, verdict_path, write_file
from tests.testing.ticks import commit_all, git, read_budget, read_state

CLAUDE = "Claude Sonnet 4.6 <claude-sonnet-4-6@local>"
CODEX = "Codex GPT-5.5 <codex-gpt-5-5@local>"
MODELS = {"claude": "claude-sonnet-4-6", "codex": "gpt-5.5"}
FAMILY = {CLAUDE: "claude", CODEX: "codex"}

#: stage id -> (worker, verifier, what the worker writes, the verifier's headline)
STAGES = {
    "01-claude-works": (CLAUDE, CODEX, "Hello from Claude.\n", "Claude writes the greeting"),
    "02-codex-works": (CODEX, CLAUDE, "Hello back from Codex.\n", "Codex writes the reply"),
}

#: (stage id, role, identity, family) of the four agent runs, in the order they happen.
AGENTS = [(stage_id, role, identity, FAMILY[identity])
          for stage_id, (worker, verifier, _, _) in STAGES.items()
          for role, identity in (("worker", worker), ("verifier", verifier))]

OAUTH_TOKEN = "sk-ant-oat01-e2e-subscription-token"
#: Set in the test process; the agents must never get them.
STRAY_KEYS = {"ANTHROPIC_API_KEY": "sk-ant-api03-stray-key-must-not-cross",
              "OPENAI_API_KEY": "sk-stray-openai-key-must-not-cross"}

DEADLINE = 150  # seconds for the whole backlog; it takes about 5 s
CARD_BUDGET = "1 minute"  # the runner's hard stop is at 1.5 x this

#: Sonnet's list prices per million tokens: input, output, cache write, cache read.
SONNET_PRICES = (3.0, 15.0, 3.75, 0.30)

#: The phrase each prompt template opens with: which agent a conversation belongs to.
AGENT_RE = re.compile(r"\bthe\s+(worker|independent\s+verifier)\s+for\s+stage\s+"
                      r"(\d{2}[a-z]*-[a-z0-9-]+)\s+of\s")

#: Outcome kinds of a tick that made no transition (or could not): stop ticking.
QUIET = ("wait", "noop", "halt", "halted", "locked", "error")


# -- telling the agents apart ----------------------------------------------------

def _texts(content: Any) -> List[str]:
    """The text parts of one message's content (a string or a list of blocks)."""
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [str(block.get("text") or "") for block in content if isinstance(block, dict)]
    return []


def user_text(request: Request) -> str:
    """The text of the user messages of a model request: the prompt is among them."""
    body = request.body if isinstance(request.body, dict) else {}
    if request.api == "claude":
        items = body.get("messages") or []
    else:
        items = [i for i in body.get("input") or []
                 if isinstance(i, dict) and i.get("type", "message") == "message"]
    return "\n".join(t for m in items if isinstance(m, dict) and m.get("role") == "user"
                     for t in _texts(m.get("content")))


def agent_key(request: Request) -> str:
    """``"<api>:<role>:<stage id>"``, e.g. ``"claude:worker:01-claude-works"``; ``"<api>:?"`` if unknown."""
    match = AGENT_RE.search(user_text(request))
    if not match:
        return f"{request.api}:?"
    role = "worker" if match.group(1) == "worker" else "verifier"  # "independent\nverifier" too
    return f"{request.api}:{role}:{match.group(2)}"


# -- the script ------------------------------------------------------------------

def tokens(family: str, agent: int, turn: int) -> Tokens:
    """Distinct counts for every reply, so a lost or doubled one shows in the totals."""
    base = 1000 * (agent + 1) + 10 * turn
    if family == "claude":
        return Tokens(input=base, output=20 + turn, cache_read=100 * (turn + 1),
                      cache_write=40 if turn == 0 else 0)
    return Tokens(input=base, output=30 + turn, cache_read=150 * turn, reasoning=turn)


def expected_usage(family: str, turns: List[Turn]) -> Tuple[int, Optional[float]]:
    """Tokens as autometta counts them (usage.py's total_tokens) and claude's list-price cost."""
    if family == "claude":
        total = sum(t.tokens.input + t.tokens.cache_write + t.tokens.output for t in turns)
        pin, pout, pwrite, pread = SONNET_PRICES
        cost = sum(t.tokens.input * pin + t.tokens.output * pout + t.tokens.cache_write * pwrite
                   + t.tokens.cache_read * pread for t in turns) / 1e6
        return total, cost
    # codex sends input_tokens = input + cached; autometta takes the cached ones back out
    return sum(t.tokens.input + t.tokens.output for t in turns), None


def envelope(stage_id: str, worker: str) -> str:
    return json.dumps({"stage_id": stage_id, "status": "pass", "deliverables": [f"out/{stage_id}.txt"],
                       "notes": "wrote the file; criterion 1 holds", "worker_identity": worker})


def verdict(stage_id: str, verifier: str, headline: str) -> str:
    family = FAMILY[verifier]
    return json.dumps({
        "stage_id": stage_id, "verifier_identity": verifier,
        "verifier_invocation": f"autometta tick ({family} cli)", "ran_at": "2026-11-26T00:00:00Z",
        "criteria": [{"id": 1, "name": "The file exists", "verdict": "PASS",
                      "evidence": f"out/{stage_id}.txt:1"}],
        "additional_findings": "", "overall": "PASS", "headline": headline,
    })


def build_script(repo: Path) -> Dict[str, List[Turn]]:
    """Each agent's turns, keyed like :func:`agent_key`.

    Each stage runs in its worktree ``<repo>/.autometta/worktrees/<id>``. claude's Write wants
    absolute paths: the deliverable in the worktree, the handoff and verdict in the repo's own
    state/ (the paths its prompt names). codex writes its deliverable relative to its cwd (so it
    lands in the worktree only if codex runs there) with apply_patch, its envelope through
    ``$AUTOMETTA_HANDOFF`` with exec_command, its verdict by absolute path (``--add-dir``).
    """
    paths = RepoPaths(repo)
    script: Dict[str, List[Turn]] = {}
    for agent, (stage_id, role, identity, family) in enumerate(AGENTS):
        _, _, content, headline = STAGES[stage_id]
        work = repo / ".autometta" / "worktrees" / stage_id
        where = (lambda rel: str(work / rel)) if family == "claude" else (lambda rel: rel)
        if role == "worker":
            handoff = (write_file(str(paths.handoff(stage_id)), envelope(stage_id, identity)) if family == "claude"
                       else shell("printf '%s' '" + envelope(stage_id, identity).replace("'", "'\\''")
                                  + "' > \"$AUTOMETTA_HANDOFF\""))
            turns = [write_file(where(f"out/{stage_id}.txt"), content), handoff,
                     text("Wrote the file and the handoff envelope.")]
        else:
            turns = [write_file(verdict_path(stage_id),  # the path its prompt names, made at its dispatch
                                verdict(stage_id, identity, headline)),
                     text("Verdict written: PASS.")]
        for index, turn in enumerate(turns):
            turn.tokens = tokens(family, agent, index)
        script[f"{family}:{role}:{stage_id}"] = turns
    return script


# -- the repo and the environment -------------------------------------------------

def write_cards(repo: Path) -> List[Path]:
    cards = []
    for stage_id, (worker, verifier, _, _) in STAGES.items():
        text_ = CARD.format(stage_id=stage_id, title=f"Stage {stage_id}", worker=worker, verifier=verifier)
        text_ = text_.replace("10 minutes", CARD_BUDGET).replace("5 minutes", CARD_BUDGET)
        card = repo / "docs" / "stages" / f"{stage_id}.md"
        card.parent.mkdir(parents=True, exist_ok=True)
        card.write_text(text_)
        cards.append(card)
    return cards


def pass_env(repo: Path, names: List[str]) -> None:
    """What a user with a gateway adds to ``.autometta.local.yaml``: ``env: {pass: [...]}``."""
    path = RepoPaths(repo).manifest
    doc = yamlsub.loads(path.read_text())
    doc["env"] = {"pass": names}
    path.write_text(yamlsub.dumps(doc))


#: Put first on PATH as ``claude`` and ``codex``: saves the environment autometta started the CLI
#: with (``env``, one NAME=value a line), then runs the real CLI in its place.
WRAPPER = """#!/bin/sh
env > "{dumps}/$AUTOMETTA_STAGE_ID-$AUTOMETTA_ROLE.env"
exec "{real}" "$@"
"""


def wrap_clis(clis: Dict[str, str], folder: Path, dumps: Path) -> None:
    folder.mkdir()
    for name, real in clis.items():
        wrapper = folder / name
        wrapper.write_text(WRAPPER.format(dumps=dumps, real=real))
        wrapper.chmod(0o755)


def subscribed(run, repo: Path, monkeypatch, clis: Dict[str, str], url: str, tmp_path: Path) -> Path:
    """A user's first steps with a gateway: the agents' environment, ``init-host``, ``subscribe REPO``, and
    the gateway's variables passed to the agents; returns :func:`agent_environment`'s folder."""
    dumps = agent_environment(monkeypatch, clis, url, tmp_path)
    assert run("init-host").code == 0
    result = run("subscribe", str(repo))
    assert result.code == 0, result.err
    pass_env(repo, ["ANTHROPIC_BASE_URL", "CLAUDE_CODE_OAUTH_TOKEN"])
    return dumps


def agent_environment(monkeypatch, clis: Dict[str, str], url: str, tmp_path: Path) -> Path:
    """This process's environment as a user's cron would have it; autometta filters it for the agents.

    Returns the folder where each agent's environment is saved as ``<stage id>-<role>.env``.
    """
    for name in list(os.environ):  # nothing of the caller's agent setup or billing routes
        if name == "IS_SANDBOX" or name.startswith(("ANTHROPIC_", "CLAUDE", "CODEX_", "OPENAI_", "AWS_",
                                                     "GOOGLE_", "VERTEX_", "XDG_", "OP_REF_", "AUTOMETTA_")):
            monkeypatch.delenv(name)
    home = tmp_path / "agent-home"
    home.mkdir()
    codex_home = tmp_path / "codex-home"
    codex_home.mkdir()
    (codex_home / "config.toml").write_text(CODEX_CONFIG.format(base_url=url))
    dumps = tmp_path / "agent-env"
    dumps.mkdir()
    wrap_clis(clis, tmp_path / "cli-wrappers", dumps)
    bins = sorted({os.path.dirname(path) for path in clis.values()})  # the CLIs' node shims live there too
    monkeypatch.setenv("PATH", os.pathsep.join([str(tmp_path / "cli-wrappers"), *bins,
                                                os.environ.get("PATH", os.defpath)]))
    for name, value in {"HOME": str(home), "ANTHROPIC_BASE_URL": url, "CLAUDE_CODE_OAUTH_TOKEN": OAUTH_TOKEN,
                        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "CLAUDE_CODE_MAX_RETRIES": "0",
                        "IS_SANDBOX": "1", "CODEX_HOME": str(codex_home), **STRAY_KEYS}.items():
        monkeypatch.setenv(name, value)
    return dumps


# -- ticking ---------------------------------------------------------------------

def agent_pids(repo: Path) -> List[int]:
    return [int(s[f"{role}_pid"]) for s in read_state(repo)["stages"]
            for role in ROLES if s.get(f"{role}_pid")]


def await_agents(repo: Path, deadline: float) -> None:
    """Wait for every agent the state records (children of this process); stop them at ``deadline``."""
    for pid in agent_pids(repo):
        stopped: List[int] = []
        stopper = threading.Timer(max(deadline - time.monotonic(), 0), _stop_group, (pid, stopped))
        stopper.start()
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        finally:
            stopper.cancel()
        if stopped:
            pytest.fail(f"agent {pid} still running after {DEADLINE}s; see {RepoPaths(repo).logs}")


def _stop_group(pid: int, stopped: Optional[List[int]] = None) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if stopped is not None:
        stopped.append(pid)


def tick_until_quiet(home: Path, repo: Path, deadline: float, limit: int = 20) -> List[tick.Outcome]:
    outcomes: List[tick.Outcome] = []
    for _ in range(limit):
        if time.monotonic() > deadline:
            pytest.fail(f"the backlog did not finish in {DEADLINE}s: {[o.kind for o in outcomes]}")
        (outcome,) = tick.run_tick(HomePaths(home), echo=False)
        outcomes.append(outcome)
        await_agents(repo, deadline)
        if outcome.kind in QUIET:
            return outcomes
    pytest.fail(f"no quiet tick after {limit}: {[o.kind for o in outcomes]}")


def env_names(dump: Path) -> Dict[str, str]:
    """``env`` output as a dict (values that span lines are cut; only names matter here)."""
    out = {}
    for line in dump.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            out[name] = value
    return out


# -- the test --------------------------------------------------------------------

def test_two_stage_backlog_with_the_real_clis(clis, run, tmp_path, home_dir, monkeypatch):
    deadline = time.monotonic() + DEADLINE
    repo = make_repo(tmp_path / "proj")
    script = build_script(repo)

    with ModelServer(script, key=agent_key) as server:
        env_dumps = subscribed(run, repo, monkeypatch, clis, server.url, tmp_path)
        cards = write_cards(repo)
        commit_all(repo, "subscribe and queue two stages")
        base = git(repo, "rev-parse", "HEAD").strip()
        for card in cards:
            result = run("add-stage", str(repo), str(card))
            assert result.code == 0, result.err

        try:
            outcomes = tick_until_quiet(home_dir, repo, deadline)
        finally:
            for pid in agent_pids(repo):  # only on failure: a run the deadline cut short
                _stop_group(pid)
        requests = list(server.requests)
        problems = list(server.problems)

    paths = RepoPaths(repo)
    kinds = [o.kind for o in outcomes]
    logs = {(s, r): read_log(paths.log(s, r)) for s in STAGES for r in ("worker", "verifier")}
    context = (f"tick outcomes {[(o.kind, o.message) for o in outcomes]}\nserver problems {problems}\n"
               + "".join(f"--- {s} {r} log (tail)\n{text_[-1500:]}\n" for (s, r), text_ in logs.items()))

    # Both stages went worker -> verifier -> commit on its branch and landing in the same tick (the
    # next stage claimed right after), then the queue was idle; no worktree or branch is left.
    state = read_state(repo)
    assert {s["id"]: s["status"] for s in state["stages"]} == dict.fromkeys(STAGES, "completed"), context
    assert kinds == ["launch", "launch", "completed", "launch", "completed", "wait"], context
    assert problems == [], context
    assert state["current_stage"] is None
    assert [s["branch"] for s in state["stages"]] == [f"autometta/{stage_id}" for stage_id in STAGES]
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert git(repo, "branch", "--list", "autometta/*") == ""

    # The script was played exactly: every agent asked for each of its turns once, and nothing else asked.
    model_posts = [r for r in requests if r.method == "POST" and r.api]
    assert sorted(agent_key(r) for r in model_posts) == sorted(
        key for key, turns in script.items() for _ in turns), context
    assert all(r.method == "HEAD" and r.path == "/" for r in requests if r not in model_posts), \
        [(r.method, r.path) for r in requests if r not in model_posts]

    # The models the identities name, and only the subscription token: no stray API key ever crossed.
    for api, model in MODELS.items():
        assert {r.body["model"] for r in server.model_requests(api)} == {model}
    for r in requests:
        assert "x-api-key" not in r.headers, r.headers
        assert not any(key in str(r.headers) for key in STRAY_KEYS.values()), r.headers
    claude_auth = {r.headers.get("authorization") for r in server.model_requests("claude")}
    assert claude_auth == {f"Bearer {OAUTH_TOKEN}"}
    for stage_id, role, _, family in AGENTS:
        seen = env_names(env_dumps / f"{stage_id}-{role}.env")
        assert not set(STRAY_KEYS) & set(seen), f"the {stage_id} {role} got {set(STRAY_KEYS) & set(seen)}"
        assert (seen["AUTOMETTA_STAGE_ID"], seen["AUTOMETTA_ROLE"]) == (stage_id, role)
        assert seen["PWD"] == str(repo / ".autometta" / "worktrees" / stage_id)  # never the user's checkout
        if family == "claude":
            assert seen.get("CLAUDE_CODE_OAUTH_TOKEN") == OAUTH_TOKEN  # crossed: env.pass names it
            assert seen.get("IS_SANDBOX") == "1"

    # Two commits: author the worker, Co-Authored-By the verifier, subject "<id>: <headline>",
    # holding the deliverable and nothing under state/.
    log = git(repo, "log", "--reverse", f"{base}..HEAD",
              "--format=%H%x00%an <%ae>%x00%s%x00%(trailers:key=Co-Authored-By,valueonly)%x01")
    commits = [entry.strip("\n").split("\0") for entry in log.split("\x01") if entry.strip()]
    assert len(commits) == 2, log
    for (sha, author, subject, coauthor), (stage_id, (worker, verifier, content, headline)) in zip(
            commits, STAGES.items()):
        assert (author, subject, coauthor.strip()) == (worker, f"{stage_id}: {headline}", verifier)
        stage = next(s for s in state["stages"] if s["id"] == stage_id)
        assert stage["commit"] == sha and stage["completed_at"]
        assert git(repo, "show", "--name-only", "--format=", sha).split() == [f"out/{stage_id}.txt"]
        assert git(repo, "show", f"{sha}:out/{stage_id}.txt") == content
    assert git(repo, "status", "--porcelain", "--", ".", ":(exclude)state") == ""
    assert git(repo, "rev-parse", "--verify", "refs/heads/phat-controller/state").strip()

    # Tokens and cost: autometta's parsers over the four logs, and the numbers the "model" was told to report.
    budget = read_budget(repo)
    parsed = {}
    for stage_id, role, _, family in AGENTS:
        usage = families.get(family).parse_usage(logs[stage_id, role])
        assert usage is not None, f"no usage in the {stage_id} {role} log"
        want_tokens, want_cost = expected_usage(family, script[f"{family}:{role}:{stage_id}"])
        assert usage.total_tokens == want_tokens, (stage_id, role, usage)
        if want_cost is None:
            assert usage.cost_usd is None, (stage_id, role, usage)
        else:
            assert usage.cost_usd == pytest.approx(want_cost, rel=1e-9), (stage_id, role, usage)
        parsed[stage_id, role] = usage
    expected_tokens = sum(expected_usage(family, script[f"{family}:{role}:{stage_id}"])[0]
                          for stage_id, role, _, family in AGENTS)
    assert budget["tokens_spent"] == sum(u.total_tokens for u in parsed.values()) == expected_tokens
    claude_costs = [u.cost_usd for u in parsed.values() if u.cost_usd is not None]
    assert len(claude_costs) == 2  # codex reports no cost
    expected_cost = sum(expected_usage(family, script[f"{family}:{role}:{stage_id}"])[1] or 0
                        for stage_id, role, _, family in AGENTS)
    assert budget["cost_usd_spent"] == pytest.approx(sum(claude_costs), abs=2e-6)
    assert budget["cost_usd_spent"] == pytest.approx(expected_cost, abs=2e-6)
    for stage_id in STAGES:
        stage = next(s for s in state["stages"] if s["id"] == stage_id)
        worker, verifier = parsed[stage_id, "worker"], parsed[stage_id, "verifier"]
        assert (stage["worker_tokens"], stage["verifier_tokens"], stage["tokens"]) == (
            worker.total_tokens, verifier.total_tokens, worker.total_tokens + verifier.total_tokens)
        claude_role = "worker" if worker.cost_usd is not None else "verifier"  # one claude run per stage
        cost = parsed[stage_id, claude_role].cost_usd
        assert stage[f"{claude_role}_cost_usd"] == pytest.approx(cost, abs=1e-6)
        assert stage["cost_usd"] == pytest.approx(cost, abs=1e-6)
        assert stage["worker_seconds"] is not None and stage["verifier_seconds"] is not None

    # One clock tick per transition (a tick that lands one stage and claims the next makes three:
    # commit, land, claim); nothing halted or failed.
    assert budget["clock_ticks_used"] == state["tick_count"] == 8
    assert (budget["halted"], budget["consecutive_failures"]) == (False, 0)

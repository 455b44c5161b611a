"""The fuzz world: two subscribed repos caught mid-flight, and seeded ways to break their files.

:func:`build_world` makes, with real ticks and real agents (script cards), a
controller home and two repos whose every file autometta reads exists:

* ``alpha``: ``01-done`` completed, ``02-gave-up`` failed (its worker said
  ``fail``), ``03-inflight`` whose worker has exited with its handoff written
  (the next tick reaps it and starts the verifier), ``04-later`` pending
  behind it; a live agent registered by hand (a ``sleep``, with a stream-json
  log) and an exited one, so ``heartbeat.json`` and ``recent-agents/`` exist.
* ``beta``: ``01-judged`` whose verifier panel has voted and written its
  verdict (the next tick checks the plan and each vote, and commits it);
  ``02-byhand`` run by hand (``dispatch``, then ``verify``: its one-shot
  record, its verify run's own verdict path), ``03-noted`` dispatched by
  hand and not waited for (the spend ledger's note of an open run).

Plus ``config.yaml`` (with an ``observe:`` section and a panel), the event
journal, tick logs, the dashboard's ``data.json``, ``.fresh.json`` and stage
pages, the books, the spend ledger, a parked billing route, the turns of
``max_per_fire``, a refs file and a codex api home. Every stage whose
verifier ran has its run's own verdict (``state/verifiers/<id>.<nonce>.json``)
beside autometta's copy.

:func:`corrupt` breaks one file in one of many ways, chosen by a seeded
random generator: wrong types, missing and unknown fields, deep nesting,
bad bytes, truncation, a huge file, a folder or a symlink in its place.
"""

from __future__ import annotations

import json
import os
import queue
import random
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from tests.testing.env import ROOT

WORKER = "Script Worker <script-worker@local>"
CHECKER = "Script Checker <script-checker@local>"
USAGE = 'echo \'autometta-usage: {"input_tokens": 1200, "output_tokens": 80, "cost_usd": 0.01}\''


def _envelope(stage_id: str, status: str = "pass") -> str:
    doc = {"stage_id": stage_id, "status": status, "deliverables": [f"out/{stage_id}.txt"],
           "notes": "done" if status == "pass" else "could not do it"}
    return json.dumps(doc)


def _verdict(stage_id: str, overall: str) -> str:
    return json.dumps({"stage_id": stage_id, "verifier_identity": CHECKER, "verifier_invocation": "sh",
                       "ran_at": "2026-11-26T00:00:00Z",
                       "criteria": [{"id": 1, "name": "the file", "verdict": overall, "evidence": "out:1"}],
                       "additional_findings": "", "overall": overall, "headline": "write the file"})


def _vote(stage_id: str, name: str) -> str:
    """A Script panellist's command: a PASS vote into its own verdict path."""
    doc = json.loads(_verdict(stage_id, "PASS"))
    doc["verifier_identity"] = f"Script Panellist {name.upper()} <panel-{name}@local>"
    return f"{USAGE} && printf '%s' '{json.dumps(doc)}' > \"$AUTOMETTA_ARTEFACT\""


def card_text(stage_id: str, *, worker_status: str = "pass", overall: str = "PASS",
              depends_on: Optional[str] = None, panel: bool = False) -> str:
    write = f"mkdir -p out && printf 'hi\\n' > out/{stage_id}.txt && " if worker_status == "pass" else ""
    worker = f"{write}{USAGE} && printf '%s' '{_envelope(stage_id, worker_status)}' > \"$AUTOMETTA_HANDOFF\""
    verifier = f"{USAGE} && printf '%s' '{_verdict(stage_id, overall)}' > \"$AUTOMETTA_ARTEFACT\""
    lines = [f"# Stage card {stage_id}: Write the file", "", "## Metadata", "- **Orchestrator:** Human <me@example.com>",
             f"- **Worker:** {WORKER}", f"- **Verifier:** {CHECKER}", "- **Pairing rationale:** fuzz world",
             f"- **Worker command:** `{worker}`", f"- **Verifier command:** `{verifier}`"]
    if depends_on:
        lines.append(f"- **Depends on:** {depends_on}")
    if panel:
        lines.append("- **Verifier panel:** true")
    lines += ["", "## Deliverables", f"- `out/{stage_id}.txt`", "", "## Acceptance criteria", "1. The file exists.",
              "", "## Budget", "- Worker wall-clock: 5 minutes", "- Verifier wall-clock: 5 minutes", ""]
    return "\n".join(lines)


@dataclass
class World:
    root: Path
    env: Dict[str, str]
    home: Path
    repos: Dict[str, Path]
    agent: subprocess.Popen
    pristine: Path = field(init=False)
    servers: List[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.pristine = self.root.with_name(self.root.name + ".pristine")

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """``python -m autometta ARGS``; one that hangs (a FIFO opened for reading) is an AssertionError."""
        try:
            return subprocess.run([sys.executable, "-m", "autometta", *args], cwd=str(self.root), env=self.env,
                                  stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
                                  errors="replace")
        except subprocess.TimeoutExpired:
            raise AssertionError(f"autometta {' '.join(args)}: still running after {timeout:.0f} s") from None

    def cli_all(self, commands: List[Tuple[str, ...]], timeout: float = 60) -> List[Any]:
        """Each of ``commands`` as :meth:`cli` runs it, two at a time (CI's two cores), in order; one that
        hangs is an AssertionError in its place. Forked from two servers that imported autometta once
        (:mod:`tests.testing.forkserver`): a run costs a fork, not a new interpreter.
        ``AUTOMETTA_FUZZ_SUBPROCESS=1`` starts a new interpreter for each instead."""
        from tests.testing import forkserver

        fresh = os.environ.get("AUTOMETTA_FUZZ_SUBPROCESS") == "1"
        if not fresh and not self.servers:
            self.servers = [forkserver.Runner(self.root, self.env, ROOT) for _ in range(2)]
        idle: "queue.Queue[Any]" = queue.Queue()
        for server in self.servers:
            idle.put(server)

        def one(cmd: Tuple[str, ...]) -> Any:
            if fresh:
                try:
                    return self.cli(*cmd, timeout=timeout)
                except AssertionError as exc:
                    return exc
            server = idle.get()
            try:
                return server.run(list(cmd), timeout=timeout)
            except forkserver.Hung as exc:
                return AssertionError(str(exc))
            finally:
                idle.put(server)

        with ThreadPoolExecutor(max_workers=2) as pool:
            return list(pool.map(one, commands))

    def freeze(self) -> None:
        """Keep the world as it is now; :meth:`restore` brings it back."""
        if self.pristine.exists():
            shutil.rmtree(self.pristine)
        shutil.copytree(self.root, self.pristine, symlinks=True)

    def restore(self) -> None:
        await_runners(self.root)
        _rmtree(self.root)
        shutil.copytree(self.pristine, self.root, symlinks=True)

    def readable_files(self) -> List[Path]:
        """Every file of the world that autometta reads (the repos' git internals and outputs aside),
        in an order that does not depend on the pids in their names, so a seed replays."""
        out = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = sorted(d for d in dirnames if d not in (".git", "out"))
            for name in sorted(filenames):
                path = Path(dirpath) / name
                if name in ("index.html", "README.md", "hello.txt", ".gitignore", "template.yaml") or name.endswith(".prompt.md") \
                        or name.endswith((".lock", ".gitkeep")) or ".corrupt-" in name:
                    continue
                if "/.autometta/worktrees/" in str(path) and "/state/" in str(path):
                    continue  # a stage's tree's committed copy of state/: autometta reads the repo's own
                out.append(path)
        return sorted(out, key=lambda p: re.sub(r"[0-9]{3,}", "N", str(p.relative_to(self.root))))

    def close(self) -> None:
        for server in self.servers:
            server.close()
        self.servers = []
        if self.agent.poll() is None:
            self.agent.kill()
            self.agent.wait()


def _rmtree(path: Path) -> None:
    def retry(func, name, exc):
        if isinstance(exc, FileNotFoundError):
            return  # gone meanwhile
        os.chmod(os.path.dirname(name), 0o700)  # a folder made unreadable by a corruption
        func(name)

    handler = ({"onexc": retry} if sys.version_info >= (3, 12)
               else {"onerror": lambda func, name, info: retry(func, name, info[1])})
    for _ in range(3):  # a runner a failed case left behind may still write while we delete
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.exists():
            shutil.rmtree(path, **handler)
        if not os.path.lexists(path):
            return
        await_runners(path)
    shutil.rmtree(path)


def runners_under(root: Path) -> List[int]:
    """Live processes (not zombies) whose command line names a path under ``root``: detached runners."""
    needle = os.fsencode(str(root) + "/")
    found = []
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                argv = handle.read()
            with open(f"/proc/{entry}/stat", "rb") as handle:
                state = handle.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if state != b"Z" and needle in argv and b"--exit-file" in argv:
            found.append(int(entry))
    return found


def await_runners(root: Path, timeout: float = 60) -> List[str]:
    """Wait for the runners under ``root`` (``timeout`` seconds each); the command lines of any
    still running then (the world's agents are scripts that end at once: one still running hangs)."""
    from tests.testing.tick_processes import await_pid

    for pid in runners_under(root):
        await_pid(pid, timeout=timeout)
    left = []
    for pid in runners_under(root):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                left.append(handle.read().replace(b"\0", b" ").decode("utf-8", "replace")[-400:])
        except OSError:
            pass
    return left


def _git(repo: Path, *args: str, env: Dict[str, str]) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, env=env, capture_output=True)


def build_world(root: Path) -> World:
    root.mkdir(parents=True)
    home = root / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOMETTA_", "PHAT_CONTROLLER_"))}
    env.update({
        "PYTHONPATH": str(ROOT), "PHAT_CONTROLLER_HOME": str(home), "XDG_STATE_HOME": str(root / "xdg-state"),
        "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": str(root / "gitconfig"),
        "GIT_AUTHOR_NAME": "Test Human", "GIT_AUTHOR_EMAIL": "human@example.com",
        "GIT_COMMITTER_NAME": "Test Human", "GIT_COMMITTER_EMAIL": "human@example.com",
        "AUTOMETTA_LOCAL_REFS": str(root / "op-refs.local.sh"), "AUTOMETTA_CODEX_HOME": str(root / "codex-api"),
        "HOME": str(root / "user"),
    })
    (root / "user").mkdir()
    (root / "op-refs.local.sh").write_text('OP_REF_ANTHROPIC_API_KEY="op://vault/anthropic/credential"\n')
    (root / "codex-api").mkdir()
    (root / "codex-api" / "auth.json").write_text(json.dumps({"OPENAI_API_KEY": "sk-test-not-a-real-key-0000"}))
    agent = subprocess.Popen(["sleep", "3600"], stdin=subprocess.DEVNULL, start_new_session=True)
    world = World(root=root, env=env, home=home, repos={}, agent=agent)
    try:
        _populate(world)
    except BaseException:
        world.close()
        raise
    world.freeze()
    return world


def _check(res: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert res.returncode == 0, (res.args, res.stdout, res.stderr)
    return res


def _populate(w: World) -> None:
    _check(w.cli("init-host"))
    config = w.home / "config.yaml"
    panellists = "".join(f"  - name: {n}\n    identity: Script Panellist {n.upper()} <panel-{n}@local>\n"
                         f"    command: {json.dumps(_vote('01-judged', n))}\n" for n in "abc")
    config.write_text(config.read_text() + "log_retention_days: 30\nobserve:\n  stall_seconds: 300\n"
                      "  quiet_seconds: 60\n  completed_limit: 8\npanel:\n" + panellists)
    plans = {"alpha": [("01-done", {}), ("02-gave-up", {"worker_status": "fail"}), ("03-inflight", {}),
                       ("04-later", {"depends_on": "03-inflight"})],
             "beta": [("01-judged", {"panel": True}), ("02-byhand", {}), ("03-noted", {})]}
    for name, cards in plans.items():
        repo = w.root / name
        repo.mkdir()
        _git(repo, "init", "-q", env=w.env)
        (repo / "README.md").write_text(f"{name}\n")
        for stage_id, kw in cards:
            card = repo / "docs" / "stages" / f"{stage_id}.md"
            card.parent.mkdir(parents=True, exist_ok=True)
            card.write_text(card_text(stage_id, **kw))
        _check(w.cli("subscribe", str(repo)))
        manifest = repo / ".autometta.local.yaml"
        manifest.write_text(manifest.read_text() + "max_loops: 1\nusage_limit_backoff: 1800\n")
        _git(repo, "add", "-A", env=w.env)
        _git(repo, "commit", "-qm", "cards", env=w.env)
        w.repos[name] = repo
    alpha, beta = w.repos["alpha"], w.repos["beta"]

    def add(repo: Path, stage_id: str) -> None:
        _check(w.cli("add-stage", str(repo), str(repo / "docs" / "stages" / f"{stage_id}.md")))

    def tick(repo: Path) -> None:
        _check(w.cli("tick", "--repo", str(repo)))
        await_runners(w.root)

    add(alpha, "01-done")
    add(alpha, "02-gave-up")
    for _ in range(4):  # 01: claim, verifier, commit; 02: claim
        tick(alpha)
    tick(alpha)  # 02: failed
    add(alpha, "03-inflight")
    add(alpha, "04-later")
    tick(alpha)  # 03: claimed, its worker has run
    add(beta, "01-judged")
    tick(beta)
    tick(beta)  # its verifier panel has run
    # a stage run by hand: dispatch, then verify (state/logs/02-byhand-oneshot.json)
    byhand = str(beta / "docs" / "stages" / "02-byhand.md")
    _check(w.cli("dispatch", "--wait", byhand))
    _check(w.cli("verify", "--wait", byhand))
    _check(w.cli("dispatch", str(beta / "docs" / "stages" / "03-noted.md")))  # not waited for: a note in ledger/open/
    await_runners(w.root)
    _check(subprocess.run([sys.executable, "-c", PARK], env=dict(w.env, FUZZ_REPO=str(alpha)), capture_output=True,
                          text=True))  # a billing route parked until tomorrow (no script agent bills it)
    # a live agent started by hand, with a stream-json log, and one that has exited
    log = alpha / "state" / "logs" / "manual-agent.log"
    log.write_text('{"type":"system","subtype":"init","model":"claude-sonnet-4-6"}\n'
                   '{"type":"assistant","message":{"content":[{"type":"tool_use","name":"Write",'
                   '"input":{"file_path":"/x/out/03-inflight.txt"}}]}}\n')
    card = str(alpha / "docs" / "stages" / "03-inflight.md")
    _check(w.cli("register-agent", str(alpha), str(w.agent.pid), "worker", "claude", "Claude Sonnet 4.6 <c@local>",
                 card, str(log), "600"))
    gone = subprocess.Popen(["true"])
    gone.wait()
    w.cli("register-agent", str(alpha), str(gone.pid), "verifier", "codex", "Codex <x@local>", card, str(log), "0")
    lock = alpha / "state" / ".tick.lock"  # a stale bash lock: its pid is gone
    lock.mkdir()
    (lock / "pid").write_text(f"{gone.pid}\n")
    _check(w.cli("heartbeat"))  # heartbeat.json, and the exited one moves to recent-agents
    _check(w.cli("dashboard"))
    for repo in (alpha, beta):
        state = (repo / "state" / "state.yaml").read_text()
        assert "in_progress" in state, state
    assert list((w.home / "ledger" / "open").glob("*.json")) and (w.home / "parked.json").is_file()


#: Parks a billing route as a usage limit would (autometta.books.parking writes the file, as the tick does).
PARK = ("import os, time; from autometta.books import parking; from autometta.paths import HomePaths; "
        "parking.park(HomePaths.from_env(), 'codex api', parking.now_iso(time.time() + 86400), "
        "'worker hit a usage limit (fuzz world)', repo=os.environ['FUZZ_REPO'], stage='03-inflight', now=time.time())")


# --------------------------------------------------------------------------- corruptions

#: Values of the wrong type (or shape) put in place of a field.
WRONG_VALUES: List[Any] = [
    "lots", "", -1, -10 ** 30, 10 ** 40, 1.5, float("nan"), float("inf"), True, False, None, [], {}, [1, "a"],
    {"a": {"b": 1}}, "\x00\x1b[31m\n", "x" * 100000, "../../../../etc/passwd", "2026-13-45T99:99:99Z",
]


def _deep(depth: int, kind: str) -> str:
    if kind == "json-list":
        return "[" * depth + "]" * depth
    if kind == "json-object":
        return '{"a":' * depth + "1" + "}" * depth
    if kind == "yaml-flow":
        return "[" * depth + "]" * depth
    return ""


def _leaves(doc: Any, path: Tuple = ()) -> List[Tuple]:
    """Paths to every value in ``doc`` (containers included)."""
    out = [path] if path else []
    if isinstance(doc, dict):
        for key, value in doc.items():
            out.extend(_leaves(value, path + (key,)))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            out.extend(_leaves(value, path + (index,)))
    return out


def _set(doc: Any, path: Tuple, value: Any) -> Any:
    if not path:
        return value
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return doc


def _delete(doc: Any, path: Tuple) -> Any:
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    return doc


DEEP = "\x00deep\x00"  # placeholder for a deeply nested value, spliced into the text after dumping


def _parse(data: bytes, name: str) -> Tuple[Optional[str], Any]:
    """(format, document) of a structured file, or (None, None)."""
    from autometta import yamlsub

    text = data.decode("utf-8", errors="strict")
    if name.endswith(".json"):
        return "json", json.loads(text)
    if name.endswith(".jsonl"):
        return "jsonl", [json.loads(line) for line in text.splitlines() if line.strip()]
    if name.endswith(".yaml") or name.endswith(".yaml.bak"):
        return "yaml", yamlsub.loads(text)
    return None, None


def _dump(fmt: str, doc: Any) -> str:
    from autometta import yamlsub

    if fmt == "json":
        return json.dumps(doc, indent=2)
    if fmt == "jsonl":
        return "".join(json.dumps(d) + "\n" for d in doc)
    return yamlsub.dumps(doc)


STRUCTURED = ("wrong-type", "wrong-type", "wrong-type", "drop-key", "extra-key", "deep-value", "top-type")
RAW = ("empty", "truncate", "garbage", "bad-utf8", "nul", "deep-document", "huge", "folder", "symlink",
       "long-line", "escapes", "fifo")


def corrupt(path: Path, rng: random.Random) -> str:
    """Break ``path`` one seeded way; returns what was done, for the failure message."""
    data = path.read_bytes()
    try:
        fmt, doc = _parse(data, path.name)
    except (ValueError, UnicodeDecodeError, Exception):
        fmt, doc = None, None
    kinds = RAW + (STRUCTURED if fmt else ())
    kind = rng.choice(kinds)
    if fmt:
        kind = rng.choice(STRUCTURED) if rng.random() < 0.6 else kind
    if kind in STRUCTURED and fmt:
        return _corrupt_structured(path, fmt, doc, kind, rng)
    return _corrupt_raw(path, data, kind, rng)


def _corrupt_structured(path: Path, fmt: str, doc: Any, kind: str, rng: random.Random) -> str:
    leaves = _leaves(doc)
    if fmt == "jsonl" and doc:  # one event of the journal
        leaves = [p for p in leaves if len(p) >= 2] or leaves
    if kind == "top-type" or not leaves:
        value = rng.choice(["a string", 42, [1, 2], None, True])
        text = json.dumps(value) if fmt != "yaml" else _dump("yaml", value)
        path.write_text(text)
        return f"{kind}: the whole document is {value!r}"
    where = rng.choice(leaves)
    if kind == "drop-key":
        keyed = [p for p in leaves if p and isinstance(p[-1], str)] or [where]
        where = rng.choice(keyed)
        _delete(doc, where)
        path.write_text(_dump(fmt, doc))
        return f"{kind}: removed {_show(where)}"
    if kind == "extra-key":
        dicts = [p for p in [()] + leaves if isinstance(_get(doc, p), dict)]
        where = rng.choice(dicts) if dicts else ()
        target = _get(doc, where)
        if isinstance(target, dict):
            target["zz_unknown"] = rng.choice(WRONG_VALUES[:6])
        path.write_text(_dump(fmt, doc))
        return f"{kind}: added zz_unknown under {_show(where)}"
    if kind == "deep-value":
        depth = rng.choice([60, 300, 900, 3000, 100000])
        _set(doc, where, DEEP)
        text = _dump(fmt, doc)
        deep = _deep(depth, "json-list" if fmt != "yaml" else "yaml-flow")
        text = text.replace(json.dumps(DEEP) if fmt != "yaml" else '"\\0deep\\0"', deep, 1)
        path.write_text(text)
        return f"{kind}: {_show(where)} is a list nested {depth} deep"
    done = []
    for where in rng.sample(leaves, min(len(leaves), rng.choice([1, 2, 3]))):  # a few fields at once
        try:
            parent = _get(doc, where[:-1])
            parent[where[-1]]
        except (KeyError, IndexError, TypeError):
            continue  # inside a value already replaced
        if not isinstance(parent, (dict, list)):
            continue
        value = rng.choice(WRONG_VALUES)
        _set(doc, where, value)
        done.append(f"{_show(where)} = {_short(value)}")
    try:
        text = _dump(fmt, doc)
    except (TypeError, ValueError):  # yaml cannot write NaN in a key... write the values as text
        text = _dump(fmt, json.loads(json.dumps(doc, default=str)))
    path.write_text(text)
    return f"{kind}: {', '.join(done)}"


def _get(doc: Any, path: Tuple) -> Any:
    for key in path:
        doc = doc[key]
    return doc


def _show(where: Tuple) -> str:
    return "$" + "".join(f"[{k!r}]" for k in where)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _corrupt_raw(path: Path, data: bytes, kind: str, rng: random.Random) -> str:
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncate":
        path.write_bytes(data[: rng.randrange(max(1, len(data)))])
    elif kind == "garbage":
        path.write_bytes(bytes(rng.randrange(256) for _ in range(rng.choice([1, 64, 4096]))))
    elif kind == "bad-utf8":
        at = rng.randrange(len(data) + 1)
        path.write_bytes(data[:at] + rng.choice([b"\xff\xfe", b"\xc3", b"\xed\xa0\x80", b"\x80"]) + data[at:])
    elif kind == "nul":
        at = rng.randrange(len(data) + 1)
        path.write_bytes(data[:at] + b"\x00" * rng.choice([1, 100]) + data[at:])
    elif kind == "deep-document":
        depth = rng.choice([60, 900, 3000, 100000])
        style = rng.choice(["json-list", "json-object", "yaml-block", "yaml-flow"])
        if style == "yaml-block":
            text = "".join("  " * i + "- \n" if i < depth - 1 else "  " * i + "- x\n" for i in range(min(depth, 3000)))
        else:
            text = _deep(depth, style)
        path.write_text(text)
        kind = f"{kind} ({style}, {depth})"
    elif kind == "huge":
        path.write_bytes(data + b"x" * (9 * 1024 * 1024))
    elif kind == "fifo":  # opening it for reading (or writing) would wait for the other end forever
        path.unlink()
        os.mkfifo(path)
    elif kind == "folder":
        path.unlink()
        path.mkdir()
        (path / "inside").write_text("x")
    elif kind == "symlink":
        path.unlink()
        path.symlink_to(rng.choice(["/etc/passwd", "/dev/null", "/nonexistent/file", "/proc/self/status"]))
        kind = f"{kind} to {os.readlink(path)}"
    elif kind == "long-line":
        at = rng.randrange(len(data) + 1)
        path.write_bytes(data[:at] + b"y" * (2 * 1024 * 1024) + data[at:])
    elif kind == "escapes":
        at = rng.randrange(len(data) + 1)
        path.write_bytes(data[:at] + b"\x1b[2J\x1b]0;pwned\x07\r\x08" + data[at:])
    return kind


def owner(world: World, path: Path) -> Optional[str]:
    """The repo a file belongs to (by its path), or None for the home's and the user's files."""
    for name, repo in world.repos.items():
        if str(path).startswith(str(repo) + "/"):
            return name
    return None


def stops_everything(world: World, path: Path) -> bool:
    """Files whose corruption rightly stops every command (the controller's own settings)."""
    return path == world.home / "config.yaml"


#: A traceback, or a Python exception a catch-all turned into a line ("error in <repo>: TypeError: ..."):
#: either way a reader met a file it did not check, and the user gets no line naming the file.
TRACEBACK = re.compile(r"Traceback \(most recent call last\)|^\w+(Error|Exception): |\b(Type|Value|Key|Attribute|Index|"
                       r"Recursion|Overflow|UnicodeDecode|ZeroDivision|OS|Assertion|Name|FileNotFound|IsADirectory|"
                       r"NotADirectory|Permission|JSONDecode|YAML)Error: ", re.M)

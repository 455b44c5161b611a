#!/usr/bin/env python3
"""Soak: many ticks over a large backlog of script-family stages with random worker outcomes.

Usage: python3 bench/soak.py [--ticks 1000] [--stages 50] [--seed N] [--base DIR]

Ticks run in this process (as a long-lived host would), agents are awaited
between ticks. At the end: every stage is terminal or still queued, the
counters every transition bumps agree, each completed stage has exactly one
commit, the tick's memory (RSS and Python heap) stayed flat, and tick logs
older than ``log_retention_days`` were pruned. Prints one summary line;
exits 1 (with the seed) on any failure. tests/reliability/test_soak.py runs
a short version.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any, Dict, List

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from autometta import files, yamlsub
from autometta.books import state  # noqa: E402
from autometta.tick import loop as tick  # noqa: E402
from autometta.commands.add_stage import add_stage  # noqa: E402
from autometta.commands.init_host import init_host  # noqa: E402
from autometta.commands.subscribe import subscribe  # noqa: E402
from autometta.paths import HomePaths, RepoPaths  # noqa: E402
from autometta.agents.roles import ROLES  # noqa: E402

CHECKER = "Script Checker <script-checker@local>"
WORKER = "Script Worker <script-worker@local>"

#: outcome -> worker command (``{id}`` replaced); none of them leaves the tree dirty without a PASS
OUTCOMES = {
    "pass": ("mkdir -p out && printf '{id}\\n' > out/{id}.txt && printf '%s' "
             "'{{\"stage_id\":\"{id}\",\"status\":\"pass\",\"deliverables\":[\"out/{id}.txt\"],\"notes\":\"ok\"}}' "
             "> \"$AUTOMETTA_HANDOFF\""),
    "fail": ("printf '%s' '{{\"stage_id\":\"{id}\",\"status\":\"fail\",\"deliverables\":[],\"notes\":\"no\"}}' "
             "> \"$AUTOMETTA_HANDOFF\""),
    "no-envelope": "true",
    "invalid": "printf 'nope' > \"$AUTOMETTA_HANDOFF\"",
    "crash": "exit 7",
}
EXPECTED = {"pass": "completed", "fail": "failed", "no-envelope": "stalled", "invalid": "stalled",
            "crash": "stalled"}


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def _verdict(stage_id: str) -> str:
    doc = {"stage_id": stage_id, "verifier_identity": CHECKER, "verifier_invocation": "sh",
           "ran_at": "2026-11-26T00:00:00Z",
           "criteria": [{"id": 1, "name": "out", "verdict": "PASS", "evidence": f"out/{stage_id}.txt:1"}],
           "additional_findings": "", "overall": "PASS"}
    return f"printf '%s' '{json.dumps(doc)}' > \"$AUTOMETTA_ARTEFACT\""


def _card(repo: Path, stage_id: str, outcome: str) -> Path:
    lines = [f"# Stage card {stage_id}: Soak {outcome}", "", "## Metadata", f"- **Worker:** {WORKER}",
             f"- **Verifier:** {CHECKER}", "- **Pairing rationale:** deterministic soak stage",
             f"- **Worker command:** `{OUTCOMES[outcome].format(id=stage_id)}`",
             f"- **Verifier command:** `{_verdict(stage_id)}`", "", "## Deliverables", f"- `out/{stage_id}.txt`",
             "", "## Acceptance criteria", "1. The file exists.", "", "## Budget",
             "- Worker wall-clock: 1 minute", "- Verifier wall-clock: 1 minute", ""]
    card = repo / "docs" / "stages" / f"{stage_id}.md"
    card.parent.mkdir(parents=True, exist_ok=True)
    card.write_text("\n".join(lines))
    return card


def _rss_kb() -> int:
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
    except OSError:
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _await(repo: Path) -> None:
    doc = yamlsub.loads((repo / "state" / "state.yaml").read_text())
    for s in doc["stages"]:
        for role in ROLES:
            if s.get(f"{role}_pid"):
                try:
                    os.waitpid(int(s[f"{role}_pid"]), 0)
                except ChildProcessError:
                    pass


def soak(base: Path, *, ticks: int, stages: int, seed: int) -> Dict[str, Any]:
    """Run the soak in ``base``; return a summary with ``problems`` (empty when all held)."""
    rng = random.Random(seed)
    os.environ["PHAT_CONTROLLER_HOME"] = str(base / "home")
    hp = HomePaths(base / "home")
    os.environ["PHAT_CONTROLLER_HOME"] = str(hp.root)  # the books of the repos made here go there too
    init_host(hp, say=lambda _l: None)
    config_path = hp.root / "config.yaml"
    config = yamlsub.loads(config_path.read_text())
    config["log_retention_days"] = 3
    files.atomic_write(config_path, yamlsub.dumps(config))
    expired = []
    for days_ago in (1, 2, 5, 40):  # older logs a long-running host would have
        stamp = time.strftime("%Y-%m-%d", time.localtime(time.time() - days_ago * 86400))
        (hp.log_dir / f"tick-{stamp}.log").write_text("old\n")
        if days_ago > 3:
            expired.append(f"tick-{stamp}.log")
    repo = base / "repo"
    repo.mkdir()
    for args in (("init", "-q"), ("config", "user.name", "soak"), ("config", "user.email", "soak@localhost")):
        _git(repo, *args)
    subscribe(hp, str(repo), say=lambda _l: None)
    planned: Dict[str, str] = {}
    for i in range(stages):
        stage_id = f"{i % 100:02d}-soak-{i}"
        planned[stage_id] = rng.choice(list(OUTCOMES))
        _card(repo, stage_id, planned[stage_id])
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "soak cards")
    paths = RepoPaths(repo)
    for stage_id in planned:
        add_stage(str(repo), str(repo / "docs" / "stages" / f"{stage_id}.md"), warn=lambda _l: None)
    budget = files.read_json(paths.budget)
    budget.update(clock_tick_cap=10 * ticks, consecutive_failure_cap=10 * ticks, wall_clock_cap_seconds=10 ** 7)
    files.write_json(paths.budget, budget, mode=0o600)
    head = _git(repo, "rev-parse", "HEAD").strip()

    tracemalloc.start()
    samples = []
    for n in range(ticks):
        tick.run_tick(hp, echo=False)
        _await(repo)
        if n in (ticks // 4, ticks - 1):  # after the warm-up (caches, first imports)
            samples.append((_rss_kb(), tracemalloc.get_traced_memory()[0]))
    tracemalloc.stop()

    problems: List[str] = []
    doc = state.load_state(paths)
    b = files.read_json(paths.budget)
    ids = state.stage_ids(doc)
    if sorted(ids) != sorted(planned):
        problems.append(f"stages lost or duplicated: {len(ids)} in state, {len(planned)} queued")
    if b["clock_ticks_used"] != doc["tick_count"]:
        problems.append(f"counters disagree: clock_ticks_used {b['clock_ticks_used']} tick_count {doc['tick_count']}")
    done = 0
    for s in doc["stages"]:
        want = EXPECTED[planned[s["id"]]]
        if s["status"] not in ("pending", "in_progress", want):
            problems.append(f"{s['id']} ({planned[s['id']]}) ended {s['status']} ({s.get('stall_marker')}), "
                            f"expected {want}")
        done += s["status"] == want
    subjects = _git(repo, "log", "--format=%s", f"{head}..HEAD").splitlines()
    completed = [s["id"] for s in doc["stages"] if s["status"] == "completed"]
    for stage_id in completed:
        if sum(1 for line in subjects if line.startswith(f"{stage_id}:")) != 1:
            problems.append(f"{stage_id} completed but has not exactly one commit")
    if len(samples) == 2:
        (rss0, heap0), (rss1, heap1) = samples
        if heap1 - heap0 > 2 * 1024 * 1024 or rss1 - rss0 > 20 * 1024:
            problems.append(f"memory grew: heap {heap0} -> {heap1} bytes, rss {rss0} -> {rss1} kB")
    logs = sorted(p.name for p in hp.log_dir.glob("tick-*.log"))
    if any(name in logs for name in expired) or len(logs) < 3:  # the ticks prune (log_retention_days: 3)
        problems.append(f"log pruning: expected {expired} gone, found {logs}")
    return {"ticks": ticks, "stages": stages, "seed": seed, "settled": done, "memory": samples,
            "problems": problems}


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=1000)
    parser.add_argument("--stages", type=int, default=50)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--base", default=None, help="work folder (default: a temporary one, removed)")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    with tempfile.TemporaryDirectory(prefix="autometta-soak-") as tmp:
        base = Path(args.base or tmp)
        base.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        result = soak(base, ticks=args.ticks, stages=args.stages, seed=seed)
    took = time.monotonic() - started
    status = "PASS" if not result["problems"] else "FAIL"
    print(f"soak {status}: {result['ticks']} ticks, {result['stages']} stages, {result['settled']} settled as "
          f"planned, memory {result['memory']}, {took:.1f}s, seed {seed}")
    for problem in result["problems"]:
        print(f"  {problem} (reproduce: python3 bench/soak.py --ticks {args.ticks} --stages {args.stages} "
              f"--seed {seed})")
    return 0 if status == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

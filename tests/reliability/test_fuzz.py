"""Every command survives every file: seeded corruptions of each file autometta reads, fed to
every read-only command and to the tick, as a user runs them (``python -m autometta``).

Each command must exit 0, 1 or 2, print no traceback (nor a Python exception turned into a
line) and never hang; ``status --json``, ``ticker --json``, ``report --json`` and
``dashboard --json`` show every repo whose subscriber file is intact, its own files broken or
not; the tick never replaces a valid ``state.yaml`` or ``budget.json`` with a bad one, and
no runner it started is still running a minute later (the world's agents end at once).

The world (:mod:`tests.testing.fuzz_world`) is built once with real ticks. A round breaks
every file once, in seeded ways and in small groups: ``config.yaml`` alone, each file that
hides a repo (its subscriber file, ``state.yaml``, ``budget.json``) with seven files of the
other repo or the home, the rest twelve at a time. CI runs one round; ``AUTOMETTA_RELIABILITY_REPEAT=N``
(bench/faults.py) runs N with other seeds, and ``AUTOMETTA_FUZZ_SEED`` replays one.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest

from tests.testing import fuzz_world
from tests.testing.tick_processes import repeats

#: Files broken at once: a group of ordinary files, and the riders of a gate file (see groups()).
GROUP = 12
RIDERS = 7
#: The first round's seed. On the main this test came with (e704fb4), this round made ``report``
#: crash as issue 15 saw it, "TypeError: bad operand type for abs(): 'str'" (budget.json's
#: tokens_spent a string); each of the 8 rounds from 20261126 failed there (report's RecursionError
#: on a deep list, dashboard's OverflowError on inf, report hanging on a FIFO, tick --repair's
#: UnicodeDecodeError on the bash lock's pid...). With the world as it is now, on the main the
#: ledger landed on (b37cae0) this round makes ``report`` crash with the RecursionError issue 15
#: saw (budget.json's clock_tick_cap a list nested 3000 deep); on the main before the ledger, with
#: the world of then (2aa4ba2), it failed twice: the tick's AttributeError on a books entry of the
#: wrong type, and a tick hung on a FIFO at an agent's log. CI runs this round; bench/faults.py
#: runs more.
BASE_SEED = int(os.environ.get("AUTOMETTA_FUZZ_SEED") or 20261131)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    w = fuzz_world.build_world(tmp_path_factory.mktemp("fuzz") / "world")
    yield w
    fuzz_world.await_runners(w.root)
    w.close()


def read_only_commands(w: fuzz_world.World) -> List[Tuple[str, ...]]:
    """Every command that only reads (heartbeat and dashboard also write their own output), each
    output form once (text, JSON), the two repos taking turns."""
    alpha, beta = (str(w.repos[n]) for n in ("alpha", "beta"))
    cards = sorted(str(p) for p in (w.repos["alpha"] / "docs" / "stages").glob("*.md"))
    return [
        ("status",), ("status", "--json"), ("status", "--watch", "--once"),
        ("report",), ("report", "--json", "--since", "30d"), ("dashboard", "--json"),
        ("list-cards", alpha), ("list-cards", "--json", beta), ("heartbeat", "--json"),
        ("ticker", "--once"), ("ticker", "--json"), ("log", "-n", "5"), ("check-deps",),
        ("auth", "status", "--repo", alpha), ("auth", "status", "--json", "--repo", beta),
        ("attach", "--dry-run", alpha), ("lint-card", "--repo", alpha, *cards), ("tick", "--repair", "--dry-run"),
        ("tick", "--dry-run"), ("tick", "--dry-run", "--json", "--repo", beta),
        ("show", alpha, "03-inflight"), ("show", "--json", beta, "01-judged"),
        ("events",), ("events", "--json", "--undelivered", "--since", "30d"), ("scan-secrets", "--json", beta),
    ]


def gates(w: fuzz_world.World) -> Dict[Path, Optional[str]]:
    """Files whose corruption rightly hides others: config.yaml (everything), and per repo its
    subscriber file, state.yaml and budget.json -> the repo they hide (None: all)."""
    out: Dict[Path, Optional[str]] = {w.home / "config.yaml": None}
    for name, repo in w.repos.items():
        out[w.home / "subscribers" / f"{name}.yaml"] = name
        out[repo / "state" / "state.yaml"] = name
        out[repo / "state" / "budget.json"] = name
    return out


def groups(files: List[Path], w: fuzz_world.World, rng: random.Random) -> List[List[Path]]:
    """One round: every file broken once. config.yaml alone; each other gate file with a few files
    of the repos it does not hide; the rest in groups of GROUP."""
    hides = gates(w)
    leaves = [f for f in files if f not in hides]
    rng.shuffle(leaves)
    out: List[List[Path]] = []
    for gate, hidden in sorted(hides.items(), key=lambda kv: str(kv[0])):
        if gate not in files:
            continue
        group = [gate]
        if hidden is not None:
            for leaf in [f for f in leaves if fuzz_world.owner(w, f) != hidden][:RIDERS]:
                leaves.remove(leaf)
                group.append(leaf)
        out.append(group)
    out += [leaves[i:i + GROUP] for i in range(0, len(leaves), GROUP)]
    rng.shuffle(out)
    return out


def _ok(res, what: str) -> None:
    assert res.returncode in (0, 1, 2), f"{what}: exit {res.returncode}\n{res.stderr[-3000:]}"
    assert not fuzz_world.TRACEBACK.search(res.stderr), f"{what}: a traceback\n{res.stderr[-5000:]}"
    if res.returncode:
        assert (res.stderr + res.stdout).strip(), f"{what}: exit {res.returncode} and nothing said why"


def _valid(path: Path, loader) -> bool:
    try:
        loader(path)
        return True
    except Exception:
        return False


def _check_case(w: fuzz_world.World, broken: List[Path], said: List[str]) -> None:
    from autometta.books import budget, state
    from autometta.paths import RepoPaths

    what = "; ".join(f"{p.relative_to(w.root)}: {s}" for p, s in zip(broken, said))
    hides = gates(w)
    if any(p in hides and hides[p] is None for p in broken):
        shown = []  # config.yaml: nothing can be shown
    else:  # a repo with a readable subscriber file is shown, even if its own files are broken
        shown = [n for n in w.repos if w.home / "subscribers" / f"{n}.yaml" not in broken]
    commands = read_only_commands(w)
    runs = w.cli_all(commands)
    for cmd, res in zip(commands, runs):
        label = f"autometta {' '.join(cmd)} with {what}"
        if isinstance(res, AssertionError):  # it hung
            raise AssertionError(f"{res}, with {what}")
        _ok(res, label)
        if cmd[-1] == "--json" and cmd[0] in ("status", "ticker", "dashboard") or cmd[:2] == ("report", "--json"):
            if res.stdout.strip() or shown:
                try:
                    json.loads(res.stdout)  # the JSON is whole
                except ValueError:
                    raise AssertionError(f"{label}: exit {res.returncode}, not JSON:\n{res.stdout[:1000]}"
                                         f"\n{res.stderr[-1000:]}") from None
                for name in shown:  # one repo's broken file hides no other repo
                    assert str(w.repos[name]) in res.stdout, f"{label}: {name} is not shown\n{res.stdout[:2000]}"
        elif "--json" in cmd and res.returncode == 0:
            try:
                json.loads(res.stdout)
            except ValueError:
                raise AssertionError(f"{label}: exit 0, not JSON:\n{res.stdout[:1000]}") from None
    before = {}
    for name, repo in w.repos.items():
        for path in (repo / "state" / "state.yaml", repo / "state" / "budget.json"):
            before[path] = path.read_bytes() if path.is_file() and not path.is_symlink() else None
    try:
        res = w.cli("tick")
    except AssertionError as exc:
        raise AssertionError(f"{exc}, with {what}") from None
    _ok(res, f"autometta tick with {what}")
    hung = fuzz_world.await_runners(w.root)
    assert not hung, f"a runner the tick started still runs after 60 s with {what}: {hung}"
    for name, repo in w.repos.items():
        paths = RepoPaths(repo)
        for path, loader in ((paths.state_yaml, lambda p: state.parse_state(p.read_text(), str(p))),
                             (paths.budget, lambda p: budget.parse_budget(p.read_text(), str(p)))):
            if path.is_file() and not path.is_symlink() and not _valid(path, loader):
                assert path.read_bytes() == before[path], f"tick wrote a bad {path} with {what}:\n{path.read_text()[:2000]}"


@pytest.mark.parametrize("round_", range(repeats(1)))
def test_every_command_survives_every_file(world, round_):
    seed = BASE_SEED + round_
    rng = random.Random(seed)
    files = [f for f in world.readable_files()]
    for group in groups(files, world, rng):
        world.restore()
        said = [fuzz_world.corrupt(path, rng) for path in group]
        try:
            _check_case(world, group, said)
        except AssertionError as exc:
            raise AssertionError(f"seed {seed} (AUTOMETTA_FUZZ_SEED={BASE_SEED}, round {round_}): {exc}") from None
    world.restore()

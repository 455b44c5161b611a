"""A short soak (bench/soak.py runs 1,000 ticks) and the pruning of old controller logs."""

from __future__ import annotations

import importlib.util
import os
import time

from autometta import logretention
from autometta.paths import HomePaths
from tests.testing.env import ROOT


def _soak_module():
    spec = importlib.util.spec_from_file_location("bench_soak", ROOT / "bench" / "soak.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_short_soak_ends_consistent(tmp_path):
    seed = int(os.environ.get("AUTOMETTA_SOAK_SEED", "20261126"))
    result = _soak_module().soak(tmp_path, ticks=40, stages=12, seed=seed)
    assert result["problems"] == [], f"seed {seed}: {result['problems']}"
    assert result["settled"] > 0


def test_old_tick_logs_are_pruned_after_the_configured_days(tmp_path):
    hp = HomePaths(tmp_path / "home")
    hp.log_dir.mkdir(parents=True)
    now = time.mktime((2026, 11, 26, 12, 0, 0, 0, 0, -1))
    names = {}
    for days in (0, 1, 29, 30, 31, 45):
        name = f"tick-{time.strftime('%Y-%m-%d', time.localtime(now - days * 86400))}.log"
        (hp.log_dir / name).write_text("x\n")
        names[days] = name
    (hp.log_dir / "cron.log").write_text("kept\n")
    (hp.log_dir / "tick-notes.log").write_text("kept\n")
    removed = logretention.prune_logs(hp, {}, now=now)  # default: 30 days
    assert sorted(p.name for p in removed) == sorted([names[31], names[45]])
    left = sorted(p.name for p in hp.log_dir.iterdir())
    assert left == sorted([names[0], names[1], names[29], names[30], "cron.log", "tick-notes.log"])
    removed = logretention.prune_logs(hp, {"log_retention_days": 1}, now=now)
    assert sorted(p.name for p in removed) == sorted([names[29], names[30]])
    assert logretention.retention_days({"log_retention_days": "7"}) == 30  # a wrong type falls back

"""Old tick logs are pruned by the day in their name; nothing else in log/ is touched."""

from __future__ import annotations

import os
import time

from autometta import logretention
from autometta.paths import HomePaths


def test_tick_logs_older_than_the_retention_are_pruned_and_nothing_else(tmp_path):
    hp = HomePaths(tmp_path)
    hp.log_dir.mkdir()
    now = time.mktime((2026, 12, 4, 12, 0, 0, 0, 0, -1))
    names = ["tick-2026-11-03.log", "tick-2026-11-04.log", "tick-2026-12-04.log", "tick-2026-1-01.log",
             "tick-2020-01-01.log.bak", "xtick-2020-01-01.log", "cron.log", ".last-tick"]
    for name in names:
        (hp.log_dir / name).write_text("x\n")
    (hp.log_dir / "tick-2020-01-02.log").mkdir()  # not a file
    os.symlink(hp.log_dir / "cron.log", hp.log_dir / "tick-2020-01-03.log")
    removed = logretention.prune_logs(hp, {"log_retention_days": 30}, now=now)
    assert [p.name for p in removed] == ["tick-2026-11-03.log"]
    assert sorted(p.name for p in hp.log_dir.iterdir()) == sorted(
        set(names) - {"tick-2026-11-03.log"} | {"tick-2020-01-02.log", "tick-2020-01-03.log"})


def test_crash_logs_older_than_the_retention_are_pruned_too(tmp_path):
    """A bug that crashes every tick leaves a crash log each time: they go with the old days, as tick logs do."""
    hp = HomePaths(tmp_path)
    hp.log_dir.mkdir()
    now = time.mktime((2026, 12, 4, 12, 0, 0, 0, 0, -1))
    old = ["crash-20261101T101010Z.log", "crash-20261101T101010Z-2.log"]
    kept = ["crash-20261203T235959Z.log", "crash-2026110T101010Z.log", "crash-20261101T101010Z-x.log",
            "crash-20261101X101010Z.log", "crash-20261101T101010Z.log.txt", "crash-.log"]
    for name in old + kept:
        (hp.log_dir / name).write_text("Traceback\n")
    removed = logretention.prune_logs(hp, {"log_retention_days": 30}, now=now)
    assert sorted(p.name for p in removed) == sorted(old)
    assert sorted(p.name for p in hp.log_dir.iterdir()) == sorted(kept)

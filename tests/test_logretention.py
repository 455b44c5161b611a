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

from __future__ import annotations

import pytest

from tests.conftest import make_repo
from tests.tickkit import commit_all, script_card


@pytest.fixture
def setup(run, tmp_path, home_dir):
    """(repo, home, add): a subscribed repo; ``add(id, ...)`` writes, commits and queues a script card."""
    repo = make_repo(tmp_path / "proj")
    assert run("init-host").code == 0
    assert run("subscribe", str(repo)).code == 0
    commit_all(repo, "subscribe")

    def add(stage_id, *args, **kw):
        card = script_card(repo, stage_id, *args, **kw)
        commit_all(repo, f"card {stage_id}")
        res = run("add-stage", str(repo), str(card))
        assert res.code == 0, res.err
        return card

    return repo, home_dir, add

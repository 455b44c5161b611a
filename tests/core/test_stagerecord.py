"""A stage's fields by name (autometta.stagerecord): over the mapping state.yaml holds, adding no key."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from autometta import yamlsub
from autometta.stagerecord import Count, Field, StageRecord
from tests.testing.env import ROOT

BASH_STAGE = """\
version: 1
current_stage: 01-a
stages:
  - id: 01-a
    status: in_progress
    worker: Claude Sonnet <claude@local>
    verifier: Codex GPT-5 <codex@local>
    started_at: 2026-01-01T00:00:00Z
    worker_pid: 4242
    verifier_attempts: 2
"""


def _fields():
    return {name: value for name, value in vars(StageRecord).items() if isinstance(value, Field)}


def test_every_field_is_a_key_of_the_state_schema():
    stage_keys = set(json.loads((ROOT / "schemas" / "state.json").read_text())
                     ["properties"]["stages"]["items"]["properties"])
    assert {f.key for f in _fields().values()} - stage_keys == set()


@pytest.mark.parametrize("name, expected", [
    ("id", "01-a"), ("status", "in_progress"), ("worker_pid", 4242), ("verifier_attempts", 2),
    ("started_at", "2026-01-01T00:00:00Z"), ("worktree", None), ("merge", None), ("loops", 0), ("tokens", 0),
    ("worker_exit", None),
])
def test_a_field_reads_as_the_mapping_does_and_a_count_as_zero_when_absent(name, expected):
    doc = yamlsub.loads(BASH_STAGE)["stages"][0]
    assert getattr(StageRecord(doc), name) == expected


def test_reading_and_writing_leave_the_file_as_it_was_but_what_was_set():
    doc = yamlsub.loads(BASH_STAGE)
    rec = StageRecord(doc["stages"][0])
    for name in _fields():
        getattr(rec, name)  # reading adds no key
    for role in ("worker", "verifier", "acceptance", "setup", "postmerge"):
        rec.pid(role), rec.started(role), rec.run_id(role)
    assert yamlsub.dumps(doc) == yamlsub.dumps(yamlsub.loads(BASH_STAGE))
    rec.verifier_pid = 77
    del rec.worker_pid
    del rec.worktree  # absent already: nothing to remove
    assert "worker_pid" not in doc["stages"][0] and doc["stages"][0]["verifier_pid"] == 77
    assert rec.pid("verifier") == 77 and rec.pid("worker") is None


@pytest.mark.parametrize("doc, reaped", [
    ({}, False), ({"worker_pid": 1}, False), ({"worker_tree": "abc"}, True), ({"worker_exit": 0}, True),
    ({"worker_exit": None}, False), ({"verifier_pid": 9}, True), ({"verifier_attempts": 1}, True),
    ({"acceptance": "passed"}, True),
])
def test_reaped_means_the_worker_was_reaped_or_a_verifier_already_ran(doc, reaped):
    assert StageRecord(doc).reaped() is reaped


def test_a_new_field_is_one_line():
    class Extended(StageRecord):
        __slots__ = ()
        worker_session = Field()
        resumes = Count()

    rec = Extended({"worker_session": "s-1"})
    assert (rec.worker_session, rec.resumes) == ("s-1", 0)
    rec.resumes = 1
    assert rec.doc == {"worker_session": "s-1", "resumes": 1}


def test_the_record_imports_no_typing_nor_dataclasses():
    code = "import sys, autometta.stagerecord; print('typing' in sys.modules, 'dataclasses' in sys.modules)"
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.parametrize("doc, ids", [
    (None, []), ({}, []), ({"stages": None}, []), ({"stages": [{"id": "01-a"}, "junk", None, {"id": "02-b"}]},
                                                   ["01-a", "02-b"]),
])
def test_records_are_the_stages_that_are_mappings(doc, ids):
    from autometta.stagerecord import records

    assert [r.id for r in records(doc)] == ids

"""``autometta retro-grade`` against a local fake Message Batches API.

The stages are completed by real ticks (script family); the batch is
submitted, polled (the waits are recorded, not slept) and collected from a
server on 127.0.0.1, and the report is the file a user reads.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import List

import pytest

from autometta import secrets
from autometta.verify import retro
from tests.testing.billing import isolate_billing
from tests.testing.repos import make_repo
from tests.testing.ticks import commit_all, git, read_budget, run_until_quiet, script_card, stage, tick_once
from tests.testing.fake_api import FAKE_ANTHROPIC_KEY, FakeAPI, Reply, anthropic_message, api_error, verdict_doc
from tests.testing.worlds import building, fresh, run_ok

BATCH = "msgbatch_01TEST"


@pytest.fixture(scope="module")
def _world(tmp_path_factory):
    """Three stages completed by real ticks, built once for the module (tests/testing/worlds.py)."""
    root = tmp_path_factory.mktemp("retro")
    with building(root) as monkeypatch:
        isolate_billing(monkeypatch, root)
        repo = make_repo(root / "proj")
        run_ok("init-host")
        run_ok("subscribe", str(repo))
        commit_all(repo, "subscribe")
        for stage_id in ("01-one", "02-two", "03-three"):
            card = script_card(repo, stage_id, title=f"Stage {stage_id}",
                               worker_cmd=f"printf '{stage_id}\\n' > {stage_id}.txt && printf '%s' "
                                          f"'{{\"stage_id\":\"{stage_id}\",\"status\":\"pass\",\"deliverables\":[],"
                                          f"\"notes\":\"ok\"}}' > \"$AUTOMETTA_HANDOFF\"")
            commit_all(repo, f"card {stage_id}")
            run_ok("add-stage", str(repo), str(card))
            run_until_quiet(repo=repo, home=root / "controller-home")
            assert stage(repo, stage_id)["status"] == "completed"
    secrets.forget()
    return root


@pytest.fixture
def world(_world, tmp_path, monkeypatch):
    """(repo, home): a fresh copy of the module's world, this test's own."""
    root = fresh(_world, monkeypatch)
    isolate_billing(monkeypatch, tmp_path)
    yield root / "proj", root / "controller-home"
    secrets.forget()


@pytest.fixture
def fake():
    server = FakeAPI()
    yield server
    server.close()


def frozen(repo: Path):
    return {name: (repo / "state" / name).read_bytes() for name in ("state.yaml", "budget.json")}


def result_line(stage_id: str, overall: str, **usage) -> str:
    message = anthropic_message(json.dumps(verdict_doc(stage_id, overall)), **usage)
    return json.dumps({"custom_id": stage_id, "result": {"type": "succeeded", "message": message}})


def digest(repo: Path) -> str:
    return hashlib.sha256(str(repo).encode()).hexdigest()[:8]


def test_dry_run_writes_the_payload_and_sends_nothing(run, world):
    repo, home = world
    before = frozen(repo)
    res = run("retro-grade", "--dry-run", "--last", "5", "--repo", str(repo))  # fewer than 5 completed is fine
    assert res.code == 0, res.err
    *rows, last = res.out.splitlines()
    assert [r.split()[:2] for r in rows] == [["01-one", "PASS"], ["02-two", "PASS"], ["03-three", "PASS"]]
    payload = Path(last.split(" written to ")[1].split(";")[0])
    assert last.startswith("dry run: 3 request(s) written to ") and last.endswith("; nothing sent")
    assert payload.parent == home / "reports" / f"proj-{digest(repo)}"  # the controller's, not the repo's
    requests = [json.loads(line) for line in payload.read_text().splitlines()]
    assert [r["custom_id"] for r in requests] == ["01-one", "02-two", "03-three"]
    params = requests[1]["params"]
    assert params["model"] == "claude-sonnet-4-6" and params["max_tokens"] == 8192
    static, target = params["messages"][0]["content"]
    assert static["cache_control"] == {"type": "ephemeral"} and "cache_control" not in target
    commit = stage(repo, "02-two")["commit"]
    assert f"## What the stage's commit {commit[:12]} changed (state/ excluded)" in target["text"]
    assert "+02-two" in target["text"] and "state/state.yaml" not in target["text"]
    assert "its verdict then was PASS" in target["text"]
    assert frozen(repo) == before and not (repo / "docs" / "retro-grade").exists()


def test_dry_run_json_and_last(run, world):
    repo, _ = world
    res = run("retro-grade", "--dry-run", "--last", "2", "--repo", str(repo), "--json", "--model", "claude-opus-4-8")
    doc = json.loads(res.out)
    assert doc["requests"] == 2 and doc["model"] == "claude-opus-4-8"
    assert [s["stage_id"] for s in doc["stages"]] == ["02-two", "03-three"]
    assert doc["stages"][0]["original_from"] == "state/verifiers/02-two.json"


def test_a_batch_run_writes_the_report(run, world, fake, monkeypatch):
    repo, home = world
    monkeypatch.setenv("AUTOMETTA_CLAUDE_MODE", "api")
    monkeypatch.setenv("OP_REF_ANTHROPIC_API_KEY", "env:TEST_ANTHROPIC_KEY")
    monkeypatch.setenv("TEST_ANTHROPIC_KEY", FAKE_ANTHROPIC_KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.base)
    waits: List[float] = []
    monkeypatch.setattr(retro, "sleep", waits.append)
    results_url = f"{fake.base}/v1/messages/batches/{BATCH}/results"
    fake.on("/v1/messages/batches", Reply(200, {"id": BATCH, "type": "message_batch",
                                                 "processing_status": "in_progress", "results_url": None}))
    fake.on(f"/v1/messages/batches/{BATCH}",
            Reply(200, {"id": BATCH, "processing_status": "in_progress"}),
            Reply(200, {"id": BATCH, "processing_status": "in_progress"}),
            Reply(200, {"id": BATCH, "processing_status": "ended", "results_url": results_url}))
    errored = json.dumps({"custom_id": "03-three", "result": {"type": "errored", "error": {
        "type": "error", "error": api_error("overloaded_error", "Overloaded")["error"]}}})
    fake.on(f"/v1/messages/batches/{BATCH}/results", Reply(200, "\n".join([
        result_line("01-one", "PASS", input_tokens=100, cache_write=2000, cache_read=0, output_tokens=50),
        result_line("02-two", "FAIL", input_tokens=120, cache_write=0, cache_read=2000, output_tokens=70),
        errored]) + "\n", {"content-type": "application/binary"}))
    before = frozen(repo)
    res = run("retro-grade", "--repo", str(repo))
    assert res.code == 0, res.err
    # submitted once, polled with backoff, results fetched with the same headers
    post, *gets = fake.seen
    assert (post.method, post.path) == ("POST", "/v1/messages/batches")
    assert post.headers["x-api-key"] == FAKE_ANTHROPIC_KEY and post.headers["anthropic-version"] == "2023-06-01"
    assert [r["custom_id"] for r in post.body["requests"]] == ["01-one", "02-two", "03-three"]
    assert [g.path for g in gets] == [f"/v1/messages/batches/{BATCH}"] * 3 + [f"/v1/messages/batches/{BATCH}/results"]
    assert all(g.headers["x-api-key"] == FAKE_ANTHROPIC_KEY for g in gets)
    assert waits == [15.0, 30.0]
    assert f"retro-grade: submitted batch {BATCH} (3 requests, model claude-sonnet-4-6)" in res.err
    # what the user sees
    lines = res.out.splitlines()
    assert [line.split() for line in lines[1:4]] == [["01-one", "PASS", "PASS", "yes"], ["02-two", "PASS", "FAIL", "NO"],
                                                    ["03-three", "PASS", "errored", "-"]]
    report = Path(lines[-1].split("report: ", 1)[1])
    assert report.parent == home / "reports" / f"proj-{digest(repo)}" and report.name.startswith("retro-grade-")
    text = report.read_text()
    assert text.startswith('---\ntitle: "Retro-grade ')
    assert f'batch_id: "{BATCH}"' in text and "drift_count: 1\n" in text and "stage_count: 3\n" in text
    assert "input_tokens: 220\n" in text and "output_tokens: 120\n" in text
    assert "cache_read_tokens: 2000\n" in text and "cache_write_tokens: 2000\n" in text
    assert "total_tokens: 2340\n" in text  # input + cache writes + output
    cost = ((220 * 3 + 2000 * 3.75 + 2000 * 0.30 + 120 * 15) / 1e6) / 2
    assert f"cost_usd: {cost:.6f}\n" in text
    assert "- Agreement: 1 agree, 1 disagree, 1 without a retro verdict" in text
    assert "| `02-two` | PASS | FAIL | failed: hello.txt says hello |" in text  # the disagreement and why
    assert "| `03-three` |" in text and "| PASS | errored | - |" in text and "overloaded_error Overloaded" in text
    assert frozen(repo) == before  # advisory: neither state nor budget changed
    assert git(repo, "status", "--porcelain", "--untracked-files=all", "--", ".", ":(exclude)state") == ""
    assert not (repo / "docs" / "retro-grade").exists()
    tick_once(home)  # so the next tick does not halt the repo for a dirty tree
    assert read_budget(repo)["halted"] is False


def test_a_batch_that_does_not_end_in_time_names_itself(run, world, fake, monkeypatch):
    repo, _ = world
    monkeypatch.setenv("AUTOMETTA_CLAUDE_MODE", "api")
    monkeypatch.setenv("OP_REF_ANTHROPIC_API_KEY", "env:TEST_ANTHROPIC_KEY")
    monkeypatch.setenv("TEST_ANTHROPIC_KEY", FAKE_ANTHROPIC_KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.base)
    clock = [0.0]
    waits: List[float] = []

    def wait(seconds: float) -> None:
        waits.append(seconds)
        clock[0] += seconds

    monkeypatch.setattr(retro, "sleep", wait)
    monkeypatch.setattr(retro, "monotonic", lambda: clock[0])
    fake.on("/v1/messages/batches", Reply(200, {"id": BATCH, "processing_status": "in_progress"}))
    fake.on(f"/v1/messages/batches/{BATCH}", Reply(200, {"id": BATCH, "processing_status": "in_progress"}))
    res = run("retro-grade", "--repo", str(repo), "--timeout-seconds", "1000")
    assert res.code == 1
    assert waits == [15.0, 30.0, 60.0, 120.0, 240.0, 300.0, 235.0]
    assert res.err.strip().splitlines()[-1] == (f"autometta retro-grade: batch {BATCH} has not ended after 1000s (status in_progress); "
                               f"collect it later with 'autometta retro-grade --batch-id {BATCH}'")
    assert not (repo / "docs" / "retro-grade").exists()
    # collecting it later: no new batch is submitted
    fake.on(f"/v1/messages/batches/{BATCH}", Reply(200, {"id": BATCH, "processing_status": "ended",
                                                         "results_url": f"{fake.base}/r/{BATCH}"}))
    fake.on(f"/r/{BATCH}", Reply(200, result_line("03-three", "PASS")))
    posts = sum(s.method == "POST" for s in fake.seen)
    res = run("retro-grade", "--repo", str(repo), "--batch-id", BATCH, "--last", "1")
    assert res.code == 0, res.err
    assert sum(s.method == "POST" for s in fake.seen) == posts
    assert res.out.splitlines()[1].split() == ["03-three", "PASS", "PASS", "yes"]


def test_without_the_api_route_it_fails_closed(run, world, fake, monkeypatch):
    repo, _ = world
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.base)
    res = run("retro-grade", "--repo", str(repo))
    assert res.code == 1 and fake.seen == []
    assert res.err.startswith("autometta retro-grade: retro-grade calls the Anthropic API: ANTHROPIC_API_KEY is not")


def test_http_errors_are_reported_not_retried(run, world, fake, monkeypatch):
    repo, _ = world
    monkeypatch.setenv("AUTOMETTA_CLAUDE_MODE", "api")
    monkeypatch.setenv("OP_REF_ANTHROPIC_API_KEY", "env:TEST_ANTHROPIC_KEY")
    monkeypatch.setenv("TEST_ANTHROPIC_KEY", FAKE_ANTHROPIC_KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.base)
    fake.on("/v1/messages/batches", Reply(429, api_error("rate_limit_error", "Number of batches too high"),
                                          {"retry-after": "60"}))
    res = run("retro-grade", "--repo", str(repo))
    assert res.code == 1 and len(fake.seen) == 1
    assert ("HTTP 429: rate_limit_error: Number of batches too high (retry-after 60s); not retried") in res.err


def test_results_elsewhere_do_not_get_the_key(run, world, fake, monkeypatch):
    repo, _ = world
    monkeypatch.setenv("AUTOMETTA_CLAUDE_MODE", "api")
    monkeypatch.setenv("OP_REF_ANTHROPIC_API_KEY", "env:TEST_ANTHROPIC_KEY")
    monkeypatch.setenv("TEST_ANTHROPIC_KEY", FAKE_ANTHROPIC_KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.base)
    fake.on("/v1/messages/batches", Reply(200, {"id": BATCH, "processing_status": "ended",
                                                 "results_url": "https://elsewhere.example/results"}))
    fake.on(f"/v1/messages/batches/{BATCH}", Reply(200, {"id": BATCH, "processing_status": "ended",
                                                         "results_url": "https://elsewhere.example/results"}))
    res = run("retro-grade", "--repo", str(repo))
    assert res.code == 1 and "is not on" in res.err and "not sending the key there" in res.err


def test_a_stage_whose_card_is_gone_is_listed_not_graded(run, world):
    repo, _ = world
    (repo / "docs" / "stages" / "02-two.md").unlink()
    res = run("retro-grade", "--dry-run", "--repo", str(repo))
    assert res.out.splitlines()[1] .split()[:2] == ["02-two", "PASS"] and "stage card not found" in res.out
    assert "dry run: 2 request(s)" in res.out

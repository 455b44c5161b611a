"""The agent's log as the runner writes it: masked line by line, streaming, with real processes.

The secret values reach the runner through an inherited pipe (never argv);
whatever the agent prints, or writes into its log file itself, is masked.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from autometta import secrets
from autometta.agents import spawn as launch_mod, liveness
from autometta.agents.spawn import LaunchSpec, launch, read_exit
from tests.testing.waits import wait_child, wait_for

VALUE = "hunter2-shapeless-runner-value"  # a resolved secret with no key shape
KEY = "sk-ant-" + "api03-" + "RUNNERtestKEY0123456789-wxyz"


@pytest.fixture(autouse=True)
def _fresh():
    secrets.forget()
    before = set(launch_mod._CHILDREN)
    yield
    secrets.forget()
    for proc in set(launch_mod._CHILDREN) - before:
        liveness.signal_group(proc.pid, signal.SIGKILL)


def spec_for(tmp_path: Path, script: str, **env: str) -> LaunchSpec:
    return LaunchSpec(argv=["/bin/sh", "-c", script], cwd=tmp_path,
                      env={"PATH": os.environ.get("PATH", os.defpath), "V": VALUE, "K": KEY, **env},
                      log_path=tmp_path / "agent.log", exit_path=tmp_path / "agent.exit.json")


def run(spec: LaunchSpec) -> str:
    launched = launch(spec)
    wait_child(launched.pid)
    assert read_exit(spec.exit_path)["exit_code"] == 0
    return spec.log_path.read_text()


def test_values_and_key_shapes_are_masked_and_json_lines_stay_json(tmp_path):
    secrets.register(VALUE)  # resolved by this process, as the tick resolves a route's key
    script = ("""printf '{"type":"assistant","message":{"content":[{"type":"text","text":"key %s"}]}}\\n' "$V"; """
              """printf '{"type":"user","tool_result":"ANTHROPIC_API_KEY=%s"}\\n' "$K"; """
              """echo "stderr $V" >&2; printf 'half %s' "$V" | head -c 15; printf '%s end\\n' "${V#hunter2-sh}"; """
              """printf 'no newline %s' "$V\"""")
    log = run(spec_for(tmp_path, script))
    assert VALUE not in log and KEY not in log and "hunter2-sh" not in log
    lines = log.splitlines()
    assert json.loads(lines[0])["message"]["content"][0]["text"] == "key ****alue"
    assert json.loads(lines[1])["tool_result"] == "ANTHROPIC_API_KEY=****wxyz"
    assert lines[2:] == ["stderr ****alue", "half ****alue end", "no newline ****alue"]


def test_the_values_travel_by_pipe_never_argv(tmp_path):
    fifo = tmp_path / "go"
    os.mkfifo(fifo)
    spec = spec_for(tmp_path, 'echo "started $V"; cat "$GO" >/dev/null; echo done', GO=str(fifo))
    spec.secret_values = [VALUE]
    launched = launch(spec)
    try:
        wait_for(lambda: "started" in spec.log_path.read_text())
        if os.path.exists(f"/proc/{launched.pid}/cmdline"):
            argv = Path(f"/proc/{launched.pid}/cmdline").read_bytes().split(b"\0")
            assert b"--secrets-fd" in argv and not any(VALUE.encode() in a for a in argv)
    finally:
        with open(fifo, "w"):
            pass
    wait_child(launched.pid)
    assert spec.log_path.read_text() == "started ****alue\ndone\n"


def test_what_the_agent_writes_into_its_log_itself_is_masked_once_it_is_done(tmp_path):
    secrets.register(VALUE)
    log = run(spec_for(tmp_path, 'echo printed; echo "direct $V and $K" >> agent.log; echo after'))
    assert VALUE not in log and KEY not in log
    assert "direct ****alue and ****wxyz" in log and "printed" in log and "after" in log


def test_a_log_the_agent_swapped_for_a_link_is_not_followed(tmp_path):
    secrets.register(VALUE)
    target = tmp_path / "precious.txt"
    target.write_text(f"mine: {VALUE}\n")
    run(spec_for(tmp_path, f"rm agent.log; ln -s '{target}' agent.log"))
    assert target.read_text() == f"mine: {VALUE}\n"  # not ours to rewrite


def test_a_process_that_left_the_group_holding_the_output_delays_the_record_briefly(tmp_path):
    start = time.monotonic()
    log = run(spec_for(tmp_path, "echo hi; setsid sh -c 'echo $$ > escaped.pid; exec sleep 30' & "
                                 "while [ ! -s escaped.pid ]; do :; done; echo bye"))
    escaped = int((tmp_path / "escaped.pid").read_text())
    try:
        assert time.monotonic() - start < 10
        assert log.startswith("hi\n") and "bye\n" in log
        # it carried the run's mark: the runner stopped it before the record (autometta.agents.processes)
        assert f"the agent left running: {escaped}" in log and not liveness.is_alive(escaped)
    finally:
        try:
            os.kill(escaped, signal.SIGKILL)
        except ProcessLookupError:
            pass

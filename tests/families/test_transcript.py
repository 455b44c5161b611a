"""What an agent did, read from its log: the transcript readers of autometta.families.transcript.

Table-driven over the CLIs' measured samples (tests/data/cli/) and events
shaped like them; ``autometta show`` and the ticker's last-activity line read
logs through these.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autometta import families
from autometta.families.transcript import Step, claude_transcript, codex_transcript, phrase, unwrap_shell
from autometta.observe.activity import describe_event

DATA = Path(__file__).resolve().parents[1] / "data" / "cli"


def _lines(*events) -> str:
    return "\n".join(json.dumps(e) for e in events) + "\n"


def _tool(block_id, name, **inputs):
    return {"type": "assistant", "message": {"id": f"m-{block_id}", "content": [
        {"type": "tool_use", "id": block_id, "name": name, "input": inputs}]}}


def _result(block_id, content, is_error=False, detail=None):
    event = {"type": "user", "message": {"content": [
        {"type": "tool_result", "tool_use_id": block_id, "content": content, "is_error": is_error}]}}
    if detail is not None:
        event["tool_use_result"] = detail
    return event


def _item(kind, item):
    return {"type": kind, "item": item}


# -- reading the CLIs' logs ------------------------------------------------------------

CLAUDE_CASES = [
    # (what, log, roots, [(phrase), ...])
    ("the measured stream-json sample", (DATA / "claude-stream.jsonl").read_text(), ["/tmp/e2e/myrepo"],
     ["Write hello.txt", "$ printf 'from Bash\\n' > bash.txt  -> exit 0", "says: done"]),
    ("a failed command: its exit and first line of output",
     _lines(_tool("t1", "Bash", command="ls nope"), _result("t1", "Exit code 2\nls: cannot access 'nope'", True)),
     [], ["$ ls nope  -> exit 2: ls: cannot access 'nope'"]),
    ("a non-zero exit claude reads as an answer",
     _lines(_tool("t1", "Bash", command="test -e x"), _result("t1", "", False, {"returnCodeInterpretation":
                                                                                "Condition is false"})),
     [], ["$ test -e x  -> Condition is false"]),
    ("reads, edits and searches with their targets, outside the roots as they are",
     _lines(_tool("a", "Read", file_path="/r/src/a.py"), _tool("b", "Edit", file_path="/r/src/a.py"),
            _tool("c", "Grep", pattern="TODO", path="/r/src"), _tool("d", "Read", file_path="/etc/hosts"),
            _result("a", "1 x"), _result("b", "Error: no match", True)),
     ["/r"], ["Read src/a.py", "Edit src/a.py  -> failed: Error: no match", "Grep TODO in src  -> no result",
              "Read /etc/hosts  -> no result"]),
    ("a tool call logged twice counts once; a run cut short has no result",
     _lines(_tool("t1", "Write", file_path="/r/a"), _tool("t1", "Write", file_path="/r/a")), ["/r"],
     ["Write a  -> no result"]),
    ("an error result", _lines({"type": "result", "is_error": True, "result": "Invalid API key"}), [],
     ["error: Invalid API key"]),
]


@pytest.mark.parametrize("what,log,roots,expected", CLAUDE_CASES, ids=[c[0] for c in CLAUDE_CASES])
def test_claude_transcript(what, log, roots, expected):
    assert [phrase(s) for s in claude_transcript(log, roots)] == expected


CODEX_CASES = [
    ("the measured --json sample", (DATA / "codex-exec.jsonl").read_text(), ["/tmp/e2e/myrepo"],
     ["write hello.txt", "$ printf 'from exec_command\\n' > exec.txt  -> exit 0", "says: done"]),
    ("a failed command, started then completed: one step",
     _lines(_item("item.started", {"id": "i0", "type": "command_execution", "command": "/bin/bash -lc 'ls nope'",
                                   "exit_code": None, "status": "in_progress"}),
            _item("item.completed", {"id": "i0", "type": "command_execution", "command": "/bin/bash -lc 'ls nope'",
                                     "aggregated_output": "ls: nope\n", "exit_code": 2, "status": "failed"})),
     [], ["$ ls nope  -> exit 2: ls: nope"]),
    ("a command still running", _lines(_item("item.started", {"id": "i0", "type": "command_execution",
                                                              "command": "sleep 9", "status": "in_progress"})),
     [], ["$ sleep 9  -> no result"]),
    ("a patch touching three files",
     _lines(_item("item.completed", {"id": "i1", "type": "file_change", "status": "completed", "changes": [
         {"path": "/r/a", "kind": "add"}, {"path": "/r/b", "kind": "update"}, {"path": "/r/c", "kind": "delete"}]})),
     ["/r"], ["write a", "edit b", "delete c"]),
    ("an error", _lines({"type": "turn.failed", "error": {"message": "unexpected status 401"}}), [],
     ["error: unexpected status 401"]),
]


@pytest.mark.parametrize("what,log,roots,expected", CODEX_CASES, ids=[c[0] for c in CODEX_CASES])
def test_codex_transcript(what, log, roots, expected):
    assert [phrase(s) for s in codex_transcript(log, roots)] == expected


@pytest.mark.parametrize("command,inner", [
    ("/bin/bash -lc 'ls -la'", "ls -la"), ("/bin/bash -c \"printf 'x' > y\"", "printf 'x' > y"),
    ("bash -lc 'a' extra", "bash -lc 'a' extra"), ("python3 -c 'x'", "python3 -c 'x'"), ("'unbalanced", "'unbalanced"),
])
def test_codex_commands_are_shown_without_their_shell_wrapper(command, inner):
    assert unwrap_shell(command) == inner


def test_every_family_reads_its_own_log_and_plain_output_is_its_last_lines():
    plain = "".join(f"line {n}\n" for n in range(30)) + '{"type": "result"}\n'
    assert [s.text for s in families.get("script").transcript(plain)] == [f"line {n}" for n in range(10, 30)]
    assert families.get("claude").transcript("not logged in\n") == [Step("output", text="not logged in")]
    assert [s.target for s in families.get("codex").transcript((DATA / "codex-exec.jsonl").read_text())][:1] == \
        ["/tmp/e2e/myrepo/hello.txt"]  # no roots: absolute


def test_a_long_command_keeps_its_end():
    steps = claude_transcript(_lines(_tool("t", "Bash", command="printf '" + "x" * 900 + "' > \"$OUT\"")))
    assert len(steps[0].target) <= 400 and steps[0].target.endswith("> \"$OUT\"") and " ~ " in steps[0].target


@pytest.mark.parametrize("event,words", [
    (_tool("t", "Write", file_path="/r/deep/a.txt"), "Write a.txt"),
    (_tool("t", "Bash", command="pytest -q"), "$ pytest -q"),
    ({"type": "assistant", "message": {"content": [{"type": "text", "text": "done"}]}}, "says: done"),
    (_item("item.completed", {"id": "i", "type": "command_execution", "command": "/bin/bash -lc 'make'",
                              "exit_code": 0, "status": "completed"}), "$ make"),
    (_item("item.started", {"id": "i", "type": "reasoning"}), "thinking"),
    (_item("item.completed", {"id": "i", "type": "todo_list"}), "todo_list"),
    ({"type": "turn.started"}, None),
])
def test_the_tickers_last_activity_words_the_same_reading(event, words):
    assert describe_event(event) == words

"""What an agent did, read from its log: each tool call with its target and result, and what it said.

Pure functions over a log's text, like :mod:`.usage` (tokens) beside it:
the one reader of the CLIs' events for the ticker's last-activity line
(:mod:`autometta.observe.activity`) and for ``autometta show``'s transcript.

What the real CLIs log (measured with claude-code 2.1.332 and codex 0.171.0):

* ``claude -p --output-format stream-json --verbose``: an ``assistant`` event
  per reply whose ``content`` holds ``tool_use`` blocks (``id``, ``name``,
  ``input``: ``file_path`` for Read/Write/Edit, ``command`` for Bash, ...)
  and ``text`` blocks; the result comes back in a ``user`` event as a
  ``tool_result`` block with the same ``tool_use_id``. A failed Bash command's
  result is ``is_error`` and opens with ``Exit code N``; a non-zero exit claude
  reads as an answer (``test``, ``grep``) is not an error, and the event's
  ``tool_use_result`` says how it read it (``returnCodeInterpretation``).
* ``codex exec --json``: ``item.started`` / ``item.completed`` events whose
  ``item`` is a ``command_execution`` (``command`` as codex ran it, e.g.
  ``/bin/bash -c 'ls'``; ``exit_code``; ``status``), a ``file_change``
  (``changes``: ``path`` and ``kind`` add/update/delete), an ``mcp_tool_call``,
  a ``web_search`` or an ``agent_message`` (``text``).
* Anything else (the script family, a plain ``claude -p`` log, a CLI that
  could not start) is plain text: its last lines are the transcript.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import asdict, dataclass
from typing import Any, Dict, Iterable, List, Optional, Sequence

from .usage import _json_objects as json_events

__all__ = ["Step", "claude_steps", "codex_steps", "plain_steps", "claude_transcript", "codex_transcript", "phrase",
           "unwrap_shell"]

#: Characters kept of a result's first line, a message or a target.
TEXT_LIMIT = 400

#: claude tool name -> what it does to its target.
_CLAUDE_ACTIONS = {
    "Read": "read", "NotebookRead": "read", "Write": "write", "Edit": "edit", "MultiEdit": "edit",
    "NotebookEdit": "edit", "Bash": "run", "BashOutput": "run", "KillShell": "run", "Glob": "search",
    "Grep": "search", "LS": "search", "WebFetch": "fetch", "WebSearch": "search", "Task": "agent",
    "Agent": "agent",
}
#: Input keys naming a tool call's target, most telling first.
_TARGET_KEYS = ("command", "file_path", "notebook_path", "path", "pattern", "url", "query", "description", "prompt")
_EXIT_RE = re.compile(r"^(?:Error: )?Exit code (\d+)\b")
_SHELLS = ("bash", "sh", "zsh", "dash")


@dataclass
class Step:
    """One thing an agent did.

    ``kind`` is ``tool`` (a tool call), ``say`` (a message of the agent's),
    ``error`` (the CLI's error) or ``output`` (a plain log line). A tool call
    has its ``name`` as the CLI calls it, an ``action`` (read, write, edit,
    delete, run, search, fetch, agent, other) and a ``target`` (a file, a
    command, a pattern, a URL). ``ok`` and ``exit_code`` come from its result:
    None while none was logged (still running, or killed). ``text`` is a
    message, or the first line of a failed call's output.
    """

    kind: str
    name: str = ""
    action: str = ""
    target: str = ""
    ok: Optional[bool] = None
    exit_code: Optional[int] = None
    text: str = ""
    id: str = ""

    def to_dict(self) -> Dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in ("", None) or k in ("kind",)}


def _cut(value: Any, limit: int = TEXT_LIMIT) -> str:
    """One line of at most ``limit`` characters; a longer one keeps both ends (a command's redirect
    is at its end), joined by `` ~ ``."""
    text = " ".join(str(value if value is not None else "").split())
    if len(text) <= limit:
        return text
    tail = limit // 3
    return text[: limit - tail - 3] + " ~ " + text[-tail:]


def _text_of(value: Any) -> str:
    """A tool result's content as text (claude gives a string, or a list of text blocks)."""
    if isinstance(value, list):
        return "\n".join(str(b.get("text") or "") for b in value if isinstance(b, dict))
    return str(value or "")


def _first_line(value: Any) -> str:
    for line in _text_of(value).splitlines():
        if line.strip():
            return _cut(line)
    return ""


def _relative(path: str, roots: Sequence[str]) -> str:
    """``path`` relative to the first of ``roots`` it is under (the agent's tree, the repo), else as is."""
    if not path or not os.path.isabs(path):
        return path
    for root in roots:
        if root and (path == root or path.startswith(root.rstrip("/") + "/")):
            return os.path.relpath(path, root)
    return path


def unwrap_shell(command: str) -> str:
    """``ls -la`` for codex's ``/bin/bash -lc 'ls -la'``; anything else as it is."""
    try:
        argv = shlex.split(command)
    except ValueError:
        return command
    if len(argv) == 3 and os.path.basename(argv[0]) in _SHELLS and argv[1] in ("-c", "-lc"):
        return argv[2]
    return command


# -- claude --------------------------------------------------------------------

def _claude_target(name: str, data: Any, roots: Sequence[str]) -> str:
    if not isinstance(data, dict):
        return ""
    for key in _TARGET_KEYS:
        if data.get(key):
            value = str(data[key])
            if key in ("file_path", "notebook_path", "path"):
                value = _relative(value, roots)
                if key == "path" and data.get("pattern"):  # Grep/Glob: the pattern, and where
                    return f"{data['pattern']} in {value}"
            return _cut(value)
    return ""


def claude_steps(event: Dict[str, Any], roots: Sequence[str] = ()) -> List[Step]:
    """The tool calls and messages of one claude ``assistant`` event, in order (results not joined)."""
    if event.get("type") != "assistant" or not isinstance(event.get("message"), dict):
        return []
    content = event["message"].get("content")
    steps: List[Step] = []
    for block in content if isinstance(content, list) else []:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "tool_use":
            name = str(block.get("name") or "tool")
            steps.append(Step("tool", name=name, action=_CLAUDE_ACTIONS.get(name, "other"),
                              target=_claude_target(name, block.get("input"), roots), id=str(block.get("id") or "")))
        elif kind == "text" and str(block.get("text") or "").strip():
            steps.append(Step("error" if event.get("error") else "say", text=_cut(block["text"])))
        elif kind == "thinking":
            steps.append(Step("thinking"))
    return steps


def _claude_result(step: Step, block: Dict[str, Any], detail: Any) -> None:
    if not block.get("is_error"):
        step.ok = True
        meaning = detail.get("returnCodeInterpretation") if isinstance(detail, dict) else None
        if meaning:  # a non-zero exit claude took as an answer (``test``, ``grep``): "Condition is false"
            step.text = _cut(meaning)
        elif step.name == "Bash":
            step.exit_code = 0  # claude reports any other exit as an error
        return
    step.ok = False
    lines = [line for line in _text_of(block.get("content")).splitlines() if line.strip()]
    match = _EXIT_RE.match(lines[0]) if lines else None
    if match:  # "Exit code 2" then the command's output
        step.exit_code = int(match.group(1))
        lines = lines[1:]
    step.text = _cut(lines[0]) if lines else ""


def claude_transcript(text: str, roots: Sequence[str] = ()) -> List[Step]:
    """Every tool call (with its result) and message in a claude stream-json log."""
    steps: List[Step] = []
    by_id: Dict[str, Step] = {}
    for event in json_events(text):
        kind = event.get("type")
        if kind == "assistant":
            for step in claude_steps(event, roots):
                if step.kind == "thinking":
                    continue
                if step.id:
                    if step.id in by_id:  # the same block logged twice
                        continue
                    by_id[step.id] = step
                steps.append(step)
        elif kind == "user" and isinstance(event.get("message"), dict):
            content = event["message"].get("content")
            for block in content if isinstance(content, list) else []:
                if isinstance(block, dict) and block.get("type") == "tool_result":
                    step = by_id.get(str(block.get("tool_use_id") or ""))
                    if step is not None:
                        _claude_result(step, block, event.get("tool_use_result"))
        elif kind == "result" and event.get("is_error"):
            message = _cut(event.get("result") or event.get("subtype") or "error")
            if not steps or steps[-1].text != message:
                steps.append(Step("error", text=message))
    return steps


# -- codex ---------------------------------------------------------------------

def codex_steps(event: Dict[str, Any], roots: Sequence[str] = ()) -> List[Step]:
    """The steps of one codex ``item.*`` event (a file change is one step per file)."""
    kind = event.get("type")
    if kind in ("error", "turn.failed"):
        error = event.get("error")
        message = error.get("message") if isinstance(error, dict) else event.get("message")
        return [Step("error", text=_cut(message or kind))]
    if kind not in ("item.started", "item.completed", "item.updated") or not isinstance(event.get("item"), dict):
        return []
    item = event["item"]
    itype = item.get("type")
    item_id = str(item.get("id") or "")
    status = item.get("status")
    done = kind == "item.completed" or status in ("completed", "failed", "declined")
    ok = None if not done else status not in ("failed", "declined")
    if itype == "command_execution":
        code = item.get("exit_code")
        code = code if isinstance(code, int) and not isinstance(code, bool) else None
        step = Step("tool", name="command_execution", action="run",
                    target=_cut(unwrap_shell(str(item.get("command") or ""))), id=item_id,
                    ok=(code == 0 if code is not None else ok), exit_code=code)
        if step.ok is False:
            step.text = _first_line(item.get("aggregated_output"))
        return [step]
    if itype == "file_change":
        changes = item.get("changes") if isinstance(item.get("changes"), list) else []
        out = []
        for n, change in enumerate(c for c in changes if isinstance(c, dict)):
            action = {"add": "write", "delete": "delete"}.get(str(change.get("kind")), "edit")
            out.append(Step("tool", name="file_change", action=action, ok=ok, id=f"{item_id}/{n}",
                            target=_relative(str(change.get("path") or ""), roots)))
        return out
    if itype == "mcp_tool_call":
        return [Step("tool", name=f"{item.get('server') or 'mcp'}.{item.get('tool') or 'tool'}", action="other",
                     target=_cut(item.get("arguments") or ""), ok=ok, id=item_id)]
    if itype == "web_search":
        return [Step("tool", name="web_search", action="search", target=_cut(item.get("query") or ""), ok=ok,
                     id=item_id)]
    if itype == "agent_message":
        return [Step("say", text=_cut(item.get("text") or ""), id=item_id)]
    if itype == "error":
        return [Step("error", text=_cut(item.get("message") or ""), id=item_id)]
    if itype == "reasoning":
        return [Step("thinking", id=item_id)]
    return [Step("other", name=str(itype or "item"), id=item_id)]


def codex_transcript(text: str, roots: Sequence[str] = ()) -> List[Step]:
    """Every item of a codex ``--json`` log, in the order each began, as it last stood."""
    steps: List[Step] = []
    where: Dict[str, int] = {}
    for event in json_events(text):
        for step in codex_steps(event, roots):
            if step.kind in ("thinking", "other"):
                continue
            if step.id and step.id in where:
                steps[where[step.id]] = step  # started, then completed: the completed one counts
                continue
            if step.id:
                where[step.id] = len(steps)
            steps.append(step)
    return steps


# -- plain ---------------------------------------------------------------------

def plain_steps(lines: Iterable[str]) -> List[Step]:
    return [Step("output", text=_cut(line)) for line in lines if line.strip()]


# -- in words ------------------------------------------------------------------

def phrase(step: Step, short: bool = False) -> str:
    """``Write out/a.txt``, ``$ pytest -q -> exit 1``, ``says: done``; ``short`` names files by basename."""
    if step.kind == "tool":
        target = step.target
        if short and step.action in ("read", "write", "edit", "delete") and target:
            target = os.path.basename(target.rstrip("/")) or target
        if step.action == "run":
            head = f"$ {target}"
        elif step.name == "file_change":
            head = f"{step.action} {target}"
        else:
            head = f"{step.name} {target}".strip()
        if short:
            return head
        if step.exit_code is not None and step.action == "run":
            head += f"  -> exit {step.exit_code}"
        elif step.ok and step.text:
            head += f"  -> {step.text}"
        elif step.ok is False:
            head += "  -> failed"
        elif step.ok is None:
            head += "  -> no result"
        if step.ok is False and step.text:
            head += f": {step.text}"
        return head
    if step.kind == "say":
        return f"says: {step.text}"
    if step.kind == "error":
        return f"error: {step.text}"
    if step.kind == "thinking":
        return "thinking"
    return step.text

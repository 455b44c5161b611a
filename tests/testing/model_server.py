"""A scripted model server that plays the model for the real ``claude`` and ``codex`` CLIs.

It speaks just enough of two APIs on 127.0.0.1 (see shared/spec/agent-clis.md):

* Anthropic Messages, ``POST /v1/messages[?beta=true]`` (claude): server-sent
  events, or one JSON object when the request says ``"stream": false``;
* OpenAI Responses, ``POST /v1/responses`` (codex): server-sent events.

A script maps a conversation key to a list of turns. The key is ``"claude"`` or
``"codex"`` (from the path) unless a ``key`` callable picks it from the
recorded :class:`Request`; a plain list is used for every key. The turn to play
is the number of earlier model replies found in the request: assistant messages
(claude) or tool outputs in ``input`` (codex). So a CLI that retries a request
gets the same turn again, and each turn's tool result moves the script on.

    with ModelServer({"claude": [write_file("/tmp/r/a.txt", "hi"), text("done")]}) as server:
        env = claude_env(server.url, home)
        ...
        assert server.requests[-1].body["model"] == "claude-sonnet-4-6"

Token counts are the test's to choose (:class:`Tokens` on each turn), so what a
CLI reports can be checked against what the "model" said it spent.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional, Tuple, Union
from urllib.parse import parse_qs, urlsplit


@dataclass
class Tokens:
    """What one model reply says it cost, in Anthropic's terms.

    ``input`` excludes cached tokens. For the Responses API it is sent as
    ``input_tokens = input + cache_read`` with ``cached_tokens = cache_read``
    (OpenAI counts cached tokens inside input); ``cache_write`` has no OpenAI
    field. ``reasoning`` is part of ``output`` there, as in the real API.
    """

    input: int = 100
    output: int = 10
    cache_read: int = 0
    cache_write: int = 0
    reasoning: int = 0


@dataclass
class Turn:
    """One scripted model reply. Build it with the helpers below."""

    kind: str  # "write" | "shell" | "text" | "error"
    path: Union[str, Callable[["Request"], str]] = ""  # a callable finds it in the request (told_path)
    content: str = ""
    command: str = ""
    text: str = ""
    codex_via: str = "apply_patch"  # or "exec_command", for kind "write"
    tokens: Tokens = field(default_factory=Tokens)
    status: int = 200
    body: Optional[Dict[str, Any]] = None  # error body; None: the API's usual shape
    headers: Dict[str, str] = field(default_factory=dict)
    resets_at: Optional[int] = None  # epoch seconds: makes a 429 a usage limit


def write_file(path: str, content: str, tokens: Optional[Tokens] = None, codex_via: str = "apply_patch") -> Turn:
    """claude: a ``Write`` tool call (give an absolute path); codex: apply_patch or a shell printf."""
    return Turn("write", path=path, content=content, codex_via=codex_via, tokens=tokens or Tokens())


def told_path(pattern: str) -> Callable[["Request"], str]:
    """For :func:`write_file`: the first match of ``pattern`` (a regex) in the request the turn answers.

    For a path the agent's prompt names that is made only when the agent is
    dispatched, such as a verifier's verdict path, ``state/verifiers/<id>.<nonce>.json``.
    """
    regex = re.compile(pattern)

    def find(request: "Request") -> str:
        match = regex.search(json.dumps(request.body))
        return match.group(0) if match else f"(no {pattern} in the request)"

    return find


def verdict_path(stage_id: str) -> Callable[["Request"], str]:
    """The absolute verdict path the verifier's prompt names (see :func:`told_path`)."""
    return told_path(r"/[^\s\"'`]*/state/verifiers/" + re.escape(stage_id) + r"\.[0-9a-f]{32}\.json")


def shell(command: str, tokens: Optional[Tokens] = None) -> Turn:
    """claude: a ``Bash`` tool call; codex: ``exec_command`` with ``login: false``."""
    return Turn("shell", command=command, tokens=tokens or Tokens())


def text(message: str, tokens: Optional[Tokens] = None) -> Turn:
    """A final assistant message that ends the run."""
    return Turn("text", text=message, tokens=tokens or Tokens())


def from_turn(index: int, turns: List[Turn]) -> List[Turn]:
    """``turns`` for a conversation whose first request already holds ``index`` replies (a resumed session):
    the script is read by reply count, so the turns before ``index`` are never asked for."""
    return [text("(padding: never asked)")] * index + list(turns)


def error(status: int, body: Optional[Dict[str, Any]] = None, headers: Optional[Dict[str, str]] = None,
          resets_at: Optional[int] = None) -> Turn:
    """An HTTP error. Without ``body`` each API gets its own usual error JSON for ``status``.

    A 429 with ``resets_at`` is a usage limit: claude gets the
    ``anthropic-ratelimit-unified-*`` headers of a subscription limit (it reads
    them only when logged in with a token, ``claude_env(subscription=True)``;
    with an API key it reports a plain 429), codex a ``usage_limit_reached``
    error carrying ``resets_at``. ``headers`` add to or replace these, e.g.
    ``{"anthropic-ratelimit-unified-representative-claim": "seven_day"}``.
    """
    return Turn("error", status=status, body=body, headers=dict(headers or {}), resets_at=resets_at)


@dataclass
class Request:
    """One request as the server saw it."""

    method: str
    path: str
    query: Dict[str, List[str]]
    headers: Dict[str, str]  # lower-cased names
    body: Any  # parsed JSON, or None

    @property
    def api(self) -> str:
        """``"claude"`` for the Messages API, ``"codex"`` for Responses, else ``""``."""
        if self.path.startswith("/v1/messages"):
            return "claude"
        if self.path.startswith("/v1/responses"):
            return "codex"
        return ""

    def turn_index(self) -> int:
        """How many model replies the conversation already holds."""
        body = self.body if isinstance(self.body, dict) else {}
        if self.api == "claude":
            return sum(1 for m in body.get("messages") or [] if isinstance(m, dict) and m.get("role") == "assistant")
        items = body.get("input") if isinstance(body.get("input"), list) else []
        return sum(1 for i in items if isinstance(i, dict)
                   and i.get("type") in ("function_call_output", "custom_tool_call_output"))


Script = Union[List[Turn], Dict[str, List[Turn]]]

_ANTHROPIC_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                          404: "not_found_error", 429: "rate_limit_error", 500: "api_error", 529: "overloaded_error"}


class ModelServer:
    """A ThreadingHTTPServer on 127.0.0.1 (free port) playing ``script``; a context manager."""

    def __init__(self, script: Script, key: Optional[Callable[[Request], str]] = None) -> None:
        self.script = script
        self.key = key or (lambda request: request.api)
        self.requests: List[Request] = []
        self.problems: List[str] = []  # requests the script could not answer
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="model-server", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "ModelServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def model_requests(self, api: str) -> List[Request]:
        """The recorded POSTs to one API (``"claude"`` or ``"codex"``)."""
        with self._lock:
            return [r for r in self.requests if r.method == "POST" and r.api == api]

    # -- answering ---------------------------------------------------------

    def answer(self, request: Request) -> Tuple[int, Dict[str, str], bytes]:
        """Status, headers and body for one recorded request."""
        with self._lock:
            self.requests.append(request)
        if request.method == "HEAD":
            return 200, {}, b""
        if request.method != "POST" or not request.api or not isinstance(request.body, dict):
            return 404, {"content-type": "application/json"}, _json({"error": f"no route {request.path}"})
        turns = self.script if isinstance(self.script, list) else self.script.get(self.key(request), [])
        index = request.turn_index()
        if index >= len(turns):
            problem = f"{request.api} request {request.path} wants turn {index}, script has {len(turns)}"
            with self._lock:
                self.problems.append(problem)
            return 500, {"content-type": "application/json"}, _json(_error_body(request.api, 500, problem))
        turn = turns[index]
        if callable(turn.path):
            turn = dataclasses.replace(turn, path=turn.path(request))
        if turn.kind == "error":
            return self._error(request.api, turn)
        n = next(self._ids)
        if request.api == "claude":
            model = request.body.get("model", "")
            if request.body.get("stream") is False:
                return 200, {"content-type": "application/json"}, _json(_anthropic_message(turn, n, model))
            return 200, {"content-type": "text/event-stream"}, _anthropic_sse(turn, n, model)
        return 200, {"content-type": "text/event-stream"}, _responses_sse(turn, n)

    def _error(self, api: str, turn: Turn) -> Tuple[int, Dict[str, str], bytes]:
        headers = {"content-type": "application/json"}
        body = turn.body
        if turn.status == 429 and turn.resets_at is not None and api == "claude":
            headers.update({"anthropic-ratelimit-unified-status": "rejected",
                            "anthropic-ratelimit-unified-reset": str(turn.resets_at),
                            "anthropic-ratelimit-unified-representative-claim": "five_hour",
                            "anthropic-ratelimit-unified-5h-status": "rejected",
                            "anthropic-ratelimit-unified-5h-reset": str(turn.resets_at)})
        if turn.status == 429 and turn.resets_at is not None and api == "codex" and body is None:
            body = {"error": {"type": "usage_limit_reached", "message": "The usage limit has been reached",
                              "plan_type": "pro", "resets_at": turn.resets_at}}
        headers.update(turn.headers)
        return turn.status, headers, _json(body if body is not None else _error_body(api, turn.status))


def _error_body(api: str, status: int, message: str = "") -> Dict[str, Any]:
    if api == "claude":
        kind = _ANTHROPIC_ERROR_TYPES.get(status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": message or kind.replace("_", " ")}}
    if status == 429:
        return {"error": {"type": "rate_limit_exceeded", "code": "rate_limit_exceeded", "param": None,
                          "message": message or "Rate limit reached. Please try again in 20s."}}
    return {"error": {"type": "server_error", "code": None, "param": None,
                      "message": message or f"The server had an error (status {status})."}}


# -- Anthropic Messages ------------------------------------------------------

def _anthropic_blocks(turn: Turn, n: int) -> List[Dict[str, Any]]:
    if turn.kind == "write":
        return [{"type": "tool_use", "id": f"toolu_{n:04d}", "name": "Write",
                 "input": {"file_path": turn.path, "content": turn.content}}]
    if turn.kind == "shell":
        return [{"type": "tool_use", "id": f"toolu_{n:04d}", "name": "Bash",
                 "input": {"command": turn.command, "description": "scripted command"}}]
    return [{"type": "text", "text": turn.text}]


def _anthropic_usage(t: Tokens, output: int) -> Dict[str, int]:
    return {"input_tokens": t.input, "output_tokens": output,
            "cache_creation_input_tokens": t.cache_write, "cache_read_input_tokens": t.cache_read}


def _anthropic_message(turn: Turn, n: int, model: str) -> Dict[str, Any]:
    blocks = _anthropic_blocks(turn, n)
    return {"id": f"msg_{n:04d}", "type": "message", "role": "assistant", "model": model, "content": blocks,
            "stop_reason": "tool_use" if turn.kind != "text" else "end_turn", "stop_sequence": None,
            "usage": _anthropic_usage(turn.tokens, turn.tokens.output)}


def _anthropic_sse(turn: Turn, n: int, model: str) -> bytes:
    message = _anthropic_message(turn, n, model)
    start = dict(message, content=[], stop_reason=None, usage=_anthropic_usage(turn.tokens, 1))
    events: List[Tuple[str, Dict[str, Any]]] = [("message_start", {"type": "message_start", "message": start})]
    for index, block in enumerate(message["content"]):
        if block["type"] == "tool_use":
            empty = dict(block, input={})
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        else:
            empty = dict(block, text="")
            delta = {"type": "text_delta", "text": block["text"]}
        events += [("content_block_start", {"type": "content_block_start", "index": index, "content_block": empty}),
                   ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}),
                   ("content_block_stop", {"type": "content_block_stop", "index": index})]
    events += [("message_delta", {"type": "message_delta",
                                  "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                                  "usage": {"output_tokens": turn.tokens.output}}),
               ("message_stop", {"type": "message_stop"})]
    return _sse(events)


# -- OpenAI Responses --------------------------------------------------------

def _responses_item(turn: Turn, n: int) -> Dict[str, Any]:
    call_id = f"call_{n:04d}"
    if turn.kind == "write" and turn.codex_via == "apply_patch":
        lines = "".join(f"+{line}\n" for line in turn.content.splitlines())
        patch = f"*** Begin Patch\n*** Add File: {turn.path}\n{lines}*** End Patch\n"
        return {"type": "custom_tool_call", "id": f"ctc_{n:04d}", "status": "completed",
                "name": "apply_patch", "input": patch, "call_id": call_id}
    if turn.kind in ("write", "shell"):
        cmd = turn.command if turn.kind == "shell" else f"printf '%s' {_sh_quote(turn.content)} > {_sh_quote(turn.path)}"
        return {"type": "function_call", "id": f"fc_{n:04d}", "status": "completed", "name": "exec_command",
                "arguments": json.dumps({"cmd": cmd, "login": False}), "call_id": call_id}
    return {"type": "message", "id": f"msg_{n:04d}", "status": "completed", "role": "assistant",
            "content": [{"type": "output_text", "text": turn.text, "annotations": []}]}


def _responses_sse(turn: Turn, n: int) -> bytes:
    t = turn.tokens
    item = _responses_item(turn, n)
    usage = {"input_tokens": t.input + t.cache_read, "input_tokens_details": {"cached_tokens": t.cache_read},
             "output_tokens": t.output, "output_tokens_details": {"reasoning_tokens": t.reasoning},
             "total_tokens": t.input + t.cache_read + t.output}
    response = {"id": f"resp_{n:04d}", "object": "response", "status": "in_progress", "output": []}
    return _sse([
        ("response.created", {"type": "response.created", "response": response}),
        ("response.output_item.added", {"type": "response.output_item.added", "output_index": 0, "item": item}),
        ("response.output_item.done", {"type": "response.output_item.done", "output_index": 0, "item": item}),
        ("response.completed", {"type": "response.completed",
                                "response": dict(response, status="completed", output=[item], usage=usage)}),
    ])


# -- plumbing ----------------------------------------------------------------

def _sh_quote(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def _sse(events: List[Tuple[str, Dict[str, Any]]]) -> bytes:
    return "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events).encode()


def _make_handler(server: ModelServer) -> type:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _handle(self) -> None:
            split = urlsplit(self.path)
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            request = Request(self.command, split.path, parse_qs(split.query),
                              {k.lower(): v for k, v in self.headers.items()}, body)
            status, headers, payload = server.answer(request)
            self.send_response(status)
            for name, value in dict({"request-id": f"req_{len(server.requests):04d}"}, **headers).items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_POST = do_HEAD = _handle

        def log_message(self, format: str, *args: Any) -> None:  # quiet: the requests are recorded
            pass

    return Handler

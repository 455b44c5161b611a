"""Internal: the API verifier the tick starts as an agent (``autometta _verify-api``).

Asks the Anthropic Messages API or the OpenAI Responses API for a verdict on
the stage in flight and writes it to ``--out`` once it is schema-valid (see
:mod:`autometta.verify.request`). Its output is the verifier's log: progress
lines and one usage line the verifier family's parser reads. The key comes
from the environment the dispatcher gave it, never from argv.

Exit codes: 0 PASS, 1 FAIL, 2 not set up (no key, unreadable card),
3 invalid answer (kept in ``<out>.invalid.json``), 4 the API failed.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..card import parse_card
from ..errors import UserError
from ..verify import request as api_request

NAME = "_verify-api"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api", choices=("anthropic", "openai"), required=True)
    parser.add_argument("--family", default="claude", help="whose usage-line format the log gets")
    parser.add_argument("--stage-id", required=True)
    parser.add_argument("--card", required=True)
    parser.add_argument("--repo", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--identity", required=True)
    parser.add_argument("--invocation", required=True)
    parser.add_argument("--worker", default="")
    parser.add_argument("--acceptance-evidence", default="")
    parser.add_argument("--base-url", default=None)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--max-diff-chars", type=int, default=api_request.MAX_DIFF_CHARS)
    parser.add_argument("--max-input-chars", type=int, default=api_request.MAX_INPUTS_TOTAL_CHARS)


def run(args: argparse.Namespace) -> int:
    repo = Path(os.path.realpath(args.repo))
    out = Path(args.out)
    if not out.is_absolute():
        out = repo / out
    try:
        card = parse_card(args.card)
    except UserError as exc:
        print(f"verify-api: {exc.message}", file=sys.stderr, flush=True)
        return 2
    info = api_request.StageInfo(stage_id=args.stage_id, repo=repo, card_path=Path(os.path.abspath(args.card)),
                                 verifier_identity=args.identity, verifier_invocation=args.invocation,
                                 worker_identity=args.worker, acceptance_evidence=args.acceptance_evidence,
                                 artefact_path=os.path.relpath(out, repo) if str(out).startswith(str(repo)) else str(out))
    return api_request.run_api_verifier(api=args.api, family=args.family, info=info, card_inputs=card.inputs,
                                        out=out, model=args.model, environ=os.environ, base_url=args.base_url,
                                        timeout=args.timeout, max_diff=args.max_diff_chars,
                                        max_inputs=args.max_input_chars)

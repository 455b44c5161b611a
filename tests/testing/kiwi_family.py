"""A fourth agent family, Kiwi, in this one module: all autometta needs to run a family it never heard of.

Kiwi is a made-up CLI: ``python3 -c <AGENT> <role> <model>`` in the stage's
tree. As a worker it writes ``hello.txt`` and its hand-off; as a verifier it
checks ``hello.txt`` and writes its verdict. Either way it logs what it spent
as ``kiwi-usage: <in> in, <out> out`` and ends with one line of its own.
tests/families/test_fourth_family.py registers it and runs a stage with it through the
tick, by hand and in status; nothing under ``autometta/`` names it.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import List, Mapping, Optional, Sequence

from autometta.families.base import NAMED, WORD, Family, check_role
from autometta.families.usage import Usage

WORKER = "Kiwi Small <kiwi-small@local>"
CHECKER = "Kiwi Checker <kiwi-checker@local>"
MODEL = "kiwi-1-small"

AGENT = r"""
import json, os, sys

role, model = sys.argv[1], sys.argv[2]
stage = os.environ["AUTOMETTA_STAGE_ID"]
if role == "worker":
    with open("hello.txt", "w") as out:
        out.write("hello from kiwi\n")
    with open(os.environ["AUTOMETTA_HANDOFF"], "w") as out:
        json.dump({"stage_id": stage, "status": "pass", "deliverables": ["hello.txt"], "notes": model}, out)
    print("kiwi-usage: 1200 in, 80 out")
else:
    said = open("hello.txt").read().strip()
    verdict = "PASS" if said == "hello from kiwi" else "FAIL"
    with open(os.environ["AUTOMETTA_ARTEFACT"], "w") as out:
        json.dump({"stage_id": stage, "verifier_identity": "%s", "verifier_invocation": "kiwi " + model,
                   "ran_at": "2026-12-04T00:00:00Z",
                   "criteria": [{"id": 1, "name": "hello", "verdict": verdict, "evidence": "hello.txt:1 " + said}],
                   "additional_findings": "", "overall": verdict}, out)
    print("kiwi-usage: 300 in, 20 out")
print("kiwi " + role + " done")
""" % CHECKER

_USAGE_RE = re.compile(r"^kiwi-usage: (\d+) in, (\d+) out$")


class Kiwi(Family):
    name = "kiwi"
    executable = sys.executable
    streams = True
    identity_hint = "mention Kiwi"
    partner = "kiwi"

    def identity_rank(self, identity: str) -> Optional[int]:
        if "Kiwi" in identity:
            return NAMED
        return WORD if "kiwi" in identity.lower() else None

    def default_identity(self, role: str) -> str:
        return WORKER if role == "worker" else CHECKER

    def model(self, identity: str, name: str, email: Optional[str], table: Mapping[str, str]) -> Optional[str]:
        return MODEL

    def command(self, role: str, prompt: str, *, model: Optional[str], repo: Path, card: object,
                extra_dirs: Sequence[Path] = (), permission: object = None) -> List[str]:
        check_role(role)
        return [self.executable, "-c", AGENT, role, model or MODEL]

    def parse_usage(self, log_text: str) -> Optional[Usage]:
        found = None
        for line in log_text.splitlines():
            match = _USAGE_RE.match(line.strip())
            if match:
                found = Usage(input_tokens=int(match.group(1)), output_tokens=int(match.group(2)))
        return found

    def usage_line(self, usage: Usage, cost: Optional[float], model: str = "") -> str:
        return f"kiwi-usage: {usage.input_tokens} in, {usage.output_tokens} out"

    def final_message(self, log_text: str) -> Optional[str]:
        lines = [line.strip() for line in log_text.splitlines() if line.strip()]
        return lines[-1] if lines else None

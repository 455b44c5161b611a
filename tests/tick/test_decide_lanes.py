"""decide_lane() and decide_claim() as tables: the facts in, the whole Decision out.

Every row builds the facts by hand (tests/testing/decisions.py), calls the decision once and checks every
field the tick's lanes loop acts on: the effects in order, ``kind``, ``finish``, ``halt``, and the flags
``transition`` (a clock tick spent), ``stops_repo`` (nothing else moves this tick), ``merges`` (the merge
slot is taken) and ``commits``; and the words the tick log shows. No files, no processes, no git.
"""

from __future__ import annotations

from typing import Any, Dict, List

import pytest

from autometta.books.budget import initial_budget
from autometta.families.usage import Usage
from autometta.tick import decide as d
from autometta.tick.outcomes import Artefact, Envelope
from tests.testing.decisions import (CLAUDE, CODEX, FAIL_DOC, LANE, NOW, PARKED, PASS_DOC, ROUTES, SID, exited,
                                     facts, lane, limited, running, state_with)

P = d.Pending
FLAGS = ("transition", "stops_repo", "merges", "commits")
#: The codex route parked for every repo on this host until after NOW.
CODEX_PARKED = {CODEX: {"until": "2030-03-17T18:01:00Z", "reason": "verifier hit a usage limit: x", "repo": "/o"}}
EXPIRED_PARK = {"parked_until": "2030-03-17T17:00:00Z", "park_reason": "usage limit"}  # before NOW
ACTIVE_PARK = {"parked_until": "2030-03-17T18:01:00Z", "park_reason": "usage limit"}  # after NOW
VERIFYING = {"worker_tree": "t1", "verifier_pid": 9, "verifier_attempts": 1}
FAIL = Artefact("verdict", overall="FAIL", doc=FAIL_DOC)
PASS = Artefact("verdict", overall="PASS", doc=PASS_DOC)


def names(dec: d.Decision) -> List[str]:
    """The effects in order; a role's or a stage's effect with it (``launch:worker``, ``claim:01-thing``)."""
    keyed = (d.Launch, d.Kill, d.Account, d.Claim, d.Merge)
    return [f"{e.name}:{e.arg}" if isinstance(e, keyed) else e.name for e in dec.effects]


def outcome(dec: d.Decision) -> Dict[str, Any]:
    return {"effects": names(dec), "kind": dec.kind, "finish": dec.finish, "halt": dec.halt,
            "flags": " ".join(flag for flag in FLAGS if getattr(dec, flag))}


def budget(**fields: Any) -> Dict[str, Any]:
    b = initial_budget()
    b.update(fields)
    return b


# ------------------------------------------------------------------ a stage in a lane of its own

#: id -> (stage fields, in-flight facts, repo facts, effects, kind, finish, halt, flags, the tick log says)
LANES = {
    "no worker yet: it is started": (
        {}, {}, {},
        ["launch:worker"], "launch", None, None, "transition",
        "stage 01-thing has no worker (an interrupted tick never started it); starting it"),
    "worktree.setup first": (
        {}, {"setup_command": "npm ci"}, {},
        ["launch:setup"], "launch", None, None, "transition",
        "stage 01-thing running worktree.setup in its worktree"),
    "worktree.setup passed: the worker": (
        {"setup": "pass"}, {"setup_command": "npm ci"}, {},
        ["launch:worker"], "launch", None, None, "transition",
        "stage 01-thing has no worker"),
    "the worker runs: wait": (
        {"worker_pid": 42}, {"worker": running()}, {},
        [], "wait", None, None, "",
        "worker 42 for 01-thing still running, skipping verifier dispatch"),
    "the worker passed: the verifier": (
        {"worker_pid": 42}, {"worker": exited(), "envelope": Envelope("pass")}, {},
        ["account:worker", "record_tree", "launch:verifier"], "launch", None, None, "transition",
        "stage 01-thing worker envelope status=pass, proceeding to verifier dispatch (attempt 1)"),
    "the worker's time crosses the wall-clock cap: halted before the verifier": (
        {"worker_pid": 42}, {"worker": exited(seconds=60), "envelope": Envelope("pass")},
        {"budget": budget(wall_clock_elapsed_seconds=3590)},
        ["account:worker", "record_tree"], "halt", None, "wall-clock-cap", "transition",
        "but halted /r due to wall-clock-cap before dispatch"),
    "the worker's tokens cross the token cap: halted before the verifier": (
        {"worker_pid": 42}, {"worker": exited(usage=Usage(input_tokens=20)), "envelope": Envelope("pass")},
        {"budget": budget(tokens_spent=999_990)},
        ["account:worker", "record_tree"], "halt", None, "token-cap", "transition",
        "but halted /r due to token-cap before dispatch"),
    "the verifier's route is parked: nothing of the step happens": (
        {"worker_pid": 42}, {"worker": exited(), "envelope": Envelope("pass"), "routes": ROUTES},
        {"parks": CODEX_PARKED},
        [], "wait", None, None, "",
        "stage 01-thing waits to start its verifier"),
    "the worker hit a usage limit: its route is parked": (
        {"worker_pid": 42}, {"worker": limited(exited(1)), "routes": ROUTES}, {},
        ["park"], "park", None, None, "transition",
        f"parked {CLAUDE} until 2030-03-17T18:01:00Z for every repo on this host"),
    "the worker failed": (
        {"worker_pid": 42}, {"worker": exited(), "envelope": Envelope("fail", notes="cannot")}, {},
        ["account:worker", "record_tree"], "failed", ("failed", "cannot"), None, "transition",
        "stage 01-thing failed: worker envelope status=fail; notes: cannot"),
    "the verifier runs: wait": (
        VERIFYING, {"verifier": running(pid=9)}, {},
        [], "wait", None, None, "",
        "verifier 9 for 01-thing still running"),
    "a FAIL with a loop left: the worker is re-briefed in its worktree": (
        VERIFYING, {"verifier": exited(pid=9), "artefact": FAIL, "max_loops": 2}, {},
        ["account:verifier", "save_artefact", "rebrief", "launch:worker"], "launch", None, None, "transition",
        "stage 01-thing verifier FAIL; re-briefing the worker (loop 2 of 2)"),
    "a FAIL without one": (
        VERIFYING, {"verifier": exited(pid=9), "artefact": FAIL}, {},
        ["account:verifier", "save_artefact"], "verifier_failed", ("verifier_failed", "verifier_fail"), None,
        "transition", "stage 01-thing verifier FAIL (verifier_fail); tree left for operator review"),
    "a PASS: committed on its branch, queued to merge, not finished": (
        VERIFYING, {"verifier": exited(pid=9), "artefact": PASS, "tree_now": lambda: "t1"}, {},
        ["account:verifier", "save_artefact", "set", "commit"], "commit", None, None, "transition commits",
        "stage 01-thing PASS: committing worker output on autometta/01-thing; queued to merge"),
    "queued, no acceptance command: merged and landed at once": (
        {"merge": "queued"}, {}, {},
        ["merge:False", "land"], "land", None, None, "transition merges",
        "stage 01-thing merging onto main"),
    "queued, another lane has the merge slot: it waits its turn": (
        {"merge": "queued"}, {"merge_busy": True}, {},
        [], "wait", None, None, "",
        "stage 01-thing is accepted and waits for its turn to merge onto main"),
    "queued, an acceptance command and the base moved: merged, then checked again": (
        {"merge": "queued"}, {"acceptance_command": "make test"}, {},
        ["merge:False", "set", "launch:postmerge"], "launch", None, None, "transition merges",
        "stage 01-thing merging onto main; then rerunning the acceptance command"),
    "queued, the base did not move: the checked tree lands": (
        {"merge": "queued"}, {"acceptance_command": "make test", "recheck": lambda: False}, {},
        ["merge:True", "land"], "land", None, None, "transition merges",
        "stage 01-thing merging onto main"),
    "queued, the user changed the same files: halted, naming them": (
        {"merge": "queued"}, {}, {"dirty": ["a.txt", "b.txt", "c.txt", "d.txt"]},
        [], "halt", None, "dirty-working-tree", "transition",
        "also changed in the working tree of /r (a.txt, b.txt, c.txt, d.txt)"),
    "the recheck runs: wait": (
        {"merge": "checking", "postmerge_pid": 7}, {"postmerge": running(pid=7)}, {},
        [], "wait", None, None, "",
        "acceptance on the merged result for 01-thing still running"),
    "the recheck passed: it lands": (
        {"merge": "checking", "postmerge_pid": 7}, {"postmerge": exited(pid=7)}, {},
        ["account:postmerge", "land"], "land", None, None, "transition merges",
        "stage 01-thing passed acceptance on the merged result; landing on main"),
    "the recheck failed: the base is left as it was": (
        {"merge": "checking", "postmerge_pid": 7}, {"postmerge": exited(1, pid=7)}, {},
        ["account:postmerge"], "failed", ("failed", "post_merge_acceptance_failed"), None, "transition",
        "exited 1 on the merged result; main left as it was"),
    "its worktree is gone: what runs there is stopped": (
        VERIFYING, {"worktree_missing": True, "verifier": running(pid=9)}, {},
        ["kill:verifier", "account:verifier"], "stalled", ("stalled", "worktree_missing"), None, "transition",
        "stage 01-thing lost its worktree /r/.autometta/worktrees/01-thing; marked stalled"),
    "a verdict no verifier of autometta's wrote": (
        VERIFYING, {"verifier": exited(pid=9), "artefact": PASS, "forged": "written before its run"}, {},
        ["account:verifier"], "failed", ("failed", "verdict_forged: written before its run"), None, "transition",
        "has a verdict no verifier of autometta's wrote (written before its run)"),
    "a repo park that has run out is cleared by the step": (
        {"worker_pid": 42}, {"worker": exited(), "envelope": Envelope("pass")}, {"state": EXPIRED_PARK},
        ["unpark", "account:worker", "record_tree", "launch:verifier"], "launch", None, None, "transition",
        "proceeding to verifier dispatch"),
    "a repo park still on: the repo stops": (
        {"worker_pid": 42}, {"worker": exited(), "envelope": Envelope("pass")}, {"state": ACTIVE_PARK},
        [], "wait", None, None, "stops_repo",
        "parked /r until 2030-03-17T18:01:00Z (usage limit)"),
    "a cap reached: halted, the repo stops": (
        {"worker_pid": 42}, {"worker": running()}, {"budget": budget(clock_ticks_used=100)},
        [], "halt", None, "tick-cap", "transition stops_repo",
        "halted /r due to tick-cap"),
}


@pytest.mark.parametrize("fields,kw,repo,effects,kind,finish,halt,flags,says", LANES.values(), ids=LANES.keys())
def test_one_lane(fields, kw, repo, effects, kind, finish, halt, flags, says):
    f = lane(state_with("in_progress", **LANE, **fields), dirty=repo.get("dirty"), **kw)
    f.budget = repo.get("budget", f.budget)
    f.state.update(repo.get("state", {}))
    f.parks, f.now = repo.get("parks", {}), NOW
    dec = d.decide_lane(f, SID)
    assert outcome(dec) == {"effects": effects, "kind": kind, "finish": finish, "halt": halt, "flags": flags}
    assert says in dec.message, dec.message


# ------------------------------------------------------------------ claims

def _q(n: int) -> List[d.Pending]:
    return [P(f"0{i}-s", waits_for=["00-first"]) for i in range(1, n + 1)]


#: id -> (queue, repo facts, effects, kind, finish, halt, flags, the tick log says)
CLAIMS = {
    "at max_parallel 1: a worktree of its own, no lane number": (
        [P(SID, worker="W")], {},
        [f"claim:{SID}", "worktree", "launch:worker"], "launch", None, None, "transition",
        "claimed 01-thing for /r; dispatching worker W in its worktree"),
    "beside a lane in flight: the next lane": (
        [P(SID, worker="W")], {"max_parallel": 3, "lanes_in_flight": 1},
        [f"claim:{SID}", "worktree", "launch:worker"], "launch", None, None, "transition",
        "claimed 01-thing for /r into lane 2 of 3; dispatching worker W in its worktree"),
    "worktree.setup before the worker": (
        [P(SID, worker="W")], {"setup_command": "npm ci"},
        [f"claim:{SID}", "worktree", "launch:setup"], "launch", None, None, "transition",
        "claimed 01-thing for /r; running worktree.setup in its worktree"),
    "isolation: tree: into the repo's own tree, what is changed recorded first": (
        [P(SID, worker="W")], {"in_tree": True, "setup_command": "npm ci"},
        [f"claim:{SID}", "record_claim", "launch:worker"], "launch", None, None, "transition",
        "claimed 01-thing for /r; dispatching worker W in the repo's own tree"),
    "a worker that cannot start: claimed and stalled, nothing spawned": (
        [P(SID, preflight="codex_cli_missing")], {},
        [f"claim:{SID}"], "stalled", ("stalled", "codex_cli_missing"), None, "transition",
        "stage 01-thing cannot start: codex_cli_missing"),
    "its card is missing: it stays pending, no tick spent": (
        [P(SID, card_found=False)], {},
        [], "wait", None, None, "",
        "stage card missing for 01-thing in /r"),
    "an id that is no stage id: halted": (
        [P("1-bad", worker="W")], {},
        [], "halt", None, "invalid-stage-id", "transition",
        "pending stage id '1-bad' in /r is not valid"),
    "nothing pending": (
        [], {},
        [], "wait", None, None, "",
        "idle /r: no pending stage"),
    "nothing pending, lanes busy": (
        [], {"max_parallel": 3, "lanes_in_flight": 2},
        [], "wait", None, None, "",
        "no stage to claim for /r (2 of 3 lanes busy): no pending stage"),
    "every pending stage waits for its dependencies": (
        [P(SID, waits_for=["00-first"])], {},
        [], "wait", None, None, "",
        "idle /r: 1 pending stage(s) wait for their dependencies (01-thing waits for 00-first)"),
    "every pending stage waits for a parked route": (
        [P(SID, worker="W", route=CLAUDE)], {"parks": PARKED},
        [], "wait", None, None, "",
        "wait for a parked billing route (01-thing waits for claude subscription, parked until "
        "2030-03-17T18:01:00Z)"),
    "some wait for dependencies, some for a parked route": (
        [P(SID, worker="W", route=CLAUDE), P("02-next", waits_for=[SID])], {"parks": PARKED},
        [], "wait", None, None, "",
        "2 pending stage(s) wait for their dependencies or a parked billing route"),
    "five waiting: three named": (
        _q(5), {},
        [], "wait", None, None, "",
        "01-s waits for 00-first; 02-s waits for 00-first; 03-s waits for 00-first; and 2 more"),
    "the first waits: the next claimable one is claimed": (
        [P(SID, waits_for=["00-first"]), P("02-next", worker="W")], {},
        ["claim:02-next", "worktree", "launch:worker"], "launch", None, None, "transition",
        "claimed 02-next for /r; dispatching worker W in its worktree"),
    "the first's route is parked: the other family's stage is claimed": (
        [P(SID, worker="W", route=CLAUDE), P("02-next", worker="C", route=CODEX)], {"parks": PARKED},
        ["claim:02-next", "worktree", "launch:worker"], "launch", None, None, "transition",
        "claimed 02-next for /r; dispatching worker C in its worktree"),
    "a repo park that has run out: cleared by the claim": (
        [P(SID, worker="W")], {"state": EXPIRED_PARK},
        ["unpark", f"claim:{SID}", "worktree", "launch:worker"], "launch", None, None, "transition",
        "claimed 01-thing for /r"),
    "a repo park still on: nothing claimed, the repo stops": (
        [P(SID, worker="W")], {"state": ACTIVE_PARK},
        [], "wait", None, None, "stops_repo",
        "parked /r until 2030-03-17T18:01:00Z (usage limit)"),
    "halted before: nothing claimed, the repo stops": (
        [P(SID, worker="W")], {"budget": budget(halted=True, halt_reason="failure-cap")},
        [], "wait", None, None, "stops_repo",
        "halted /r (reason already recorded: failure-cap)"),
    "a cap reached: halted, nothing claimed": (
        [P(SID, worker="W")], {"budget": budget(tokens_spent=1_000_000)},
        [], "halt", None, "token-cap", "transition stops_repo",
        "halted /r due to token-cap"),
}


@pytest.mark.parametrize("queue,repo,effects,kind,finish,halt,flags,says", CLAIMS.values(), ids=CLAIMS.keys())
def test_one_claim(queue, repo: Dict[str, Any], effects, kind, finish, halt, flags, says):
    f = facts(budget=repo.get("budget"))
    f.queue, f.now, f.parks = queue, NOW, repo.get("parks", {})
    f.max_parallel, f.lanes_in_flight = repo.get("max_parallel", 1), repo.get("lanes_in_flight", 0)
    f.setup_command, f.in_tree = repo.get("setup_command"), repo.get("in_tree", False)
    f.state.update(repo.get("state", {}))
    dec = d.decide_claim(f)
    assert outcome(dec) == {"effects": effects, "kind": kind, "finish": finish, "halt": halt, "flags": flags}
    assert says in dec.message, dec.message

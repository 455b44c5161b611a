"""autometta top's screen model, by table: repos' data in, lines and regions out; keys in, UI and effect out."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any, Dict, List, Optional

import pytest

from autometta.observe import needs
from autometta.observe import topscreen as ts

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z


def iso(seconds_ago: float) -> str:
    from autometta.timeutil import now_iso

    return now_iso(NOW - seconds_ago)


def need(kind: str, stage_id: Optional[str] = None, **more: Any) -> Dict[str, Any]:
    """A "needs you" item as the view carries it (observe.needs's, as a dict)."""
    more.setdefault("summary", f"{stage_id or 'repo'}: {kind}")
    return needs.Need(kind=kind, repo=more.pop("repo", "/src/x"), stage_id=stage_id, **more).as_dict()


def repo(name: str, stages: List[Dict[str, Any]], needs: Optional[List[Dict[str, Any]]] = None,
         **more: Any) -> Dict[str, Any]:
    out = {"name": name, "path": f"/src/{name}", "stages": stages, "needs": needs or []}
    out.update(more)
    return out


def stage(sid: str, status: str, **more: Any) -> Dict[str, Any]:
    out = {"id": sid, "status": status}
    out.update(more)
    return out


def view(*repos: Dict[str, Any], **more: Any) -> Dict[str, Any]:
    out = {"now": NOW, "controller": {"last_tick": NOW - 42, "schedule": "cron"},
           "spend": {"tokens": 18250, "cost_usd": 0.41, "runs": 3}, "repos": list(repos)}
    out.update(more)
    return out


def order(v: Dict[str, Any], width: int = 80) -> List[str]:
    return [r.name if r.kind == "repo" else f"  {r.stage_id}" for r in ts.rows(v, width)]


RUNNING = repo("web", [stage("01-a", "in_progress", phase="worker", started_at=iso(130),
                             agent={"pid": 42, "role": "worker", "state": "running", "tokens": 12000,
                                    "activity": "Write hello.txt"})])
IDLE = repo("docs", [stage("01-z", "completed", commit="abcdef1234567", completed_at=iso(3600))])
HALTED = repo("api", [stage("03-c", "pending")], [need("halted", marker="token-cap", summary="halted: token-cap")],
              tokens_spent=1_000_000, token_cap_total=1_000_000)
STALLED = repo("lib", [stage("04-d", "completed", completed_at=iso(60)),
                       stage("05-e", "stalled", marker="worker_envelope_missing_after_exit")],
               [need("stalled", "05-e", marker="worker_envelope_missing_after_exit")])
CONFLICT = repo("app", [stage("01-a", "completed", completed_at=iso(60)),
                        stage("02-b", "merge_conflict", marker="merge_conflict: shared.txt")],
                [need("merge_conflict", "02-b", marker="merge_conflict: shared.txt")])
STUCK = repo("cli", [stage("07-g", "in_progress", phase="verifier",
                           agent={"pid": 77, "role": "verifier", "state": "stuck", "reason": "log silent 6m"})],
             [need("stuck", "07-g", pid=77, role="verifier", marker="log silent 6m")])
PARKED = repo("ops", [stage("08-h", "pending")], [need("parked", summary="parked until 09:00Z (usage limit)")])
UNSUPERVISED = repo("bin", [stage("09-u", "in_progress", phase="worker")],
                   [need("unsupervised", "09-u", pid=88, role="worker", marker="its runner is gone")])
STOPPED = repo("etc", [stage("10-s", "stopped", marker="stopped_by_operator")],
               [need("stopped", "10-s", marker="stopped_by_operator")])


@pytest.mark.parametrize("repos,expected", [
    # a halt, then stopped stages in the needs-you order, then a stuck agent, a park, what runs, what idles
    ((IDLE, RUNNING, PARKED, STUCK, CONFLICT, STALLED, HALTED),
     ["api", "  03-c", "lib", "  05-e", "  04-d", "app", "  02-b", "  01-a", "cli", "  07-g", "ops", "  08-h",
      "web", "  01-a", "docs", "  01-z"]),
    # repos with nothing needing a person: running first, then by name
    ((IDLE, RUNNING), ["web", "  01-a", "docs", "  01-z"]),
    ((), []),
])
def test_what_needs_a_person_comes_first(repos, expected):
    assert order(view(*repos)) == expected


def test_within_a_repo_stopped_then_running_then_pending_then_the_last_three_completed():
    stages = [stage(f"0{n}-done", "completed", completed_at=iso(1000 - n)) for n in range(1, 6)]
    stages += [stage("10-next", "pending"), stage("11-later", "pending"), stage("09-runs", "in_progress"),
               stage("08-failed", "failed", marker="acceptance_failed"), stage("07-blocked", "secret_blocked")]
    r = repo("big", stages, [need("secret_blocked", "07-blocked"), need("failed", "08-failed")])
    assert order(view(r)) == ["big", "  08-failed", "  07-blocked", "  09-runs", "  10-next", "  11-later",
                              "  05-done", "  04-done", "  03-done"]


@pytest.mark.parametrize("r,sid,parts,style", [
    (STALLED, "05-e", ["! 05-e", "stalled", "worker_envelope_missing_after_exit"], "red"),
    (CONFLICT, "02-b", ["! 02-b", "merge_conflict", "merge_conflict: shared.txt"], "red"),
    (STUCK, "07-g", ["! 07-g", "stuck", "verifier pid 77 (log silent 6m)"], "red"),
    (UNSUPERVISED, "09-u", ["! 09-u", "unsupervised", "worker pid 88 (its runner is gone)"], "red"),
    (STOPPED, "10-s", ["! 10-s", "stopped", "stopped_by_operator"], "red"),
    (RUNNING, "01-a", ["> 01-a", "worker", "running  12k tok  Write hello.txt", "2m"], "green"),
    (IDLE, "01-z", ["01-z", "completed", "abcdef1234", "1h00m"], "dim"),
    (HALTED, "03-c", ["03-c", "pending"], ""),
])
def test_a_stage_row_says_what_it_is_and_what_it_waits_for(r, sid, parts, style):
    (row,) = [x for x in ts.rows(view(r), 100) if x.stage_id == sid]
    text = ts.text_of(list(row.line))
    assert all(p in text for p in parts), text
    assert row.style == style
    assert len(text) <= 100


@pytest.mark.parametrize("r,parts", [
    (HALTED, ["api", "HALTED: token-cap", "tok 1M/1M"]),
    (STALLED, ["lib", "needs you: 1"]),
    (PARKED, ["ops", "parked until 09:00Z (usage limit)"]),
    (RUNNING, ["web", "running 1"]),
    (IDLE, ["docs", "idle"]),
])
def test_a_repo_row_says_halted_needing_parked_running_or_idle(r, parts):
    row = ts.rows(view(r), 120)[0]
    assert all(p in ts.text_of(list(row.line)) for p in parts)


def test_nothing_from_a_file_reaches_the_screen_as_an_escape():
    hostile = repo("evil\x1b]0;owned\x07", [stage("01-x\x1b[2J", "stalled", marker="\x1b[31mred\x1b[0m\rgone")],
                   [need("stalled", "01-x\x1b[2J", marker="\x1b[31mred\x1b[0m\rgone")])
    frame = ts.render(view(hostile), ts.UI(), {"events": ["\x1b[1mloud\x07"], "role": "worker"}, 80, 24)
    assert "\x1b" not in frame.text() and "\x07" not in frame.text() and "\r" not in frame.text()


# --------------------------------------------------------------------------- the frame

ALL = (HALTED, STALLED, CONFLICT, STUCK, PARKED, RUNNING, IDLE)


@pytest.mark.parametrize("width,height", [(80, 24), (200, 50), (120, 30)])
@pytest.mark.parametrize("zoom", [False, True])
def test_a_frame_fills_the_terminal_exactly(width, height, zoom):
    frame = ts.render(view(*ALL), ts.UI(zoom=zoom), {"events": [f"step {n}" for n in range(100)], "role": "worker"},
                      width, height)
    assert len(frame.lines) == height
    assert all(len(ts.text_of(line)) <= width for line in frame.lines)
    assert frame.regions["header"] == (0, 3) and frame.regions["footer"] == (height - 1, height)
    top, bottom = frame.regions["detail"]
    assert bottom == height - 1 and "1 activity" in ts.text_of(frame.lines[top])
    shown = frame.text().splitlines()
    assert shown[top + 1:bottom][-1].strip() == "step 99"  # the activity follows the log's end
    if zoom:
        assert frame.regions["list"] == (3, 4)


def test_the_header_says_when_the_controller_ticked_what_schedules_it_and_spend_against_caps():
    frame = ts.render(view(*ALL), ts.UI(), None, 80, 24)
    head = frame.text().splitlines()[:3]
    assert head[0].startswith("autometta top") and "7 repos" in head[0] and "needs you: 5" in head[0]
    assert head[1] == "controller: last tick 42s ago; run by cron"
    assert head[2] == "spend today: $0.41, 18.2k tokens, 3 runs  caps: nearest api tokens 1M/1M (100%)"


@pytest.mark.parametrize("controller,expected,style", [
    ({"last_tick": None, "schedule": ""}, "controller: no tick has run yet; nothing schedules it "
                                          "(autometta install-cron)", "yellow"),
    ({"last_tick": NOW - 1000, "schedule": "a systemd timer"}, "controller: last tick 16m ago (WARN); "
                                                                "run by a systemd timer", "yellow"),
    ({"last_tick": NOW - 7200, "schedule": None}, "controller: last tick 2h00m ago (STALE); "
                                                  "schedule: not checked yet", "red"),
])
def test_the_controller_line(controller, expected, style):
    line = ts.controller_line(view(controller=controller))
    assert ts.text_of(line) == expected
    assert line[1][1] == style


@pytest.mark.parametrize("width,height", [(79, 24), (80, 23), (40, 10)])
def test_a_terminal_too_small_gets_one_line_naming_status_watch(width, height):
    frame = ts.render(view(*ALL), ts.UI(), None, width, height)
    assert len(frame.lines) == height
    start, end = frame.regions["error"]
    said = " ".join(ts.text_of(line) for line in frame.lines[start:end])
    assert said == ts.too_small(width, height) and said.startswith(f"terminal too small ({width}x{height})")
    assert all(len(ts.text_of(line)) <= width for line in frame.lines)
    assert all(not ts.text_of(line) for line in frame.lines[end:])
    assert "status --watch" in ts.too_small(width, height)


@pytest.mark.parametrize("width", [80, 200])
def test_the_footer_shows_every_action_key_and_fits(width):
    text = ts.text_of(ts.footer(ts.UI(), width))
    assert len(text) <= width
    for key, what in (("s", "stop"), ("r", "requeue"), ("m", "merge"), ("h", "unhalt"), ("t", "tick"),
                      ("a", "attach"), ("?", "help"), ("q", "quit")):
        assert f"{key} {what}" in text
    assert ("enter detail" in text) == (width >= 100)


def test_read_only_shows_no_action_keys():
    text = ts.text_of(ts.footer(ts.UI(read_only=True), 80))
    assert text.startswith("READ-ONLY") and "q quit" in text and "? help" in text
    assert not re.search(r"\b[srmhta] (stop|requeue|merge|unhalt|tick|attach)\b", text)


def test_the_confirmation_names_the_command_it_runs():
    action = ts.Action("r", "requeue 05-e in lib", ("requeue", "/src/my lib", "05-e"))
    text = ts.text_of(ts.footer(ts.UI(confirm=action), 80))
    assert text.startswith("requeue 05-e in lib? y/N  runs: autometta requeue '/src/my lib' 05-e")


def test_help_lists_each_key_and_its_command():
    frame = ts.render(view(*ALL), ts.UI(help=True), None, 80, 24)
    text = frame.text()
    assert "s        stop         runs: autometta stop REPO STAGE_ID" in text
    assert "m        merge        runs: autometta requeue REPO STAGE_ID --retry-merge" in text
    assert "h        unhalt       runs: autometta tick --reset-halt --repo REPO" in text


# --------------------------------------------------------------------------- the detail tabs

def test_the_activity_tab_heads_with_the_agent_and_lists_its_log_in_words():
    d = {"stage_id": "01-a", "role": "worker", "family": "claude", "pid": 42, "state": "running", "alive": True,
         "elapsed_seconds": 130, "tokens": 12000, "log": "/src/web/state/logs/01-a-worker.log",
         "events": ["started (claude-sonnet-4-6)", "Write plan.md", "$ pytest -q"]}
    text = [ts.text_of(line) for line in ts.activity_lines(d, 80)]
    assert text == ["worker (claude) pid 42  running  2m  12k tok", "log: /src/web/state/logs/01-a-worker.log",
                    "  started (claude-sonnet-4-6)", "  Write plan.md", "  $ pytest -q"]
    repo_d = {"agents": [{"stage": "01-a", "role": "worker", "family": "codex", "pid": 9, "state": "stuck",
                          "elapsed_seconds": 400, "tokens": None, "activity": "$ make"}]}
    lines = ts.activity_lines(repo_d, 80)
    assert ts.text_of(lines[0]).startswith("01-a  worker codex pid 9  stuck") and lines[0][0][1] == "red"
    assert ts.text_of(lines[1]) == "    > $ make"


def test_the_diff_tab_colours_the_diff():
    d = {"head": "autometta/02-b in /w (not landed)", "diffstat": " a.txt | 1 +", "diff":
         "diff --git a/a.txt b/a.txt\n--- a/a.txt\n+++ b/a.txt\n@@ -1 +1 @@\n-old\n+new\n"}
    lines = ts.diff_lines(d, 80)
    styles = {ts.text_of(line): line[0][1] for line in lines}
    assert styles["+new"] == "green" and styles["-old"] == "red" and styles["@@ -1 +1 @@"] == "cyan"
    assert styles["+++ b/a.txt"] == "bold"
    assert [ts.text_of(x) for x in ts.diff_lines({"diffstat": "", "kind": "worktree"}, 80)] == ["(no changes)"]


def test_the_verdict_tab_leads_with_what_to_do_then_each_criterion_with_evidence():
    d = {"needs": [need("merge_conflict", "02-b", summary="02-b: merge_conflict: shared.txt",
                        command="autometta requeue --retry-merge /src/app 02-b", note="after you resolve it")],
         "stage_id": "02-b", "status": "merge_conflict", "marker": "merge_conflict: shared.txt", "overall": "PASS",
         "verifier_identity": "Codex <c@x>", "headline": "all good",
         "criteria": [{"id": 1, "criterion": "hello.txt says hello.", "verdict": "PASS", "evidence": "hello.txt:1"}],
         "look": "autometta show /src/app 02-b"}
    text = [ts.text_of(line) for line in ts.verdict_lines(d, 80)]
    # what needs you, as observe.needs words it for every text view
    assert text[:3] == ["needs you:", "  02-b: merge_conflict: shared.txt",
                        "      -> autometta requeue --retry-merge /src/app 02-b  (after you resolve it)"]
    assert text[1:3] == ["  " + x for x in needs.lines([needs.Need(**d["needs"][0])])]
    assert "verdict PASS by Codex <c@x>" in text and "headline: all good" in text
    assert "  1  PASS  hello.txt says hello." in text and "           evidence: hello.txt:1" in text
    assert text[-1] == "the whole review: autometta show /src/app 02-b"


def test_the_log_tab_shows_the_time_and_marks_the_stage_s_lines():
    d = {"stage_id": "02-b", "lines": ["2026-12-04T19:04:37Z stage 02-b merging onto master",
                                       "2026-12-04T19:04:38Z idle: no pending stage", "an old untimed line"]}
    lines = ts.log_lines(d, 80)
    assert [ts.text_of(x) for x in lines] == ["19:04:37Z stage 02-b merging onto master",
                                             "19:04:38Z idle: no pending stage", "an old untimed line"]
    assert [x[0][1] for x in lines] == ["bold", "", ""]


@pytest.mark.parametrize("total,height,scroll,bottom,shown,clamped", [
    (10, 4, 0, True, [6, 7, 8, 9], 0),
    (10, 4, 2, True, [4, 5, 6, 7], 2),
    (10, 4, 99, True, [0, 1, 2, 3], 6),
    (10, 4, 0, False, [0, 1, 2, 3], 0),
    (10, 4, 99, False, [6, 7, 8, 9], 6),
    (3, 4, 5, True, [0, 1, 2], 0),
])
def test_a_detail_window(total, height, scroll, bottom, shown, clamped):
    lines = [[(str(n), "")] for n in range(total)]
    got, at = ts.window(lines, height, scroll, bottom)
    assert [int(ts.text_of(x)) for x in got] == shown and at == clamped


# --------------------------------------------------------------------------- keys

ITEMS = ts.rows(view(HALTED, STALLED, RUNNING), 80)  # api, 03-c, lib, 05-e, 04-d, web, 01-a


def key(ui: ts.UI, k: str, items=ITEMS):
    return ts.on_key(ui, k, items, list_height=7, detail_height=12)


def selected(ui: ts.UI) -> Any:
    return ui.selected


@pytest.mark.parametrize("start,k,index", [
    (0, "j", 1), (0, "down", 1), (3, "k", 2), (3, "up", 2), (0, "k", 0), (6, "j", 6), (2, "end", 6), (5, "home", 0),
])
def test_moving_the_selection(start, k, index):
    ui, effect = key(replace(ts.UI(), index=start), k)
    assert effect is None and ui.index == index and ui.selected == ITEMS[index].key


def test_the_selection_follows_its_row_when_the_list_reorders():
    ui = replace(ts.UI(), selected=("/src/web", "01-a"), index=6)
    reordered = ts.rows(view(RUNNING, IDLE), 80)  # web first now
    assert ts.resolve(ui, reordered) == 1
    gone = replace(ts.UI(), selected=("/src/gone", None), index=3)
    assert ts.resolve(gone, ITEMS) == 3  # its place, when the row left


@pytest.mark.parametrize("k,tab", [("tab", "diff"), ("right", "diff"), ("btab", "log"), ("3", "verdict"),
                                   ("4", "log"), ("1", "activity")])
def test_tabs(k, tab):
    ui, effect = key(ts.UI(), k)
    assert ui.tab == tab and effect is None


def test_enter_opens_the_detail_and_up_down_then_scroll_it():
    ui, _ = key(replace(ts.UI(), index=6), "enter")
    assert ui.zoom
    ui, _ = key(ui, "k")
    assert ui.index == 6 and ui.scroll == 1  # the activity tab: up goes back in the log
    ui, _ = key(ui, "pgup")
    assert ui.scroll == 12
    ui, _ = key(ui, "esc")
    assert not ui.zoom and ui.scroll == 0


@pytest.mark.parametrize("index,k,argv", [
    (3, "r", ("requeue", "/src/lib", "05-e")),
    (3, "m", ("requeue", "/src/lib", "05-e", "--retry-merge")),
    (6, "s", ("stop", "/src/web", "01-a")),
    (0, "h", ("tick", "--reset-halt", "--repo", "/src/api")),
    (1, "h", ("tick", "--reset-halt", "--repo", "/src/api")),  # a stage's row: its repo's halt
    (0, "t", ("tick",)),
    (5, "a", ("attach", "/src/web")),
])
def test_an_action_asks_first_then_runs_its_command(index, k, argv):
    ui, effect = key(replace(ts.UI(), index=index), k)
    assert effect is None and ui.confirm is not None and ui.confirm.argv == argv
    done, effect = key(ui, "y")
    assert effect == ui.confirm and done.confirm is None and done.message[0].startswith("running autometta ")
    cancelled, effect = key(ui, "n")
    assert effect is None and cancelled.confirm is None and cancelled.message[0].startswith("cancelled")


def test_tick_in_a_repo_s_top_ticks_that_repo():
    ui, _ = key(ts.UI(scope="/src/web"), "t")
    assert ui.confirm.argv == ("tick", "--repo", "/src/web")


@pytest.mark.parametrize("k", ["s", "r", "m"])
def test_a_stage_action_on_a_repo_row_says_to_select_a_stage(k):
    ui, effect = key(ts.UI(), k)
    assert effect is None and ui.confirm is None and "select a stage of api first" in ui.message[0]


@pytest.mark.parametrize("k", list(ts.ACTION_KEYS))
def test_read_only_runs_nothing(k):
    ui, effect = key(ts.UI(read_only=True, index=3), k)
    assert effect is None and ui.confirm is None and "read-only" in ui.message[0]


def test_quit_and_help():
    assert key(ts.UI(), "q")[1] == "quit"
    ui, _ = key(ts.UI(), "?")
    assert ui.help
    closed, effect = key(ui, "x")
    assert not closed.help and effect is None
    assert key(ui, "q")[1] == "quit"


def test_a_message_clears_on_the_next_key():
    ui, _ = key(ts.UI(message=("r: requeued", "green")), "j")
    assert ui.message is None


@pytest.mark.parametrize("offset,index,height,total,expected", [
    (0, 3, 5, 20, 0), (0, 5, 5, 20, 1), (10, 4, 5, 20, 4), (0, 19, 5, 20, 15), (18, 19, 5, 20, 15), (3, 1, 5, 4, 0),
])
def test_the_list_scrolls_as_little_as_needed(offset, index, height, total, expected):
    assert ts.scroll_into_view(offset, index, height, total) == expected


def test_the_id_column_is_as_wide_as_the_longest_id_so_a_marker_fits_at_80():
    r = repo("lib", [stage("05-e", "stalled", stopped_at=iso(60))],
             [need("stalled", "05-e", marker="worker_envelope_missing_after_exit", since=iso(60))])
    (row,) = [x for x in ts.rows(view(r), 80) if x.stage_id == "05-e"]
    text = ts.text_of(list(row.line))
    assert text.split() == ["!", "05-e", "stalled", "worker_envelope_missing_after_exit", "1m"] and len(text) <= 80
    long_id = "12-" + "x" * 60
    r = repo("lib", [stage(long_id, "pending"), stage("01-a", "pending")])
    assert [len(ts.text_of(list(x.line))) <= 80 for x in ts.rows(view(r), 80)] == [True] * 3
    assert ts.id_column([long_id], 80) == 20 and ts.id_column([long_id], 200) == 32 and ts.id_column([], 80) == 8


@pytest.mark.parametrize("width", [80, 200])
def test_the_verdict_tab_says_what_needs_you_as_observe_needs_does_wrapped_never_mid_word(width):
    item = need("merge_conflict", "02-b", summary="02-b: merge_conflict: shared.txt", since=iso(90),
                command="autometta requeue --retry-merge /home/someone/src/a-rather-long-folder/app 02-b",
                note="after you resolve it on autometta/02-b in /home/someone/src/a-rather-long-folder/app/"
                     ".autometta/worktrees/02-b and commit")
    text = [ts.text_of(line) for line in ts.need_lines([item], NOW, width)]
    said = needs.lines([needs.Need(**item)], now=NOW)
    assert said[0].endswith("(since 1m ago)")
    assert text[0] == "needs you:" and all(len(line) <= width for line in text)
    assert " ".join(text[1:]).split() == " ".join(said).split()  # the same words, none broken
    if width == 200:  # the command whole on one line, the note after it
        assert text[2].startswith(f"      -> {item['command']}  (after you")

"""Command-line wiring only: each subcommand lives in ``autometta/commands/``.

A command module exposes ``register(parser)`` to add its arguments and
``run(args) -> int``, its docstring the command's help. A module of two
commands (an install and its uninstall) has a class for each, with the same
two functions and docstring, named after a colon (``crontab:Install``). This
file only collects them, so adding a command is one module plus one line in
:data:`COMMANDS`.
"""

from __future__ import annotations

import importlib
import os
import sys


TYPE_CHECKING = False  # not typing's: ``--version`` imports no more than it needs (and no parser)
if TYPE_CHECKING:
    import argparse
    from typing import List, Optional, Sequence

#: (module name under autometta.commands[:its class for that command], command name, one-line help)
COMMANDS = [
    ("init_host", "init-host", "create the controller home (~/.phat-controller)"),
    ("init", "init", "init-host, then subscribe a repo"),
    ("subscribe", "subscribe", "register a repo with the controller"),
    ("unsubscribe", "unsubscribe", "remove a repo from the controller"),
    ("new_card", "new-card", "write a stage card from the template, cross-family pair filled in"),
    ("lint_card", "lint-card", "check stage cards against the orchestrator checklist"),
    ("add_stage", "add-stage", "queue a stage card in a repo's state.yaml"),
    ("dispatch", "dispatch", "start a card's worker now, by hand, without the queue"),
    ("verify", "verify", "run a card's acceptance command and cross-family verifier by hand"),
    ("accept", "accept", "commit a card's work on a PASS verdict, as the tick would"),
    ("list_cards", "list-cards", "list a repo's stage cards and their status"),
    ("status", "status", "what needs you, then one row per subscribed repo"),
    ("heartbeat", "heartbeat",
     "check every registered agent: running, quiet, stuck, over-budget, unsupervised, exited"),
    ("watch", "watch", "wait for one registered agent to exit (0) or get stuck (2)"),
    ("ticker", "ticker", "live view of what needs you, running agents, recent exits and the queue"),
    ("top", "top", "one screen to watch and steer every agent: what needs you first, and keys to act"),
    ("log", "log", "print (or --follow) the controller's tick log"),
    ("attach", "attach", "open the tmux viewer for a repo (status, log, agents)"),
    ("dashboard", "dashboard", "write the HTML dashboard (queues, agents, spend) and print its path"),
    ("report", "report", "the morning summary: landed, stopped, needs you, spend"),
    ("show", "show", "the review of one stage: criteria and verdict, change, what the agents did, timeline"),
    ("events", "events", "list the events sent (or owed) to you; resend one that did not arrive"),
    ("register_agent", "register-agent", "register a manually started agent for heartbeat and watch"),
    ("check_deps", "check-deps", "check the tools autometta uses"),
    ("tick", "tick", "move each subscribed repo one step (run it from cron or launchd); --dry-run: what it would do"),
    ("stop", "stop", "stop a stage in flight now (every process it started); it waits as stopped"),
    ("requeue", "requeue", "put a stopped stage back in the queue"),
    ("panel", "panel", "run a stage's verifier panel again, read-only, and print its synthesis"),
    ("retro_grade", "retro-grade", "re-judge completed stages with today's rubric in one API batch (a report)"),
    ("crontab:Install", "install-cron", "run the tick from your crontab every few minutes"),
    ("crontab:Uninstall", "uninstall-cron", "remove autometta's block from your crontab"),
    ("systemd_timer:Install", "install-systemd", "Linux: run the tick from a systemd user timer"),
    ("systemd_timer:Uninstall", "uninstall-systemd", "Linux: remove the systemd user timer"),
    ("launchagent:Install", "install-launchagent", "macOS: run a repo's tick from a LaunchAgent"),
    ("launchagent:Uninstall", "uninstall-launchagent", "macOS: remove a repo's LaunchAgent"),
    ("install_homebrew_local", "install-homebrew-local", "install the built pyz with Homebrew from a local tap"),
    ("vendor", "vendor", "copy the built pyz into a repo's tools/ with a pinned-version note"),
    ("auth", "auth", "billing routes per agent family: status, or check one without spending a token"),
    ("scan_secrets", "scan-secrets", "scan pending, staged or pushed changes for secrets"),
    ("install_guards", "install-guards", "install the secret scan as the repo's pre-commit and pre-push hooks"),
    ("demo", "demo", "run the whole loop on a scratch repo (no credentials needed)"),
    ("install_skill", "install-skill", "install the Claude Code skill and print the AGENTS.md section"),
]

#: Commands autometta launches as its own agents (autometta.verify); not in --help or the README.
HIDDEN_COMMANDS = [
    ("verify_api", "_verify-api", "internal: an API verifier (Anthropic or OpenAI)"),
    ("panel_run", "_panel-run", "internal: a verifier panel, from its plan file"),
]


def plain_doc(doc: str) -> str:
    """A module docstring as help text: RST markup (````x````, ``:func:`~a.b```, ``::``) made plain."""
    import re  # here: a command that runs needs none of this (start-up time)
    import textwrap

    text = textwrap.dedent(doc.strip("\n"))
    first, _, rest = text.partition("\n")
    text = first.strip() + ("\n" + textwrap.dedent(rest) if rest else "")
    text = re.sub(r":[a-z]+(?::[a-z]+)?:`(~?)([^`]+)`",
                  lambda m: m.group(2).rsplit(".", 1)[-1] if m.group(1) else m.group(2), text)
    text = re.sub(r"``([^`]+)``", r"\1", text)
    text = re.sub(r"(\S)::$", r"\1:", text, flags=re.M)
    text = re.sub(r"^\s*::$\n?", "", text, flags=re.M).strip()
    width = min(100, max(60, _columns() - 2))
    paragraphs = []
    for block in re.split(r"\n\s*\n", text):
        lines = block.split("\n")
        if any(line[:1].isspace() or line.lstrip().startswith(("- ", "* ", "| ")) for line in lines):
            paragraphs.append(block)  # a literal block, a list or a table keeps its lines
        else:
            paragraphs.append(textwrap.fill(" ".join(line.strip() for line in lines), width))
    return "\n\n".join(paragraphs) + "\n"


#: What a bare ``autometta`` adds under the usage, for someone trying it for the first time.
FIRST_STEP = ("New here? 'autometta demo' runs the whole loop on a scratch repo, no credentials needed; "
              "'autometta <command> --help' explains one command.")


def version_string() -> str:
    from .version import describe

    return describe()


def _columns() -> int:
    """``shutil.get_terminal_size().columns``: ``$COLUMNS``, else the terminal's width, else 80."""
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


def _argparse():
    """``argparse``, imported with a ``gettext`` that answers at once, where nothing imported gettext yet.

    argparse has gettext translate each of its words (the usage line, the group titles, the help of
    ``-h``) as a parser is built. CPython ships no catalog for them, so every answer is the words
    themselves; but finding that out (the locale's names, a file looked for per name, and importing
    gettext and locale first) costs every run more than its own parsing. autometta speaks English only,
    so argparse is given the same answers without the search. gettext is not left stubbed: anything
    that imports it later gets the real one.
    """
    if "argparse" in sys.modules or "gettext" in sys.modules:
        import argparse

        return argparse
    import types

    stub = types.ModuleType("gettext")
    stub.gettext = lambda message: message  # type: ignore[attr-defined]
    stub.ngettext = lambda singular, plural, n: singular if n == 1 else plural  # type: ignore[attr-defined]
    sys.modules["gettext"] = stub
    try:
        import argparse
    finally:
        if sys.modules.get("gettext") is stub:
            del sys.modules["gettext"]
    return argparse


def build_parser(only: Optional[str] = None) -> argparse.ArgumentParser:
    """The full parser, or (``only``) one that knows that command alone.

    Importing a command module, and making a parser for each, is the expensive
    part of start-up, so a run builds just the command it executes; ``--help``
    (before any command) builds them all, to list them.
    """
    argparse = _argparse()

    class _Formatter(argparse.HelpFormatter):
        """argparse's, sized without ``shutil``: argparse makes one for every argument added, and shutil
        imports bz2 and lzma, which cost every run (an idle tick) more than its own work."""

        def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                     width: Optional[int] = None) -> None:
            super().__init__(prog, indent_increment, max_help_position, _columns() - 2 if width is None else width)

    class _RawFormatter(_Formatter, argparse.RawDescriptionHelpFormatter):
        """A command's description is wrapped already (:func:`plain_doc`)."""

    class _Parser(argparse.ArgumentParser):
        """argparse, but usage errors print one line and exit 2 like every UserError; ``doc`` (a command's
        module docstring) becomes the description when help is printed, not on every run (:func:`plain_doc`
        costs a run more than its parsing)."""

        def __init__(self, *args, doc: Optional[str] = None, **kwargs) -> None:
            kwargs.setdefault("formatter_class", _Formatter)
            super().__init__(*args, **kwargs)
            self._doc = doc

        def format_help(self) -> str:
            if self._doc:
                self.description, self._doc = plain_doc(self._doc), None
            return super().format_help()

        def error(self, message: str):  # type: ignore[override]
            self.exit(2, f"{self.prog}: {message} (see '{self.prog} --help')\n")

    parser = _Parser(
        prog="autometta",
        description="Run coding agents unattended; every worker is checked by the other family.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and build commit")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for where, name, summary in COMMANDS + HIDDEN_COMMANDS:
        listed = {"help": summary} if not name.startswith("_") else {}
        if only is not None and name != only:
            continue
        module_name, _, attr = where.partition(":")
        module = importlib.import_module(f"autometta.commands.{module_name}")
        command = getattr(module, attr) if attr else module
        cmd = sub.add_parser(name, description=summary, doc=getattr(command, "__doc__", None),
                             formatter_class=_RawFormatter, **listed)
        command.register(cmd)
        cmd.set_defaults(_run=command.run)
    return parser


def _command_name(args: List[str]) -> Optional[str]:
    names = {name for _, name, _ in COMMANDS + HIDDEN_COMMANDS}
    for arg in args:
        if arg in names:
            return arg
        if not arg.startswith("-") or arg in ("-h", "--help"):
            return None  # not a command, or the list of them is asked for
    return None


def _imports_in() -> None:
    """A process start-up (the pyz's ``__main__.py``) has imported what the command needs, with the collector
    off: what it made lives as long as the process, so it is frozen out of every collection, and collection
    resumes for what the command does."""
    import gc

    gc.freeze()
    gc.enable()


def main(argv: Optional[Sequence[str]] = None, started: bool = False) -> int:
    args_list: List[str] = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] in ("--version", "version"):
        print(version_string())
        return 0
    parser = build_parser(only=_command_name(args_list))
    args = parser.parse_args(args_list)
    if started:
        _imports_in()
    debug = args.debug or os.environ.get("AUTOMETTA_DEBUG") == "1"
    if args.version:
        print(version_string())
        return 0
    if not getattr(args, "_run", None):
        parser.print_help(sys.stderr)
        print(f"\n{FIRST_STEP}", file=sys.stderr)
        return 2
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # the one error handler: a UserError is one line, anything else a crash log
        from .crash import handle

        return handle(exc, args.command, argv=args_list, debug=debug)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

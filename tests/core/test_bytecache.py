"""The pyz's bytecode cache (autometta/bytecache.py): used, shared safely, and never in the way.

Every run here is the built pyz in a child interpreter, with an audit hook
(a ``sitecustomize`` on PYTHONPATH) that names on stderr each file of the zip
compiled from source: a warm run compiles only the bootstrap, the three files that are read
before the cache can be (``__main__.py``, the package's ``__init__.py`` and
``bytecache.py`` itself).
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Set

import pytest

from tests.testing.pyz import pyz  # noqa: F401 - the fixture
from tests.testing.waits import wait_for


BOOT = {"__main__.py", "autometta/__init__.py", "autometta/bytecache.py"}
FILL = "autometta/bytecache_fill.py"  #: what writes the cache: loaded on a miss
FINDER = "autometta/bytecache_finder.py"  #: the cache's finder and loader: from the cache, once compiled
MARK = "compiled-from-zip: "
HOOK = f"""\
import sys

def _log_compiles(event, args):
    if event == "compile" and isinstance(args[1], str):
        sys.stderr.write({MARK!r} + args[1] + "\\n")

sys.addaudithook(_log_compiles)
"""


class Run(NamedTuple):
    code: int
    out: str
    err: str
    compiled: Set[str]  #: files of the pyz compiled from source, relative to it
    compiles: List[str]  #: the same, once per compile, in order

    @property
    def shown(self):
        return self.code, self.out, self.err


@pytest.fixture
def world(tmp_path) -> Dict[str, Path]:
    """A controller home with one idle subscribed repo, a compile hook, and where the cache goes."""
    from autometta.books import budget, state
    from autometta import home
    from autometta.paths import HomePaths, RepoPaths

    hp = HomePaths(tmp_path / "home")
    hp.subscribers.mkdir(parents=True)
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    paths = RepoPaths(repo)
    paths.state_dir.mkdir()
    state.save_state(paths, state.initial_state())
    budget.save_budget(paths, budget.initial_budget())
    (hp.subscribers / "repo.yaml").write_text(home.render_subscriber(repo, paths.manifest, 100))
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(HOOK)
    return {"home": hp.root, "hook": hook, "cache": tmp_path / "cache", "tmp": tmp_path}


def run(pyz: Path, world, *args: str, cache: Optional[Path] = None, limit_writes: bool = False,
        cwd: Optional[Path] = None) -> Run:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(PYTHONPATH=str(world["hook"]), PHAT_CONTROLLER_HOME=str(world["home"]),
               XDG_CACHE_HOME=str(cache or world["cache"]))

    def no_writes() -> None:  # even root cannot write a byte past RLIMIT_FSIZE
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))

    proc = subprocess.run([sys.executable, str(pyz), *args], env=env, cwd=str(cwd or world["tmp"]),
                          capture_output=True, text=True, timeout=120,
                          preexec_fn=no_writes if limit_writes else None)
    prefix = MARK + str(pyz) + os.sep
    lines = proc.stderr.splitlines(keepends=True)
    err = "".join(line for line in lines if not line.startswith(MARK))
    compiles = [line[len(prefix):].rstrip("\n") for line in lines if line.startswith(prefix)]
    return Run(proc.returncode, proc.stdout, err, set(compiles), compiles)


def folders(cache: Path) -> List[Path]:
    root = cache / "autometta" / "pyc"
    return sorted(root.iterdir()) if root.is_dir() else []


def entries(cache: Path) -> Dict[str, bytes]:
    (folder,) = folders(cache)
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def module_file(pyz: Path, name: str) -> str:
    """The file of the pyz a cache entry (a module name) was compiled from."""
    path = name.replace(".", "/")
    with zipfile.ZipFile(pyz) as archive:
        return path + "/__init__.py" if path + "/__init__.py" in archive.namelist() else path + ".py"


def test_a_second_run_compiles_nothing_and_prints_the_same(pyz, world):
    digest = pyz.read_bytes()
    first = run(pyz, world, "status")
    assert first.code == 0, first.err
    assert BOOT < first.compiled
    assert len(first.compiled) > 10, first.compiled
    (folder,) = folders(world["cache"])
    assert re.fullmatch(rf"[0-9a-f]{{16}}-{re.escape(sys.implementation.cache_tag)}", folder.name)
    assert folder.stat().st_mode & 0o777 == 0o700
    cached = sorted(folder.iterdir())
    assert {f"autometta.{n}" for n in ("cli", "commands.status", "paths")} <= {p.name for p in cached}
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in cached)
    second = run(pyz, world, "status")
    assert second.shown == first.shown
    assert second.compiled == BOOT
    assert second.compiles.count("autometta/bytecache.py") == 1  # not twice, as zipimport would
    assert pyz.read_bytes() == digest  # the archive itself is never touched


def test_a_copy_elsewhere_shares_the_cache_and_names_its_own_path(pyz, world):
    run(pyz, world, "tick", "--repo", "/nowhere")
    copy = world["tmp"] / "elsewhere" / "renamed.pyz"
    copy.parent.mkdir()
    shutil.copy2(pyz, copy)
    failed = run(copy, world, "--debug", "tick", "--repo", "/nowhere")
    assert failed.code == 1
    assert failed.compiled == BOOT
    frames = re.findall(r'File "([^"]+)", line \d+', failed.err)
    assert frames and all(f.startswith(str(copy) + os.sep) for f in frames if ".pyz" in f), failed.err
    assert "raise UserError(" in failed.err  # the source lines are still read from the zip
    assert len(folders(world["cache"])) == 1


DAMAGE = {  # a module each status run imports -> what is done to its cache file
    "autometta.cli": lambda data: b"\x00not bytecode\xff" * 40,
    "autometta.commands": lambda data: b"",  # a package
    "autometta.paths": lambda data: data[: len(data) // 2],
    "autometta.files": lambda data: data[:-10] + bytes([data[-10] ^ 0x40]) + data[-9:],  # one bit
    "autometta.errors": lambda data: data[:4] + b"\x00\x00\r\n" + data[8:],  # another interpreter's
    "autometta.home": lambda data: data[:8] + b"0123456789abcdef" + data[24:],  # another build's
    "autometta.books.state": lambda data: data[:28] + bytes([data[28] ^ 1]) + data[29:],  # package flag flipped
    "autometta.bytecache_finder": lambda data: data[:40],  # the cache's own finder, read by bytecache.install
}


def test_a_damaged_entry_is_compiled_again_and_rewritten(pyz, world):
    reference = run(pyz, world, "status")
    folder = folders(world["cache"])[0]
    for name, damage in DAMAGE.items():
        path = folder / name
        path.write_bytes(damage(path.read_bytes()))
    again = run(pyz, world, "status")
    assert again.shown == reference.shown
    assert again.compiled == BOOT | {module_file(pyz, name) for name in DAMAGE}
    assert run(pyz, world, "status").compiled == BOOT  # rewritten whole


def test_another_builds_cache_is_not_used(pyz, world):
    other = world["tmp"] / "other.pyz"
    shutil.copy2(pyz, other)
    with zipfile.ZipFile(other, "a") as archive:
        archive.writestr("autometta/_data/templates/zz-extra.md", "one more file\n")
    cache_b = world["tmp"] / "cache-b"
    run(other, world, "status", cache=cache_b)
    reference = run(pyz, world, "status", cache=world["tmp"] / "cache-ref")
    (theirs,) = folders(cache_b)
    (ours,) = folders(world["tmp"] / "cache-ref")
    assert theirs.name != ours.name
    folder = world["cache"] / "autometta" / "pyc" / ours.name
    folder.parent.mkdir(parents=True)
    shutil.copytree(theirs, folder)
    os.chmod(folder, 0o700)
    again = run(pyz, world, "status")
    assert again.shown == reference.shown
    assert again.compiled == reference.compiled  # nothing taken from the other build


def test_an_unwritable_cache_location_is_ignored_quietly(pyz, world):
    reference = run(pyz, world, "status", cache=world["tmp"] / "cache-ref")
    blocked = world["tmp"] / "a-file"
    blocked.write_text("not a folder\n")
    again = run(pyz, world, "status", cache=blocked)
    assert again.shown == reference.shown
    assert again.compiled == reference.compiled - {FILL, FINDER}


def test_a_folder_others_can_write_is_not_used(pyz, world):
    reference = run(pyz, world, "status")
    (folder,) = folders(world["cache"])
    os.chmod(folder, 0o777)
    before = entries(world["cache"])
    (world["cache"] / "autometta" / "schedule-health.json").unlink()  # status checks the schedule again
    again = run(pyz, world, "status")
    assert again.shown == reference.shown
    assert again.compiled == reference.compiled - {FILL, FINDER}  # every module from the zip, none from there
    assert entries(world["cache"]) == before


def test_a_read_only_cache_is_read_and_never_written(pyz, world):
    reference = run(pyz, world, "status", cache=world["tmp"] / "cache-ref")
    assert run(pyz, world, "status", "--help").code == 0  # warms the parser's modules only
    before = entries(world["cache"])
    (folder,) = folders(world["cache"])
    os.chmod(folder, 0o500)
    try:
        again = run(pyz, world, "status", limit_writes=True)
    finally:
        os.chmod(folder, 0o700)
    assert again.shown == reference.shown
    warm = {module_file(pyz, name) for name in before}
    assert again.compiled == reference.compiled - warm
    assert "autometta/cli.py" not in again.compiled
    assert entries(world["cache"]) == before
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_ticks_racing_to_fill_the_cache_all_work_and_leave_it_whole(pyz, world):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(PHAT_CONTROLLER_HOME=str(world["home"]), XDG_CACHE_HOME=str(world["cache"]))
    liveness = [subprocess.Popen([sys.executable, str(pyz), "tick", "--quiet"], env=env, cwd=str(world["tmp"]),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(4)]
    results = [(p.wait(timeout=120), p.stdout.read(), p.stderr.read()) for p in liveness]
    for p in liveness:
        p.stdout.close()
        p.stderr.close()
    assert [r[0] for r in results] == [0] * 4, results
    (folder,) = folders(world["cache"])
    assert not [p.name for p in folder.iterdir() if not p.name.startswith("autometta")]
    assert not [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]
    assert run(pyz, world, "tick", "--quiet").compiled == BOOT


def test_a_new_build_prunes_folders_of_old_ones(pyz, world):
    root = world["cache"] / "autometta" / "pyc"
    root.mkdir(parents=True)
    now = time.time()
    ages = {f"{i:016x}-cpython-00": i for i in range(12)}  # days since last used
    ages.update({"00000000000000aa-cpython-00": 45, ".trash-1-00000000000000bb-cpython-00": 0})
    for name, days in ages.items():
        (root / name).mkdir()
        (root / name / "autometta.x").write_bytes(b"old")
        os.utime(root / name, (now - days * 86400, now - days * 86400))
    assert run(pyz, world, "status", "--help").code == 0
    left = sorted(p.name for p in root.iterdir())
    (new,) = [name for name in left if name not in ages]
    assert left == sorted([new] + [f"{i:016x}-cpython-00" for i in range(9)])


def test_a_folder_in_use_is_marked_used_once_a_day(pyz, world):
    run(pyz, world, "status", "--help")
    (folder,) = folders(world["cache"])
    two_days_ago = time.time() - 2 * 86400
    os.utime(folder, (two_days_ago, two_days_ago))
    run(pyz, world, "status", "--help")
    assert folder.stat().st_mtime > time.time() - 3600


def test_version_is_answered_before_the_cache_as_autometta_version_says(pyz, world):
    """``--version`` is the line the build wrote into ``__main__.py``: nothing else is compiled, no cache made,
    and it is what autometta.version reads from the pyz's build info."""
    for args in (["--version"], ["version"], ["--version", "--json"]):
        shown = run(pyz, world, *args)
        assert shown.code == 0 and shown.err == "" and shown.compiled == {"__main__.py"}, shown
        assert folders(world["cache"]) == []
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    said = subprocess.run([sys.executable, "-I", "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                           "from autometta.version import describe; print(describe())", str(pyz)],
                          env=env, cwd=str(world["tmp"]), capture_output=True, text=True, timeout=60)
    assert said.returncode == 0 and said.stdout.startswith("autometta "), said.stderr
    assert shown.out == said.stdout


LAUNCHER = """\
import json, sys
from pathlib import Path
pyz, tmp, path, what = sys.argv[1:5]
sys.path.insert(0, pyz)
from autometta import bytecache
assert bytecache.install(), "no cache"
from autometta.agents import spawn as launch
if what == "self_argv":
    print(json.dumps(launch.self_argv("--version")))
else:
    spec = launch.LaunchSpec(argv=["sh", "-c", "echo ran"], cwd=Path(tmp), env={"PATH": path},
                             log_path=Path(tmp) / "agent.log", exit_path=Path(tmp) / "agent.exit.json")
    print(launch.launch(spec).pid)
"""


def test_the_runner_and_autometta_as_an_agent_use_the_tick_s_cache(pyz, world):
    """They get an agent's environment (here: PATH only), so the cache is named on their command line."""
    from autometta.agents import liveness, spawn

    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["XDG_CACHE_HOME"] = str(world["cache"])
    path = os.environ.get("PATH", os.defpath)

    def start(what: str) -> str:
        done = subprocess.run([sys.executable, "-I", "-c", LAUNCHER, str(pyz), str(world["tmp"]), path, what],
                              env=env, cwd=str(world["tmp"]), capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def runner_once() -> None:
        exit_file = world["tmp"] / "agent.exit.json"
        pid = int(start("runner"))
        try:
            wait_for(lambda: spawn.read_exit(exit_file) is not None, timeout=30)
        finally:
            liveness.signal_group(pid, 9)
        assert spawn.read_exit(exit_file)["exit_code"] == 0, (world["tmp"] / "agent.log").read_text()

    runner_once()
    (folder,) = folders(world["cache"])
    runner = folder / "autometta.agents.runner"
    assert runner.is_file()
    first = runner.stat().st_ino
    runner_once()
    assert runner.stat().st_ino == first  # read, not compiled and written again

    argv = json.loads(start("self_argv"))
    out = subprocess.run(argv, env={"PATH": path}, cwd=str(world["tmp"]), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.startswith("autometta "), out.stderr
    assert (folder / "autometta.version").is_file()

"""install-homebrew-local and vendor: the formula, the tap, the pinned copy.

The rendered formula is checked three ways: ``ruby -c`` (syntax), its text
(sha256 and URL of the pyz it was rendered from), and by running its
``install`` and ``test do`` blocks under a few lines of Ruby that stand in
for Homebrew's DSL, so the wrapper it writes is shown to run the pyz and
print the commit. With a fake ``brew`` on PATH the tap, the copy and the
brew calls are checked too.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.testing.repos import make_repo
from tests.testing.schedulers import calls, write_tool

RUBY = shutil.which("ruby")

# Just enough of Homebrew's formula DSL to run a formula's install and test blocks.
BREW_STUB = r'''
require "fileutils"
require "pathname"

class Pathname
  def install(*sources)
    mkpath
    sources.each do |src|
      pairs = src.is_a?(Hash) ? src.to_a : [[src, File.basename(src.to_s)]]
      pairs.each { |from, to| FileUtils.mv(from.to_s, (self / to).to_s) }
    end
  end

  def write(content)  # Homebrew's: never overwrite, create the folder
    raise "Will not overwrite #{self}" if exist?
    dirname.mkpath
    File.write(to_s, content)
  end
end

class Formula
  class << self
    attr_reader :fields, :deps, :test_block

    %i[desc homepage url version sha256 license].each do |name|
      define_method(name) { |value| (@fields ||= {})[name] = value }
    end

    def depends_on(name)
      (@deps ||= []) << name
    end

    def test(&block)
      @test_block = block
    end

    def inherited(sub)
      super
      $formula_class = sub
    end

    def [](name)
      raise "unknown dependency #{name}" unless name == "python@3"
      Struct.new(:opt_bin).new(Pathname.new(ENV.fetch("STUB_PYTHON_BIN")))
    end
  end

  def prefix
    Pathname.new(ENV.fetch("STUB_PREFIX"))
  end

  def libexec
    prefix / "libexec"
  end

  def bin
    prefix / "bin"
  end

  def shell_output(cmd)
    out = `#{cmd}`
    raise "#{cmd} failed" unless $?.success?
    out
  end

  def assert_match(expected, actual)
    raise "#{expected.inspect} not in #{actual.inspect}" unless actual.include?(expected)
  end
end

load ARGV[0]
formula = $formula_class.new
Dir.chdir(ARGV[1]) { formula.install }
formula.instance_eval(&$formula_class.test_block)
p [$formula_class.fields, $formula_class.deps]
'''



def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _build_info(pyz: Path) -> dict:
    with zipfile.ZipFile(pyz) as archive:
        return json.loads(archive.read("autometta/_build.json"))


@pytest.fixture
def no_brew(monkeypatch, bin_dir):
    """PATH with no brew on it (the real one, if any, is hidden)."""
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    assert shutil.which("brew") is None or pytest.skip("a real brew is on /usr/bin")


def test_without_brew_prints_the_formula_and_exits_1(run, no_brew, built_pyz):
    res = run("install-homebrew-local", "--pyz", str(built_pyz))
    assert res.code == 1
    assert "brew not found" in res.err and len(res.err.strip().splitlines()) == 1
    info = _build_info(built_pyz)
    formula = res.out[res.out.index("# Homebrew formula"):]
    assert f'sha256 "{_sha(built_pyz)}"' in formula
    expected = (f"file:///opt/homebrew/Library/Taps/local/homebrew-autometta/"
                f"autometta-{info['version']}-{info['commit']}.pyz")
    assert f'url "{expected}"' in formula
    assert f'version "{info["version"]}"' in formula
    assert 'depends_on "python@3"' in formula
    assert f'assert_match "(commit {info["commit"]}", shell_output("#{{bin}}/autometta --version")' in formula
    assert not re.search(r"__[A-Z0-9]+__", formula)
    head = formula[:formula.index("class Autometta")]
    assert "Placeholders" not in head and "#%" not in head  # the template's own notes are not rendered
    assert f"# autometta {info['version']}, commit {info['commit']}.\n" in head
    assert f"{info['version']}, {info['commit']}, file://" not in formula  # no note "filled in"


def test_dry_run_exits_0_and_downloads_nothing(run, no_brew, built_pyz):
    res = run("install-homebrew-local", "--pyz", str(built_pyz), "--dry-run", "--tap", "me/tools")
    assert res.code == 0, res.err
    assert "Homebrew tap: me/tools" in res.out and "Dry run only" in res.out
    assert "/Taps/me/homebrew-tools/Formula/autometta.rb" in res.out
    assert "http" not in res.out.replace('homepage "https://github.com/aw-pr/autometta-public"', "")


@pytest.mark.parametrize("tap", ["noslash", "a/b/c", "/x", "a/"])
def test_a_bad_tap_is_a_usage_error(run, no_brew, built_pyz, tap):
    res = run("install-homebrew-local", "--pyz", str(built_pyz), "--tap", tap)
    assert res.code == 2 and "owner/name" in res.err


@pytest.mark.skipif(RUBY is None, reason="ruby not installed (Debian: apt-get install ruby)")
def test_the_formula_is_valid_ruby_and_its_install_and_test_blocks_work(run, no_brew, built_pyz, tmp_path):
    res = run("install-homebrew-local", "--pyz", str(built_pyz), "--dry-run")
    formula = tmp_path / "autometta.rb"
    formula.write_text(res.out[res.out.index("# Homebrew formula"):res.out.index("\nDry run only")])
    check = subprocess.run([RUBY, "-c", str(formula)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True)
    assert check.returncode == 0 and "Syntax OK" in check.stdout, check.stderr

    # what brew would stage: the downloaded file under its URL's name
    stage = tmp_path / "stage"
    stage.mkdir()
    info = _build_info(built_pyz)
    shutil.copy(built_pyz, stage / f"autometta-{info['version']}-{info['commit']}.pyz")
    python_bin = tmp_path / "python" / "bin"
    python_bin.mkdir(parents=True)
    (python_bin / "python3").symlink_to(os.path.realpath(sys.executable))
    stub = tmp_path / "brew_stub.rb"
    stub.write_text(BREW_STUB)
    prefix = tmp_path / "Cellar" / "autometta" / info["version"]
    proc = subprocess.run([RUBY, str(stub), str(formula), str(stage)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=120,
                          env={**os.environ, "STUB_PREFIX": str(prefix), "STUB_PYTHON_BIN": str(python_bin)})
    assert proc.returncode == 0, proc.stderr
    assert '"python@3"' in proc.stdout
    wrapper = prefix / "bin" / "autometta"
    assert stat.S_IMODE(wrapper.stat().st_mode) == 0o755
    assert (prefix / "libexec" / "autometta.pyz").read_bytes() == built_pyz.read_bytes()
    out = subprocess.run([str(wrapper), "--version"], stdout=subprocess.PIPE, universal_newlines=True).stdout
    assert out.strip().endswith(f"(commit {info['commit']})") or f"(commit {info['commit']}-dirty)" in out


BREW = """\
tap_root = os.environ["FAKE_BREW_TAPS"]
installed = os.path.join(tap_root, ".installed")
if args[:1] == ["--repository"]:
    if len(args) == 2:
        owner, name = args[1].split("/")
        print(os.path.join(tap_root, owner, "homebrew-" + name))
    else:
        print(tap_root)
    sys.exit(0)
if args[:2] == ["tap-new", "--no-git"]:
    owner, name = args[2].split("/")
    os.makedirs(os.path.join(tap_root, owner, "homebrew-" + name, "Formula"))
    sys.exit(0)
if args[:2] == ["list", "--formula"]:
    sys.exit(0 if os.path.exists(installed) else 1)
if args[:1] in (["install"], ["reinstall"]):
    open(installed, "w").close()
    print("==> Installing " + args[1])
    sys.exit(0)
sys.exit(2)
"""


def test_with_brew_the_tap_gets_the_formula_and_a_copy_and_brew_installs(run, bin_dir, built_pyz, tmp_path,
                                                                         monkeypatch):
    taps = tmp_path / "taps"
    taps.mkdir()
    monkeypatch.setenv("FAKE_BREW_TAPS", str(taps))
    write_tool(bin_dir, "brew", BREW)
    res = run("install-homebrew-local", "--pyz", str(built_pyz))
    assert res.code == 0, res.err
    tap = taps / "local" / "homebrew-autometta"
    info = _build_info(built_pyz)
    copy = tap / f"autometta-{info['version']}-{info['commit']}.pyz"
    assert copy.read_bytes() == built_pyz.read_bytes()
    formula = (tap / "Formula" / "autometta.rb").read_text()
    assert f'sha256 "{_sha(copy)}"' in formula and f'url "{copy.as_uri()}"' in formula
    assert [c[0] for c in calls(bin_dir, "brew")] == ["--repository", "tap-new", "list", "install"]
    assert calls(bin_dir, "brew")[-1] == ["install", "local/autometta/autometta"]
    again = run("install-homebrew-local", "--pyz", str(built_pyz))
    assert again.code == 0, again.err
    assert calls(bin_dir, "brew")[-1] == ["reinstall", "local/autometta/autometta"]
    assert "tap-new" not in [c[0] for c in calls(bin_dir, "brew")[4:]]


# ------------------------------------------------------------------ vendor


def test_vendor_copies_the_pyz_and_pins_its_version(run, built_pyz, tmp_path):
    repo = make_repo(tmp_path / "proj")
    res = run("vendor", str(repo), "--pyz", str(built_pyz))
    assert res.code == 0, res.err
    copy = repo / "tools" / "autometta.pyz"
    assert copy.read_bytes() == built_pyz.read_bytes()
    assert stat.S_IMODE(copy.stat().st_mode) == 0o755
    info = _build_info(built_pyz)
    note = (repo / "tools" / "autometta.VERSION").read_text()
    assert f"version: {info['version']}\n" in note and f"commit: {info['commit']}\n" in note
    assert f"sha256: {_sha(built_pyz)}\n" in note
    assert "git -C" in res.out and "add tools/autometta.pyz tools/autometta.VERSION" in res.out
    version = subprocess.run([sys.executable, str(copy), "--version"], stdout=subprocess.PIPE,
                             universal_newlines=True, cwd=str(tmp_path)).stdout
    assert f"(commit {info['commit']}" in version
    status = subprocess.run(["git", "-C", str(repo), "status", "--porcelain"], stdout=subprocess.PIPE,
                            universal_newlines=True).stdout
    assert status == "?? tools/\n"  # nothing committed
    assert "unchanged" in run("vendor", str(repo), "--pyz", str(built_pyz)).out


def test_vendor_dry_run_and_non_repo(run, built_pyz, tmp_path):
    repo = make_repo(tmp_path / "proj")
    res = run("vendor", str(repo), "--pyz", str(built_pyz), "--dry-run")
    assert res.code == 0 and "would copy" in res.out and not (repo / "tools").exists()
    plain = tmp_path / "plain"
    plain.mkdir()
    res = run("vendor", str(plain), "--pyz", str(built_pyz))
    assert res.code == 1 and "git" in res.err

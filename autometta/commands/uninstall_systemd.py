"""Linux: stop and delete autometta's systemd user timer and service."""

from __future__ import annotations

import argparse

from ..schedule import systemd
from .common import note


def register(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    systemd.uninstall(say=print, note=note)
    return 0

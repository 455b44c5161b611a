"""Tests of autometta/schedule/ (and schedulememo.py): cron, launchd, systemd, Homebrew."""

"""Tests of autometta/commands/ that are about one command as a user runs it."""

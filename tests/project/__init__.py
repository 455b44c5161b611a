"""Checks of the project as a whole: docs, README, the build, imports, start-up, stdlib only."""

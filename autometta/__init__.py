"""autometta: run coding agents unattended, with cross-family verification."""

__version__ = "0.1.0"

"""One module per command: ``NAME``, ``register(parser)``, ``run(args) -> int``."""

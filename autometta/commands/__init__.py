"""One module per command, or per install/uninstall pair (a class each): ``register(parser)``, ``run(args)``."""

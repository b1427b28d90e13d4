"""One module per ``treasure`` subcommand; each defines ``register(subparsers, common)``."""

"""One module per ``treasure`` subcommand; each defines ``register(subparsers, common)``.

A new command also gets a line in :data:`treasure.cli.main.COMMANDS` (its ``treasure --help`` line):
the top-level parser is built from that table so that only the command being run is imported."""

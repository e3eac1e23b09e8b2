"""One module per ``ocrkit`` subcommand; each defines ``register(subparsers)``."""

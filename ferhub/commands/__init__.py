"""``ferhub`` subcommands: one module each, exposing ``add_arguments(parser)`` and ``run(args)``; their
one-line help lives in :data:`ferhub.cli.COMMANDS`."""

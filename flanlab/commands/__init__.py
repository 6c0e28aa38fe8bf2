"""One module per `flanlab` subcommand: add_arguments(parser) and run(args). See flanlab/cli.py."""

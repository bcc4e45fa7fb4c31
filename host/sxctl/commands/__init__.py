"""One module per sxctl verb: HELP, EXAMPLE, add_arguments(parser) and run(args) -> exit status."""

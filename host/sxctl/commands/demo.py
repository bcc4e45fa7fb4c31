"""sxctl demo: the main job, what `make demo` runs."""

HELP = "run the simulated plant end to end (what `make demo` runs)"
EXAMPLE = "sxctl demo"


def add_arguments(p):
    pass


def run(args):
    from .. import demo
    return demo.main()

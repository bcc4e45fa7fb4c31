"""sxctl completion: a shell completion script, generated from the command line itself."""
import shtab

HELP = "print a bash or zsh completion script for sxctl"
EXAMPLE = "sxctl completion bash > ~/.local/share/bash-completion/completions/sxctl"


def add_arguments(p):
    p.add_argument("shell", choices=("bash", "zsh"))


def run(args):
    from ..cli import parser

    print(shtab.complete(parser(), shell=args.shell))
    return 0

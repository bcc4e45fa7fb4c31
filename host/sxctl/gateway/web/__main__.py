"""python -m sxctl.gateway.web adduser NAME [--file FILE] [--password-stdin]: set up a web login."""
import argparse
import getpass
import sys

from ...errors import SxctlError
from . import auth


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m sxctl.gateway.web",
                                description="set up who may log in to the gateway's web view (stored hashed)")
    sub = p.add_subparsers(dest="verb", required=True)
    add = sub.add_parser("adduser", help="add a user, or give an existing one a new password")
    add.add_argument("name")
    add.add_argument("--file", default=None, help="users file (default $%s, else %s)" % (auth.ENV, auth.users_file()))
    add.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    args = p.parse_args(argv)
    path = args.file or auth.users_file()
    try:
        if args.password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = getpass.getpass("password for %s: " % args.name)
            if getpass.getpass("again: ") != password:
                raise SxctlError("the two passwords differ; nothing changed")
        auth.add_user(path, args.name, password)
    except SxctlError as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    print("%s can log in to the web view (users file %s; restart sxctl serve to apply)" % (args.name, path))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``python -m ship.localcloud serve|up|down|status``."""

from __future__ import annotations

import argparse
import json
import os
import sys

from ship.localcloud import DEFAULT_HOST, DEFAULT_PORT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ship.localcloud",
                                     description="The local cloud: AWS emulator + Fargate/ALB data plane.")
    sub = parser.add_subparsers(dest="command", required=True)
    default_port = int(os.environ.get("SHIP_LOCAL_PORT", DEFAULT_PORT))
    for name, helptext in (("serve", "run in the foreground"), ("up", "start detached"),
                           ("down", "stop"), ("status", "show status")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--host", default=DEFAULT_HOST)
        p.add_argument("--port", type=int, default=default_port)
        p.add_argument("--state-dir", default=os.environ.get("SHIP_LOCAL_STATE_DIR", ".ship/localcloud"))
        if name in ("serve", "up"):
            p.add_argument("--exit-with", type=int, metavar="PID", default=None,
                           help="stop the local cloud and its tasks when process PID exits "
                                "(default for up: $SHIP_LOCAL_EXIT_WITH)")
    args = parser.parse_args(argv)

    if args.command == "serve":
        from ship.localcloud.server import serve

        return serve(args.host, args.port, args.state_dir, exit_with=args.exit_with)

    from ship.errors import ShipError
    from ship.localcloud import control

    try:
        if args.command == "up":
            print(json.dumps(control.up(args.state_dir, host=args.host, port=args.port, exit_with=args.exit_with),
                             indent=2))
        elif args.command == "down":
            print("stopped" if control.down(args.state_dir) else "not running")
        else:
            info = control.status(args.state_dir, args.port, host=args.host)
            print(json.dumps(info, indent=2) if info else "not running")
            return 0 if info else 1
    except ShipError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The lstmlite command: `lstmlite demo`, and more subcommands as they arrive.

Errors print one line naming what was wrong and exit non-zero; no traceback.
"""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from .errors import LstmliteError


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import build_demo_model, run_demo
    run_demo(build_demo_model(), frames=args.frames)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lstmlite", description="Run recurrent networks one time step at a time.")
    commands = parser.add_subparsers(dest="command", metavar="command")
    commands.required = True
    demo = commands.add_parser("demo", help="stream the bundled example model")
    demo.add_argument("--frames", type=int, default=200, help="frames to stream (200)")
    demo.set_defaults(handler=_cmd_demo)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except (LstmliteError, OSError) as exc:
        print(f"lstmlite {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

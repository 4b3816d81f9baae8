"""The lstmlite command: `lstmlite demo`, and more subcommands as they arrive.

Errors print one line naming what was wrong and exit non-zero; no traceback.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import List, Optional

from .errors import LstmliteError


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import bundled_model_path, run_demo
    from .format import load
    path = args.model or bundled_model_path()
    print(f"loading {path}")
    run_demo(load(path), frames=args.frames)
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from .format import model_from_info, read_info
    info, buffer = read_info(args.file, verify_checksum=False)
    status = "ok" if info.checksum_ok else (f"MISMATCH (stored {info.checksum_stored:#010x}, "
                                            f"computed {info.checksum_computed:#010x})")
    print(f"file: {info.path} ({info.file_size} bytes)")
    print(f"format version: {info.version}; checksum (CRC32): {status}")
    if not info.checksum_ok:
        return 1
    model = model_from_info(info, buffer)
    tensor_bytes = sum(t.size for t in info.tensors.values())
    print(f"tensors: {len(info.tensors)}, {tensor_bytes} bytes "
          f"(overhead {info.file_size - tensor_bytes} bytes incl. alignment)")
    print("layers:")
    print(model.summary())
    for tensor in info.tensors.values():
        scale = f" scale={tensor.scale}" if tensor.scale else ""
        print(f"    {tensor.name:<24} {tensor.dtype:<8} {str(tensor.shape):<16}{scale}")
    streamable = "yes" if model.streamable else "no (reverse/bidirectional layers: run() only)"
    print(f"streamable: {streamable}")
    print("metadata:", json.dumps(info.metadata, indent=1, ensure_ascii=False)
          if info.metadata else "(none)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lstmlite", description="Run recurrent networks one time step at a time.")
    commands = parser.add_subparsers(dest="command", metavar="command")
    commands.required = True
    demo = commands.add_parser("demo", help="stream the bundled example model")
    demo.add_argument("--frames", type=int, default=200, help="frames to stream (200)")
    demo.add_argument("--model", help="a .lstm file instead of the bundled example")
    demo.set_defaults(handler=_cmd_demo)
    info = commands.add_parser("info", help="describe a .lstm file")
    info.add_argument("file", help="a .lstm file")
    info.set_defaults(handler=_cmd_info)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except BrokenPipeError:  # output piped into `head`: stop quietly (before OSError: it is one)
        sys.stdout = open(os.devnull, "w")
        return 0
    except (LstmliteError, OSError) as exc:
        print(f"lstmlite {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

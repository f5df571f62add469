"""Entry point of the `uplift` console script."""
from __future__ import annotations

import argparse
import importlib
import sys

from ..core.errors import UpliftError

# Subcommand modules under uplift.cli, in the order `uplift --help` lists them.
SUBCOMMANDS = ("edit", "animate", "segment", "lift", "deform", "render", "inpaint", "serve")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="uplift",
        description="Edit an object in a photo in 3D: segment, lift, deform, render, inpaint, composite.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMANDS:
        module = importlib.import_module(f".{name}", __package__)
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except UpliftError as exc:
        print(f"uplift {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"uplift {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

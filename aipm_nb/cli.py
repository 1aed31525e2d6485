"""The ``aipm-nb`` command: ``aipm-nb data`` (sample data)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from aipm_nb import config
from aipm_nb.errors import AipmNbError


def _cmd_data(args: argparse.Namespace) -> int:
    from aipm_nb.synthetic import write_sample_data

    paths = write_sample_data(args.out)
    for name, path in paths.items():
        print(f"{name:<12} {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aipm-nb", description="Notebook toolkit for AI product analysis."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("data", help="(re)generate the sample data")
    p.add_argument("--out", type=Path, default=config.DATA_DIR, help="folder (default: data/)")
    p.set_defaults(func=_cmd_data)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except AipmNbError as exc:
        print(f"aipm-nb: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

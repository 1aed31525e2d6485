"""The ``aipm-nb`` command.

* ``aipm-nb run [CONFIG]``: run the configured reports (exit 0 all ok, 1 a report failed,
  2 the configuration is invalid and nothing ran).
* ``aipm-nb validate [CONFIG]``: check parameters and sources without running (exit 2 on problems).
* ``aipm-nb list``: the templates and their parameters.
* ``aipm-nb data``: (re)generate the sample data.
* ``aipm-nb init [DIR]``: a new analysis project (templates, sample data, a starter reports.yml).
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from aipm_nb import resources
from aipm_nb.errors import AipmNbError, ConfigError
from aipm_nb.reports.redaction import redact


def _data_default() -> Path:
    """Where ``aipm-nb data`` writes: in a checkout the folder ``sample:`` sources read (the
    package's ``sample_data`` is a symlink to ``data/``); in an installed package ``./data``
    (never into site-packages).
    """
    sample = resources.sample_dir()
    return sample if sample.is_symlink() else Path("data")


def _cmd_data(args: argparse.Namespace) -> int:
    from aipm_nb.synthetic import write_sample_data

    paths = write_sample_data(args.out if args.out is not None else _data_default())
    for name, path in paths.items():
        print(f"{name:<12} {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


def _cmd_init(args: argparse.Namespace) -> int:
    from aipm_nb.project import init_project

    made = init_project(args.folder)
    print(f"made {len(made)} files in {args.folder}/: notebooks/ (the templates), data/ (sample "
          "data), reports.yml (one report per template)")  # fmt: skip
    print(f"next: cd {args.folder} && aipm-nb run    # every report -> reports/index.html")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from aipm_nb.reports.execute import IndexNotUpdated, RunInterrupted, run_reports

    try:
        run_id, results = run_reports(
            args.config,
            out=args.out,
            only=args.only or (),
            run_id=args.run_id,
            jobs=args.jobs,
            show_code=args.show_code,
            timeout=args.timeout,
            progress=not args.no_progress and sys.stderr.isatty(),
        )
    except RunInterrupted as exc:
        name = "SIGTERM" if exc.signum == signal.SIGTERM else "Ctrl-C"
        stopped = ", ".join(exc.stopped) or "none were running"
        print(
            f"aipm-nb: stopped by {name}; killed the running reports ({stopped}); the partial "
            f"run {exc.run_dir} is not listed in the index",
            file=sys.stderr,
        )
        return exc.exit_code
    except IndexNotUpdated as exc:
        print(f"aipm-nb: {exc}", file=sys.stderr)
        return 1
    failed = [r.name for r in results if r.status != "ok"]
    out = Path(args.out) if args.out is not None else Path(args.config).resolve().parent / "reports"
    print(
        f"run {run_id}: {len(results) - len(failed)} ok, {len(failed)} failed; "
        f"index: {out / 'index.html'}"
    )
    if failed:
        print(f"aipm-nb: failed reports: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from aipm_nb.reports.config import load_config, validate_config

    specs, base = load_config(args.config)
    problems = validate_config(specs, base, check_sources=True)
    for p in problems:
        print(f"aipm-nb: {p}", file=sys.stderr)
    if problems:
        return 2
    print(f"{args.config}: {len(specs)} reports OK")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from aipm_nb.reports.config import inspect_parameters

    for nb in sorted(Path(args.folder).glob("*.ipynb")):
        print(nb.as_posix())
        for name, p in inspect_parameters(nb).items():
            default = redact(repr(p["default"]))
            default = default if len(default) <= 60 else default[:57] + "..."
            help_ = f"  # {p['help']}" if p["help"] else ""
            print(f"  {name:<18} {p['type']:<6} = {default}{help_}")
    return 0


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds; got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The ``aipm-nb`` command line: run, validate, list, init, data."""
    parser = argparse.ArgumentParser(
        prog="aipm-nb", description="Notebook toolkit for AI product analysis."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run the reports of a YAML config")
    p.add_argument("config", nargs="?", default="reports.yml")
    p.add_argument("--only", nargs="+", metavar="NAME", help="run only these reports")
    p.add_argument("--run-id", help="name of the run folder (default: UTC time)")
    p.add_argument("--jobs", type=int, default=None, help="reports at once (default: cores)")
    p.add_argument("--out", default=None, help="output folder (default: reports/ beside config)")
    p.add_argument("--show-code", action="store_true", help="keep code cells in the HTML")
    p.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=600,
        help="wall-clock seconds per report (default 600)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("validate", help="check a config without running it")
    p.add_argument("config", nargs="?", default="reports.yml")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("list", help="templates and their parameters")
    p.add_argument("folder", nargs="?", default=str(resources.templates_dir()))
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("init", help="start an analysis project: templates, sample data, config")
    p.add_argument("folder", nargs="?", default="aipm-project", help="(default: aipm-project)")
    p.set_defaults(func=_cmd_init)

    p = sub.add_parser("data", help="(re)generate the sample data")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder (default: data/ of the checkout, where sample: sources read; ./data when "
        "aipm-nb is installed as a package)",
    )
    p.set_defaults(func=_cmd_data)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 1 a report failed, 2 bad input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        for line in str(exc).splitlines():
            print(f"aipm-nb: {line}", file=sys.stderr)
        return 2
    except AipmNbError as exc:
        print(f"aipm-nb: error: {redact(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("aipm-nb: interrupted; the partial run is not listed in the index", file=sys.stderr)
        return 130
    except OSError as exc:  # the environment (disk, permissions), not a bug: one line
        print(f"aipm-nb: error: {redact(str(exc))}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

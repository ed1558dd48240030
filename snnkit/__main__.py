"""Command line: ``python -m snnkit run|list``.

Examples::

    python -m snnkit list
    python -m snnkit run --profile smoke --jobs 2
    python -m snnkit run notebooks/quantization.ipynb --profile full --out out/full \\
        -p epochs 3 -p timesteps_schedule "[25, 10, 5]"
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .notebook import PROFILES, runner


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m snnkit",
                                     description="Run and list the snnkit notebooks.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="execute notebooks with papermill",
                         description="Execute notebooks; for notebooks/NAME.ipynb write "
                                     "OUT/NAME/{NAME.ipynb,results.json,figures/*.png}. "
                                     "A failed run leaves OUT/NAME untouched and its executed "
                                     "copy in OUT/NAME.failed/.")
    run.add_argument("notebooks", nargs="*", metavar="NOTEBOOK",
                     help="notebook paths or names in notebooks/ (default: all of notebooks/)")
    run.add_argument("--profile", choices=PROFILES, default="smoke",
                     help="smoke: seconds, for tests; full: the study's settings (default: smoke)")
    run.add_argument("--out", type=Path, default=None,
                     help=f"output folder (default: {runner.DEFAULT_OUT}/PROFILE)")
    run.add_argument("-p", "--param", nargs=2, action="append", default=[],
                     metavar=("NAME", "VALUE"),
                     help="set a parameter; VALUE is read as a Python literal, else a string "
                          "(repeatable)")
    run.add_argument("--jobs", "-j", type=int, default=1, help="notebooks run at once (default: 1)")
    run.add_argument("--timeout", type=float, default=None,
                     help="per-cell time limit in seconds (default: none)")
    run.add_argument("--no-progress", action="store_true", help="hide progress bars")

    lst = sub.add_parser("list", help="list notebooks and their parameters")
    lst.add_argument("notebooks", nargs="*", metavar="NOTEBOOK",
                     help="notebook paths or names (default: all of notebooks/)")
    return parser


def _cmd_run(args: argparse.Namespace) -> int:
    params = {}
    for name, value in args.param:
        params[name] = runner.parse_value(value)
    out = args.out if args.out is not None else runner.DEFAULT_OUT / args.profile
    paths = args.notebooks or None
    if paths is None and not runner.discover_notebooks():
        print(f"no notebooks found in {runner.NOTEBOOKS_DIR}", file=sys.stderr)
        return 1
    results = runner.run_notebooks(paths, args.profile, out, params, jobs=args.jobs,
                                   progress=not args.no_progress, timeout=args.timeout)
    print(runner.format_summary(results))
    failures = [r for r in results if not r.ok]
    for r in failures:
        print(runner.format_failure(r), file=sys.stderr)
    if failures:
        print(f"{len(failures)} of {len(results)} notebook(s) failed", file=sys.stderr)
        return 1
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    paths = ([runner.resolve_notebook(p) for p in args.notebooks] if args.notebooks
             else runner.discover_notebooks())
    if not paths:
        print(f"no notebooks found in {runner.NOTEBOOKS_DIR}")
    for path in paths:
        print(f"{path.stem}  ({path})")
        params = runner.notebook_parameters(path)
        if not params:
            print("    (no cell tagged 'parameters')")
        for p in params.values():
            kind = p.get("inferred_type_name") or ""
            note = f"  # {kind}" if kind and kind != "None" else ""
            if p.get("help"):
                note += ("  # " if not note else " - ") + p["help"]
            print(f"    {p['name']} = {p['default']}{note}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m snnkit`` and the ``snnkit`` script; returns the exit code."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            return _cmd_run(args)
        return _cmd_list(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

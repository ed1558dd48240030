"""Command line: ``python -m snnkit run|list|sweep|report|lab``.

Examples::

    python -m snnkit list
    python -m snnkit lab
    python -m snnkit run --profile smoke --jobs 2
    python -m snnkit run notebooks/quantization.ipynb --profile full --out out/full \\
        -p epochs 3 -p timesteps_schedule "[25, 10, 5]"
    python -m snnkit sweep notebooks/01_spatiotemporal_pca.ipynb --profile full --out out/vt \\
        --grid variance_threshold=0.95,0.99,0.999 --seeds 10 --jobs 2 --plot accuracy_pruned
    python -m snnkit report out/vt
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from . import stats
from .notebook import PROFILES, runner


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m snnkit",
                                     description="Run, list and open the snnkit notebooks.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="execute notebooks with papermill",
                         description="Execute notebooks; for notebooks/NAME.ipynb write "
                                     "OUT/NAME/{NAME.ipynb,results.json,figures/*.png}. "
                                     "A failed run leaves OUT/NAME untouched and its executed "
                                     "copy in OUT/NAME.failed/.")
    run.add_argument("notebooks", nargs="*", metavar="NOTEBOOK",
                     help="notebook paths or names in notebooks/ (default: all of notebooks/)")
    run.add_argument("--profile", choices=PROFILES, default="smoke",
                     help="smoke: seconds, for tests; full: the study's settings; paper: the paper's data "
                          "set, network and settings, on a GPU when present (default: smoke)")
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

    lst = sub.add_parser("list", help="list notebooks and their parameters",
                         description="For each notebook, every parameter with the value it "
                                     "takes in each profile, its help text and what it accepts.")
    lst.add_argument("notebooks", nargs="*", metavar="NOTEBOOK",
                     help="notebook paths or names (default: all of notebooks/)")

    lab = sub.add_parser(
        "lab", help="start JupyterLab the way the notebooks need it",
        description="Make JupyterLab save widget state with notebooks and git strip notebook outputs "
                    "(nbstripout filter), then start JupyterLab at the repository root. Arguments "
                    "after -- go to JupyterLab (python -m snnkit lab -- --port 8890).")
    lab.add_argument("--setup-only", action="store_true",
                     help="install the setting and the git filter, do not start JupyterLab (make env)")
    lab.add_argument("--no-setup", action="store_true", help="start JupyterLab without installing anything")
    lab.add_argument("lab_args", nargs=argparse.REMAINDER, metavar="-- JUPYTER_ARGS",
                     help="arguments passed to jupyter lab")

    sw = sub.add_parser(
        "sweep", help="run a notebook over a grid of parameters and seeds, with intervals",
        description="Run NOTEBOOK once per point of the grid and per seed (through the same "
                    "runner as `run`), into OUT/<run-id>/; then write OUT/sweep.csv (one row "
                    "per run), OUT/summary.csv (mean, std, 95%% t-interval and n per grid point) "
                    "and OUT/summary.png. Rerunning the same command skips finished points and "
                    "redoes failed or missing ones.")
    sw.add_argument("notebook", metavar="NOTEBOOK", help="notebook path or name in notebooks/")
    sw.add_argument("--out", type=Path, required=True, help="the sweep's output folder")
    sw.add_argument("--profile", choices=PROFILES, default="smoke", help="default: smoke")
    sw.add_argument("--grid", action="extend", nargs="+", default=[], metavar="NAME=V1,V2",
                    help="a parameter and its values, comma-separated; lists in brackets "
                         "(timesteps_schedule=[25,10,5],[10,5]); repeatable")
    sw.add_argument("--seeds", type=int, default=1,
                    help="number of seeds per grid point (default: 1; intervals need >= 2)")
    sw.add_argument("--seed-start", type=int, default=0, help="first seed (default: 0)")
    sw.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                    help="set a parameter for every run, as in `run` (repeatable)")
    sw.add_argument("--jobs", "-j", type=int, default=1,
                    help="local runs at once, each in a worker process (default: 1)")
    sw.add_argument("--scheduler", default=None, metavar="ADDRESS",
                    help="run on the Dask cluster of this scheduler (e.g. tcp://10.0.0.5:8786) "
                         "instead of locally")
    sw.add_argument("--shared-disk", action="store_true",
                    help="with --scheduler: workers write into OUT themselves (OUT must be the "
                         "same path on every machine); default: they return the files here")
    sw.add_argument("--connect-timeout", type=float, default=10.0,
                    help="seconds to wait for the scheduler (default: 10)")
    sw.add_argument("--threads", type=int, default=None,
                    help="torch threads per run (default: cores // runs at once); fix it to "
                         "compare runs made on different machines")
    sw.add_argument("--timeout", type=float, default=None, help="per-cell time limit in seconds")
    sw.add_argument("--plot", nargs="+", default=None, metavar="NUMBER",
                    help="recorded numbers to plot against --x (default: the first one)")
    sw.add_argument("--x", default=None, metavar="PARAM",
                    help="grid parameter on the figure's x axis (default: the first)")
    sw.add_argument("--compare", nargs=2, action="append", default=[], metavar=("A", "B"),
                    help="paired difference A - B per grid point, with its 95%% t-interval "
                         "(repeatable)")
    sw.add_argument("--dry-run", action="store_true",
                    help="check everything and list the points, run nothing")
    sw.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    rep = sub.add_parser(
        "report", help="one markdown table of the claims recorded by every run in a folder",
        description="Find every finished run under OUT (a `run --out` folder, a `sweep` folder, or "
                    "several), pool each claim's per-seed values over the runs of the same notebook "
                    "and grid point, decide it with the notebooks' one verdict rule (snnkit.claims) "
                    "and print one markdown table: paper, claim, paper's number, here (mean), 95%% "
                    "interval, seeds, verdict.")
    rep.add_argument("out", type=Path, metavar="OUT", help="the folder to read")
    rep.add_argument("--output", "-o", type=Path, default=None,
                     help="also write the table to this markdown file")
    return parser


def _cmd_report(args: argparse.Namespace) -> int:
    from .notebook.sweep import write_text
    from .report import report_table

    table, runs, skipped = report_table(args.out)
    for folder in skipped:
        print(f"left out (failed or unfinished): {folder}", file=sys.stderr)
    if not len(table):
        print(f"no claims recorded by the {len(runs)} finished run(s) under {args.out}", file=sys.stderr)
        return 1
    text = table.to_markdown() + "\n"
    print(text, end="")
    if args.output is not None:
        write_text(args.output, text)
    notebooks = len({r.notebook for r in runs})
    print(f"{len(table)} claim(s) from {len(runs)} run(s) of {notebooks} notebook(s)"
          + (f"; written to {args.output}" if args.output is not None else ""), file=sys.stderr)
    return 0


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
        print(runner.format_parameters(path))
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from .notebook import sweep

    grid = sweep.parse_grid(args.grid)
    fixed = {name: runner.parse_value(value) for name, value in args.param}
    names = list(grid)
    if args.x is not None and args.x not in names:
        raise ValueError(f"--x {args.x}: expected a grid parameter ({', '.join(names) or 'none given'})")
    if args.dry_run:
        seeds = list(range(args.seed_start, args.seed_start + max(args.seeds, 0)))
        sweep.validate(args.notebook, args.profile, grid, seeds, fixed)
        out = args.out.resolve()
        points = sweep.expand(grid, seeds)
        for point in points:
            state = "done" if sweep.finished(out, point) else "to run"
            print(f"{state:6}  {out / point.run_id}")
        print(f"{len(points)} point(s); nothing was run (--dry-run)")
        return 0
    try:
        result = sweep.run_sweep(args.notebook, args.profile, args.out, grid, args.seeds,
                                 seed_start=args.seed_start, fixed=fixed, jobs=args.jobs,
                                 scheduler=args.scheduler, shared_disk=args.shared_disk,
                                 threads=args.threads, timeout=args.timeout,
                                 progress=not args.no_progress,
                                 connect_timeout=args.connect_timeout)
    except KeyboardInterrupt:
        print(f"interrupted: finished points are kept in {args.out.resolve()} and no point is "
              "half written; rerun the same command to do the others", file=sys.stderr)
        return 130
    out, table, summary = result.out, result.table, result.summary
    run_now = len(result.outcomes)
    print(f"{len(result.points)} point(s): {run_now} run now, {len(result.skipped)} already done, "
          f"{len(result.failures)} failed")
    print(f"table:   {out / sweep.TABLE_NAME} ({len(table)} run(s))")
    print(f"summary: {out / sweep.SUMMARY_NAME} (per grid point: n, mean, std, 95% t-interval)")
    metrics = stats.numeric_columns(table, exclude=[*names, "seed", "run_id", sweep.RUN_SECONDS])
    chosen = args.plot if args.plot is not None else metrics[:1]
    if len(table) and chosen:
        if names:
            from .notebook import set_theme

            set_theme()
            x = args.x or names[0]
            fig = sweep.plot_summary(table, x, chosen, hue=[n for n in names if n != x])
            path = sweep.save_figure(fig, out / sweep.FIGURE_NAME)
            print(f"figure:  {path} ({', '.join(chosen)} against {x})")
        print(sweep.format_summary(summary, chosen, names))
        if summary["n"].max() < 2:
            print("  (one seed per grid point: no intervals; use --seeds 2 or more)")
    for a, b in args.compare:
        diff = stats.paired_difference(table, a, b, by=names)
        path = out / f"compare_{a}_vs_{b}.csv"
        sweep.write_text(path, diff.to_csv(index=False))
        print(f"paired {a} - {b} (95% t-interval over the runs of each grid point; {path}):")
        print(sweep.format_comparison(diff, names))
    for outcome in result.failures:
        print(sweep.format_failure(outcome, out), file=sys.stderr)
    if result.failures:
        print(f"{len(result.failures)} of {run_now} run(s) failed; rerun the same command to redo "
              "them", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m snnkit`` and the ``snnkit`` script; returns the exit code."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            return _cmd_run(args)
        if args.command == "sweep":
            return _cmd_sweep(args)
        if args.command == "report":
            return _cmd_report(args)
        if args.command == "lab":
            from .notebook import lab

            extra = args.lab_args[1:] if args.lab_args[:1] == ["--"] else args.lab_args
            return lab.main(extra, setup_only=args.setup_only, setup=not args.no_setup)
        return _cmd_list(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

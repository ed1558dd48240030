"""Sweeps: one notebook run per point of a parameter grid and per seed, then statistics.

A claim decided by a difference of one test image is noise until it holds over seeds. A
sweep runs a notebook once for every combination of grid values and every seed, through
the same runner as ``python -m snnkit run``, and tabulates what each run recorded::

    python -m snnkit sweep notebooks/01_spatiotemporal_pca.ipynb --profile full --out DIR \\
        --grid variance_threshold=0.95,0.99,0.999 --seeds 10 [--jobs N] [--scheduler ADDRESS]

Layout of ``DIR``::

    DIR/<run-id>/              one finished run: NAME.ipynb, results.json, run.json, figures/
    DIR/<run-id>.failed/       the last failed attempt of a point (executed copy with traceback)
    DIR/sweep.json             how the sweep was asked for (notebook, profile, grid, seeds)
    DIR/sweep.csv              one row per finished run: run_id, grid values, seed, every
                               scalar of results.json (nested dicts as ``a.b``), run_seconds
    DIR/summary.csv            per grid point and number: n, mean, std, 95% t-interval
    DIR/summary.png            chosen numbers against a grid parameter, with the intervals

The run id names the point: ``variance_threshold=0.95,seed=3`` (a short hash is added when a
value does not make a plain file name). Each point is written atomically by the runner
(staging folder + rename), so an interrupted sweep leaves finished points and nothing half
written; rerunning the same command skips the finished points (their ``run.json`` says
``ok``) and redoes failed or missing ones. A point whose folder was made with another
profile or other parameters is an error, not silently reused.

Where the runs go:

* locally (default): a pool of ``jobs`` worker processes, each driving one kernel at a time;
  every kernel gets ``cpu_count // jobs`` threads unless ``threads`` is given.
* ``scheduler="tcp://host:8786"``: a Dask cluster (``dask scheduler`` / ``dask worker``),
  through ``distributed`` futures. By default the workers run into their own temporary
  folder and return the point's files (notebook, results, figures) to the client as bytes,
  which writes them into ``DIR``: no shared disk is needed. With ``shared_disk=True`` the
  workers write into ``DIR`` themselves, which must then be the same path on every
  machine (checked before anything runs).

A seed fixes a run's numbers for a given thread count: torch's CPU reductions may round
differently with another number of threads, so give ``threads`` to compare runs made on
different machines.

The claims the runs record (``results.json`` -> ``claims``) are not columns of the table:
``python -m snnkit report DIR`` pools them per grid point and decides them.

The package, by seam:

* :mod:`.grid`: ``--grid`` parsing, run ids, :class:`Point` and :func:`expand`;
* :mod:`.validate`: :func:`validate`, every check made before anything runs;
* :mod:`.workers`: :class:`Task`, :class:`Outcome`, :func:`run_point`, the local pool and
  the Dask client;
* :mod:`.tables`: ``sweep.csv`` and ``summary.csv`` and the lines printed about them;
* :mod:`.plot`: :func:`plot_summary`;
* :mod:`.run`: :func:`run_sweep`.

The statistics (Student t intervals, summaries per grid point, paired differences) are
:mod:`snnkit.stats`, shared with the notebooks and the report.
"""

from .grid import Point, expand, jsonish, parse_grid, parse_grid_value, run_id, split_values
from .plot import plot_summary, save_figure
from .run import SweepResult, run_sweep
from .tables import (FIGURE_NAME, MANIFEST_NAME, RUN_SECONDS, SUMMARY_NAME, TABLE_NAME, collect_table,
                     finished, flatten, format_comparison, format_summary, read_json, read_table,
                     write_tables, write_text)
from .validate import SWEEP_RESERVED, validate
from .workers import Outcome, Task, format_failure, install_files, run_point

__all__ = [
    "FIGURE_NAME", "MANIFEST_NAME", "RUN_SECONDS", "SUMMARY_NAME", "SWEEP_RESERVED", "TABLE_NAME", "Outcome",
    "Point", "SweepResult", "Task", "collect_table", "expand", "finished", "flatten", "format_comparison",
    "format_failure", "format_summary", "install_files", "jsonish", "parse_grid", "parse_grid_value",
    "plot_summary", "read_json", "read_table", "run_id", "run_point", "run_sweep", "save_figure",
    "split_values", "validate", "write_tables", "write_text",
]

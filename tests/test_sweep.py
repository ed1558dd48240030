"""Tests of snnkit.notebook.sweep and ``python -m snnkit sweep``.

The grid and the tables are checked on hand-computed cases (the statistics in
test_stats.py); the sweeps run the tour's
smoke profile on a 2 x 2 grid (locally, then on a dask LocalCluster: the same table), and
a generated notebook whose x=3 point is made to fail (resumption).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

from snnkit import stats
from snnkit.notebook import REPO_ROOT, sweep
from snnkit.notebook.sweep import Point

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TINY = FIXTURES / "tiny.ipynb"
TOUR = REPO_ROOT / "notebooks" / "00_tour.ipynb"
PCA = REPO_ROOT / "notebooks" / "01_spatiotemporal_pca.ipynb"


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    path = [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    return subprocess.run([sys.executable, "-m", "snnkit", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def _notebook(path: Path, work: str) -> Path:
    """A notebook following the convention, with one parameter ``x`` and ``work`` after
    the config cell."""
    cells = [
        nbformat.v4.new_code_cell('profile = "smoke"\nseed = 0\ndevice = "cpu"\ndataset = "toy"\n'
                                  'out_dir = None\nx = None', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(
            "from pathlib import Path\n"
            "from snnkit.notebook import make_config, nonneg_int, setup\n"
            'SPEC = {"x": nonneg_int(help="a number")}\n'
            'PROFILE_DEFAULTS = {"smoke": {"x": 1}, "full": {"x": 1}}\n'
            'cfg = make_config(globals(), SPEC, PROFILE_DEFAULTS, datasets=("toy",))\n'
            "rec = setup(cfg)"),
        nbformat.v4.new_code_cell(work),
    ]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


# ------------------------------------------------------------------------------- grid


def test_parse_grid_reads_literals_lists_and_words():
    grid = sweep.parse_grid(["variance_threshold=0.95,0.99, 0.999", "timesteps_schedule=[25,15,10,5],[10, 5]",
                             "dataset=digits,event-gestures", "train_subset=None,300"])
    assert grid == {"variance_threshold": [0.95, 0.99, 0.999],
                    "timesteps_schedule": [[25, 15, 10, 5], [10, 5]],
                    "dataset": ["digits", "event-gestures"], "train_subset": [None, 300]}
    assert sweep.split_values("'a,b',[1,(2,3)],{'k': 1}") == ["'a,b'", "[1,(2,3)]", "{'k': 1}"]


@pytest.mark.parametrize("item, message", [
    ("epochs", r"expected NAME=VALUE1,VALUE2"),
    ("epochs=1,,2", r"cannot read value '': empty value"),
    ("epochs=[1,2", r"cannot read the values: .*unclosed '\['"),
    ("epochs=1,2]", r"unbalanced '\]'"),
    ("epochs=1e", r"cannot read value '1e'"),
    ("epochs=1,1", r"value 1 is listed twice"),
    ("2x=1", r"'2x' is not a parameter name"),
])
def test_parse_grid_errors(item, message):
    with pytest.raises(ValueError, match=message):
        sweep.parse_grid([item])
    with pytest.raises(ValueError, match=r"epochs is given twice"):
        sweep.parse_grid(["epochs=1", "epochs=2"])


def test_expand_and_run_ids():
    points = sweep.expand({"epochs": [1, 2], "train_subset": [200]}, [0, 1])
    assert [p.run_id for p in points] == ["epochs=1,train_subset=200,seed=0", "epochs=1,train_subset=200,seed=1",
                                          "epochs=2,train_subset=200,seed=0", "epochs=2,train_subset=200,seed=1"]
    assert points[1].params({"timesteps": 4}) == {"timesteps": 4, "epochs": 1, "train_subset": 200, "seed": 1}
    # lists and odd strings get a hash, so two points never share a folder
    a = sweep.run_id({"schedule": [1, 23]}, 0)
    b = sweep.run_id({"schedule": [12, 3]}, 0)
    assert a.startswith("schedule=1-23,seed=0-") and a != b and "/" not in a
    assert sweep.run_id({"name": "a/b"}, 0) != sweep.run_id({"name": "a_b"}, 0)
    assert sweep.run_id({}, 7) == "seed=7"


# ----------------------------------------------------------------------- tables, plot
# (the statistics themselves are tested in test_stats.py)


def test_plot_summary_draws_the_t_intervals():
    table = pd.DataFrame({"a": [1, 1, 1, 1, 2, 2], "b": ["x"] * 6, "seed": [0, 1, 2, 3, 0, 1],
                          "m": [1.0, 2.0, 3.0, 4.0, 5.0, 7.0], "q": [0.0] * 6})
    fig = sweep.plot_summary(table, "a", ["m", "q"], hue=["b"])
    assert len(fig.axes) == 2 and fig.axes[0].get_title() == "m"
    # each error bar (with caps) is one line whose y runs from the interval's low to high end
    spans = [end for y in (line.get_ydata() for line in fig.axes[0].lines) if len(y) > 2
             for end in (np.nanmin(y), np.nanmax(y))]
    assert spans == pytest.approx([0.445740, 4.554260, 6 - 12.706205, 6 + 12.706205], abs=1e-5)
    path = sweep.save_figure(fig, Path(os.environ.get("TMPDIR", "/tmp")) / f"plot-{os.getpid()}.png")
    assert path.read_bytes()[:4] == b"\x89PNG"
    path.unlink()
    with pytest.raises(ValueError, match=r"'acc': not in the sweep table"):
        sweep.plot_summary(table, "a", ["acc"])


def test_flatten_and_collect_table(tmp_path):
    assert sweep.flatten({"a": 1, "b": {"4": 0.5, "c": {"d": 2}}, "c": [1, 2], "d": "x"}) == \
        {"a": 1, "b.4": 0.5, "b.c.d": 2, "d": "x"}
    # the claims are for `snnkit report`, not columns; a nested "claims" is an ordinary dict
    assert sweep.flatten({"a": 1, "claims": {"k": {"mean": 2.0}}, "b": {"claims": 3}}) == {"a": 1, "b.claims": 3}
    points = sweep.expand({"x": [1, 2]}, [0])
    for p, ok in zip(points, (True, False)):
        folder = tmp_path / p.run_id
        folder.mkdir()
        (folder / "results.json").write_text(json.dumps({"x": 5, "acc": 0.5, "by": {"2": 0.1}}))
        (folder / "run.json").write_text(json.dumps({"ok": ok, "seconds": 3.5}))
    table = sweep.collect_table(tmp_path, points, ["x"])
    assert list(table.columns) == ["run_id", "x", "seed", "results.x", "acc", "by.2", "run_seconds"]
    assert table.to_dict("records") == [{"run_id": "x=1,seed=0", "x": 1, "seed": 0, "results.x": 5,
                                         "acc": 0.5, "by.2": 0.1, "run_seconds": 3.5}]


def test_printed_summary_and_comparison_have_no_nan():
    table = pd.DataFrame({"x": [1, 1, 1, 2], "a": [0.9, 0.8, 0.85, 0.5], "b": [0.8, 0.8, 0.75, 0.4]})
    summary = stats.summarize(table, ["x"], metrics=["a"])
    assert sweep.format_summary(summary, ["a"], ["x"]).splitlines() == [
        "  x=1  a: 0.850 (0.726-0.974), 3 seeds",  # 0.85 -/+ 4.302653 * 0.05 / sqrt(3)
        "  x=2  a: 0.500, one run, no interval"]
    diff = stats.paired_difference(table, "a", "b", by=["x"])
    assert sweep.format_comparison(diff, ["x"]).splitlines() == [
        "  x=1: +0.067 (-0.077 to +0.210), 3 seeds, p=0.184",
        "  x=2: +0.100, one run, no interval"]


# ------------------------------------------------------------------------- validation


def test_validation_errors_before_anything_runs(tmp_path):
    out = tmp_path / "out"
    cases = [
        (TOUR, {"epochs": [1], "variance_threshold": [0.9]}, {},
         r"00_tour: unknown parameter 'variance_threshold' in --grid; its parameters cell declares: "
         r"seed, device, dataset, epochs"),
        (TOUR, {"epochs": [1, -1]}, {}, r"00_tour would refuse the point epochs=-1 \(profile 'smoke'\): "
                                        r"epochs=-1: expected an integer >= 0"),
        (TOUR, {"dataset": ["digits", "cifar"]}, {}, r"dataset='cifar': expected one of 'digits', 'event-digits'"),
        (TOUR, {"epochs": ["two"]}, {}, r"epochs='two': expected an integer >= 0"),
        (PCA, {"variance_threshold": [0.99, 1.5]}, {}, r"variance_threshold=1.5: expected a number in \(0, 1\]"),
        (TOUR, {"seed": [1, 2]}, {}, r"a sweep sets the seed itself; use --seeds N"),
        (TOUR, {"out_dir": ["x"]}, {}, r"--grid out_dir: set by the runner"),
        (TOUR, {"epochs": [1]}, {"epochs": 2}, r"epochs: given both with --grid and -p"),
        (TOUR, {"epochs": [1]}, {"timesteps": 0}, r"timesteps=0: expected an integer >= 1"),
    ]
    for notebook, grid, fixed, message in cases:
        with pytest.raises(ValueError, match=message):
            sweep.run_sweep(notebook, "smoke", out, grid, 2, fixed=fixed, progress=False)
    with pytest.raises(ValueError, match=r"seeds=0: expected an integer >= 1"):
        sweep.run_sweep(TINY, "smoke", out, {}, 0)
    with pytest.raises(ValueError, match=r"threads=0: expected an integer >= 1"):
        sweep.run_sweep(TINY, "smoke", out, {}, 1, threads=0)
    with socket.socket() as s:  # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ValueError, match=rf"cannot reach the Dask scheduler at 'tcp://127.0.0.1:{port}' "
                                         r"within 2 s .*dask scheduler"):
        sweep.run_sweep(TINY, "smoke", out, {"x": [1]}, 1, scheduler=f"tcp://127.0.0.1:{port}",
                        connect_timeout=2)
    assert not out.exists()

    proc = _cli("sweep", str(TOUR), "--out", str(out), "--grid", "epochs=1,[2", cwd=tmp_path)
    assert proc.returncode == 2 and "error: --grid 'epochs=1,[2': cannot read the values" in proc.stderr
    proc = _cli("sweep", str(TOUR), "--out", str(out), "--grid", "epochs=1,2", "--dry-run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"to run  {out / 'epochs=2,seed=0'}" in proc.stdout and "2 point(s); nothing was run" in proc.stdout
    assert not out.exists()


# ------------------------------------------------------------------------------ sweeps


@pytest.mark.notebook
def test_tour_sweep_locally_and_on_a_dask_cluster_gives_the_same_table(tmp_path):
    from distributed import LocalCluster

    grid = {"epochs": [1, 2], "train_subset": [100, 200]}
    fixed = {"timesteps_sweep": [4]}
    local = sweep.run_sweep(TOUR, "smoke", tmp_path / "local", grid, 1, fixed=fixed, jobs=2,
                            threads=1, progress=False)
    assert not local.failures, [o.error for o in local.failures]
    table = local.table
    assert list(table["run_id"]) == ["epochs=1,train_subset=100,seed=0", "epochs=1,train_subset=200,seed=0",
                                     "epochs=2,train_subset=100,seed=0", "epochs=2,train_subset=200,seed=0"]
    assert list(table.columns[:4]) == ["run_id", "epochs", "train_subset", "seed"]
    assert {"accuracy", "accuracy_by_timesteps.4", "energy_uj", "run_seconds"} <= set(table.columns)
    assert table["accuracy"].between(0.05, 1).all() and (table["run_seconds"] > 0).all()
    first = tmp_path / "local" / "epochs=1,train_subset=100,seed=0"
    assert json.loads((first / "results.json").read_text())["accuracy"] == table["accuracy"][0]
    assert (first / "00_tour.ipynb").is_file() and (first / "figures" / "energy.png").is_file()
    assert json.loads((first / "run.json").read_text())["parameters"] == \
        {"timesteps_sweep": [4], "epochs": 1, "train_subset": 100, "seed": 0}
    on_disk = pd.read_csv(tmp_path / "local" / "sweep.csv")
    assert on_disk["accuracy"].tolist() == pytest.approx(table["accuracy"].tolist(), abs=1e-15)
    summary = pd.read_csv(tmp_path / "local" / "summary.csv")
    acc = summary[summary.metric == "accuracy"]
    assert len(acc) == 4 and (acc["n"] == 1).all() and acc["ci_low"].isna().all()

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        # no shared disk: workers run under their own temporary folders and return the files
        remote = sweep.run_sweep(TOUR, "smoke", tmp_path / "dask", grid, 1, fixed=fixed, threads=1,
                                 scheduler=cluster.scheduler_address, progress=False)
        # shared disk: workers write into the output folder themselves
        shared = sweep.run_sweep(TINY, "smoke", tmp_path / "shared", {"x": [3]}, 1, threads=1,
                                 scheduler=cluster.scheduler_address, shared_disk=True, progress=False)
    assert not remote.failures, [o.error for o in remote.failures]
    timing = [c for c in table.columns if c.endswith("seconds")]
    pd.testing.assert_frame_equal(remote.table.drop(columns=timing), table.drop(columns=timing))
    assert (tmp_path / "dask" / "epochs=2,train_subset=200,seed=0" / "figures" / "energy.png").is_file()
    assert shared.table[["x", "y"]].values.tolist() == [[3, 6]]
    assert (tmp_path / "shared" / "x=3,seed=0" / "figures" / "line.png").is_file()
    for folder in ("local", "dask", "shared"):
        assert not [p for p in (tmp_path / folder).iterdir() if p.name.startswith(".")]


@pytest.mark.notebook
def test_resume_after_a_failed_point(tmp_path):
    nb = _notebook(tmp_path / "nb" / "flaky.ipynb",
                   'if cfg.x == 3 and Path("fail_x3").exists():\n'
                   '    raise RuntimeError("x=3 made to fail")\n'
                   'rec.record("value", 10 * cfg.x + cfg.seed)\n'
                   'rec.record("double", 2 * cfg.x)')
    (nb.parent / "fail_x3").write_text("")
    out = tmp_path / "out"
    proc = _cli("sweep", str(nb), "--out", str(out), "--grid", "x=1,2,3", "--jobs", "2", "--threads", "1",
                "--no-progress", "--compare", "double", "value", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "3 point(s): 3 run now, 0 already done, 1 failed" in proc.stdout
    assert "FAILED x=3,seed=0" in proc.stderr
    assert "cell 2 (the 3rd cell" in proc.stderr and "RuntimeError: x=3 made to fail" in proc.stderr
    assert f"executed copy and partial results: {out / 'x=3,seed=0.failed'}" in proc.stderr
    assert "1 of 3 run(s) failed; rerun the same command" in proc.stderr
    assert "x=1: -8.00, one run, no interval" in proc.stdout  # the paired comparison, per grid point
    assert pd.read_csv(out / "sweep.csv")["x"].tolist() == [1, 2]
    assert (out / "x=3,seed=0.failed" / "flaky.ipynb").is_file() and not (out / "x=3,seed=0").exists()
    stamps = {p: (out / p / "results.json").stat().st_mtime_ns for p in ("x=1,seed=0", "x=2,seed=0")}

    (nb.parent / "fail_x3").unlink()
    again = sweep.run_sweep(nb, "smoke", out, {"x": [1, 2, 3]}, 1, jobs=2, threads=1, progress=False)
    assert (again.skipped, [(o.run_id, o.ok) for o in again.outcomes]) == \
        (["x=1,seed=0", "x=2,seed=0"], [("x=3,seed=0", True)])
    assert stamps == {p: (out / p / "results.json").stat().st_mtime_ns for p in stamps}
    table = pd.read_csv(out / "sweep.csv")
    assert table[["x", "seed", "value", "double"]].values.tolist() == [[1, 0, 10, 2], [2, 0, 20, 4], [3, 0, 30, 6]]
    assert not (out / "x=3,seed=0.failed").exists()
    assert stats.paired_difference(table, "double", "value", by=["x"])["mean_diff"].tolist() == [-8.0, -16.0, -24.0]

    # another profile into the same folder is refused, not mixed in
    with pytest.raises(ValueError, match=r"x=1,seed=0 holds a run with profile 'smoke' .* asks for profile 'full'"):
        sweep.run_sweep(nb, "full", out, {"x": [1, 2, 3]}, 1)


@pytest.mark.notebook
def test_run_point_without_shared_disk_ships_the_notebook(tmp_path):
    source = TINY.read_bytes()
    task = sweep.Task(str(tmp_path / "elsewhere" / "tiny.ipynb"), source, "smoke",
                      {"x": 4, "seed": 1}, "x=4,seed=1", None, threads=1)
    outcome = sweep.run_point(task)
    assert outcome.ok, outcome.error
    assert json.loads(outcome.files["results.json"])["y"] == 8
    assert {"tiny.ipynb", "run.json", "figures/line.png"} <= set(outcome.files)
    folder = sweep.install_files(tmp_path / "out", outcome.run_id, outcome.ok, outcome.files)
    assert folder == tmp_path / "out" / "x=4,seed=1"
    assert sweep.finished(tmp_path / "out", Point("x=4,seed=1", {"x": 4}, 1))
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["x=4,seed=1"]

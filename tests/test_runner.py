"""Tests of snnkit.runner and the CLI on the fixture notebooks.

Each papermill run starts a kernel (a few seconds), so the runs are few and each test
checks several things.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from papermill.exceptions import PapermillExecutionError

from snnkit.encoding import ENCODERS
from snnkit.notebook import REPO_ROOT, runner
from snnkit.notebook.config import _atomic_write_bytes

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TINY, FAILING = FIXTURES / "tiny.ipynb", FIXTURES / "failing.ipynb"


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    path = [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    return subprocess.run([sys.executable, "-m", "snnkit", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.notebook
def test_good_and_failing_notebooks_and_previous_output_kept(tmp_path):
    out = tmp_path / "out"
    good, bad = runner.run_notebooks([TINY, FAILING], "smoke", out, jobs=2, progress=False)

    # the good one: executed copy, results, figure; profile default x=2 applied
    assert good.ok and good.error is None, good.error
    assert good.out_dir == out / "tiny"
    assert nbformat.read(str(out / "tiny" / "tiny.ipynb"), as_version=4).cells
    on_disk = json.loads((out / "tiny" / "results.json").read_text())
    assert on_disk == good.results
    assert (on_disk["x"], on_disk["y"], on_disk["explorer_renders"]) == (2, 4, 1)
    assert on_disk["headless"] == 1  # SNNKIT_HEADLESS reached the kernel
    assert Path(on_disk["snnkit_file"]).resolve() == REPO_ROOT / "snnkit" / "__init__.py"
    assert Path(on_disk["python"]).resolve() == Path(sys.executable).resolve()
    assert (out / "tiny" / "figures" / "line.png").read_bytes()[:4] == b"\x89PNG"
    record = json.loads((out / "tiny" / runner.RUN_RECORD).read_text())
    assert (record["ok"], record["profile"], record["parameters"], record["error"]) == (True, "smoke", {}, None)
    assert 0 < record["seconds"] <= good.seconds + 1

    # the failing one ran too, and says where and why it failed
    assert not bad.ok
    assert bad.cell_index == 2
    assert "cell 2 (the 3rd cell" in bad.error
    assert 'raise RuntimeError("boom in the third cell")' in bad.error
    assert "RuntimeError: boom in the third cell" in bad.error
    assert bad.out_dir == out / "failing.failed" and bad.executed == out / "failing.failed" / "failing.ipynb"
    assert bad.executed.is_file() and bad.results == {"before_failure": 1}
    record = json.loads((out / "failing.failed" / runner.RUN_RECORD).read_text())
    assert (record["ok"], record["cell_index"], record["error"]) == (False, 2, bad.error)
    assert not (out / "failing").exists()

    # a failing rerun of "tiny" leaves the previous good output untouched
    before = {p.relative_to(out): p.read_bytes() for p in (out / "tiny").rglob("*") if p.is_file()}
    broken = tmp_path / "broken" / "tiny.ipynb"
    broken.parent.mkdir()
    shutil.copy(FAILING, broken)
    again = runner.run_notebook(broken, "smoke", out)
    assert not again.ok and again.out_dir == out / "tiny.failed"
    after = {p.relative_to(out): p.read_bytes() for p in (out / "tiny").rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in out.iterdir()) == ["failing.failed", "tiny", "tiny.failed"]


@pytest.mark.notebook
def test_cli_run_override_and_failure_report(tmp_path):
    out = tmp_path / "out"
    # a stale good output is replaced by the new run
    (out / "tiny").mkdir(parents=True)
    (out / "tiny" / "results.json").write_text('{"y": -1}')
    proc = _cli("run", str(FAILING), str(TINY), "--out", str(out), "-p", "x", "7",
                "--jobs", "2", "--no-progress", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert f"FAILED {FAILING}" in proc.stderr
    assert "cell 2 (the 3rd cell" in proc.stderr and "RuntimeError: boom in the third cell" in proc.stderr
    assert "1 of 2 notebook(s) failed" in proc.stderr
    results = json.loads((out / "tiny" / "results.json").read_text())
    assert (results["x"], results["y"]) == (7, 14)  # -p wins over the profile default
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no staging left


def test_cli_list_shows_each_profile_value_and_help(tmp_path):
    proc = _cli("list", str(TINY), str(REPO_ROOT / "notebooks" / "00_tour.ipynb"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"tiny  ({TINY})"
    assert lines[1].split() == ["name", "smoke", "full", "help"]
    tiny = lines[:lines.index(next(line for line in lines if line.startswith("00_tour")))]
    rows = {line.split()[0]: line for line in tiny if line.startswith("    ")}
    # x is None in the parameters cell: the profiles give 2 and 5
    assert rows["x"].split()[:3] == ["x", "2", "5"]
    assert rows["x"].endswith("the number to double; an integer >= 0")
    assert rows["seed"].split()[:3] == ["seed", "0", "0"]
    assert rows["dataset"].split()[:3] == ["dataset", "'toy'", "'toy'"]
    assert "set by the runner" in rows["out_dir"]
    tour = proc.stdout[proc.stdout.index("00_tour"):].splitlines()
    epochs = next(line for line in tour if line.split()[0] == "epochs")
    assert epochs.split()[:3] == ["epochs", "3", "8"] and "training epochs; an integer >= 0" in epochs
    subset = next(line for line in tour if line.split()[0] == "train_subset")
    assert subset.split()[:3] == ["train_subset", "600", "None"]
    assert "None" not in epochs


NOTEBOOKS = runner.discover_notebooks()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_list_and_sweep_dry_run_read_every_notebook(path, tmp_path, capsys):
    """`list` shows every parameter of every notebook with its value in each profile, and
    `sweep --dry-run` validates it: a new notebook is covered without editing this test."""
    from snnkit.__main__ import main

    assert main(["list", str(path)]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{path.stem}  ({path})"
    spec = runner.notebook_spec(path)
    rows = {line.split()[0]: line.split() for line in out[2:]}
    assert set(spec.parameters) <= set(rows), f"list misses {set(spec.parameters) - set(rows)}"
    for name in spec.spec:  # every notebook knob has a value in each profile, or says None
        assert rows[name][1] == runner._show(spec.value(name, "smoke")).split()[0]
    assert main(["sweep", str(path), "--out", str(tmp_path / "sweep"), "--seeds", "2", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "2 point(s); nothing was run (--dry-run)" in out
    assert not (tmp_path / "sweep").exists()


def test_notebook_spec_reads_spec_defaults_and_datasets(tmp_path):
    from snnkit.notebook import Param

    nb = runner.notebook_spec("00_tour")
    assert list(nb.parameters) == ["profile", "seed", "device", "dataset", "out_dir", "epochs",
                                   "timesteps", "train_subset", "timesteps_sweep"]
    assert nb.parameters["epochs"] is None and nb.parameters["seed"] == 0
    assert list(nb.spec) == ["epochs", "timesteps", "train_subset", "timesteps_sweep"]
    assert nb.spec["epochs"] == Param(kind=int, min=0, help="training epochs")
    assert nb.profile_defaults["full"]["epochs"] == 8
    assert nb.datasets == ("digits", "event-digits", "event-gestures", "mnist", "fashion-mnist", "cifar10",
                           "n-mnist", "dvs-gesture")
    assert (nb.value("epochs", "smoke"), nb.value("timesteps_sweep", "full")) == (3, [1, 2, 3, 4, 6, 8, 12, 16])
    assert nb.check("dataset").describe().startswith("one of 'digits', 'event-digits', 'event-gestures', 'mnist'")
    pca = runner.notebook_spec(REPO_ROOT / "notebooks" / "01_spatiotemporal_pca.ipynb")
    assert pca.spec["variance_threshold"].describe() == "a number in (0, 1]" and pca.datasets == ("digits", "mnist-5k", "cifar10")

    # only SPEC and PROFILE_DEFAULTS are read: a name bound by nothing the reader can read is an error
    bad = nbformat.read(str(TINY), as_version=4)
    bad.cells[2].source = ('raise SystemExit("the rest of the cell must not run")\n'
                           'SPEC = {"x": nonneg_int(help=HELP)}\nPROFILE_DEFAULTS = {}')
    nbformat.write(bad, str(tmp_path / "bad.ipynb"))
    with pytest.raises(ValueError, match=r"bad.ipynb, cell 2: SPEC uses 'HELP', which is neither assigned "
                                         r"above, imported from snnkit, nor a name of snnkit.notebook "
                                         r"\(line 2: HELP\)"):
        runner.notebook_spec(tmp_path / "bad.ipynb")
    # constants assigned above (in this cell or an earlier one) and snnkit registries are read
    bad.cells[2].source = ('from snnkit.encoding import ENCODERS\nKINDS = (*ENCODERS.names(), "none")\n'
                           'SPEC = {"x": nonneg_int(help=HELP), "kind": choice(*KINDS)}\n'
                           'PROFILE_DEFAULTS = {"smoke": {**COMMON, "x": 1}}\n'
                           'cfg = make_config(globals(), SPEC, PROFILE_DEFAULTS, datasets=DATASETS)')
    bad.cells.insert(2, nbformat.v4.new_code_cell('HELP = "the number"\nCOMMON = {"kind": "none"}\n'
                                                  'DATASETS = ("toy", "digits")'))
    nbformat.write(bad, str(tmp_path / "bad.ipynb"))
    read = runner.notebook_spec(tmp_path / "bad.ipynb")
    assert read.spec["x"].help == "the number"
    assert read.spec["kind"].choices == (*ENCODERS.names(), "none")
    assert read.profile_defaults == {"smoke": {"kind": "none", "x": 1}}
    assert read.datasets == ("toy", "digits")
    del bad.cells[2]
    bad.cells[2].source = 'SPEC = {"x": nonneg_int()}\nPROFILE_DEFAULTS = {"smoke": {"x": 1}}'
    nbformat.write(bad, str(tmp_path / "bad.ipynb"))
    assert runner.notebook_spec(tmp_path / "bad.ipynb").datasets is None


def test_usage_errors_are_raised_before_running(tmp_path):
    with pytest.raises(ValueError, match=r"profile='fast': expected one of 'smoke', 'full'"):
        runner.run_notebook(TINY, "fast", tmp_path)
    with pytest.raises(ValueError, match=r"tiny: unknown parameter\(s\) epochs; .*declares: .*x"):
        runner.run_notebook(TINY, "smoke", tmp_path, {"epochs": 3})
    with pytest.raises(ValueError, match=r"out_dir are set by the runner"):
        runner.run_notebooks([TINY], "smoke", tmp_path, {"out_dir": "/x"})
    with pytest.raises(ValueError, match=r"epochs are declared by none of the notebooks"):
        runner.run_notebooks([TINY, FAILING], "smoke", tmp_path, {"epochs": 3})
    with pytest.raises(ValueError, match=r"jobs=0: expected an integer >= 1"):
        runner.run_notebooks([TINY], "smoke", tmp_path, jobs=0)
    with pytest.raises(ValueError, match=r"same name \['tiny'\]"):
        runner.run_notebooks([TINY, TINY], "smoke", tmp_path)
    with pytest.raises(FileNotFoundError, match=r"notebook 'nope': no such file"):
        runner.run_notebook("nope", "smoke", tmp_path)
    assert list(tmp_path.iterdir()) == []
    proc = _cli("run", str(TINY), "-p", "epochs", "3", "--out", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 2 and "declared by none of the notebooks" in proc.stderr


@pytest.mark.parametrize("text, value", [
    ("3", 3), ("0.5", 0.5), ("[25, 10, 5]", [25, 10, 5]), ("None", None), ("True", True),
    ("'digits'", "digits"), ("digits", "digits"), ("event-gestures", "event-gestures"),
    ("{'a': 1}", {"a": 1}),
])
def test_parse_value(text, value):
    assert runner.parse_value(text) == value


def test_describe_error_maps_cell_index_past_injected_parameters(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("x = 2", metadata={"tags": ["injected-parameters"]}),
        nbformat.v4.new_code_cell("y = 1"),
        nbformat.v4.new_code_cell("# compute\n1 / 0"),
    ])
    path = tmp_path / "copy.ipynb"
    nbformat.write(nb, str(path))
    exc = PapermillExecutionError(3, 4, "# compute\n1 / 0", "ZeroDivisionError", "division by zero", [])
    text, index = runner.describe_error(exc, path)
    assert index == 2
    assert text == "cell 2 (the 3rd cell, In [4] in the executed copy): # compute\nZeroDivisionError: division by zero"
    assert runner.describe_error(OSError("kernel died"))[0] == "OSError: kernel died"


def test_discover_and_resolve(tmp_path):
    assert runner.discover_notebooks(tmp_path / "missing") == []
    (tmp_path / "b.ipynb").write_text("{}")
    (tmp_path / "a.ipynb").write_text("{}")
    assert [p.name for p in runner.discover_notebooks(tmp_path)] == ["a.ipynb", "b.ipynb"]
    assert runner.resolve_notebook(TINY) == TINY
    env = runner.kernel_env(jobs=2)
    assert env["SNNKIT_HEADLESS"] == "1" and env["PYTHONPATH"].split(os.pathsep)[0] == str(REPO_ROOT)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_outputs_get_the_umask_permissions(tmp_path):
    old = os.umask(0o027)
    try:
        _atomic_write_bytes(tmp_path / "a.json", b"{}")
        assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o640  # mkstemp gave 0600
        staging = runner.new_staging(tmp_path, "nb")
        assert stat.S_IMODE(staging.stat().st_mode) == 0o750  # mkdtemp gave 0700
    finally:
        os.umask(old)
    assert staging.name.startswith(f".nb.tmp-{os.getpid()}@")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["a.json", staging.name])


def test_clean_stale_staging_keeps_live_and_foreign_folders(tmp_path):
    dead, host = _dead_pid(), runner._host()
    stale = tmp_path / f".a.tmp-{dead}@{host}-0123abcd"
    live = runner.new_staging(tmp_path, "b")
    foreign = tmp_path / f".c.tmp-{dead}@another-host-0123abcd"
    # a run died between moving the previous output aside and putting the new one in place
    aside = tmp_path / f".d.old-{dead}@{host}-0123abcd"
    legacy = tmp_path / ".e.tmp-k2j4l5m6"  # no owner recorded: left alone
    for folder in (stale, foreign, aside / "d", legacy):
        folder.mkdir(parents=True)
    (aside / "d" / "results.json").write_text("{}")
    removed = runner.clean_stale_staging(tmp_path)
    assert sorted(p.name for p in removed) == sorted([stale.name, aside.name])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, foreign.name, "d", legacy.name])
    assert (tmp_path / "d" / "results.json").read_text() == "{}"
    assert runner.clean_stale_staging(tmp_path / "missing") == []


@pytest.mark.notebook
def test_killed_run_leaves_staging_that_the_next_run_removes(tmp_path):
    out = tmp_path / "out"
    slow = nbformat.read(str(TINY), as_version=4)
    slow.cells[3].source = 'import os, time\nrec.record("kernel_pid", os.getpid())\ntime.sleep(300)'
    nbformat.write(slow, str(tmp_path / "slow.ipynb"))
    code = ("import sys; from snnkit.notebook import runner; "
            "runner.run_notebook(sys.argv[1], 'smoke', sys.argv[2])")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "slow.ipynb"), str(out)],
                            start_new_session=True)
    deadline = time.monotonic() + 300
    kernel_pid = None
    while kernel_pid is None and time.monotonic() < deadline and proc.poll() is None:
        for results in out.glob(".slow.tmp-*/results.json"):
            kernel_pid = json.loads(results.read_text() or "{}").get("kernel_pid")
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # as a lost machine or kill -9 would
    proc.wait()
    assert kernel_pid is not None, "the slow notebook never started"
    os.kill(kernel_pid, signal.SIGKILL)
    staging = [p.name for p in out.iterdir()]
    assert len(staging) == 1 and staging[0].startswith(".slow.tmp-"), staging

    old = os.umask(0o022)
    try:
        result = runner.run_notebook(TINY, "smoke", out)
    finally:
        os.umask(old)
    assert result.ok, result.error
    assert [p.name for p in out.iterdir()] == ["tiny"]  # the dead run's staging folder is gone
    # figures and results get the usual permissions under the umask
    for path in (out / "tiny" / "results.json", out / "tiny" / "figures" / "line.png",
                 out / "tiny" / "tiny.ipynb", out / "tiny" / runner.RUN_RECORD):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    for path in (out / "tiny", out / "tiny" / "figures"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o755, path

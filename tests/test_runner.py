"""Tests of snnkit.runner and the CLI on the fixture notebooks.

Each papermill run starts a kernel (a few seconds), so the runs are few and each test
checks several things.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from papermill.exceptions import PapermillExecutionError

from snnkit.notebook import runner
from snnkit.notebook import REPO_ROOT

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

    # the failing one ran too, and says where and why it failed
    assert not bad.ok
    assert bad.cell_index == 2
    assert "cell 2 (the 3rd cell" in bad.error
    assert 'raise RuntimeError("boom in the third cell")' in bad.error
    assert "RuntimeError: boom in the third cell" in bad.error
    assert bad.out_dir == out / "failing.failed" and bad.executed == out / "failing.failed" / "failing.ipynb"
    assert bad.executed.is_file() and bad.results == {"before_failure": 1}
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


def test_cli_list_shows_parameters(tmp_path):
    proc = _cli("list", str(TINY), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for name in ("profile", "seed", "device", "dataset", "out_dir", "x"):
        assert f"    {name} = " in proc.stdout
    assert "tiny" in proc.stdout


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

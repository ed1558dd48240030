"""`python -m snnkit lab` / `make lab`: widget state saved with notebooks, outputs kept out of git."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
from jupyterlab.labapp import LabApp
from jupyterlab_server.settings_utils import _get_overrides

from snnkit.notebook import REPO_ROOT, lab

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb")) + sorted((REPO_ROOT / "tests" / "fixtures").glob("*.ipynb"))


def test_settings_file_turns_on_saving_widget_state(tmp_path):
    path = lab.install_lab_settings(tmp_path)
    assert path == tmp_path / "overrides.d" / "snnkit.json"
    overrides, error = _get_overrides(str(tmp_path))  # how JupyterLab reads them
    assert error == "" and overrides == {"@jupyter-widgets/jupyterlab-manager:plugin": {"saveState": True}}
    # the key exists in the widget manager's settings schema (a wrong name would be ignored)
    schema = (Path(sys.prefix) / "share" / "jupyter" / "labextensions" / "@jupyter-widgets" / "jupyterlab-manager"
              / "schemas" / "@jupyter-widgets" / "jupyterlab-manager" / "plugin.json")
    assert json.loads(schema.read_text())["properties"]["saveState"]["default"] is False
    lab.install_lab_settings(tmp_path)  # idempotent
    assert sorted(p.name for p in (tmp_path / "overrides.d").iterdir()) == ["snnkit.json"]


def test_settings_go_where_jupyterlab_reads_them():
    assert lab.app_settings_dir() == Path(LabApp().app_settings_dir)


def test_make_env_installs_and_make_lab_starts():
    # --no-print-directory: under a make that runs the tests, make would add "Leaving directory" lines
    dry = subprocess.run(["make", "--no-print-directory", "-n", "-B", "env", "lab"], cwd=REPO_ROOT,
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert any(line.endswith("-m snnkit lab --setup-only") for line in dry), dry
    assert dry[-1].endswith("-m snnkit lab --no-setup")


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                          capture_output=True, text=True, check=True).stdout


def test_git_filter_keeps_outputs_and_widget_state_out_of_git(tmp_path):
    assert lab.install_git_filter(tmp_path) is False  # not a git checkout
    _git(tmp_path, "init", "-q")
    shutil.copy(REPO_ROOT / ".gitattributes", tmp_path / ".gitattributes")
    assert lab.install_git_filter(tmp_path, sys.executable) is True
    assert _git(tmp_path, "config", "filter.nbstripout.clean").strip().endswith("-m nbstripout --keep-id")

    clean = REPO_ROOT / "tests" / "fixtures" / "tiny.ipynb"
    shutil.copy(clean, tmp_path / "tiny.ipynb")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "clean notebook")
    assert _git(tmp_path, "show", "HEAD:tiny.ipynb") == clean.read_text()  # passes unchanged

    executed = nbformat.read(str(clean), as_version=4)  # as JupyterLab autosaves it
    for i, cell in enumerate(c for c in executed.cells if c.cell_type == "code"):
        cell.execution_count = i + 1
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="x = 2\n")]
    executed.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}, "version_major": 2}}
    nbformat.write(executed, str(tmp_path / "tiny.ipynb"))
    assert (tmp_path / "tiny.ipynb").read_text() != clean.read_text()
    # outputs only: git sees no change (status lists the file until `git add` refreshes the
    # index, because its size changed; diff and add see the stripped content)
    assert _git(tmp_path, "diff", "--stat") == ""
    _git(tmp_path, "add", "tiny.ipynb")
    assert _git(tmp_path, "status", "--porcelain") == ""
    staged = nbformat.reads(_git(tmp_path, "show", ":tiny.ipynb"), as_version=4)
    assert all(c.outputs == [] and c.execution_count is None for c in staged.cells if c.cell_type == "code")
    assert "widgets" not in staged.metadata
    assert [c.id for c in staged.cells] == [c.id for c in executed.cells]


def test_committed_notebooks_pass_the_filter_unchanged(tmp_path):
    """Installing the filter must not show every notebook as modified."""
    copies = []
    for path in NOTEBOOKS:
        copies.append(tmp_path / f"{path.parent.name}-{path.name}")
        shutil.copy(path, copies[-1])
    subprocess.run([sys.executable, "-m", "nbstripout", *lab.STRIP_ARGS, *map(str, copies)], check=True)
    changed = [p.name for p, c in zip(NOTEBOOKS, copies) if c.read_bytes() != p.read_bytes()]
    assert changed == [], f"nbstripout {' '.join(lab.STRIP_ARGS)} changes {changed}: strip them before committing"
    assert len(copies) >= 8


def test_lab_environment_and_command():
    env = lab.lab_env({"PYTHONPATH": "/x", "SNNKIT_HEADLESS": "1", "HOME": "/h"})
    assert env == {"PYTHONPATH": os.pathsep.join([str(REPO_ROOT), "/x"]), "HOME": "/h"}
    cmd = lab.lab_command(["--port=9"])
    assert cmd[1:4] == ["-m", "jupyter", "lab"] and cmd[-2:] == [f"--ServerApp.root_dir={REPO_ROOT}", "--port=9"]
    assert lab.lab_command(root="/r")[-1] == "--ServerApp.root_dir=/r"

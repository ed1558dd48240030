"""Every notebook's ``paper`` profile, without the data and without a GPU.

For each notebook in ``notebooks/`` whose ``PROFILE_DEFAULTS`` has a ``paper`` entry, the
fixtures of its paper data set (tests/data_fixtures.py: files in the real formats) are
written into a temporary ``$SNNKIT_DATA``, and the notebook runs with ``--profile
paper-smoke``: the paper's data path and network, fewer epochs and samples. It must load
the files, train and record its numbers. Without the files the same profile must stop at the
config cell, naming the folder and the layout expected.
"""
import ast
import json

import pytest

from data_fixtures import FIXTURE_WRITERS, write_fixture
from snnkit.datafiles import files_needed
from snnkit.notebook import runner
from snnkit.presets import PAPER_SETTINGS



def declared_profiles(path) -> set[str]:
    """The literal keys of a notebook's ``PROFILE_DEFAULTS = {...}``, read without evaluating anything
    (so a notebook whose SPEC the runner cannot read yet is still found)."""
    keys: set[str] = set()
    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] != "code" or "PROFILE_DEFAULTS" not in "".join(cell["source"]):
            continue
        try:
            tree = ast.parse("".join(cell["source"]))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "PROFILE_DEFAULTS" for t in node.targets) \
                    and isinstance(node.value, ast.Dict):
                keys |= {k.value for k in node.value.keys if isinstance(k, ast.Constant)}
    return keys


NOTEBOOKS = [p for p in runner.discover_notebooks() if "paper" in declared_profiles(p)]


def _outputs(executed) -> str:
    nb = json.loads(executed.read_text(encoding="utf-8"))
    text = []
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            text.append("".join(out.get("text", "")))
            text.append("".join(out.get("data", {}).get("text/plain", "")))
    return "\n".join(text)


def _config_cell(path) -> int:
    nb = json.loads(path.read_text(encoding="utf-8"))
    return next(i for i, c in enumerate(nb["cells"]) if "make_config(" in "".join(c["source"]))


def test_the_tour_has_a_paper_profile():
    assert "00_tour" in [p.stem for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_paper_profile_is_declared_as_the_harness_needs(path):
    nb = runner.notebook_spec(path)
    assert "paper-smoke" in nb.profile_defaults, "add PROFILE_DEFAULTS['paper-smoke'] (fewer epochs, smaller subsets)"
    assert "dataset" not in nb.profile_defaults["paper-smoke"], "paper-smoke keeps the paper's data path"
    # a literal in the parameters cell would win over the profile's data set and device
    assert nb.parameters["dataset"] is None and nb.parameters["device"] in (None, "auto")
    dataset = nb.value("dataset", "paper")
    assert files_needed(dataset) and dataset in nb.datasets and dataset in FIXTURE_WRITERS
    assert nb.value("dataset", "paper-smoke") == dataset and nb.value("device", "paper") == "auto"
    if path.stem in PAPER_SETTINGS:
        assert dataset == PAPER_SETTINGS[path.stem].dataset


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_paper_smoke_loads_the_files_trains_and_records(path, tmp_path, monkeypatch):
    dataset = runner.notebook_spec(path).value("dataset", "paper")
    write_fixture(dataset, tmp_path / "data")
    monkeypatch.setenv("SNNKIT_DATA", str(tmp_path / "data"))  # the kernel inherits it
    result = runner.run_notebook(path, "paper-smoke", tmp_path / "out")
    assert result.ok, runner.format_failure(result)
    assert result.results, "the notebook recorded nothing"
    for name, value in result.results.items():
        if "accuracy" in name and isinstance(value, float):
            assert 0.0 <= value <= 1.0, (name, value)
    assert f"\n{dataset}: " in "\n" + _outputs(result.executed), "describe() of the loaded data set not shown"


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_paper_profile_without_the_files_stops_at_the_config_cell(path, tmp_path, monkeypatch):
    monkeypatch.setenv("SNNKIT_DATA", str(tmp_path / "empty"))
    dataset = runner.notebook_spec(path).value("dataset", "paper")
    result = runner.run_notebook(path, "paper", tmp_path / "out")
    assert not result.ok and result.cell_index == _config_cell(path)
    assert f"dataset '{dataset}': files not found in {tmp_path / 'empty'}" in result.error
    assert "Expected under the data folder" in result.error


@pytest.mark.notebook
@pytest.mark.parametrize("dataset", ["cifar10", "dvs-gesture"])
def test_the_tour_runs_on_other_real_sets(dataset, tmp_path, monkeypatch):
    write_fixture(dataset, tmp_path / "data")
    monkeypatch.setenv("SNNKIT_DATA", str(tmp_path / "data"))
    result = runner.run_notebook("00_tour", "paper-smoke", tmp_path / "out", {"dataset": dataset})
    assert result.ok, runner.format_failure(result)
    assert 0.0 <= result.results["accuracy"] <= 1.0
    shape = "(3, 32, 32)" if dataset == "cifar10" else "(20, 2, 32, 32)"
    assert f"{dataset}: {'static' if dataset == 'cifar10' else 'event'} {shape}" in _outputs(result.executed)

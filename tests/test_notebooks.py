"""Every notebook in ``notebooks/`` runs headlessly and its numbers stay within bands.

Bands: ``tests/bands/NAME.json`` for ``notebooks/NAME.ipynb``, one JSON object mapping a
recorded name to the checks its value must pass::

    {
      "_comment": "keys starting with '_' are ignored",
      "accuracy": {"min": 0.8, "max": 1.0},
      "timesteps": {"equals": 25},
      "compression": {"equals": 4.0, "tol": 1e-6},
      "layer_widths": {"len": 4},
      "accuracy_by_bits.5": {"min": 0.5}
    }

- ``min`` / ``max``: inclusive bounds on a number, or on every item of a list or dict of numbers.
- ``equals``: exact equality (numbers, strings, lists); with ``tol``, ``|value - equals| <= tol``.
- ``len``: number of items of a list or dict.
- A key with dots reaches into nested values: ``"accuracy_by_bits.5"`` is
  ``results["accuracy_by_bits"]["5"]``, and a number after a dot indexes a list.
  An exact key in results.json is looked up first.
- ``_chance`` (required): the accuracy of guessing on the notebook's data set; accuracy
  floors must sit clearly above it and no band may check only a length (tests/test_bands.py).
Every key in the bands must be present in the results; a notebook without a bands file
fails the suite. Bands hold for the ``smoke`` profile, which is what these tests run.
"""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path
from typing import Any

import nbformat
import pytest

from snnkit.notebook import COMMON_PARAMETERS, REPO_ROOT
from snnkit.notebook.runner import discover_notebooks, run_notebook

NOTEBOOKS = discover_notebooks(REPO_ROOT / "notebooks")
BANDS_DIR = Path(__file__).resolve().parent / "bands"
BAND_CHECKS = {"min", "max", "equals", "tol", "len"}
_MISSING = object()


def lookup(results: dict[str, Any], key: str) -> Any:
    """The value for a band key (see the module docstring), or ``_MISSING``."""
    if key in results:
        return results[key]
    value: Any = results
    for part in key.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.lstrip("-").isdigit() and -len(value) <= int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _items(value: Any) -> list[tuple[str, float]] | None:
    """The numbers min/max apply to, each with its label: the value itself (label ""), or
    every item of a list (``[i]``) or dict (``.key``); None if any is not a number."""
    if _is_number(value):
        return [("", value)]
    if isinstance(value, list) and value and all(_is_number(x) for x in value):
        return [(f"[{i}]", x) for i, x in enumerate(value)]
    if isinstance(value, dict) and value and all(_is_number(x) for x in value.values()):
        return [(f".{k}", x) for k, x in value.items()]
    return None


def check_bands(results: dict[str, Any], bands: dict[str, Any]) -> list[str]:
    """Every way ``results`` falls outside ``bands``, one readable line each."""
    problems = []
    for key, band in bands.items():
        if key.startswith("_"):
            continue
        if not isinstance(band, dict) or not band or set(band) - BAND_CHECKS or (
                "tol" in band and "equals" not in band):
            problems.append(f"{key}: band {band!r} is malformed; expected an object using "
                            f"{sorted(BAND_CHECKS)} ('tol' only with 'equals')")
            continue
        value = lookup(results, key)
        if value is _MISSING:
            problems.append(f"{key}: not recorded; results have {sorted(results)}")
            continue
        if "min" in band or "max" in band:
            items = _items(value)
            if items is None:
                problems.append(f"{key}={value!r}: expected a number, or a list or dict of numbers, "
                                "for min/max")
                continue
            for label, x in items:
                if "min" in band and x < band["min"]:
                    problems.append(f"{key}{label}={x!r}: expected >= {band['min']}")
                if "max" in band and x > band["max"]:
                    problems.append(f"{key}{label}={x!r}: expected <= {band['max']}")
        if "equals" in band:
            want = band["equals"]
            if "tol" in band:
                ok = _is_number(value) and math.isclose(value, want, rel_tol=0, abs_tol=band["tol"])
                if not ok:
                    problems.append(f"{key}={value!r}: expected {want!r} +- {band['tol']}")
            elif value != want or isinstance(value, bool) != isinstance(want, bool):
                problems.append(f"{key}={value!r}: expected {want!r}")
        if "len" in band:
            if not isinstance(value, (list, dict)):
                problems.append(f"{key}={value!r}: expected a list or dict of length {band['len']}")
            elif len(value) != band["len"]:
                problems.append(f"{key} has {len(value)} items: expected {band['len']}")
    return problems


def load_bands(name: str) -> dict[str, Any]:
    path = BANDS_DIR / f"{name}.json"
    if not path.is_file():
        pytest.fail(f"notebooks/{name}.ipynb has no bands: add tests/bands/{name}.json "
                    "(format at the top of tests/test_notebooks.py)")
    bands = json.loads(path.read_text())
    assert isinstance(bands, dict), f"{path}: expected a JSON object"
    return bands


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_smoke_results_within_bands(path: Path, tmp_path: Path) -> None:
    bands = load_bands(path.stem)
    result = run_notebook(path, "smoke", tmp_path, progress=False)
    assert result.ok, f"{path.name} failed:\n{result.error}\nexecuted copy: {result.executed}"
    problems = check_bands(result.results, bands)
    assert not problems, f"{path.name} ({tmp_path}):\n" + "\n".join(problems)


def convention_problems(path: Path) -> list[str]:
    """How a committed notebook breaks the convention: outputs or execution counts left
    in, not exactly one code cell tagged ``parameters``, a statement there other than
    ``NAME = LITERAL``, or a common parameter missing from it."""
    nb = nbformat.read(str(path), as_version=4)
    problems = []
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
             and (c.get("outputs") or c.get("execution_count") is not None)]
    if dirty:
        problems.append(f"cells {dirty} have outputs or execution counts; clear them")
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1 or cells[0].cell_type != "code":
        return problems + [f"expected exactly one code cell tagged 'parameters', found "
                           f"{[c.cell_type for c in cells]}"]
    source = cells[0].source
    names = []
    for stmt in ast.parse(source).body:
        literal = (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                   and isinstance(stmt.targets[0], ast.Name))
        if literal:
            try:
                ast.literal_eval(stmt.value)
            except ValueError:
                literal = False
        if literal:
            names.append(stmt.targets[0].id)
        else:
            problems.append(f"parameters cell line {stmt.lineno} "
                            f"{ast.get_source_segment(source, stmt)!r}: expected NAME = LITERAL")
    missing = [n for n in COMMON_PARAMETERS if n not in names]
    if missing:
        problems.append(f"parameters cell lacks {missing}")
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_notebook_is_clean_and_parameterised(path: Path) -> None:
    problems = convention_problems(path)
    assert not problems, f"{path.name}:\n" + "\n".join(problems)


def test_convention_check(tmp_path: Path) -> None:
    fixture = Path(__file__).resolve().parent / "fixtures" / "tiny.ipynb"
    assert convention_problems(fixture) == []
    nb = nbformat.read(str(fixture), as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    cell.source = 'profile = "smoke"\nseed = 1 + 1\nimport os\nx = None'
    nb.cells[-1].execution_count = 3
    bad = tmp_path / "bad.ipynb"
    nbformat.write(nb, str(bad))
    assert convention_problems(bad) == [
        f"cells [{len(nb.cells) - 1}] have outputs or execution counts; clear them",
        "parameters cell line 2 'seed = 1 + 1': expected NAME = LITERAL",
        "parameters cell line 3 'import os': expected NAME = LITERAL",
        "parameters cell lacks ['seed', 'device', 'dataset', 'out_dir']",
    ]
    cell.metadata["tags"] = []
    nbformat.write(nb, str(bad))
    assert convention_problems(bad)[-1] == "expected exactly one code cell tagged 'parameters', found []"


def test_every_bands_file_has_a_notebook() -> None:
    names = {p.stem for p in NOTEBOOKS}
    orphans = sorted(p.name for p in BANDS_DIR.glob("*.json") if p.stem not in names)
    assert not orphans, f"bands without a notebook in notebooks/: {orphans}"


def test_check_bands() -> None:
    results = {"accuracy": 0.91, "timesteps": 25, "layer_widths": [16, 32, 10, 10],
               "accuracy_by_bits": {"2": 0.4, "5": 0.9}, "schedule": [25, 10, 5]}
    good = {"_comment": "ignored", "accuracy": {"min": 0.8, "max": 1.0}, "timesteps": {"equals": 25},
            "layer_widths": {"len": 4}, "accuracy_by_bits.5": {"min": 0.5},
            "schedule.-1": {"equals": 5}, "accuracy_by_bits.2": {"equals": 0.4000001, "tol": 1e-3},
            "accuracy_by_bits": {"len": 2, "min": 0.4, "max": 0.9}, "schedule": {"min": 5}}
    assert check_bands(results, good) == []
    # min/max on a list or dict apply to every item
    assert check_bands({**results, "names": ["a"]}, {"accuracy_by_bits": {"min": 0.5},
                                                     "layer_widths": {"max": 16}, "names": {"min": 0}}) == [
        "accuracy_by_bits.2=0.4: expected >= 0.5", "layer_widths[1]=32: expected <= 16",
        "names=['a']: expected a number, or a list or dict of numbers, for min/max"]
    bad = {"accuracy": {"min": 0.95}, "timesteps": {"equals": 10}, "layer_widths": {"len": 3},
           "accuracy_by_bits.8": {"min": 0.5}, "energy": {"max": 1}, "schedule": {"max": 3},
           "accuracy_by_bits.2": {"above": 0}}
    problems = check_bands(results, bad)
    assert problems == [
        "accuracy=0.91: expected >= 0.95",
        "timesteps=25: expected 10",
        "layer_widths has 4 items: expected 3",
        "accuracy_by_bits.8: not recorded; results have "
        "['accuracy', 'accuracy_by_bits', 'layer_widths', 'schedule', 'timesteps']",
        "energy: not recorded; results have "
        "['accuracy', 'accuracy_by_bits', 'layer_widths', 'schedule', 'timesteps']",
        "schedule[0]=25: expected <= 3", "schedule[1]=10: expected <= 3", "schedule[2]=5: expected <= 3",
        "accuracy_by_bits.2: band {'above': 0} is malformed; expected an object using "
        "['equals', 'len', 'max', 'min', 'tol'] ('tol' only with 'equals')",
    ]

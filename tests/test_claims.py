"""The papers' claims, as measured by each notebook's ``full`` profile, and bands that can fail.

``tests/bands/full/NAME.json`` (same format as the smoke bands, see tests/test_notebooks.py)
states what ``notebooks/NAME.ipynb`` must show when run with ``--profile full``: the claims
of its paper that reproduce here (compression at least 8x, a drop of at most 1.5 points,
T 25 -> 5, ...). A claim that does not reproduce is not a band: the notebook records it and
shows it in its verdict table.

The full runs take minutes each and are marked ``full``: ``make test-full`` runs them
(``.ci/run`` calls it after ``make test``); ``make test`` leaves them out.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from snnkit.notebook import REPO_ROOT
from snnkit.notebook.runner import discover_notebooks, run_notebook
from test_notebooks import check_bands

NOTEBOOKS = discover_notebooks(REPO_ROOT / "notebooks")
BANDS = Path(__file__).resolve().parent / "bands"
FULL_BANDS = BANDS / "full"

#: The range a recorded quantity can take, by a word in its name (first match wins).
_FRACTIONS = ("accuracy", "sparsity", "density", "utilization", "utilisation", "fraction", "stability")
_NONNEGATIVE = ("params", "seconds", "energy", "synops", "macs", "spikes", "size", "ratio", "compression",
                "timesteps", "latency", "bits", "reduction", "speedup", "count")


def quantity_range(key: str) -> tuple[float, float]:
    """The values a recorded number can take, judged from its name: fractions in [0, 1],
    counts, sizes, energies and ratios in [0, inf), anything else unbounded."""
    name = key.lower()
    if "drop" in name or "difference" in name or "gain" in name:
        return -math.inf, math.inf
    if any(w in name for w in _FRACTIONS):
        return 0.0, 1.0
    if any(w in name for w in _NONNEGATIVE):
        return 0.0, math.inf
    return -math.inf, math.inf


def band_cannot_fail(key: str, band: dict[str, Any]) -> bool:
    """True when ``band`` accepts every value its quantity can take (so it checks nothing)."""
    if "equals" in band or "len" in band:
        return False
    lo, hi = quantity_range(key)
    return band.get("min", -math.inf) <= lo and band.get("max", math.inf) >= hi


def _band_files() -> list[Path]:
    return sorted(BANDS.glob("*.json")) + sorted(FULL_BANDS.glob("*.json"))


def test_quantity_ranges_and_the_can_fail_rule():
    assert quantity_range("accuracy_by_bits.2") == (0.0, 1.0)
    assert quantity_range("energy_uj") == (0.0, math.inf)
    assert quantity_range("accuracy_drop_points") == (-math.inf, math.inf)
    assert band_cannot_fail("accuracy_by_bits.2", {"min": 0.0, "max": 1.0})
    assert band_cannot_fail("energy_uj", {"min": 0})
    assert not band_cannot_fail("accuracy_by_bits.2", {"min": 0.05, "max": 1.0})
    assert not band_cannot_fail("energy_uj", {"max": 3.0})
    assert not band_cannot_fail("layer_widths", {"len": 5})
    assert not band_cannot_fail("accuracy_drop_points", {"max": 1.5})


@pytest.mark.parametrize("path", _band_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_band_can_fail(path: Path):
    bands = json.loads(path.read_text())
    useless = [f"{key}: {band}" for key, band in bands.items()
               if not key.startswith("_") and isinstance(band, dict) and band_cannot_fail(key, band)]
    assert not useless, (f"{path}: these bands accept every value their quantity can take, so they "
                         "cannot fail; narrow them:\n" + "\n".join(useless))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_notebook_states_its_claims_as_full_bands(path: Path):
    full = FULL_BANDS / f"{path.stem}.json"
    assert full.is_file(), f"notebooks/{path.name} has no full-profile bands: add {full.relative_to(REPO_ROOT)}"
    bands = {k: v for k, v in json.loads(full.read_text()).items() if not k.startswith("_")}
    assert bands, f"{full}: states no claim"


@pytest.mark.full
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_full_profile_reproduces_the_claims(path: Path, tmp_path: Path):
    bands = json.loads((FULL_BANDS / f"{path.stem}.json").read_text())
    result = run_notebook(path, "full", tmp_path, progress=False)
    assert result.ok, f"{path.name} failed:\n{result.error}\nexecuted copy: {result.executed}"
    problems = check_bands(result.results, bands)
    assert not problems, f"{path.name}, full profile ({tmp_path}):\n" + "\n".join(problems)

"""Bands that can catch a broken step: accuracy floors clearly above chance, no length-only checks.

Every bands file (``tests/bands/NAME.json`` and ``tests/bands/full/NAME.json``) declares
``"_chance"``: the accuracy of guessing on its notebook's data set (1 / classes for
balanced classes: 0.1 on digits, 1/11 on gestures). Then:

- a band on an accuracy (a key with "accuracy" in its name that is not a difference,
  drop, gain, margin or ratio) with a floor must put the floor at least
  ``CHANCE_MARGIN`` above chance: a step that broke and left the net guessing must fail
  it. A ceiling alone (``{"max": 0.8}``: a collapse the paper predicts) is allowed;
- a band that checks only a length (``{"len": 3}``) must also check the items
  (``min``/``max`` apply to every item of a list or dict; or ``equals``).

What cannot fail at all (``{"min": 0, "max": 1}`` on an accuracy) is refused by
``tests/test_claims.py``.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from test_claims import band_cannot_fail

BANDS = Path(__file__).resolve().parent / "bands"
CHANCE_MARGIN = 0.1
"""How far above chance an accuracy floor must sit (accuracy as a fraction)."""

_NOT_AN_ACCURACY = ("drop", "difference", "gain", "minus", "margin", "points", "ratio")


def is_accuracy(key: str) -> bool:
    """Whether a band key names an accuracy (a fraction that guessing brings to chance),
    rather than a difference or ratio of accuracies."""
    name = key.lower()
    return "accuracy" in name and not any(word in name for word in _NOT_AN_ACCURACY)


def band_problems(key: str, band: dict[str, Any], chance: float) -> list[str]:
    """Why ``band`` on ``key`` cannot catch a broken step, one line each (empty: it can)."""
    problems = []
    if is_accuracy(key) and "min" in band and band["min"] < chance + CHANCE_MARGIN - 1e-12:
        problems.append(f"{key}: floor {band['min']} is not clearly above chance {chance:.3g}; "
                        f"expected a floor >= {chance + CHANCE_MARGIN:.3g}, or no band if the profile "
                        "cannot train above that")
    bounds = {k: band[k] for k in ("min", "max") if k in band}
    if "len" in band and "equals" not in band and (not bounds or band_cannot_fail(key, bounds)):
        problems.append(f"{key}: checks only a length ({band}); add min/max for its items "
                        "(they apply to every item of a list or dict) that a wrong value would fail")
    return problems


def declared_chance(bands: dict[str, Any], path: Path) -> float:
    chance = bands.get("_chance")
    if isinstance(chance, bool) or not isinstance(chance, (int, float)) or not 0 < chance < 1:
        raise ValueError(f"{path}: '_chance' is {chance!r}; expected the accuracy of guessing on the "
                         "notebook's data set, a number in (0, 1), e.g. 0.1 for ten balanced classes")
    return float(chance)


def _band_files() -> list[Path]:
    return sorted(BANDS.glob("*.json")) + sorted((BANDS / "full").glob("*.json"))


@pytest.mark.parametrize("path", _band_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_bands_can_catch_a_broken_step(path: Path):
    bands = json.loads(path.read_text())
    chance = declared_chance(bands, path)
    problems = [line for key, band in bands.items() if not key.startswith("_") and isinstance(band, dict)
                for line in band_problems(key, band, chance)]
    assert not problems, f"{path}:\n" + "\n".join(problems)


def test_the_rule_itself():
    assert is_accuracy("accuracy_by_timesteps.1") and is_accuracy("table.pca.accuracy")
    assert not is_accuracy("accuracy_drop_points") and not is_accuracy("rescaw_gain_low_bits")
    assert not is_accuracy("attention_minus_magnitude_points") and not is_accuracy("energy_uj")
    # the examples: floors at or below chance
    assert band_problems("fp_accuracy", {"min": 0.05, "max": 1.0}, 1 / 11) == [
        "fp_accuracy: floor 0.05 is not clearly above chance 0.0909; expected a floor >= 0.191, or no "
        "band if the profile cannot train above that"]
    assert band_problems("no_attention_accuracy", {"min": 0.1, "max": 1.0}, 0.1)
    assert band_problems("accuracy_by_timesteps.1", {"min": 0.15}, 0.1)
    assert band_problems("accuracy", {"min": 0.2, "max": 1.0}, 0.1) == []
    assert band_problems("accuracy_by_sparsity.95", {"max": 0.8}, 1 / 11) == []  # a ceiling: a collapse
    assert band_problems("accuracy_drop_points", {"min": -5}, 0.1) == []
    assert band_problems("layer_widths", {"len": 5}, 0.1) == [
        "layer_widths: checks only a length ({'len': 5}); add min/max for its items (they apply to every "
        "item of a list or dict) that a wrong value would fail"]
    assert band_problems("sparsity_by_layer", {"len": 3, "min": 0.0, "max": 1.0}, 0.1)  # a fraction's whole range
    assert band_problems("accuracy_runs", {"len": 3, "min": 0.05}, 0.1)  # the items' floor counts too
    assert band_problems("layer_widths", {"len": 5, "min": 1}, 0.1) == []
    assert band_problems("widths", {"len": 3, "equals": [8, 16, 32]}, 0.1) == []
    with pytest.raises(ValueError, match=r"x.json: '_chance' is None; expected"):
        declared_chance({}, Path("x.json"))
    with pytest.raises(ValueError, match=r"'_chance' is 10"):
        declared_chance({"_chance": 10}, Path("x.json"))
    assert math.isclose(declared_chance({"_chance": 1 / 11}, Path("x.json")), 0.0909, abs_tol=1e-4)

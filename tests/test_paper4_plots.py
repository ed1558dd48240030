"""The QP-SNN notebook's figures (snnkit.notebook.paper4): bars at the means, axes from 0, labels."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from snnkit.notebook.paper4 import pruning_panels, stability_panels  # noqa: E402


def _heights(ax) -> list[float]:
    return [round(p.get_height(), 6) for p in ax.patches]


def test_pruning_panels_draw_the_means_from_zero_with_value_labels():
    runs = pd.DataFrame({"criterion": ["svs", "svs", "random", "random"], "seed": [0, 1, 0, 1],
                         "before fine-tuning": [0.5, 0.7, 0.2, 0.4], "accuracy": [0.9, 0.8, 0.85, 0.85]})
    fig = pruning_panels(runs, ["svs", "random"], 0.95, "40 % removed")
    before, after = fig.axes
    assert _heights(before) == [0.6, 0.3]
    assert _heights(after) == [0.85, 0.85]
    assert before.get_ylim()[0] == 0.0 and after.get_ylim()[0] == 0.0
    assert [t.get_text() for t in before.texts] == ["0.600", "0.300"]
    assert [t.get_text() for t in before.get_xticklabels()] == ["SVS", "random"]
    assert [t.get_text() for t in after.get_legend().get_texts()] == ["unpruned (0.950)"]
    plt.close(fig)
    with pytest.raises(ValueError, match=r"criteria \['l1'\] have no runs"):
        pruning_panels(runs, ["svs", "l1"], 0.95)
    with pytest.raises(ValueError, match=r"pruning table: columns \['accuracy'\] missing"):
        pruning_panels(runs.drop(columns="accuracy"), ["svs"], 0.95)


def test_stability_panels_draw_mean_agreement_per_layer_and_the_chance_line():
    stab = pd.DataFrame({"criterion": ["svs", "svs", "sca", "sca"], "seed": [0, 1, 0, 1],
                         "layer": ["conv1"] * 4, "spearman": [0.8, 0.6, -0.2, 0.0], "overlap": [1.0, 0.5, 0.6, 0.6]})
    fig = stability_panels(stab, 0.6, "agreement")
    rho, overlap = fig.axes
    assert _heights(rho) == [-0.1, 0.7]  # columns in sorted order: sca, svs
    assert _heights(overlap) == [0.6, 0.75]
    assert rho.get_ylim()[0] == pytest.approx(-0.25)
    assert overlap.get_ylim()[0] == 0.0
    assert "chance (0.60)" in [t.get_text() for t in overlap.get_legend().get_texts()]
    plt.close(fig)

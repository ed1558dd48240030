"""Pareto fronts, the cheapest method within an accuracy budget, and their figure."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from snnkit.notebook.config import figure_has_data  # noqa: E402
from snnkit.notebook.pareto import cheapest_within, pareto_front, pareto_plot  # noqa: E402

ROWS = {
    "dense": {"accuracy": 0.97, "energy": 10.0, "T": 6},
    "pca": {"accuracy": 0.94, "energy": 4.0, "T": 6},
    "random": {"accuracy": 0.93, "energy": 5.0, "T": 6},
    "duq": {"accuracy": 0.89, "energy": 1.0, "T": 6},
    "lamp": {"accuracy": 0.95, "energy": 3.0, "T": 5},
}


def test_pareto_front_by_hand():
    assert pareto_front([1, 2, 3, 2], [0.5, 0.9, 0.95, 0.8]) == [0, 1, 2]
    # dense 10/.97, pca 4/.94 (beaten by lamp 3/.95), random beaten, duq 1/.89, lamp 3/.95
    names = list(ROWS)
    front = pareto_front([r["energy"] for r in ROWS.values()], [r["accuracy"] for r in ROWS.values()])
    assert [names[i] for i in front] == ["duq", "lamp", "dense"]
    assert pareto_front([2, 2], [0.5, 0.5]) == [0]  # identical points: the first
    assert pareto_front([3, 1], [0.9, 0.9]) == [1]  # same score, dearer: beaten
    assert pareto_front([], []) == []
    with pytest.raises(ValueError, match="2 costs and 1 scores"):
        pareto_front([1, 2], [0.5])
    with pytest.raises(ValueError, match=r"scores\[1\]=nan: expected a finite number"):
        pareto_front([1, 2], [0.5, float("nan")])


def test_cheapest_within_a_budget():
    assert cheapest_within(ROWS, "energy", 0.94) == "lamp"
    assert cheapest_within(ROWS, "energy", 0.96) == "dense"
    assert cheapest_within(ROWS, "energy", 0.80) == "duq"
    assert cheapest_within(ROWS, "energy", 0.99) is None
    assert cheapest_within(ROWS, "energy", 0.90, among=["pca", "random"]) == "pca"
    # a tie in cost (T = 6) goes to the higher accuracy
    assert cheapest_within(ROWS, "T", 0.90, among=["random", "pca", "dense"]) == "dense"
    with pytest.raises(ValueError, match=r"methods \['svs'\] are not in the table"):
        cheapest_within(ROWS, "energy", 0.9, among=["svs"])
    with pytest.raises(ValueError, match="row 'dense' has no 'size'"):
        cheapest_within(ROWS, "size", 0.9)


def test_pareto_plot_draws_points_front_highlight_and_floor():
    spread = {"pca": {"accuracy": (0.92, 0.96), "energy": (3.5, 4.5)}}
    ax = pareto_plot(ROWS, "energy", spread=spread, highlight="lamp", min_score=0.94, logx=True)
    fig = ax.figure
    assert figure_has_data(fig)
    labels = ax.get_legend_handles_labels()[1]
    assert set(ROWS) < set(labels) and "cheapest within budget: lamp" in labels
    front = next(line for line in ax.get_lines() if line.get_label() == "Pareto front")
    assert list(front.get_xdata()) == [1.0, 3.0, 10.0] and list(front.get_ydata()) == [0.89, 0.95, 0.97]
    assert ax.get_xscale() == "log"
    label = ax.xaxis.get_major_formatter()
    assert [label(v, 0) for v in (0.05, 20, 5000, 50000, 2e6)] == ["0.05", "20", "5000", "50k", "2M"]
    plt.close(fig)
    ax = pareto_plot(ROWS, "T", methods=["pca", "random"], colors={"pca": "red", "random": "blue"})
    assert ax.get_xlim() == (5.0, 7.0)  # one integer cost: a window of +-1 around it
    assert {"pca", "random"} < set(ax.get_legend_handles_labels()[1])
    assert sorted(t.get_text() for t in ax.texts) == ["pca", "random"]  # each point named beside it
    assert list(pareto_plot(ROWS, "T", methods=["pca", "random"], point_labels=False).texts) == []  # legend only
    assert "dense" not in ax.get_legend_handles_labels()[1]
    plt.close(ax.figure)
    with pytest.raises(ValueError, match="at least one method"):
        pareto_plot(ROWS, "energy", methods=[])
    with pytest.raises(ValueError, match=r"methods \['x'\] are not in the table"):
        pareto_plot(ROWS, "energy", methods=["x"])

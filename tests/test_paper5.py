"""Notebook 05's tables and figures (snnkit.notebook.paper5), on hand-made runs."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from snnkit.compress.core import Compressed, Step  # noqa: E402
from snnkit.compress.temporal import choose_timesteps  # noqa: E402
from snnkit.notebook import paper5  # noqa: E402

LAYERS = ("body.layers.0.weight", "head.weight")
LABELS = {"body.layers.0": "conv1", "head": "fc2"}


def fake_run(accs: list[float], sparsities: list[float]) -> Compressed:
    """An ``"iterative"`` result with one round per accuracy."""
    steps = [Step(f"round {k}", 4, 1, None, s, {LAYERS[0]: s / 2, LAYERS[1]: s}, test_acc=a)
             for k, (a, s) in enumerate(zip(accs, sparsities), start=1)]
    return Compressed(nn.Linear(1, 1), "iterative", 4, steps)


def study_runs() -> dict[str, list[Compressed]]:
    return {"lamp": [fake_run([0.9, 0.8], [0.25, 0.4375]), fake_run([0.7, 0.6], [0.25, 0.4375])],
            "global": [fake_run([0.9, 0.7], [0.25, 0.4375]), fake_run([0.8, 0.65], [0.25, 0.4375])],
            "uniform+": [fake_run([0.85, 0.75], [0.25, 0.4375]), fake_run([0.6, 0.5], [0.25, 0.4375])]}


def test_spatial_table_by_hand():
    study = paper5.spatial_table(study_runs(), [0.95, 0.9], LABELS)
    assert study.by_run.index.tolist() == ["run 1", "run 2"]
    assert study.by_run.columns.tolist() == ["lamp", "global", "uniform+"]
    assert study.by_method.to_dict() == pytest.approx({"lamp": 0.7, "global": 0.675, "uniform+": 0.625})
    assert study.by_round["lamp"] == pytest.approx([0.8, 0.7])
    assert study.layer_sparsity["global"] == pytest.approx({"conv1": 0.21875, "fc2": 0.4375})
    # LAMP minus the best other rule, run by run: 0.8 - 0.75 and 0.6 - 0.65, in points
    assert study.lamp_margins == pytest.approx([5.0, -5.0])
    assert len(study.rounds) == 12 and len(study.final) == 6


def test_spatial_table_refuses_runs_that_do_not_line_up():
    with pytest.raises(ValueError, match="expected one per dense run"):
        paper5.spatial_table(study_runs(), [0.95], LABELS)


def test_event_options():
    assert paper5.event_options("event-gestures-hard", 16, 16, 30) == {
        "timesteps": 16, "size": 16, "n_train": 30, "n_val": 5, "n_test": 45}
    assert paper5.event_options("dvs-gesture", 10, 128, 30) == {"timesteps": 10, "size": 128}


def test_figures_show_what_they_say():
    study = paper5.spatial_table(study_runs(), [0.95, 0.9], LABELS)
    fig = paper5.sparsity_figure(study.rounds, [0.95, 0.9], 4)
    lines = {ln.get_label(): ln for ln in fig.axes[0].get_lines()}
    assert list(lines["LAMP"].get_xdata()) == pytest.approx([25.0, 43.75])
    assert list(lines["LAMP"].get_ydata()) == pytest.approx([0.8, 0.7])
    plt.close(fig)
    fig = paper5.layer_figure(study_runs(), 2, LABELS, {"conv1": 48, "fc2": 20}, [0.25, 0.4375])
    heights = sorted(round(p.get_height(), 4) for p in fig.axes[0].patches if p.get_height() > 0)
    assert heights == [21.875] * 3 + [43.75] * 3
    assert "43.8 % removed" in fig.axes[0].get_title()
    plt.close(fig)
    with pytest.raises(ValueError, match="round_=3"):
        paper5.layer_figure(study_runs(), 3, LABELS, {}, [0.25, 0.4375])


def test_kl_figures_mark_the_chosen_t():
    kl = torch.tensor([2.0, 1.0, 0.5, 0.5])
    choice = choose_timesteps(kl, 0.01)
    assert choice.T == 3
    fig = paper5.kl_figure([choice], {0: [0.3, 0.5, 0.7, 0.7]}, [0.7], [0.72], 0.01)
    star = [ln for ln in fig.axes[0].get_lines() if ln.get_label() == "chosen t"][0]
    assert list(star.get_xdata()) == [3]
    plt.close(fig)
    fig = paper5.threshold_figure(choice, [0.3, 0.5, 0.7, 0.7])
    assert fig.axes[0].get_title() == "threshold 0.010: t = 3 of 4 (25 % fewer steps), accuracy 0.700"
    plt.close(fig)


def test_event_data_cuts_a_loaded_set_to_the_clips_asked_for():
    ds = paper5.event_data("event-gestures", 4, 16, 2, 6, seed=0)
    assert ds.name == "event-gestures" and tuple(ds.train.x.shape[1:]) == (4, 2, 16, 16)
    assert len(ds.train) == 2 * ds.num_classes and torch.bincount(ds.train.y).tolist() == [2] * ds.num_classes
    assert len(ds.test) == 6
    whole = paper5.event_data("event-gestures", 4, 16, None, seed=0)
    assert len(whole.train) > len(ds.train) and len(whole.test) > 6
    hard = paper5.event_data("event-gestures-hard", 4, 16, 3, seed=0)
    assert len(hard.train) == 3 * hard.num_classes and len(hard.test) == paper5.HARD_TEST * hard.num_classes

"""Shared figures: labelled axes and the numbers they show."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest
import torch

from snnkit.notebook import plots
from snnkit.data import load_dataset


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_membrane_trace_marks_the_hand_computed_spikes():
    # constant 0.6, beta 0.5: U = 0.6, 0.9, 1.05 -> one spike at t=2, then 0.125, 0.6625
    fig = plots.membrane_trace(torch.full((5,), 0.6), beta=0.5, threshold=1.0)
    ax_u = fig.axes[1]
    assert ax_u.get_xlabel() == "time step t" and "U" in ax_u.get_ylabel()
    spikes_line = [l for l in ax_u.get_lines() if l.get_label().startswith("spikes")][0]
    assert spikes_line.get_label() == "spikes (1)" and list(spikes_line.get_xdata()) == [2]


def test_spike_raster_counts_spikes():
    spikes = torch.zeros(4, 5)
    spikes[0, 1] = spikes[2, 2] = spikes[3, 0] = 1
    fig = plots.spike_raster(spikes)
    ax = fig.axes[0]
    assert ax.get_title() == "3 spikes from 3 of 5 neurons"
    assert sorted(ax.collections[0].get_offsets().tolist()) == [[0, 1], [2, 2], [3, 0]]
    assert ax.get_xlabel() == "time step t" and ax.get_ylabel() == "neuron index"


def test_spike_raster_draws_active_neurons_across_the_layer():
    # 4096 neurons of which the first 518 are silent, as in the tour's first layer
    spikes = torch.zeros(10, 4096)
    spikes[::2, 518::7] = 1  # every 7th neuron from 518 on fires at even steps
    fig = plots.spike_raster(spikes, max_neurons=200)
    drawn = fig.axes[0].collections[0].get_offsets()
    neurons = sorted(set(drawn[:, 1].tolist()))
    assert len(neurons) == 200 and neurons[0] == 518 and neurons[-1] == 518 + 7 * 511  # first to last active
    assert len(drawn) == 200 * 5
    assert fig.axes[0].get_title() == "2560 spikes from 512 of 4096 neurons, 200 drawn"


def test_sweep_and_bars_show_their_values():
    fig = plots.sweep([1, 2, 4], {"a": [0.1, 0.5, 0.9], "b": [0.2, 0.3, 0.4]}, "T", "accuracy [fraction]")
    ax = fig.axes[0]
    assert [list(l.get_ydata()) for l in ax.get_lines()] == [[0.1, 0.5, 0.9], [0.2, 0.3, 0.4]]
    assert ax.get_legend() is not None and ax.get_ylabel() == "accuracy [fraction]"
    fig = plots.bars({"SNN": 1.0, "ANN": 3.0}, "energy [uJ]")
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert heights == [1.0, 3.0] and fig.axes[0].get_ylabel() == "energy [uJ]"


def test_samples_and_event_frames():
    digits = load_dataset("digits")
    fig = plots.samples(digits)
    assert len(fig.axes) == 10 and fig.axes[3].get_title() == digits.classes[3]
    x = torch.zeros(20, 2, 8, 8)
    fig = plots.event_frames(x, max_frames=5)
    assert [a.get_title() for a in fig.axes] == ["t=0", "t=5", "t=10", "t=14", "t=19"]


def test_data_grid_draws_one_row_per_set_and_one_sample_per_class():
    from snnkit.data import Dataset, Split

    seq = Dataset("seqs", Split(torch.arange(12.0).view(3, 1, 4), torch.tensor([0, 1, 2])),
                  Split(torch.zeros(1, 1, 4), torch.tensor([0])), Split(torch.zeros(2, 1, 4), torch.tensor([0, 1])),
                  3, "static", (1, 4), ["a", "b", "c"])
    events = torch.zeros(2, 3, 2, 5, 5)
    events[0, :, 0, 1, 1] = 1.0  # class 0: three ON events at one pixel
    ev = Dataset("ev", Split(events, torch.tensor([0, 1])), Split(events[:1], torch.tensor([0])),
                 Split(events[:1], torch.tensor([0])), 2, "event", (3, 2, 5, 5), ["on", "off"])
    fig = plots.data_grid([seq, ev], notes={"ev": "SNN 0.900"})
    axes = fig.axes
    assert len(axes) == 2 * 3  # two rows, as many columns as the most classes
    assert [a.get_title() for a in axes[:3]] == ["a", "b", "c"]
    assert list(axes[1].get_lines()[0].get_ydata()) == [4.0, 5.0, 6.0, 7.0]  # class b's sequence
    assert axes[3].images[0].get_array()[1, 1] == 3.0  # ON minus OFF, summed over time
    assert not axes[5].axison  # the event set has only two classes
    assert axes[0].get_ylabel() == "seqs\nstatic (1, 4)\n3 / 1 / 2\n3 classes"
    assert axes[3].get_ylabel().endswith("2 classes\nSNN 0.900")
    with pytest.raises(ValueError, match="split='dev'"):
        plots.data_grid([seq], split="dev")


def test_metric_panels_one_axis_per_metric_one_bar_per_model():
    rows = {"dense": {"accuracy": 91.0, "size_kb": 24.0, "energy_uj": 1.66},
            "DuQ, 2 bits": {"accuracy": 80.0, "size_kb": 1.65, "energy_uj": 0.27}}
    fig = plots.metric_panels(rows, {"accuracy": "test accuracy [%]", "size_kb": "size [kB]",
                                     "energy_uj": "energy [uJ]"}, "before and after")
    assert len(fig.axes) == 3
    assert [ax.get_ylabel() for ax in fig.axes] == ["test accuracy [%]", "size [kB]", "energy [uJ]"]
    assert [[p.get_height() for p in ax.patches] for ax in fig.axes] == [[91.0, 80.0], [24.0, 1.65], [1.66, 0.27]]
    assert [t.get_text() for t in fig.axes[1].texts] == ["24", "1.65"]
    assert fig.axes[0].get_ylim()[0] == 0 and fig.axes[0].get_ylim()[1] > 91.0  # room for the labels
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["dense", "DuQ, 2 bits"]
    # a model keeps its colour in every panel
    assert fig.axes[0].patches[1].get_facecolor() == fig.axes[2].patches[1].get_facecolor()
    assert fig.texts[0].get_text() == "before and after"
    with pytest.raises(ValueError, match=r"model 'dense' has no value for \['spikes'\]"):
        plots.metric_panels(rows, {"spikes": "spikes [count]"})
    with pytest.raises(ValueError, match="rows has 0 models"):
        plots.metric_panels({}, {"accuracy": "accuracy"})
    big = plots.metric_panels({"dense": {"energy_nj": 5109.39}, "pruned": {"energy_nj": 999.6}}, {"energy_nj": "nJ"})
    assert [t.get_text() for t in big.axes[0].texts] == ["5,109", "1,000"]  # not 1e+03

"""Compression figures: weights against a [-1, 1] grid; spike maps with kept/pruned cells per criterion."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from snnkit.notebook.compression_plots import grid_histogram, kept_channels


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_kept_channels_draws_each_map_and_marks_the_kept_cells():
    maps = torch.zeros(4, 3, 3)
    maps[2] = torch.eye(3)
    fig = kept_channels(maps, {"svs": torch.tensor([2, 0]), "sca": [1]})
    assert len(fig.axes) == 5  # four maps, one kept/pruned panel
    assert np.array_equal(fig.axes[2].images[0].get_array(), np.eye(3))
    cells = fig.axes[-1].images[0].get_array()
    assert cells.tolist() == [[1, 0, 1, 0], [0, 1, 0, 0]]
    assert [t.get_text() for t in fig.axes[-1].get_yticklabels()] == ["svs", "sca"]
    assert fig._suptitle.get_text() == "4 channels"


def test_kept_channels_of_a_linear_layer_and_a_cut_off_row():
    fig = kept_channels(torch.tensor([0.1, 0.5, 0.0]), {"l1": [0, 1]}, max_channels=2)
    assert [p.get_height() for p in fig.axes[0].patches] == pytest.approx([0.1, 0.5])
    assert fig.axes[1].images[0].get_array().tolist() == [[1, 1]]
    assert fig._suptitle.get_text() == "3 channels, first 2 drawn"
    with pytest.raises(ValueError, match="expected indices in \\[0, 2\\]"):
        kept_channels(torch.zeros(3), {"l1": [3]})
    with pytest.raises(ValueError, match="keeps is empty"):
        kept_channels(torch.zeros(3), {})


def test_grid_histogram_draws_the_levels_and_counts_the_clipped_weights():
    x = torch.tensor([-2.0, -0.5, 0.0, 0.1, 0.2, 1.5, 0.3, 0.4])
    fig = grid_histogram(x, 2, "two bits")
    ax = fig.axes[0]
    levels = sorted(l.get_xdata()[0] for l in ax.get_lines())
    assert levels == pytest.approx([-1.0, -1 / 3, 1 / 3, 1.0])
    assert sum(p.get_height() for p in ax.patches if p.get_width() < 0.1) == 8  # every weight is counted
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["weights (25.0% beyond +-1, clipped)", "levels"] and ax.get_title() == "two bits"
    assert not [l for l in grid_histogram(x, 7).axes[0].get_lines()]  # 128 levels: not drawn
    with pytest.raises(ValueError, match="bits=0: expected an integer >= 1"):
        grid_histogram(x, 0)

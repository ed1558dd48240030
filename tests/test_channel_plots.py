"""The kept-channels figure: one spike map per channel, one row of kept/pruned cells per criterion."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from snnkit.notebook.channel_plots import kept_channels


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

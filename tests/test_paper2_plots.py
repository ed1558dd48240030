"""Energy accounting and figures of the attention-guided compression notebook (paper 2)."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from snnkit.notebook.paper2 import (CONVENTIONS, energy_figure, energy_table, one_per_resolution,  # noqa: E402
                                    plain_log_axis, sample_title, show_image, three_digits)

MAC_PJ = 4.6  # fp32 at 45 nm, snnkit/metrics/energy_45nm.json


def _linear(weights: list[float]) -> nn.Sequential:
    layer = nn.Linear(len(weights), 1, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([weights]))
    return nn.Sequential(nn.Flatten(), layer)


def test_energy_table_prices_dense_macs_and_effective_counts():
    # 4 weights, 2 of them zero; input with one zero entry: dense 4 MACs, effective 1
    model = _linear([1.0, 0.0, 2.0, 0.0])
    x = torch.tensor([[[[1.0, 1.0, 0.0, 1.0]]]])  # (1, 1, 1, 4)
    table = energy_table({"ann": (model, None)}, x)
    assert list(table.columns) == list(CONVENTIONS)
    assert table.loc["ann", "dense MACs"] == pytest.approx(4 * MAC_PJ * 1e-6)
    assert table.loc["ann", "effective counts"] == pytest.approx(1 * MAC_PJ * 1e-6)


def test_plain_log_axis_labels_fractions_as_decimals():
    fig, ax = plt.subplots()
    ax.plot([0.01, 1.0], [0.02, 0.6])
    ax.set_yscale("log")
    plain_log_axis(ax, "y")
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert "0.05" in labels and "0.1" in labels and not any("10^" in s or "times" in s for s in labels)
    with pytest.raises(ValueError, match="axis='z'"):
        plain_log_axis(ax, "z")
    plt.close(fig)


def test_energy_figure_labels_every_bar():
    model = _linear([1.0, 0.0, 2.0, 0.0])
    table = energy_table({"dense ANN": (model, None), "compressed ANN": (model, None)}, torch.ones(2, 1, 1, 4))
    fig = energy_figure(table)
    ax = fig.axes[0]
    values = sorted(float(t.get_text()) for t in ax.texts)
    assert len(values) == 4 and values[-1] == pytest.approx(4 * MAC_PJ * 1e-6, rel=1e-2)
    plt.close(fig)


def test_one_per_resolution_keeps_the_last_layer_of_each_size():
    maps = {"conv1": torch.zeros(2, 32, 32), "conv2": torch.zeros(2, 32, 32), "conv3": torch.zeros(2, 16, 16),
            "conv4": torch.zeros(2, 16, 16), "conv5": torch.zeros(2, 8, 8)}
    assert one_per_resolution(maps) == ["conv2", "conv4", "conv5"]
    assert one_per_resolution({"conv1": torch.zeros(1, 28, 28), "conv2": torch.zeros(1, 14, 14)}) == ["conv1", "conv2"]
    with pytest.raises(ValueError, match="maps is empty"):
        one_per_resolution({})


def test_show_image_draws_grey_and_colour_images():
    fig, (a, b) = plt.subplots(1, 2)
    show_image(a, torch.full((1, 4, 5), 0.5), "digit 3")
    show_image(b, torch.rand(3, 6, 7) * 2, "cat")  # values above 1 clipped
    assert a.get_images()[0].get_array().shape == (4, 5) and a.get_title() == "digit 3"
    rgb = b.get_images()[0].get_array()
    assert rgb.shape == (6, 7, 3) and float(rgb.max()) <= 1.0 and not a.get_xticks().size
    with pytest.raises(ValueError, match=r"shape \(2, 4, 4\)"):
        show_image(a, torch.zeros(2, 4, 4))
    plt.close(fig)


def test_sample_title_says_digit_only_for_digits():
    assert sample_title([str(i) for i in range(10)], 3) == "digit 3"
    assert sample_title(["airplane", "automobile", "bird", "cat"], 3) == "cat"
    assert sample_title([], 7) == "digit 7"


def test_three_digits_never_writes_an_exponent():
    assert [three_digits(v) for v in (0.9972, 17.79, 176.8, 1138.4, 25_300.0)] == ["0.997", "17.8", "177", "1,138",
                                                                                    "25,300"]

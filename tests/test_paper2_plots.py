"""Energy accounting and figures of the attention-guided compression notebook (paper 2)."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from snnkit.notebook.paper2 import CONVENTIONS, energy_figure, energy_table, plain_log_axis  # noqa: E402

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

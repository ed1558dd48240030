"""snnkit.notebook.paper1: thresholds for a ratio, equal-parameter widths, energy shares, figures."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from snnkit.compress import variance_widths  # noqa: E402
from snnkit.metrics import energy, measure  # noqa: E402
from snnkit.models import VGGSpec, build  # noqa: E402
from snnkit.encoding import model_input  # noqa: E402
from snnkit.notebook import paper1, plots  # noqa: E402

SPEC = VGGSpec(in_shape=(1, 8, 8), num_classes=10, features=(8, "P", 16, "P"), hidden=(32,), pool="max", bias=False,
               batch_norm=False, readout="mem")


def test_params_of_counts_conv_and_linear_weights():
    # conv 1*8*9 + 8*16*9, fc 16*2*2*32, out 32*10 (no biases)
    assert paper1.params_of(SPEC) == 72 + 1152 + 2048 + 320


def _curves():
    # cumulative variance rising linearly: k components of n explain k/n of the variance
    return [torch.arange(1, w + 1, dtype=torch.float64) / w for w in SPEC.widths]


def test_threshold_for_ratio_is_the_highest_threshold_reaching_it():
    curves = _curves()
    t = paper1.threshold_for_ratio(curves, SPEC, 3.0)
    full = paper1.params_of(SPEC)
    at = full / paper1.params_of(SPEC.with_widths(variance_widths(curves, t)))
    above = full / paper1.params_of(SPEC.with_widths(variance_widths(curves, t + 1e-3)))
    assert at >= 3.0 > above


def test_threshold_for_ratio_refuses_a_ratio_not_above_one():
    with pytest.raises(ValueError, match="ratio=1"):
        paper1.threshold_for_ratio(_curves(), SPEC, 1)


def test_uniform_widths_match_the_parameter_count():
    target = paper1.params_of(SPEC) // 4
    widths = paper1.uniform_widths(SPEC, target)
    got = paper1.params_of(SPEC.with_widths(widths))
    assert abs(got - target) / target < 0.15
    ratios = [w / b for w, b in zip(widths, SPEC.widths)]
    assert max(ratios) - min(ratios) < 0.2  # one factor for every layer


def test_first_layer_share_direct_input_costs_T_times_its_macs():
    torch.manual_seed(0)
    snn = build(SPEC, seed=0)
    x = torch.rand(4, 1, 8, 8)
    report = measure(snn, model_input(x, 4, "direct"))
    first = report.layers[0]
    assert first.macs == first.macs_per_step * 4
    share = paper1.first_layer_share(report)
    assert share == pytest.approx(first.macs * 4.6 / energy(report)["total_pj"])
    rate = measure(snn, model_input(x, 4, "rate", generator=torch.Generator().manual_seed(0)))
    assert rate.layers[0].macs == 0 and paper1.first_layer_share(rate) < share


def test_energy_rows_and_ratio_agree():
    snn, ann = build(SPEC, seed=0), build(SPEC, spiking=False, seed=0)
    x = torch.rand(8, 1, 8, 8)
    rows = paper1.energy_rows({"SNN": (snn, 4)}, {"ANN": ann}, x, ["rate", "direct"], seed=0)
    table = pd.DataFrame(rows).set_index(["network", "input"])
    assert list(table.index) == [("ANN", "analog"), ("SNN", "rate"), ("SNN", "direct")]
    e = table["energy (uJ)"]
    assert paper1.energy_ratio(snn, ann, x, 4, "direct") == pytest.approx(e[("ANN", "analog")] / e[("SNN", "direct")])
    assert table.loc[("ANN", "analog"), "first layer (%)"] < 100
    fig = paper1.energy_bars(table, "energy [uJ]")
    assert len(fig.axes[0].patches) == 3
    plt.close(fig)


def test_figures_have_one_line_per_layer_and_seed_dots():
    fig = paper1.variance_curves(["conv1", "conv2", "fc3"], _curves(), {"0.999": 0.999, "10x": 0.9})
    assert len(fig.axes[0].lines) == 3 + 2
    plt.close(fig)
    fig = paper1.timesteps_runs({16: [0.9, 0.8], 8: [0.85, 0.8], 4: [0.7, 0.75]}, [0.6, 0.65])
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["16", "8", "4"]
    assert list(ax.lines[0].get_ydata()) == pytest.approx([0.85, 0.825, 0.725])
    plt.close(fig)


def test_width_bars_are_labelled_with_their_values():
    fig = plots.widths(["conv1", "conv2"], {"baseline": [64, 128], "kept": [2, 5]}, log=True)
    texts = sorted(t.get_text() for t in fig.axes[0].texts)
    assert texts == ["128", "2", "5", "64"]
    assert fig.axes[0].get_yscale() == "log"
    plt.close(fig)


def test_weight_levels_says_when_levels_are_too_dense_to_draw():
    w = torch.randn(500)
    fig = plots.weight_levels(w, torch.linspace(-1, 1, 255), "conv1: 8 bits")
    assert fig.axes[0].get_title() == "conv1: 8 bits (255 levels, too dense to draw)"
    assert not fig.axes[0].lines
    plt.close(fig)
    fig = plots.weight_levels(w, torch.linspace(-1, 1, 3), "conv1: 2 bits")
    assert "red lines" in fig.axes[0].get_title() and len(fig.axes[0].lines) == 3
    plt.close(fig)

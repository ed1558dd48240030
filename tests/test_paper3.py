"""snnkit.notebook.paper3: the quantization x pruning study of notebook 03, on a tiny conv SNN."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest
import torch

from snnkit.data import Split
from snnkit.metrics import hardware
from snnkit.metrics.hardware import LayerLoad, inference_energy
from snnkit.models import NeuronSpec, VGGSpec, build
from snnkit.notebook import paper3
from snnkit.train import TrainConfig


def tiny_study() -> paper3.QuantPruneStudy:
    spec = VGGSpec(in_shape=(2, 4, 4), num_classes=3, features=(4, "P"), hidden=(8,), bias=False,
                   neuron=NeuronSpec(beta=0.5, threshold=0.5, reset="zero"))
    nets = [build(spec, seed=k) for k in range(2)]
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(12, 3, 2, 4, 4, generator=gen) < 0.4).float()  # (B, T, 2, H, W) events
    split = Split(x, torch.arange(12) % 3)
    cfg = TrainConfig(epochs=1, T=3, batch_size=6, lr=1e-2, loss="mse", progress=False)
    x_energy = x[:4].transpose(0, 1)  # (T, B, 2, H, W)
    return paper3.QuantPruneStudy(nets, split, split, cfg, x_energy, planner="layer")


def test_study_trains_each_net_once_and_prices_it():
    study = tiny_study()
    before = [p.detach().clone() for p in study.pretrained[0].parameters()]
    acc = study.accuracy("isolated", 2, 0.0, 0)
    assert 0.0 <= acc <= 1.0 and len(study.models) == 1
    model = study.model("isolated", 2, 0.0, 0)
    assert study.accuracy("isolated", 2, 0.0, 0) == acc and study.model("isolated", 2, 0.0) is model  # reused
    assert all(torch.equal(a, b) for a, b in zip(before, study.pretrained[0].parameters()))  # input untouched
    loads = study.loads("isolated", 2, 0.0, 0)
    assert [lo.bits for lo in loads] == [2, 2, 2]
    for lo in loads:  # ternary: at most 3 levels per layer
        assert len(torch.unique(lo.weight)) <= 3
    report = study.energy(("isolated", 2, 0.0), "dense")
    assert report.total == pytest.approx(inference_energy(loads, "dense").total)
    assert len(study.accuracies("isolated", None, 0.5)) == 2  # one per pretrained net
    pruned = study.loads("isolated", None, 0.5, 1)
    assert [lo.bits for lo in pruned] == [32, 32, 32]  # full precision priced at 32 bits
    assert paper3.zero_fraction(pruned) == pytest.approx(0.5, abs=0.02)  # every layer cut to half
    with pytest.raises(ValueError, match="net=2"):
        study.accuracy("isolated", 2, 0.0, 2)


def test_zero_fraction_by_hand():
    w = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 2.0]])
    load = LayerLoad("fc", w, bits=2, synapses=8, nonzero_synapses=2, in_neurons=4, out_neurons=2, timesteps=1,
                     density_mean=0.5, density_worst=0.5)
    assert paper3.zero_fraction([load]) == 0.75
    assert paper3.zero_fraction([load, load]) == 0.75
    with pytest.raises(ValueError, match="no weights"):
        paper3.zero_fraction([])


def test_ratio_and_split_tables():
    study = tiny_study()
    ternary, pruned = ("isolated", 2, 0.0), ("joint", 8, 0.5)
    table = paper3.ratio_table(study, ternary, pruned, ("T", "P"), [0])
    assert len(table) == len(hardware.STORAGE_FORMATS.names()) * len(hardware.DENSITIES)
    row = table.query("format == 'dense' and density == 'mean'").iloc[0]
    assert row["T"] == pytest.approx(study.energy(ternary, "dense").total)
    assert row["ratio"] == pytest.approx(study.energy(pruned, "dense").total / row["T"])
    assert row["ratio"] > 1  # 8 bits per weight stored dense against 2
    reports = {"ternary": study.energy(ternary), "pruned": study.energy(pruned, "run-length")}
    split = paper3.energy_split_table(reports)
    assert list(split.columns) == ["DRAM", "global buffer", "scratchpad", "compute", "total", "weights [%]"]
    r = reports["ternary"]
    assert split.loc["ternary", "total"] == pytest.approx(r.total / 1e3)
    assert split.loc["ternary", "weights [%]"] == pytest.approx(100 * r.by_kind["weights"] / r.total)
    fig = paper3.energy_split_figure(reports, "split")
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == list(hardware.LEVEL_NAMES.values())
    with pytest.raises(ValueError, match="reports is empty"):
        paper3.energy_split_figure({})


def test_grid_and_cell_figures():
    study = tiny_study()
    acc = {(2, 0.0): 0.5, (2, 0.5): 0.25, (8, 0.0): 0.75, (8, 0.5): 0.5}
    energy = {cell: 1000.0 * (i + 1) for i, cell in enumerate(acc)}
    fig = paper3.grid_figure(acc, energy, "joint", "run-length")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert sorted(texts) == ["0.250", "0.500", "0.500", "0.750"]
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["0", "50"]
    with pytest.raises(ValueError, match="same"):
        paper3.grid_figure(acc, {(2, 0.0): 1.0}, "joint", "dense")
    model = study.model("isolated", 2, 0.0)
    names = [lo.name for lo in study.loads("isolated", 2, 0.0)]
    fig = paper3.cell_figure(model, study.energy(("isolated", 2, 0.0)), 0.5, 2, 0.0, names)
    assert "test accuracy 0.500" in fig._suptitle.get_text()
    with pytest.raises(ValueError, match="not modules"):
        paper3.cell_figure(model, study.energy(("isolated", 2, 0.0)), 0.5, 2, 0.0, ["conv9"])

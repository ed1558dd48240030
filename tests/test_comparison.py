"""The comparison: every paper's method run from one tiny pretrained SNN through compress(), and
the row of numbers measured for each."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from snnkit.compress import Compressed, global_sparsity
from snnkit.compress.comparison import (COMPARED, MAC16_PJ, PAPER_DEFAULTS, Base, Settings, compare,
                                       compare_at_paper_defaults, method_row, pca_widths)
from snnkit.compress.quant import effective_weight, quant_records
from snnkit.weights import masks_of
from snnkit.data import load_dataset
from snnkit.metrics import hardware
from snnkit.models import NeuronSpec, VGGSpec
from snnkit.recipes import ann_to_snn
from snnkit.train import TrainConfig

T = 3
SETTINGS = Settings(epochs=2, ann_epochs=1, sparsity=0.3, bits=2, pca_threshold=0.9, pca_samples=64,
                    svs_keep=0.5, lamp_rounds=2, seed=0)


@pytest.fixture(scope="module")
def base() -> Base:
    ds = load_dataset("digits", seed=0, size=8).subset(train=192, val=32, test=64).binarized(0.5)
    assert set(torch.unique(ds.train.x).tolist()) == {0.0, 1.0} and len(ds.test) == 64
    spec = VGGSpec(in_shape=ds.input_shape, num_classes=10, features=(8, "P", 8, "P"), hidden=(16,), pool="max",
                   bias=False, batch_norm=False, readout="mem",
                   neuron=NeuronSpec(beta=0.95, threshold=1.0, reset="subtract"))
    ann_cfg = TrainConfig(epochs=6, lr=1e-2, batch_size=32, seed=0, progress=False)
    snn_cfg = TrainConfig(epochs=1, lr=3e-3, T=T, batch_size=32, seed=0, progress=False)
    hybrid = ann_to_snn(spec, ds, ann_cfg, snn_cfg)
    return Base(hybrid.snn, hybrid.ann, ds, snn_cfg, ann_cfg)


@pytest.fixture(scope="module")
def result(base: Base):
    before = {k: v.clone() for k, v in base.snn.state_dict().items()}
    out = compare({0: base}, SETTINGS)
    after = base.snn.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "a method modified the base"
    return out


@pytest.fixture(scope="module")
def runs(result) -> dict[str, Compressed]:
    return {name: r[0] for name, r in result.runs.items()}


def _conv_linear(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def test_settings_are_checked():
    with pytest.raises(ValueError, match=r"lamp_rounds=3: expected a divisor of epochs=4"):
        Settings(epochs=4, ann_epochs=1, lamp_rounds=3)
    with pytest.raises(ValueError, match=r"sparsity=1.0: expected a number in \(0, 1\)"):
        Settings(epochs=1, ann_epochs=1, lamp_rounds=1, sparsity=1.0)
    with pytest.raises(ValueError, match="bits=1: expected an integer >= 2"):
        Settings(epochs=1, ann_epochs=1, lamp_rounds=1, bits=1)
    assert Settings(epochs=2, ann_epochs=1).replace(epochs=4).epochs == 4
    with pytest.raises(ValueError, match="duq_planner='lamp': expected one of 'global', 'layer'"):
        Settings(epochs=1, ann_epochs=1, lamp_rounds=1, duq_planner="lamp")
    with pytest.raises(ValueError, match="unknown comparison entries \\['svd'\\]; expected some of: dense, pca"):
        compare({}, SETTINGS, ["dense", "svd"])


def test_every_method_runs_and_keeps_its_operating_point(base, runs, result):
    assert list(runs) == list(COMPARED) == ["dense", "pca", "random", "attention", "duq", "rescaw-svs",
                                            "lamp-kl", "uniform"]
    assert {n: r.method for n, r in runs.items()} == {
        "dense": "dense", "pca": "pca", "random": "random", "attention": "attention", "duq": "duq",
        "rescaw-svs": "quantize-prune", "lamp-kl": "iterative", "uniform": "quantize"}
    assert all(len(rows) == 1 for rows in result.rows.values()) and all(v > 0 for v in result.seconds.values())
    assert result.values("dense", "T") == [T]
    dense_weights = sum(m.weight.numel() for m in _conv_linear(base.snn))
    # dense: the same network, the base's T
    assert runs["dense"].T == T and runs["dense"].model.spec.widths == base.snn.spec.widths
    # pca and random keep the same number of channels, cut for real
    pca, rnd = runs["pca"], runs["random"]
    assert pca.model.spec.widths == pca.info["widths"] and all(w <= c for w, c in zip(pca.info["widths"], (8, 8, 16)))
    assert sum(rnd.info["widths"]) == sum(pca.info["widths"]) and rnd.model.spec.widths == rnd.info["widths"]
    assert pca.info["widths"] == pca_widths(base, SETTINGS)
    # attention: 70 % of the weights kept (irregular), thresholds and leaks learned; the ANN student, then the SNN
    assert [s.name for s in runs["attention"].history] == ["sparse learning", "fine-tune"]
    kept = sum(int(torch.count_nonzero(m.weight)) for m in _conv_linear(runs["attention"].model))
    assert kept == pytest.approx(0.7 * dense_weights, abs=len(_conv_linear(base.snn)))
    assert runs["attention"].model.spec.neuron.learn_threshold
    # duq: ternary levels on every layer, at least 30 % of the weights zero
    duq = runs["duq"].model
    records = quant_records(duq)
    assert len(records) == 4 and {r.bits for r in records.values()} == {2}
    assert all(torch.unique(effective_weight(m)).numel() <= 3 for m in _conv_linear(duq))
    zeros = sum(int((m.weight == 0).sum()) for m in _conv_linear(duq))
    assert zeros / dense_weights >= 0.3
    # rescaw-svs: half the channels of each layer, first and last layers in full precision
    qp = runs["rescaw-svs"].model
    assert qp.spec.widths == [4, 4, 8]
    assert sorted(quant_records(qp)) == ["body.layers.3", "body.layers.7"]
    # lamp-kl: T chosen by the KL rule, 30 % of the weights masked over two rounds
    lamp = runs["lamp-kl"]
    kl = lamp.info["choice"].normalised.tolist()
    assert 1 <= lamp.T <= T and len(kl) == T and lamp.T == lamp.info["choice"].T
    assert min(kl) == 0.0 and max(kl) == 1.0
    assert kl[lamp.T - 1] < SETTINGS.kl_threshold
    assert global_sparsity(lamp.model) == pytest.approx(0.3, abs=0.01)
    # uniform: every layer at 2 bits
    assert {r.bits for r in quant_records(runs["uniform"].model).values()} == {2}


def test_method_row_measures_the_dense_reference_by_hand(base, runs):
    run = runs["dense"]
    x = base.data.test.x[:16]
    row = method_row(run, base, x)
    n_weights = sum(m.weight.numel() for m in _conv_linear(base.snn))
    assert row["compression"] == 1.0 and row["T"] == T and row["weight_bits"] == 32
    assert row["full_precision_layers"] == 4 and row["nonzero_weights"] == n_weights
    # a full-precision dense net is cheapest stored dense: 32 bits a weight, no index
    assert row["storage_format"] == "dense" and row["size_bits"] == 32 * n_weights
    loads = hardware.profile(run.model, x.unsqueeze(0).expand(T, *x.shape), 32)
    assert row["energy_memory_uj"] == pytest.approx(hardware.inference_energy(loads, "dense").total * 1.5e-6)
    assert MAC16_PJ == 1.5
    assert 0.0 <= row["accuracy"] <= 1.0 and row["spikes_per_inference"] > 0
    assert row["energy_compute_uj"] > 0 and math.isfinite(row["energy_compute_uj"])


def test_method_rows_of_compressed_nets(base, runs, result):
    rows = {name: method_row(r, base, base.data.test.x[:16]) for name, r in runs.items()}
    # the comparison measured each on the whole test split
    full = {name: method_row(r, base) for name, r in runs.items()}
    assert rows["duq"]["weight_bits"] == 2 and rows["duq"]["full_precision_layers"] == 0
    assert rows["rescaw-svs"]["weight_bits"] == 2 and rows["rescaw-svs"]["full_precision_layers"] == 2
    assert rows["lamp-kl"]["T"] == runs["lamp-kl"].T
    assert rows["lamp-kl"]["compression"] == pytest.approx(1 / 0.7, rel=0.02)
    # a 2-bit net moves fewer weight bits than the full-precision one
    assert rows["uniform"]["size_bits"] < rows["dense"]["size_bits"] / 8
    assert rows["uniform"]["energy_memory_uj"] < rows["dense"]["energy_memory_uj"]
    for name, row in rows.items():
        assert row["compression"] >= 1.0 - 1e-9, name
    assert full == {name: r[0] for name, r in result.rows.items()}


def test_paper_defaults_run_each_entry_at_its_own_point(base):
    out = compare_at_paper_defaults({0: base}, SETTINGS, ["lamp-kl"])
    assert list(out.rows) == ["lamp-kl"] and PAPER_DEFAULTS["lamp-kl"] == {"sparsity": 0.98}
    assert out.rows["lamp-kl"][0]["compression"] == pytest.approx(1 / 0.02, rel=0.05)  # 98 % of the weights removed
    with pytest.raises(ValueError, match="no paper defaults"):
        compare_at_paper_defaults({0: base}, SETTINGS, ["duq"])


def test_duq_cuts_every_layer_alike_with_the_layer_planner(base):
    out = compare({0: base}, SETTINGS.replace(duq_planner="layer", epochs=1, lamp_rounds=1), ["duq"])
    masks = masks_of(out.runs["duq"][0].model)
    removed = {name: float((m == 0).float().mean()) for name, m in masks.items()}
    assert len(removed) == 4  # conv1, conv2, the hidden and the output layer: each 30 % (to one weight)
    assert all(abs(r - 0.3) < 0.01 for r in removed.values()), removed

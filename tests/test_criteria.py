"""Pruning criteria: recorded activity, PCA widths on known-rank layers, the registry, Selection."""
from __future__ import annotations

import copy
import pickle

import pytest
import torch

from snnkit.models import NeuronSpec, ResNetSpec, VGGSpec, build
from snnkit.compress.activity import layer_activity, prunable_layers
from snnkit.compress.criteria import CRITERIA, Selection, random_criterion, widths_at, widths_from_scores
from snnkit.compress.pca import explained_variance, pca_width


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def hand_lif_mean(current: float, beta: float, theta: float, T: int) -> float:
    """Mean over T of U[t] for a constant current, soft reset, written out by hand."""
    u, s, total = 0.0, 0.0, 0.0
    for _ in range(T):
        u = beta * u + current - theta * s
        s = 1.0 if u > theta else 0.0
        total += u
    return total / T


def test_layer_activity_matches_the_hand_computed_mean_membrane():
    spec = VGGSpec(in_shape=(1, 2, 2), num_classes=2, features=(2,), hidden=(3,),
                   neuron=NeuronSpec(beta=0.5, threshold=1.0, reset="subtract"))
    model = build(spec, seed=0)
    conv = model.body.layers[0]
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 1, 1] = 1.0  # channel 0: the pixel itself
        conv.weight[1, 0, 1, 1] = 0.5  # channel 1: half of it
    x = torch.full((3, 1, 2, 2), 0.6)
    feats = layer_activity(model, x, T=4)
    assert list(feats) == ["body.layers.1", "body.layers.4"]
    assert feats["body.layers.1"].shape == (3, 2, 2, 2)  # (N, C, H, W)
    assert feats["body.layers.4"].shape == (3, 3)  # (N, C) for the hidden linear layer
    # currents 0.6 and 0.3: U = 0.6, 0.9, 1.05 (spike), 0.125 -> 0.66875; 0.3, 0.45, 0.525, 0.5625
    assert hand_lif_mean(0.6, 0.5, 1.0, 4) == pytest.approx(0.66875)
    assert torch.allclose(feats["body.layers.1"][:, 0], torch.tensor(0.66875))
    assert torch.allclose(feats["body.layers.1"][:, 1], torch.tensor(0.459375))
    # batching does not change the numbers; a Split or (x, y) batches work too
    again = layer_activity(model, [(x[:2], None), (x[2:], None)], T=4)
    # (a different batch size may change the float rounding of the linear layer, not more)
    assert torch.allclose(again["body.layers.4"], feats["body.layers.4"], rtol=0, atol=1e-6)
    # spikes: channel 0 fires once in 4 steps (rate 0.25), channel 1 never
    rates = layer_activity(model, x, T=4, kind="spikes")["body.layers.1"]
    assert torch.equal(rates[:, 0], torch.full((3, 2, 2), 0.25)) and not rates[:, 1].any()
    # the membranes' magnitude: a current of -0.6 gives U = -0.6, -0.9, -1.05, -1.125 (no spike)
    neg = layer_activity(model, -x, T=4, kind="membrane-magnitude")["body.layers.1"]
    assert torch.allclose(neg[:, 0], torch.tensor((0.6 + 0.9 + 1.05 + 1.125) / 4))
    with pytest.raises(ValueError, match="kind='volts': expected one of membrane, spikes"):
        layer_activity(model, x, T=4, kind="volts")
    assert model.training  # the training flag is restored


def test_layer_activity_rate_encoding_is_seeded():
    model = build(VGGSpec(in_shape=(1, 4, 4), num_classes=2, features=(3,)), seed=0)
    x = torch.rand(5, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    a = layer_activity(model, x, T=3, encoding="rate", seed=1)
    b = layer_activity(model, x, T=3, encoding="rate", seed=1)
    c = layer_activity(model, x, T=3, encoding="rate", seed=2)
    assert torch.equal(a["body.layers.1"], b["body.layers.1"])
    assert not torch.equal(a["body.layers.1"], c["body.layers.1"])
    with pytest.raises(ValueError, match="spiking model"):
        layer_activity(build(model.spec, spiking=False), x, T=3)


def duplicated_net() -> torch.nn.Module:
    """8 filters in identical pairs (membrane rank <= 4), then 6 in identical triples (<= 3)."""
    spec = VGGSpec(in_shape=(1, 8, 8), num_classes=10, features=(8, "P", 6, "P"), pool="avg",
                   neuron=NeuronSpec(beta=0.9, threshold=0.5))
    model = build(spec, seed=0)
    with torch.no_grad():
        c1, c2 = model.body.layers[0], model.body.layers[3]
        c1.weight[1::2] = c1.weight[0::2]
        c2.weight[1::3] = c2.weight[0::3]
        c2.weight[2::3] = c2.weight[0::3]
    return model


def test_pca_criterion_finds_the_rank_of_duplicated_filters_and_shrinks_the_model():
    model = duplicated_net()
    x = torch.rand(64, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    sel = CRITERIA.get("pca")(model, x, T=4, threshold=0.9999)
    w1, w2 = sel.widths
    assert w1 == 4  # 4 distinct random filters: exactly rank 4
    assert 1 <= w2 <= 3
    assert sel.layers == ["body.layers.1", "body.layers.4"] and sel.original == [8, 6]
    assert sel.scores is None and sel.criterion == "pca" and sel.options["threshold"] == 0.9999
    assert sel.ratio == pytest.approx((w1 + w2) / 14)
    with pytest.raises(ValueError, match="gives widths, not scores"):
        sel.keep()
    # conv 1->8, conv 8->6, linear 6*2*2->10, two LIF layers with a leak and a threshold each
    assert n_params(model) == 1 * 8 * 9 + 8 * 6 * 9 + 6 * 4 * 10 + 2 * 2 == 748
    small = build(model.spec.with_widths(sel.widths))
    assert n_params(small) == 1 * w1 * 9 + w1 * w2 * 9 + w2 * 4 * 10 + 4
    # a loose threshold keeps fewer channels, the curves answer any threshold
    assert widths_at(sel, 0.9999) == [w1, w2]
    loose = CRITERIA.get("pca")(model, x, T=4, threshold=0.5).widths
    assert widths_at(sel, 0.5) == loose and loose[0] < w1


def test_widths_at_agrees_with_pca_width_on_recorded_membranes():
    model = duplicated_net()
    x = torch.rand(32, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    sel = CRITERIA.get("pca")(model, x, T=3, threshold=0.9)
    feats = layer_activity(model, x, T=3)
    for t in (0.3, 0.6, 0.9, 0.99, 1.0):
        assert widths_at(sel, t) == [pca_width(explained_variance(feats[n]), t) for n in sel.layers]
    with pytest.raises(ValueError, match="threshold"):
        widths_at(sel, 1.5)
    with pytest.raises(ValueError, match="no variance curves"):
        widths_at(random_criterion(model, keep=0.5), 0.9)


def test_resnet_prunes_the_inner_width_of_each_block():
    spec = ResNetSpec(in_shape=(1, 8, 8), num_classes=3, stem=4, stages=(4, 6), blocks=(1, 1), batch_norm=False)
    model = build(spec, seed=0)
    assert prunable_layers(model) == ["body.layers.2.act1", "body.layers.3.act1"]
    x = torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    sel = CRITERIA.get("pca")(model, x, threshold=0.9, T=2)
    new_spec = spec.with_widths(sel.widths)
    assert new_spec.inner == tuple(sel.widths) and new_spec.stages == (4, 6)
    assert n_params(build(new_spec)) <= n_params(model)


def test_registry_random_baseline_and_scores():
    assert {"pca", "random"} <= set(CRITERIA)
    assert CRITERIA.get("random") is random_criterion
    with pytest.raises(ValueError, match="unknown criterion 'svd'; expected one of: pca, random"):
        CRITERIA.get("svd")
    with pytest.raises(ValueError, match="criterion 'pca' is already registered"):
        CRITERIA.register("pca")(lambda *a, **k: None)
    model = build(VGGSpec(in_shape=(1, 8, 8), num_classes=10, features=(8, "P", 6, "P"), hidden=(5,)), seed=0)
    sel = CRITERIA.get("random")(model, None, T=1, total=7, seed=0)
    assert sel.original == [8, 6, 5] and sum(sel.widths) == 7 and min(sel.widths) >= 1
    assert [s.shape[0] for s in sel.scores] == [8, 6, 5]
    assert random_criterion(model, total=7, seed=0).widths == sel.widths  # seeded
    assert sum(random_criterion(model, keep=0.5, seed=1).widths) == 10  # half of 19, rounded
    for bad in ({"total": 2}, {"total": 20}, {}, {"total": 5, "keep": 0.5}, {"keep": 0.0}):
        with pytest.raises(ValueError):
            random_criterion(model, **bad)
    assert widths_from_scores(sel.scores, 0.5) == [4, 3, 2]  # round(2.5) = 2 (banker's)
    assert widths_from_scores(sel.scores, [0.01, 1.0, 0.4]) == [1, 6, 2]
    with pytest.raises(ValueError, match="keep fraction 1.5"):
        widths_from_scores(sel.scores, 1.5)
    # keep(): the best-scored channels of each layer, in ascending index order
    kept = sel.keep()
    for s, w, k in zip(sel.scores, sel.widths, kept):
        assert len(k) == w and bool((k[1:] > k[:-1]).all())
        assert set(k.tolist()) == set(s.topk(w).indices.tolist())
    with pytest.raises(ValueError, match="width 9 is not in \\[1, 8\\]"):
        Selection(["a"], [9], [8])
    with pytest.raises(ValueError, match="has 1 widths"):
        Selection(["a", "b"], [1], [8, 6])


def test_models_stay_picklable_after_recording():
    model = duplicated_net()
    layer_activity(model, torch.rand(4, 1, 8, 8), T=2)
    clone = pickle.loads(pickle.dumps(model))
    copy.deepcopy(model)
    x = torch.rand(2, 2, 1, 8, 8)
    assert torch.equal(clone(x), model(x))

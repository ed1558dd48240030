"""Pruning criteria: recorded membranes, PCA widths on known-rank layers, the registry."""
from __future__ import annotations

import copy
import pickle

import pytest
import torch

from snnkit.models import NeuronSpec, ResNetSpec, VGGSpec, build
from snnkit.pca import pca_widths
from snnkit.pruning import (
    CRITERIA,
    Selection,
    get_criterion,
    membrane_features,
    pca_prune,
    prunable_layers,
    prune_spec,
    random_criterion,
    register_criterion,
    widths_at,
    widths_from_scores,
)


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


def test_membrane_features_match_the_hand_computed_mean_membrane():
    spec = VGGSpec(in_shape=(1, 2, 2), num_classes=2, features=(2,), hidden=(3,),
                   neuron=NeuronSpec(beta=0.5, threshold=1.0, reset="subtract"))
    model = build(spec, seed=0)
    conv = model.body.layers[0]
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 1, 1] = 1.0  # channel 0: the pixel itself
        conv.weight[1, 0, 1, 1] = 0.5  # channel 1: half of it
    x = torch.full((3, 1, 2, 2), 0.6)
    feats = membrane_features(model, x, T=4)
    assert list(feats) == ["body.layers.1", "body.layers.4"]
    assert feats["body.layers.1"].shape == (3, 2, 2, 2)  # (N, C, H, W)
    assert feats["body.layers.4"].shape == (3, 3)  # (N, C) for the hidden linear layer
    # currents 0.6 and 0.3: U = 0.6, 0.9, 1.05 (spike), 0.125 -> 0.66875; 0.3, 0.45, 0.525, 0.5625
    assert hand_lif_mean(0.6, 0.5, 1.0, 4) == pytest.approx(0.66875)
    assert torch.allclose(feats["body.layers.1"][:, 0], torch.tensor(0.66875))
    assert torch.allclose(feats["body.layers.1"][:, 1], torch.tensor(0.459375))
    # batching does not change the numbers; a Split or (x, y) batches work too
    again = membrane_features(model, [(x[:2], None), (x[2:], None)], T=4)
    assert torch.equal(again["body.layers.4"], feats["body.layers.4"])
    assert model.training  # the training flag is restored


def test_membrane_features_rate_encoding_is_seeded():
    model = build(VGGSpec(in_shape=(1, 4, 4), num_classes=2, features=(3,)), seed=0)
    x = torch.rand(5, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    a = membrane_features(model, x, T=3, encoding="rate", seed=1)
    b = membrane_features(model, x, T=3, encoding="rate", seed=1)
    c = membrane_features(model, x, T=3, encoding="rate", seed=2)
    assert torch.equal(a["body.layers.1"], b["body.layers.1"])
    assert not torch.equal(a["body.layers.1"], c["body.layers.1"])
    with pytest.raises(ValueError, match="spiking model"):
        membrane_features(build(model.spec, spiking=False), x, T=3)


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


def test_pca_prune_finds_the_rank_of_duplicated_filters_and_shrinks_the_model():
    model = duplicated_net()
    x = torch.rand(64, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    new_spec, result = pca_prune(model, x, threshold=0.9999, T=4)
    w1, w2 = new_spec.widths
    assert w1 == 4  # 4 distinct random filters: exactly rank 4
    assert 1 <= w2 <= 3
    assert result.original == {"body.layers.1": 8, "body.layers.4": 6}
    assert list(result.widths.values()) == [w1, w2]
    # conv 1->8, conv 8->6, linear 6*2*2->10, two LIF layers with a leak and a threshold each
    assert n_params(model) == 1 * 8 * 9 + 8 * 6 * 9 + 6 * 4 * 10 + 2 * 2 == 748
    small = build(new_spec)
    assert n_params(small) == 1 * w1 * 9 + w1 * w2 * 9 + w2 * 4 * 10 + 4
    assert n_params(small) < n_params(model)
    sel = CRITERIA["pca"](model, x, T=4, threshold=0.9999)
    assert sel.widths == [w1, w2] and sel.original == [8, 6] and sel.scores is None
    assert sel.ratio == pytest.approx((w1 + w2) / 14)
    # a loose threshold keeps fewer channels, the curves answer any threshold
    assert widths_at(result, 0.9999) == [w1, w2]
    loose = pca_prune(model, x, threshold=0.5, T=4)[0].widths
    assert widths_at(result, 0.5) == loose and loose[0] < w1


def test_widths_at_agrees_with_pca_widths():
    g = torch.Generator().manual_seed(3)
    feats = {"a": torch.randn(50, 6, 3, 3, generator=g), "b": torch.randn(40, 5, generator=g) * torch.arange(1, 6)}
    result = pca_widths(feats, 0.9)
    for t in (0.3, 0.6, 0.9, 0.99, 1.0):
        assert widths_at(result, t) == list(pca_widths(feats, t).widths.values())
    with pytest.raises(ValueError, match="threshold"):
        widths_at(result, 1.5)


def test_resnet_prunes_the_inner_width_of_each_block():
    spec = ResNetSpec(in_shape=(1, 8, 8), num_classes=3, stem=4, stages=(4, 6), blocks=(1, 1), batch_norm=False)
    model = build(spec, seed=0)
    assert prunable_layers(model) == ["body.layers.2.act1", "body.layers.3.act1"]
    x = torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    new_spec, result = pca_prune(model, x, threshold=0.9, T=2)
    assert new_spec.inner == tuple(result.widths.values()) and new_spec.stages == (4, 6)
    assert n_params(build(new_spec)) <= n_params(model)


def test_registry_random_baseline_and_scores():
    assert {"pca", "random"} <= set(CRITERIA)
    assert get_criterion("pca") is CRITERIA["pca"]
    with pytest.raises(ValueError, match="unknown criterion 'svd'; expected one of"):
        get_criterion("svd")
    with pytest.raises(ValueError, match="already registered"):
        register_criterion("pca")(lambda *a, **k: None)
    model = build(VGGSpec(in_shape=(1, 8, 8), num_classes=10, features=(8, "P", 6, "P"), hidden=(5,)), seed=0)
    sel = CRITERIA["random"](model, None, T=1, total=7, seed=0)
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
    assert prune_spec(model.spec, sel).widths == sel.widths
    with pytest.raises(ValueError, match="selection has 2 widths"):
        prune_spec(model.spec, Selection(["a", "b"], [1, 1], [8, 6]))


def test_models_stay_picklable_after_recording():
    model = duplicated_net()
    membrane_features(model, torch.rand(4, 1, 8, 8), T=2)
    clone = pickle.loads(pickle.dumps(model))
    copy.deepcopy(model)
    x = torch.rand(2, 2, 1, 8, 8)
    assert torch.equal(clone(x), model(x))

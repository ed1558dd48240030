"""Importances and planners: recorded activity, PCA widths on known-rank layers, the registries,
every importance with every planner, Selection."""
from __future__ import annotations

import copy
import pickle

import pytest
import torch

from snnkit.models import NeuronSpec, ResNetSpec, VGGSpec, build
from snnkit.compress import compress
from snnkit.compress.activity import layer_activity, prunable_layers
from snnkit.compress.importance import IMPORTANCES, Inputs, score
from snnkit.compress.pca import explained_variance, feature_matrix, pca_width
from snnkit.compress.planners import PLANNERS, Selection, plan, prune, select, variance_widths, widths_from_scores
from snnkit.data import load_dataset
from snnkit.train import TrainConfig
from snnkit.weights import masks_of


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


def test_pca_variance_finds_the_rank_of_duplicated_filters_and_shrinks_the_model():
    model = duplicated_net()
    x = torch.rand(64, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    sel = select(model, "pca-variance", "variance", Inputs(x, T=4), threshold=0.9999)
    w1, w2 = sel.widths
    assert w1 == 4  # 4 distinct random filters: exactly rank 4
    assert 1 <= w2 <= 3
    assert sel.layers == ["body.layers.1", "body.layers.4"] and sel.original == [8, 6]
    assert sel.importance == "pca-variance" and sel.planner == "variance" and sel.options["threshold"] == 0.9999
    assert sel.ratio == pytest.approx((w1 + w2) / 14)
    # PCA says how many; its scores (each channel's variance) say which: the best-scored are kept
    kept = sel.kept()
    assert [len(k) for k in kept] == [w1, w2]
    assert set(kept[0].tolist()) == set(sel.scores[0].topk(w1).indices.tolist())
    # conv 1->8, conv 8->6, linear 6*2*2->10, two LIF layers with a leak and a threshold each
    assert n_params(model) == 1 * 8 * 9 + 8 * 6 * 9 + 6 * 4 * 10 + 2 * 2 == 748
    small = build(model.spec.with_widths(sel.widths))
    assert n_params(small) == 1 * w1 * 9 + w1 * w2 * 9 + w2 * 4 * 10 + 4
    # a loose threshold keeps fewer channels, the curves answer any threshold
    assert variance_widths(sel.curves, 0.9999) == [w1, w2]
    loose = select(model, "pca-variance", "variance", Inputs(x, T=4), threshold=0.5).widths
    assert variance_widths(sel.curves, 0.5) == loose and loose[0] < w1


def test_pca_variance_scores_are_the_channel_variances_and_curves_agree_with_pca_width():
    model = duplicated_net()
    x = torch.rand(32, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    scores = score(model, "pca-variance", Inputs(x, T=3))
    feats = layer_activity(model, x, T=3)
    for name, values in zip(scores.names, scores.values):
        expected = feature_matrix(feats[name]).double().var(dim=0, unbiased=False).float()
        torch.testing.assert_close(values, expected)
    for t in (0.3, 0.6, 0.9, 0.99, 1.0):
        assert variance_widths(scores.curves, t) == [pca_width(explained_variance(feats[n]), t) for n in scores.names]
    with pytest.raises(ValueError, match="threshold"):
        variance_widths(scores.curves, 1.5)
    with pytest.raises(ValueError, match="needs PCA curves"):
        plan(score(model, "random"), "variance", threshold=0.9)
    # any other importance picks the channels when the curves are given
    by_l1 = plan(score(model, "l1"), "variance", threshold=0.9, curves=scores.curves)
    assert by_l1.widths == variance_widths(scores.curves, 0.9) and by_l1.importance == "l1"


def test_resnet_prunes_the_inner_width_of_each_block():
    spec = ResNetSpec(in_shape=(1, 8, 8), num_classes=3, stem=4, stages=(4, 6), blocks=(1, 1), batch_norm=False)
    model = build(spec, seed=0)
    assert prunable_layers(model) == ["body.layers.2.act1", "body.layers.3.act1"]
    assert prunable_layers(build(spec, spiking=False)) == ["body.layers.2.act1", "body.layers.3.act1"]
    x = torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    sel = select(model, "pca-variance", "variance", Inputs(x, T=2), threshold=0.9)
    new_spec = spec.with_widths(sel.widths)
    assert new_spec.inner == tuple(sel.widths) and new_spec.stages == (4, 6)
    assert n_params(build(new_spec)) <= n_params(model)


def test_registries_the_random_baseline_and_selections():
    assert set(IMPORTANCES) == {"pca-variance", "svs", "sca", "attention", "magnitude", "l1", "lamp", "random"}
    assert set(PLANNERS) == {"layer", "global", "variance", "uniform+"}
    with pytest.raises(ValueError, match="unknown importance 'svd'; expected one of: pca-variance"):
        IMPORTANCES.get("svd")
    with pytest.raises(ValueError, match="importance 'random' takes no option \\['eps'\\]; its options are: seed"):
        score(build(VGGSpec(in_shape=(1, 8, 8), num_classes=10, features=(8,))), "random", eps=1.0)
    model = build(VGGSpec(in_shape=(1, 8, 8), num_classes=10, features=(8, "P", 6, "P"), hidden=(5,)), seed=0)
    scores = score(model, "random", seed=0)
    sel = plan(scores, "global", channels=7)
    assert sel.original == [8, 6, 5] and sum(sel.widths) == 7 and min(sel.widths) >= 1
    assert [s.shape[0] for s in sel.scores] == [8, 6, 5]
    # the draw is seeded: layer after layer from one generator
    gen = torch.Generator().manual_seed(0)
    assert all(torch.equal(s, torch.rand(c, generator=gen)) for s, c in zip(scores.values, (8, 6, 5)))
    assert plan(score(model, "random", seed=0), "global", channels=7).widths == sel.widths
    assert sum(plan(score(model, "random", seed=1), "global", keep=0.5).widths) == 10  # half of 19, rounded
    for bad in ({"channels": 2}, {"channels": 20}, {}, {"channels": 5, "keep": 0.5}, {"keep": 0.0}):
        with pytest.raises(ValueError):
            plan(scores, "global", **bad)
    assert widths_from_scores(sel.scores, 0.5) == [4, 3, 2]  # round(2.5) = 2 (banker's)
    assert widths_from_scores(sel.scores, [0.01, 1.0, 0.4]) == [1, 6, 2]
    with pytest.raises(ValueError, match="keep fraction 1.5"):
        widths_from_scores(sel.scores, 1.5)
    # kept(): the best-scored channels of each layer, in ascending index order
    kept = sel.kept()
    for s, w, k in zip(sel.scores, sel.widths, kept):
        assert len(k) == w and bool((k[1:] > k[:-1]).all())
        assert set(k.tolist()) == set(s.topk(w).indices.tolist())
    with pytest.raises(ValueError, match="width 9 is not in \\[1, 8\\]"):
        Selection(["a"], [9], [8], [torch.zeros(8)])
    with pytest.raises(ValueError, match="has 1 widths"):
        Selection(["a", "b"], [1], [8, 6], [torch.zeros(8), torch.zeros(6)])


@pytest.fixture(scope="module")
def digits_tiny():
    return load_dataset("digits", seed=0, size=8).subset(train=64, val=16, test=16)


def _tiny_net():
    spec = VGGSpec(in_shape=(1, 8, 8), num_classes=4, features=(6, "P", 8, "P"), hidden=(5,), pool="max",
                   neuron=NeuronSpec(beta=0.9, threshold=0.5))
    return build(spec, seed=0)


@pytest.mark.parametrize("importance", ["pca-variance", "svs", "sca", "attention", "magnitude", "l1", "lamp", "random"])
def test_every_importance_works_with_every_channel_planner(importance):
    model = _tiny_net()
    inputs = Inputs(torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(0)), T=3)
    curves = score(model, "pca-variance", inputs).curves
    for planner, options, widths in (("layer", {"keep": [1.0, 0.5, 0.2]}, [6, 4, 1]),
                                     ("global", {"keep": 0.5}, None), ("global", {"channels": 5}, None),
                                     ("variance", {"threshold": 0.9, "curves": curves}, variance_widths(curves, 0.9))):
        sel = select(model, importance, planner, inputs, **options)
        assert sel.importance == importance and sel.planner == planner
        assert sel.original == [6, 8, 5] and all(1 <= w <= c for w, c in zip(sel.widths, sel.original))
        if widths is not None:
            assert sel.widths == widths
        if planner == "global":
            assert sum(sel.widths) == options.get("channels", round(0.5 * 19))


@pytest.mark.parametrize("importance", ["pca-variance", "sca", "attention", "magnitude", "l1", "lamp", "random"])
def test_every_importance_but_svs_works_on_a_sequence_net(importance):
    spec = VGGSpec(in_shape=(1, 16), num_classes=4, features=(6, "P", 8, "P"), hidden=(5,),
                   neuron=NeuronSpec(beta=0.9, threshold=0.5))
    model = build(spec, seed=0)
    x = torch.randn(16, 1, 16, generator=torch.Generator().manual_seed(0))  # (N, C, L), standardized
    activity = layer_activity(model, x, T=3)
    assert [tuple(a.shape) for a in activity.values()] == [(16, 6, 16), (16, 8, 8), (16, 5)]
    sel = select(model, importance, "layer", Inputs(x, T=3), keep=[1.0, 0.5, 0.2])
    assert sel.original == [6, 8, 5] and sel.widths == [6, 4, 1]
    assert all(torch.isfinite(s).all() for s in sel.scores)


def test_pca_with_per_layer_keep_and_random_with_global_keep_through_the_channels_method(digits_tiny):
    model = _tiny_net()
    cfg = TrainConfig(epochs=0, T=2, progress=False)
    run = compress(model, digits_tiny, "channels", cfg, importance="pca-variance", planner="layer",
                   keep=[0.5, 0.5, 0.4], samples=32)
    assert run.info["widths"] == [3, 4, 2] and list(run.model.spec.widths) == [3, 4, 2]
    run = compress(model, digits_tiny, "channels", cfg, importance="random", planner="global", keep=0.5)
    assert sum(run.info["widths"]) == round(0.5 * 19) and list(run.model.spec.widths) == run.info["widths"]
    # its seed defaults to cfg.seed
    assert run.info["widths"] == plan(score(model, "random", seed=0), "global", keep=0.5).widths


def test_weight_level_scores_and_masks():
    model = _tiny_net()
    weights = [f"{n}.weight" for n, m in model.named_modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    mag = score(model, "magnitude")
    assert mag.level == "weight" and list(mag.names) == weights
    assert all(torch.equal(v, model.get_submodule(n[:-7]).weight.detach().abs()) for n, v in zip(mag.names, mag.values))
    # a weight-level importance scores a channel by its filter: magnitude per filter is l1
    assert all(torch.equal(a, b) for a, b in zip(score(model, "magnitude", level="channel").values,
                                                  score(model, "l1").values))
    # masks: 'global' ranks all weights at once, 'layer' cuts every layer alike
    total = sum(model.get_submodule(n[:-7]).weight.numel() for n in weights)
    masks = prune(model, "lamp", "global", sparsity=0.5)
    assert sum(int((m == 0).sum()) for m in masks.values()) == round(0.5 * total)
    for planner in ("layer", "global"):
        net = _tiny_net()
        masks = prune(net, "random", planner, sparsity=0.25, seed=3)
        assert set(masks) == set(weights) and set(masks_of(net)) == set(weights)
        if planner == "layer":
            assert all(int((m == 0).sum()) == round(0.25 * m.numel()) for m in masks.values())
    with pytest.raises(ValueError, match="scores channels, not single weights"):
        prune(_tiny_net(), "svs", "global", Inputs(torch.rand(4, 1, 8, 8), T=2), sparsity=0.5)
    with pytest.raises(ValueError, match="keeps whole channels"):
        prune(_tiny_net(), "magnitude", "variance", threshold=0.9)
    with pytest.raises(ValueError, match="at channel level takes keep"):
        select(_tiny_net(), "l1", "layer", sparsity=0.5)
    with pytest.raises(ValueError, match="records the network's activity"):
        score(_tiny_net(), "svs")


def test_attention_importance_is_the_mean_squared_firing_rate():
    spec = VGGSpec(in_shape=(1, 2, 2), num_classes=2, features=(2,), hidden=(3,),
                   neuron=NeuronSpec(beta=0.5, threshold=1.0, reset="subtract"))
    model = build(spec, seed=0)
    with torch.no_grad():
        conv = model.body.layers[0]
        conv.weight.zero_()
        conv.weight[0, 0, 1, 1] = 1.0
        conv.weight[1, 0, 1, 1] = 0.5
    scores = score(model, "attention", Inputs(torch.full((3, 1, 2, 2), 0.6), T=4))
    # channel 0 fires once in 4 steps everywhere: rate 0.25, squared 0.0625; channel 1 never
    torch.testing.assert_close(scores.values[0], torch.tensor([0.0625, 0.0]))


def test_models_stay_picklable_after_recording():
    model = duplicated_net()
    layer_activity(model, torch.rand(4, 1, 8, 8), T=2)
    clone = pickle.loads(pickle.dumps(model))
    copy.deepcopy(model)
    x = torch.rand(2, 2, 1, 8, 8)
    assert torch.equal(clone(x), model(x))

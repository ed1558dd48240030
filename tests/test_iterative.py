"""Iterative pruning with rewinding: masks through training, the three rules, the rewind point."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from snnkit.compress import compress
from snnkit.compress.iterative import RULES, uniform_plus_targets
from snnkit.compress.masks import layer_sparsity, masks_of
from snnkit.compress.planners import prune
from snnkit.compress.schedules import iterative_sparsity
from snnkit.data import Dataset, Split
from snnkit.models import NeuronSpec, VGGSpec, build
from snnkit.train import TrainConfig, fit


def tiny_data(seed: int = 0) -> Dataset:
    """Random 8x8 images whose class is which quadrant is brighter (learnable in a few steps)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (60,), generator=g)
    x = 0.3 * torch.rand(60, 1, 8, 8, generator=g)
    for c, (r, k) in enumerate([(0, 0), (0, 4), (4, 0)]):
        x[y == c, :, r:r + 4, k:k + 4] += 0.6
    split = Split(x, y)
    return Dataset("tiny", split, Split(x[:20], y[:20]), Split(x[20:40], y[20:40]), 3, "static", (1, 8, 8))


def small_snn(seed: int = 0) -> nn.Module:
    spec = VGGSpec(in_shape=(1, 8, 8), num_classes=3, features=(4, "P", 6, "P"), hidden=(8,), bias=True,
                   batch_norm=True, neuron=NeuronSpec(beta=0.5, threshold=0.25, reset="zero"))
    return build(spec, seed=seed)


CFG = TrainConfig(epochs=2, T=3, lr=1e-2, batch_size=20, progress=False, weight_decay=1e-3)


def prune_round(model: nn.Module, rule: str, sparsity: float) -> dict:
    """One round of a rule of :data:`RULES` on ``model`` (in place)."""
    return prune(model, **RULES[rule], sparsity=sparsity)


def test_masked_weights_get_no_gradient_and_the_mask_survives_every_step():
    data = tiny_data()
    model = small_snn()
    prune_round(model, "lamp", 0.6)
    before = masks_of(model)
    modules = dict(model.named_modules())
    steps = 0

    def check(m: nn.Module) -> None:
        nonlocal steps
        steps += 1
        for name, mask in before.items():
            module = modules[name.rpartition(".")[0]]
            assert torch.equal(module.weight_mask, mask)  # the mask is unchanged
            grad = module.weight_orig.grad
            assert grad is not None and torch.all(grad[mask == 0] == 0)  # no gradient where masked
            assert torch.all((module.weight_orig * module.weight_mask)[mask == 0] == 0)

    fit(model, data, CFG, val=None, after_step=check)
    assert steps == 6  # 3 batches x 2 epochs, every one checked
    out = model(torch.rand(3, 2, 1, 8, 8))  # the forward pass uses the masked weights
    assert out.shape == (3, 2, 3)
    for name, mask in before.items():
        module = modules[name.rpartition(".")[0]]
        assert torch.all(module.weight[mask == 0] == 0)


def hand_net() -> nn.Sequential:
    # layer 0: |w| 1..4 (w^2 1, 4, 9, 16); layer 1: |w| 0.1..0.4, the same relative spread
    net = nn.Sequential(nn.Linear(2, 2, bias=False), nn.Linear(2, 2, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, -2.0], [3.0, 4.0]]))
        net[1].weight.copy_(torch.tensor([[0.1, 0.2], [-0.3, 0.4]]))
    return net


@pytest.mark.parametrize("method, expected", [
    ("lamp", {"0.weight": 0.5, "1.weight": 0.5}),      # equal LAMP scores per layer
    ("global", {"0.weight": 0.0, "1.weight": 1.0}),    # the four smallest magnitudes overall
    ("uniform", {"0.weight": 0.5, "1.weight": 0.5}),   # half of each layer
])
def test_the_three_rules_on_a_hand_made_net(method, expected):
    net = hand_net()
    masks = prune_round(net, method, 0.5)
    assert layer_sparsity(net) == expected
    assert set(masks) == {"0.weight", "1.weight"}


def test_lamp_and_uniform_differ_when_layers_are_spread_differently():
    net = nn.Sequential(nn.Linear(2, 2, bias=False), nn.Linear(4, 2, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 1.0], [1.0, 1.0]]))
        net[1].weight.copy_(torch.tensor([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]]))
    uniform = copy.deepcopy(net)
    # LAMP scores: layer 0 (equal weights, ties by position) 1/4, 1/3, 1/2, 1; layer 1 w^2 1,
    # 4, ..., 64 over tails 204, 203, 199, ...: 0.0049, 0.0197, 0.0452, 0.0818, 0.1349,
    # 0.2130, 0.3808, 1. Half of the 12 weights, the 6 lowest scores, all come from layer 1.
    prune_round(net, "lamp", 0.5)
    assert layer_sparsity(net) == {"0.weight": 0.0, "1.weight": 0.75}
    prune_round(uniform, "uniform", 0.5)
    assert layer_sparsity(uniform) == {"0.weight": 0.5, "1.weight": 0.5}
    assert tuple(RULES) == ("lamp", "global", "uniform", "uniform+")
    assert RULES["uniform"] == {"importance": "magnitude", "planner": "layer"}


def test_uniform_plus_targets_by_hand():
    # 25 % of 1000 remaining = 250 masked: the first layer keeps all 100, the middle layers
    # (500 and 300) and the output (100) share one sparsity s with 500 s + 300 s + 100 s = 250
    assert uniform_plus_targets([100, 500, 300, 100], [0, 0, 0, 0], 0.25) == [0, 139, 83, 28]
    # 80 % of 1000: the output capped at 80 of its 100, so 800 s + 80 = 800, s = 0.9
    assert uniform_plus_targets([100, 500, 300, 100], [0, 0, 0, 0], 0.8) == [0, 450, 270, 80]
    # a second step: 50 % of the 750 remaining -> at least 625 masked in all (s ~ 0.695; the
    # smallest common sparsity whose rounded counts reach 625 masks 626)
    assert uniform_plus_targets([100, 500, 300, 100], [0, 139, 83, 28], 0.5) == [0, 348, 208, 70]
    # more than the middle layers can give: each keeps one entry, the step masks less
    assert uniform_plus_targets([100, 50, 50, 100], [0, 0, 0, 0], 0.9) == [0, 49, 49, 80]


@pytest.mark.parametrize("kwargs, match", [
    ({"sizes": [10, 10], "masked": [0, 0]}, "at least 3 layers"),
    ({"masked": [0, 20, 0]}, "expected counts in"),
    ({"sparsity": 1.0}, "sparsity=1.0"),
    ({"output_cap": 1.5}, "output_cap=1.5"),
])
def test_uniform_plus_targets_names_bad_arguments(kwargs, match):
    args = {"sizes": [10, 10, 10], "masked": [0, 0, 0], "sparsity": 0.5, **kwargs}
    with pytest.raises(ValueError, match=match):
        uniform_plus_targets(**args)


def test_uniform_plus_rule_keeps_the_first_layer_dense_and_caps_the_output():
    net = small_snn()
    sizes = {n: p.numel() for n, p in net.named_parameters() if n.endswith("weight") and p.dim() > 1}
    names = list(sizes)
    for _ in range(6):  # 1 - 0.5^6 = 98.4 % of all weights
        prune_round(net, "uniform+", 0.5)
    sparsity = layer_sparsity(net, names)
    assert sparsity[names[0]] == 0.0
    assert sparsity[names[-1]] <= 0.8 + 1e-9
    middle = [sparsity[n] for n in names[1:-1]]
    assert min(middle) > 0.9
    masked = sum(sparsity[n] * sizes[n] for n in names)
    assert masked == pytest.approx(min(round(0.984375 * sum(sizes.values())),
                                       sum(sizes[n] - 1 for n in names[1:-1]) + 0.8 * sizes[names[-1]]), abs=2)


def test_rewind_point_is_the_state_after_that_epoch():
    data = tiny_data()
    cfg = CFG.replace(cosine=False)  # constant rate: the first epoch is the same in both runs
    start = small_snn()
    one_epoch = copy.deepcopy(start)
    fit(one_epoch, data, cfg.replace(epochs=1), val=None)
    dense = compress(start, data, "dense", cfg, rewind_epoch=1)
    early = dense.info["rewind_state"]
    for key, value in one_epoch.state_dict().items():
        torch.testing.assert_close(early[key], value, rtol=0, atol=0)
    assert not torch.equal(early["body.layers.0.weight"], dense.model.state_dict()["body.layers.0.weight"])

    initial = compress(start, data, "dense", cfg, rewind_epoch=0).info["rewind_state"]
    assert torch.equal(initial["body.layers.0.weight"], start.state_dict()["body.layers.0.weight"])
    with pytest.raises(ValueError, match=r"rewind_epoch=3: expected an integer in \[0, 2\]"):
        compress(start, data, "dense", cfg, rewind_epoch=3)
    assert "rewind_state" not in compress(start, data, "dense", cfg.replace(epochs=0)).info


@pytest.mark.parametrize("rule", ["lamp", "global", "uniform"])
def test_iterative_follows_the_schedule_and_rewinds(rule):
    data = tiny_data()
    dense = compress(small_snn(), data, "dense", CFG, rewind_epoch=0)
    early = dense.info["rewind_state"]
    run = compress(dense.model, data, "iterative", CFG.replace(epochs=0), per_round=0.5, rounds=3, rewind_state=early,
                   evaluate=True, **RULES[rule])
    target = iterative_sparsity(0.5, 3)  # 0.5, 0.75, 0.875 (up to whole weights)
    assert [s.name for s in run.history] == ["round 1", "round 2", "round 3"]
    for step, s in zip(run.history, target):
        assert step.sparsity == pytest.approx(s, abs=0.01)
        assert 0.0 <= step.test_acc <= 1.0 and step.epochs == 0
    assert run.info["sparsity"] == run.history[-1].sparsity and run.info["per_round"] == 0.5
    # with no retraining the survivors hold exactly their rewound (initial) values
    for name, mask in masks_of(run.model).items():
        module = run.model.get_submodule(name.rpartition(".")[0])
        torch.testing.assert_close(module.weight_orig * mask, early[name] * mask, rtol=0, atol=0)
    if rule == "uniform":
        assert all(v == pytest.approx(0.875, abs=0.02) for v in run.history[-1].layer_sparsity.values())
    # the final sparsity instead of the fraction per round: the same rounds
    same = compress(dense.model, data, "iterative", CFG.replace(epochs=0), sparsity=0.875, rounds=3,
                    rewind_state=early, **RULES[rule])
    assert same.info["per_round"] == pytest.approx(0.5) and same.info["sparsity"] == pytest.approx(run.info["sparsity"])


def test_iterative_retrains_between_rounds_and_keeps_masks():
    data = tiny_data()
    dense = compress(small_snn(), data, "dense", CFG, rewind_epoch=1)
    early = dense.info["rewind_state"]
    one = compress(dense.model, data, "iterative", CFG.replace(epochs=1), per_round=0.5, rounds=1, rewind_state=early)
    two = compress(dense.model, data, "iterative", CFG, per_round=0.5, rounds=2, rewind_state=early)
    assert [s.epochs for s in two.history] == [1, 1]
    first, second = masks_of(one.model), masks_of(two.model)
    for name, mask in second.items():
        assert torch.all(mask <= first[name])  # round 2 only removes more
        module = two.model.get_submodule(name.rpartition(".")[0])
        assert not torch.equal(module.weight_orig * mask, early[name] * mask)  # retrained after the rewind
    # by default the rewind point is the starting network
    start = compress(dense.model, data, "iterative", CFG.replace(epochs=0), per_round=0.5)
    for name, mask in masks_of(start.model).items():
        torch.testing.assert_close(start.model.get_submodule(name[:-7]).weight_orig * mask,
                                   dense.model.get_submodule(name[:-7]).weight * mask, rtol=0, atol=0)


def test_iterative_at_a_kl_chosen_t():
    data = tiny_data()
    dense = compress(small_snn(), data, "dense", CFG)
    run = compress(dense.model, data, "iterative", CFG, sparsity=0.5, rounds=2, kl_threshold=0.5)
    choice = run.info["choice"]
    assert run.T == choice.T <= CFG.T and all(s.T == choice.T for s in run.history)


@pytest.mark.parametrize("kwargs, match", [
    ({"per_round": 1.0}, r"per_round=1.0: expected a fraction in \(0, 1\)"),
    ({"per_round": 0}, r"per_round=0: expected a fraction"),
    ({"rounds": 0}, r"rounds=0: expected an integer >= 1"),
    ({"rounds": 3}, r"rounds=3: expected an integer >= 1 that divides cfg.epochs=2"),
    ({"per_round": None}, r"sparsity=None, per_round=None: expected exactly one"),
    ({"importance": "lottery"}, r"unknown importance 'lottery'"),
    ({"importance": "svs"}, r"importance 'svs' scores channels, not single weights"),
])
def test_iterative_names_bad_arguments(kwargs, match):
    args = dict(per_round=0.5, rounds=2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        compress(small_snn(), tiny_data(), "iterative", CFG, **args)

"""Unstructured pruning masks: global vs per-layer selection by hand, iterative sparsities,
masks through training (Adam), zero gradients, copies, re-applying and rewinding."""
from __future__ import annotations

import copy
import pickle

import pytest
import torch
from torch import nn

from snnkit.compress.masks import (
    apply_masks,
    global_sparsity,
    is_masked,
    layer_density,
    layer_sparsity,
    masks_of,
    prunable_weights,
    prune_global,
    prune_layerwise,
    remove_masks,
    rewind,
)
from snnkit.data import Split
from snnkit.metrics.ops import sparsity as metrics_sparsity
from snnkit.models import NeuronSpec, ResNetSpec, VGGSpec, build
from snnkit.train import TrainConfig, fit


def two_layer() -> nn.Sequential:
    """Linear(2, 2) -> Linear(2, 2) without biases, with hand-picked weights."""
    net = nn.Sequential(nn.Linear(2, 2, bias=False), nn.Linear(2, 2, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, -2.0], [3.0, 4.0]]))
        net[1].weight.copy_(torch.tensor([[0.5, 10.0], [-20.0, 30.0]]))
    return net


def small_snn(seed: int = 0):
    # a low threshold, so that every layer spikes (and every weight gets a gradient)
    spec = VGGSpec(in_shape=(1, 8, 8), num_classes=3, features=(4, "P", 6, "P"), hidden=(8,), bias=True,
                   neuron=NeuronSpec(threshold=0.25))
    return build(spec, seed=seed)


def test_global_and_layerwise_select_the_hand_computed_weights():
    # magnitudes: layer 0 {1, 2, 3, 4}, layer 1 {0.5, 10, 20, 30}
    net = two_layer()
    got = prune_global(net, 0.5)  # the 4 smallest of all 8: 0.5, 1, 2, 3
    assert torch.equal(got["0.weight"], torch.tensor([[0.0, 0.0], [0.0, 1.0]]))
    assert torch.equal(got["1.weight"], torch.tensor([[0.0, 1.0], [1.0, 1.0]]))
    assert layer_sparsity(net) == {"0.weight": 0.75, "1.weight": 0.25}
    assert global_sparsity(net) == 0.5

    net = two_layer()
    got = prune_layerwise(net, 0.5)  # the 2 smallest of each: {1, 2} and {0.5, 10}
    assert torch.equal(got["0.weight"], torch.tensor([[0.0, 0.0], [1.0, 1.0]]))
    assert torch.equal(got["1.weight"], torch.tensor([[0.0, 0.0], [1.0, 1.0]]))
    assert layer_density(net) == {"0.weight": 0.5, "1.weight": 0.5}
    # the effective weight is orig * mask
    assert torch.equal(net[1].weight, torch.tensor([[0.0, 0.0], [-20.0, 30.0]]))


def test_importance_scores_replace_magnitude():
    net = two_layer()
    # score = 1 / |w|: the largest weights are now the least important
    scores = {n: 1.0 / getattr(net, n.split(".")[0]).weight.abs() for n in ("0.weight", "1.weight")}
    got = prune_global(net, 0.25, scores=scores)  # 2 of 8: the two largest, 30 and 20
    assert torch.equal(got["1.weight"], torch.tensor([[1.0, 1.0], [0.0, 0.0]]))
    assert torch.equal(got["0.weight"], torch.ones(2, 2))
    # a weight missing from scores is scored by magnitude
    net = two_layer()
    got = prune_layerwise(net, 0.25, scores={"1.weight": scores["1.weight"]})
    assert torch.equal(got["0.weight"], torch.tensor([[0.0, 1.0], [1.0, 1.0]]))  # |1| is smallest
    assert torch.equal(got["1.weight"], torch.tensor([[1.0, 1.0], [1.0, 0.0]]))  # 30 is least important


@pytest.mark.parametrize("how", ["global", "layerwise"])
def test_iterative_rounds_remove_a_fraction_of_the_remaining_weights(how):
    net = nn.Sequential(nn.Linear(8, 8, bias=False), nn.Linear(8, 16, bias=False))  # 64 + 128 weights
    step = prune_global if how == "global" else prune_layerwise
    previous = {n: torch.ones(8 if n == "0.weight" else 16, 8) for n in ("0.weight", "1.weight")}
    expected = [0.5, 0.75, 0.875]
    for r in range(3):
        current = step(net, 0.5)
        assert global_sparsity(net) == expected[r]
        for n, m in current.items():  # nested: nothing removed comes back
            assert bool((m <= previous[n]).all())
        previous = current
    assert global_sparsity(net) == 0.875
    assert metrics_sparsity(net) == 0.875  # the metrics read orig * mask
    if how == "layerwise":
        assert layer_sparsity(net) == {"0.weight": 0.875, "1.weight": 0.875}


def test_eligible_layers_and_skipping_first_and_last():
    net = small_snn()
    assert prunable_weights(net) == ["body.layers.0.weight", "body.layers.3.weight", "body.layers.7.weight",
                                     "body.layers.9.weight"]
    assert prunable_weights(net, skip=("first", "last")) == ["body.layers.3.weight", "body.layers.7.weight"]
    assert prunable_weights(net, skip=["body.layers.3", "body.layers.7.weight"]) == ["body.layers.0.weight",
                                                                                     "body.layers.9.weight"]
    assert prunable_weights(net, skip=lambda name, m: isinstance(m, nn.Linear)) == ["body.layers.0.weight",
                                                                                    "body.layers.3.weight"]
    with pytest.raises(ValueError, match="skip entry 'conv9' is neither 'first', 'last' nor the name"):
        prunable_weights(net, skip=["conv9"])
    prune_global(net, 0.5, skip=("first", "last"))
    sp = layer_sparsity(net)
    assert sp["body.layers.0.weight"] == 0.0 and sp["body.layers.9.weight"] == 0.0
    sizes = {"body.layers.3.weight": 6 * 4 * 9, "body.layers.7.weight": 8 * 6 * 4}
    removed = round(sum(sp[n] * sizes[n] for n in sizes))
    assert removed == round(0.5 * sum(sizes.values()))
    res = build(ResNetSpec(in_shape=(1, 8, 8), num_classes=3, stem=4, stages=(4, 6), blocks=(1, 1)))
    names = prunable_weights(res)
    assert names[0] == "body.layers.0.weight" and names[-1] == "body.layers.7.weight"
    assert "body.layers.4.shortcut.0.weight" in names and len(names) == 7


def test_sequence_nets_prune_their_1d_convs_too():
    """prune_global on a 1-D VGG ranks the conv weights with the linear ones (none is left out):
    on a hand-made net whose conv weights are all small, half of all weights is all of the convs'."""
    net = build(VGGSpec(in_shape=(1, 8), num_classes=2, features=(2, "P", 2), hidden=(3,)), seed=0)
    assert prunable_weights(net) == ["body.layers.0.weight", "body.layers.3.weight", "body.layers.6.weight",
                                     "body.layers.8.weight"]
    with torch.no_grad():  # conv weights 1*2*3 + 2*2*3 = 18 at 0.01; linear 8*3 + 3*2 = 30 at 1
        for i in (0, 3):
            net.body.layers[i].weight.fill_(0.01)
        for i in (6, 8):
            net.body.layers[i].weight.fill_(1.0)
    prune_global(net, 18 / 48)
    assert layer_sparsity(net) == {"body.layers.0.weight": 1.0, "body.layers.3.weight": 1.0,
                                   "body.layers.6.weight": 0.0, "body.layers.8.weight": 0.0}
    assert global_sparsity(net) == pytest.approx(18 / 48)
    res = build(ResNetSpec(in_shape=(1, 8), num_classes=3, stem=4, stages=(4, 6), blocks=(1, 1)))
    assert len(prunable_weights(res)) == 7 and prunable_weights(res)[0] == "body.layers.0.weight"


def test_bad_arguments_name_the_value():
    net = two_layer()
    with pytest.raises(ValueError, match="sparsity=1.5"):
        prune_global(net, 1.5)
    with pytest.raises(ValueError, match="scores for \\['2.weight'\\]"):
        prune_global(net, 0.5, scores={"2.weight": torch.ones(2, 2)})
    with pytest.raises(ValueError, match="shape \\(3,\\)"):
        prune_layerwise(net, 0.5, scores={"0.weight": torch.ones(3)})
    with pytest.raises(ValueError, match="no entry for \\['1.weight'\\]"):
        prune_layerwise(net, {"0.weight": 0.5}, names=["0.weight", "1.weight"])
    with pytest.raises(ValueError, match="values"):
        apply_masks(net, {"0.weight": torch.full((2, 2), 0.5)})


def test_masked_entries_get_zero_gradient():
    net = small_snn()
    prune_global(net, 0.6)
    x = torch.rand(4, 2, 1, 8, 8)  # (T, B, C, H, W)
    net(x).pow(2).sum().backward()
    for name, mask in masks_of(net).items():
        orig = net.get_submodule(name.rsplit(".", 1)[0]).weight_orig
        assert bool((orig.grad[mask == 0] == 0).all())
        assert bool((orig.grad[mask == 1] != 0).any())


def test_masked_weights_stay_zero_through_fit_with_adam():
    net = small_snn()
    prune_global(net, 0.7, skip="first")
    before = {n: net.get_submodule(n.rsplit(".", 1)[0]).weight_orig.detach().clone() for n in masks_of(net)}
    gen = torch.Generator().manual_seed(0)
    data = Split(torch.rand(24, 1, 8, 8, generator=gen), torch.randint(0, 3, (24,), generator=gen))
    fit(net, data, TrainConfig(epochs=2, batch_size=8, T=2, lr=1e-2, progress=False), val=None)  # 6 Adam steps
    for name, mask in masks_of(net).items():
        module = net.get_submodule(name.rsplit(".", 1)[0])
        assert bool((module.weight[mask == 0] == 0).all())
        # Adam saw zero gradients there and left the stored values alone
        assert torch.equal(module.weight_orig[mask == 0], before[name][mask == 0])
        assert not torch.equal(module.weight_orig[mask == 1], before[name][mask == 1])  # the rest trained
    assert abs(global_sparsity(net, prunable_weights(net, skip="first")) - 0.7) < 1e-3


def test_masked_models_copy_and_pickle_after_a_forward_pass():
    net = small_snn()
    prune_layerwise(net, 0.5)
    assert is_masked(net)
    x = torch.rand(2, 3, 1, 8, 8)
    net(x).sum().backward()  # leaves orig * mask tensors behind, which deepcopy refuses
    for clone in (copy.deepcopy(net), pickle.loads(pickle.dumps(net))):
        assert torch.equal(clone(x), net(x))
        assert masks_of(clone).keys() == masks_of(net).keys()


def test_remove_masks_bakes_the_masked_weights():
    net = small_snn()
    got = prune_global(net, 0.5)
    x = torch.rand(2, 3, 1, 8, 8)
    out = net(x)
    remove_masks(net)
    assert not is_masked(net) and set(net.state_dict()) == set(small_snn().state_dict())
    assert torch.equal(net(x), out)
    for name, mask in got.items():
        assert bool((net.get_submodule(name.rsplit(".", 1)[0]).weight[mask == 0] == 0).all())
    copy.deepcopy(net)


def test_apply_masks_to_a_fresh_model_and_rewind_keep_the_mask():
    trained = small_snn(seed=0)
    early = copy.deepcopy(trained.state_dict())
    with torch.no_grad():  # stands for training
        for p in trained.parameters():
            p.add_(0.1)
    got = prune_global(trained, 0.8)

    ticket = apply_masks(small_snn(seed=0), masks_of(trained))
    assert all(torch.equal(masks_of(ticket)[n], got[n]) for n in got)
    for name, mask in got.items():
        module = ticket.get_submodule(name.rsplit(".", 1)[0])
        assert torch.equal(module.weight, early[name] * mask)

    rewind(trained, early)
    assert all(torch.equal(masks_of(trained)[n], got[n]) for n in got)
    x = torch.rand(2, 3, 1, 8, 8)
    assert torch.equal(trained(x), ticket(x))
    assert torch.equal(trained.body.layers[0].bias, early["body.layers.0.bias"])  # biases rewound too

    # replacing a mask: the model's mask becomes exactly the new one, not an AND of both
    ones = {n: torch.ones_like(m) for n, m in got.items()}
    apply_masks(trained, ones)
    assert global_sparsity(trained) == 0.0
    assert torch.equal(trained.body.layers[0].weight, early["body.layers.0.weight"])

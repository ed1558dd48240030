"""Attention maps and the attention-transfer loss: hand-computed maps and losses, the layers
they are taken at, and the loss as fit's extra term."""
from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from snnkit.compress.attention import (AttentionTransfer, attention_distance, attention_layers, attention_loss,
                                       attention_map, attention_maps, capture)
from snnkit.data import load_dataset
from snnkit.interop import Layer, SequentialSpec
from snnkit.models import NeuronSpec, VGGSpec, build
from snnkit.train import TrainConfig, fit


def test_attention_map_of_a_hand_made_activation():
    # channel 0 and channel 1 on a 2x2 grid; squares summed over channels: [[2, 0], [0, 4]]
    f = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]],
                       [[-1.0, 0.0], [0.0, 2.0]]]])  # (1, 2, 2, 2)
    a = attention_map(f)
    assert a.shape == (1, 4)
    s = math.sqrt(20.0)
    assert torch.allclose(a, torch.tensor([[2 / s, 0.0, 0.0, 4 / s]]))
    assert torch.allclose(a.norm(dim=1), torch.ones(1))
    # scaling the activation leaves the map unchanged; an all-zero activation gives zeros
    assert torch.allclose(attention_map(3.0 * f), a)
    assert torch.equal(attention_map(torch.zeros(2, 3, 2, 2)), torch.zeros(2, 4))
    # the same map on its 2x2 grid, to show
    assert torch.allclose(attention_map(f, flatten=False), torch.tensor([[[2 / s, 0.0], [0.0, 4 / s]]]))


def test_attention_map_needs_spatial_dimensions():
    with pytest.raises(ValueError, match=r"features of shape \(4, 8\): expected \(B, C, H, W\)"):
        attention_map(torch.ones(4, 8))


def test_attention_loss_on_a_hand_case():
    # layer "a": sample 0 opposite corners (distance sqrt 2), sample 1 identical (0): mean sqrt(2)/2
    # layer "b": distance |(0.6, 0.8) - (0.8, 0.6)| = sqrt(0.08) for both samples
    student = {"a": torch.tensor([[1.0, 0.0], [0.6, 0.8]]), "b": torch.tensor([[0.6, 0.8], [0.6, 0.8]])}
    meta = {"a": torch.tensor([[0.0, 1.0], [0.6, 0.8]]), "b": torch.tensor([[0.8, 0.6], [0.8, 0.6]])}
    assert torch.allclose(attention_distance(student["a"], meta["a"]), torch.tensor([math.sqrt(2), 0.0]))
    expected = (3.0 / 2) * (math.sqrt(2) / 2 + math.sqrt(0.08))
    assert float(attention_loss(student, meta, 3.0)) == pytest.approx(expected, rel=1e-6)
    assert float(attention_loss(student, meta, 0.0)) == 0.0
    with pytest.raises(ValueError, match="weight=-1"):
        attention_loss(student, meta, -1)
    with pytest.raises(ValueError, match=r"lack layers \['b'\]"):
        attention_loss(student, {"a": meta["a"]}, 1.0)


def vgg(**kw) -> VGGSpec:
    return VGGSpec(in_shape=(1, 4, 4), num_classes=3, features=(2, "P", 3), hidden=(5,), **kw)


def test_attention_layers_are_the_activations_after_each_conv_and_shared_with_the_snn():
    ann = build(vgg(), spiking=False, seed=0)
    # conv, relu, pool, conv, relu, flatten, linear, relu, linear
    assert attention_layers(ann) == ["body.layers.1", "body.layers.4"]
    assert attention_layers(build(vgg(), seed=0)) == ["body.layers.1", "body.layers.4"]
    # with batch-norm the activation comes one module later
    assert attention_layers(build(vgg(batch_norm=True), spiking=False)) == ["body.layers.2", "body.layers.6"]


def test_attention_layers_of_sequence_nets_and_of_an_imported_net():
    seq = VGGSpec(in_shape=(1, 8), num_classes=3, features=(2, "P", 3), hidden=(5,))
    assert attention_layers(build(seq, seed=0)) == ["body.layers.1", "body.layers.4"]
    # an imported snntorch net pools before its neuron: the neuron is the activation, not the pool
    imported = SequentialSpec((1, 8), (
        Layer.of("conv1d", 2, kernel_size=3), Layer.of("maxpool1d", kernel_size=2), Layer.of("lif", neuron=NeuronSpec()),
        Layer.of("flatten"), Layer.of("linear", 4), Layer.of("lif", neuron=NeuronSpec()), Layer.of("linear", 2)))
    assert attention_layers(build(imported)) == ["body.layers.2"]  # the linear layer's neuron is not after a conv
    assert attention_layers(build(imported, spiking=False)) == ["body.layers.2"]


def test_attention_maps_of_a_sequence_by_hand():
    """A 1-channel 1-D net whose conv copies its input (centre tap 1): the map of (B, 1, L)
    inputs is the squared input over positions, L2-normalised, (B, L)."""
    spec = VGGSpec(in_shape=(1, 3), num_classes=2, features=(1,), neuron=NeuronSpec(beta=1.0, threshold=0.5))
    ann = build(spec, spiking=False, seed=0)
    with torch.no_grad():
        ann.body.layers[0].weight.zero_()
        ann.body.layers[0].weight[0, 0, 1] = 1.0
    x = torch.tensor([[[0.3, 0.0, 0.4]]])  # (1, 1, 3)
    n = math.sqrt(0.09 ** 2 + 0.16 ** 2)
    got = attention_maps(ann, x)["body.layers.1"]
    assert got.shape == (1, 3) and torch.allclose(got, torch.tensor([[0.09 / n, 0.0, 0.16 / n]]))
    # the spiking twin over 4 steps: rates 0.5 and 0.75, as on images
    snn = build(spec, seed=0)
    snn.load_state_dict(ann.state_dict(), strict=False)
    rates = torch.tensor([0.5 ** 2, 0.0, 0.75 ** 2])
    assert torch.allclose(attention_maps(snn, x, T=4)["body.layers.1"], (rates / rates.norm()).unsqueeze(0))


def identity_ann() -> nn.Module:
    """A 1-channel net whose first conv copies its input (centre tap 1), so the first
    ReLU's output is the input itself (inputs >= 0)."""
    spec = VGGSpec(in_shape=(1, 2, 2), num_classes=2, features=(1,),
                   neuron=NeuronSpec(beta=1.0, threshold=0.5))
    ann = build(spec, spiking=False, seed=0)
    with torch.no_grad():
        ann.body.layers[0].weight.zero_()
        ann.body.layers[0].weight[0, 0, 1, 1] = 1.0
    return ann


def test_attention_maps_of_an_ann_and_of_its_spiking_twin_by_hand():
    ann = identity_ann()
    x = torch.tensor([[[[0.3, 0.0], [0.0, 0.4]]]])  # (1, 1, 2, 2)
    maps = attention_maps(ann, x)
    # squares 0.09 and 0.16, L2 norm sqrt(0.09^2 + 0.16^2) = sqrt(0.0337)
    n = math.sqrt(0.0337)
    assert torch.allclose(maps["body.layers.1"], torch.tensor([[0.09 / n, 0.0, 0.0, 0.16 / n]]))
    grid = attention_maps(ann, x, flatten=False)["body.layers.1"]
    assert grid.shape == (1, 2, 2) and torch.allclose(grid.flatten(1), maps["body.layers.1"])
    # the spiking twin (IF, threshold 0.5) over 4 steps: input 0.3 fires at steps 2 and 4
    # (U 0.3, 0.6 -> spike, 0.4, 0.7 -> spike): rate 0.5; input 0.4 fires at steps 2, 3, 4
    # (U 0.4, 0.8 -> spike, 0.7 -> spike, 0.6 -> spike): rate 0.75
    snn = build(ann.spec, seed=0)
    snn.load_state_dict(ann.state_dict(), strict=False)
    rates = torch.tensor([0.5 ** 2, 0.0, 0.0, 0.75 ** 2])
    got = attention_maps(snn, x, T=4)["body.layers.1"]
    assert torch.allclose(got, (rates / rates.norm()).unsqueeze(0))


def test_capture_averages_snn_outputs_over_time_and_removes_its_hooks():
    snn = build(vgg(), seed=0)
    x = torch.rand(3, 2, 1, 4, 4)
    with capture(snn, ["body.layers.1"]) as acts:
        snn(x)
    assert acts["body.layers.1"].shape == (2, 2, 4, 4)
    assert not snn.body.layers[1]._forward_hooks
    with pytest.raises(ValueError, match=r"layers \['nope'\] are not modules"):
        with capture(snn, ["nope"]):
            pass


def test_attention_transfer_is_zero_for_a_copy_and_matches_the_loss_otherwise():
    meta = build(vgg(), spiking=False, seed=0)
    x = torch.rand(6, 1, 4, 4)
    with AttentionTransfer(meta, copy.deepcopy(meta), weight=2.0) as at:
        at.student(x)
        assert float(at(at.student, x).detach()) == pytest.approx(0.0, abs=1e-6)
    student = build(vgg(), spiking=False, seed=1)
    with AttentionTransfer(meta, student, weight=2.0) as at:
        student(x)
        loss = at(student, x)
    expected = attention_loss(attention_maps(student, x), attention_maps(meta, x), 2.0)
    assert float(loss.detach()) == pytest.approx(float(expected), rel=1e-5)
    loss.backward()
    assert student.body.layers[0].weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in meta.parameters())
    assert not any(m._forward_hooks for m in student.modules())


def test_attention_transfer_refuses_misuse():
    meta = build(vgg(), spiking=False, seed=0)
    student = build(vgg(), spiking=False, seed=1)
    at = AttentionTransfer(meta, student, weight=1.0)
    with pytest.raises(RuntimeError, match="not active"):
        at(student, torch.rand(2, 1, 4, 4))
    with at:
        with pytest.raises(RuntimeError, match="has not run a forward pass"):
            at(student, torch.rand(2, 1, 4, 4))
    with pytest.raises(ValueError, match="student is an SNN"):
        AttentionTransfer(meta, build(vgg()), weight=1.0)
    with pytest.raises(ValueError, match="weight=-0.5"):
        AttentionTransfer(meta, student, weight=-0.5)


def test_attention_transfer_as_fits_extra_loss_pulls_the_student_maps_towards_the_meta_model():
    ds = load_dataset("digits", seed=0, size=8)
    spec = VGGSpec(in_shape=(1, 8, 8), num_classes=10, features=(8, "P", 8))
    meta = build(spec, spiking=False, seed=0)
    fit(meta, ds.train.subset(300), TrainConfig(epochs=2, lr=1e-2, progress=False), val=None)
    x = ds.val.x[:64]

    def distance(student):
        s, m = attention_maps(student, x), attention_maps(meta, x)
        return float(sum(attention_distance(s[n], m[n]).mean() for n in s))

    cfg = TrainConfig(epochs=2, lr=1e-2, progress=False)
    plain = build(spec, spiking=False, seed=3)
    fit(plain, ds.train.subset(300), cfg, val=None)
    guided = build(spec, spiking=False, seed=3)
    with AttentionTransfer(meta, guided, weight=5.0) as at:
        fit(guided, ds.train.subset(300), cfg, val=None, extra_loss=at)
    assert at.last > 0
    assert distance(guided) < 0.7 * distance(plain)

"""The storage layer: one answer to "what is this layer's weight", in every layout, and the
one recording context every probe uses."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from snnkit.compress.masks import prune_global
from snnkit.compress.quant import UniformQuantizer, quantize_model
from snnkit.models import NeuronSpec, VGGSpec, build, is_spiking, lif_layers
from snnkit.recording import recording
from snnkit.weights import (
    FP_NAME, apply_masks, attach_quantizer, choose_layers, count_entries, count_nonzero, effective_weight,
    float_weight, has_mask, layer_of, masked_float_weight, masks_of, parameter_values, quant_records, quantizer_of,
    remove_masks, remove_quantizers,
)


def two_layer() -> nn.Sequential:
    net = nn.Sequential(nn.Linear(2, 2, bias=False), nn.Linear(2, 2))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, -2.0], [3.0, 4.0]]))
        net[1].weight.copy_(torch.tensor([[0.1, 0.2], [-0.3, 0.4]]))
        net[1].bias.copy_(torch.tensor([0.0, 5.0]))
    return net


def test_apply_masks_takes_bool_and_0_1_masks_and_refuses_other_values():
    net = two_layer()
    apply_masks(net, {"0.weight": torch.tensor([[True, False], [False, True]])})
    assert torch.equal(net[0].weight_mask, torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    for bad in (0.5, float("nan")):
        with pytest.raises(ValueError, match=r"mask for '0.weight' has values .*expected only 0 and 1"):
            apply_masks(net, {"0.weight": torch.tensor([[1.0, bad], [0.0, 1.0]])})
    assert torch.equal(net[0].weight_mask, torch.tensor([[1.0, 0.0], [0.0, 1.0]]))  # unchanged by the refusals


def test_effective_and_float_weight_in_every_layout():
    net = two_layer()
    plain = net[0].weight.detach().clone()
    assert torch.equal(effective_weight(net[0]), plain) and float_weight(net[0]) is net[0].weight
    assert torch.equal(effective_weight(net, "0.weight"), plain)
    # masked: orig * mask, read from what is stored even before a forward pass refreshes .weight
    apply_masks(net, {"0.weight": torch.tensor([[1.0, 0.0], [1.0, 1.0]])})
    assert has_mask(net[0]) and not has_mask(net[1]) and float_weight(net[0]) is net[0].weight_orig
    with torch.no_grad():
        net[0].weight_orig.mul_(2.0)
    assert torch.equal(effective_weight(net[0]), torch.tensor([[2.0, 0.0], [6.0, 8.0]]))
    assert torch.equal(masked_float_weight(net[0]), effective_weight(net[0]))
    # quantized (1 bit: sign times ||w||^2 / sum|w|) on top of the mask, masked again
    attach_quantizer(net[0], UniformQuantizer(masked_float_weight(net[0]).detach(), 1))
    c = (4 + 36 + 64) / (2 + 6 + 8)
    assert torch.allclose(effective_weight(net[0]), torch.tensor([[c, 0.0], [c, c]]))
    assert quantizer_of(net[0]) is not None and list(quant_records(net)) == ["0"]
    # quantized without a mask: the float weight is weight_fp
    attach_quantizer(net[1], UniformQuantizer(net[1].weight.detach(), 8))
    assert FP_NAME in net[1]._parameters and float_weight(net[1]) is net[1].weight_fp
    assert layer_of(net, "1.weight") == (net[1], "weight")
    with pytest.raises(ValueError, match="parameter '2.weight' is not in the model; expected e.g."):
        layer_of(net, "2.weight")
    # taking them off again: the float values come back (bake=False), then the plain layout
    remove_quantizers(net, bake=False)
    remove_masks(net)
    assert torch.equal(net[0].weight, torch.tensor([[2.0, 0.0], [6.0, 8.0]])) and not masks_of(net)


def test_one_nonzero_counter_reads_effective_values():
    net = two_layer()
    # weights 4 + 4, one bias 0 of 2: everything 9 non-zero of 10, weights alone 8 of 8
    assert (count_nonzero(net), count_entries(net)) == (9, 10)
    assert (count_nonzero(net, weights_only=True), count_entries(net, weights_only=True)) == (8, 8)
    prune_global(net, 0.5, names=["0.weight", "1.weight"])  # the four smallest: all of layer 1
    assert count_nonzero(net, weights_only=True) == 4 and count_entries(net, weights_only=True) == 8
    # a stale module.weight (no forward pass since the optimizer step) does not fool it
    with torch.no_grad():
        net[0].weight_orig.zero_()
    assert count_nonzero(net, weights_only=True) == 0
    # quantizer scales are not weights; shared parameters count once
    q, _ = quantize_model(two_layer(), 2, options={"learn_scale": True})
    names = [(v.module_name, v.name) for v in parameter_values(q)]
    assert names == [("0", "weight"), ("1", "bias"), ("1", "weight")]  # weight_fp is registered last
    shared = nn.Sequential(nn.Linear(2, 2, bias=False), nn.Linear(2, 2, bias=False))
    shared[1].weight = shared[0].weight
    assert count_entries(shared) == 4


def test_choose_layers_reads_skip_one_way():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(8, 4), nn.Linear(4, 2))
    names = lambda chosen: [n for n, _ in chosen]  # noqa: E731
    assert names(choose_layers(net)) == ["0", "2", "3"]
    assert names(choose_layers(net, ("first", "last"))) == ["2"]
    assert names(choose_layers(net, "2.weight")) == ["0", "3"]
    assert names(choose_layers(net, lambda n, m: isinstance(m, nn.Conv2d))) == ["2", "3"]
    assert names(choose_layers(net, layers=lambda n, m: isinstance(m, nn.Linear), skip="last")) == ["2"]
    with pytest.raises(ValueError, match="skip entry 'fc9'.*the layers are \\['0', '2', '3'\\]"):
        choose_layers(net, ["fc9"])
    with pytest.raises(ValueError, match="leaves no Conv/Linear layer"):
        choose_layers(net, ["0", "2", "3"])


def test_is_spiking_is_one_rule():
    spec = VGGSpec(in_shape=(1, 4, 4), num_classes=2, features=(2,))
    assert is_spiking(build(spec)) and not is_spiking(build(spec, spiking=False))
    assert not is_spiking(nn.Sequential(nn.Linear(2, 2)))  # no flag, no LIF layer
    assert is_spiking(nn.Sequential(build(spec)))  # no flag, LIF layers inside


def test_recording_restores_every_modules_mode_and_removes_its_hooks():
    spec = VGGSpec(in_shape=(1, 4, 4), num_classes=2, features=(3,), batch_norm=True,
                   neuron=NeuronSpec(beta=0.5, threshold=0.1))
    model = build(spec, seed=0)
    model.train()
    frozen = model.body.layers[1]  # a batch norm kept in eval mode while the rest trains
    frozen.eval()
    seen, spikes = [], {}
    x = torch.rand(2, 3, 1, 4, 4)
    with recording(model, {model.body.layers[0]: lambda m, i, o: seen.append((m.training, torch.is_grad_enabled()))},
                   probe=lambda name, spk, mem: spikes.setdefault(name, spk.sum())):
        model(x)
    assert seen == [(False, False)] and set(spikes) == {n for n, _ in lif_layers(model)}
    assert model.training and not frozen.training  # each module's own flag, not model.train(True)
    model(x)
    assert len(seen) == 1 and all(lif.probe is None for _, lif in lif_layers(model))  # hooks and probes gone
    # on error too, and with gradients and training mode when asked for
    with pytest.raises(RuntimeError, match="boom"):
        with recording(model, {model.body.layers[0]: lambda m, i, o: seen.append(torch.is_grad_enabled())},
                       eval_mode=False, grad=True):
            model(x)
            raise RuntimeError("boom")
    assert seen[-1] is True and model.training and not frozen.training
    model(x)
    assert len(seen) == 2
    # several models at once (timed against each other)
    other = copy.deepcopy(model)
    with recording([model, other]):
        assert not model.training and not other.training
    assert model.training and other.training

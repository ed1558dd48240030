"""Compression schedules (isolated, cumulative, joint) and the methods that fine-tune through one
("duq", "prune", "quantize")."""
from __future__ import annotations

import copy

import pytest
import torch

from snnkit.compress.masks import global_sparsity, masks_of, prune_global
from snnkit.compress.quant import effective_weight, quant_records
from snnkit.compress import compress
from snnkit.compress.schedules import COMPRESSION_SCHEDULES, Phase, cumulative, isolated, joint
from snnkit.data import Split
from snnkit.models import NeuronSpec, VGGSpec, build
from snnkit.train import TrainConfig


def test_registry_holds_the_three_schedules():
    assert COMPRESSION_SCHEDULES.names() == ("isolated", "cumulative", "joint")
    with pytest.raises(ValueError, match="unknown compression schedule 'gradual'; expected one of: isolated, cumulative, joint"):
        COMPRESSION_SCHEDULES.get("gradual")


def test_isolated_applies_one_method_from_the_start():
    assert isolated(4, prune=False, quantize=True) == [Phase(4, False, True)]
    assert isolated(4, prune=True, quantize=False) == [Phase(4, True, False)]
    with pytest.raises(ValueError, match="'isolated' applies exactly one method"):
        isolated(4, prune=True, quantize=True)
    with pytest.raises(ValueError, match="'isolated' applies exactly one method"):
        isolated(4, prune=False, quantize=False)


def test_cumulative_prunes_first_and_quantizes_from_half_way():
    assert cumulative(6) == [Phase(3, True, False), Phase(3, True, True)]
    assert cumulative(5) == [Phase(2, True, False), Phase(3, True, True)]
    assert cumulative(1) == [Phase(1, True, True)]  # no first half: the same as joint
    assert sum(p.epochs for p in cumulative(7)) == 7
    with pytest.raises(ValueError, match="'cumulative' needs both True"):
        cumulative(4, quantize=False)


def test_joint_switches_everything_on_at_once():
    assert joint(3) == [Phase(3, True, True)]
    assert joint(3, prune=False) == [Phase(3, False, True)]


@pytest.mark.parametrize("epochs", [0, -1, 2.5, True])
def test_schedules_reject_bad_epochs_by_name(epochs):
    for name in COMPRESSION_SCHEDULES:
        with pytest.raises(ValueError, match=f"epochs={epochs!r}: expected an integer >= 1"):
            COMPRESSION_SCHEDULES.get(name)(epochs, prune=True, quantize=name != "isolated")


# --------------------------------------------------------------------------- running a schedule


def tiny_setup():
    spec = VGGSpec(in_shape=(2, 4, 4), num_classes=3, features=(4, "P"), hidden=(6,),
                   neuron=NeuronSpec(beta=0.5, threshold=0.05, reset="zero"))
    net = build(spec, seed=0)
    x = (torch.rand(24, 3, 2, 4, 4, generator=torch.Generator().manual_seed(0)) < 0.4).float()  # (B, T, 2, H, W)
    split = Split(x, torch.arange(24) % 3)
    cfg = TrainConfig(epochs=2, T=3, batch_size=8, lr=1e-2, loss="mse", progress=False)
    return net, split, cfg


def test_joint_run_prunes_once_and_quantizes_from_the_start():
    net, split, cfg = tiny_setup()
    before = copy.deepcopy(net.state_dict())
    run = compress(net, split, "duq", cfg, schedule="joint", sparsity=0.5, bits=2)
    assert run.info["phases"] == [Phase(2, True, True)] and len(run.history) == 1 and run.method == "duq"
    assert run.history[0].epochs == 2 and run.history[0].sparsity == pytest.approx(0.5, abs=0.01)
    expected = copy.deepcopy(net)
    prune_global(expected, 0.5)  # the mask of the pretrained weights
    got = masks_of(run.model)
    assert set(got) == set(masks_of(expected))
    for name, mask in masks_of(expected).items():
        assert torch.equal(got[name], mask)
    modules = dict(run.model.named_modules())
    for name, record in quant_records(run.model).items():
        w = effective_weight(modules[name])
        assert record.scheme == "duq" and len(torch.unique(w)) <= 3
        assert bool((w[got[name + ".weight"] == 0] == 0).all())  # pruned weights stay 0
    assert global_sparsity(run.model) >= 0.5
    for key, value in net.state_dict().items():  # the pretrained net is untouched
        assert torch.equal(value, before[key])


def test_cumulative_run_quantizes_from_half_way():
    net, split, cfg = tiny_setup()
    run = compress(net, split, "duq", cfg, schedule="cumulative", sparsity=0.5, bits=3)
    assert run.info["phases"] == [Phase(1, True, False), Phase(1, True, True)] and len(run.history) == 2
    assert all(r.bits == 3 for r in quant_records(run.model).values())
    assert run.seconds > 0


def test_isolated_and_plain_runs():
    net, split, cfg = tiny_setup()
    quant = compress(net, split, "duq", cfg, schedule="isolated", bits=4)
    assert masks_of(quant.model) == {} and len(quant_records(quant.model)) == 3
    prune = compress(net, split, "duq", cfg, schedule="isolated", sparsity=0.75, bits=None)
    assert quant_records(prune.model) == {} and global_sparsity(prune.model) == pytest.approx(0.75, abs=0.01)
    plain = compress(net, split, "duq", cfg.replace(epochs=1), bits=None)
    assert plain.info["phases"] == [Phase(1, False, False)]
    assert masks_of(plain.model) == {} and quant_records(plain.model) == {}
    # "prune" and "quantize" are the same loop with one of the two
    same = compress(net, split, "prune", cfg, sparsity=0.75)
    assert all(torch.equal(a, b) for a, b in zip(masks_of(same.model).values(), masks_of(prune.model).values()))
    ptq = compress(net, split, "quantize", cfg.replace(epochs=0), bits=4, quantizer="duq")
    assert ptq.history[0].epochs == 0 and len(quant_records(ptq.model)) == 3


def test_duq_rejects_bad_requests_by_name():
    net, split, cfg = tiny_setup()
    with pytest.raises(ValueError, match="'isolated' applies exactly one method"):
        compress(net, split, "duq", cfg, schedule="isolated", sparsity=0.5, bits=2)
    with pytest.raises(ValueError, match="sparsity=1.0: expected a fraction in"):
        compress(net, split, "duq", cfg, sparsity=1.0)
    with pytest.raises(ValueError, match="unknown compression schedule 'staged'"):
        compress(net, split, "duq", cfg, schedule="staged", bits=2)
    with pytest.raises(ValueError, match="method 'duq': .*'amount'"):
        compress(net, split, "duq", cfg, amount=0.5)


def test_a_layer_emptied_by_the_global_cut_stops_quantization_before_training():
    # the first layer's weights are tiny: a global magnitude cut at 60 % takes all of them
    net, split, cfg = tiny_setup()
    with torch.no_grad():
        net.body.layers[0].weight.mul_(1e-4)
    with pytest.raises(ValueError, match=r"removes every weight of \['body.layers.0.weight'\].*quantizer cannot"):
        compress(net, split, "duq", cfg, sparsity=0.6, bits=2)
    # pruning alone allows it and says so; a per-layer cut keeps every layer
    alone = compress(net, split, "duq", cfg.replace(epochs=1), sparsity=0.6, bits=None)
    assert alone.info["empty_layers"] == ["body.layers.0.weight"]
    layer = compress(net, split, "duq", cfg.replace(epochs=1), sparsity=0.6, bits=2, planner="layer")
    assert layer.info["empty_layers"] == [] and len(quant_records(layer.model)) == 3

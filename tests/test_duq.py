"""DuQ, the learned-scale symmetric quantizer of Schaefer et al. (2023), on hand-computed cases."""
from __future__ import annotations

import copy
import pickle

import pytest
import torch
from torch import nn

from snnkit.compress.masks import prune_global
from snnkit.compress.quant import (
    QUANTIZERS,
    DuQQuantizer,
    apply_records,
    duq_init,
    duq_quantize,
    effective_weight,
    quant_records,
    quantize_model,
)
from snnkit.models import NeuronSpec, VGGSpec, build
from snnkit.train import TrainConfig, fit


def small_net(seed: int = 0) -> nn.Module:
    spec = VGGSpec(in_shape=(2, 4, 4), num_classes=3, features=(4, "P"), hidden=(6,),
                   neuron=NeuronSpec(beta=0.5, threshold=0.05, reset="zero"))
    return build(spec, seed=seed)


@pytest.mark.parametrize("bits", [2, 3, 4, 5, 6, 8])
def test_level_set_for_each_bit_width(bits):
    """Weights over [-2a, 2a] hit every level c k / (n - 1), |k| <= n - 1, and nothing else."""
    a, c = torch.tensor(1.0), torch.tensor(0.5)
    w = torch.linspace(-2, 2, 20001)
    steps = 2 ** (bits - 1) - 1  # n - 1
    expected = c * torch.arange(-steps, steps + 1, dtype=torch.float32) / steps
    got = torch.unique(duq_quantize(w, a, c, bits))
    assert got.numel() == 2**bits - 1
    torch.testing.assert_close(got, expected)


def test_two_bits_give_exactly_minus_c_zero_plus_c():
    w = torch.randn(1000, generator=torch.Generator().manual_seed(0))
    q = DuQQuantizer(w, 2)
    c = float(q.c.detach())
    assert set(torch.unique(q(w)).tolist()) == {-c, 0.0, c}
    assert q.record(w).codes.tolist() == [-1.0, 0.0, 1.0]
    torch.testing.assert_close(q.levels(w), torch.tensor([-c, 0.0, c]))


def test_hand_computed_values():
    w = torch.tensor([-3.0, -0.6, -0.4, 0.0, 0.4, 0.6, 3.0])
    a, c = torch.tensor(1.0), torch.tensor(2.0)
    # 2 bits: round(hardtanh(w)) = [-1, -1, 0, 0, 0, 1, 1], times c
    assert duq_quantize(w, a, c, 2).tolist() == [-2.0, -2.0, 0.0, 0.0, 0.0, 2.0, 2.0]
    # 3 bits: n - 1 = 3: round(hardtanh(w) * 3) = [-3, -2, -1, 0, 1, 2, 3], times c / 3
    torch.testing.assert_close(duq_quantize(w, a, c, 3), torch.tensor([-3.0, -2, -1, 0, 1, 2, 3]) * 2 / 3)
    # a and c are used by magnitude
    assert duq_quantize(w, -a, -c, 2).tolist() == duq_quantize(w, a, c, 2).tolist()


def test_init_is_mu_plus_minus_three_sigma():
    # mean 2, population std 1: max(|2 - 3|, |2 + 3|) = 5
    assert float(duq_init(torch.tensor([1.0, 3.0]))) == pytest.approx(5.0)
    # mean 0, std 1: 3
    assert float(duq_init(torch.tensor([-1.0, 1.0]))) == pytest.approx(3.0)
    # mean -4, std 0.5: max(|-5.5|, |-2.5|) = 5.5
    assert float(duq_init(torch.tensor([-4.5, -3.5]))) == pytest.approx(5.5)
    q = DuQQuantizer(torch.tensor([1.0, 3.0]), 4)
    assert float(q.a.detach()) == float(q.c.detach()) == pytest.approx(5.0)
    assert float(q.scale().detach()) == pytest.approx(5.0 / 7)


def test_straight_through_gradients_by_hand():
    w = torch.tensor([-3.0, -0.4, 0.3, 0.8, 1.8], requires_grad=True)
    a = torch.tensor(2.0, requires_grad=True)
    c = torch.tensor(0.5, requires_grad=True)
    q = duq_quantize(w, a, c, 2)  # w / a = [-1.5, -0.2, 0.15, 0.4, 0.9] -> hardtanh -> codes [-1, 0, 0, 0, 1]
    q.sum().backward()
    inside = torch.tensor([0.0, 1.0, 1.0, 1.0, 1.0])  # hardtanh passes |w / a| <= 1
    torch.testing.assert_close(w.grad, inside * 0.5 / 2.0)  # d/dw = c / a inside, 0 outside
    assert float(c.grad) == pytest.approx(-1 + 0 + 0 + 0 + 1)  # sum of the codes / (n - 1)
    # d/da = sum over the inside of -c w / a^2
    assert float(a.grad) == pytest.approx(-0.5 * (-0.4 + 0.3 + 0.8 + 1.8) / 4.0)


def test_rejects_what_it_cannot_do_by_name():
    w = torch.randn(10)
    with pytest.raises(ValueError, match="bits=1: DuQ needs bits >= 2"):
        DuQQuantizer(w, 1)
    with pytest.raises(ValueError, match="bits=1: DuQ needs bits >= 2"):
        duq_quantize(w, torch.tensor(1.0), torch.tensor(1.0), 1)
    with pytest.raises(ValueError, match="per_channel=True"):
        DuQQuantizer(w, 2, per_channel=True)
    with pytest.raises(ValueError, match="all-zero weight"):
        DuQQuantizer(torch.zeros(4), 2)
    with pytest.raises(ValueError, match="learn_scale=1"):
        DuQQuantizer(w, 2, learn_scale=1)


def test_quantize_model_with_duq_learns_a_and_c():
    net = small_net()
    qnet, errors = quantize_model(net, 2, quantizer="duq")
    assert QUANTIZERS.get("duq") is DuQQuantizer
    records = quant_records(qnet)
    assert len(records) == len(errors) == 3
    assert all(r.scheme == "duq" and r.bits == 2 and r.num_levels == 3 for r in records.values())
    modules = dict(qnet.named_modules())
    for name in records:
        values = set(torch.unique(effective_weight(modules[name])).tolist())
        c = float(modules[name].weight_quantizer.c.detach())
        assert values <= {-c, 0.0, c}
    params = {n for n, _ in qnet.named_parameters()}
    assert "body.layers.0.weight_quantizer.a" in params and "body.layers.0.weight_quantizer.c" in params
    before = float(modules["body.layers.0"].weight_quantizer.c.detach())
    x = (torch.rand(16, 3, 2, 4, 4, generator=torch.Generator().manual_seed(0)) < 0.5).float()  # (B, T, 2, H, W)
    from snnkit.data import Split
    split = Split(x, torch.arange(16) % 3)
    fit(qnet, split, TrainConfig(epochs=1, T=3, batch_size=8, lr=1e-2, loss="mse", progress=False), val=None)
    assert float(modules["body.layers.0"].weight_quantizer.c.detach()) != before
    after = set(torch.unique(effective_weight(modules["body.layers.0"])).tolist())
    assert len(after) <= 3


def test_masked_layer_stays_masked_and_fits_the_masked_weight():
    net = small_net()
    prune_global(net, 0.5)
    layer = dict(net.named_modules())["body.layers.4"]  # the hidden linear layer
    masked = (layer.weight_orig * layer.weight_mask).detach()
    qnet, _ = quantize_model(net, 3, quantizer="duq")
    qlayer = dict(qnet.named_modules())["body.layers.4"]
    assert float(qlayer.weight_quantizer.a.detach()) == pytest.approx(float(duq_init(masked)))
    w = effective_weight(qlayer)
    assert bool((w[layer.weight_mask == 0] == 0).all())


def test_copies_pickles_and_rebuilds_from_records():
    qnet, _ = quantize_model(small_net(), 4, quantizer="duq")
    x = torch.ones(2, 1, 2, 4, 4)
    out = qnet(x)
    for clone in (copy.deepcopy(qnet), pickle.loads(pickle.dumps(qnet))):
        torch.testing.assert_close(clone(x), out)
    fresh = apply_records(small_net(), quant_records(qnet))
    fresh.load_state_dict(qnet.state_dict())
    torch.testing.assert_close(fresh(x), out)

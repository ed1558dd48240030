"""Tests for snnkit.metrics, with numbers computed by hand.

The tiny net: VGGSpec(in_shape=(1, 4, 4), num_classes=2, features=(2, "P")), i.e.

    body.layers.0  Conv2d(1, 2, 3, padding=1, bias=False)   weight all 0.25
    body.layers.1  LIF (beta=1, threshold=1, subtract reset, spike iff U > 1)
    body.layers.2  MaxPool2d(2)
    body.layers.3  Flatten
    body.layers.4  Linear(8, 2, bias=False)                weight all 1

Parameters: 18 (conv) + 16 (linear) + 2 (LIF beta, threshold) = 36.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import prune

from snnkit import metrics as M
from snnkit.encoding import direct
from snnkit.models import NeuronSpec, ResNetSpec, VGGSpec, build
from snnkit.compress.quant import quantize_model

CONV, LIF, LIN = "body.layers.0", "body.layers.1", "body.layers.4"
SPEC = VGGSpec(
    in_shape=(1, 4, 4),
    num_classes=2,
    features=(2, "P"),
    readout="mem",
    neuron=NeuronSpec(beta=1.0, threshold=1.0),
)
T = 3


def tiny(spiking: bool = True, bias: bool = False, pool: str = "max") -> nn.Module:
    spec = VGGSpec(**{**SPEC.__dict__, "bias": bias, "pool": pool})
    net = build(spec, spiking=spiking, seed=0)
    mods = dict(net.named_modules())
    with torch.no_grad():
        mods[CONV].weight.fill_(0.25)
        mods[LIN].weight.fill_(1.0)
    return net


# --------------------------------------------------------------------------- basics


def test_accuracy():
    logits = torch.tensor([[2.0, 1.0], [0.0, 3.0], [5.0, -1.0], [0.1, 0.2]])
    y = torch.tensor([0, 1, 1, 0])
    assert M.accuracy(logits, y) == 0.5
    with pytest.raises(ValueError):
        M.accuracy(logits[None], y)


def test_counts_and_sparsity():
    net = tiny()
    assert M.count_params(net) == 36
    assert M.count_params(net, trainable_only=True) == 34  # LIF beta/threshold are frozen
    assert M.count_nonzero(net) == 36
    assert M.sparsity(net) == 0.0
    with torch.no_grad():
        dict(net.named_modules())[CONV].weight.view(-1)[:5] = 0.0
    assert M.count_nonzero(net) == 31
    assert M.sparsity(net) == pytest.approx(5 / 34)
    assert M.sparsity(net, weights_only=False) == pytest.approx(5 / 36)


def test_model_size_bits_hand_count():
    net = tiny()
    assert M.model_size_bits(net) == 36 * 32  # no quant_bits: everything fp32
    bits = {CONV: 4, LIN: 8}
    assert M.model_size_bits(net, bits) == 18 * 4 + 16 * 8 + 2 * 32  # 264
    assert M.model_size_mb(net, bits) == pytest.approx(264 / 8 / 1e6)
    # bias of a quantized module stays at 32 bits: + 2 (conv bias) + 2 (linear bias)
    netb = tiny(bias=True)
    assert M.model_size_bits(netb, bits) == 18 * 4 + 16 * 8 + (2 + 2 + 2) * 32
    # nonzero_only: zero 5 conv weights
    with torch.no_grad():
        dict(net.named_modules())[CONV].weight.view(-1)[:5] = 0.0
    assert M.model_size_bits(net, bits, nonzero_only=True) == 13 * 4 + 16 * 8 + 2 * 32
    with pytest.raises(ValueError, match="nope"):
        M.model_size_bits(net, {"nope": 4})


def test_model_size_bits_uses_quant_bits_attribute():
    net_q, _ = quantize_model(tiny(), 4, skip=["last"])
    assert net_q.quant_bits == {CONV: 4}
    assert M.model_size_bits(net_q) == 18 * 4 + (16 + 2) * 32


def test_buffers_not_counted():
    bn = nn.BatchNorm2d(3)  # weight + bias = 6 params; running stats are buffers
    assert M.count_params(bn) == 6
    assert M.model_size_bits(bn) == 6 * 32


def test_pruned_by_mask_weight_counted_once():
    lin = nn.Linear(4, 2, bias=False)
    prune.l1_unstructured(lin, "weight", amount=3)
    assert M.count_params(lin) == 8
    assert M.count_nonzero(lin) == 5
    assert M.sparsity(lin) == pytest.approx(3 / 8)
    assert M.model_size_bits(lin, {"": 8}, nonzero_only=True) == 5 * 8


# --------------------------------------------------------------------------- energy table


def test_energy_table_values():
    assert M.ENERGY_TABLE["fp32"] == {"mac": 4.6, "add": 0.9}
    assert M.ENERGY_TABLE["fp16"] == {"mac": 1.5, "add": 0.4}
    assert M.ENERGY_TABLE["int8"] == {"mac": 0.23, "add": 0.03}
    assert "Horowitz" in M.ENERGY_TABLE["source"]
    assert M.energy_per_op("fp32") == (4.6, 0.9)
    assert M.energy_per_op("int8") == (0.23, 0.03)


def test_unknown_precision():
    with pytest.raises(ValueError, match="fp64") as e:
        M.energy_per_op("fp64")
    assert "fp32" in str(e.value) and "int8" in str(e.value)


# --------------------------------------------------------------------------- fan-out


def test_conv_fanout_3x3_pad1():
    conv = nn.Conv2d(1, 2, 3, padding=1)
    fan = M.conv_fanout(conv, (1, 4, 4))
    assert fan.shape == (1, 4, 4)
    # per out channel: corner reaches 4 output positions, edge 6, interior 9
    assert fan[0, 0, 0] == 8 and fan[0, 3, 3] == 8
    assert fan[0, 0, 1] == 12 and fan[0, 2, 0] == 12
    assert fan[0, 1, 1] == 18 and fan[0, 2, 2] == 18
    assert fan.sum() == 2 * (4 * 4 + 8 * 6 + 4 * 9)  # = out elements x taps actually used


def test_conv_fanout_stride2():
    conv = nn.Conv2d(1, 1, 3, stride=2, padding=1)  # 4x4 -> 2x2; rows reached [1, 2, 1, 1]
    fan = M.conv_fanout(conv, (1, 4, 4))
    rows = torch.tensor([1.0, 2.0, 1.0, 1.0], dtype=torch.float64)
    torch.testing.assert_close(fan[0], rows[:, None] * rows[None, :])


def test_conv_fanout_matches_conv_transpose():
    conv = nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 1), dilation=(1, 2), groups=2)
    in_shape = (4, 7, 6)
    fan = M.conv_fanout(conv, in_shape)
    out = conv(torch.zeros(1, *in_shape))
    H, W = in_shape[1:]
    ref = F.conv_transpose2d(
        torch.ones(out.shape, dtype=torch.float64),
        torch.ones(6, 2, 3, 2, dtype=torch.float64),
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        groups=conv.groups,
    )
    # the transposed conv may come out short where the forward conv dropped input rows
    full = torch.zeros(1, *in_shape, dtype=torch.float64)
    full[..., : ref.shape[-2], : ref.shape[-1]] = ref[..., :H, :W]
    torch.testing.assert_close(fan, full[0])


# --------------------------------------------------------------------------- measure: SNN


def test_measure_direct_input_by_hand():
    """Sample 0: all pixels 0.5; sample 1: zeros (no spikes). Direct input, T=3.

    Conv currents (both channels): corner 4 taps x 0.25 x 0.5 = 0.5, edge 0.75,
    interior 1.125. With U[t] = U[t-1] + I - S[t-1], spike iff U > 1:
      t0: U = .5/.75/1.125            -> interior fires (4 neurons)
      t1: U = 1.0/1.5/1.25            -> edge + interior (8 + 4 = 12)
      t2: U = 1.5/1.25/1.375          -> all 16
    per channel 32, two channels: 64 spikes for sample 0, 0 for sample 1 -> 32 per sample.
    Max pool (each 2x2 window holds a corner, 2 edges and an interior neuron): every window
    fires at every step, 2 ch x 4 windows = 8 pooled spikes per step, 24 over T for
    sample 0 -> 12 per sample; linear SynOps = 12 x 2 out features = 24.
    Conv MACs: analog input, 2 ch x 16 positions x 9 taps = 288 per step, x T = 864.
    """
    net = tiny()
    img = torch.zeros(2, 1, 4, 4)
    img[0] = 0.5
    x = direct(img, T)
    r = M.measure(net, x)
    assert r.timesteps == 3 and r.latency == 3 and M.latency(r) == 3 and r.batch_size == 2
    assert r.spiking
    conv, lin = r.layer(CONV), r.layer(LIN)
    assert [lo.name for lo in r.layers] == [CONV, LIN]
    assert conv.kind == "conv" and conv.macs_per_step == 288 and conv.macs == 864
    assert not conv.binary_input and conv.synops == 0 and conv.input_spikes == 0
    assert lin.kind == "linear" and lin.binary_input and lin.macs_per_step == 16 and lin.macs == 0
    assert lin.input_spikes == 12 and lin.synops == 24
    assert r.spikes_per_layer == {LIF: 32.0}
    assert r.neurons_per_layer == {LIF: 32}
    assert r.spikes_per_inference == 32.0
    assert r.firing_rates[LIF] == pytest.approx(32 / (32 * 3))
    assert r.macs == 864 and r.synops == 24.0

    e = M.energy(r)  # fp32: 864 x 4.6 + 24 x 0.9
    assert e["mac_pj"] == pytest.approx(3974.4, rel=1e-12)
    assert e["syn_pj"] == pytest.approx(21.6, rel=1e-12)
    assert e["total_pj"] == pytest.approx(3996.0, rel=1e-12)
    assert e["total_uj"] == pytest.approx(3996.0e-6, rel=1e-12)
    e8 = M.energy(r, "int8")  # 864 x 0.23 + 24 x 0.03
    assert e8["total_pj"] == pytest.approx(198.72 + 0.72, rel=1e-12)


def test_avg_pool_makes_next_layer_analog():
    """Same as above with an average pool: at t0 only the interior neuron of each 2x2 window
    fires, so the pooled map holds 0.25 -> analog -> the linear layer costs MACs every step
    (16 x T = 48) and no SynOps."""
    net = tiny(pool="avg")
    img = torch.zeros(2, 1, 4, 4)
    img[0] = 0.5
    r = M.measure(net, direct(img, T))
    lin = r.layer(LIN)
    assert not lin.binary_input and lin.macs == 48 and lin.synops == 0
    assert r.macs == 864 + 48 and r.synops == 0


def test_direct_input_same_as_materialised_input():
    """A contiguous copy of the direct input runs the conv on T*B rows: same counts."""
    net = tiny()
    img = torch.full((2, 1, 4, 4), 0.5)
    r1 = M.measure(net, direct(img, T))
    r2 = M.measure(net, direct(img, T).contiguous())
    assert r1.as_dict() == r2.as_dict()


def test_measure_spike_input_conv_synops():
    """Spike-coded input: the first conv is event-driven. One spike per step:
    t0 corner (fan-out 4 x 2 ch = 8), t1 interior (18), t2 edge (12) -> 38 SynOps.
    Largest accumulated membrane is 3 x 0.25 = 0.75 < 1: no LIF spikes, linear idle."""
    net = tiny()
    x = torch.zeros(T, 1, 1, 4, 4)
    x[0, 0, 0, 0, 0] = 1
    x[1, 0, 0, 1, 1] = 1
    x[2, 0, 0, 0, 1] = 1
    r = M.measure(net, x)
    conv = r.layer(CONV)
    assert conv.binary_input and conv.macs == 0
    assert conv.input_spikes == 3 and conv.synops == 38
    assert r.spikes_per_inference == 0 and r.layer(LIN).synops == 0
    assert r.macs == 0 and r.synops == 38
    assert M.energy(r)["total_pj"] == pytest.approx(38 * 0.9)


# --------------------------------------------------------------------------- measure: ANN


def test_measure_ann_all_macs():
    ann = tiny(spiking=False)
    img = torch.full((2, 1, 4, 4), 0.5)
    r = M.measure(ann, img)
    assert not r.spiking and r.timesteps == 1 and M.latency(r) == 1
    assert r.layer(CONV).macs == 288 and r.layer(LIN).macs == 16
    assert r.macs == 304 and r.synops == 0 and r.spikes_per_inference == 0
    assert r.spikes_per_layer == {}
    assert M.energy(r)["total_pj"] == pytest.approx(304 * 4.6)
    snn = M.measure(tiny(), direct(img, T))
    # SNN with both samples at 0.5: 864 MACs, linear input 24 spikes/sample -> 48 SynOps
    assert snn.synops == 48 and snn.macs == 864
    assert M.energy_ratio(snn, r) == pytest.approx((864 * 4.6 + 48 * 0.9) / (304 * 4.6))


def test_measure_restores_training_mode_and_probes():
    net = tiny()
    net.train()
    M.measure(net, direct(torch.rand(2, 1, 4, 4), T))
    assert all(m.training for m in net.modules())
    assert dict(net.named_modules())[LIF].probe is None
    assert not any(m._forward_hooks for m in net.modules())


def test_resnet_smoke_and_summary():
    spec = ResNetSpec(in_shape=(2, 8, 8), num_classes=3, stem=4, stages=(4, 8), blocks=(1, 1))
    net = build(spec, seed=0)
    x = direct(torch.rand(2, 2, 8, 8), 2)
    r = M.measure(net, x)
    stem = r.layers[0]
    assert stem.name == "body.layers.0" and not stem.binary_input
    assert stem.macs == 4 * 64 * (2 * 9) * 2  # out ch x positions x taps x T
    # every later conv sees spikes; the final linear sees an average pool
    assert all(lo.binary_input and lo.macs == 0 for lo in r.layers[1:-1])
    last = r.layers[-1]
    assert last.macs == (0 if last.binary_input else 8 * 3 * 2)
    assert r.spikes_per_inference == pytest.approx(sum(r.spikes_per_layer.values()))
    s = M.summary(net, x)
    assert set(s) == {"params", "nonzero", "size_mb", "spikes_per_inference", "macs", "synops", "energy_uj", "timesteps"}
    assert s["params"] == M.count_params(net) and s["timesteps"] == 2
    assert s["macs"] == r.macs and s["synops"] == pytest.approx(r.synops)

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
from torch.nn.utils import parametrize, prune

from snnkit import metrics as M
from snnkit.encoding import direct
from snnkit.models import NeuronSpec, ResNetSpec, VGGSpec, build
from snnkit.compress.quant import quant_records, quantize_model

CONV, LIF, LIN = "body.layers.0", "body.layers.1", "body.layers.4"
SPEC = VGGSpec(
    in_shape=(1, 4, 4),
    num_classes=2,
    features=(2, "P"),
    readout="mem",
    neuron=NeuronSpec(beta=1.0, threshold=1.0),
)
T = 3


def filled(spec: VGGSpec, spiking: bool, lin: str) -> nn.Module:
    """``build(spec)`` with the first conv's weights all 0.25 and the linear layer ``lin``'s all 1."""
    net = build(spec, spiking=spiking, seed=0)
    mods = dict(net.named_modules())
    with torch.no_grad():
        mods[CONV].weight.fill_(0.25)
        mods[lin].weight.fill_(1.0)
    return net


def tiny(spiking: bool = True, bias: bool = False, pool: str = "max") -> nn.Module:
    return filled(VGGSpec(**{**SPEC.__dict__, "bias": bias, "pool": pool}), spiking, LIN)


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


def test_model_size_bits_reads_the_quantization_records():
    net_q, _ = quantize_model(tiny(), 4, skip=["last"])
    assert {name: rec.bits for name, rec in quant_records(net_q).items()} == {CONV: 4}
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
    Conv MACs: analog input; per output row/column the 3 taps reach 2 real inputs at the
    two borders and 3 inside, 2 + 3 + 3 + 2 = 10, so 10 x 10 = 100 synapses per channel
    (not 16 x 9 = 144: zero-padding taps are no synapses), 2 ch -> 200 per step, x T = 600.
    Effective MACs: sample 0 has every pixel non-zero (200 per step), sample 1 none:
    200 x 3 / 2 = 300 per sample. All weights are non-zero, so effective ACs = SynOps = 24.
    Total synops (NeuroBench's Dense): (200 + 16) x 3 = 648.
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
    assert conv.kind == "conv" and conv.macs_per_step == 200 and conv.macs == 600
    assert conv.effective_macs == 300 and conv.effective_acs == 0 and conv.total_synops == 600
    assert not conv.binary_input and conv.synops == 0 and conv.input_spikes == 0
    assert lin.kind == "linear" and lin.binary_input and lin.macs_per_step == 16 and lin.macs == 0
    assert lin.input_spikes == 12 and lin.synops == 24
    assert lin.effective_acs == 24 and lin.effective_macs == 0 and lin.total_synops == 48
    assert r.spikes_per_layer == {LIF: 32.0}
    assert r.neurons_per_layer == {LIF: 32}
    assert r.spikes_per_inference == 32.0
    assert r.firing_rates[LIF] == pytest.approx(32 / (32 * 3))
    assert r.macs == 600 and r.synops == 24.0
    assert r.effective_macs == 300 and r.effective_acs == 24 and r.total_synops == 648
    assert r.neurobench() == {"Effective_MACs": 300.0, "Effective_ACs": 24.0, "Dense": 648.0}

    e = M.energy(r)  # dense by default, fp32: 600 x 4.6 + 24 x 0.9
    assert e["mac_pj"] == pytest.approx(2760.0, rel=1e-12)
    assert e["syn_pj"] == pytest.approx(21.6, rel=1e-12)
    assert e["total_pj"] == pytest.approx(2781.6, rel=1e-12)
    assert e["total_uj"] == pytest.approx(2781.6e-6, rel=1e-12)
    assert M.energy(r, counts="dense") == e
    e8 = M.energy(r, "int8")  # 600 x 0.23 + 24 x 0.03
    assert e8["total_pj"] == pytest.approx(138.0 + 0.72, rel=1e-12)
    eff = M.energy(r, counts="effective")  # 300 x 4.6 + 24 x 0.9
    assert eff["total_pj"] == pytest.approx(1380.0 + 21.6, rel=1e-12)


def test_avg_pool_makes_next_layer_analog():
    """Same as above with an average pool: at t0 only the interior neuron of each 2x2 window
    fires, so the pooled map holds 0.25 -> analog -> the linear layer costs MACs every step
    (16 x T = 48) and no SynOps. Its effective MACs: sample 0's pooled map is non-zero in all
    8 entries at every step (16 per step), sample 1's is zero: 16 x 3 / 2 = 24."""
    net = tiny(pool="avg")
    img = torch.zeros(2, 1, 4, 4)
    img[0] = 0.5
    r = M.measure(net, direct(img, T))
    lin = r.layer(LIN)
    assert not lin.binary_input and lin.macs == 48 and lin.synops == 0
    assert lin.effective_macs == 24 and lin.effective_acs == 0
    assert r.macs == 600 + 48 and r.synops == 0 and r.effective_macs == 300 + 24


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
    assert conv.input_spikes == 3 and conv.synops == 38 and conv.effective_acs == 38
    assert r.spikes_per_inference == 0 and r.layer(LIN).synops == 0
    assert r.macs == 0 and r.synops == 38
    assert M.energy(r)["total_pj"] == pytest.approx(38 * 0.9)


# --------------------------------------------------------------------------- measure: ANN


def test_measure_ann_all_macs():
    ann = tiny(spiking=False)
    img = torch.full((2, 1, 4, 4), 0.5)
    r = M.measure(ann, img)
    assert not r.spiking and r.timesteps == 1 and M.latency(r) == 1
    assert r.layer(CONV).macs == 200 and r.layer(LIN).macs == 16
    assert r.macs == 216 and r.synops == 0 and r.spikes_per_inference == 0
    assert r.effective_acs == 0 and r.effective_macs == 216  # no zero input or weight
    assert r.total_synops == 216
    assert r.spikes_per_layer == {}
    assert M.energy(r)["total_pj"] == pytest.approx(216 * 4.6)
    snn = M.measure(tiny(), direct(img, T))
    # SNN with both samples at 0.5: 600 MACs, linear input 24 spikes/sample -> 48 SynOps
    assert snn.synops == 48 and snn.macs == 600
    assert M.energy_ratio(snn, r) == pytest.approx((600 * 4.6 + 48 * 0.9) / (216 * 4.6))
    assert M.energy_ratio(snn, r, counts="effective") == pytest.approx((600 * 4.6 + 48 * 0.9) / (216 * 4.6))


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
    # out ch x in ch x (8 x 3 - 2 border taps per axis)^2 x T: 3x3 padding-1 on 8 x 8
    assert stem.macs == 4 * 2 * 22 * 22 * 2 == 7744
    # every later conv sees spikes; the final linear sees an average pool
    assert all(lo.binary_input and lo.macs == 0 for lo in r.layers[1:-1])
    last = r.layers[-1]
    assert last.macs == (0 if last.binary_input else 8 * 3 * 2)
    assert r.spikes_per_inference == pytest.approx(sum(r.spikes_per_layer.values()))
    s = M.summary(net, x)
    assert set(s) == {
        "params", "nonzero", "size_mb", "spikes_per_inference", "macs", "synops", "effective_macs",
        "effective_acs", "total_synops", "energy_uj", "energy_uj_effective", "timesteps",
    }
    assert s["params"] == M.count_params(net) and s["timesteps"] == 2
    assert s["macs"] == r.macs and s["synops"] == pytest.approx(r.synops)
    # no zero weight: effective ACs = SynOps; every stem input pixel is non-zero (torch.rand)
    assert s["effective_acs"] == pytest.approx(r.synops) and stem.effective_macs == stem.macs
    assert s["effective_macs"] == pytest.approx(r.effective_macs) and s["total_synops"] == r.total_synops
    assert s["energy_uj"] == pytest.approx(M.energy(r)["total_uj"])
    assert s["energy_uj_effective"] == pytest.approx(M.energy(r, counts="effective")["total_uj"])


# --------------------------------------------------------------------------- dense and effective counts
# NeuroBench's SynapticOperations: Dense = total_synops, Effective_MACs = effective_macs,
# Effective_ACs = effective_acs (OpsReport.neurobench()).


def test_padding_taps_are_not_macs():
    """Conv2d(1, 1, 3, padding=1) on 4 x 4. Along each axis the 3 kernel taps reach 2 real
    inputs at the two border outputs and 3 at the two inner ones: 2 + 3 + 3 + 2 = 10, so
    10 x 10 = 100 synapses, not 16 positions x 9 taps = 144. NeuroBench's Dense is the sum
    of the layer with all-ones weights applied to an all-ones input, which is the same 100."""
    conv = nn.Conv2d(1, 1, 3, padding=1)
    r = M.measure(nn.Sequential(conv), torch.full((3, 1, 4, 4), 0.5), spiking=False)
    assert r.layers[0].macs_per_step == 100
    assert r.macs == 100 and r.total_synops == 100 and r.effective_macs == 100
    assert r.neurobench()["Dense"] == 100
    assert F.conv2d(torch.ones(1, 1, 4, 4), torch.ones(1, 1, 3, 3), padding=1).sum() == 100
    assert M.fanout(conv, (1, 4, 4)).sum() == 100
    # no padding: 2 x 2 outputs x 9 taps, all real
    assert M.measure(nn.Sequential(nn.Conv2d(1, 1, 3)), torch.ones(1, 1, 4, 4), spiking=False).macs == 36


def test_fanout_linear_and_errors():
    lin = nn.Linear(4, 3, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 0, 2, 0], [0, 0, 3, 4], [5, 0, 0, 6]]))
    torch.testing.assert_close(M.fanout(lin, (4,)), torch.full((4,), 3.0, dtype=torch.float64))
    nonzero = torch.tensor([2.0, 0, 2, 2], dtype=torch.float64)  # non-zero weights per column
    torch.testing.assert_close(M.fanout(lin, (4,), nonzero_only=True), nonzero)
    assert M.fanout(lin, (5, 4), nonzero_only=True).shape == (5, 4)  # a sequence of 5 inputs
    with pytest.raises(ValueError, match=r"\(7,\)"):
        M.fanout(lin, (7,))
    with pytest.raises(TypeError, match="MaxPool2d"):
        M.fanout(nn.MaxPool2d(2), (1, 4, 4))


def _spike_linear(weight: torch.Tensor) -> nn.Module:
    """Flatten -> Linear(4, 2) on (1, 2, 2) spike frames: the linear layer sees the spikes."""
    net = build(VGGSpec(in_shape=(1, 2, 2), num_classes=2, features=()), seed=0)
    with torch.no_grad():
        net.body.layers[1].weight.copy_(weight)
    return net


def test_pruned_linear_effective_acs_by_hand():
    """Input spikes over T = 3 (features in flatten order): f0 fires 3 times, f1 twice,
    f2 once, f3 never. Pruning the 4 smallest magnitudes of
        [[1, .1, 2, .2], [.3, .4, 3, 4]]  ->  [[1, 0, 2, 0], [0, 0, 3, 4]]
    leaves non-zero weights per input column [1, 0, 2, 1].
    Dense SynOps: 6 spikes x 2 outputs = 12. Effective ACs: 3 x 1 + 2 x 0 + 1 x 2 + 0 x 1 = 5.
    Total synops (NeuroBench's Dense): 8 synapses x 3 steps = 24."""
    x = torch.zeros(T, 1, 1, 2, 2)
    x[:, 0, 0, 0, 0] = 1  # f0 at t0, t1, t2
    x[:2, 0, 0, 0, 1] = 1  # f1 at t0, t1
    x[2, 0, 0, 1, 0] = 1  # f2 at t2
    dense_w = torch.tensor([[1.0, 0.1, 2.0, 0.2], [0.3, 0.4, 3.0, 4.0]])
    pruned = _spike_linear(dense_w)
    prune.l1_unstructured(pruned.body.layers[1], "weight", amount=4)
    zeroed = _spike_linear(torch.tensor([[1.0, 0, 2, 0], [0, 0, 3, 4]]))
    for net in (pruned, zeroed):
        r = M.measure(net, x)
        assert r.synops == 12 and r.effective_acs == 5 and r.total_synops == 24
        assert r.macs == 0 and r.effective_macs == 0
        assert M.energy(r)["total_pj"] == pytest.approx(12 * 0.9)
        assert M.energy(r, counts="effective")["total_pj"] == pytest.approx(5 * 0.9)
    r = M.measure(_spike_linear(dense_w), x)  # unpruned: effective = dense
    assert r.synops == 12 and r.effective_acs == 12


class _Mask(nn.Module):
    """A parametrization that multiplies the weight by a fixed mask (as a quantizer would
    map some weights to zero)."""

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mask", mask)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return w * self.mask


def test_conv_zero_weights_effective_acs_by_hand():
    """The spike-input case of test_measure_spike_input_conv_synops (spikes at the corner
    (0, 0) at t0, the interior (1, 1) at t1, the edge (0, 1) at t2; dense fan-outs 8, 18, 12:
    38 SynOps) with zero weights: channel 0 loses its top-left tap (0, 0), channel 1 keeps
    only its centre tap (1, 1).
    Input (r, c) reaches output (i, j) through tap (r - i + 1, c - j + 1).
    Channel 1 (centre only): every input reaches exactly one output, fan-out 1.
    Channel 0: tap (0, 0) links input (r, c) to output (r + 1, c + 1), which exists for
    r, c <= 2, so each spiking position loses 1 of its dense fan-out (4, 9, 6 per channel).
    Effective fan-outs: corner 3 + 1 = 4, interior 8 + 1 = 9, edge 5 + 1 = 6 -> 19 effective ACs.
    The same whether the zeros are plain, a pruning mask or a parametrization."""
    x = torch.zeros(T, 1, 1, 4, 4)
    x[0, 0, 0, 0, 0] = 1
    x[1, 0, 0, 1, 1] = 1
    x[2, 0, 0, 0, 1] = 1
    mask = torch.ones(2, 1, 3, 3)
    mask[0, 0, 0, 0] = 0
    mask[1] = 0
    mask[1, 0, 1, 1] = 1
    plain, pruned, param = tiny(), tiny(), tiny()
    with torch.no_grad():
        dict(plain.named_modules())[CONV].weight.mul_(mask)
    prune.custom_from_mask(dict(pruned.named_modules())[CONV], "weight", mask)
    parametrize.register_parametrization(dict(param.named_modules())[CONV], "weight", _Mask(mask))
    for net in (plain, pruned, param):
        r = M.measure(net, x)
        conv = r.layer(CONV)
        assert conv.synops == 38 and conv.effective_acs == 19 and conv.total_synops == 200 * 3
        assert r.spikes_per_inference == 0 and r.effective_acs == 19
    fan = M.conv_fanout(dict(plain.named_modules())[CONV], (1, 4, 4), nonzero_only=True)
    assert (fan[0, 0, 0], fan[0, 1, 1], fan[0, 0, 1]) == (4, 9, 6)
    assert fan[0, 3, 3] == 4 + 1  # bottom-right corner: tap (0, 0) would need output (4, 4)


def test_ann_zero_activations_effective_macs_by_hand():
    """ANN twin, one image with a single non-zero pixel (0, 0) = 1; conv weights 0.25,
    no bias. Conv: that pixel reaches outputs (0..1, 0..1) of both channels: 4 x 2 = 8
    effective MACs (dense 200). ReLU keeps 0.25 there, zero elsewhere; the max pool holds
    0.25 in window (0, 0) of each channel, i.e. flattened entries 0 and 4 of 8. Linear
    (all ones) with W[0, 0] = 0 and W[1, 5] = 0: entry 0 reaches 1 non-zero weight, entry 4
    reaches 2, entry 5 is zero anyway: 3 effective MACs (dense 16). Total 11 of 216."""
    ann = tiny(spiking=False)
    with torch.no_grad():
        dict(ann.named_modules())[LIN].weight[0, 0] = 0
        dict(ann.named_modules())[LIN].weight[1, 5] = 0
    img = torch.zeros(1, 1, 4, 4)
    img[0, 0, 0, 0] = 1
    r = M.measure(ann, img)
    assert r.layer(CONV).effective_macs == 8 and r.layer(LIN).effective_macs == 3
    assert r.macs == 216 and r.effective_macs == 11 and r.effective_acs == 0 and r.total_synops == 216
    assert r.neurobench() == {"Effective_MACs": 11.0, "Effective_ACs": 0.0, "Dense": 216.0}
    assert M.energy(r, counts="effective")["total_pj"] == pytest.approx(11 * 4.6)
    assert M.energy(r)["total_pj"] == pytest.approx(216 * 4.6)


def test_80_percent_pruned_net_saves_5x_effective_acs():
    """Flatten -> Linear(10, 5) -> LIF -> Linear(5, 5), all-ones input spikes, T = 3.
    Each hidden neuron keeps 2 weights of 1.0 (columns 2i, 2i + 1) and the output layer
    its diagonal; the other 60 of 75 weights are 0.01, so global magnitude pruning of 80 %
    removes exactly them. Every hidden neuron gets a current of 2 (2.08 unpruned) > 1 and
    fires at every step. Dense SynOps: 10 x 3 x 5 + 15 x 5 = 225, pruned or not (zero
    weights counted). Effective ACs of the pruned net: every input column keeps 1 non-zero
    weight: 30 x 1 + 15 x 1 = 45, i.e. 5x fewer; energy 225 x 0.9 = 202.5 pJ dense,
    45 x 0.9 = 40.5 pJ effective."""
    spec = VGGSpec(in_shape=(1, 2, 5), num_classes=5, features=(), hidden=(5,),
                   neuron=NeuronSpec(beta=1.0, threshold=1.0))
    net = build(spec, seed=0)
    l1, l2 = net.body.layers[1], net.body.layers[3]
    with torch.no_grad():
        l1.weight.fill_(0.01)
        for i in range(5):
            l1.weight[i, 2 * i : 2 * i + 2] = 1.0
        l2.weight.fill_(0.01)
        l2.weight.diagonal().fill_(1.0)
    x = torch.ones(T, 1, 1, 2, 5)
    before = M.measure(net, x)
    assert before.synops == 225 and before.effective_acs == 225
    prune.global_unstructured([(l1, "weight"), (l2, "weight")], prune.L1Unstructured, amount=0.8)
    assert M.sparsity(net) == pytest.approx(0.8)
    after = M.measure(net, x)
    assert after.spikes_per_inference == 15 and after.synops == 225 and after.effective_acs == 45
    assert after.total_synops == (50 + 25) * 3
    assert M.energy(after)["total_pj"] == pytest.approx(202.5)
    assert M.energy(after, counts="effective")["total_pj"] == pytest.approx(40.5)
    saving = M.energy(before, counts="effective")["total_pj"] / M.energy(after, counts="effective")["total_pj"]
    assert saving == pytest.approx(5.0)


def test_unknown_counts():
    r = M.measure(tiny(spiking=False), torch.ones(1, 1, 4, 4))
    with pytest.raises(ValueError, match="sparse") as e:
        M.energy(r, counts="sparse")
    assert "dense" in str(e.value) and "effective" in str(e.value)
    assert M.COUNTS == ("dense", "effective")


def test_parameter_counts_see_quantized_and_masked_weights():
    from snnkit.compress.masks import apply_masks

    net = nn.Sequential(nn.Linear(4, 3, bias=False), nn.Linear(3, 2, bias=True))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[0.0, 1.0, -1.0, 0.5], [2.0, 0.0, 0.0, -2.0], [1.0, 1.0, 1.0, 1.0]]))
        net[1].weight.fill_(0.25)
        net[1].bias.fill_(1.0)
    apply_masks(net, {"1.weight": torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]])})
    # 12 + 6 + 2 entries; zeros: 3 in layer 0, 3 masked in layer 1
    assert M.count_nonzero(net) == 20 - 6
    assert M.sparsity(net) == pytest.approx(6 / 18)
    q, _ = quantize_model(net, 8)
    # quantized: the weights are counted by the values the layers use (still 3 + 3 zeros),
    # through weight_fp/weight_orig, and the quantizers' scales are not weights
    assert M.count_nonzero(q) == 14 and M.sparsity(q) == pytest.approx(6 / 18)
    assert M.model_size_bits(q) == (12 + 6) * 8 + 2 * 32
    assert M.model_size_bits(q, nonzero_only=True) == (9 + 3) * 8 + 2 * 32


# --------------------------------------------------------------------------- sequences: 1-D convolutions
# The tiny 1-D net: VGGSpec(in_shape=(1, 5), num_classes=2, features=(2,)), i.e.
#     body.layers.0  Conv1d(1, 2, 3, padding=1, bias=False)   weight all 0.25
#     body.layers.1  LIF (beta=1, threshold=1)
#     body.layers.2  Flatten                                   2 channels x 5 positions = 10
#     body.layers.3  Linear(10, 2, bias=False)                 weight all 1
# On L = 5 with padding 1, the 3 taps reach 2 real inputs at the two border outputs and 3 at
# the three inner ones: 2 + 3 + 3 + 3 + 2 = 13 synapses per (in, out) channel pair, not 5 x 3 = 15.
# Seen from the input: position 0 feeds outputs 0 and 1 (2), positions 1-3 three each, 4 two.

SPEC_1D = VGGSpec(in_shape=(1, 5), num_classes=2, features=(2,), readout="mem", neuron=NeuronSpec(beta=1.0))
CONV_1D, LIN_1D = CONV, "body.layers.3"


def tiny_1d(spiking: bool = True) -> nn.Module:
    return filled(SPEC_1D, spiking, LIN_1D)


def test_conv1d_fanout_without_padding_taps():
    fan = M.conv_fanout(nn.Conv1d(1, 2, 3, padding=1), (1, 5))
    assert fan.shape == (1, 5) and fan[0].tolist() == [4.0, 6.0, 6.0, 6.0, 4.0]  # x 2 output channels
    assert fan.sum() == 2 * 13
    assert M.conv_fanout(nn.Conv1d(1, 1, 3), (1, 5))[0].tolist() == [1.0, 2.0, 3.0, 2.0, 1.0]  # 3 outputs x 3 taps
    assert F.conv1d(torch.ones(1, 1, 5), torch.ones(1, 1, 3), padding=1).sum() == 13  # NeuroBench's Dense


def test_measure_conv1d_spike_input_synops_by_hand():
    """One input spike per step: t0 at position 0 (fan-out 2 x 2 channels = 4), t1 at
    position 2 (6), t2 at position 4 (4): 14 SynOps. The largest membrane is 2 x 0.25 = 0.5
    < 1 (position 1 or 3 reached twice): no LIF spikes, the linear layer idles."""
    x = torch.zeros(T, 1, 1, 5)  # (T, B, C, L)
    x[0, 0, 0, 0] = x[1, 0, 0, 2] = x[2, 0, 0, 4] = 1
    r = M.measure(tiny_1d(), x)
    conv = r.layer(CONV_1D)
    assert conv.kind == "conv" and conv.binary_input and conv.macs_per_step == 26 and conv.input_size == 5
    assert conv.input_spikes == 3 and conv.synops == 14 and conv.effective_acs == 14
    assert conv.total_synops == 26 * T
    assert r.spikes_per_inference == 0 and r.layer(LIN_1D).synops == 0 and r.layer(LIN_1D).macs_per_step == 20
    assert r.synops == 14 and M.energy(r)["total_pj"] == pytest.approx(14 * 0.9)


def test_measure_conv1d_ann_macs_and_effective_macs_by_hand():
    """ANN on an analog input: conv 26 MACs, linear 10 x 2 = 20. Zeroing channel 0's centre
    tap removes the 5 synapses input i -> output i of that channel: 21 effective MACs."""
    ann = tiny_1d(spiking=False)
    r = M.measure(ann, torch.full((2, 1, 5), 0.5))
    assert r.layer(CONV_1D).macs == 26 and r.layer(LIN_1D).macs == 20 and r.macs == 46
    with torch.no_grad():
        ann.body.layers[0].weight[0, 0, 1] = 0.0
    r = M.measure(ann, torch.full((2, 1, 5), 0.5))
    assert r.layer(CONV_1D).macs == 26 and r.layer(CONV_1D).effective_macs == 21
    assert M.count_nonzero(ann) == (2 * 1 * 3 - 1) + 20  # conv 2x1x3 less the zero, linear; no LIF in the ANN

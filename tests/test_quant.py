"""Tests for snnkit.compress.quant: hand-computed grids and scales, error falling with the bit
width, quantizers attached to layers (masked ones too), records, model size, training."""

from __future__ import annotations

import copy
import math
import pickle

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from snnkit.compress.masks import prune_global, prune_layerwise, remove_masks
from snnkit.compress.quant import (
    QUANTIZERS,
    QuantRecord,
    UniformQuantizer,
    WeightQuantizer,
    apply_records,
    attach_quantizer,
    effective_weight,
    fake_quantize,
    gain_scale,
    grid_unit,
    max_scale,
    mse_scale,
    quant_records,
    quantization_levels,
    quantize_model,
    quantize_uniform,
    quantizer_of,
    relative_error,
    remove_quantizers,
    round_ste,
    symmetric_codes,
)
from snnkit.metrics import model_size_bits, model_size_mb

W = torch.tensor([-1.0, -0.4, 0.1, 0.3, 0.8])


def gaussian(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def on_grid(w: torch.Tensor, rec: QuantRecord) -> bool:
    """Every entry of ``w`` is one of the record's levels (per channel along dim 0 if so)."""
    levels = rec.levels()
    if rec.per_channel:
        return all(torch.isin(w[c], levels[c]).all() for c in range(w.shape[0]))
    return bool(torch.isin(w, levels).all())


# --------------------------------------------------------------------------- the grid


def test_level_sets_per_bit_width():
    assert symmetric_codes(1).tolist() == [-1, 1]
    assert symmetric_codes(2).tolist() == [-1, 0, 1]  # ternary
    assert symmetric_codes(3).tolist() == [-3, -2, -1, 0, 1, 2, 3]
    for bits in range(2, 9):
        assert symmetric_codes(bits).numel() == 2**bits - 1
    # levels = unit * codes; 2 bits is exactly {-c, 0, +c} (c: see test_two_bits_hand_computed)
    assert quantization_levels(W, 2).tolist() == pytest.approx([-1.9 / 1.8, 0.0, 1.9 / 1.8])
    assert quantization_levels(W, 2, keep_gain=False).tolist() == pytest.approx([-0.9, 0.0, 0.9])


def test_two_bits_hand_computed():
    # Two candidate code sets: [-1, -1, 0, 0, 1] with least-squares scale 2.2/3 = 0.733
    # (squared error 0.2867) and [-1, 0, 0, 0, 1] with scale (1 + 0.8)/2 = 0.9 (error
    # 0.1^2 + 0.4^2 + 0.1^2 + 0.3^2 + 0.1^2 = 0.28). The lower one wins.
    assert mse_scale(W, 2).item() == pytest.approx(0.9)
    q = torch.tensor([-1.0, 0.0, 0.0, 0.0, 1.0])
    torch.testing.assert_close(quantize_uniform(W, 2, keep_gain=False), 0.9 * q)
    assert relative_error(quantize_uniform(W, 2, keep_gain=False), W) == pytest.approx(math.sqrt(0.28 / 1.9))
    # keeping the gain: same codes, levels spaced ||w||^2 / <w, q> = 1.9 / 1.8
    c = 1.9 / 1.8
    assert gain_scale(W, mse_scale(W, 2), 2).item() == pytest.approx(c)
    torch.testing.assert_close(quantize_uniform(W, 2), c * q)
    # the error is orthogonal to w: <w, c q - w> = 0; least squares shrinks w by g = 1.62/1.9
    assert float(W @ (quantize_uniform(W, 2) - W)) == pytest.approx(0.0, abs=1e-6)
    assert float(W @ quantize_uniform(W, 2, keep_gain=False)) / 1.9 == pytest.approx(0.9 * 1.8 / 1.9)


def test_three_bits_hand_computed():
    # codes [-3, -1, 0, 1, 2]; least-squares scale <w, q>/<q, q> = (3 + .4 + .3 + 1.6)/(9 + 1 + 1 + 4)
    s = 5.3 / 15
    q = torch.tensor([-3.0, -1.0, 0.0, 1.0, 2.0])
    assert mse_scale(W, 3).item() == pytest.approx(s)
    torch.testing.assert_close(quantize_uniform(W, 3, keep_gain=False), q * s)
    torch.testing.assert_close(quantize_uniform(W, 3), q * 1.9 / 5.3)  # ||w||^2 / <w, q>


def test_one_bit_is_sign_times_a_scale():
    signs = torch.tensor([-1.0, -1.0, 1.0, 1.0, 1.0])
    # least squares: mean|w| = 0.52; keeping the gain: ||w||^2 / sum|w| = 1.9 / 2.6
    torch.testing.assert_close(quantize_uniform(W, 1, keep_gain=False), signs * 0.52)
    torch.testing.assert_close(quantize_uniform(W, 1), signs * 1.9 / 2.6)
    # Zeros go to +s so there are exactly two levels; they do not count in the scale.
    assert quantize_uniform(torch.tensor([0.0, -2.0, 1.0]), 1, keep_gain=False).tolist() == [1.5, -1.5, 1.5]
    torch.testing.assert_close(quantize_uniform(torch.tensor([0.0, -2.0, 1.0]), 1),
                               torch.tensor([1.0, -1.0, 1.0]) * 5 / 3)


def test_max_rule_is_the_old_grid_and_zeroes_most_weights_at_two_bits():
    # max rule: s = max|w| / (2^(b-1) - 1): 2 bits -> s = 1, w/s rounds to [-1, 0, 0, 0, 1]
    old = dict(rule="max", keep_gain=False)
    torch.testing.assert_close(quantize_uniform(W, 2, **old), torch.tensor([-1.0, 0.0, 0.0, 0.0, 1.0]))
    torch.testing.assert_close(quantize_uniform(W, 3, **old), torch.tensor([-3.0, -1.0, 0.0, 1.0, 2.0]) / 3)
    assert max_scale(W, 1).item() == pytest.approx(0.52)
    w = gaussian(20000)
    zeros_max = float((quantize_uniform(w, 2, rule="max") == 0).double().mean())
    zeros_mse = float((quantize_uniform(w, 2) == 0).double().mean())
    assert zeros_max > 0.9  # the issue: max ~ 4 sigma, so |w| < 2 sigma all go to 0
    # the MSE ternary grid of a Gaussian: threshold 0.612 sigma, P(|z| < 0.612) = 0.46
    assert zeros_mse == pytest.approx(0.46, abs=0.02)


@pytest.mark.parametrize("keep_gain", [False, True])
def test_error_falls_strictly_from_one_to_eight_bits(keep_gain):
    w = gaussian(64, 32, 3, 3)
    errs = [relative_error(quantize_uniform(w, b, keep_gain=keep_gain), w) for b in range(1, 9)]
    assert all(a > b for a, b in zip(errs, errs[1:])), errs
    assert errs[-1] < 0.012
    # Gaussian least-squares optima: sign, mean squared error 1 - 2/pi; ternary (Lloyd-Max,
    # 3 levels) 0.1902. Keeping the gain g = 1 - mse instead: sqrt(1/g - 1).
    mse = [1 - 2 / math.pi, 0.1902]
    for e, m in zip(errs, mse):
        assert e == pytest.approx(math.sqrt(1 / (1 - m) - 1) if keep_gain else math.sqrt(m), abs=0.01)
    if not keep_gain:
        for b in range(1, 9):  # never worse than the max rule
            assert errs[b - 1] <= relative_error(quantize_uniform(w, b, rule="max", keep_gain=False), w) + 1e-12


def test_keeping_the_gain_preserves_the_mean_current():
    """A layer's output along its own weights: least squares shrinks it by the gain g, the
    default keeps it (<w, w_q> = ||w||^2 exactly)."""
    w = gaussian(32, 256, seed=8)
    for bits in (1, 2, 3):
        dot = lambda q: float((w * q).sum() / (w * w).sum())  # noqa: E731
        assert dot(quantize_uniform(w, bits)) == pytest.approx(1.0, abs=1e-5)
        g = dot(quantize_uniform(w, bits, keep_gain=False))
        assert g == pytest.approx(1 - relative_error(quantize_uniform(w, bits, keep_gain=False), w) ** 2, abs=1e-5)
        assert g < {1: 0.7, 2: 0.85, 3: 0.97}[bits]
        wc = quantize_uniform(w, bits, per_channel=True)
        torch.testing.assert_close((w * wc).sum(1), (w * w).sum(1))  # per output channel too


def test_mse_scale_is_a_least_squares_fixed_point():
    w = gaussian(4096, seed=3)
    for bits in (2, 4, 6):
        s = mse_scale(w, bits).double()
        q = quantize_uniform(w, bits, keep_gain=False).double() / s
        torch.testing.assert_close(q, q.round(), rtol=0, atol=1e-5)  # float32 levels
        q = q.round()
        assert s.item() == pytest.approx(float((w.double() * q).sum() / (q * q).sum()), rel=1e-6)
        # the grid search alone cannot do better
        coarse = mse_scale(w, bits, refine=0)
        err = lambda scale: float(((fake_quantize(w, scale, bits) - w) ** 2).sum())  # noqa: E731
        assert err(s.float()) <= err(coarse) + 1e-6


def test_per_channel_hand_computed():
    w = torch.tensor([[1.0, -0.6], [0.1, 0.04]])
    # row 0: codes [1, -1], scale 0.8 (error 0.08) beats [1, 0], scale 1 (0.36)
    # row 1: codes [1, 0], scale 0.1 (error 0.0016) beats [1, 1], scale 0.07 (0.0018)
    torch.testing.assert_close(quantize_uniform(w, 2, per_channel=True, keep_gain=False),
                               torch.tensor([[0.8, -0.8], [0.1, 0.0]]))
    torch.testing.assert_close(mse_scale(w, 2, per_channel=True), torch.tensor([[0.8], [0.1]]))
    # keeping the gain: row units 1.36 / 1.6 = 0.85 and 0.0116 / 0.1 = 0.116
    torch.testing.assert_close(quantize_uniform(w, 2, per_channel=True), torch.tensor([[0.85, -0.85], [0.116, 0.0]]))
    # axis=1: column scales 1.0 ([1, 0]) and 0.6 ([-1, 0])
    torch.testing.assert_close(quantize_uniform(w, 2, per_channel=True, axis=1, keep_gain=False),
                               torch.tensor([[1.0, -0.6], [0.0, 0.0]]))


def test_levels_hand_computed():
    w = torch.tensor([[1.0, -2.0], [0.5, 0.25]])
    # 3 bits: codes [2, -3, 1, 0], least-squares unit (2 + 6 + 0.5)/(4 + 9 + 1) = 17/28;
    # keeping the gain: ||w||^2 / <w, q> = 5.3125 / 8.5 = 0.625
    torch.testing.assert_close(quantization_levels(w, 3, keep_gain=False), torch.arange(-3.0, 4.0) * 17 / 28)
    torch.testing.assert_close(quantization_levels(w, 3), torch.arange(-3.0, 4.0) * 0.625)
    # per channel at 2 bits: [1, -2] -> codes [1, -1], unit 1.5 (least squares) or 5/3;
    # [0.5, 0.25] -> [1, 1], 0.375 or 0.3125 / 0.75
    torch.testing.assert_close(quantization_levels(w, 2, per_channel=True, keep_gain=False),
                               torch.tensor([[-1.5, 0.0, 1.5], [-0.375, 0.0, 0.375]]))
    torch.testing.assert_close(quantization_levels(w, 2, per_channel=True),
                               torch.tensor([[-5 / 3, 0.0, 5 / 3], [-0.3125 / 0.75, 0.0, 0.3125 / 0.75]]))
    torch.testing.assert_close(quantization_levels(W, 1, keep_gain=False), torch.tensor([-0.52, 0.52]))


@pytest.mark.parametrize("bits", [2, 3, 4, 5, 8])
def test_values_are_the_advertised_levels(bits):
    w = gaussian(4000, seed=bits)
    q = quantize_uniform(w, bits)
    assert q.unique().numel() <= 2**bits - 1
    assert q.shape == w.shape and q.dtype == w.dtype
    levels = quantization_levels(w, bits)
    assert levels.numel() == 2**bits - 1
    assert torch.isin(q.unique(), levels).all()


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("bits", [2, 3, 4, 5, 7, 8])
def test_requantizing_changes_nothing(bits, per_channel):
    # Gaussian weights of a conv and a linear layer; the second pass used to move values by
    # up to 0.9 % of a channel's largest weight (7 bits, per channel, 64 x 16 linear weights)
    for shape, seed in (((16, 32, 3, 3), 0), ((64, 16), 1), ((10, 128), 2)):
        w = torch.randn(*shape, generator=torch.Generator().manual_seed(seed))
        once = quantize_uniform(w, bits, per_channel=per_channel)
        assert torch.equal(quantize_uniform(once, bits, per_channel=per_channel), once), (shape, bits)
        unit, on_grid = grid_unit(once, bits, per_channel=per_channel)
        assert bool(on_grid.all())
        assert not bool(grid_unit(w, bits, per_channel=per_channel)[1].any())  # floats are not on a grid
        # the unit reproduces the values: codes are integers within the grid's range
        codes = once.double() / unit
        assert torch.allclose(codes, codes.round(), atol=1e-4) and float(codes.round().abs().max()) <= 2 ** (bits - 1) - 1
        # a quantizer attached to an already quantized weight keeps it (to float rounding)
        torch.testing.assert_close(UniformQuantizer(once, bits, per_channel=per_channel)(once), once,
                                   rtol=1e-6, atol=0.0)
    # a grid whose codes share a factor (every code even) is found too, and one bit has no grid
    w = torch.tensor([0.0, 0.2, -0.4, 0.8, 1.2])  # unit 0.1 or 0.2: codes 0, 2, -4, 8, 12 (or halves)
    assert bool(grid_unit(w, 5)[1]) and torch.equal(quantize_uniform(w, 5), w)
    assert not bool(grid_unit(torch.tensor([-0.5, 0.5]), 1)[1])


def test_quantizing_a_baked_model_again_keeps_its_weights():
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.Flatten(), nn.Linear(4, 3))
    q, _ = quantize_model(model, 4, per_channel=True)
    remove_quantizers(q, bake=True)
    baked = [m.weight.detach().clone() for m in (q[0], q[2])]
    again, errors = quantize_model(q, 4, per_channel=True)
    for layer, w in zip((again[0], again[2]), baked):
        torch.testing.assert_close(effective_weight(layer), w, rtol=1e-6, atol=0.0)
    assert max(errors.values()) < 1e-6


def test_per_channel_beats_per_tensor_on_mixed_scales():
    scales = torch.tensor([100.0, 1.0, 0.01, 0.1]).reshape(4, 1, 1, 1)
    w = gaussian(4, 8, 3, 3, seed=1) * scales
    for bits in (2, 4, 6):
        e_t = relative_error(quantize_uniform(w, bits), w)
        e_c = relative_error(quantize_uniform(w, bits, per_channel=True), w)
        assert e_c <= e_t
        # Small channels are wiped out per tensor but survive per channel.
        small_t = relative_error(quantize_uniform(w, bits)[2], w[2])
        small_c = relative_error(quantize_uniform(w, bits, per_channel=True)[2], w[2])
        assert small_t == pytest.approx(1.0) and small_c < (0.6 if bits == 2 else 0.2)


@pytest.mark.parametrize("bits", [1, 2, 5])
def test_zero_tensor_and_zero_channel_safe(bits):
    z = torch.zeros(3, 4)
    for pc in (False, True):
        assert torch.equal(quantize_uniform(z, bits, per_channel=pc), z)
    w = gaussian(3, 4, seed=2)
    w[1] = 0.0
    q = quantize_uniform(w, bits, per_channel=True)
    assert torch.isfinite(q).all()
    assert torch.equal(q[1], torch.zeros(4))


def test_straight_through_gradients_by_hand():
    x = torch.tensor([0.4, 1.6], requires_grad=True)
    round_ste(x).sum().backward()
    assert x.grad.tolist() == [1.0, 1.0]
    # 3 bits (codes -3..3), scale 0.1: w/s = [2.6, 50] -> codes [3, 3] (the second clipped)
    w = torch.tensor([0.26, 5.0], requires_grad=True)
    s = torch.tensor(0.1, requires_grad=True)
    out = fake_quantize(w, s, 3)
    assert out.tolist() == pytest.approx([0.3, 0.3])
    out.sum().backward()
    assert w.grad.tolist() == [1.0, 0.0]  # straight through inside the range, 0 where clipped
    # d(s * code)/ds: code - w/s inside (3 - 2.6 = 0.4), the code (3) where clipped
    assert s.grad.item() == pytest.approx(0.4 + 3.0)


@pytest.mark.parametrize("bad", [0, -3, 2.5, "4", None, True])
def test_bad_bits_raise(bad):
    with pytest.raises(ValueError) as exc:
        quantize_uniform(W, bad)
    assert repr(bad) in str(exc.value) and "an integer >= 1" in str(exc.value)
    with pytest.raises(ValueError, match="an integer >= 1"):
        quantize_model(nn.Linear(2, 2), bad)


def test_bad_options_raise():
    with pytest.raises(ValueError, match="rule='median'.*mse, max"):
        quantize_uniform(W, 3, rule="median")
    with pytest.raises(ValueError, match="keep_gain='yes'"):
        quantize_uniform(W, 3, keep_gain="yes")
    with pytest.raises(ValueError, match="grid=0"):
        mse_scale(W, 3, grid=0)
    with pytest.raises(ValueError, match="axis"):
        quantize_uniform(W, 3, per_channel=True, axis=2)
    with pytest.raises(ValueError, match="'nope'.*uniform"):
        quantize_model(nn.Linear(2, 2), 3, quantizer="nope")
    with pytest.raises(ValueError, match="colour"):
        quantize_model(nn.Linear(2, 2), 3, options={"colour": "red"})


def test_registry_entries_build_quantizers():
    assert {"uniform", "uniform-channel"} <= set(QUANTIZERS.names())
    w = gaussian(4, 6, seed=3)
    q = QUANTIZERS.get("uniform")(w, 3)
    assert isinstance(q, WeightQuantizer) and not q.per_channel
    torch.testing.assert_close(q(w), quantize_uniform(w, 3))
    qc = QUANTIZERS.get("uniform-channel")(w, 3)
    assert qc.per_channel
    torch.testing.assert_close(qc(w), quantize_uniform(w, 3, per_channel=True))
    assert qc.record(w).scheme == "uniform"  # the class's name: rebuilt with per_channel=True

    class Unregistered(UniformQuantizer):
        pass

    with pytest.raises(ValueError, match="not registered"):
        Unregistered(w, 3).record(w)


# --------------------------------------------------------------------------- layers and models


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 4, 3)
        self.bn1 = nn.BatchNorm2d(4)
        self.block = nn.Sequential(nn.Conv2d(4, 4, 3), nn.ReLU())
        self.fc = nn.Linear(16, 3)

    def forward(self, x):
        return self.fc(self.block(self.bn1(self.conv1(x))).flatten(1))


def _net() -> Net:
    torch.manual_seed(0)
    net = Net()
    with torch.no_grad():
        net.bn1.weight.uniform_(0.5, 1.5)
    return net


def test_quantize_model_conv_linear_weights_only():
    net = _net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    q, errors = quantize_model(net, 2)
    for k, v in net.state_dict().items():  # original untouched
        assert torch.equal(v, before[k]), k
    assert list(errors) == ["conv1", "block.0", "fc"]
    records = quant_records(q)
    assert list(records) == ["conv1", "block.0", "fc"]
    for name, rec in records.items():
        assert (rec.scheme, rec.bits, rec.per_channel, rec.num_levels) == ("uniform", 2, False, 3)
        w0 = before[f"{name}.weight"]
        layer = q.get_submodule(name)
        torch.testing.assert_close(layer.weight, quantize_uniform(w0, 2))
        assert rec.scale.item() == pytest.approx(gain_scale(w0, mse_scale(w0, 2), 2).item())
        assert quantizer_of(layer).step.item() == pytest.approx(mse_scale(w0, 2).item())
        assert on_grid(layer.weight, rec) and layer.weight.unique().numel() <= 3
        assert errors[name] == pytest.approx(relative_error(layer.weight, w0))
        # the float weight is kept for training
        assert torch.equal(q.state_dict()[f"{name}.weight_fp"], w0)
    for k, v in q.state_dict().items():  # biases, BatchNorm parameters and buffers unchanged
        if not (k.endswith("weight_fp") or "weight_quantizer" in k):
            assert torch.equal(v, before[k]), k
    x = gaussian(2, 2, 6, 6, seed=4)
    ref = copy.deepcopy(net)
    with torch.no_grad():
        for name in records:
            ref.get_submodule(name).weight.copy_(q.get_submodule(name).weight)
    torch.testing.assert_close(q(x), ref(x))


def test_quantize_model_per_channel_and_quantizer_name():
    net = _net()
    q1, e1 = quantize_model(net, 3, per_channel=True)
    q2, e2 = quantize_model(net, 3, quantizer="uniform-channel")
    torch.testing.assert_close(q1.fc.weight, quantize_uniform(net.fc.weight.detach(), 3, per_channel=True))
    assert e1 == e2
    rec = quant_records(q1)["fc"]
    assert rec.per_channel and rec.scale.shape == (3,) and rec.levels().shape == (3, 7)
    assert on_grid(q1.fc.weight, rec)
    # transposed convs: the output channel is dim 1
    deconv = nn.Sequential(nn.ConvTranspose2d(3, 5, 2))
    qd, _ = quantize_model(deconv, 3, per_channel=True)
    assert quant_records(qd)["0"].axis == 1 and quant_records(qd)["0"].scale.shape == (5,)


def test_quantize_model_skip_and_layers():
    net = _net()
    q, errors = quantize_model(net, 4, skip=("first", "last"))
    assert list(errors) == ["block.0"] and list(quant_records(q)) == ["block.0"]
    assert torch.equal(q.conv1.weight, net.conv1.weight)
    assert torch.equal(q.fc.weight, net.fc.weight)
    assert not torch.equal(q.block[0].weight, net.block[0].weight)
    assert list(quantize_model(net, 4, skip=lambda name, m: isinstance(m, nn.Linear))[1]) == ["conv1", "block.0"]
    assert list(quantize_model(net, 4, skip=["block.0"])[1]) == ["conv1", "fc"]
    assert list(quantize_model(net, 4, layers=lambda name, m: name.startswith("block"))[1]) == ["block.0"]
    with pytest.raises(ValueError, match="'conv9'"):
        quantize_model(net, 4, skip=["conv9"])
    with pytest.raises(ValueError, match="already has a quantizer"):
        quantize_model(q, 4)


def test_record_round_trips_and_rebuilds_the_same_quantizers():
    q, _ = quantize_model(_net(), 3, per_channel=True)
    records = quant_records(q)
    again = {n: QuantRecord.from_dict(r.as_dict()) for n, r in records.items()}
    for n in records:
        assert torch.equal(again[n].scale, records[n].scale) and again[n].options == records[n].options
    fresh = apply_records(_net(), again)  # the same weights: the same fitted scales
    for n in records:
        torch.testing.assert_close(fresh.get_submodule(n).weight, q.get_submodule(n).weight)
    with pytest.raises(ValueError, match="'nowhere'"):
        apply_records(_net(), {"nowhere": records["fc"]})
    with pytest.raises(ValueError, match="'bits' should be a int"):
        QuantRecord.from_dict({**records["fc"].as_dict(), "bits": "3"})


def test_quantized_model_copies_and_pickles_after_a_backward_pass():
    q, _ = quantize_model(_net(), 3)
    x = gaussian(2, 2, 6, 6, seed=5)
    q(x).sum().backward()  # leaves a non-leaf weight behind unless the hook detaches it
    for clone in (copy.deepcopy(q), pickle.loads(pickle.dumps(q))):
        torch.testing.assert_close(clone(x), q(x))
        assert list(quant_records(clone)) == ["conv1", "block.0", "fc"]


def test_remove_quantizers_bakes_or_restores():
    net = _net()
    q, _ = quantize_model(net, 2)
    baked = copy.deepcopy(q)
    records = remove_quantizers(baked)
    assert list(records) == ["conv1", "block.0", "fc"] and quant_records(baked) == {}
    assert isinstance(baked.fc.weight, nn.Parameter) and torch.equal(baked.fc.weight, q.fc.weight)
    assert set(baked.state_dict()) == set(net.state_dict())
    restored = copy.deepcopy(q)
    remove_quantizers(restored, bake=False)
    assert torch.equal(restored.fc.weight, net.fc.weight)


def test_masked_and_quantized_layer():
    lin = nn.Linear(8, 4, bias=False)
    with torch.no_grad():
        lin.weight.copy_(gaussian(4, 8, seed=6))
    prune_layerwise(lin, 0.5, names=["weight"])  # the 16 smallest |w| masked
    mask = lin.weight_mask.clone()
    masked = (lin.weight_orig * mask).detach()
    q, errors = quantize_model(lin, 2)
    rec = quant_records(q)[""]
    w = q.weight
    assert torch.equal(w[mask == 0], torch.zeros(16))  # masked entries stay exactly zero
    assert on_grid(w, rec)  # the rest sit on the grid
    assert quantizer_of(q).step.item() == pytest.approx(mse_scale(masked, 2).item())  # fitted to the kept weights
    torch.testing.assert_close(w, quantize_uniform(masked, 2))
    assert errors[""] == pytest.approx(relative_error(w, masked))
    # trained through the mask: no gradient to masked entries
    x = gaussian(3, 8, seed=7)
    q(x).sum().backward()
    assert torch.equal(q.weight_orig.grad[mask == 0], torch.zeros(16))
    torch.testing.assert_close(q(x), F.linear(x, effective_weight(q)))
    # a grid without zero (one bit) still keeps masked entries at zero
    q1, _ = quantize_model(lin, 1)
    assert torch.equal(q1.weight[mask == 0], torch.zeros(16))
    # ... and its unit ||w||^2 / sum|w| is that of the 16 kept weights
    unit = (masked**2).sum().item() / masked.abs().sum().item()
    torch.testing.assert_close(q1.weight[mask == 1].abs(), torch.full((16,), unit))
    q1ls, _ = quantize_model(lin, 1, options={"keep_gain": False})  # least squares: mean |w| of the kept ones
    torch.testing.assert_close(q1ls.weight[mask == 1].abs(), torch.full((16,), masked.abs().sum().item() / 16))
    # removing the mask keeps the quantization; pruning after quantizing is refused
    remove_masks(q)
    assert torch.equal(q(x), F.linear(x, w.detach()))
    q2, _ = quantize_model(lin, 3)
    prune_global(q2, 0.5, names=["weight"])
    with pytest.raises(RuntimeError, match="pruned after it was quantized"):
        q2(x)


def test_model_size_bits_hand_count():
    # conv 2x1x3x3 = 18 weights (no bias), linear 2x8 = 16 weights + 2 biases
    net = nn.Sequential(nn.Conv2d(1, 2, 3, bias=False), nn.Flatten(), nn.Linear(8, 2))
    assert model_size_bits(net) == (18 + 16 + 2) * 32
    q4, _ = quantize_model(net, 4, skip=["last"])
    assert model_size_bits(q4) == 18 * 4 + (16 + 2) * 32  # 648
    assert model_size_mb(q4) == pytest.approx(648 / 8 / 1e6)
    q2, _ = quantize_model(net, 2)
    assert model_size_bits(q2) == 18 * 2 + 16 * 2 + 2 * 32  # 132
    assert model_size_bits(q2, scale_bits=32) == 132 + 2 * 32  # one scale per layer
    qc, _ = quantize_model(net, 2, per_channel=True)
    assert model_size_bits(qc, scale_bits=32) == 132 + (2 + 2) * 32  # one per output channel
    # learned scales are parameters, but part of the weights' encoding: counted only as scales
    ql, _ = quantize_model(net, 2, options={"learn_scale": True})
    assert sum(p.numel() for p in ql.parameters()) == 18 + 16 + 2 + 2
    assert model_size_bits(ql) == 132
    # an explicit mapping replaces the records
    assert model_size_bits(q2, {"0": 8}) == 18 * 8 + (16 + 2) * 32
    # nonzero_only counts the weights as used: masked and quantized-to-zero entries drop out
    zeros = int((q2[0].weight == 0).sum()) + int((q2[2].weight == 0).sum())
    assert model_size_bits(q2, nonzero_only=True) == (18 + 16 - zeros) * 2 + 2 * 32
    with pytest.raises(ValueError, match="scale_bits=-1"):
        model_size_bits(q2, scale_bits=-1)


def test_learned_scale_quantization_trains_with_fit():
    from snnkit.data import load_dataset
    from snnkit.models import VGGSpec, build
    from snnkit.train import TrainConfig, evaluate, fit

    ds = load_dataset("digits", seed=0)
    spec = VGGSpec(in_shape=ds.input_shape, num_classes=ds.num_classes, features=(16, "P", 32, "P"))
    model, _ = quantize_model(build(spec, seed=0), 2, options={"learn_scale": True})
    steps0 = {n: r.scale.clone() for n, r in quant_records(model).items()}
    cfg = TrainConfig(epochs=3, T=4, lr=5e-3, batch_size=32, progress=False)
    hist = fit(model, ds.train.subset(400, seed=0), cfg, val=None)
    assert hist.train_loss[-1] < 0.9 * hist.train_loss[0], hist.train_loss  # 2.29 -> 1.83
    assert evaluate(model, ds.test, cfg) > 0.5  # chance is 0.1
    for name, rec in quant_records(model).items():
        layer = model.get_submodule(name)
        assert rec.bits == 2 and not torch.equal(rec.scale, steps0[name])  # the scale was learned
        assert on_grid(effective_weight(layer), rec) and effective_weight(layer).unique().numel() <= 3
        assert isinstance(quantizer_of(layer).step, nn.Parameter)


def test_attach_quantizer_refuses_what_it_cannot_use():
    lin = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="expected a WeightQuantizer"):
        attach_quantizer(lin, lambda w: w)
    with pytest.raises(ValueError, match="no weight parameter"):
        attach_quantizer(nn.ReLU(), UniformQuantizer(W, 2))

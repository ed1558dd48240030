"""Tests for snnkit.quant: hand-computed grids, monotone error, model helper."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from snnkit.compress.quant import (
    QUANTIZERS,
    quantization_levels,
    quantize_model,
    quantize_uniform,
    relative_error,
)

W = torch.tensor([-1.0, -0.4, 0.1, 0.3, 0.8])


def test_two_bits_hand_computed():
    # qmax = 1, s = max|w| / 1 = 1.0; w/s rounds to [-1, 0, 0, 0, 1].
    expected = torch.tensor([-1.0, 0.0, 0.0, 0.0, 1.0])
    torch.testing.assert_close(quantize_uniform(W, 2), expected)


def test_three_bits_hand_computed():
    # qmax = 3, s = 1/3; w/s = [-3, -1.2, 0.3, 0.9, 2.4] -> [-3, -1, 0, 1, 2].
    expected = torch.tensor([-3.0, -1.0, 0.0, 1.0, 2.0]) / 3.0
    torch.testing.assert_close(quantize_uniform(W, 3), expected)


def test_one_bit_is_sign_times_mean_abs():
    s = W.abs().mean()  # 0.52
    expected = torch.tensor([-1.0, -1.0, 1.0, 1.0, 1.0]) * s
    torch.testing.assert_close(quantize_uniform(W, 1), expected)
    # Zeros go to +s so there are exactly two levels.
    assert quantize_uniform(torch.tensor([0.0, -2.0]), 1).tolist() == [1.0, -1.0]


def test_per_channel_hand_computed():
    w = torch.tensor([[1.0, -0.6], [0.1, 0.04]])
    # Row scales at 2 bits: 1.0 and 0.1 -> rows round to [1, -1] and [1, 0].
    expected = torch.tensor([[1.0, -1.0], [0.1, 0.0]])
    torch.testing.assert_close(quantize_uniform(w, 2, per_channel=True), expected)
    # axis=1: column scales 1.0 and 0.6 -> [[1, -0.6], [0, 0]].
    expected_cols = torch.tensor([[1.0, -0.6], [0.0, 0.0]])
    torch.testing.assert_close(quantize_uniform(w, 2, per_channel=True, axis=1), expected_cols)


@pytest.mark.parametrize("bits", [2, 3, 4, 5, 8])
def test_distinct_values_bounded(bits):
    w = torch.randn(4000, generator=torch.Generator().manual_seed(bits))
    q = quantize_uniform(w, bits)
    assert q.unique().numel() <= 2**bits - 1
    assert q.shape == w.shape and q.dtype == w.dtype
    # Every output value is one of the advertised levels.
    levels = quantization_levels(w, bits)
    assert levels.numel() == 2**bits - 1
    assert torch.isin(q.unique(), levels).all()


def test_levels_shapes():
    w = torch.tensor([[1.0, -2.0], [0.5, 0.25]])
    lv = quantization_levels(w, 3)
    torch.testing.assert_close(lv, torch.tensor([-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0]) * (2.0 / 3.0))
    lc = quantization_levels(w, 2, per_channel=True)
    torch.testing.assert_close(lc, torch.tensor([[-2.0, 0.0, 2.0], [-0.5, 0.0, 0.5]]))
    torch.testing.assert_close(quantization_levels(W, 1), torch.tensor([-0.52, 0.52]))


def test_error_decreases_with_bits():
    w = torch.randn(64, 32, 3, 3, generator=torch.Generator().manual_seed(0))
    errs = [relative_error(quantize_uniform(w, b), w) for b in range(2, 11)]
    assert all(a > b for a, b in zip(errs, errs[1:])), errs
    assert errs[-1] < 0.01
    # 8 bits with a max-based scale: error about step / sqrt(12) relative to std.
    assert relative_error(quantize_uniform(w, 8), w) < 0.02


def test_per_channel_beats_per_tensor_on_mixed_scales():
    g = torch.Generator().manual_seed(1)
    scales = torch.tensor([100.0, 1.0, 0.01, 0.1]).reshape(4, 1, 1, 1)
    w = torch.randn(4, 8, 3, 3, generator=g) * scales
    for bits in (2, 4, 6):
        e_t = relative_error(quantize_uniform(w, bits), w)
        e_c = relative_error(quantize_uniform(w, bits, per_channel=True), w)
        assert e_c <= e_t
        # Small channels are wiped out per tensor but survive per channel.
        small_t = relative_error(quantize_uniform(w, bits)[2], w[2])
        small_c = relative_error(quantize_uniform(w, bits, per_channel=True)[2], w[2])
        assert small_t == pytest.approx(1.0) and small_c < (0.8 if bits == 2 else 0.2)


@pytest.mark.parametrize("bits", [1, 2, 5])
def test_zero_tensor_and_zero_channel_safe(bits):
    z = torch.zeros(3, 4)
    for pc in (False, True):
        q = quantize_uniform(z, bits, per_channel=pc)
        assert torch.equal(q, z)
    w = torch.randn(3, 4, generator=torch.Generator().manual_seed(2))
    w[1] = 0.0
    q = quantize_uniform(w, bits, per_channel=True)
    assert torch.isfinite(q).all()
    assert torch.equal(q[1], torch.zeros(4))


@pytest.mark.parametrize("bad", [0, -3, 2.5, "4", None, True])
def test_bad_bits_raise(bad):
    with pytest.raises(ValueError) as exc:
        quantize_uniform(W, bad)
    assert repr(bad) in str(exc.value) and "an integer >= 1" in str(exc.value)
    with pytest.raises(ValueError, match="an integer >= 1"):
        quantize_model(nn.Linear(2, 2), bad)


def test_registry():
    w = torch.randn(4, 6, generator=torch.Generator().manual_seed(3))
    assert torch.equal(QUANTIZERS.get("uniform")(w, 3), quantize_uniform(w, 3))
    assert torch.equal(QUANTIZERS.get("uniform-channel")(w, 3), quantize_uniform(w, 3, per_channel=True))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 4, 3)
        self.bn1 = nn.BatchNorm2d(4)
        self.block = nn.Sequential(nn.Conv2d(4, 4, 3), nn.ReLU())
        self.fc = nn.Linear(16, 3)


def _net():
    torch.manual_seed(0)
    net = Net()
    with torch.no_grad():
        net.bn1.weight.uniform_(0.5, 1.5)
    return net


def test_quantize_model_conv_linear_weights_only():
    net = _net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    q, errors = quantize_model(net, 2)
    # Original untouched.
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert list(errors) == ["conv1", "block.0", "fc"]
    assert q.quant_bits == {"conv1": 2, "block.0": 2, "fc": 2}
    sd = q.state_dict()
    for k, v in sd.items():
        if k in ("conv1.weight", "block.0.weight", "fc.weight"):
            assert not torch.equal(v, before[k])
            assert v.unique().numel() <= 3
            torch.testing.assert_close(v, quantize_uniform(before[k], 2))
        else:  # biases, BatchNorm parameters and buffers
            assert torch.equal(v, before[k]), k
    for name, err in errors.items():
        w0 = before[f"{name}.weight"]
        assert err == pytest.approx(float((sd[f"{name}.weight"] - w0).norm() / w0.norm()))


def test_quantize_model_per_channel_and_quantizer_name():
    net = _net()
    q1, e1 = quantize_model(net, 3, per_channel=True)
    q2, e2 = quantize_model(net, 3, quantizer="uniform-channel")
    torch.testing.assert_close(q1.fc.weight, quantize_uniform(net.fc.weight.detach(), 3, per_channel=True))
    assert e1 == e2
    with pytest.raises(ValueError, match="'nope'"):
        quantize_model(net, 3, quantizer="nope")


def test_quantize_model_skip_and_layers():
    net = _net()
    q, errors = quantize_model(net, 4, skip=("first", "last"))
    assert list(errors) == ["block.0"] and q.quant_bits == {"block.0": 4}
    assert torch.equal(q.conv1.weight, net.conv1.weight)
    assert torch.equal(q.fc.weight, net.fc.weight)
    assert not torch.equal(q.block[0].weight, net.block[0].weight)

    q, errors = quantize_model(net, 4, skip=lambda name, m: isinstance(m, nn.Linear))
    assert list(errors) == ["conv1", "block.0"]

    q, errors = quantize_model(net, 4, skip=["block.0"])
    assert list(errors) == ["conv1", "fc"]

    q, errors = quantize_model(net, 4, layers=lambda name, m: name.startswith("block"))
    assert list(errors) == ["block.0"]

    with pytest.raises(ValueError, match="'conv9'"):
        quantize_model(net, 4, skip=["conv9"])

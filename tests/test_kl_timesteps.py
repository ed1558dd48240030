"""The KL rule for choosing T: the curve, the normalisation, the choice, and training at it."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import snnkit.compress.core as core
from snnkit.compress import compress
from snnkit.compress.temporal import choose_timesteps, kl_by_timesteps, minmax_normalise
from snnkit.data import Dataset, Split
from snnkit.models import NeuronSpec, VGGSpec, build
from snnkit.train import TrainConfig


class FixedOutputs(nn.Module):
    """Returns a stored (T, B, K) output for any input of T steps (its first T rows)."""

    spiking = True

    def __init__(self, out: torch.Tensor) -> None:
        super().__init__()
        self.out = out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out[: x.shape[0], : x.shape[1]]


def test_kl_curve_by_hand():
    # one sample of class 0, two classes; step outputs (2, 0) then (0, 0):
    # t=1 averages to (2, 0), t=2 to (1, 0). KL(one-hot || p) = -log p_0 = log(1 + e^-z).
    out = torch.tensor([[[2.0, 0.0]], [[0.0, 0.0]]])  # (T=2, B=1, K=2)
    split = Split(torch.zeros(1, 2, 2, 1, 1), torch.tensor([0]))  # event data, 2 frames
    kl = kl_by_timesteps(FixedOutputs(out), split, T=2)
    torch.testing.assert_close(kl, torch.tensor([math.log(1 + math.exp(-2)), math.log(1 + math.exp(-1))],
                                                dtype=torch.float64))


def tiny_events(seed: int = 0) -> Dataset:
    """Two classes of 4-frame event clips: the class shows only from frame 2 on."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(40) % 2
    x = 0.2 * torch.rand(40, 4, 2, 4, 4, generator=g)
    x[y == 0, 2:, 0, :2] += 1.0
    x[y == 1, 2:, 0, 2:] += 1.0
    s = Split(x, y)
    return Dataset("tiny", s, Split(x[:10], y[:10]), Split(x[10:30], y[10:30]), 2, "event", (4, 2, 4, 4))


def small_snn(seed: int = 0) -> nn.Module:
    spec = VGGSpec(in_shape=(2, 4, 4), num_classes=2, features=(4, "P"), batch_norm=True,
                   neuron=NeuronSpec(beta=0.5, threshold=0.5, reset="zero"))
    return build(spec, seed=seed)


def test_one_run_gives_the_curve_of_runs_fed_the_first_t_frames():
    data = tiny_events()
    model = small_snn()
    kl = kl_by_timesteps(model, data.train, T=4)
    for t in range(1, 5):
        again = kl_by_timesteps(model, data.train, T=t)
        torch.testing.assert_close(again[-1], kl[t - 1])


def test_minmax_normalise_by_hand():
    torch.testing.assert_close(minmax_normalise(torch.tensor([3.0, 1.0, 2.0])),
                               torch.tensor([1.0, 0.0, 0.5], dtype=torch.float64))
    assert torch.equal(minmax_normalise(torch.tensor([2.0, 2.0])), torch.zeros(2, dtype=torch.float64))
    with pytest.raises(ValueError, match="expected finite numbers"):
        minmax_normalise(torch.tensor([1.0, float("nan")]))


def test_choose_the_smallest_t_below_the_threshold():
    kl = torch.tensor([2.0, 1.2, 1.015, 1.005, 1.0, 1.1])  # normalised 1, .2, .015, .005, 0, .1
    c = choose_timesteps(kl, threshold=0.01)
    assert c.T == 4 and c.T_full == 6
    assert c.time_reduction == pytest.approx(100 * (1 - 4 / 6))
    assert choose_timesteps(kl, threshold=0.02).T == 3
    assert choose_timesteps(kl, threshold=0.001).T == 5  # only the minimum itself
    assert choose_timesteps(kl, threshold=1.0).T == 2  # everything but the maximum
    for bad in (0, -0.1, 1.5, True, "0.01"):
        with pytest.raises(ValueError, match=r"threshold=.*: expected a number in \(0, 1\]"):
            choose_timesteps(kl, threshold=bad)


def test_kl_method_trains_and_tests_at_the_chosen_T(monkeypatch):
    calls = []
    real = core.fit

    def spy(model, data, cfg, **kw):
        calls.append((cfg.T, model.body.layers[0].weight.detach().clone()))
        return real(model, data, cfg, **kw)

    monkeypatch.setattr(core, "fit", spy)
    cfg = TrainConfig(epochs=3, T=4, lr=2e-2, batch_size=20, progress=False)
    start = small_snn(0)
    result = compress(start, tiny_events(), "kl", cfg, threshold=0.5, evaluate=True)
    choice = result.info["choice"]
    # the full run at T=4, then one at the T the rule chose (not at T_full again), both from the start
    assert [T for T, _ in calls] == [4, choice.T] and result.T == choice.T
    assert all(torch.equal(w, start.body.layers[0].weight) for _, w in calls)
    assert [s.T for s in result.history] == [4, choice.T] and result.info["full"] is not result.model
    assert choice.normalised[choice.T - 1] < 0.5
    assert all(choice.normalised[: choice.T - 1] >= 0.5)
    assert 0.0 <= result.test_acc <= 1.0 and 0.0 <= result.history[0].test_acc <= 1.0
    # the curve is the full network's
    torch.testing.assert_close(choice.kl, kl_by_timesteps(result.info["full"], tiny_events().train, 4, cfg))


def test_kl_by_timesteps_names_bad_arguments():
    data = tiny_events()
    with pytest.raises(ValueError, match="T=0: expected an integer >= 1"):
        kl_by_timesteps(small_snn(), data.train, T=0)
    ann = build(VGGSpec(in_shape=(2, 4, 4), num_classes=2, features=(4, "P")), spiking=False)
    with pytest.raises(ValueError, match="the KL rule needs a spiking network"):
        kl_by_timesteps(ann, data.train, T=2)

"""Gaussian input noise as a step of encoding: snnkit.encoding.InputNoise, model_input(noise=...),
snnkit.train.evaluate(noise=...) and snnkit.metrics.accuracy_under_noise(resample=...)."""
import math

import pytest
import torch
from torch import nn

from snnkit.data import Split, load_dataset
from snnkit.encoding import InputNoise, model_input
from snnkit.metrics import accuracy_under_noise
from snnkit.models import NeuronSpec, VGGSpec, build
from snnkit.train import TrainConfig, evaluate, fit


def clamped_mean(a: float, sigma: float) -> float:
    """E[clamp(a + sigma * Z, 0, 1)], Z standard normal: a plus the clamp's bias."""
    def above(c: float) -> float:  # E[max(a + sigma Z - c, 0)]
        z = (a - c) / sigma
        return (a - c) * 0.5 * (1 + math.erf(z / math.sqrt(2))) + sigma * math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    return above(0.0) - above(1.0)


def test_clamped_mean_formula():
    assert clamped_mean(0.5, 0.2) == pytest.approx(0.5, abs=1e-12)  # symmetric: no bias
    assert clamped_mean(0.0, 0.2) == pytest.approx(0.2 / math.sqrt(2 * math.pi), abs=1e-6)  # half-normal mean
    assert clamped_mean(0.3, 1e-6) == pytest.approx(0.3)


X = torch.tensor([0.0, 0.1, 0.5, 0.9, 1.0]).repeat(16).reshape(1, 1, 8, 10)  # 80 pixels, 16 of each value
SIGMA, T = 0.3, 4000


def _expected(x: torch.Tensor, sigma: float) -> torch.Tensor:
    return torch.tensor([clamped_mean(float(v), sigma) for v in x.flatten()]).reshape(x.shape)


def test_step_noise_is_fresh_at_every_step_and_averages_to_the_clamped_mean():
    noise = InputNoise(SIGMA, resample="step", seed=0)
    frames = model_input(X, T, "direct", noise=noise, noise_generator=noise.generator())
    assert frames.shape == (T, 1, 1, 8, 10)
    assert float(frames.min()) == 0.0 and float(frames.max()) == 1.0  # clamped to [0, 1]
    changed = frames[1:] != frames[:-1]  # every step its own draw (equal only where both clamp)
    assert bool(changed.flatten(1).any(1).all()) and float(changed.float().mean()) > 0.6
    # the mean over T steps is the clean image plus the clamp's bias (frozen noise fails this:
    # there the mean is one draw, off by sigma * n at every pixel); the standard error is <= 0.3 / 63
    assert torch.allclose(frames.mean(0), _expected(X, SIGMA), atol=0.02)
    assert float((frames.mean(0) - X).abs().max()) > 0.1  # the bias is there: 0.12 at the 0 and 1 pixels


def test_step_noise_with_rate_input_spikes_at_the_noisy_intensity_of_each_step():
    noise = InputNoise(SIGMA, resample="step", seed=0)
    spikes = model_input(X, T, "rate", noise=noise, noise_generator=noise.generator(),
                         generator=torch.Generator().manual_seed(1))
    assert set(spikes.unique().tolist()) == {0.0, 1.0}
    assert torch.allclose(spikes.mean(0), _expected(X, SIGMA), atol=0.03)  # E[Bernoulli(clamp)] = E[clamp]


def test_sample_noise_is_one_draw_kept_over_the_steps():
    noise = InputNoise(SIGMA, resample="sample", seed=0)
    frames = model_input(X, 50, "direct", noise=noise, noise_generator=noise.generator())
    assert all(torch.equal(frames[t], frames[0]) for t in range(50))
    assert not torch.allclose(frames.mean(0), _expected(X, SIGMA), atol=0.02)  # one draw does not average out


def test_noise_draws_follow_the_seed():
    def draw(seed: int) -> torch.Tensor:
        noise = InputNoise(0.2, resample="step", seed=seed)
        return model_input(X, 4, "direct", noise=noise, noise_generator=noise.generator())

    assert torch.equal(draw(3), draw(3))
    assert not torch.equal(draw(3), draw(4))


def test_sigma_zero_is_the_clean_input():
    x = torch.rand(3, 1, 4, 4)
    g = InputNoise(0.0, resample="step").generator()
    assert torch.equal(model_input(x, 5, "direct", noise=InputNoise(0.0, resample="step"), noise_generator=g),
                       model_input(x, 5, "direct"))
    assert torch.equal(model_input(x, 5, "direct", noise=InputNoise(0.0), noise_generator=g), model_input(x, 5, "direct"))


@pytest.mark.parametrize("kwargs, match", [
    ({"sigma": -0.1}, r"sigma=-0.1: expected a finite number >= 0"),
    ({"sigma": 0.1, "resample": "batch"}, r"resample='batch': expected one of sample, step"),
    ({"sigma": 0.1, "clamp": (1.0, 0.0)}, r"clamp=\(1.0, 0.0\): expected None or \(low, high\)"),
])
def test_input_noise_refuses_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        InputNoise(**kwargs)


def test_step_noise_refuses_an_ann_event_data_and_latency_input():
    x = torch.rand(2, 1, 4, 4)
    step = InputNoise(0.1, resample="step")
    with pytest.raises(ValueError, match=r"resample='step'.*an ANN has none: use resample='sample'"):
        model_input(x, 4, spiking=False, noise=step)
    with pytest.raises(ValueError, match=r"encoding='latency' with noise drawn at every step: expected one of direct, rate"):
        model_input(x, 4, "latency", noise=step)
    with pytest.raises(ValueError, match="not for event data"):
        model_input(torch.zeros(2, 4, 2, 4, 4), 4, noise=InputNoise(0.1))
    assert model_input(x, 4, spiking=False, noise=InputNoise(0.0)).shape == x.shape  # an ANN takes sample noise


class MeanIntensity(nn.Module):
    """A two-class 'SNN' reading each step's mean input: class 0 when it is above 0.5."""

    spiking = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (T, B, C, H, W) -> (T, B, 2)
        v = x.flatten(2).mean(2)
        return torch.stack([v, 1.0 - v], -1)


def test_fresh_noise_averages_out_over_the_steps_frozen_noise_does_not():
    # pixels at 0.6 (class 0) and 0.4 (class 1) under sigma 0.3: averaged over 500 fresh draws the
    # step means are 0.59 and 0.41 (+-0.013), always on the right side of 0.5; one frozen draw lands
    # on the wrong side for P(0.3 Z < -0.1) = 37 % of the samples
    y = torch.arange(200) % 2
    split = Split((0.6 - 0.2 * y.float()).reshape(200, 1, 1, 1), y)
    cfg = TrainConfig(T=500, encoding="direct", batch_size=50, progress=False)
    model = MeanIntensity()
    step = accuracy_under_noise(model, split, [0.0, 0.3], cfg, seed=0, resample="step")
    sample = accuracy_under_noise(model, split, [0.3], cfg, seed=0, resample="sample")
    assert step == {0.0: 1.0, 0.3: 1.0}
    assert 0.5 < sample[0.3] < 0.8


@pytest.fixture(scope="module")
def trained():
    ds = load_dataset("digits", seed=0, size=8)
    spec = VGGSpec(in_shape=ds.input_shape, num_classes=10, features=(8, "P"), pool="avg",
                   neuron=NeuronSpec(beta=0.99, threshold=1.0))
    model = build(spec, seed=0)
    cfg = TrainConfig(epochs=3, T=4, lr=1e-2, batch_size=40, encoding="rate", progress=False)
    fit(model, ds.train.subset(400), cfg, val=None)
    return model, ds.test.subset(100), cfg


def test_step_noise_accuracy_is_seeded_and_sigma_zero_is_clean(trained):
    model, test, cfg = trained
    clean = evaluate(model, test, cfg)
    assert clean > 0.5  # trained well above chance (0.1)
    accs = accuracy_under_noise(model, test, [0.0, 0.2, 0.8], cfg, seed=0, resample="step")
    assert list(accs) == [0.0, 0.2, 0.8]
    assert accs[0.0] == clean  # exactly: sigma 0 is the clean input
    assert accs[0.8] < clean  # strong noise costs accuracy
    assert accuracy_under_noise(model, test, [0.2, 0.8], cfg, seed=0, resample="step") == {0.2: accs[0.2], 0.8: accs[0.8]}
    assert evaluate(model, test, cfg, noise=InputNoise(0.8, resample="step", seed=0)) == accs[0.8]  # the same path


def test_accuracy_under_step_noise_refuses_an_ann(trained):
    model, test, cfg = trained
    ann = build(VGGSpec(in_shape=(1, 8, 8), num_classes=10, features=(8, "P"), pool="avg"), spiking=False, seed=0)
    with pytest.raises(ValueError, match="an ANN has none"):
        accuracy_under_noise(ann, test, [0.1], cfg, resample="step")
    with pytest.raises(ValueError, match="resample='every'"):
        accuracy_under_noise(model, test, [0.1], cfg, resample="every")
    assert 0.0 <= accuracy_under_noise(ann, test, [0.1], cfg, resample="sample")[0.1] <= 1.0

"""Tests for snnkit.encoding: shapes, values, determinism and errors of each encoder."""

import pytest
import torch

from snnkit.encoding import ENCODERS, direct, encode, events, latency, model_input, rate


def test_direct_is_stride0_view_with_values():
    x = torch.rand(4, 1, 3, 3)
    out = direct(x, 5)
    assert out.shape == (5, 4, 1, 3, 3)
    assert out.stride(0) == 0
    assert out.data_ptr() == x.data_ptr()  # a view, no copy
    for t in range(5):
        assert torch.equal(out[t], x)


def test_rate_mean_matches_probability():
    p = torch.tensor([0.0, 0.1, 0.5, 0.9, 1.0, 1.7, -0.3])  # out-of-range values are clamped
    g = torch.Generator().manual_seed(0)
    out = rate(p.expand(8, -1), 2000, generator=g)
    assert out.shape == (2000, 8, 7)
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    mean = out.mean(dim=(0, 1))
    expected = p.clamp(0, 1)
    assert torch.allclose(mean, expected, atol=0.01)
    assert mean[0] == 0 and mean[4] == 1 and mean[5] == 1 and mean[6] == 0


def test_rate_deterministic_with_generator():
    x = torch.rand(3, 10)
    a = rate(x, 7, generator=torch.Generator().manual_seed(3))
    b = rate(x, 7, generator=torch.Generator().manual_seed(3))
    c = rate(x, 7, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("linear", [True, False])
def test_latency_one_spike_brighter_earlier(linear):
    x = torch.tensor([[0.0, 0.005, 0.01, 0.2, 0.5, 0.8, 1.0]])
    T = 10
    out = latency(x, T, threshold=0.01, linear=linear)
    assert out.shape == (T, 1, 7)
    counts = out.sum(0)[0]
    assert counts.tolist() == [0, 0, 1, 1, 1, 1, 1]  # below threshold never fires
    times = out.argmax(0)[0, 2:]  # spike step of each firing input
    assert times[-1] == 0  # x = 1 fires first
    assert times[0] == T - 1  # x = threshold fires last
    assert torch.all(times[1:] <= times[:-1])  # brighter never later


def test_latency_linear_times_are_exact():
    x = torch.tensor([1.0, 0.505, 0.01])
    out = latency(x, 3, threshold=0.01, linear=True)
    assert out.argmax(0).tolist() == [0, 1, 2]


def test_latency_random_batch_exactly_one_spike():
    x = torch.rand(5, 1, 8, 8)
    out = latency(x, 6)
    assert torch.equal(out.sum(0), (x >= 0.01).float())


def test_events_slices_time_first():
    x = torch.arange(2 * 6 * 2 * 3 * 3, dtype=torch.float32).view(2, 6, 2, 3, 3)
    out = events(x, 4)
    assert out.shape == (4, 2, 2, 3, 3)
    for t in range(4):
        assert torch.equal(out[t], x[:, t])
    assert events(x).shape == (6, 2, 2, 3, 3)
    with pytest.raises(ValueError, match="T=7.*T0=6"):
        events(x, 7)


def test_encode_dispatch_matches_functions():
    x = torch.rand(2, 5)
    assert ENCODERS.names() == ("direct", "rate", "latency", "events")
    assert torch.equal(encode("direct", x, 3), direct(x, 3))
    assert encode("direct", x, 3).stride(0) == 0
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert torch.equal(encode("rate", x, 4, generator=g1), rate(x, 4, generator=g2))
    assert torch.equal(encode("latency", x, 4), latency(x, 4))
    ev = torch.rand(2, 5, 2, 4, 4)
    assert torch.equal(encode("events", ev, 3), events(ev, 3))


def test_encode_errors():
    x = torch.rand(2, 5)
    with pytest.raises(ValueError, match="unknown encoder 'poisson'.*direct, rate, latency, events"):
        encode("poisson", x, 3)
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError, match="T="):
            encode("direct", x, bad)
    with pytest.raises(ValueError, match="T=0"):
        rate(x, 0)
    with pytest.raises(ValueError, match="threshold"):
        latency(x, 3, threshold=0.0)


def test_model_input_is_the_one_path_from_a_batch_to_a_model_input():
    x = torch.rand(2, 1, 3, 3)
    assert torch.equal(model_input(x, 4), direct(x, 4)) and model_input(x, 4).stride(0) == 0
    g1, g2 = torch.Generator().manual_seed(2), torch.Generator().manual_seed(2)
    assert torch.equal(model_input(x, 4, "rate", generator=g1), rate(x, 4, generator=g2))
    assert model_input(x, 4, spiking=False) is x  # an ANN sees the static batch
    ev = torch.rand(2, 6, 2, 3, 3)
    assert torch.equal(model_input(ev, 4, "direct"), events(ev, 4))  # event data: its own frames
    assert torch.equal(model_input(ev, 4, spiking=False), ev.sum(1))  # ANN: counts over time
    with pytest.raises(ValueError, match="unknown encoder 'poisson'"):
        model_input(x, 4, "poisson")


def test_rate_generator_on_another_device():
    from snnkit.encoding import derived_seed, generator_on

    g = torch.Generator().manual_seed(5)
    assert generator_on(g, torch.device("cpu")) is g and generator_on(None, torch.device("cpu")) is None
    # on the generator's own device nothing changes: the same draws as torch.bernoulli
    x = torch.rand(3, 6, generator=torch.Generator().manual_seed(0))
    expected = torch.bernoulli(x.unsqueeze(0).expand(4, 3, 6), generator=torch.Generator().manual_seed(9))
    assert torch.equal(rate(x, 4, generator=torch.Generator().manual_seed(9)), expected)
    # a seed for another device: one draw, the same for the same generator state
    a, b = torch.Generator().manual_seed(11), torch.Generator().manual_seed(11)
    assert derived_seed(a) == derived_seed(b) != derived_seed(a)
    assert 0 <= derived_seed(a) < 2**63


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_rate_on_a_gpu_with_the_trainers_cpu_generator():
    x = torch.rand(4, 10, device="cuda")
    a = rate(x, 5, generator=torch.Generator().manual_seed(2))
    b = rate(x, 5, generator=torch.Generator().manual_seed(2))
    assert a.device == x.device and torch.equal(a, b)

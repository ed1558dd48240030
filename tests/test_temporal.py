"""Temporal pruning schedules and accuracy under input noise."""
from __future__ import annotations

import math

import pytest
import torch

import snnkit.compress.core as core
from snnkit.compress import Compressed, Step, compress
from snnkit.compress.temporal import check_schedule
from snnkit.data import Dataset, Split, load_dataset
from snnkit.metrics.robustness import accuracy_under_noise, add_noise
from snnkit.models import NeuronSpec, VGGSpec, build
from snnkit.train import TrainConfig, evaluate, fit


@pytest.fixture(scope="module")
def tiny():
    """Digits at their native 8x8, cut to small stratified subsets."""
    ds = load_dataset("digits", seed=0, size=8)
    return Dataset("digits", ds.train.subset(120), ds.val.subset(60), ds.test.subset(80), 10, "static",
                   ds.input_shape, ds.classes)


def small_spec(ds) -> VGGSpec:
    return VGGSpec(in_shape=ds.input_shape, num_classes=10, features=(8, "P"), pool="avg",
                   neuron=NeuronSpec(beta=0.99, threshold=1.0))


CFG = TrainConfig(lr=5e-3, batch_size=40, progress=False)


@pytest.mark.parametrize("bad, match", [
    ([], r"schedule=\[\]: expected a non-empty list"),
    ([25, 0], r"schedule\[1\]=0: expected an integer >= 1"),
    ([25, 2.5], r"schedule\[1\]=2.5: expected an integer >= 1"),
    ([5, 10], r"schedule\[1\]=10 is larger than schedule\[0\]=5: expected a non-increasing"),
    ([True], r"schedule\[0\]=True"),
    ("25", r"schedule='25': expected a non-empty list"),
])
def test_schedule_validation_names_the_value(bad, match):
    with pytest.raises(ValueError, match=match):
        check_schedule(bad)


def test_valid_schedules_pass_unchanged():
    assert check_schedule((25, 15, 10, 5, 3)) == [25, 15, 10, 5, 3]
    assert check_schedule([5, 5, 1]) == [5, 5, 1]


def test_gradual_runs_the_schedule_in_order_from_the_previous_weights(tiny, monkeypatch):
    calls = []
    real_fit = core.fit

    def spy(model, data, cfg, **kw):
        calls.append((cfg.T, cfg.epochs, cfg.seed, model.body.layers[0].weight.detach().clone()))
        return real_fit(model, data, cfg, **kw)

    monkeypatch.setattr(core, "fit", spy)
    model = build(small_spec(tiny), seed=0)
    run = compress(model, tiny, "gradual", CFG.replace(seed=5, epochs=2), schedule=[4, 2, 1], first_epochs=0,
                   evaluate=True)
    assert isinstance(run, Compressed) and run.T == 1 and run.info["schedule"] == [4, 2, 1]
    assert [(s.name, s.T, s.epochs) for s in run.history] == [("T=4", 4, 0), ("T=2", 2, 2), ("T=1", 1, 2)]
    assert [c[:3] for c in calls] == [(2, 2, 6), (1, 2, 7)]  # no training for 0 epochs; seed + step index
    assert torch.equal(calls[0][3], model.body.layers[0].weight)  # step 2 starts from the model as given
    assert not torch.equal(calls[1][3], calls[0][3])  # step 3 from where step 2 left it
    for s in run.history:
        assert isinstance(s, Step) and 0.0 <= s.val_acc <= 1.0 and 0.0 <= s.test_acc <= 1.0
        assert s.seconds >= 0
    # the recorded accuracy is the model's accuracy at that T; the first step measures the start
    assert run.test_acc == evaluate(run.model, tiny.test, CFG.replace(T=1))
    assert run.history[0].test_acc == evaluate(model, tiny.test, CFG.replace(T=4))
    with pytest.raises(ValueError, match="first_epochs=-1: expected an integer >= 0"):
        compress(model, tiny, "gradual", CFG, schedule=[4], first_epochs=-1)
    with pytest.raises(ValueError, match=r"schedule\[1\]=5 is larger"):
        compress(model, tiny, "gradual", CFG, schedule=[4, 5])


def test_direct_is_dense_training_at_the_final_t(tiny):
    start = build(small_spec(tiny), seed=0)
    before = start.body.layers[0].weight.detach().clone()
    res = compress(start, tiny, "dense", CFG.replace(T=2, epochs=2), evaluate=True)
    assert (res.T, res.history[0].epochs) == (2, 2) and 0.0 <= res.test_acc <= 1.0
    assert torch.equal(start.body.layers[0].weight, before)  # a copy was trained
    again = compress(start, tiny, "dense", CFG.replace(T=2, epochs=2), evaluate=True)
    assert (again.test_acc, again.history[0].val_acc) == (res.test_acc, res.history[0].val_acc)  # same run
    untrained = compress(start, tiny.train, "dense", CFG.replace(T=1, epochs=0), evaluate=True)
    assert math.isnan(untrained.test_acc)  # a split has no test split: nothing to measure
    assert math.isnan(compress(start, tiny, "dense", CFG.replace(epochs=0)).test_acc)  # evaluate=False


# ------------------------------------------------------------------------------------ noise


def test_add_noise_clamps_and_checks():
    x = torch.tensor([[[[0.0, 0.5, 1.0]]]])
    n = torch.tensor([[[[-1.0, 1.0, 1.0]]]])
    assert torch.equal(add_noise(x, 0.2, n), torch.tensor([[[[0.0, 0.7, 1.0]]]]))
    assert torch.equal(add_noise(x, 0.0, n), x)
    with pytest.raises(ValueError, match="sigma=-0.1"):
        add_noise(x, -0.1, n)
    with pytest.raises(ValueError, match="noise of shape"):
        add_noise(x, 0.1, n[..., :2])


def test_add_noise_on_sequences_with_and_without_a_clamp():
    x = torch.tensor([[[-1.5, 0.25, 2.0]]])  # (N, C, L), standardized values
    n = torch.tensor([[[1.0, -1.0, 0.5]]])
    assert torch.equal(add_noise(x, 0.5, n, clamp=None), torch.tensor([[[-1.0, -0.25, 2.25]]]))
    assert torch.equal(add_noise(x, 0.5, n, clamp=(-1.0, 2.0)), torch.tensor([[[-1.0, -0.25, 2.0]]]))
    with pytest.raises(ValueError, match=r"clamp=\(1.0, 0.0\): expected None or \(low, high\)"):
        add_noise(x, 0.5, n, clamp=(1.0, 0.0))


def test_noise_on_sequences_refuses_a_clamp_the_data_do_not_fit():
    gen = torch.Generator().manual_seed(0)
    seqs = Split(torch.randn(8, 1, 12, generator=gen), torch.arange(8) % 2)  # standardized, outside [0, 1]
    spec = VGGSpec(in_shape=(1, 12), num_classes=2, features=(4, "P"), neuron=NeuronSpec(threshold=0.5))
    model = build(spec, seed=0)
    cfg = CFG.replace(T=2)
    with pytest.raises(ValueError, match=r"split.x spans \[-.*\], outside clamp=\(0.0, 1.0\).*clamp=None"):
        accuracy_under_noise(model, seqs, [0.1], cfg)
    accs = accuracy_under_noise(model, seqs, [0.0, 0.5], cfg, clamp=None)
    assert accs[0.0] == evaluate(model, seqs, cfg)  # sigma 0 is the clean input, unclamped
    assert accuracy_under_noise(model, seqs, [0.5], cfg, clamp=None)[0.5] == accs[0.5]  # seeded
    unit = Split((seqs.x - seqs.x.min()) / (seqs.x.max() - seqs.x.min()), seqs.y)  # in [0, 1]: the default works
    assert accuracy_under_noise(model, unit, [0.0], cfg)[0.0] == evaluate(model, unit, cfg)


def test_noise_lowers_the_accuracy_of_a_trained_snn(tiny):
    model = build(small_spec(tiny), seed=0)
    cfg = CFG.replace(epochs=3, T=4, lr=1e-2)
    fit(model, load_dataset("digits", seed=0, size=8).train.subset(400), cfg, val=None)
    clean = evaluate(model, tiny.test, cfg)
    assert clean > 0.5  # trained well above chance (0.1)
    accs = accuracy_under_noise(model, tiny.test, [0.0, 0.2, 0.8], cfg, seed=0)
    assert list(accs) == [0.0, 0.2, 0.8]
    assert accs[0.0] == clean  # sigma 0 is the clean input
    assert accs[0.8] <= clean + 0.05 and accs[0.8] < accs[0.0]
    assert accuracy_under_noise(model, tiny.test, [0.2], cfg, seed=0)[0.2] == accs[0.2]  # seeded
    with pytest.raises(ValueError, match="static images"):
        accuracy_under_noise(model, Split(torch.zeros(2, 3, 2, 4, 4), torch.zeros(2, dtype=torch.long)), [0.1], cfg)
    with pytest.raises(ValueError, match="sigmas=\\[\\]"):
        accuracy_under_noise(model, tiny.test, [], cfg)

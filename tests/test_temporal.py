"""Temporal pruning schedules and accuracy under input noise."""
from __future__ import annotations

import math

import pytest
import torch

import snnkit.compress.temporal as temporal
from snnkit.data import Dataset, Split, load_dataset
from snnkit.models import NeuronSpec, VGGSpec, build
from snnkit.metrics.robustness import accuracy_under_noise, add_noise
from snnkit.compress.temporal import StepResult, check_schedule, direct, gradual
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
    real_fit = temporal.fit

    def spy(model, data, cfg, **kw):
        calls.append((cfg.T, cfg.epochs, cfg.seed))
        return real_fit(model, data, cfg, **kw)

    monkeypatch.setattr(temporal, "fit", spy)
    model = build(small_spec(tiny), seed=0)
    snapshots = []
    steps = gradual(model, tiny, schedule=[4, 2, 2, 1], epochs_per_step=[1, 0, 2, 1], cfg=CFG.replace(seed=5),
                    on_step=lambda r, m: snapshots.append(m.body.layers[0].weight.detach().clone()))
    assert [(s.T, s.epochs) for s in steps] == [(4, 1), (2, 0), (2, 2), (1, 1)]
    assert calls == [(4, 1, 5), (2, 2, 7), (1, 1, 8)]  # no training for 0 epochs; seed + step index
    assert torch.equal(snapshots[0], snapshots[1]) and not torch.equal(snapshots[1], snapshots[2])
    for s in steps:
        assert isinstance(s, StepResult) and 0.0 <= s.val_acc <= 1.0 and 0.0 <= s.test_acc <= 1.0
        assert s.seconds >= 0
    # the recorded accuracy is the model's accuracy at that T
    assert steps[-1].test_acc == evaluate(model, tiny.test, CFG.replace(T=1))
    with pytest.raises(ValueError, match="expected one integer or 4"):
        gradual(model, tiny, schedule=[4, 2, 2, 1], epochs_per_step=[1, 1], cfg=CFG)
    with pytest.raises(ValueError, match="epochs_per_step entry -1"):
        gradual(model, tiny, schedule=[4], epochs_per_step=-1, cfg=CFG)


def test_direct_trains_at_the_final_T_only(tiny):
    start = build(small_spec(tiny), seed=0)
    before = start.body.layers[0].weight.detach().clone()
    res = direct(start, tiny, T=2, epochs=2, cfg=CFG, copy_model=True)
    assert (res.T, res.epochs) == (2, 2) and 0.0 <= res.test_acc <= 1.0
    assert torch.equal(start.body.layers[0].weight, before)  # the copy was trained
    fresh = direct(lambda: build(small_spec(tiny), seed=0), tiny, T=2, epochs=2, cfg=CFG)
    assert fresh == StepResult(2, 2, res.val_acc, res.test_acc, fresh.seconds)  # same start, same run
    untrained = direct(start, tiny.train, T=1, epochs=0, cfg=CFG, test=tiny.test)
    assert math.isnan(untrained.val_acc) and untrained.test_acc == evaluate(start, tiny.test, CFG.replace(T=1))
    with pytest.raises(ValueError, match="T=0: expected an integer >= 1"):
        direct(start, tiny, T=0, epochs=1, cfg=CFG)
    with pytest.raises(ValueError, match="expected an nn.Module or a function"):
        direct(3, tiny, T=2, epochs=1, cfg=CFG)


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

"""The one entry point: every registered method through compress() on a tiny net, its input
untouched and every field of its result filled."""
from __future__ import annotations

import math

import pytest
import torch

from snnkit.compress import METHODS, Compressed, Step, compress
from snnkit.data import load_dataset
from snnkit.models import NeuronSpec, VGGSpec, build
from snnkit.train import History, TrainConfig

SPEC = VGGSpec(in_shape=(1, 8, 8), num_classes=10, features=(6, "P", 8, "P"), hidden=(12,), pool="max",
               bias=False, batch_norm=False, readout="mem", neuron=NeuronSpec(beta=0.9, threshold=0.5))
CFG = TrainConfig(epochs=2, T=3, lr=1e-2, batch_size=32, progress=False)

#: What each method needs beyond its defaults, and whether it starts from an ANN.
PARAMS = {
    "dense": {"rewind_epoch": 1},
    "channels": {"importance": "svs", "keep": 0.5, "samples": 32},
    "pca": {"threshold": 0.9, "samples": 32},
    "random": {"channels": 12},
    "duq": {"sparsity": 0.5, "bits": 2},
    "prune": {"sparsity": 0.5},
    "quantize": {"bits": 4},
    "quantize-prune": {"keep": 0.5, "bits": 2, "finetune_epochs": 1, "samples": 32},
    "attention": {"sparsity": 0.8},
    "convert": {"calibration": 64},
    "gradual": {"schedule": [3, 2]},
    "kl": {"threshold": 0.5},
    "iterative": {"sparsity": 0.75, "rounds": 2},
}
STARTS_FROM_ANN = {"attention", "convert"}


@pytest.fixture(scope="module")
def data():
    return load_dataset("digits", seed=0, size=8).subset(train=64, val=16, test=32)


def state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_every_method_is_covered_here():
    assert set(PARAMS) == set(METHODS.names())


@pytest.mark.parametrize("method", sorted(PARAMS))
def test_every_method_leaves_its_input_alone_and_fills_every_field(method, data):
    model = build(SPEC, spiking=method not in STARTS_FROM_ANN, seed=0)
    before, training = state(model), [m.training for m in model.modules()]
    run = compress(model, data, method, CFG, evaluate=True, **PARAMS[method])
    after = state(model)
    assert list(after) == list(before) and all(torch.equal(before[k], after[k]) for k in before), method
    assert [m.training for m in model.modules()] == training
    assert isinstance(run, Compressed) and run.method == method and run.model is not model
    assert run.model.spiking == (method != "attention")
    assert isinstance(run.T, int) and (run.T == 1 if method == "attention" else 1 <= run.T <= 3)
    assert isinstance(run.info, dict) and run.seconds > 0
    assert run.history and all(isinstance(s, Step) for s in run.history)
    for s in run.history:
        assert s.name and s.T >= 1 and s.epochs >= 0 and isinstance(s.history, History)
        assert len(s.history.train_loss) == s.epochs and 0.0 <= s.sparsity < 1.0
        assert 0.0 <= s.test_acc <= 1.0 and 0.0 <= s.val_acc <= 1.0 and s.seconds >= 0
    assert run.test_acc == run.history[-1].test_acc
    # the epochs come from cfg: all of them are trained, over the method's phases
    expected = {"gradual": 2 * CFG.epochs, "kl": 2 * CFG.epochs}.get(method, CFG.epochs)
    assert sum(s.epochs for s in run.history) == expected, method
    # the result runs
    x = data.test.x[:4]
    out = run.model(x if method == "attention" else x.unsqueeze(0).expand(run.T, *x.shape))
    assert out.shape[-1] == 10 and torch.isfinite(out).all()


def test_without_evaluate_nothing_is_measured(data):
    run = compress(build(SPEC, seed=0), data, "dense", CFG.replace(epochs=1))
    assert math.isnan(run.test_acc) and math.isnan(run.history[0].val_acc)


def test_bad_requests_name_the_method_and_the_parameter(data):
    model = build(SPEC, seed=0)
    with pytest.raises(ValueError, match="unknown compression method 'svd'; expected one of: dense, channels"):
        compress(model, data, "svd", CFG)
    with pytest.raises(ValueError, match="method 'prune': .*'amount'"):
        compress(model, data, "prune", CFG, amount=0.5)
    with pytest.raises(ValueError, match="expected a snnkit.train.TrainConfig"):
        compress(model, data, "dense", {"epochs": 1})
    with pytest.raises(ValueError, match="planner 'layer' at channel level takes keep"):
        compress(model, data, "channels", CFG)


def test_the_registry_lists_every_papers_method_and_the_baselines():
    assert METHODS.names() == ("dense", "channels", "pca", "random", "duq", "prune", "quantize", "quantize-prune",
                               "attention", "convert", "gradual", "kl", "iterative")
    for name in METHODS:  # every method documents what its info holds
        assert "Info:" in (METHODS.get(name).__doc__ or ""), name

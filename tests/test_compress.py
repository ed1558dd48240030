"""The one entry point: every registered method through compress() on tiny nets (a VGG on
images; a VGG, a ResNet and an imported snntorch net on MNIST-1D sequences), its input
untouched and every field of its result filled."""
from __future__ import annotations

import copy
import math

import pytest
import snntorch as snn
import torch
from torch import nn

from snnkit.compress import METHODS, Compressed, Step, compress
from snnkit.compress.core import Run
from snnkit.data import load_dataset
from snnkit.interop import from_snntorch
from snnkit.models import NeuronSpec, ResNetSpec, VGGSpec, build
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
#: Methods that cut channels out: their result has fewer channels than their input.
CUTS_CHANNELS = {"channels", "random", "quantize-prune"}

NEURON = NeuronSpec(beta=0.9, threshold=0.5)


def imported_snntorch_net() -> nn.Sequential:
    """A small snntorch net on MNIST-1D sequences (1, 40), built as snntorch's tutorials build them."""
    torch.manual_seed(0)

    def leaky() -> snn.Leaky:
        return snn.Leaky(beta=0.9, threshold=0.5, init_hidden=True)

    return nn.Sequential(nn.Conv1d(1, 6, 5), nn.MaxPool1d(2), leaky(),      # (6, 18)
                         nn.Conv1d(6, 8, 3), leaky(),                       # (8, 16)
                         nn.Flatten(), nn.Linear(8 * 16, 10))


#: name -> (how to make the SNN, the data set it reads). The sequence nets are mnist1d-shaped (1, 40).
NETS = {
    "vgg": (lambda: build(SPEC, seed=0), "digits"),
    "vgg1d": (lambda: build(VGGSpec(in_shape=(1, 40), num_classes=10, features=(6, "P", 8, "P"), hidden=(12,),
                                    neuron=NEURON), seed=0), "mnist1d"),
    "resnet1d": (lambda: build(ResNetSpec(in_shape=(1, 40), num_classes=10, stem=6, stages=(6, 8), blocks=(1, 1),
                                          neuron=NEURON), seed=0), "mnist1d"),
    "imported1d": (lambda: from_snntorch(imported_snntorch_net(), (1, 40)), "mnist1d"),
}
#: On sequences SVS is not applicable (1 x L spike maps, see importance.spike_map_rank): SCA scores there.
SEQUENCE_PARAMS = {"channels": {"importance": "sca"}, "quantize-prune": {"importance": "sca"}}
#: What a net refuses, with the reason the message gives.
REFUSED = {("resnet1d", "convert"): "convert\\(\\) supports chain-shaped nets .*got a ResNetSpec"}


def start(net: str, spiking: bool) -> nn.Module:
    """The net a method starts from: the SNN, or its ANN twin with the same weights."""
    snn_net = NETS[net][0]()
    if spiking:
        return snn_net
    ann = build(snn_net.spec, spiking=False, seed=0)
    ann.load_state_dict(snn_net.state_dict(), strict=False)  # the twin has ReLUs where the SNN has LIF layers
    return ann


@pytest.fixture(scope="module")
def datasets():
    return {"digits": load_dataset("digits", seed=0, size=8).subset(train=64, val=16, test=32),
            "mnist1d": load_dataset("mnist1d", seed=0).subset(train=64, val=16, test=32)}


def state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_every_method_is_covered_here():
    assert set(PARAMS) == set(METHODS.names())


@pytest.mark.parametrize("net", list(NETS))
@pytest.mark.parametrize("method", sorted(PARAMS))
def test_every_method_leaves_its_input_alone_and_fills_every_field(method, net, datasets):
    data = datasets[NETS[net][1]]
    model = start(net, spiking=method not in STARTS_FROM_ANN)
    params = {**PARAMS[method], **(SEQUENCE_PARAMS.get(method, {}) if data.name == "mnist1d" else {})}
    before, training = state(model), [m.training for m in model.modules()]
    if (net, method) in REFUSED:
        with pytest.raises(ValueError, match=REFUSED[net, method]):
            compress(model, data, method, CFG, evaluate=True, **params)
        return
    run = compress(model, data, method, CFG, evaluate=True, **params)
    after = state(model)
    assert list(after) == list(before) and all(torch.equal(before[k], after[k]) for k in before), method
    assert [m.training for m in model.modules()] == training
    assert isinstance(run, Compressed) and run.method == method and run.model is not model
    assert run.model.spiking == (method != "attention")
    assert type(run.model.spec) is type(model.spec)
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
    if method in CUTS_CHANNELS:  # a genuinely smaller net
        assert sum(run.model.spec.widths) < sum(model.spec.widths)
    # the result runs
    x = data.test.x[:4]
    out = run.model(x if method == "attention" else x.unsqueeze(0).expand(run.T, *x.shape))
    assert out.shape[-1] == 10 and torch.isfinite(out).all()


@pytest.mark.parametrize("method", ["channels", "quantize-prune"])
def test_svs_on_sequences_is_refused_with_the_reason_before_any_training(method, datasets, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("trained before refusing")

    monkeypatch.setattr(Run, "train", no_training)
    model = start("vgg1d", spiking=True)
    params = {**PARAMS[method], "importance": "svs"}
    with pytest.raises(ValueError, match="SVS is not applicable on sequences: the time-averaged spike map of a "
                                         "1-D channel is 1 x L, whose rank is at most 1"):
        compress(model, datasets["mnist1d"], method, CFG, **params)


def test_the_imported_net_is_compressed_from_its_own_weights(datasets):
    """Structured pruning of an imported net keeps the snntorch weights of the kept channels."""
    model = start("imported1d", spiking=True)
    run = compress(model, datasets["mnist1d"], "channels", CFG.replace(epochs=0), importance="l1", keep=0.5)
    kept = run.info["selection"].kept()
    conv1 = model.body.layers[0].weight
    assert [len(k) for k in kept] == [3, 4] and run.model.spec.widths == [3, 4]
    assert torch.equal(run.model.body.layers[0].weight, conv1[kept[0]])
    assert torch.equal(run.model.body.layers[3].weight, model.body.layers[3].weight[kept[1]][:, kept[0]])
    # l1 keeps the filters of largest L1 norm
    norms = conv1.abs().sum((1, 2))
    assert set(kept[0].tolist()) == set(norms.argsort(descending=True)[:3].tolist())
    assert copy.deepcopy(run.model).spec == run.model.spec


@pytest.fixture(scope="module")
def data(datasets):
    return datasets["digits"]


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

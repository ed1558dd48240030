"""snntorch nn.Sequential models in and out: every supported layer, every refusal, round trips."""
from __future__ import annotations

import copy
import dataclasses
import json
import re

import pytest
import snntorch as snn
import torch
from interop_util import dyadic_, dyadic_input, run_with_membranes, spike_rates
from snntorch import surrogate as snn_surrogate
from torch import nn

from snnkit.compress.masks import masks_of, prune_global
from snnkit.compress.quant import quant_records, quantize_model
from snnkit.interop import Layer, SequentialSpec, from_snntorch, run_snntorch, to_snntorch
from snnkit.metrics import measure
from snnkit.models import LIF, NeuronSpec, VGGSpec, build, lif_layers
from snnkit.surrogate import ATan, FastSigmoid


def leaky(beta=0.9, **kw) -> snn.Leaky:
    return snn.Leaky(beta=beta, init_hidden=True, **kw)


def _bn_stats_(seq: nn.Module) -> None:
    gen = torch.Generator().manual_seed(3)
    for m in seq.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            c = m.num_features
            m.running_mean.copy_(torch.rand(c, generator=gen) - 0.5)
            m.running_var.copy_(torch.rand(c, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(c, generator=gen) + 0.5)
            m.bias.data.copy_(torch.rand(c, generator=gen) - 0.5)


# every supported layer kind, reset, leak shape and surrogate appears in one of these nets
NETS = {
    "conv2d, batchnorm2d, maxpool2d, dropout, subtract": lambda: (nn.Sequential(
        nn.Conv2d(2, 6, 3, padding=1), nn.BatchNorm2d(6), nn.MaxPool2d(2), leaky(), nn.Flatten(), nn.Dropout(0.3),
        nn.Linear(6 * 4 * 4, 5), leaky(output=True)), (2, 8, 8)),
    "avgpool2d, adaptiveavgpool2d, zero, none, per-channel learnable beta": lambda: (nn.Sequential(
        nn.Conv2d(2, 6, 3, stride=2), leaky(reset_mechanism="zero"), nn.AvgPool2d(2), nn.Conv2d(6, 8, 1),
        leaky(beta=torch.linspace(0.2, 1.0, 8).reshape(8, 1, 1), learn_beta=True, reset_mechanism="none"),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4)), (2, 11, 11)),
    "conv1d, batchnorm1d, 1-d pools, per-channel learnable threshold": lambda: (nn.Sequential(
        nn.Conv1d(2, 6, 5), nn.BatchNorm1d(6),
        leaky(threshold=torch.linspace(0.5, 1.5, 6).reshape(6, 1), learn_threshold=True),
        nn.MaxPool1d(2), nn.AvgPool1d(2), nn.AdaptiveAvgPool1d(2), nn.Flatten(), nn.Linear(12, 3),
        leaky(output=True, threshold=0.25)), (2, 20)),
    "linear, per-neuron beta after a linear layer, fast sigmoid, nested Sequential": lambda: (nn.Sequential(
        nn.Sequential(nn.Linear(10, 20), leaky(beta=torch.linspace(0.1, 0.95, 20),
                                               spike_grad=snn_surrogate.fast_sigmoid(slope=10))),
        nn.Linear(20, 3), leaky(output=True, reset_mechanism="zero", threshold=0.0625)), (10,)),
}


@pytest.fixture(params=list(NETS), ids=list(NETS))
def imported(request):
    torch.manual_seed(0)
    seq, shape = NETS[request.param]()
    _bn_stats_(seq)
    dyadic_(seq.eval())
    return seq, shape, from_snntorch(seq, shape), dyadic_input((12, 4, *shape))


def test_import_gives_identical_spikes_and_membranes(imported):
    seq, shape, net, x = imported
    ref, ref_mems = run_snntorch(seq, x, membranes=True)
    out, mems = run_with_membranes(net, x)
    rates = spike_rates(net, x)
    assert all(0.02 < r < 0.9 for r in rates.values()), rates  # every layer fires: not vacuous
    assert (out - ref).abs().max().item() == 0.0
    assert len(mems) == len(ref_mems) >= 2
    for (name, mine), theirs in zip(mems.items(), ref_mems.values()):
        assert (mine - theirs).abs().max().item() == 0.0, name


def test_import_maps_every_layer_and_neuron_setting():
    seq, shape = NETS["avgpool2d, adaptiveavgpool2d, zero, none, per-channel learnable beta"]()
    net = from_snntorch(seq, shape)
    kinds = [layer.kind for layer in net.spec.layers]
    assert kinds == ["conv2d", "lif", "avgpool2d", "conv2d", "lif", "adaptiveavgpool2d", "flatten", "linear"]
    assert net.spec.widths == [6, 8] and net.spec.num_classes == 4 and net.spec.readout == "mem"
    first, second = (m for _, m in lif_layers(net))
    assert (first.reset, second.reset) == ("zero", "none")
    assert first.beta.dim() == 0 and not first.beta.requires_grad
    assert second.beta.shape == (8,) and second.beta.requires_grad and not second.threshold.requires_grad
    assert second.beta.detach()[-1].item() == 1.0 and second.beta.detach()[0].item() == pytest.approx(0.2)
    assert net.spec.layers[0].kwargs == {"bias": True, "kernel_size": (3, 3), "stride": (2, 2), "padding": (0, 0),
                                         "dilation": (1, 1)}
    seq, shape = NETS["linear, per-neuron beta after a linear layer, fast sigmoid, nested Sequential"]()
    net = from_snntorch(seq, shape)
    lif = lif_layers(net)[0][1]
    assert lif.surrogate == FastSigmoid(10.0) and lif.beta.shape == (20,)
    assert lif_layers(net)[1][1].surrogate == ATan(2.0)  # snntorch's default spike_grad
    assert net.spec.readout == "spike"


def test_import_keeps_training_mode_and_gradients_flow():
    seq, shape = NETS["conv2d, batchnorm2d, maxpool2d, dropout, subtract"]()
    net = from_snntorch(seq.train(), shape)
    assert net.training
    x = dyadic_input((6, 3, *shape))
    net(x).sum().backward()
    assert net.body.layers[0].weight.grad.abs().sum() > 0


def _custom_forward():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.lif = nn.Linear(4, 3), snn.Leaky(beta=0.9)

        def forward(self, x):
            return self.lif(self.fc(x))
    return Net()


REFUSED = [
    (lambda: nn.Sequential(nn.Linear(4, 3), snn.RLeaky(beta=0.9, linear_features=3, init_hidden=True)), (4,),
     "snntorch.RLeaky at position 1: recurrent"),
    (lambda: nn.Sequential(nn.Linear(4, 3), snn.Synaptic(alpha=0.8, beta=0.9, init_hidden=True)), (4,),
     "snntorch.Synaptic at position 1"),
    (lambda: nn.Sequential(nn.Linear(4, 3), nn.Sequential(nn.ReLU(), leaky())), (4,),
     "torch.ReLU at position 1.0: unknown"),
    (lambda: nn.Sequential(nn.Linear(4, 3), nn.LSTM(3, 3)), (4,),
     "torch.LSTM at position 1: unknown module; supported"),
    (_custom_forward, (4,), "Net is not an nn.Sequential"),
    (lambda: nn.Sequential(nn.Linear(4, 3), snn.Leaky(beta=0.9)), (4,), "position 1: init_hidden=False"),
    (lambda: nn.Sequential(nn.Linear(4, 3), leaky(reset_delay=False)), (4,), "position 1: reset_delay=False"),
    (lambda: nn.Sequential(nn.Linear(4, 3), leaky(output=True), nn.Linear(3, 2)), (4,), "output=True on a neuron"),
    (lambda: nn.Sequential(nn.Linear(4, 3), leaky(graded_spikes_factor=2.0)), (4,), "graded spikes"),
    (lambda: nn.Sequential(nn.Conv2d(1, 2, 3), leaky(beta=torch.rand(2, 2, 2))), (1, 4, 4),
     "beta of shape (2, 2, 2) on inputs of shape (2, 2, 2): snnkit holds one value per layer or one per channel"),
    (lambda: nn.Sequential(nn.Linear(4, 3), leaky(spike_grad=snn_surrogate.triangular())), (4,),
     "spike_grad='triangular.<locals>.inner' has no snnkit counterpart"),
    (lambda: nn.Sequential(nn.Conv2d(1, 2, 3, padding_mode="circular")), (1, 4, 4), "padding_mode='circular'"),
    (lambda: nn.Sequential(nn.Flatten(0), nn.Linear(16, 2)), (1, 4, 4), "start_dim=0"),
    (lambda: nn.Sequential(nn.Conv2d(3, 2, 3)), (1, 4, 4), "does not fit its input"),
    (lambda: nn.Sequential(), (4,), "empty"),
]


@pytest.mark.parametrize("make,in_shape,message", REFUSED, ids=[m for _, _, m in REFUSED])
def test_unsupported_modules_are_refused_by_name_and_position(make, in_shape, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        from_snntorch(make(), in_shape)


def test_surrogate_override_and_bad_in_shape():
    seq = nn.Sequential(nn.Linear(4, 3), leaky(spike_grad=snn_surrogate.triangular()))
    net = from_snntorch(seq, (4,), surrogate="fast-sigmoid", surrogate_param=5.0)
    assert lif_layers(net)[0][1].surrogate == FastSigmoid(5.0)
    with pytest.raises(ValueError, match=r"in_shape=\(4, 0\)"):
        from_snntorch(seq, (4, 0))


def test_export_round_trip_gives_identical_outputs(imported):
    seq, shape, net, x = imported
    back = to_snntorch(net)
    assert isinstance(back.model, nn.Sequential) and back.quant_records == {}
    assert [type(m) for m in back.model] == [type(m) for m in seq.modules() if type(m) is not nn.Sequential]
    out_back, mems_back = run_snntorch(back.model.eval(), x, membranes=True)
    out_ref, mems_ref = run_snntorch(seq, x, membranes=True)
    assert (out_back - out_ref).abs().max().item() == 0.0
    for a, b in zip(mems_back.values(), mems_ref.values()):
        assert (a - b).abs().max().item() == 0.0
    last = [m for m in back.model if isinstance(m, snn.Leaky)][-1]
    assert last.output == (net.spec.readout == "spike")


def test_export_of_a_pruned_and_quantized_net_uses_zeros_and_levels():
    spec = VGGSpec(in_shape=(1, 8, 8), num_classes=4, features=(8, "P", 8, "P"), hidden=(16,), bias=True,
                   readout="spike", neuron=NeuronSpec(beta=0.8, threshold=0.5))
    net = dyadic_(build(spec, seed=1)).eval()
    prune_global(net, 0.6)
    qnet, _ = quantize_model(net, bits=3, per_channel=True)
    x = dyadic_input((10, 3, 1, 8, 8), seed=2)
    with torch.no_grad():
        expected = qnet(x)
    back = to_snntorch(qnet)
    records = quant_records(qnet)
    assert set(back.quant_records) == {k.rpartition(".")[2] for k in records} == {"0", "3", "7", "9"}
    masks = masks_of(qnet)
    for key, rec in records.items():
        i = key.rpartition(".")[2]
        w = back.model[int(i)].weight.detach()
        levels = rec.levels()  # (C, L) per channel
        on_grid = (w.unsqueeze(-1) - levels.reshape(levels.shape[0], *([1] * (w.dim() - 1)), -1)).abs().min(-1).values
        assert on_grid.max().item() <= 1e-6 * levels.abs().max().item()  # every weight is a level of its channel
        assert bool((w[masks[f"{key}.weight"] == 0] == 0).all())
        assert back.quant_records[i].bits == 3
    assert (w == 0).float().mean() > 0.3  # pruned zeros survive
    # the levels are the quantizer's floats, not dyadic, so a conv fed by channels-last spikes
    # may round differently in snnkit (see interop_util): compare within that rounding
    _, mems = run_with_membranes(qnet, x)
    out, ref_mems = run_snntorch(back.model, x, membranes=True)
    for mine, theirs in zip(mems.values(), ref_mems.values()):
        assert (mine - theirs).abs().max().item() <= 1e-5
    assert (out != expected).float().mean().item() <= 0.01 and expected.sum() > 0


def test_run_snntorch_per_sample_runs_each_sequence_alone():
    torch.manual_seed(0)
    seq = nn.Sequential(nn.Linear(6, 5), leaky(0.8), nn.Linear(5, 3), leaky(0.7, output=True))
    x = torch.rand(7, 4, 6) * 2  # (T, B, features): a Linear takes unbatched samples too
    with torch.no_grad():
        out, mems = run_snntorch(seq, x, membranes=True)
        each, each_mems = run_snntorch(seq, x, membranes=True, per_sample=True)
        alone = run_snntorch(seq, x[:, 2])  # (T, features)
    assert each.shape == (7, 4, 3) and 0 < out.sum() < out.numel()
    assert torch.allclose(each, out) and torch.equal(each[:, 2], alone)
    assert list(each_mems) == ["1", "3"] and torch.allclose(each_mems["1"], mems["1"])
    with pytest.raises(ValueError, match=r"per_sample=True needs x of shape \(T, B, ...\); got shape \(7,\)"):
        run_snntorch(seq, torch.rand(7), per_sample=True)


def test_export_refuses_what_a_sequential_cannot_hold():
    from snnkit.models import ResNetSpec
    res = build(ResNetSpec(in_shape=(1, 8, 8), num_classes=3, stages=(4,), blocks=(1,), stem=4))
    with pytest.raises(ValueError, match="BasicBlock at body.layers.3: an nn.Sequential holds a chain"):
        to_snntorch(res)
    with pytest.raises(ValueError, match="an ANN twin"):
        to_snntorch(build(VGGSpec(in_shape=(1, 8, 8), num_classes=3), spiking=False))
    tri = build(VGGSpec(in_shape=(1, 8, 8), num_classes=3, neuron=NeuronSpec(surrogate="triangular")))
    with pytest.raises(ValueError, match="LIF layer body.layers.1 uses the surrogate Triangular"):
        to_snntorch(tri)
    assert isinstance(to_snntorch(tri, spike_grad=snn_surrogate.atan()).model[1], snn.Leaky)


def test_compression_and_metrics_work_on_an_imported_net():
    seq, shape = NETS["conv2d, batchnorm2d, maxpool2d, dropout, subtract"]()
    net = from_snntorch(seq.eval(), shape)
    pruned = copy.deepcopy(net)
    prune_global(pruned, 0.5)
    assert set(masks_of(pruned)) == {"body.layers.0.weight", "body.layers.6.weight"}
    qnet, _ = quantize_model(pruned, bits=4)
    assert set(quant_records(qnet)) == {"body.layers.0", "body.layers.6"}
    report = measure(net, dyadic_input((5, 2, *shape)))
    # conv1: 6 x 2 x 3 x 3 weights over an 8 x 8 map with padding 1: the analog input costs MACs
    taps = sum(len([d for d in range(-1, 2) if 0 <= i + d < 8]) for i in range(8)) ** 2
    assert report.macs == pytest.approx(5 * 6 * 2 * taps)
    small = build(net.spec.with_widths([3]))
    assert small.body.layers[0].out_channels == 3 and small.body.layers[6].in_features == 3 * 4 * 4


def test_sequential_spec_checks_its_layers():
    with pytest.raises(ValueError, match="layer kind 'conv3d'"):
        Layer.of("conv3d", 4)
    with pytest.raises(ValueError, match="linear layer width=None"):
        Layer.of("linear")
    with pytest.raises(ValueError, match="a NeuronSpec for 'lif' layers only"):
        Layer.of("lif")
    with pytest.raises(ValueError, match="at least one conv or linear"):
        SequentialSpec((4,), (Layer.of("lif", neuron=NeuronSpec()),))
    spec = SequentialSpec((1, 6, 6), (Layer.of("conv2d", 4, kernel_size=3), Layer.of("flatten"), Layer.of("linear", 2)))
    assert spec.shapes() == [(1, 6, 6), (4, 4, 4), (64,), (2,)]
    with pytest.raises(ValueError, match=r"layer 1 \(conv2d\) on input \(4, 4, 4\)"):
        build(SequentialSpec((1, 6, 6), (Layer.of("conv2d", 4, kernel_size=3), Layer.of("conv2d", 2, kernel_size=5),
                                         Layer.of("flatten"), Layer.of("linear", 2))))
    with pytest.raises(ValueError, match=r"expected 1 positive ints"):
        spec.with_widths([4, 4])
    seq, shape = NETS["avgpool2d, adaptiveavgpool2d, zero, none, per-channel learnable beta"]()
    imported = from_snntorch(seq, shape).spec
    assert SequentialSpec.from_dict(dataclasses.asdict(imported)) == imported
    assert SequentialSpec.from_dict(json.loads(json.dumps(dataclasses.asdict(imported)))) == imported
    with pytest.raises(ValueError, match="KeyError"):
        SequentialSpec.from_dict({"in_shape": [4]})
    net = build(spec)
    with pytest.raises(ValueError, match=r"expected \(T, B, C, H, W\)"):
        net(torch.zeros(2, 1, 6, 6))
    ann = build(spec, spiking=False)
    assert ann(torch.zeros(3, 1, 6, 6)).shape == (3, 2)
    assert set(dict(ann.named_parameters())) == set(dict(net.named_parameters()))
    assert isinstance(net.body.layers, nn.ModuleList) and not any(isinstance(m, LIF) for m in net.body.layers)


def test_reset_none_matches_snntorch_values_and_gradients():
    """reset='none' (snntorch's pure integration): the hand-written backward agrees with autograd."""
    from snnkit.neurons import lif_sequence, lif_step

    gen = torch.Generator().manual_seed(5)
    x = (torch.randn(20, 4, 6, generator=gen) * 0.8 + 0.3).requires_grad_()
    beta = torch.full((6,), 0.8).requires_grad_()
    thr = torch.full((6,), 1.0).requires_grad_()
    spk, mem = lif_sequence(x, beta, thr, ATan(2.0), "none")
    w = torch.randn(spk.shape, generator=gen)
    (spk * w).sum().backward()
    ours = [t.grad.clone() for t in (x, beta, thr)]
    for t in (x, beta, thr):
        t.grad = None
    ref = snn.Leaky(beta=beta, threshold=thr, reset_mechanism="none")
    state, m_ref, spikes = None, ref.init_leaky(), []
    for t in range(x.shape[0]):
        s, m_ref = ref(x[t], m_ref)
        s2, state = lif_step(x[t], state, beta, thr, ATan(2.0), "none")
        assert torch.equal(s, s2) and torch.equal(m_ref, state.mem)
        spikes.append(s)
    assert torch.equal(torch.stack(spikes), spk) and spk.sum() > 20
    assert (mem[1:] > thr).any()  # the membrane stays above threshold: no reset happened
    (torch.stack(spikes) * w).sum().backward()
    for mine, theirs in zip(ours, (x.grad, beta.grad, thr.grad)):
        assert torch.allclose(mine, theirs, rtol=1e-5, atol=1e-5)

"""Channel surgery: the shrunk net computes exactly what the masked net computes (VGG with and
without batch norm, bias, per-channel neurons, hidden linear layers; ResNet; on images and on
sequences; an imported net's SequentialSpec), parameter counts by hand, agreement with
Torch-Pruning's dependency graph, training and copies."""
from __future__ import annotations

import copy
import pickle

import pytest
import torch
import torch_pruning as tp
from torch import nn

from snnkit.compress.activity import prunable_layers
from snnkit.compress.importance import feeding_layers, score
from snnkit.compress.planners import plan
from snnkit.compress.masks import masks_of, prune_global
from snnkit.compress.surgery import Cut, channel_plan, kept_channels, mask_channels, shrink
from snnkit.data import Split
from snnkit.interop import Layer, SequentialSpec
from snnkit.metrics.ops import count_params
from snnkit.models import CONV_TYPES, LIF, NeuronSpec, ResNetSpec, VGGSpec, build, probe
from snnkit.train import TrainConfig, fit

NEURON = NeuronSpec(beta=0.8, threshold=0.3, per_channel=True)

SPECS = {
    "vgg-bn-bias-hidden": VGGSpec(in_shape=(2, 8, 8), num_classes=3, features=(8, "P", 12, "P"), hidden=(10,),
                                  batch_norm=True, bias=True, neuron=NEURON),
    "vgg-plain": VGGSpec(in_shape=(2, 8, 8), num_classes=3, features=(8, 8, "P", 12, "P"),
                         neuron=NeuronSpec(beta=0.9, threshold=0.1)),
    "vgg-avg-spike-readout": VGGSpec(in_shape=(2, 8, 8), num_classes=3, features=(8, "P", 6), hidden=(10, 7),
                                     bias=True, pool="avg", readout="spike", neuron=NEURON),
    "resnet": ResNetSpec(in_shape=(2, 8, 8), num_classes=3, stem=8, stages=(8, 12), blocks=(2, 1), bias=True,
                         neuron=NEURON),
    # sequences (C, L): 1-D convolutions and pools
    "vgg1d-bn-bias-hidden": VGGSpec(in_shape=(2, 16), num_classes=3, features=(8, "P", 12, "P"), hidden=(10,),
                                    batch_norm=True, bias=True, neuron=NEURON),
    "vgg1d-avg-spike-readout": VGGSpec(in_shape=(2, 16), num_classes=3, features=(8, "P", 6), hidden=(10, 7),
                                       bias=True, pool="avg", readout="spike", neuron=NEURON),
    "resnet1d": ResNetSpec(in_shape=(2, 16), num_classes=3, stem=8, stages=(8, 12), blocks=(2, 1), bias=True,
                           neuron=NEURON),
    # an imported snntorch net's layer list: a pool before the neuron, batch norm, dropout, no padding
    "sequential1d": SequentialSpec((2, 16), (
        Layer.of("conv1d", 8, kernel_size=3, bias=True), Layer.of("batchnorm1d"), Layer.of("maxpool1d", kernel_size=2),
        Layer.of("lif", neuron=NEURON), Layer.of("conv1d", 6, kernel_size=3, padding=1, bias=True),
        Layer.of("avgpool1d", kernel_size=2), Layer.of("lif", neuron=NEURON), Layer.of("dropout", p=0.2),
        Layer.of("flatten"), Layer.of("linear", 10, bias=True), Layer.of("lif", neuron=NEURON),
        Layer.of("linear", 3, bias=True))),
    "sequential2d": SequentialSpec((2, 8, 8), (
        Layer.of("conv2d", 8, kernel_size=3, bias=False), Layer.of("maxpool2d", kernel_size=2),
        Layer.of("lif", neuron=NEURON), Layer.of("flatten"), Layer.of("linear", 10, bias=True),
        Layer.of("lif", neuron=NEURON), Layer.of("linear", 3, bias=True), Layer.of("lif", neuron=NEURON))),
}


def prepared(spec, spiking: bool = True, seed: int = 0) -> nn.Module:
    """A net whose every tensor matters: random batch-norm statistics and shifts, random
    per-channel leaks and thresholds, in eval mode.

    Weights and biases are rounded to multiples of 1/32, so that with spike inputs (and
    the first layer's input rounded to 1/16) every conv and linear sum is exact in float32
    whatever order a kernel adds its terms in: an equality test then tests the surgery,
    not the summation order of a kernel for a given channel count.
    """
    net = build(spec, spiking=spiking, seed=seed)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (*CONV_TYPES, nn.Linear)):
                for p in (m.weight, m.bias):
                    if p is not None:
                        p.copy_(torch.round(1.5 * p * 32) / 32)
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                c = m.num_features
                m.running_mean.copy_(0.3 * torch.randn(c, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(c, generator=gen))
                m.weight.copy_(0.5 + torch.rand(c, generator=gen))
                m.bias.copy_(0.3 * torch.randn(c, generator=gen))  # removed channels would fire
            if isinstance(m, LIF) and m.beta.dim():
                m.beta.copy_(0.5 + 0.5 * torch.rand(m.beta.shape, generator=gen))
                m.threshold.copy_(0.1 + 0.3 * torch.rand(m.beta.shape, generator=gen))
    return net.eval()


def inputs(spiking: bool, seed: int = 0, sample: tuple[int, ...] = (2, 8, 8)) -> torch.Tensor:
    """(T, B, *sample) or (B, *sample) on a 1/16 grid; ``sample`` (C, H, W) or (C, L)."""
    gen = torch.Generator().manual_seed(seed)
    shape = (6, 4, *sample) if spiking else (4, *sample)
    return torch.round(torch.rand(shape, generator=gen) * 16) / 16


@pytest.mark.parametrize("name", SPECS)
def test_shrunk_equals_masked_exactly(name):
    net = prepared(SPECS[name])
    sel = plan(score(net, "random"), "global", keep=0.5)
    small, masked = shrink(net, sel), mask_channels(net, sel)
    assert small.spec.widths == sel.widths and not small.training
    x = inputs(True, sample=SPECS[name].in_shape)
    spikes: dict[str, list[torch.Tensor]] = {}

    def record(layer, s, _m):
        spikes.setdefault(layer, []).append(s)

    with torch.no_grad(), probe(masked, record), probe(small, record):
        out_masked, out_small, out_full = masked(x), small(x), net(x)
    assert torch.equal(out_small, out_masked)
    assert out_small.abs().sum() > 0  # the network is not silent
    assert not torch.equal(out_full, out_masked)  # and the removed channels mattered
    # every hidden layer spikes, and a removed channel of the masked net never does
    for layer, keep in zip(prunable_layers(net), sel.kept()):
        s_masked, s_small = spikes[layer]
        assert s_small.sum() > 0
        removed = torch.ones(s_masked.shape[2], dtype=torch.bool)
        removed[keep] = False
        assert s_masked[:, :, removed].sum() == 0
        assert torch.equal(s_masked[:, :, keep], s_small)


def test_shrunk_equals_masked_for_the_ann_twin():
    # analog activations: the sums are not exact, so the kernel's summation order shows
    for name in ("vgg-bn-bias-hidden", "resnet", "vgg1d-bn-bias-hidden", "resnet1d", "sequential1d"):
        spec = SPECS[name]
        ann = prepared(spec, spiking=False)
        keep = [torch.arange(0, w, 2) for w in spec.widths]
        small, masked = shrink(ann, keep), mask_channels(ann, keep)
        x = inputs(False, sample=spec.in_shape)
        with torch.no_grad():
            torch.testing.assert_close(small(x), masked(x), rtol=1e-6, atol=1e-6)


def test_parameter_counts_by_hand():
    net = build(SPECS["vgg-bn-bias-hidden"], seed=0)  # in 2x8x8; conv 8, P, conv 12, P, fc 10, fc 3
    small = shrink(net, [[0, 3, 5], [1, 2, 4, 8, 11], [0, 9]])  # widths 3, 5, 2
    # per layer: weights + bias, batch norm (weight, bias), per-channel LIF (leak, threshold)
    conv1 = 3 * 2 * 9 + 3 + 2 * 3 + 2 * 3
    conv2 = 5 * 3 * 9 + 5 + 2 * 5 + 2 * 5
    fc1 = 2 * (5 * 2 * 2) + 2 + 2 * 2 + 2 * 2  # 5 channels of 2x2 positions flattened
    out = 3 * 2 + 3
    assert count_params(small) == conv1 + conv2 + fc1 + out == 288
    res = build(SPECS["resnet"], seed=0)  # stem 8; stage 8: 2 blocks; stage 12: 1 block with projection
    small = shrink(res, [[0, 1, 2], [4], [0, 5, 6, 7]])
    assert small.spec.widths == [3, 1, 4] and small.spec.stages == (8, 12)

    def block(c_in, inner, c_out, projection):
        n = inner * c_in * 9 + inner + 2 * inner + 2 * inner  # conv1 (+bias), bn1, act1
        n += c_out * inner * 9 + c_out + 2 * c_out + 2 * c_out  # conv2, bn2, act2
        return n + (c_out * c_in + c_out + 2 * c_out if projection else 0)

    stem = 8 * 2 * 9 + 8 + 2 * 8 + 2 * 8
    total = stem + block(8, 3, 8, False) + block(8, 1, 8, False) + block(8, 4, 12, True) + 3 * 12 + 3
    assert count_params(small) == total == 1831


def test_kept_weights_are_the_original_ones():
    net = prepared(SPECS["vgg-bn-bias-hidden"])
    keep = [[1, 6], [0, 2, 3], [9]]
    small = shrink(net, keep)
    big, cut = net.body.layers, small.body.layers
    assert torch.equal(cut[0].weight, big[0].weight[[1, 6]])
    assert torch.equal(cut[4].weight, big[4].weight[[0, 2, 3]][:, [1, 6]])
    assert torch.equal(cut[5].running_var, big[5].running_var[[0, 2, 3]])
    assert torch.equal(cut[6].threshold, big[6].threshold[[0, 2, 3]])
    # flatten of a 12 x 2 x 2 map: channel c is columns 4c .. 4c + 3
    cols = [0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 15]
    assert torch.equal(cut[9].weight, big[9].weight[[9]][:, cols])
    assert torch.equal(cut[12].weight, big[12].weight[:, [9]]) and torch.equal(cut[12].bias, big[12].bias)


def _removed(keep: torch.Tensor | None, n: int) -> tuple[int, ...]:
    if keep is None:
        return ()
    gone = torch.ones(n, dtype=torch.bool)
    gone[keep] = False
    return tuple(torch.nonzero(gone).flatten().tolist())


@pytest.mark.parametrize("name", ["vgg-bn-bias-hidden", "resnet", "vgg1d-bn-bias-hidden", "resnet1d", "sequential1d"])
def test_plan_is_the_dependency_graph_group_of_every_width(name):
    spec = SPECS[name]
    ann = build(spec, spiking=False, seed=0).eval()
    graph = tp.DependencyGraph().build_dependency(ann, example_inputs=torch.rand(1, *spec.in_shape))
    modules = dict(ann.named_modules())
    names = {m: n for n, m in modules.items()}
    producers = list(feeding_layers(build(spec)).values())  # the conv/linear feeding each width
    for i, width in enumerate(spec.widths):
        producer = producers[i]
        j = width // 2
        fn = tp.prune_conv_out_channels if isinstance(modules[producer], CONV_TYPES) else tp.prune_linear_out_channels
        group = graph.get_pruning_group(modules[producer], fn, idxs=[j])
        theirs = set()
        for dep, idxs in group:
            m = dep.target.module
            if isinstance(m, nn.Module) and any(True for _ in m.parameters(recurse=False)):
                kind = "in" if dep.handler.__name__ == "prune_in_channels" else "out"
                theirs.add((names[m], kind, tuple(sorted(int(k) for k in idxs))))
        keep = [torch.arange(w) for w in spec.widths]
        keep[i] = torch.tensor([k for k in range(width) if k != j])
        ours = set()
        for mname, cut in channel_plan(ann, keep).items():
            m = modules[mname]
            if not any(True for _ in m.parameters(recurse=False)):
                continue  # the ANN twin's ReLU where the SNN has its LIF
            n_out = m.weight.shape[0]
            if _removed(cut.out, n_out):
                ours.add((mname, "out", _removed(cut.out, n_out)))
            if isinstance(m, (*CONV_TYPES, nn.Linear)) and _removed(cut.inp, m.weight.shape[1]):
                ours.add((mname, "in", _removed(cut.inp, m.weight.shape[1])))
        assert ours == theirs and len(ours) >= 2, f"width {i}"  # at least the producer and the next layer


def test_plan_of_a_resnet_touches_one_block_only():
    net = build(SPECS["resnet"], seed=0)
    plan = channel_plan(net, [[0, 1], list(range(8)), [3]])
    assert set(plan) == {f"body.layers.{b}.{m}" for b in (3, 4, 5) for m in ("conv1", "bn1", "act1", "conv2")}
    assert torch.equal(plan["body.layers.5.conv2"].inp, torch.tensor([3])) and plan["body.layers.5.conv2"].out is None
    assert isinstance(plan["body.layers.3.act1"], Cut)


def test_shrunk_net_trains_copies_and_pickles():
    net = build(SPECS["vgg-bn-bias-hidden"], seed=0)
    small = shrink(net, plan(score(net, "random"), "global", keep=0.5))
    before = copy.deepcopy(small.state_dict())
    gen = torch.Generator().manual_seed(0)
    data = Split(torch.rand(16, 2, 8, 8, generator=gen), torch.randint(0, 3, (16,), generator=gen))
    hist = fit(small, data, TrainConfig(epochs=1, batch_size=8, T=3, lr=1e-2, progress=False), val=None)
    assert torch.isfinite(torch.tensor(hist.train_loss)).all()
    assert not torch.equal(small.body.layers[0].weight, before["body.layers.0.weight"])
    x = inputs(True)
    small.eval()
    with torch.no_grad():
        out = small(x)
        assert torch.equal(copy.deepcopy(small)(x), out)
        assert torch.equal(pickle.loads(pickle.dumps(small))(x), out)


def test_masked_channels_stay_masked_through_training():
    net = build(SPECS["vgg-bn-bias-hidden"], seed=0)
    keep = [[0, 1, 2, 3], [0, 1, 2, 3, 4, 5], [0, 1, 2, 3, 4]]
    masked = mask_channels(net, keep)
    assert count_params(masked) == count_params(net)  # same architecture
    gen = torch.Generator().manual_seed(0)
    data = Split(torch.rand(16, 2, 8, 8, generator=gen), torch.randint(0, 3, (16,), generator=gen))
    fit(masked, data, TrainConfig(epochs=1, batch_size=8, T=3, lr=1e-2, progress=False), val=None)
    layers = masked.body.layers
    assert (layers[0].weight[4:] == 0).all() and (layers[0].bias[4:] == 0).all()
    assert (layers[1].weight[4:] == 0).all() and (layers[1].bias[4:] == 0).all()
    assert (layers[4].weight[:, 4:] == 0).all() and (layers[4].weight[6:] == 0).all()
    assert (layers[9].weight[:, 6 * 4:] == 0).all()  # flattened columns of removed channels 6..11
    assert (layers[12].weight[:, 5:] == 0).all()
    copy.deepcopy(masked)


def test_shrink_keeps_unstructured_masks():
    net = prepared(SPECS["vgg-bn-bias-hidden"])
    prune_global(net, 0.5)
    keep = [[0, 2, 4, 6], [1, 3, 5, 7, 9, 11], [0, 1, 2, 3, 4]]
    small = shrink(net, keep)
    cut = masks_of(small)["body.layers.4.weight"]
    assert torch.equal(cut, masks_of(net)["body.layers.4.weight"][[1, 3, 5, 7, 9, 11]][:, [0, 2, 4, 6]])
    x = inputs(True)
    with torch.no_grad():
        assert torch.equal(small(x), mask_channels(net, keep)(x))


def test_bad_selections_name_the_problem():
    net = build(SPECS["vgg-bn-bias-hidden"], seed=0)
    with pytest.raises(ValueError, match="expected 3"):
        shrink(net, [[0], [0]])
    with pytest.raises(ValueError, match=r"kept channels \[0, 8\]"):
        shrink(net, [[0, 8], [0], [0]])
    with pytest.raises(ValueError, match="3 scores for 8 channels"):
        sel = plan(score(net, "random"), "global", keep=0.5)
        shrink(net, type(sel)(layers=sel.layers, widths=sel.widths, original=sel.original,
                              scores=[torch.zeros(3)] * len(sel.layers)))
    other = build(SPECS["resnet"], seed=0)
    with pytest.raises(ValueError, match="expected one made on this model"):
        shrink(other, plan(score(net, "random"), "global", keep=0.5))
    assert [k.tolist() for k in kept_channels(net, [[3, 1], [0], [2]])] == [[1, 3], [0], [2]]


def test_kept_weights_of_a_sequence_net_with_the_flatten_mapping():
    net = prepared(SPECS["vgg1d-bn-bias-hidden"])  # in 2 x 16; conv 8, P, conv 12, P (12 x 4), fc 10, fc 3
    keep = [[1, 6], [0, 2, 3], [9]]
    small = shrink(net, keep)
    big, cut = net.body.layers, small.body.layers
    assert tuple(cut[0].weight.shape) == (2, 2, 3)  # (C_out, C_in, k)
    assert torch.equal(cut[0].weight, big[0].weight[[1, 6]])
    assert torch.equal(cut[4].weight, big[4].weight[[0, 2, 3]][:, [1, 6]])
    assert torch.equal(cut[5].running_mean, big[5].running_mean[[0, 2, 3]])
    # flatten of a 12 x 4 sequence map: channel c is columns 4c .. 4c + 3
    cols = [0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 15]
    assert torch.equal(cut[9].weight, big[9].weight[[9]][:, cols])
    # parameters by hand: conv1 2x2x3 weights + 2 biases + batch norm 2x2 + LIF leak and threshold 2x2;
    # conv2 3x2x3 + 3 + 6 + 6; fc1 1x12 + 1 + 2 + 2; output 3x1 + 3
    assert count_params(small) == (12 + 2 + 4 + 4) + (18 + 3 + 6 + 6) + (12 + 1 + 2 + 2) + (3 + 3) == 78


def test_an_imported_net_without_a_neuron_per_layer_is_refused_by_name():
    no_neuron = SequentialSpec((2, 16), (Layer.of("conv1d", 4, kernel_size=3), Layer.of("conv1d", 4, kernel_size=3),
                                         Layer.of("lif", neuron=NEURON), Layer.of("flatten"), Layer.of("linear", 3)))
    with pytest.raises(ValueError, match=r"body.layers.0 \(Conv1d\) has no LIF layer before the next conv/linear"):
        prunable_layers(build(no_neuron))
    after_flatten = SequentialSpec((2, 16), (Layer.of("conv1d", 4, kernel_size=3), Layer.of("flatten"),
                                             Layer.of("lif", neuron=NEURON), Layer.of("linear", 3)))
    with pytest.raises(ValueError, match=r"only after the Flatten body.layers.1"):
        shrink(build(after_flatten), [[0, 1]])
    assert prunable_layers(build(SPECS["sequential1d"])) == ["body.layers.3", "body.layers.6", "body.layers.10"]
    assert prunable_layers(build(SPECS["sequential1d"], spiking=False)) == ["body.layers.3", "body.layers.6",
                                                                           "body.layers.10"]

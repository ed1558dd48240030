"""QP-SNN's importances (SCA, SVS, filter L1) and score stability, on hand-made cases."""
from __future__ import annotations

import pytest
import torch

from snnkit.compress.importance import (
    Inputs,
    feeding_layers,
    l1_filter_scores,
    pairwise_cosine,
    sca_scores,
    score,
    score_stability,
    spike_map_rank,
    svs_scores,
)
from snnkit.compress.planners import plan, select
from snnkit.interop import Layer, SequentialSpec
from snnkit.models import NeuronSpec, ResNetSpec, VGGSpec, build

QP_NEURON = NeuronSpec(beta=0.5, threshold=1.0, reset="zero", surrogate="triangular")


def one_conv_net(weights: list[float], size: int = 2):
    """A VGG with one 3x3 conv whose channel c is ``weights[c]`` times the pixel itself."""
    spec = VGGSpec(in_shape=(1, size, size), num_classes=2, features=(len(weights),), neuron=QP_NEURON)
    model = build(spec, seed=0)
    with torch.no_grad():
        conv = model.body.layers[0]
        conv.weight.zero_()
        for c, w in enumerate(weights):
            conv.weight[c, 0, 1, 1] = w
    return model


# ---------------------------------------------------------------------------------------
# pure maths


def test_spike_map_rank_counts_the_singular_values_of_known_rank_maps():
    maps = torch.zeros(1, 4, 4, 4)
    maps[0, 1] = torch.outer(torch.tensor([1.0, 0.5, 0, 1]), torch.tensor([0.5, 0, 1, 1]))  # rank 1
    maps[0, 2, 0] = torch.tensor([1.0, 0.5, 0.0, 0.0])  # two independent rows: rank 2
    maps[0, 2, 3] = torch.tensor([0.0, 0.5, 1.0, 0.0])
    maps[0, 2, 1] = maps[0, 2, 0] + maps[0, 2, 3]  # a sum of the two: still rank 2
    maps[0, 3] = torch.eye(4) * 0.5  # rank 4
    assert spike_map_rank(maps).tolist() == [[0.0, 1.0, 2.0, 4.0]]
    # a linear layer's "maps" are single values: rank 1 where the channel fired
    assert spike_map_rank(torch.tensor([[0.0, 0.5], [0.0, 0.0]])).tolist() == [[0.0, 1.0], [0.0, 0.0]]
    # eps decides what counts: 0.5 * eye has singular values 0.5
    assert spike_map_rank(maps, eps=0.6)[0, 3] == 0
    with pytest.raises(ValueError, match=r"spike maps of shape \(1, 1, 4, 4, 4\): expected \(N, C, H, W\) or \(N, C\)"):
        spike_map_rank(maps[None])
    # a 1-D conv's (N, C, L) maps are 1 x L matrices of rank <= 1: refused, with the reason
    with pytest.raises(ValueError, match=r"spike maps of shape \(4, 4, 4\) \(N, C, L\): SVS is not applicable on "
                                         r"sequences: .* 1 x L, whose rank is at most 1"):
        spike_map_rank(maps[0])
    with pytest.raises(ValueError, match="eps=-1: expected a number >= 0"):
        spike_map_rank(maps, eps=-1)


def test_svs_scores_average_the_ranks_over_samples():
    maps = torch.zeros(2, 2, 3, 3)
    maps[0, 0] = torch.eye(3)  # ranks: sample 0 -> 3, sample 1 -> 1: mean 2
    maps[1, 0, 0, 0] = 1.0
    maps[1, 1] = torch.eye(3)[[0, 1, 1]]  # channel 1: 0 then 2: mean 1
    assert svs_scores(maps).tolist() == [2.0, 1.0]


def test_sca_scores_are_mean_membrane_magnitudes_per_channel():
    mem = torch.tensor([[[[0.5, 1.5]], [[2.0, 0.0]]],
                        [[[1.0, 1.0]], [[0.0, 0.0]]]])  # (N=2, C=2, H=1, W=2)
    assert sca_scores(mem).tolist() == [1.0, 0.5]
    assert sca_scores(torch.tensor([[1.0, 3.0], [3.0, 5.0]])).tolist() == [2.0, 4.0]  # (N, C)
    with pytest.raises(ValueError, match=r"expected \(N, C, \.\.\.\)"):
        sca_scores(torch.ones(3))


def test_l1_filter_scores_of_known_filters():
    w = torch.zeros(3, 2, 3, 3)
    w[0, 0, 0, 0], w[0, 1, 2, 2] = 1.0, -2.0  # 3
    w[2] = -0.5  # 18 entries of 0.5: 9
    assert l1_filter_scores(w).tolist() == [3.0, 0.0, 9.0]
    assert l1_filter_scores(torch.tensor([[1.0, -1.0], [0.25, 0.0]])).tolist() == [2.0, 0.25]
    with pytest.raises(ValueError, match="expected \\(C_out, ...\\)"):
        l1_filter_scores(torch.ones(4))


def test_pairwise_cosine_of_identical_shuffled_and_orthogonal_scores():
    v = torch.tensor([1.0, 2.0, 3.0])
    assert pairwise_cosine(torch.stack([v, v, 2 * v])) == pytest.approx(1.0)
    shuffled = torch.tensor([3.0, 1.0, 2.0])  # v . s = 3 + 2 + 6 = 11, |v| |s| = 14
    assert pairwise_cosine(torch.stack([v, shuffled])) == pytest.approx(11 / 14)
    # three batches: pairs (v, v) = 1, (v, s) = (v, s) = 11/14
    assert pairwise_cosine(torch.stack([v, v, shuffled])) == pytest.approx((1 + 22 / 14) / 3)
    assert pairwise_cosine(torch.eye(2)) == 0.0
    assert pairwise_cosine(torch.zeros(2, 3)) == 1.0  # two zero vectors agree
    assert pairwise_cosine(torch.stack([v, torch.zeros(3)])) == 0.0
    with pytest.raises(ValueError, match="expected \\(K, C\\) with K >= 2 batches"):
        pairwise_cosine(v.unsqueeze(0))


# ---------------------------------------------------------------------------------------
# importances on networks with hand-set weights


def test_sca_on_a_hand_computed_membrane():
    # currents 0.6, -0.3 and 0 at every step (beta 0.5, threshold 1, hard reset):
    # channel 0: U = 0.6, 0.9, 1.05 (spike), then 0 * 0.5 + 0.6 = 0.6 -> mean |U| 0.7875
    # channel 1: U = -0.3, -0.45, -0.525, -0.5625 -> mean |U| 0.459375 (the sign does not matter)
    model = one_conv_net([1.0, -0.5, 0.0])
    sel = select(model, "sca", "layer", Inputs(torch.full((3, 1, 2, 2), 0.6), T=4), keep=2 / 3)
    assert sel.importance == "sca" and sel.layers == ["body.layers.1"]
    assert sel.scores[0] == pytest.approx(torch.tensor([0.7875, 0.459375, 0.0]))
    assert sel.widths == [2] and sel.original == [3]
    assert sel.kept()[0].tolist() == [0, 1]
    assert model.training  # the training flag is restored


def test_svs_on_spike_maps_of_known_rank():
    # T = 1: channel c spikes where w_c * pixel > 1. Sample 0 is one bright row (rank 1),
    # sample 1 a bright diagonal (rank 4); channel 1 (weight 0.5) never fires.
    x = torch.zeros(2, 1, 4, 4)
    x[0, 0, 2] = 1.0
    x[1, 0] = torch.eye(4)
    model = one_conv_net([2.0, 0.5, 2.0], size=4)
    sel = select(model, "svs", "layer", Inputs(x, T=1), keep=[0.34])
    assert sel.scores[0].tolist() == [2.5, 0.0, 2.5]  # mean of ranks 1 and 4
    assert sel.widths == [1] and sel.kept()[0].tolist() == [0]  # ties: the first
    # batches average like one big batch
    again = score(model, "svs", Inputs([x[:1], x[1:]], T=1))
    assert torch.equal(again.values[0], sel.scores[0])


def test_l1_scores_the_filter_feeding_each_prunable_layer():
    model = one_conv_net([1.0, -3.0, 0.5])
    sel = select(model, "l1", "layer", keep=0.5)
    assert sel.scores[0].tolist() == [1.0, 3.0, 0.5]
    assert sel.widths == [2] and sel.kept()[0].tolist() == [0, 1]  # round(1.5) = 2


def test_feeding_layers_of_vgg_and_resnet():
    vgg = build(VGGSpec(in_shape=(1, 8, 8), num_classes=10, features=(4, "P", 6), hidden=(5,),
                        batch_norm=True, neuron=QP_NEURON), seed=0)
    assert feeding_layers(vgg) == {"body.layers.2": "body.layers.0", "body.layers.6": "body.layers.4",
                                   "body.layers.10": "body.layers.8"}
    res = build(ResNetSpec(in_shape=(1, 8, 8), num_classes=10, stem=4, stages=(4, 8), blocks=(1, 1),
                           neuron=QP_NEURON), seed=0)
    assert feeding_layers(res) == {"body.layers.3.act1": "body.layers.3.conv1",
                                   "body.layers.4.act1": "body.layers.4.conv1"}
    sel = select(res, "l1", "layer", keep=[0.5, 0.25])
    assert sel.widths == [2, 2] and [len(k) for k in sel.kept()] == [2, 2]


def one_conv1d_net(weights: list[float], length: int = 4):
    """A VGG on sequences with one 1-D conv (kernel 3) whose channel c is ``weights[c]`` times the input itself."""
    spec = VGGSpec(in_shape=(1, length), num_classes=2, features=(len(weights),), neuron=QP_NEURON)
    model = build(spec, seed=0)
    with torch.no_grad():
        conv = model.body.layers[0]
        conv.weight.zero_()
        for c, w in enumerate(weights):
            conv.weight[c, 0, 1] = w
    return model


def test_sca_and_l1_on_sequences_by_hand_and_svs_refused_with_the_reason():
    # the same currents as on images: channel 0 mean |U| 0.7875, channel 1 0.459375, channel 2 0
    model = one_conv1d_net([1.0, -0.5, 0.0])
    sel = select(model, "sca", "layer", Inputs(torch.full((3, 1, 4), 0.6), T=4), keep=2 / 3)
    assert sel.scores[0] == pytest.approx(torch.tensor([0.7875, 0.459375, 0.0]))
    assert sel.kept()[0].tolist() == [0, 1]
    # l1 of (C_out, C_in, k) filters: |1|, |-0.5|, 0
    assert score(model, "l1").values[0].tolist() == [1.0, 0.5, 0.0]
    assert l1_filter_scores(torch.tensor([[[1.0, -2.0, 0.5]], [[0.0, 0.0, -1.0]]])).tolist() == [3.5, 1.0]
    with pytest.raises(ValueError, match=r"importance 'svs' on a network with 1-D convolutions \(body.layers.0\): "
                                         "SVS is not applicable on sequences"):
        select(model, "svs", "layer", Inputs(torch.full((3, 1, 4), 0.6), T=4), keep=0.5)


def test_feeding_layers_of_an_imported_net():
    imported = SequentialSpec((2, 16), (
        Layer.of("conv1d", 4, kernel_size=3), Layer.of("batchnorm1d"), Layer.of("maxpool1d", kernel_size=2),
        Layer.of("lif", neuron=QP_NEURON), Layer.of("flatten"), Layer.of("dropout", p=0.1),
        Layer.of("linear", 5), Layer.of("lif", neuron=QP_NEURON), Layer.of("linear", 2)))
    assert feeding_layers(build(imported)) == {"body.layers.3": "body.layers.0", "body.layers.7": "body.layers.6"}


def test_importances_keep_per_layer_fractions_on_a_trained_shape_net():
    spec = VGGSpec(in_shape=(1, 8, 8), num_classes=10, features=(8, "P", 16), hidden=(12,), neuron=QP_NEURON)
    model = build(spec, seed=0)
    x = torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    for name in ("sca", "svs", "l1"):
        sel = select(model, name, "layer", Inputs(x, T=2), keep=[0.5, 0.25, 1.0])
        assert sel.widths == [4, 4, 12], name
        assert [s.shape[0] for s in sel.scores] == [8, 16, 12]
        assert all(bool((s >= 0).all()) for s in sel.scores)
    with pytest.raises(ValueError, match="keep=\\[0.5\\]: expected one fraction or 3"):
        select(model, "svs", "layer", Inputs(x, T=2), keep=[0.5])


def test_random_scores_on_per_layer_widths():
    spec = VGGSpec(in_shape=(1, 8, 8), num_classes=10, features=(8, "P", 16), neuron=QP_NEURON)
    model = build(spec, seed=0)
    sel = plan(score(model, "random", seed=3), "layer", keep=[0.25, 0.5])
    assert sel.widths == [2, 8] and sel.importance == "random" and sel.options["keep"] == [0.25, 0.5]
    assert [len(k) for k in sel.kept()] == [2, 8]


def test_score_stability_is_one_for_identical_batches_and_lower_for_different_ones():
    x = torch.zeros(2, 1, 4, 4)
    x[0, 0, 2] = 1.0
    x[1, 0] = torch.eye(4)
    model = one_conv_net([2.0, 0.5, 2.0], size=4)
    same = score_stability(model, [x, x.clone(), x.clone()], "svs", T=1)
    assert same == {"body.layers.1": pytest.approx(1.0)}
    # batch 1 has ranks (1, 0, 1), batch 2 ranks (4, 0, 4): same direction, cosine 1 again
    assert score_stability(model, [x[:1], x[1:]], "svs", T=1)["body.layers.1"] == pytest.approx(1.0)
    # T = 3 on uniform images of intensity 1 and 0.3; per position (weights 2, 0.5, 2):
    # SCA  1.0: U = 2, 2, 2 (spike, reset, ...) -> 2 | U = 0.5, 0.75, 0.875 -> 0.70833
    #      0.3: U = 0.6, 0.9, 1.05 -> 0.85         | U = 0.15, 0.225, 0.2625 -> 0.2125
    # SVS  channels 0 and 2 fire on a uniform map (rank 1), channel 1 never: (1, 0, 1) both times
    bright, dim = torch.ones(1, 1, 4, 4), torch.full((1, 1, 4, 4), 0.3)
    a = torch.tensor([2.0, (0.5 + 0.75 + 0.875) / 3, 2.0])
    b = torch.tensor([0.85, 0.2125, 0.85])
    expected = float(a @ b / (a.norm() * b.norm()))
    assert score_stability(model, [bright, dim], "sca", T=3)["body.layers.1"] == pytest.approx(expected, abs=1e-6)
    assert expected < 0.999
    assert score_stability(model, [bright, dim], "svs", T=3)["body.layers.1"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="1 batch\\(es\\): expected at least 2"):
        score_stability(model, [x], "svs", T=1)
    with pytest.raises(ValueError, match="unknown importance 'rank'"):
        score_stability(model, [x, x], "rank", T=1)
    # every importance scores channels, PCA too (each channel's membrane variance)
    assert 0 <= score_stability(model, [x, x], "pca-variance", T=1)["body.layers.1"] <= 1.0 + 1e-12

"""Rank agreement of channel scores across batches (snnkit.compress.stability), on hand-made cases."""
from __future__ import annotations

import pytest
import torch

from snnkit.compress.stability import kept_count, rank_agreement, score_agreement, spearman, topk_overlap
from test_qpsnn_criteria import one_conv_net


def test_spearman_of_same_reversed_and_tied_orders():
    v = torch.tensor([0.1, 0.5, 0.2, 0.9])
    assert spearman(v, 10 * v + 3) == pytest.approx(1.0)  # any increasing map keeps the order
    assert spearman(v, -v) == pytest.approx(-1.0)
    # ranks (0, 1, 2) against (1, 0, 2): d = (1, 1, 0), rho = 1 - 6 * 2 / (3 * 8) = 0.5
    assert spearman(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([2.0, 1.0, 3.0])) == pytest.approx(0.5)
    # ties share their mean rank: (0.5, 0.5, 2) against (0, 1, 2); Pearson of the ranks = sqrt(3) / 2
    assert spearman(torch.tensor([1.0, 1.0, 3.0]), torch.tensor([1.0, 2.0, 3.0])) == pytest.approx(3 ** 0.5 / 2)
    assert spearman(torch.ones(3), torch.tensor([1.0, 2.0, 3.0])) == 0.0  # a constant vector ranks nothing
    assert spearman(torch.ones(3), torch.zeros(3)) == 1.0
    with pytest.raises(ValueError, match="expected the same channels"):
        spearman(torch.ones(3), torch.ones(4))
    with pytest.raises(ValueError, match=r"expected one score per channel, \(C,\) with C >= 2"):
        spearman(torch.ones(1), torch.ones(1))


def test_topk_overlap_counts_shared_kept_channels_and_breaks_ties_by_index():
    a = torch.tensor([4.0, 3.0, 2.0, 1.0])
    b = torch.tensor([4.0, 1.0, 3.0, 2.0])
    assert topk_overlap(a, b, 1) == 1.0
    assert topk_overlap(a, b, 2) == 0.5  # {0, 1} against {0, 2}
    assert topk_overlap(a, b, 4) == 1.0
    # all tied: both keep channels 0 and 1, as the planners would
    assert topk_overlap(torch.ones(4), torch.tensor([1.0, 1.0, 0.0, 0.0]), 2) == 1.0
    with pytest.raises(ValueError, match=r"k=0: expected an integer number of kept channels in \[1, 4\]"):
        topk_overlap(a, b, 0)


def test_kept_count_rounds_like_the_layer_planner():
    assert kept_count(32, 0.6) == 19
    assert kept_count(10, 0.05) == 1
    with pytest.raises(ValueError, match=r"keep=0: expected a fraction of channels kept in \(0, 1\]"):
        kept_count(10, 0)


def test_rank_agreement_averages_every_pair_of_batches():
    v = torch.tensor([1.0, 2.0, 3.0])
    s = torch.tensor([2.0, 1.0, 3.0])
    out = rank_agreement(torch.stack([v, v, s]), keep=2 / 3)  # pairs (v, v), (v, s), (v, s)
    assert out["spearman"] == pytest.approx((1 + 0.5 + 0.5) / 3)
    assert out["overlap"] == pytest.approx((1 + 0.5 + 0.5) / 3)  # top 2: {1, 2} against {0, 2}
    with pytest.raises(ValueError, match=r"expected \(K, C\) with K >= 2 batches"):
        rank_agreement(v.unsqueeze(0), keep=0.5)


def test_score_agreement_on_a_hand_made_network():
    # T = 3, uniform images 1.0 and 0.3 (weights 2, 0.5, 1.2):
    # SCA 1.0: U = 2 (spike every step) -> 2 | 0.5, 0.75, 0.875 -> 0.708 | 1.2 -> 1.2
    #     0.3: 0.6, 0.9, 1.05 -> 0.85        | 0.15 .. 0.2625 -> 0.2125   | 0.36, 0.54, 0.63 -> 0.51
    # order (0, 2, 1) both times: Spearman 1, top-2 overlap 1
    model = one_conv_net([2.0, 0.5, 1.2], size=4)
    bright, dim = torch.ones(1, 1, 4, 4), torch.full((1, 1, 4, 4), 0.3)
    out = score_agreement(model, [bright, dim], "sca", T=3, keep=2 / 3)
    assert out == {"body.layers.1": {"spearman": pytest.approx(1.0), "overlap": 1.0}}
    # SVS: on the bright image channels 0 and 2 fire (rank 1), channel 1 never: (1, 0, 1);
    # on the dim one only channel 0 reaches the threshold (at step 3): (1, 0, 0)
    # ranks (1.5, 0, 1.5) against (2, 0.5, 0.5): Pearson 0.5; top 2 {0, 2} against {0, 1}: 0.5
    out = score_agreement(model, [bright, dim], "svs", T=3, keep=2 / 3)["body.layers.1"]
    assert out["spearman"] == pytest.approx(0.5)
    assert out["overlap"] == 0.5
    with pytest.raises(ValueError, match=r"1 batch\(es\): expected at least 2"):
        score_agreement(model, [bright], "svs", T=3, keep=0.5)

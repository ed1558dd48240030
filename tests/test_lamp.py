"""LAMP scores: a hand-computed vector, masked entries, one global threshold over layers."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from snnkit.compress.importance import score
from snnkit.compress.lamp import lamp_scores
from snnkit.compress.masks import layer_sparsity, prune_global
from snnkit.weights import effective_weight


def lamp_importance(net: nn.Module) -> dict[str, torch.Tensor]:
    """The "lamp" importance's weight scores, by weight name."""
    return score(net, "lamp", level="weight").as_dict()


def test_lamp_scores_of_a_hand_computed_vector():
    # |w| ascending: 0.5, 1, 2, 3 (w^2: 0.25, 1, 4, 9; tail sums 14.25, 14, 13, 9)
    w = torch.tensor([2.0, -0.5, 3.0, 1.0])
    expected = torch.tensor([4 / 13, 0.25 / 14.25, 1.0, 1 / 14])
    torch.testing.assert_close(lamp_scores(w), expected)


def test_lamp_scores_keep_the_shape_and_give_the_largest_weight_one():
    w = torch.tensor([[1.0, -4.0], [2.0, 0.0]])
    s = lamp_scores(w)
    assert s.shape == w.shape
    # w^2 ascending 0, 1, 4, 16: tails 21, 21, 20, 16
    torch.testing.assert_close(s, torch.tensor([[1 / 21, 1.0], [4 / 20, 0.0]]))


def test_zeros_score_zero_and_do_not_change_the_others():
    w = torch.tensor([2.0, -0.5, 3.0, 1.0])
    with_zeros = torch.tensor([2.0, 0.0, -0.5, 0.0, 3.0, 1.0])
    s = lamp_scores(with_zeros)
    assert s[1] == 0 and s[3] == 0
    torch.testing.assert_close(s[[0, 2, 4, 5]], lamp_scores(w))
    assert torch.equal(lamp_scores(torch.zeros(3)), torch.zeros(3))


def test_ties_are_broken_by_position():
    s = lamp_scores(torch.tensor([1.0, 1.0]))
    torch.testing.assert_close(s, torch.tensor([0.5, 1.0]))


def test_lamp_scores_reject_what_is_not_a_weight():
    with pytest.raises(ValueError, match="expected a torch.Tensor"):
        lamp_scores([1.0, 2.0])
    with pytest.raises(ValueError, match="at least one entry"):
        lamp_scores(torch.zeros(0))


def two_layer() -> nn.Sequential:
    """Layer 0 holds large weights, layer 1 small ones: magnitude alone would empty layer 1."""
    net = nn.Sequential(nn.Linear(2, 2, bias=False), nn.Linear(2, 2, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[10.0, 20.0], [30.0, 40.0]]))
        net[1].weight.copy_(torch.tensor([[0.1, 0.2], [0.3, 0.4]]))
    return net


def test_one_global_threshold_over_lamp_scores_sets_each_layers_amount():
    # both layers have the same relative spread, so the same LAMP scores:
    # w^2 ~ 1, 4, 9, 16 -> 1/30, 4/29, 9/25, 1. Removing half of all 8 weights takes the two
    # lowest of each layer, where global magnitude would take all four of layer 1.
    net = two_layer()
    scores = lamp_importance(net)
    torch.testing.assert_close(scores["0.weight"], scores["1.weight"])
    torch.testing.assert_close(scores["1.weight"].flatten(), torch.tensor([1 / 30, 4 / 29, 9 / 25, 1.0]))
    prune_global(net, 0.5, scores=scores)
    assert layer_sparsity(net) == {"0.weight": 0.5, "1.weight": 0.5}

    magnitude = two_layer()
    prune_global(magnitude, 0.5)
    assert layer_sparsity(magnitude) == {"0.weight": 0.0, "1.weight": 1.0}


def test_lamp_importance_scores_the_masked_weight():
    net = two_layer()
    prune_global(net, 0.25, scores=lamp_importance(net))  # 2 of 8: the lowest of each layer
    with torch.no_grad():
        net[1].weight_orig.mul_(2.0)  # not yet seen by module.weight (no forward pass since)
    w = effective_weight(net, "1.weight")
    torch.testing.assert_close(w, torch.tensor([[0.0, 0.4], [0.6, 0.8]]))
    # remaining w^2 ~ 4, 9, 16 (tails 29, 25, 16)
    torch.testing.assert_close(lamp_importance(net)["1.weight"],
                               torch.tensor([[0.0, 4 / 29], [9 / 25, 1.0]]))
    with pytest.raises(ValueError, match="parameter '2.weight' is not in the model"):
        effective_weight(net, "2.weight")

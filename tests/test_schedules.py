"""Compression schedules (isolated, cumulative, joint) and the fine-tuning run that follows one."""
from __future__ import annotations

import pytest

from snnkit.compress.schedules import COMPRESSION_SCHEDULES, Phase, cumulative, isolated, joint


def test_registry_holds_the_three_schedules():
    assert COMPRESSION_SCHEDULES.names() == ("isolated", "cumulative", "joint")
    with pytest.raises(ValueError, match="unknown compression schedule 'gradual'; expected one of: isolated, cumulative, joint"):
        COMPRESSION_SCHEDULES.get("gradual")


def test_isolated_applies_one_method_from_the_start():
    assert isolated(4, prune=False, quantize=True) == [Phase(4, False, True)]
    assert isolated(4, prune=True, quantize=False) == [Phase(4, True, False)]
    with pytest.raises(ValueError, match="'isolated' applies exactly one method"):
        isolated(4, prune=True, quantize=True)
    with pytest.raises(ValueError, match="'isolated' applies exactly one method"):
        isolated(4, prune=False, quantize=False)


def test_cumulative_prunes_first_and_quantizes_from_half_way():
    assert cumulative(6) == [Phase(3, True, False), Phase(3, True, True)]
    assert cumulative(5) == [Phase(2, True, False), Phase(3, True, True)]
    assert cumulative(1) == [Phase(1, True, True)]  # no first half: the same as joint
    assert sum(p.epochs for p in cumulative(7)) == 7
    with pytest.raises(ValueError, match="'cumulative' needs both True"):
        cumulative(4, quantize=False)


def test_joint_switches_everything_on_at_once():
    assert joint(3) == [Phase(3, True, True)]
    assert joint(3, prune=False) == [Phase(3, False, True)]


@pytest.mark.parametrize("epochs", [0, -1, 2.5, True])
def test_schedules_reject_bad_epochs_by_name(epochs):
    for name in COMPRESSION_SCHEDULES:
        with pytest.raises(ValueError, match=f"epochs={epochs!r}: expected an integer >= 1"):
            COMPRESSION_SCHEDULES.get(name)(epochs, prune=True, quantize=name != "isolated")

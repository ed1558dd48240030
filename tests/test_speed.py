"""Measured inference speed and dense operation counts (snnkit.metrics.speed)."""
from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from snnkit.compress.surgery import shrink
from snnkit.encoding import model_input
from snnkit.metrics.speed import compare_speed, dense_macs, time_inference
from snnkit.models import VGGSpec, build


class Sleeper(nn.Module):
    """A model whose forward pass takes ``seconds``."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(self.seconds)
        return x


def test_dense_macs_counts_every_layer_at_every_step():
    # conv 1 -> 4 (3x3) on 4x4: 16 * 4 * 9 = 576; pool to 2x2; conv 4 -> 2: 4 * 2 * 36 = 288;
    # linear 2*2*2 = 8 -> 3: 24. Per step 888; T = 3 -> 2664, whatever the spikes.
    spec = VGGSpec(in_shape=(1, 4, 4), num_classes=3, features=(4, "P", 2))
    model = build(spec, seed=0)
    x = model_input(torch.rand(5, 1, 4, 4, generator=torch.Generator().manual_seed(0)), 3)
    assert dense_macs(model, x) == 3 * (576 + 288 + 24)
    ann = build(spec, spiking=False, seed=0)
    assert dense_macs(ann, torch.rand(5, 1, 4, 4)) == 888


def test_dense_macs_of_a_sequence_net_and_its_shrunk_copy():
    # conv 1 -> 4 (k 3, padding 1) on L = 8: 8 * 4 * 3 = 96 (padding taps included: the CPU
    # multiplies them); pool to 4; conv 4 -> 4: 4 * 4 * 12 = 192; linear 4*4 = 16 -> 3: 48.
    spec = VGGSpec(in_shape=(1, 8), num_classes=3, features=(4, "P", 4))
    model = build(spec, seed=0)
    x = model_input(torch.rand(5, 1, 8, generator=torch.Generator().manual_seed(0)), 2)  # (T, B, C, L)
    assert dense_macs(model, x) == 2 * (96 + 192 + 48)
    small = shrink(model, [[0, 2], [1, 3]])  # 2 channels each: 8*2*3 + 4*2*6 + 8*3 = 48 + 48 + 24
    assert dense_macs(small, x) == 2 * (48 + 48 + 24)
    report = compare_speed(model, small, x, repeats=2, warmup=0, threads=1)  # runs; no timing is checked
    assert len(report.times_a) == len(report.times_b) == 2 and report.batch_size == 5


def test_compare_speed_finds_the_ratio_of_two_known_durations_and_restores_state():
    slow, fast = Sleeper(0.004), Sleeper(0.001)
    slow.train()
    fast.eval()
    threads = torch.get_num_threads()
    report = compare_speed(slow, fast, torch.zeros(2, 3), repeats=5, warmup=1, threads=1)
    assert len(report.times_a) == len(report.times_b) == 5
    assert report.median_a >= 0.004 and report.median_b >= 0.001  # a sleep never ends early
    # the ratio itself is a timing (a loaded machine may delay either sleep): it is checked
    # on known times below, not on measured ones
    assert report.threads == 1 and report.batch_size == 2
    assert torch.get_num_threads() == threads and slow.training and not fast.training
    assert "speedup" in repr(report)
    paired = compare_speed(fast, fast, torch.zeros(1), repeats=3, warmup=0)
    paired.times_a, paired.times_b = [1.0, 2.0, 9.0], [0.5, 2.0, 1.0]  # ratios 2, 1, 9: median 2
    assert paired.speedup == 2.0 and paired.median_a == 2.0 and paired.median_b == 1.0
    assert len(time_inference(fast, torch.zeros(1), repeats=3, warmup=0)) == 3


def test_speed_arguments_are_checked():
    m = Sleeper(0.0)
    with pytest.raises(ValueError, match="repeats=0: expected an integer >= 1"):
        compare_speed(m, m, torch.zeros(1), repeats=0)
    with pytest.raises(ValueError, match="warmup=-1: expected an integer >= 0"):
        time_inference(m, torch.zeros(1), warmup=-1)
    with pytest.raises(ValueError, match="threads=0: expected None"):
        time_inference(m, torch.zeros(1), threads=0)

"""Functions shared by the interop tests: weights and inputs on which float sums are exact.

Two implementations of the same network may sum a convolution in different orders (snnkit
runs convolutions over all steps at once in channels-last layout; snntorch and the NIR
readers run them step by step, some on one unbatched sample). With float weights the sums
then differ by a rounding (about 1e-7) and a membrane that close to its threshold can
flip a spike. On dyadic values (multiples of 1/16 for weights, 1/8 for inputs, spikes 0/1)
every sum is exact in float32 whatever the order, so two implementations of the same
computation must agree to the last bit: what the tests check.
"""
from __future__ import annotations

import torch
from torch import nn

from snnkit.models import lif_layers, probe

WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.Linear)


@torch.no_grad()
def dyadic_(model: nn.Module, gain: float = 4.0, step: float = 1 / 16) -> nn.Module:
    """Scale every conv/linear weight and bias by ``gain`` and round it to ``step``; returns ``model``."""
    for m in model.modules():
        if isinstance(m, WEIGHTED):
            for p in (m.weight, m.bias):
                if p is not None:
                    p.copy_(torch.round(p * gain / step) * step)
    return model


def dyadic_input(shape: tuple[int, ...], seed: int = 0, top: int = 16) -> torch.Tensor:
    """Random inputs in {0, 1/8, ..., (top - 1)/8}."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, top, shape, generator=gen).float() / 8


def run_with_membranes(net: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``net(x)`` and the membranes (T, B, ...) of every LIF layer, under no_grad."""
    mems: dict[str, torch.Tensor] = {}
    with torch.no_grad(), probe(net, lambda name, s, m: mems.__setitem__(name, m.clone())):
        out = net(x)
    return out, mems


def spike_rates(net: nn.Module, x: torch.Tensor) -> dict[str, float]:
    """Fraction of (step, sample, neuron) entries that spike, per LIF layer."""
    rates: dict[str, float] = {}
    with torch.no_grad(), probe(net, lambda name, s, m: rates.__setitem__(name, float(s.mean()))):
        net(x)
    assert len(rates) == len(lif_layers(net))
    return rates

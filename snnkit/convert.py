"""ANN-to-SNN conversion by threshold balancing.

The SNN twin of a trained ANN gets the ANN's weights unchanged, and each LIF layer's
threshold is set to a high percentile (default 99.9th) of the pre-activations of the
ReLU it replaces, measured on calibration inputs. The percentile rather than the maximum
ignores rare outliers, which would otherwise set thresholds so high that neurons hardly
fire at small T. Papers 1 and 2 start from networks converted this way and then fine-tune
them with surrogate gradients.
"""
from __future__ import annotations

import torch
from torch import nn

from .models import Net, build, lif_layers

__all__ = ["activation_percentiles", "convert"]


def _percentile(values: torch.Tensor, q: float) -> float:
    flat = values.reshape(-1).float()
    k = min(flat.numel(), max(1, int(round(q / 100.0 * flat.numel()))))
    return float(flat.kthvalue(k).values)


@torch.no_grad()
def activation_percentiles(ann: Net, x: torch.Tensor, percentile: float = 99.9) -> dict[str, float]:
    """The ``percentile`` of the input to every ReLU of ``ann`` on the batch ``x`` (B, C, H, W).

    Returns ``{relu module name: value}``; module names are shared with the SNN twin's
    LIF layers.
    """
    if not 0 < percentile <= 100:
        raise ValueError(f"percentile={percentile}: expected a number in (0, 100]")
    acts: dict[str, torch.Tensor] = {}
    hooks = [
        m.register_forward_hook(lambda mod, inp, out, name=name: acts.__setitem__(name, inp[0].detach()))
        for name, m in ann.named_modules()
        if isinstance(m, nn.ReLU)
    ]
    was_training = ann.training
    ann.eval()
    try:
        ann(x)
    finally:
        ann.train(was_training)
        for h in hooks:
            h.remove()
    return {name: _percentile(a, percentile) for name, a in acts.items()}


@torch.no_grad()
def convert(ann: Net, x: torch.Tensor, percentile: float = 99.9) -> Net:
    """The SNN twin of ``ann`` with its weights and percentile thresholds.

    ``x`` (B, C, H, W) is a calibration batch of training inputs. A layer whose
    percentile is not positive (a dead layer) keeps the spec's threshold.
    """
    if ann.spiking:
        raise ValueError("convert() takes an ANN (built with spiking=False); got an SNN")
    snn = build(ann.spec, spiking=True)
    missing, unexpected = snn.load_state_dict(ann.state_dict(), strict=False)
    assert not unexpected, unexpected
    thresholds = activation_percentiles(ann, x, percentile)
    for name, lif in lif_layers(snn):
        value = thresholds.get(name)
        if value is not None and value > 0:
            lif.threshold.fill_(value)
    return snn

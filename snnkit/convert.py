"""ANN-to-SNN conversion by threshold balancing.

Each LIF layer's threshold is set to a high percentile lambda_l (:data:`PERCENTILE`, the
99.9th, unless a caller says otherwise: paper 2 uses the 99.7th) of the
pre-activations of the ReLU it replaces, measured on calibration inputs; the percentile
rather than the maximum ignores rare outliers, which would otherwise set thresholds so
high that neurons hardly fire at small T.

A spiking layer firing at rate r stands for the ANN activation a = lambda_l * r, but its
spikes have height 1. So the weights of the layer that reads those spikes are multiplied
by lambda_l (its bias is not: it is already in ANN units); the first layer reads the
analog input and keeps its weights. Then every layer's input current matches the ANN's
pre-activation and the output layer accumulates the ANN's logits. Without that rescaling
each layer would receive 1/lambda of its input, compounding with depth.

Papers 1 and 2 start from networks converted this way and then fine-tune them with
surrogate gradients.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from .models import CONV_TYPES, Net, build, is_chain
from .neurons import LIF
from .recording import recording

__all__ = ["MODE", "MODES", "PERCENTILE", "activation_percentiles", "convert"]

#: The one default percentile of the ReLU pre-activations that sets a layer's threshold.
PERCENTILE = 99.9
#: The two normalisations of :func:`convert` (the same spikes, a different scale).
MODES = ("thresholds", "weights")
#: The one default normalisation: thresholds 1, weights rescaled (see :func:`convert`).
MODE = "weights"


def _percentile(values: torch.Tensor, q: float) -> float:
    flat = values.reshape(-1).float()
    k = min(flat.numel(), max(1, int(round(q / 100.0 * flat.numel()))))
    return float(flat.kthvalue(k).values)


@torch.no_grad()
def activation_percentiles(ann: Net, x: torch.Tensor, percentile: float = PERCENTILE) -> dict[str, float]:
    """The ``percentile`` of the input to every ReLU of ``ann`` on the batch ``x`` (B, C, H, W).

    Returns ``{relu module name: value}``; module names are shared with the SNN twin's
    LIF layers.
    """
    if not 0 < percentile <= 100:
        raise ValueError(f"percentile={percentile}: expected a number in (0, 100]")
    acts: dict[str, torch.Tensor] = {}
    hooks = [(m, lambda mod, inp, out, name=name: acts.__setitem__(name, inp[0].detach()))
             for name, m in ann.named_modules() if isinstance(m, nn.ReLU)]
    with recording(ann, hooks):
        ann(x)
    return {name: _percentile(a, percentile) for name, a in acts.items()}


@torch.no_grad()
def convert(ann: Net, x: torch.Tensor, percentile: float = PERCENTILE, mode: str = MODE) -> Net:
    """The SNN twin of a chain-shaped ``ann`` (VGG, or an imported net's SequentialSpec; 1-D or
    2-D convolutions), balanced on the calibration batch ``x`` (B, C, H, W) or (B, C, L).

    Two equivalent normalisations (the same spikes in exact arithmetic; they differ in
    the scale that fine-tuning then works at; :data:`MODE`, ``"weights"``, is the default):

    * ``"thresholds"`` (as papers 1 and 2 describe it): threshold_l = lambda_l, and the
      weights reading layer l's spikes are multiplied by lambda_l.
    * ``"weights"`` (data-based weight normalisation, Diehl et al. 2015): thresholds 1,
      and the weights into layer l are multiplied by lambda_(l-1) / lambda_l (the output
      layer by lambda_(L-1)). Needs a net without batch-norm. It keeps every layer at
      the same scale, so the fine-tuning's Adam steps (a fixed size per parameter) move
      every threshold and weight by the same relative amount; with "thresholds", layers
      with large percentiles hardly move.

    A layer whose percentile is not positive (a dead layer) keeps its threshold and is
    treated as lambda = its threshold. Residual nets are not converted: an identity
    shortcut cannot carry the rescaling (train them directly instead).
    """
    if ann.spiking:
        raise ValueError("convert() takes an ANN (built with spiking=False); got an SNN")
    if not is_chain(ann.spec):
        raise ValueError(f"convert() supports chain-shaped nets (a VGGSpec, or the SequentialSpec of an imported "
                         f"net); got a {type(ann.spec).__name__}")
    if mode not in MODES:
        raise ValueError(f"mode={mode!r}: expected one of {MODES}")
    if mode == "weights" and any(isinstance(m, _BatchNorm) for m in ann.modules()):
        raise ValueError("mode='weights' needs a net without batch-norm; use mode='thresholds'")
    snn = build(ann.spec, spiking=True)
    _, unexpected = snn.load_state_dict(ann.state_dict(), strict=False)
    assert not unexpected, unexpected
    percentiles = activation_percentiles(ann, x, percentile)
    names = {m: n for n, m in snn.named_modules()}
    layers = list(snn.body.layers)

    def lam(lif: LIF) -> float:
        value = percentiles.get(names[lif], 0.0)
        return value if value > 0 else float(lif.threshold.mean())

    scale = 1.0  # ANN units carried by one unit of the current layer input (1: analog input)
    for i, layer in enumerate(layers):
        if isinstance(layer, (*CONV_TYPES, nn.Linear)):
            if mode == "thresholds":
                layer.weight.mul_(scale)
            else:
                nxt = next((m for m in layers[i + 1:] if isinstance(m, (LIF, *CONV_TYPES, nn.Linear))), None)
                out = lam(nxt) if isinstance(nxt, LIF) and names[nxt] in percentiles else 1.0
                layer.weight.mul_(scale / out)
                if layer.bias is not None:
                    layer.bias.div_(out)
        elif isinstance(layer, LIF):
            value = lam(layer)
            if names[layer] in percentiles and percentiles[names[layer]] > 0:
                layer.threshold.fill_(value if mode == "thresholds" else 1.0)
            scale = value  # a spike of this layer stands for lambda_l in ANN units
    return snn

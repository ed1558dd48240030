"""Recording what every LIF layer does on a set of inputs.

Importances that look at activity (PCA of membrane potentials, SVS of spike maps, SCA of
membrane magnitudes, attention) all start here: run the model on some inputs and keep,
for every LIF layer, its membrane potential or its spikes averaged over the T steps::

    mem = layer_activity(snn, data.train.x[:256], T=25)       # {layer: (N, C, H, W), (N, C, L) or (N, C)}
    spk = layer_activity(snn, data.train.x[:256], T=25, kind="spikes")

:func:`prunable_layers` names the activation layers whose widths a spec lists, i.e. the layers
a planner chooses channels for.
"""
from __future__ import annotations

from typing import Iterable

import torch
from torch import Tensor, nn

from ..encoding import model_input
from ..models import CONV_TYPES, LIF, ResNetSpec, is_chain, is_spiking, lif_layers
from ..recording import recording

__all__ = ["KINDS", "layer_activity", "prunable_layers", "batches"]

#: What :func:`layer_activity` can record.
KINDS = ("membrane", "spikes", "membrane-magnitude")


def batches(x: object, batch_size: int) -> Iterable[Tensor]:
    """Input batches from a tensor (chunked), a Split (its ``x``) or an iterable of batches."""
    if hasattr(x, "x") and hasattr(x, "y"):  # a snnkit.data.Split
        x = x.x
    if isinstance(x, Tensor):
        if x.dim() < 2 or x.shape[0] == 0:
            raise ValueError(f"input of shape {tuple(x.shape)}: expected a non-empty batch (N, ...)")
        return x.split(batch_size)
    if isinstance(x, Iterable):
        return (b[0] if isinstance(b, (tuple, list)) else b for b in x)
    raise TypeError(f"x={type(x).__name__}: expected a tensor (N, ...), a Split or an iterable of batches")


def layer_activity(
    model: nn.Module,
    x: object,
    *,
    T: int,
    encoding: str = "direct",
    kind: str = "membrane",
    batch_size: int = 256,
    seed: int = 0,
) -> dict[str, Tensor]:
    """Every LIF layer's membrane potential or spikes, averaged over the T steps, per sample.

    For a layer whose per-step tensor is (T, B, C, H, W) the result is (N, C, H, W), on
    sequences (T, B, C, L) it is (N, C, L), for a linear layer (T, B, C) it is (N, C): ``sum_t U[t] / T`` (U[t] as the layer records it,
    before that step's reset; membrane units, the threshold is one spike's worth) or
    ``sum_t S[t] / T`` (the firing rate, in spikes per step) or ``sum_t |U[t]| / T``
    (``kind="membrane-magnitude"``, the mean L1 membrane potential). The model runs in eval mode
    under ``torch.no_grad`` (:func:`snnkit.recording.recording`); its modes are restored.

    Args:
        model: a spiking network (:func:`snnkit.models.build` with ``spiking=True``).
        x: static inputs (N, C, H, W) or sequences (N, C, L) (cut into ``batch_size`` chunks), event
            inputs (N, T0, 2, H, W), a :class:`~snnkit.data.Split`, or an iterable of
            batches (tensors or ``(x, y)`` pairs).
        T: time steps to simulate, >= 1.
        encoding: how a static batch becomes spikes (see :func:`snnkit.encoding.model_input`).
        kind: "membrane", "spikes" or "membrane-magnitude".
        batch_size: chunk size for a tensor input.
        seed: seeds random encodings ("rate"), so the result is reproducible.

    Returns:
        ``{LIF layer name: tensor}`` in forward order, float32 on the CPU.
    """
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r}: expected one of {', '.join(KINDS)}")
    if not is_spiking(model) or not lif_layers(model):
        raise ValueError("layer_activity needs a spiking model with LIF layers; got one without")
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    gen = torch.Generator().manual_seed(seed)
    parts: dict[str, list[Tensor]] = {}

    def record(name: str, spikes: Tensor, mem: Tensor) -> None:
        value = spikes if kind == "spikes" else mem.abs() if kind == "membrane-magnitude" else mem
        parts.setdefault(name, []).append(value.float().mean(0).cpu())  # (T, B, ...) -> (B, ...)

    with recording(model, probe=record):
        for xb in batches(x, batch_size):
            model(model_input(xb.to(device), T, encoding, generator=gen))
    if not parts:
        raise ValueError("no input batches were given; expected at least one sample")
    return {name: torch.cat(chunks) for name, chunks in parts.items()}


def prunable_layers(model: nn.Module) -> list[str]:
    """Names of the activation layers whose widths are ``model.spec.widths``, in that order.

    The LIF layers of an SNN, the ReLUs of its ANN twin (same module names). A chain
    (:func:`snnkit.models.is_chain`: a VGG spec, or a :class:`~snnkit.interop.SequentialSpec`
    of an imported net): the activation after every conv and linear layer but the output
    layer (a pooling, batch-norm or dropout layer may sit between them). ResNet: the
    ``act1`` of every block.

    Raises:
        ValueError: a model not built from one of those specs, or a chain whose hidden conv or
            linear layer has no activation of its own before the next conv/linear layer, or
            only after a ``Flatten`` (then the neuron does not see the layer's channels), naming
            the layer.
    """
    spec = getattr(model, "spec", None)
    kind = LIF if is_spiking(model) else nn.ReLU
    if isinstance(spec, ResNetSpec):
        chosen = [n for n, m in model.named_modules() if isinstance(m, kind) and n.endswith(".act1")]
    elif is_chain(spec):
        chosen = _chain_activations(model, kind)
    else:
        raise ValueError(f"model.spec is a {type(spec).__name__}: expected a model built from a VGGSpec, a "
                         "ResNetSpec or a SequentialSpec (snnkit.interop)")
    if len(chosen) != len(spec.widths):
        raise ValueError(f"found {len(chosen)} prunable activation layers for {len(spec.widths)} widths in {spec}")
    return chosen


def _chain_activations(model: nn.Module, kind: type[nn.Module]) -> list[str]:
    """The activation (of type ``kind``) each hidden conv/linear layer of a chain feeds, in order."""
    layers = list(model.body.layers)
    names = {m: n for n, m in model.named_modules()}
    weighted = [i for i, m in enumerate(layers) if isinstance(m, (*CONV_TYPES, nn.Linear))]
    chosen = []
    for i, j in zip(weighted, weighted[1:]):  # every conv/linear layer but the last, and the next one
        between = layers[i + 1: j]
        act = next((m for m in between if isinstance(m, kind)), None)
        what = f"{names[layers[i]]} ({type(layers[i]).__name__})"
        if act is None:
            raise ValueError(f"{what} has no {kind.__name__} layer before the next conv/linear layer; channel "
                             "pruning needs every hidden conv/linear layer followed by its own neuron")
        flat = next((m for m in between[: between.index(act)] if isinstance(m, nn.Flatten)), None)
        if flat is not None:
            raise ValueError(f"{what} reaches its {kind.__name__} layer {names[act]} only after the Flatten "
                             f"{names[flat]}, so the neuron sees positions x channels, not channels; channel "
                             "pruning needs the neuron before the flatten")
        chosen.append(names[act])
    return chosen

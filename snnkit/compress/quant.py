"""Post-training weight quantizers for spiking networks.

Chowdhury, Garg and Roy (2021) quantize the trained weights of an SNN uniformly
and symmetrically to ``k`` bits, per layer (one scale per tensor) or per output
channel, and report that about 5 bits costs little accuracy. This module holds
those quantizers as pure tensor functions plus :func:`quantize_model`, which
applies one to every Conv/Linear weight of a copy of a model.

A quantizer is any callable ``fn(w: Tensor, bits: int) -> Tensor`` returning the
*dequantized* float tensor (same shape and dtype as ``w``), so that the network
runs unchanged in floating point while only taking values on the quantization
grid ("fake quantization"). New quantizers (learned scale, ReScaW, ...) are
added by putting such a callable into :data:`QUANTIZERS`.
"""

from __future__ import annotations

import copy
import numbers
from typing import Callable, Iterable, Union

import torch
from torch import Tensor, nn

from ..registry import Registry

__all__ = [
    "QUANTIZERS",
    "Quantizer",
    "quantization_levels",
    "quantize_model",
    "quantize_uniform",
    "quantize_uniform_channel",
    "relative_error",
]

#: Signature every registered quantizer follows: ``(weight, bits) -> dequantized weight``.
Quantizer = Callable[[Tensor, int], Tensor]

#: Module types whose ``weight`` is quantized by :func:`quantize_model`.
#: ``_ConvNd`` covers Conv1d/2d/3d and their transposed variants.
_QUANTIZABLE = (nn.modules.conv._ConvNd, nn.Linear)


def _check_bits(bits: object) -> int:
    """Return ``bits`` as an int, or raise ValueError if it is not an integer >= 1."""
    # bool is an Integral subclass but ``True`` bits is surely a mistake.
    if isinstance(bits, bool) or not isinstance(bits, numbers.Integral) or bits < 1:
        raise ValueError(f"bits must be an integer >= 1, got {bits!r}")
    return int(bits)


def _reduce_dims(w: Tensor, axis: int) -> tuple[int, ...]:
    """All dimensions of ``w`` except ``axis`` (the ones a per-channel statistic reduces)."""
    if not -w.dim() <= axis < w.dim():
        raise ValueError(
            f"axis must index a dimension of the {w.dim()}-D weight "
            f"(in [{-w.dim()}, {w.dim() - 1}]), got {axis}"
        )
    axis = axis % w.dim()
    return tuple(d for d in range(w.dim()) if d != axis)


def _scale(w: Tensor, bits: int, per_channel: bool, axis: int) -> Tensor:
    """Step size of the quantization grid, broadcastable against ``w``.

    For ``bits >= 2`` it is ``max|w| / (2^(bits-1) - 1)``; for ``bits == 1`` it is
    ``mean|w|`` (the magnitude of the two sign levels). Per tensor it is a 0-D
    tensor; per channel it keeps ``w``'s shape with size 1 on every dim but ``axis``.
    """
    a = w.abs()
    if bits == 1:
        stat = (
            a.mean(dim=_reduce_dims(w, axis), keepdim=True) if per_channel and w.dim() > 0 else a.mean()
        )
        return stat
    qmax = 2 ** (bits - 1) - 1
    stat = a.amax(dim=_reduce_dims(w, axis), keepdim=True) if per_channel and w.dim() > 0 else a.max()
    return stat / qmax


def quantize_uniform(w: Tensor, bits: int, per_channel: bool = False, axis: int = 0) -> Tensor:
    """Symmetric uniform fake quantization of a weight tensor.

    Each value is mapped to ``q * s`` with the integer
    ``q = clamp(round(w / s), -(2^(b-1) - 1), 2^(b-1) - 1)`` and step
    ``s = max|w| / (2^(b-1) - 1)``, the max taken over the whole tensor
    (``per_channel=False``) or over each slice along ``axis`` (``per_channel=True``;
    ``axis=0`` is the output channel of Conv and Linear weights). The grid is
    symmetric around 0 and contains 0, so ``2^b - 1`` levels are used (the most
    negative two's-complement code is left out, as usual for symmetric schemes).

    ``bits == 1`` is special: a symmetric grid with one bit would only hold 0,
    so it becomes sign (binary) quantization to ``{-s, +s}`` with
    ``s = mean|w|`` (per tensor or per channel), the scale that minimises the
    L2 error of a sign quantizer (as in XNOR-Net style binarization).
    Exact zeros map to ``+s`` so that only two values occur.

    An all-zero tensor (or channel) has ``s = 0`` and stays zero; no division
    by zero happens because the scale is replaced by 1 before dividing.

    Args:
        w: weight tensor of any shape (unitless float values).
        bits: bit width, an integer >= 1.
        per_channel: one scale per slice along ``axis`` instead of one per tensor.
        axis: channel dimension used when ``per_channel`` is true.

    Returns:
        The dequantized tensor, same shape, dtype and device as ``w``.

    Raises:
        ValueError: if ``bits`` is not an integer >= 1 or ``axis`` is out of range.
    """
    bits = _check_bits(bits)
    if not w.is_floating_point():
        raise ValueError(f"w must be a floating-point tensor, got dtype {w.dtype}")
    if w.numel() == 0:
        return w.clone()
    s = _scale(w, bits, per_channel, axis)
    if bits == 1:
        # torch.sign(0) == 0 would add a third level; send zeros to +s instead.
        sign = torch.where(w >= 0, torch.ones_like(w), -torch.ones_like(w))
        return sign * s
    qmax = 2 ** (bits - 1) - 1
    # Zero scale only happens for an all-zero tensor/channel: any divisor works there
    # since w / 1 == 0 rounds to 0 and 0 * s == 0.
    safe = torch.where(s > 0, s, torch.ones_like(s))
    q = torch.clamp(torch.round(w / safe), -qmax, qmax)
    return q * s


def quantize_uniform_channel(w: Tensor, bits: int) -> Tensor:
    """Per-output-channel (``axis=0``) :func:`quantize_uniform`; registry entry ``"uniform-channel"``."""
    return quantize_uniform(w, bits, per_channel=True, axis=0)


def _quantize_uniform_tensor(w: Tensor, bits: int) -> Tensor:
    """Per-tensor :func:`quantize_uniform`; registry entry ``"uniform"``."""
    return quantize_uniform(w, bits, per_channel=False)


def quantization_levels(w: Tensor, bits: int, per_channel: bool = False) -> Tensor:
    """The values :func:`quantize_uniform` can produce for ``w`` at ``bits`` bits.

    Useful to draw the grid over a weight histogram.

    Args:
        w: weight tensor of any shape.
        bits: bit width, an integer >= 1.
        per_channel: if true, one grid per output channel (``axis=0``).

    Returns:
        Per tensor: a 1-D ascending tensor of ``2^b - 1`` levels
        (``2`` levels ``[-s, +s]`` for ``bits == 1``). Per channel: shape
        ``(C, L)`` with one row of ``L`` ascending levels per channel along dim 0.
        Levels of a zero scale are all 0 (repeated, so the shape stays fixed).
    """
    bits = _check_bits(bits)
    if bits == 1:
        codes = torch.tensor([-1.0, 1.0], dtype=w.dtype, device=w.device)
    else:
        qmax = 2 ** (bits - 1) - 1
        codes = torch.arange(-qmax, qmax + 1, dtype=w.dtype, device=w.device)
    if per_channel and w.dim() > 0:
        s = _scale(w, bits, True, 0).reshape(-1, 1)  # (C, 1)
        return s * codes.unsqueeze(0)
    return _scale(w, bits, False, 0) * codes


def relative_error(w_q: Tensor, w: Tensor) -> float:
    """Relative L2 error ``||w_q - w|| / ||w||`` (0.0 when ``w`` is all zero and so is ``w_q``)."""
    ref = torch.linalg.vector_norm(w.double())
    diff = torch.linalg.vector_norm((w_q - w).double())
    if ref == 0:
        return 0.0 if diff == 0 else float("inf")
    return float(diff / ref)


#: Name -> quantizer ``fn(w, bits) -> dequantized w``. Extend with ``QUANTIZERS.register``.
QUANTIZERS: Registry[Quantizer] = Registry("quantizer")
QUANTIZERS.register("uniform", _quantize_uniform_tensor)
QUANTIZERS.register("uniform-channel", quantize_uniform_channel)

LayerFilter = Callable[[str, nn.Module], bool]
SkipSpec = Union[Iterable[str], LayerFilter, None]


def quantize_model(
    model: nn.Module,
    bits: int,
    per_channel: bool = False,
    layers: LayerFilter | None = None,
    skip: SkipSpec = None,
    quantizer: str | Quantizer | None = None,
) -> tuple[nn.Module, dict[str, float]]:
    """Quantize the Conv/Linear weights of a deep copy of ``model``.

    Biases, BatchNorm parameters, neuron parameters (thresholds, leaks) and
    buffers are left in full precision; only ``.weight`` of ``nn.Linear`` and
    ``nn.ConvNd``/``nn.ConvTransposeNd`` modules is replaced by its dequantized
    value (fake quantization). The input model is not modified.

    Layer selection, in order:

    1. candidates are the Conv/Linear modules in ``model.named_modules()`` order;
    2. ``layers(name, module) -> bool``, if given, keeps only candidates it accepts;
    3. ``skip`` removes layers: either a predicate ``(name, module) -> bool``
       (true = keep full precision) or an iterable of module names, where the
       tokens ``"first"`` and ``"last"`` mean the first/last remaining candidate
       (several methods keep those two layers in full precision).

    Args:
        model: network to quantize (not modified).
        bits: bit width, an integer >= 1 (see :func:`quantize_uniform` for 1 bit).
        per_channel: one scale per output channel instead of per tensor; ignored
            when ``quantizer`` is given.
        layers: optional predicate choosing the layers to quantize.
        skip: layers to keep in full precision (names, ``"first"``/``"last"``, or predicate).
        quantizer: a :data:`QUANTIZERS` key or a callable ``fn(w, bits)``;
            default ``"uniform-channel"`` if ``per_channel`` else ``"uniform"``.

    Returns:
        ``(model_q, errors)``: the quantized copy and ``{module name: relative L2
        error ||w_q - w|| / ||w||}`` for every quantized layer, in module order.
        ``model_q.quant_bits`` is set to ``{module name: bits}`` for the quantized
        layers (skipped layers are absent, i.e. full precision), for model-size
        accounting.

    Raises:
        ValueError: bad ``bits``, unknown quantizer name, or a ``skip`` name that
            matches no quantizable layer.
    """
    bits = _check_bits(bits)
    if quantizer is None:
        quantizer = "uniform-channel" if per_channel else "uniform"
    if isinstance(quantizer, str):
        fn = QUANTIZERS.get(quantizer)
    elif callable(quantizer):
        fn = quantizer
    else:
        raise ValueError(f"quantizer={quantizer!r}: expected one of {', '.join(QUANTIZERS)} or a callable")

    model_q = copy.deepcopy(model)
    candidates = [
        (name, m)
        for name, m in model_q.named_modules()
        if isinstance(m, _QUANTIZABLE) and getattr(m, "weight", None) is not None
    ]
    if layers is not None:
        candidates = [(n, m) for n, m in candidates if layers(n, m)]

    if skip is None:
        chosen = candidates
    elif callable(skip):
        chosen = [(n, m) for n, m in candidates if not skip(n, m)]
    else:
        tokens = [skip] if isinstance(skip, str) else list(skip)
        names = [n for n, _ in candidates]
        drop: set[str] = set()
        for tok in tokens:
            if tok == "first":
                drop.update(names[:1])
            elif tok == "last":
                drop.update(names[-1:])
            elif tok in names:
                drop.add(tok)
            else:
                raise ValueError(
                    f"skip entry {tok!r} is neither 'first', 'last' nor the name of a "
                    f"quantizable layer; candidates are {names}"
                )
        chosen = [(n, m) for n, m in candidates if n not in drop]

    errors: dict[str, float] = {}
    quant_bits: dict[str, int] = {}
    with torch.no_grad():
        for name, m in chosen:
            w = m.weight
            if isinstance(m, nn.modules.conv._ConvTransposeNd) and fn is quantize_uniform_channel:
                # Transposed conv weights are (in, out/groups, ...): output channel is dim 1.
                w_q = quantize_uniform(w.detach(), bits, per_channel=True, axis=1)
            else:
                w_q = fn(w.detach(), bits)
            errors[name] = relative_error(w_q, w.detach())
            w.copy_(w_q)
            quant_bits[name] = bits
    # Plain dict attribute: nn.Module stores it like any Python attribute and deepcopy keeps it.
    model_q.quant_bits = quant_bits
    return model_q, errors

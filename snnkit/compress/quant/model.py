"""Quantizing a whole model: a quantizer attached to every chosen Conv/Linear layer of a copy."""
from __future__ import annotations

import copy
from typing import Any, Callable, Mapping

from torch import nn

from ...weights import (QUANTIZERS, Skip, WeightQuantizer, attach_quantizer, check_bits, choose_layers,
                        effective_weight, masked_float_weight, out_axis)
from .grid import relative_error

__all__ = ["quantize_model"]


def quantize_model(
    model: nn.Module,
    bits: int,
    per_channel: bool = False,
    layers: Callable[[str, nn.Module], bool] | None = None,
    skip: Skip = None,
    quantizer: str | Callable[..., WeightQuantizer] | None = None,
    options: Mapping[str, Any] | None = None,
) -> tuple[nn.Module, dict[str, float]]:
    """Quantize the Conv/Linear weights of a deep copy of ``model``.

    Each chosen layer gets a quantizer fitted to its (masked) weight and attached with
    :func:`attach_quantizer`; read them back with :func:`quant_records`. Biases,
    batch-norm parameters, neuron parameters (thresholds, leaks) and buffers stay in full
    precision. The input model is not modified.

    The layers are chosen by :func:`snnkit.weights.choose_layers`: every Conv/Linear layer,
    those ``layers`` accepts if given, minus ``skip`` (names, ``"first"``/``"last"``, or a
    predicate; several methods keep those two layers in full precision).

    Args:
        model: network to quantize (not modified). Masked layers stay masked.
        bits: bit width, an integer >= 1.
        per_channel: one scale per output channel (the channel axis is 1 for transposed
            convs, 0 otherwise).
        layers: optional predicate choosing the layers to quantize.
        skip: layers to keep in full precision (names, ``"first"``/``"last"``, or predicate).
        quantizer: a :data:`QUANTIZERS` name or a factory with the same signature
            (default ``"uniform"``: symmetric, MSE scale).
        options: extra keywords for the quantizer, e.g. ``{"learn_scale": True}``.

    Returns:
        ``(model_q, errors)``: the quantized copy and ``{module name: relative L2 error
        ||w_q - w|| / ||w||}`` of every quantized layer's effective weight, in module order.

    Raises:
        ValueError: bad ``bits``, unknown quantizer name or option, a layer that is
            quantized already, or a ``skip`` name that matches no quantizable layer.
    """
    bits = check_bits(bits)
    if quantizer is None:
        quantizer = "uniform"
    factory = QUANTIZERS.get(quantizer) if isinstance(quantizer, str) else quantizer
    if not callable(factory):
        raise ValueError(f"quantizer={quantizer!r}: expected one of {', '.join(QUANTIZERS)} or a factory")
    model_q = copy.deepcopy(model)
    errors: dict[str, float] = {}
    for name, m in choose_layers(model_q, skip, layers):
        w = masked_float_weight(m).detach()
        kwargs = {"axis": out_axis(m), **({"per_channel": True} if per_channel else {}), **dict(options or {})}
        try:
            q = factory(w, bits, **kwargs)
        except TypeError as e:  # an option the quantizer does not take
            raise ValueError(f"quantizer {quantizer!r} on layer {name!r}: {e}") from None
        attach_quantizer(m, q)
        errors[name] = relative_error(effective_weight(m), w)
    return model_q, errors

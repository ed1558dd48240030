"""Quantize and prune channels, in either order (QP-SNN, Wei et al. 2025).

QP-SNN trains a network with its weights quantized (ReScaW), scores the channels of the
quantized network (SVS), removes the lowest-scored channels of every layer for real, and
fine-tunes the smaller network, still quantized. The reverse order trains in full
precision, prunes, and quantizes only for the fine-tuning. The paper finds the first order
better (74.73 against 73.34 % on CIFAR-100)::

    run = quantize_prune(build(spec, seed=0), data, cfg, order="quantize-then-prune",
                         criterion="svs", keep=[0.5, 0.75, 0.75], score_x=data.train.x[:256],
                         bits=2, quantizer="rescaw", epochs=8, finetune_epochs=3)
    run.model          # the pruned, quantized, fine-tuned net (a smaller Net)

The surgery step is :func:`~snnkit.compress.surgery.shrink`, which also takes a model that
carries quantizers (they are taken off, the float weights are cut, and quantizers of the
same kind are fitted again to the kept weights).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from torch import nn

from ..models import Net
from ..train import History, TrainConfig, fit
from .criteria import CRITERIA, Selection, with_keep
from .quant import quant_records, quantize_model
from .surgery import shrink

__all__ = ["ORDERS", "QPRun", "quantize_prune"]

#: The two orders of quantizing and pruning.
ORDERS = ("quantize-then-prune", "prune-then-quantize")


@dataclass
class QPRun:
    """What :func:`quantize_prune` returns.

    Attributes:
        model: the pruned, quantized and fine-tuned network.
        unpruned: the trained network the channels were scored on (quantized when the
            order is ``"quantize-then-prune"``, full precision otherwise).
        pruned: the network right after pruning (and quantizing), before fine-tuning.
        selection: the criterion's choice.
        order: one of :data:`ORDERS`.
        histories: training, then fine-tuning (training is absent when ``epochs == 0``).
    """

    model: Net
    unpruned: Net
    pruned: Net
    selection: Selection
    order: str
    histories: dict[str, History] = field(default_factory=dict)


def quantize_prune(
    model: Net,
    data,
    cfg: TrainConfig,
    *,
    order: str = "quantize-then-prune",
    criterion: str = "svs",
    keep: float | Sequence[float] = 0.5,
    score_x: object = None,
    bits: int = 4,
    quantizer: str = "rescaw",
    options: Mapping[str, Any] | None = None,
    skip: Sequence[str] = ("first", "last"),
    epochs: int = 0,
    finetune_epochs: int = 3,
    finetune_lr: float | None = None,
    criterion_options: Mapping[str, Any] | None = None,
) -> QPRun:
    """Train, score, prune and fine-tune a copy of ``model`` in the given order.

    ``"quantize-then-prune"``: attach the quantizer (unless ``model`` is quantized already),
    train ``epochs`` epochs, score the quantized network, prune, fine-tune quantized.
    ``"prune-then-quantize"``: train ``epochs`` epochs in full precision, score, prune,
    attach the quantizer, fine-tune. ``epochs=0`` takes ``model`` as trained already.

    Args:
        model: a net built by :func:`snnkit.models.build` (not modified).
        data: a :class:`~snnkit.data.Dataset`.
        cfg: training settings (T, encoding, batch size, seed, learning rate).
        order: one of :data:`ORDERS`.
        criterion: a :data:`~snnkit.compress.criteria.CRITERIA` name that scores channels.
        keep: fraction of channels each prunable layer keeps (one, or one per layer).
        score_x: the inputs the criterion sees (default: the first 256 training images).
        bits, quantizer, options, skip: the quantization (see
            :func:`~snnkit.compress.quant.quantize_model`); the first and last layers stay
            in full precision by default.
        epochs: training epochs before pruning.
        finetune_epochs: fine-tuning epochs after pruning.
        finetune_lr: learning rate of the fine-tuning (default ``cfg.lr``).
        criterion_options: extra options for the criterion (``eps``, ``seed``, ...).
    """
    if order not in ORDERS:
        raise ValueError(f"order={order!r}: expected one of {', '.join(ORDERS)}")
    fn = CRITERIA.get(criterion)
    quantized = bool(quant_records(model))
    if quantized and order == "prune-then-quantize":
        raise ValueError("order='prune-then-quantize' needs a full-precision model; this one is quantized "
                         "already (remove_quantizers, or use order='quantize-then-prune')")
    if score_x is None:
        score_x = data.train.x[:256]
    histories: dict[str, History] = {}

    def quantize(net: nn.Module) -> nn.Module:
        return quantize_model(net, bits, skip=list(skip), quantizer=quantizer, options=dict(options or {}))[0]

    net = quantize(model) if (order == "quantize-then-prune" and not quantized) else copy.deepcopy(model)
    if epochs:
        histories["train"] = fit(net, data, cfg.replace(epochs=epochs), desc=f"train ({order})")
    opts = dict(criterion_options or {})
    if criterion == "random":  # its own keep is one global fraction: draw all, then keep per layer
        selection = with_keep(fn(net, keep=1.0, seed=opts.get("seed", cfg.seed)), keep)
    else:
        selection = fn(net, score_x, T=cfg.T, encoding=cfg.encoding, keep=keep, **opts)
    pruned = shrink(net, selection)
    if order == "prune-then-quantize":
        pruned = quantize(pruned)
    small = copy.deepcopy(pruned)
    if finetune_epochs:
        ft = cfg.replace(epochs=finetune_epochs, lr=cfg.lr if finetune_lr is None else finetune_lr)
        histories["finetune"] = fit(small, data, ft, desc=f"fine-tune ({criterion})")
    return QPRun(model=small, unpruned=net, pruned=pruned, selection=selection, order=order, histories=histories)

"""The ANN-to-SNN recipe papers 1 and 2 share: train the ANN twin, convert, fine-tune.

One recipe, in two calls: :func:`spiking_stage` turns a trained (possibly masked) ANN into
a fine-tuned SNN; :func:`ann_to_snn` trains the ANN of a spec first::

    run = ann_to_snn(spec, data, TrainConfig(epochs=60, lr=3e-3), TrainConfig(epochs=4, T=25))
    run.snn, run.accuracies()       # the fine-tuned SNN; ANN, converted and SNN test accuracy
    spiking_stage(pruned_ann, data, TrainConfig(epochs=6, T=5), percentile=99.7, surrogate_scale=0.3)

Conversion (:func:`to_snn`) sets every threshold from a percentile of the ReLU
pre-activations (:data:`snnkit.convert.PERCENTILE`, 99.9, unless given: paper 2 uses 99.7)
in the normalisation :data:`snnkit.convert.MODE` (``"weights"``), and keeps the ANN's
pruning masks on the SNN, where fine-tuning cannot revive a masked weight. Paper 2 also
trains every layer's threshold with the surrogate ``scale * max(0, 1 - |U / theta - 1|)`` at
that threshold (``surrogate_scale``, :func:`follow_thresholds`); by default the spec's own
surrogate stays.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn

from .convert import MODE, PERCENTILE, convert
from .models import Net, ResNetSpec, VGGSpec, build, is_spiking, lif_layers
from .surrogate import Triangular
from .train import History, TrainConfig, evaluate, fit
from .weights import apply_masks, masks_of, remove_masks

__all__ = ["Hybrid", "ann_to_snn", "finetune_snn", "follow_thresholds", "spiking_stage", "to_snn"]


@dataclass
class Hybrid:
    """The three networks of the recipe and their test accuracies (fractions).

    Attributes:
        ann: the trained ANN twin.
        converted: the SNN right after conversion, before any fine-tuning (a separate copy).
        snn: the fine-tuned SNN.
        ann_accuracy, converted_accuracy, snn_accuracy: test accuracy of each (NaN without
            a test split, or when not evaluated).
        history: the SNN fine-tuning's :class:`~snnkit.train.History`.
    """

    ann: Net
    converted: Net
    snn: Net
    ann_accuracy: float
    converted_accuracy: float
    snn_accuracy: float
    history: History

    def accuracies(self) -> dict[str, float]:
        return {"ann": self.ann_accuracy, "converted": self.converted_accuracy, "snn": self.snn_accuracy}


class _FollowThresholds:
    """``after_step``: reset every LIF layer's surrogate to ``Triangular(width=theta, scale)``
    with its current threshold theta (a class, so the model stays picklable)."""

    def __init__(self, scale: float) -> None:
        self.scale = scale

    def __call__(self, model: nn.Module) -> None:
        follow_thresholds(model, self.scale)


def follow_thresholds(model: nn.Module, scale: float = 0.3) -> nn.Module:
    """Give every LIF layer the surrogate ``scale * max(0, 1 - |U / theta - 1|)`` at its threshold.

    That is :class:`~snnkit.surrogate.Triangular` with ``width = theta`` (the surrogate
    sees ``x = U - theta``); with a learnable threshold, call it after every step to track
    theta. Per-channel thresholds use their mean. Returns ``model``.
    """
    for _, lif in lif_layers(model):
        theta = float(lif.threshold.detach().abs().mean().clamp_min(1e-6))
        lif.surrogate = Triangular(width=theta, scale=scale)
    return model


@torch.no_grad()
def to_snn(ann: Net, x: torch.Tensor, *, percentile: float = PERCENTILE, mode: str = MODE,
           surrogate_scale: float | None = None) -> Net:
    """The SNN twin of a (masked) ANN, thresholds from a percentile of the pre-activations.

    The ANN's masks are baked into a copy for :func:`snnkit.convert.convert` and put back
    on the SNN, where training cannot revive a masked weight. The LIF settings (learnable
    leak and threshold, readout) come from ``ann.spec``.

    Args:
        ann: a trained ANN (masked or not); not modified.
        x: calibration inputs (B, C, H, W).
        percentile: of the ReLU pre-activations, in (0, 100].
        mode: ``"weights"`` or ``"thresholds"`` (:func:`snnkit.convert.convert`).
        surrogate_scale: give every layer the threshold-following surrogate
            (:func:`follow_thresholds`) of this scale; None keeps the spec's.
    """
    masks = masks_of(ann)
    snn = convert(remove_masks(copy.deepcopy(ann)), x, percentile, mode=mode)
    if masks:
        apply_masks(snn, masks)
    return snn if surrogate_scale is None else follow_thresholds(snn, surrogate_scale)


def finetune_snn(snn: Net, data, cfg: TrainConfig, *, surrogate_scale: float | None = None,
                 desc: str = "SNN") -> History:
    """Fine-tune an SNN from :func:`to_snn` in place: weights, thresholds and leaks, masks frozen.

    The masks (if any) stay as they are: masked weights stay exactly zero. With
    ``surrogate_scale`` the surrogates follow the learned thresholds after every step.
    """
    if not is_spiking(snn):
        raise ValueError("finetune_snn() takes an SNN; got an ANN (convert it with to_snn first)")
    follow = None if surrogate_scale is None else _FollowThresholds(surrogate_scale)
    return fit(snn, data, cfg, after_step=follow, desc=desc)


def _test_accuracy(model: nn.Module, data, cfg: TrainConfig) -> float:
    test = getattr(data, "test", None)
    return evaluate(model, test, cfg) if test is not None else math.nan


def spiking_stage(ann: Net, data, cfg: TrainConfig, *, percentile: float = PERCENTILE, mode: str = MODE,
                  calibration: int = 512, surrogate_scale: float | None = None, desc: str = "SNN",
                  ann_cfg: TrainConfig | None = None, evaluate: bool = True) -> Hybrid:
    """Convert a trained (compressed) ANN with :func:`to_snn` and fine-tune it with :func:`finetune_snn`.

    Args:
        ann: the trained ANN (masked or not; not modified).
        data: a :class:`~snnkit.data.Dataset`; its first ``calibration`` training images set
            the percentiles, its test split gives the accuracies.
        cfg: the fine-tuning settings (``T``, encoding, epochs, learning rate).
        percentile, mode, surrogate_scale: as :func:`to_snn`.
        ann_cfg: the settings the ANN's accuracy is measured with (default ``cfg``).
        evaluate: measure the three test accuracies (NaN otherwise).

    Returns:
        A :class:`Hybrid`: the ANN, the SNN right after conversion, the fine-tuned SNN and
        the test accuracy of each (ANN, converted and SNN at ``cfg.T``).
    """
    accuracy = _test_accuracy if evaluate else (lambda *_: math.nan)
    ann_accuracy = accuracy(ann, data, ann_cfg or cfg)
    converted = to_snn(ann, data.train.x[:calibration].to(cfg.device), percentile=percentile, mode=mode,
                       surrogate_scale=surrogate_scale)
    converted_accuracy = accuracy(converted, data, cfg)
    snn = copy.deepcopy(converted)
    history = finetune_snn(snn, data, cfg, surrogate_scale=surrogate_scale, desc=desc)
    return Hybrid(ann, converted, snn, ann_accuracy, converted_accuracy, accuracy(snn, data, cfg), history)


def ann_to_snn(
    spec: VGGSpec | ResNetSpec,
    data,
    ann_cfg: TrainConfig,
    snn_cfg: TrainConfig,
    *,
    percentile: float = PERCENTILE,
    mode: str = MODE,
    calibration: int = 512,
    surrogate_scale: float | None = None,
    seed: int | None = None,
    desc: str = "SNN",
) -> Hybrid:
    """Train the ANN twin of ``spec``, convert it, fine-tune the SNN; return all three.

    Args:
        spec: the architecture (a VGG spec: conversion does not support residual nets).
        data: a :class:`~snnkit.data.Dataset` (train, val and test splits are used).
        ann_cfg: the ANN's training settings.
        snn_cfg: the SNN fine-tuning settings (its ``T`` and ``encoding`` are the SNN's).
        percentile, mode, calibration, surrogate_scale: as :func:`spiking_stage`.
        seed: seeds the initial weights (default ``ann_cfg.seed``).
        desc: progress-bar label of the fine-tuning.
    """
    ann = build(spec, spiking=False, seed=ann_cfg.seed if seed is None else seed)
    fit(ann, data, ann_cfg, desc="ANN")
    return spiking_stage(ann, data, snn_cfg, percentile=percentile, mode=mode, calibration=calibration,
                         surrogate_scale=surrogate_scale, desc=desc, ann_cfg=ann_cfg)

"""Recipes: the multi-step pipelines several papers share, as one call each.

:func:`ann_to_snn` is the hybrid recipe of papers 1 and 2: train the ANN twin, convert it
to an SNN with percentile thresholds (:func:`snnkit.convert.convert`), then fine-tune the
SNN with surrogate gradients::

    run = ann_to_snn(spec, data, TrainConfig(epochs=60, lr=3e-3), TrainConfig(epochs=4, T=25))
    run.snn, run.accuracies()       # the fine-tuned SNN; ANN, converted and SNN test accuracy
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

from torch import nn

from .convert import convert
from .models import Net, ResNetSpec, VGGSpec, build
from .train import History, TrainConfig, evaluate, fit

__all__ = ["Hybrid", "ann_to_snn"]


@dataclass
class Hybrid:
    """The three networks of :func:`ann_to_snn` and their test accuracies (fractions).

    Attributes:
        ann: the trained ANN twin.
        converted: the SNN right after conversion, before any fine-tuning (a separate copy).
        snn: the fine-tuned SNN.
        ann_accuracy, converted_accuracy, snn_accuracy: test accuracy of each (NaN without
            a test split).
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


def _test_accuracy(model: nn.Module, data, cfg: TrainConfig) -> float:
    test = getattr(data, "test", None)
    return evaluate(model, test, cfg) if test is not None else float("nan")


def ann_to_snn(
    spec: VGGSpec | ResNetSpec,
    data,
    ann_cfg: TrainConfig,
    snn_cfg: TrainConfig,
    *,
    percentile: float = 99.9,
    mode: str = "weights",
    calibration: int = 512,
    seed: int | None = None,
    desc: str = "SNN",
) -> Hybrid:
    """Train the ANN twin of ``spec``, convert it, fine-tune the SNN; return all three.

    Args:
        spec: the architecture (a VGG spec: conversion does not support residual nets).
        data: a :class:`~snnkit.data.Dataset` (train, val and test splits are used).
        ann_cfg: the ANN's training settings.
        snn_cfg: the SNN fine-tuning settings (its ``T`` and ``encoding`` are the SNN's).
        percentile: threshold percentile of the ReLU pre-activations, in (0, 100].
        mode: "weights" or "thresholds", see :func:`snnkit.convert.convert`.
        calibration: how many training images calibrate the thresholds.
        seed: seeds the initial weights (default ``ann_cfg.seed``).
        desc: progress-bar label of the fine-tuning.
    """
    ann = build(spec, spiking=False, seed=ann_cfg.seed if seed is None else seed)
    fit(ann, data, ann_cfg, desc="ANN")
    ann_accuracy = _test_accuracy(ann, data, ann_cfg)
    x_calib = data.train.x[:calibration].to(ann_cfg.device)
    converted = convert(ann, x_calib, percentile, mode=mode)
    converted_accuracy = _test_accuracy(converted, data, snn_cfg)
    snn = copy.deepcopy(converted)
    history = fit(snn, data, snn_cfg, desc=desc)
    return Hybrid(ann, converted, snn, ann_accuracy, converted_accuracy, _test_accuracy(snn, data, snn_cfg), history)

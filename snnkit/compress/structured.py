"""Structured pruning as a method: score channels, keep some, cut the rest out, fine-tune.

::

    compress(snn, data, "channels", cfg, importance="svs", planner="layer", keep=0.5)
    compress(snn, data, "pca", cfg, threshold=0.99)             # paper 1's widths
    compress(snn, data, "random", cfg, channels=120)            # the baseline

Every variant is an importance (:mod:`snnkit.compress.importance`), a planner
(:mod:`snnkit.compress.planners`) and :func:`~snnkit.compress.surgery.shrink`, which returns a
genuinely smaller ``Net``; ``cfg.epochs`` of fine-tuning follow.
"""
from __future__ import annotations

from typing import Any

from torch import nn

from ..train import TrainConfig
from .core import METHODS, Compressed, Run
from .importance import score, with_seed
from .planners import Selection, plan, select, train_inputs
from .surgery import shrink

__all__ = ["channels", "pca", "random_channels"]


def _finish(model: nn.Module, selection: Selection, cfg: TrainConfig, run: Run) -> Compressed:
    small = shrink(model, selection)
    run.train(small, cfg, "fine-tune")
    return run.result(small, cfg.T, {"selection": selection, "widths": list(selection.widths),
                                     "original": list(selection.original)})


@METHODS.register("channels")
def channels(model: nn.Module, data, cfg: TrainConfig, run: Run, *, importance: str = "l1",
             planner: str = "layer", samples: int = 256, **choice: Any) -> Compressed:
    """Structured pruning with any importance and any planner, cut for real, fine-tuned.

    Params:
        importance: an :data:`~snnkit.compress.importance.IMPORTANCES` name (weight-level ones
            add their scores up per filter). A ``seed`` defaults to ``cfg.seed``.
        planner: ``"layer"`` (``keep``), ``"global"`` (``keep`` or ``channels``) or
            ``"variance"`` (``threshold``).
        samples: training inputs a data-driven importance records (at ``cfg.T``).
        choice: the planner's and the importance's options (``keep=0.5``, ``eps=...``).

    Info:
        ``selection``, ``widths`` (kept channels per layer), ``original`` (the layers' widths).
    """
    sel = select(model, importance, planner, train_inputs(data, cfg, importance, samples),
                 **with_seed(importance, choice, cfg.seed))
    return _finish(model, sel, cfg, run)


@METHODS.register("pca")
def pca(model: nn.Module, data, cfg: TrainConfig, run: Run, *, threshold: float = 0.99, importance: str = "l1",
        samples: int = 256) -> Compressed:
    """PCA widths (Chowdhury, Garg and Roy 2021), the best channels kept, cut, fine-tuned.

    Each layer keeps as many channels as principal components explain ``threshold`` of the
    variance of its time-averaged membrane potential over ``samples`` training inputs at
    ``cfg.T``. PCA says how many, not which: the paper retrains the narrower net from scratch;
    here, to keep the trained weights, each layer keeps its channels of highest
    ``importance`` (default the filter's L1 norm) and the smaller net is fine-tuned.

    Info:
        ``selection`` (its ``curves``: each layer's cumulative variance), ``widths``,
        ``original``.
    """
    inputs = train_inputs(data, cfg, "pca-variance", samples)
    variance = score(model, "pca-variance", inputs)
    scores = variance if importance == "pca-variance" else \
        score(model, importance, train_inputs(data, cfg, importance, samples), level="channel",
              **with_seed(importance, {}, cfg.seed))
    return _finish(model, plan(scores, "variance", threshold=threshold, curves=variance.curves), cfg, run)


@METHODS.register("random")
def random_channels(model: nn.Module, data, cfg: TrainConfig, run: Run, *, keep: float | None = None,
           channels: int | None = None, seed: int | None = None) -> Compressed:
    """The structured baseline: channels drawn at random over all layers (one ranking of
    seeded uniform scores, at least one channel per layer), cut, fine-tuned.

    Params:
        keep: fraction of all channels kept, or ``channels``: how many in all (e.g. as many
            as another method kept).
        seed: seeds the draw (default ``cfg.seed``).

    Info:
        ``selection``, ``widths``, ``original``.
    """
    sel = select(model, "random", "global", seed=cfg.seed if seed is None else seed,
                 **{k: v for k, v in (("keep", keep), ("channels", channels)) if v is not None})
    return _finish(model, sel, cfg, run)

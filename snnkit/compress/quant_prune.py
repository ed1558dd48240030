"""Quantize and prune channels, in either order (QP-SNN, Wei et al. 2025).

QP-SNN trains a network with its weights quantized (ReScaW), scores the channels of the
quantized network (SVS), removes the lowest-scored channels of every layer for real, and
fine-tunes the smaller network, still quantized. The reverse order trains in full
precision, prunes, and quantizes only for the fine-tuning. The paper finds the first order
better (74.73 against 73.34 % on CIFAR-100)::

    run = compress(build(spec, seed=0), data, "quantize-prune", TrainConfig(epochs=11, T=2),
                   order="quantize-then-prune", importance="svs", keep=[0.5, 0.75, 0.75],
                   bits=2, quantizer="rescaw", finetune_epochs=3)
    run.model          # the pruned, quantized, fine-tuned net (a smaller Net)
    run.info["pruned"] # the same right after pruning, before fine-tuning

Any importance and any channel planner can score and choose the channels
(:mod:`snnkit.compress.importance`, :mod:`snnkit.compress.planners`).

The surgery step is :func:`~snnkit.compress.surgery.shrink`, which also takes a model that
carries quantizers (they are taken off, the float weights are cut, and quantizers of the
same kind are fitted again to the kept weights).
"""
from __future__ import annotations

import copy
from typing import Any, Mapping, Sequence

from torch import nn

from ..models import Net
from ..train import TrainConfig, evaluate
from ..weights import Skip, quant_records
from .core import METHODS, Compressed, Run, compress
from .importance import IMPORTANCES, with_seed
from .planners import select, train_inputs
from .quant import quantize_model
from .surgery import shrink

__all__ = ["ORDERS", "quantize_prune", "quantize_prune_grid"]

#: The two orders of quantizing and pruning.
ORDERS = ("quantize-then-prune", "prune-then-quantize")


@METHODS.register("quantize-prune")
def quantize_prune(
    model: Net,
    data,
    cfg: TrainConfig,
    run: Run,
    *,
    order: str = "quantize-then-prune",
    importance: str = "svs",
    planner: str = "layer",
    keep: float | Sequence[float] | None = 0.5,
    bits: int = 4,
    quantizer: str = "rescaw",
    options: Mapping[str, Any] | None = None,
    skip: Skip = ("first", "last"),
    finetune_epochs: int | None = None,
    finetune_lr: float | None = None,
    samples: int = 256,
    **choice: Any,
) -> Compressed:
    """QP-SNN (Wei et al. 2025): quantize and prune channels, in either order.

    ``"quantize-then-prune"``: attach the quantizer (unless ``model`` is quantized already),
    train, score the channels of the quantized network, cut them out, fine-tune quantized.
    ``"prune-then-quantize"``: train in full precision, score, cut, attach the quantizer,
    fine-tune. Of ``cfg.epochs``, ``finetune_epochs`` come after the cut (default: all of
    them, the model being trained already) and the rest before.

    Params:
        order: one of :data:`ORDERS`.
        importance, planner: what scores the channels and how many each layer keeps (any
            pair: :mod:`~snnkit.compress.importance`, :mod:`~snnkit.compress.planners`);
            ``keep`` and further ``choice`` options (``channels``, ``threshold``, ``eps``,
            ``seed``) go to whichever takes them. A ``seed`` defaults to ``cfg.seed``.
        keep: fraction of channels kept (one, or one per prunable layer).
        bits, quantizer, options, skip: the quantization (see
            :func:`~snnkit.compress.quant.quantize_model`); the first and last layers stay
            in full precision by default.
        finetune_epochs: epochs after the cut (<= ``cfg.epochs``).
        finetune_lr: learning rate of the fine-tuning (default ``cfg.lr``).
        samples: training images a data-driven importance records.

    Info:
        ``selection`` (the :class:`~snnkit.compress.planners.Selection`), ``unpruned`` (the
        trained network the channels were scored on), ``pruned`` (right after the cut and
        quantization, before fine-tuning), ``widths`` (kept channels per layer).
    """
    if order not in ORDERS:
        raise ValueError(f"order={order!r}: expected one of {', '.join(ORDERS)}")
    finetune = cfg.epochs if finetune_epochs is None else finetune_epochs
    if isinstance(finetune, bool) or not isinstance(finetune, int) or not 0 <= finetune <= cfg.epochs:
        raise ValueError(f"finetune_epochs={finetune_epochs!r}: expected an integer in [0, cfg.epochs={cfg.epochs}]")
    IMPORTANCES.get(importance).check(model)  # a refusal before any training, not after it
    quantized = bool(quant_records(model))
    if quantized and order == "prune-then-quantize":
        raise ValueError("order='prune-then-quantize' needs a full-precision model; this one is quantized "
                         "already (remove_quantizers, or use order='quantize-then-prune')")

    def quantize(net: nn.Module) -> nn.Module:
        return quantize_model(net, bits, skip=skip, quantizer=quantizer, options=dict(options or {}))[0]

    net = quantize(model) if (order == "quantize-then-prune" and not quantized) else model
    run.train(net, cfg.replace(epochs=cfg.epochs - finetune), "train")
    selection = select(net, importance, planner, train_inputs(data, cfg, importance, samples),
                       **({} if keep is None else {"keep": keep}), **with_seed(importance, choice, cfg.seed))
    pruned = shrink(net, selection)
    if order == "prune-then-quantize":
        pruned = quantize(pruned)
    small = copy.deepcopy(pruned)
    ft = cfg.replace(epochs=finetune, lr=cfg.lr if finetune_lr is None else finetune_lr)
    run.train(small, ft, "fine-tune")
    return run.result(small, cfg.T, {"selection": selection, "unpruned": net, "pruned": pruned,
                                     "widths": list(small.spec.widths)})


def quantize_prune_grid(
    trained: Mapping[tuple[str, int], Net],
    data,
    cfg: TrainConfig,
    *,
    importances: Mapping[str, Sequence[str]],
    seeds: Sequence[int],
    **params: Any,
) -> list[dict[str, Any]]:
    """``"quantize-prune"`` for every seed, order and importance: QP-SNN's comparisons in one call.

    For each seed ``s`` (``cfg.seed`` replaced by it), each order in ``importances`` and each
    importance listed for it, the method runs from ``trained[order, s]`` (the network that
    order starts from: a quantized one for ``"quantize-then-prune"``, a full-precision one for
    ``"prune-then-quantize"``) with ``params``, and the test accuracy is measured right after
    the cut and after fine-tuning.

    Returns:
        One row per run, in that order: ``{"order", "importance", "seed", "before fine-tuning",
        "accuracy", "run"}`` (accuracies as fractions, ``run`` the :class:`Compressed`).
    """
    rows = []
    for s in seeds:
        run_cfg = cfg.replace(seed=s)
        for order, names in importances.items():
            for name in names:
                run = compress(trained[order, s], data, "quantize-prune", run_cfg, order=order, importance=name,
                               **params)
                rows.append({"order": order, "importance": name, "seed": s,
                             "before fine-tuning": evaluate(run.info["pruned"], data.test, run_cfg),
                             "accuracy": evaluate(run.model, data.test, run_cfg), "run": run})
    return rows


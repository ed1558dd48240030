"""Iterative pruning with weight rewinding (lottery-ticket style), by LAMP or a baseline rule.

Each round removes a fraction ``amount`` of the weights that are still there, rewinds the
survivors to their values at an early epoch, and retrains; the mask never changes during
training (masked weights are exactly zero in every forward pass and get no gradient, see
:mod:`snnkit.compress.masks`). After ``r`` rounds the sparsity is ``1 - (1 - amount)^r``
(:func:`snnkit.compress.schedules.iterative_sparsity`)::

    dense, early = train_with_rewind_point(build(spec, seed=0), data, cfg, rewind_epoch=1)
    rounds = iterative_prune(dense, data, method="lamp", amount=0.5, rounds=5,
                             rewind_state=early, epochs=4, cfg=cfg)
    [(r.sparsity, r.test_acc) for r in rounds]

How each round decides which weights go (:data:`PRUNING_RULES`):

* ``"lamp"``: one global threshold over every layer's LAMP scores
  (:func:`snnkit.compress.lamp.lamp_scores`), the method of Gou et al. (2025);
* ``"global"``: one global threshold over the weights' magnitudes ``|w|``;
* ``"uniform"``: every layer loses the same fraction of its remaining weights, by magnitude.

All three see the same schedule, the same rewind point and the same retraining, so they
differ only in how much each layer loses.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

from torch import Tensor, nn

from ..registry import Registry
from ..train import TrainConfig, evaluate, fit
from .lamp import lamp_importance
from .masks import global_sparsity, layer_sparsity, prunable_weights, prune_global, prune_layerwise, rewind

__all__ = [
    "PRUNING_RULES",
    "RoundResult",
    "iterative_prune",
    "prune_round",
    "train_with_rewind_point",
]

#: name -> ``rule(model, amount, names) -> {name: mask}``: one round of unstructured pruning.
PRUNING_RULES: Registry[Callable[[nn.Module, float, Sequence[str]], dict[str, Tensor]]] = Registry("pruning rule")


@PRUNING_RULES.register("lamp")
def _lamp_rule(model: nn.Module, amount: float, names: Sequence[str]) -> dict[str, Tensor]:
    return prune_global(model, amount, scores=lamp_importance(model, names), names=names)


@PRUNING_RULES.register("global")
def _global_rule(model: nn.Module, amount: float, names: Sequence[str]) -> dict[str, Tensor]:
    return prune_global(model, amount, names=names)


@PRUNING_RULES.register("uniform")
def _uniform_rule(model: nn.Module, amount: float, names: Sequence[str]) -> dict[str, Tensor]:
    return prune_layerwise(model, amount, names=names)


def prune_round(model: nn.Module, method: str, amount: float,
                names: Sequence[str] | None = None) -> dict[str, Tensor]:
    """One pruning round: mask ``amount`` of the remaining weights of ``names`` by ``method``.

    Args:
        model: modified in place (masks are added or tightened).
        method: one of :data:`PRUNING_RULES` (``"lamp"``, ``"global"``, ``"uniform"``).
        amount: fraction in [0, 1] of the weights not yet masked to mask now (for
            ``"uniform"``, of each layer's; for the others, over all layers together).
        names: the weights to prune (default: every Conv2d and Linear weight).

    Returns:
        The masks after the round, ``{name: 0/1 tensor}``.
    """
    rule = PRUNING_RULES.get(method)
    names = prunable_weights(model) if names is None else list(names)
    return rule(model, amount, names)


def train_with_rewind_point(model: nn.Module, data, cfg: TrainConfig, rewind_epoch: int,
                            **fit_kwargs) -> tuple[object, dict[str, Tensor]]:
    """Train ``model`` in place for ``cfg.epochs`` epochs and keep its weights after ``rewind_epoch``.

    The snapshot is taken inside the one training run (after the last optimizer step of
    epoch ``rewind_epoch``), so the learning-rate schedule is that of an uninterrupted run.
    ``rewind_epoch=0`` keeps the initial weights (the original lottery-ticket rewinding).

    Returns:
        ``(history, state)``: the :class:`~snnkit.train.History` and a deep copy of the
        state dict at the rewind point (weights, biases, batch-norm statistics, leaks).
    """
    if isinstance(rewind_epoch, bool) or not isinstance(rewind_epoch, int) or not 0 <= rewind_epoch <= cfg.epochs:
        raise ValueError(f"rewind_epoch={rewind_epoch!r}: expected an integer in [0, {cfg.epochs}] "
                         "(epochs trained before the snapshot)")
    train_split = getattr(data, "train", data)
    snapshot_at = rewind_epoch * -(-len(train_split) // cfg.batch_size)
    state: dict[str, Tensor] = {}
    steps = 0
    user_after = fit_kwargs.pop("after_step", None)

    def after_step(m: nn.Module) -> None:
        nonlocal steps
        steps += 1
        if user_after is not None:
            user_after(m)
        if steps == snapshot_at:
            state.update(copy.deepcopy(m.state_dict()))

    if snapshot_at == 0:
        state.update(copy.deepcopy(model.state_dict()))
    history = fit(model, data, cfg, after_step=after_step, **fit_kwargs)
    return history, state


@dataclass(frozen=True)
class RoundResult:
    """The network after one round of :func:`iterative_prune`.

    Attributes:
        round: 1, 2, ... (0 for the dense network, when reported).
        method: the pruning rule.
        sparsity: fraction of the pruned weights' entries that are masked, in [0, 1].
        layer_sparsity: the same per weight, ``{name: fraction}``.
        val_acc, test_acc: accuracy after retraining, fractions in [0, 1] (NaN without the split).
        seconds: wall time of the round (pruning, retraining, evaluation).
        masks: the masks after the round, ``{name: 0/1 tensor}``.
    """

    round: int
    method: str
    sparsity: float
    layer_sparsity: dict[str, float]
    val_acc: float
    test_acc: float
    seconds: float
    masks: dict[str, Tensor] = field(repr=False, default_factory=dict)


def iterative_prune(
    model: nn.Module,
    data,
    *,
    method: str,
    amount: float,
    rounds: int,
    rewind_state: Mapping[str, Tensor],
    epochs: int,
    cfg: TrainConfig,
    names: Sequence[str] | None = None,
    val=None,
    test=None,
    on_round: Callable[[RoundResult, nn.Module], None] | None = None,
) -> list[RoundResult]:
    """Prune ``model`` in place over ``rounds`` rounds, rewinding and retraining after each.

    Every round: (1) mask ``amount`` of the remaining weights by ``method``, scored on the
    weights as trained so far; (2) rewind every tensor but the masks to ``rewind_state``;
    (3) retrain ``epochs`` epochs (a fresh optimiser and cosine schedule from ``cfg.lr``,
    data order seeded by ``cfg.seed + round``); (4) test.

    Args:
        model: a trained network (e.g. from :func:`train_with_rewind_point`); modified in place.
        data: a :class:`~snnkit.data.Dataset` or a training split (then pass ``val``/``test``).
        method: one of :data:`PRUNING_RULES`.
        amount: fraction in (0, 1) of the remaining weights removed per round.
        rounds: number of rounds, an integer >= 1.
        rewind_state: the state dict to rewind to (the dense network at an early epoch).
        epochs: retraining epochs per round, an integer >= 0.
        cfg: training settings (its ``epochs`` and ``seed`` are replaced per round).
        names: the weights to prune (default: every Conv2d and Linear weight).
        on_round: called as ``on_round(result, model)`` after every round.

    Returns:
        One :class:`RoundResult` per round.
    """
    PRUNING_RULES.get(method)  # an unknown name fails before any work
    if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not 0 < amount < 1:
        raise ValueError(f"amount={amount!r}: expected a fraction in (0, 1) of the remaining weights per round")
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds={rounds!r}: expected an integer >= 1")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"epochs={epochs!r}: expected an integer >= 0")
    names = prunable_weights(model) if names is None else list(names)
    val = val if val is not None else getattr(data, "val", None)
    test = test if test is not None else getattr(data, "test", None)
    results = []
    for r in range(1, rounds + 1):
        t0 = time.perf_counter()
        masks = prune_round(model, method, amount, names)
        rewind(model, rewind_state)
        round_cfg = cfg.replace(epochs=epochs, seed=cfg.seed + r)
        if epochs > 0:
            fit(model, getattr(data, "train", data), round_cfg, val=None, desc=f"{method} round {r}")
        res = RoundResult(
            r, method, global_sparsity(model, names), layer_sparsity(model, names),
            evaluate(model, val, round_cfg) if val is not None else float("nan"),
            evaluate(model, test, round_cfg) if test is not None else float("nan"),
            time.perf_counter() - t0, masks,
        )
        results.append(res)
        if on_round is not None:
            on_round(res, model)
    return results

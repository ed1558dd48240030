"""Iterative pruning with weight rewinding (lottery-ticket style), by LAMP or a baseline rule.

Each round removes a fraction of the weights that are still there, rewinds the survivors
to their values at an early epoch, and retrains; the mask never changes during training
(masked weights are exactly zero in every forward pass and get no gradient, see
:mod:`snnkit.compress.masks`). After ``r`` rounds removing ``p`` each, the sparsity is
``1 - (1 - p)^r`` (:func:`snnkit.compress.schedules.iterative_sparsity`)::

    dense = compress(build(spec, seed=0), data, "dense", cfg, rewind_epoch=1)
    run = compress(dense.model, data, "iterative", cfg.replace(epochs=20), per_round=0.5, rounds=5,
                   rewind_state=dense.info["rewind_state"], evaluate=True, **RULES["lamp"])
    [(s.sparsity, s.test_acc) for s in run.history]

How each round decides which weights go is an importance and a planner
(:mod:`snnkit.compress.importance`, :mod:`snnkit.compress.planners`); the three rules papers
compare are presets of those (:data:`RULES`):

* ``"lamp"``: one global threshold over every layer's LAMP scores, the method of Gou et
  al. (2025);
* ``"global"``: one global threshold over the weights' magnitudes ``|w|``;
* ``"uniform"``: every layer loses the same fraction of its remaining weights, by magnitude;
* ``"uniform+"``: uniform, but the first layer stays dense and the output layer loses at
  most 80 % of its weights (Gale et al. 2019, the fair uniform baseline of LAMP's paper); the
  other layers lose more, so that the overall sparsity is the same as the other rules'
  (:class:`UniformPlusPlanner`).

All see the same schedule, the same rewind point and the same retraining, so they differ
only in how much each layer loses. With ``kl_threshold`` the method first chooses T by Gou
et al.'s KL rule on the starting network (:mod:`snnkit.compress.temporal`) and prunes at it.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping, Sequence

from torch import Tensor, nn

from ..train import TrainConfig
from ..weights import Skip, layer_of
from .core import METHODS, Compressed, Run
from .importance import make_importance, with_seed
from .importance import Scores
from .masks import global_sparsity, layer_sparsity, prunable_weights, prune_layerwise, rewind
from .planners import PLANNERS, Planner, make_planner
from .temporal import choose_timesteps, kl_by_timesteps

__all__ = ["RULES", "UniformPlusPlanner", "iterative", "uniform_plus_targets"]

#: The pruning rules of Gou et al.'s comparison, as importance and planner.
RULES: dict[str, dict[str, str]] = {
    "lamp": {"importance": "lamp", "planner": "global"},
    "global": {"importance": "magnitude", "planner": "global"},
    "uniform": {"importance": "magnitude", "planner": "layer"},
    "uniform+": {"importance": "magnitude", "planner": "uniform+"},
}


def uniform_plus_targets(sizes: Sequence[int], masked: Sequence[int], sparsity: float,
                         output_cap: float = 0.8) -> list[int]:
    """How many entries of each layer are masked after one Uniform+ step.

    The step masks ``sparsity`` of all remaining entries (counted over every layer, the first
    included), as the global rules do, but spreads them as Uniform+ does: the first layer
    keeps every entry, the last (output) layer ends at most ``output_cap`` masked, and every
    other layer ends at one common sparsity ``s`` (the smallest that masks enough; a layer
    already sparser than ``s`` loses nothing more). Where even ``s = 1`` with the capped
    output layer cannot mask enough, the middle layers keep one entry each and the step
    masks less than asked.

    Args:
        sizes: entries per layer, in network order (first layer first, output layer last);
            at least 3 layers.
        masked: entries already masked per layer, same order (0 for the first layer).
        sparsity: fraction in [0, 1) of the remaining entries to mask now.
        output_cap: the output layer's largest sparsity, in [0, 1].

    Returns:
        Entries masked per layer after the step (never fewer than ``masked``).
    """
    n = len(sizes)
    if n < 3 or len(masked) != n:
        raise ValueError(f"sizes={list(sizes)}, masked={list(masked)}: expected two lists of one count per layer, "
                         "at least 3 layers (first, middle, output)")
    if any(not 0 <= z <= c for z, c in zip(masked, sizes)):
        raise ValueError(f"masked={list(masked)}: expected counts in [0, size] for sizes={list(sizes)}")
    if isinstance(sparsity, bool) or not 0 <= sparsity < 1:
        raise ValueError(f"sparsity={sparsity!r}: expected a fraction in [0, 1) of the remaining entries")
    if isinstance(output_cap, bool) or not 0 <= output_cap <= 1:
        raise ValueError(f"output_cap={output_cap!r}: expected a fraction in [0, 1]")
    want = sum(masked) + round(sparsity * (sum(sizes) - sum(masked)))

    def at(s: float) -> list[int]:
        mid = [max(z, min(c - 1, round(s * c))) for z, c in zip(masked[1:-1], sizes[1:-1])]
        out = max(masked[-1], round(min(s, output_cap) * sizes[-1]))
        return [masked[0], *mid, out]

    lo, hi = 0.0, 1.0
    for _ in range(60):  # bisection on the common sparsity: the count masked grows with s
        mid_s = (lo + hi) / 2
        lo, hi = (mid_s, hi) if sum(at(mid_s)) < want else (lo, mid_s)
    return at(hi)


@dataclass(frozen=True)
class UniformPlusPlanner(Planner):
    """Uniform+ (Gale et al. 2019; LAMP's paper): ``sparsity`` of all remaining weights per
    step, the first layer dense, the output layer at most ``output_cap`` sparse, every other
    layer at one common sparsity (:func:`uniform_plus_targets`), by the scores within each layer.

    The first and last of the weights it is given are the first and output layers.
    """

    name: ClassVar[str] = "uniform+"
    sparsity: float | None = None
    output_cap: float = 0.8

    masker = staticmethod(prune_layerwise)

    def mask(self, model: nn.Module, scores: Scores, names: Sequence[str] | None = None) -> dict[str, Tensor]:
        """Mask ``model`` in place (the weights ``names``, default all scored, in network order)."""
        chosen = list(scores.names) if names is None else list(names)
        if self.sparsity is None:
            raise ValueError("planner 'uniform+' takes sparsity=<fraction of the remaining weights>; got none")
        current = layer_sparsity(model, chosen)
        sizes = [getattr(*layer_of(model, n)).numel() for n in chosen]
        masked = [round(current[n] * c) for n, c in zip(chosen, sizes)]
        target = uniform_plus_targets(sizes, masked, self.sparsity, self.output_cap)
        amounts = {n: (t - z) / (c - z) if c > z else 0.0 for n, t, z, c in zip(chosen, target, masked, sizes)}
        values = scores.as_dict()
        return prune_layerwise(model, amounts, names=chosen, scores={n: values[n] for n in chosen})


PLANNERS.register(UniformPlusPlanner.name, UniformPlusPlanner)


@METHODS.register("iterative")
def iterative(
    model: nn.Module,
    data,
    cfg: TrainConfig,
    run: Run,
    *,
    sparsity: float | None = None,
    per_round: float | None = None,
    rounds: int = 1,
    importance: str = "lamp",
    planner: str = "global",
    rewind_state: Mapping[str, Tensor] | None = None,
    kl_threshold: float | None = None,
    skip: Skip = None,
) -> Compressed:
    """Iterative pruning with rewinding (Gou et al. 2025): ``rounds`` rounds of prune, rewind, retrain.

    Every round: (1) mask ``per_round`` of the remaining weights by ``importance`` and
    ``planner``, scored on the weights as trained so far; (2) rewind every tensor but the
    masks to ``rewind_state``; (3) retrain ``cfg.epochs / rounds`` epochs (a fresh optimiser
    and cosine schedule from ``cfg.lr``, data order seeded by ``cfg.seed + round``).

    Params:
        sparsity: the final fraction of weights removed, in (0, 1); each round removes
            ``1 - (1 - sparsity)^(1 / rounds)`` of the remaining ones. Or ``per_round``: that
            fraction directly.
        rounds: number of rounds, an integer >= 1 that divides ``cfg.epochs``.
        importance, planner: a weight-level importance ("lamp", "magnitude", "random") and
            "global" or "layer"; :data:`RULES` names the usual pairs.
        rewind_state: the state dict to rewind to (default: the starting model's).
        kl_threshold: first choose T by the KL rule on the starting model (the chosen T
            replaces ``cfg.T``).
        skip: layers never pruned.

    Info:
        ``per_round`` (the fraction removed per round), ``sparsity`` (the final fraction of
        the pruned weights that is masked), ``choice`` (the :class:`~snnkit.compress.temporal.KLChoice`,
        with ``kl_threshold`` only).
    """
    if (sparsity is None) == (per_round is None):
        raise ValueError(f"sparsity={sparsity!r}, per_round={per_round!r}: expected exactly one of them")
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1 or cfg.epochs % rounds:
        raise ValueError(f"rounds={rounds!r}: expected an integer >= 1 that divides cfg.epochs={cfg.epochs} "
                         "(every round retrains the same number of epochs)")
    if sparsity is not None:
        if isinstance(sparsity, bool) or not isinstance(sparsity, (int, float)) or not 0 < sparsity < 1:
            raise ValueError(f"sparsity={sparsity!r}: expected a fraction in (0, 1) of the weights removed")
        per_round = 1.0 - (1.0 - sparsity) ** (1.0 / rounds)
    if isinstance(per_round, bool) or not isinstance(per_round, (int, float)) or not 0 < per_round < 1:
        raise ValueError(f"per_round={per_round!r}: expected a fraction in (0, 1) of the remaining weights")
    info: dict[str, Any] = {"per_round": float(per_round)}
    if kl_threshold is not None:
        info["choice"] = choose_timesteps(kl_by_timesteps(model, getattr(data, "train", data), cfg.T, cfg),
                                          kl_threshold)
        cfg = cfg.replace(T=info["choice"].T)
    state = copy.deepcopy(model.state_dict()) if rewind_state is None else rewind_state
    names = prunable_weights(model, skip=skip)
    imp = make_importance(importance, **with_seed(importance, {}, cfg.seed))
    cut = make_planner(planner, sparsity=per_round)
    for r in range(1, rounds + 1):
        cut.mask(model, imp(model, level="weight"), names)
        rewind(model, state)
        run.train(model, cfg.replace(epochs=cfg.epochs // rounds, seed=cfg.seed + r), f"round {r}")
    info["sparsity"] = global_sparsity(model, names)
    return run.result(model, cfg.T, info)

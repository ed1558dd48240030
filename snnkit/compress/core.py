"""One entry point for every compression method, one result type.

::

    run = compress(snn, data, "quantize-prune", TrainConfig(epochs=4, T=4), bits=2, keep=0.5)
    run.model        # the compressed, trained network (the input is never modified)
    run.history      # one Step per stretch of training (a phase, a round, a T), in order
    run.info         # what the method chose (widths, T, masks, ...), keys in METHODS' docs
    run.T            # the time steps it runs at

``compress(model, data, method, cfg, **params)`` looks ``method`` up in :data:`METHODS`,
works on a copy of ``model``, and takes its epochs (and T, learning rate, batch size, seed)
from ``cfg`` (:class:`~snnkit.train.TrainConfig`); a method with several phases splits
``cfg.epochs`` between them as its documentation says. Every method speaks one vocabulary:

* ``sparsity``: the fraction of weights removed (masked), in [0, 1);
* ``keep``: the fraction of channels kept, in (0, 1] (one, or one per prunable layer);
* ``skip``: layers left alone: names, ``"first"``/``"last"``, or ``(name, module) -> bool``;
* ``importance`` and ``planner``: what scores channels or weights and what decides how many
  are kept (:mod:`snnkit.compress.importance`, :mod:`snnkit.compress.planners`).

With ``evaluate=True`` every step ends with the validation and test accuracy of the model
(when ``data`` has those splits); otherwise steps record only their training curves.

The methods register themselves from the modules that implement them (``"dense"`` here;
the others in :mod:`.structured`, :mod:`.schedules`, :mod:`.quant_prune`, :mod:`.sparse`,
:mod:`.temporal`, :mod:`.iterative`); ``METHODS.names()`` lists them once the package is
imported. Adding one: ``@METHODS.register(name)`` on ``fn(model, data, cfg, run, **params)``
that trains its own copy through ``run.train(...)`` and ends with ``return run.result(model,
T, info)``.
"""
from __future__ import annotations

import copy
import inspect
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from torch import nn

from ..models import is_spiking
from ..registry import Registry
from ..train import History, TrainConfig, evaluate, fit
from .masks import global_sparsity, layer_sparsity

__all__ = ["METHODS", "Compressed", "Method", "Run", "Step", "compress"]


@dataclass(frozen=True)
class Step:
    """One stretch of training inside a compression run (a phase, a round, a time step).

    Attributes:
        name: what the stretch was ("train", "fine-tune", "round 2", "T=6", ...).
        T: time steps it trained at (1 for an ANN).
        epochs: epochs it trained (0: the model was only evaluated).
        history: the per-epoch :class:`~snnkit.train.History` (loss, accuracy, validation).
        sparsity: fraction of the Conv/Linear weights masked after it, in [0, 1].
        layer_sparsity: the same per weight, ``{"body.layers.0.weight": fraction}``.
        val_acc, test_acc: accuracy after it (fractions; NaN unless ``evaluate=True``).
        seconds: wall time, training and evaluation.
    """

    name: str
    T: int
    epochs: int
    history: History
    sparsity: float
    layer_sparsity: dict[str, float]
    val_acc: float = math.nan
    test_acc: float = math.nan
    seconds: float = 0.0


@dataclass
class Compressed:
    """What :func:`compress` returns, the same fields for every method.

    Attributes:
        model: the compressed, trained network (masks and quantizers attached, or a smaller
            ``Net``); a new object, the input model is unchanged.
        method: its name in :data:`METHODS`.
        T: the time steps it runs at (1 for an ANN).
        history: one :class:`Step` per stretch of training, in order.
        info: what the method chose or measured, keys documented per method.
        seconds: wall time of the whole run.
    """

    model: nn.Module
    method: str
    T: int
    history: list[Step] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def test_acc(self) -> float:
        """The last step's test accuracy (NaN unless run with ``evaluate=True``)."""
        return self.history[-1].test_acc if self.history else math.nan


class Run:
    """What a method uses while it runs: trains through :meth:`train` (one :class:`Step`
    each) and ends with :meth:`result`.

    Attributes:
        method: the method's name; ``data``: its data; ``evaluate``: measure after each step.
        steps: the steps so far.
    """

    def __init__(self, method: str, data, evaluate: bool) -> None:
        self.method, self.data, self.evaluate = method, data, evaluate
        self.steps: list[Step] = []
        self._t0 = time.perf_counter()

    def train(self, model: nn.Module, cfg: TrainConfig, name: str, *, val=None, **fit_options) -> Step:
        """Train ``model`` in place for ``cfg.epochs`` epochs on the run's data (no epochs: only
        measure) and record a :class:`Step`.

        ``fit_options`` go to :func:`snnkit.train.fit` (``after_step``, ``extra_loss``); no
        validation during training unless ``val`` names a split (the step's own
        ``val_acc`` comes after it, with ``evaluate=True``).
        """
        t0 = time.perf_counter()
        history = History()
        if cfg.epochs:
            history = fit(model, self.data, cfg, val=val, desc=f"{self.method}: {name}", **fit_options)
        return self.record(model, cfg, name, history, seconds=time.perf_counter() - t0)

    def record(self, model: nn.Module, cfg: TrainConfig, name: str, history: History, *,
               test_acc: float | None = None, seconds: float = 0.0) -> Step:
        """Record a :class:`Step` for ``model`` trained by ``cfg`` elsewhere (a building block);
        with ``evaluate``, measure it (``test_acc``: already measured)."""
        t0 = time.perf_counter()
        val = self._accuracy(model, "val", cfg)
        test = self._accuracy(model, "test", cfg) if test_acc is None or not self.evaluate else test_acc
        step = Step(name, cfg.T if is_spiking(model) else 1, cfg.epochs, history, global_sparsity(model),
                    layer_sparsity(model), val, test, seconds + time.perf_counter() - t0)
        self.steps.append(step)
        return step

    def _accuracy(self, model: nn.Module, split: str, cfg: TrainConfig) -> float:
        part = getattr(self.data, split, None)
        return evaluate(model, part, cfg) if self.evaluate and part is not None else math.nan

    def result(self, model: nn.Module, T: int, info: Mapping[str, Any] | None = None) -> Compressed:
        """The :class:`Compressed` of this run (``T`` is 1 for an ANN, whatever is given)."""
        return Compressed(model, self.method, int(T) if is_spiking(model) else 1, list(self.steps),
                          dict(info or {}), time.perf_counter() - self._t0)


#: ``fn(model, data, cfg, run, **params) -> Compressed``: a method as :func:`compress` calls it.
Method = Callable[..., Compressed]

#: Every compression method by name: the five papers' and the baselines. Call them through
#: :func:`compress`; each entry's docstring lists its ``params`` and its ``info`` keys.
METHODS: Registry[Method] = Registry("compression method")


def compress(model: nn.Module, data, method: str, cfg: TrainConfig, *, evaluate: bool = False,
             **params) -> Compressed:
    """Compress a copy of ``model`` with ``method`` (a :data:`METHODS` name).

    Args:
        model: the network to start from; never modified (every method works on copies).
        data: a :class:`~snnkit.data.Dataset` (or a training :class:`~snnkit.data.Split`).
        method: a :data:`METHODS` name; ``METHODS.get(method).__doc__`` lists its params.
        cfg: training settings: epochs (the total, split between phases as the method says),
            T, learning rate, batch size, seed, device.
        evaluate: measure validation and test accuracy after every step.
        params: the method's parameters (one vocabulary: ``sparsity``, ``keep``, ``skip``,
            ``importance``, ``planner``, ``bits``, ...).

    Raises:
        ValueError: an unknown method, or a parameter the method does not take (the message
            names it and the method).
    """
    fn = METHODS.get(method)
    if not isinstance(cfg, TrainConfig):
        raise ValueError(f"cfg={type(cfg).__name__}: expected a snnkit.train.TrainConfig")
    signature = inspect.signature(fn)
    try:  # a misspelt parameter fails here, before any training
        signature.bind(model, data, cfg, None, **params)
    except TypeError as e:
        takes = [p.name for p in signature.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY]
        raise ValueError(f"method {method!r}: {e}; it takes {', '.join(takes) or 'no parameters'} (see "
                         f"METHODS.get({method!r}).__doc__)") from None
    run = Run(method, data, bool(evaluate))
    return fn(copy.deepcopy(model), data, cfg, run, **params)


@METHODS.register("dense")
def dense(model: nn.Module, data, cfg: TrainConfig, run: Run, *, rewind_epoch: int | None = None) -> Compressed:
    """The reference: trained ``cfg.epochs`` more epochs at ``cfg.T``, nothing removed.

    With a lower ``cfg.T`` than the model was trained at, this is *direct* temporal pruning
    (Chowdhury et al. 2021's baseline for :func:`gradual <snnkit.compress.temporal>`).

    Params:
        rewind_epoch: keep the state after that many epochs (0: the starting weights), the
            rewind point of iterative pruning (``info["rewind_state"]``).

    Info:
        ``rewind_state``: the state dict at ``rewind_epoch`` (only when asked for).
    """
    info: dict[str, Any] = {}
    after_step = None
    if rewind_epoch is not None:
        if isinstance(rewind_epoch, bool) or not isinstance(rewind_epoch, int) or not 0 <= rewind_epoch <= cfg.epochs:
            raise ValueError(f"rewind_epoch={rewind_epoch!r}: expected an integer in [0, {cfg.epochs}] (epochs "
                             "trained before the snapshot)")
        train_split = getattr(data, "train", data)
        after_step = _Snapshot(rewind_epoch * -(-len(train_split) // cfg.batch_size), info)
        if rewind_epoch == 0:
            info["rewind_state"] = copy.deepcopy(model.state_dict())
    run.train(model, cfg, "train", after_step=after_step)
    return run.result(model, cfg.T, info)


class _Snapshot:
    """``after_step`` that keeps a deep copy of the state dict after optimizer step ``at``."""

    def __init__(self, at: int, info: dict) -> None:
        self.at, self.info, self.steps = at, info, 0

    def __call__(self, model: nn.Module) -> None:
        self.steps += 1
        if self.steps == self.at:
            self.info["rewind_state"] = copy.deepcopy(model.state_dict())

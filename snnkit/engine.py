"""How the LIF layers run: compiled kernels, the eager engine, and the choice between them.

snnkit has two engines for the LIF recurrence of :mod:`snnkit.neurons`, with identical
spikes (both keep snntorch's order of floating-point operations) and gradients equal to
float rounding:

* **eager**: the whole-sequence autograd function :func:`snnkit.neurons.lif_sequence`, a
  handful of in-place tensor operations per step and a hand-written backward. It needs
  nothing but torch and starts at once.
* **compiled**: the same recurrence written as pure functions over a few steps
  (:func:`snnkit.neurons.lif_chunk` and its companions), each compiled by
  ``torch.compile`` into one loop over the neurons that reads the input current once and
  writes each output once; the backward pass recomputes the membranes instead of keeping
  (T, B, ...) of them. A LIF layer followed by a 2-wide max or average pool also runs the
  pool inside that loop, forward and backward (no full-size spike tensor, no pooling
  indices, no zero-filled pooling gradient).

Choosing (:func:`set_engine`, :func:`using`, or the environment variable
``SNNKIT_ENGINE`` read at import):

* ``"auto"`` (the default): eager until the process has run ``compile_after`` neuron
  updates (``T x`` neurons per layer call, summed over calls; default
  :data:`COMPILE_AFTER`, about a minute of eager LIF work on a small CPU), compiled from
  then on. Compiling costs tens of seconds per kernel the first time (later processes
  reuse torch's on-disk cache), so short runs, such as a notebook's smoke profile, never
  pay it; long runs switch once, deterministically (the count does not depend on time).
* ``"compiled"``: compiled from the first call (benchmarks, long training).
* ``"eager"``: never compile.

Whatever the choice, if ``torch.compile`` fails (no C++ compiler, an unsupported
platform) the call that failed is redone eagerly, a ``UserWarning`` says why once, and the
process stays on the eager engine; :func:`status` reports it. Inside a graph that
``torch.compile`` is tracing (a user compiling a whole model), layers use the eager engine.

:func:`compile_model` is a separate tool for inference: it runs a net on the compiled
kernels whatever the engine choice, or (nets the kernels do not cover, or on request)
compiles the per-step forward of the whole net (:meth:`snnkit.models._Step.stepwise`) as one
graph.
"""
from __future__ import annotations

import contextlib
import os
import warnings
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from torch import nn

__all__ = ["ENGINES", "COMPILE_AFTER", "set_engine", "using", "status", "use_compiled", "run_kernel",
           "compile_model"]

#: the engine choices (see the module docstring)
ENGINES = ("auto", "compiled", "eager")

#: neuron updates (neurons x steps, summed over LIF layer calls) after which "auto" compiles:
#: about a minute of eager LIF work on a 2-core CPU, and more than any notebook's smoke profile
COMPILE_AFTER = 30_000_000_000


@dataclass
class _State:
    mode: str = "auto"
    compile_after: int = COMPILE_AFTER
    neuron_steps: int = 0  # counted while the mode is "auto" and the engine is still eager
    switched: bool = False  # "auto" has passed compile_after
    failed: str | None = None  # why torch.compile failed, once it has


_state = _State()
_compiled: dict[Callable, Callable] = {}


def _check_mode(mode: str) -> None:
    if mode not in ENGINES:
        raise ValueError(f"engine {mode!r}: expected one of {', '.join(ENGINES)}")


def set_engine(mode: str, compile_after: int | None = None) -> None:
    """Choose the LIF engine for this process: "auto", "compiled" or "eager".

    ``compile_after`` (neuron updates, >= 0) sets when "auto" switches to compiled kernels;
    None keeps the current value. Setting "auto" starts its count from zero again.
    """
    _check_mode(mode)
    if compile_after is not None:
        if isinstance(compile_after, bool) or not isinstance(compile_after, int) or compile_after < 0:
            raise ValueError(f"compile_after={compile_after!r}: expected an integer >= 0 (neuron updates)")
        _state.compile_after = compile_after
    _state.mode = mode
    if mode == "auto":
        _state.neuron_steps, _state.switched = 0, False


@contextlib.contextmanager
def using(mode: str, compile_after: int | None = None) -> Iterator[None]:
    """Run the block with another engine (see :func:`set_engine`); the previous choice and
    count come back afterwards."""
    _check_mode(mode)
    saved = (_state.mode, _state.compile_after, _state.neuron_steps, _state.switched)
    set_engine(mode, compile_after)
    try:
        yield
    finally:
        _state.mode, _state.compile_after, _state.neuron_steps, _state.switched = saved


def status() -> dict:
    """Where the engine stands: ``mode`` (the choice), ``active`` ("compiled" or "eager",
    what a LIF layer called now would use), ``neuron_steps`` counted by "auto",
    ``compile_after``, and ``fallback`` (why torch.compile failed, or None)."""
    compiled = _state.failed is None and (_state.mode == "compiled" or (_state.mode == "auto" and _state.switched))
    return {"mode": _state.mode, "active": "compiled" if compiled else "eager", "neuron_steps": _state.neuron_steps,
            "compile_after": _state.compile_after, "fallback": _state.failed}


def use_compiled(neuron_steps: int) -> bool:
    """Whether a LIF layer call of ``neuron_steps`` updates should run compiled kernels.

    Called once per layer call; under "auto" it adds ``neuron_steps`` to the count.
    """
    if _state.failed is not None or _state.mode == "eager" or torch.compiler.is_compiling():
        return False
    if _state.mode == "compiled":
        return True
    if not _state.switched:
        _state.neuron_steps += int(neuron_steps)
        _state.switched = _state.neuron_steps >= _state.compile_after
    return _state.switched


def _compile(fn: Callable) -> Callable:
    if fn not in _compiled:
        # a kernel is compiled for fixed sizes first (fastest code), and again with symbolic
        # sizes once another size comes (another layer, the last partial batch): torch's
        # automatic dynamic shapes. Every option set (chunk length, reset, pool, layout) is a
        # recompile of the same function: allow more of them than dynamo's default 8
        config = torch._dynamo.config
        config.recompile_limit = max(getattr(config, "recompile_limit", 8), 64)
        _compiled[fn] = torch.compile(fn)
    return _compiled[fn]


def run_kernel(fn: Callable, *args):
    """``fn(*args)`` through ``torch.compile``; if compiling fails, eagerly (see module)."""
    if _state.failed is None:
        try:
            return _compile(fn)(*args)
        except Exception as err:  # noqa: BLE001 - any compiler failure means: run eagerly
            _state.failed = f"{type(err).__name__}: {' '.join(str(err).split())[:300]}"
            warnings.warn(f"torch.compile failed ({_state.failed}); the LIF layers run on the eager engine",
                          stacklevel=2)
    return fn(*args)


# ---------------------------------------------------------------------------------------
# whole-model compilation for inference


def _stepwise(model: nn.Module):
    """The per-step forward of a spiking :class:`~snnkit.models.Net`, else the model."""
    body = getattr(model, "body", None)
    if getattr(model, "spiking", False) and hasattr(body, "stepwise"):
        return body.stepwise
    return model


def _on_kernels(model: nn.Module) -> bool:
    """Whether ``model`` has LIF layers and the compiled kernels cover every one of them
    (:meth:`snnkit.neurons.LIF.runs_on_kernels`: fixed leak and threshold, a subtractive or
    zero reset)."""
    layers = [m for m in model.modules() if callable(getattr(m, "runs_on_kernels", None))]
    return bool(layers) and all(m.runs_on_kernels() for m in layers)


class CompiledInference(nn.Module):
    """Runs ``model`` compiled under ``torch.no_grad``, eagerly when gradients are on.

    ``kernels`` True: the model's own forward on the compiled LIF kernels (engine
    "compiled"); False: ``torch.compile`` of its per-step forward as one graph.
    """

    def __init__(self, model: nn.Module, kernels: bool = False, **compile_kwargs) -> None:
        super().__init__()
        self.model = model
        self.kernels = kernels
        self._compile_kwargs = compile_kwargs
        self._compiled = None if kernels else torch.compile(_stepwise(model), dynamic=False, **compile_kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            return self.model(x)
        if self.kernels:  # a failing compiler is handled per kernel (run_kernel): eager, one warning
            with using("compiled"):
                return self.model(x)
        try:
            return self._compiled(x)
        except Exception as err:  # no compiler toolchain: keep working, eagerly
            warnings.warn(f"torch.compile failed ({type(err).__name__}: {err}); running eagerly")
            self._compiled = self.model
            return self.model(x)

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_modules"] = dict(state["_modules"])
        state["_compiled"] = None
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if not self.kernels:
            self._compiled = torch.compile(_stepwise(self.model), dynamic=False, **self._compile_kwargs)


def compile_model(model: nn.Module, *, whole_graph: bool | None = None, **compile_kwargs) -> nn.Module:
    """A module that evaluates ``model`` compiled when gradients are off (eagerly when on).

    Two ways, with identical spikes:

    * the model's own forward (all T steps per layer at once) on the compiled LIF kernels,
      a LIF layer and the pool after it in one kernel (engine "compiled", see the module
      docstring): the default for a spiking net whose LIF layers the kernels cover
      (fixed leak and threshold, a subtractive or zero reset). It inferred faster than the
      other way in every run of ``benchmarks/engine.py`` on a 2-core CPU (see the README);
    * ``torch.compile`` of the per-step forward of the whole net as one graph
      (:meth:`snnkit.models._Step.stepwise`): for other nets (learned leak or threshold,
      no reset, ANNs), with ``whole_graph=True``, or when ``compile_kwargs`` (options of
      ``torch.compile``) are given.

    The first call compiles (tens of seconds on a small CPU): it pays off for long
    evaluations and benchmarks, not for short runs.
    """
    if whole_graph is None:
        whole_graph = bool(compile_kwargs) or not _on_kernels(model)
    if not whole_graph and compile_kwargs:
        raise ValueError(f"compile_kwargs {sorted(compile_kwargs)} given with whole_graph=False: torch.compile "
                         "options apply to the whole-graph way only")
    return CompiledInference(model, kernels=not whole_graph, **compile_kwargs)


def _from_environment() -> None:
    mode = os.environ.get("SNNKIT_ENGINE", "").strip()
    if mode:
        if mode not in ENGINES:
            warnings.warn(f"SNNKIT_ENGINE={mode!r} ignored; expected one of {', '.join(ENGINES)}", stacklevel=2)
            return
        set_engine(mode)


_from_environment()

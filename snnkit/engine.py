"""Optional speed-ups for inference.

:func:`compile_model` wraps a model in ``torch.compile`` for inference. It compiles the
per-step forward of a spiking net (:meth:`snnkit.models._Step.stepwise`), whose small
per-step working set the compiler fuses into a few kernels. Training
keeps the eager engine, whose hand-written backward is faster than a compiled graph
here. The first call compiles (tens of seconds on a small CPU); it pays off for long
evaluations and benchmarks, not for short runs.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["compile_model"]


def _stepwise(model: nn.Module):
    """The per-step forward of a spiking :class:`~snnkit.models.Net`, else the model."""
    body = getattr(model, "body", None)
    if getattr(model, "spiking", False) and hasattr(body, "stepwise"):
        return body.stepwise
    return model


class CompiledInference(nn.Module):
    """Runs ``model`` compiled under ``torch.no_grad``, eagerly when gradients are on."""

    def __init__(self, model: nn.Module, **compile_kwargs) -> None:
        super().__init__()
        self.model = model
        self._compiled = torch.compile(_stepwise(model), dynamic=False, **compile_kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            return self.model(x)
        try:
            return self._compiled(x)
        except Exception as err:  # no compiler toolchain: keep working, eagerly
            import warnings

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
        self._compiled = torch.compile(_stepwise(self.model), dynamic=False)


def compile_model(model: nn.Module, **compile_kwargs) -> nn.Module:
    """A module that evaluates ``model`` through ``torch.compile`` when gradients are off."""
    return CompiledInference(model, **compile_kwargs)

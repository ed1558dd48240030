"""Running a model to look at it: one context for every probe.

Every measurement in snnkit (activity for the importances, attention maps, conversion
percentiles, operation counts, the accelerator model, speed) runs a model the same way:
switch it to eval mode, attach forward hooks and LIF probes, run without gradients, and put
everything back, also on error::

    acts = {}
    with recording(model, {relu: lambda m, i, o: acts.setdefault("relu", o)}):
        model(x)

On exit the hooks and probes are removed and every module's own training flag is
restored (``model.train(flag)`` would set all submodules to the top-level flag, losing a
frozen batch norm's eval mode, say).
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterable, Iterator, Mapping, Sequence, Union

import torch
from torch import Tensor, nn

from .models import probe as lif_probe

__all__ = ["ForwardHook", "Hooks", "recording"]

#: ``hook(module, inputs, output)``, as :meth:`torch.nn.Module.register_forward_hook` takes it.
ForwardHook = Callable[[nn.Module, tuple, Tensor], None]
#: ``{module: hook}`` or ``[(module, hook), ...]``.
Hooks = Union[Mapping[nn.Module, ForwardHook], Iterable[tuple[nn.Module, ForwardHook]]]


@contextlib.contextmanager
def recording(
    models: nn.Module | Sequence[nn.Module],
    hooks: Hooks = (),
    *,
    probe: Callable[[str, Tensor, Tensor], None] | None = None,
    eval_mode: bool = True,
    grad: bool = False,
) -> Iterator[None]:
    """Run ``models`` for a measurement: eval mode, hooks on, no gradients; all restored on exit.

    Args:
        models: one model or several (e.g. two timed against each other).
        hooks: forward hooks to attach for the duration, ``{module: hook}`` or pairs.
        probe: ``probe(name, spikes, membranes)`` for every LIF layer of the (first) model,
            spikes and membranes (T, B, ...) (:func:`snnkit.models.probe`).
        eval_mode: switch every module to eval mode (batch norm uses its running
            statistics and updates nothing); False leaves the modes as they are.
        grad: keep autograd on (a loss built from the hooks' outputs, say).
    """
    models = [models] if isinstance(models, nn.Module) else list(models)
    pairs = list(hooks.items()) if isinstance(hooks, Mapping) else list(hooks)
    flags = [(m, m.training) for model in models for m in model.modules()]
    handles = []
    try:
        with contextlib.ExitStack() as stack:
            handles = [module.register_forward_hook(hook) for module, hook in pairs]
            if probe is not None:
                stack.enter_context(lif_probe(models[0], probe))
            if not grad:
                stack.enter_context(torch.no_grad())
            if eval_mode:
                for model in models:
                    model.eval()
            yield
    finally:
        for h in handles:
            h.remove()
        for m, flag in flags:
            m.training = flag


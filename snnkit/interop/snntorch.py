"""snntorch models in and out: an ``nn.Sequential`` of layers and ``snntorch.Leaky`` neurons.

snntorch's tutorials build a spiking net as a sequence that is called once per time step,
with every neuron holding its own membrane (``init_hidden=True``)::

    net = nn.Sequential(nn.Conv2d(1, 12, 5), nn.MaxPool2d(2),
                        snn.Leaky(beta=0.9, init_hidden=True),
                        nn.Flatten(), nn.Linear(12 * 12 * 12, 10),
                        snn.Leaky(beta=0.9, init_hidden=True, output=True))
    snn_net = from_snntorch(net, in_shape=(1, 28, 28))   # an snnkit Net
    back = to_snntorch(snn_net)                          # .model: an nn.Sequential again

:func:`from_snntorch` gives an snnkit :class:`~snnkit.models.Net` built from a
:class:`~snnkit.interop.spec.SequentialSpec`, with the same weights, leaks and thresholds:
for ``x`` of shape (T, B, ...) it computes exactly the spikes and membranes that the
Sequential computes step by step (``run_snntorch(net, x)``). Compression methods, metrics
and checkpoints then see an ordinary ``Net``. :func:`to_snntorch` goes back, with pruned
weights as zeros and quantized weights as their dequantized values (the grid levels); the
quantization records come beside it, keyed by the Sequential's module names.

What a ``Leaky`` maps to (snnkit's :class:`~snnkit.neurons.LIF` computes the same
recurrence in the same order of float operations, see :mod:`snnkit.neurons`):

=====================================  ==================================================
snntorch ``Leaky``                      snnkit
=====================================  ==================================================
``beta``, ``threshold`` (one value)     one leak / threshold per layer
``beta`` of shape (C, 1, 1), (C, 1)     one per channel (``NeuronSpec(per_channel=True)``)
or (N,) after a linear layer
``learn_beta``, ``learn_threshold``     the same flags
``reset_mechanism`` subtract/zero/none  ``reset`` "subtract" / "zero" / "none"
``spike_grad``: ``atan(alpha)``,        surrogate "arctan" / "fast-sigmoid" with that
``fast_sigmoid(slope)``                 parameter (others: pass ``surrogate=``)
``output=True`` on the last neuron      readout "spike" (a last linear layer: readout "mem")
=====================================  ==================================================

Refused, with the module's position: recurrent and second-order neurons (``RLeaky``,
``Synaptic``, ``RSynaptic``, ``Alpha``, ``Lapicque`` ...), a model that is not an
``nn.Sequential`` (its own ``forward`` may loop over time in ways a layer list cannot
hold), unknown modules, and ``Leaky`` options that change the dynamics snnkit implements
(``init_hidden=False``, ``reset_delay=False``, ``inhibition``, ``state_quant``, graded
spikes, a leak or threshold per neuron rather than per channel).
"""
from __future__ import annotations

import copy
import inspect
from typing import Callable, NamedTuple

import snntorch as snn
import torch
from snntorch import surrogate as snn_surrogate
from torch import nn

from ..compress.masks import remove_masks
from ..compress.quant import QuantRecord, remove_quantizers
from ..models import LIF, Net, NeuronSpec, build
from ..surrogate import ATan, FastSigmoid, Surrogate
from .spec import MODULE_KINDS, Layer, SequentialSpec, check_in_shape

__all__ = ["from_snntorch", "to_snntorch", "run_snntorch", "SnntorchModel", "SUPPORTED_MODULES"]

#: What :func:`from_snntorch` reads, in words (used in error messages).
SUPPORTED_MODULES = ("nn.Conv1d, nn.Conv2d, nn.Linear, nn.MaxPool1d/2d, nn.AvgPool1d/2d, "
                     "nn.AdaptiveAvgPool1d/2d, nn.Flatten, nn.Dropout, nn.BatchNorm1d/2d and snntorch.Leaky "
                     "(init_hidden=True)")

#: an snntorch ``spike_grad``: a function of ``U - threshold`` returning spikes
SpikeGrad = Callable[[torch.Tensor], torch.Tensor]

# snntorch surrogate factories (their closures' qualified names) -> snnkit registry names
_SURROGATES = {"atan": ("arctan", "alpha"), "fast_sigmoid": ("fast-sigmoid", "slope")}


class SnntorchModel(NamedTuple):
    """What :func:`to_snntorch` returns.

    Attributes:
        model: the ``nn.Sequential`` (call it once per time step, or use :func:`run_snntorch`).
        quant_records: ``{Sequential module name: QuantRecord}`` of the quantized layers; their
            weights in ``model`` are the dequantized levels ``scale * code``.
    """

    model: nn.Sequential
    quant_records: dict[str, QuantRecord]


def _flat_modules(model: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    """``(position, module)`` of a Sequential, nested Sequentials opened ("3.1")."""
    out = []
    for name, m in model.named_children():
        pos = f"{prefix}{name}"
        out += _flat_modules(m, pos + ".") if type(m) is nn.Sequential else [(pos, m)]
    return out


def _refuse(pos: str, module: nn.Module, why: str) -> ValueError:
    return ValueError(f"{type(module).__module__.split('.')[0]}.{type(module).__name__} at position {pos}: {why}")


def _surrogate_name(spike_grad: SpikeGrad, pos: str, module: nn.Module) -> tuple[str, float]:
    """snntorch's ``spike_grad`` closure -> (snnkit surrogate name, parameter)."""
    factory = getattr(spike_grad, "__qualname__", "").split(".<locals>")[0]
    if factory in _SURROGATES:
        name, param = _SURROGATES[factory]
        value = inspect.getclosurevars(spike_grad).nonlocals.get(param)
        if isinstance(value, (int, float)):
            return name, float(value)
    raise _refuse(pos, module, f"spike_grad={getattr(spike_grad, '__qualname__', spike_grad)!r} has no snnkit "
                               "counterpart (snntorch.surrogate.atan and fast_sigmoid map to 'arctan' and "
                               "'fast-sigmoid'); pass surrogate=NAME to from_snntorch to choose one (spikes do not "
                               "depend on it, only gradients do)")


def _leak_shape(value: torch.Tensor, shape: tuple[int, ...], what: str, pos: str, module: nn.Module) -> str:
    """How a leak or threshold is held: "layer" (one value) or "channel" (one per channel of a
    (C, ...) sample); anything else is refused."""
    if value.numel() == 1:
        return "layer"
    per_channel = (shape[0],) + (1,) * (len(shape) - 1)
    squeezed = tuple(value.shape[value.dim() - len(shape):]) if value.dim() >= len(shape) else None
    lead_ones = all(n == 1 for n in value.shape[: value.dim() - len(shape)])
    if squeezed == per_channel and lead_ones:
        return "channel"
    raise _refuse(pos, module, f"{what} of shape {tuple(value.shape)} on inputs of shape {shape}: snnkit holds one "
                               f"value per layer or one per channel (shape {per_channel})")


def _leaky_layer(m: nn.Module, pos: str, shape: tuple[int, ...], last: bool, surrogate: str | None,
                 surrogate_param: float | None) -> tuple[Layer, torch.Tensor, torch.Tensor]:
    """A ``snntorch.Leaky`` -> its Layer and its raw leak and threshold (per layer or (C,))."""
    checks = [
        (not m.init_hidden, "init_hidden=False: in an nn.Sequential every neuron must hold its own membrane "
                            "(init_hidden=True)"),
        (m.output and not last, "output=True on a neuron that is not the last module (the next layer would "
                                "receive a (spikes, membrane) pair)"),
        (not m.reset_delay, "reset_delay=False resets in the step of the spike; snnkit (and Leaky's default) "
                            "resets at the next step"),
        (m.inhibition, "inhibition=True is not supported"),
        (bool(m.state_quant), "state_quant (a quantized membrane) is not supported"),
        (isinstance(m.graded_spikes_factor, nn.Parameter) or not torch.all(m.graded_spikes_factor == 1),
         "graded spikes (graded_spikes_factor != 1) are not supported"),
    ]
    for bad, why in checks:
        if bad:
            raise _refuse(pos, m, why)
    if surrogate is None:
        surrogate, surrogate_param = _surrogate_name(m.spike_grad, pos, m)
    beta, thr = m.beta.detach().float(), m.threshold.detach().float()
    kinds = {_leak_shape(beta, shape, "beta", pos, m), _leak_shape(thr, shape, "threshold", pos, m)}
    per_channel = "channel" in kinds
    channels = shape[0]
    beta = beta.reshape(-1).expand(channels).clone() if per_channel else beta.reshape(())
    thr = thr.reshape(-1).expand(channels).clone() if per_channel else thr.reshape(())
    try:
        neuron = NeuronSpec(beta=float(beta.mean().clamp(0, 1)), threshold=float(thr.mean()),
                            reset=m.reset_mechanism, surrogate=surrogate, surrogate_param=surrogate_param,
                            learn_beta=isinstance(m.beta, nn.Parameter),
                            learn_threshold=isinstance(m.threshold, nn.Parameter), per_channel=per_channel)
    except ValueError as err:
        raise _refuse(pos, m, str(err)) from err
    if per_channel and bool((thr <= 0).any()):
        raise _refuse(pos, m, f"threshold {thr.tolist()}: expected positive values")
    return Layer("lif", neuron=neuron), beta, thr


def _torch_layer(m: nn.Module, pos: str) -> Layer:
    try:
        return Layer.from_module(m)
    except ValueError as err:
        raise _refuse(pos, m, str(err)) from err


def _check_fits(m: nn.Module, pos: str, shape: tuple[int, ...]) -> None:
    """Refuse a layer whose input size disagrees with the shape it receives."""
    size = (m.in_channels if isinstance(m, (nn.Conv1d, nn.Conv2d)) else m.in_features if isinstance(m, nn.Linear)
            else m.num_features if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) else None)
    got = shape[-1] if isinstance(m, nn.Linear) else shape[0]
    if size is not None and size != got:
        raise _refuse(pos, m, f"does not fit its input: it expects {size} channels or features, the sample "
                              f"reaching it has shape {shape}")


def _spec_of(model: nn.Module, in_shape: tuple[int, ...], surrogate: str | None,
             surrogate_param: float | None) -> tuple[SequentialSpec, list[nn.Module], dict[int, tuple]]:
    """The spec of a Sequential, its modules in order, and the LIF values by layer index."""
    if type(model) is not nn.Sequential:
        raise ValueError(f"{type(model).__name__} is not an nn.Sequential: a model with its own forward (a "
                         "custom loop over time, skip connections, recurrent state) cannot be read layer by "
                         f"layer; supported: an nn.Sequential of {SUPPORTED_MODULES}")
    modules = _flat_modules(model)
    if not modules:
        raise ValueError("the nn.Sequential is empty")
    check_in_shape(tuple(in_shape))
    shape = tuple(int(n) for n in in_shape)
    layers, lif_values = [], {}
    for i, (pos, m) in enumerate(modules):
        if type(m) is snn.Leaky:
            layer, beta, thr = _leaky_layer(m, pos, shape, i == len(modules) - 1, surrogate, surrogate_param)
            lif_values[i] = (beta, thr)
        elif isinstance(m, snn.SpikingNeuron):
            raise _refuse(pos, m, "recurrent, second-order and other snntorch neurons are not supported: "
                                  "snnkit's LIF layer is snntorch.Leaky")
        elif type(m) in MODULE_KINDS:
            layer = _torch_layer(m, pos)
            _check_fits(m, pos, shape)
        else:
            raise _refuse(pos, m, f"unknown module; supported: {SUPPORTED_MODULES}")
        layers.append(layer)
        try:
            shape = layer.out_shape(shape)
        except ValueError as err:
            raise _refuse(pos, m, f"does not fit its input: {err}") from err
    return SequentialSpec(tuple(int(n) for n in in_shape), tuple(layers)), [m for _, m in modules], lif_values


def from_snntorch(model: nn.Module, in_shape: tuple[int, ...], *, surrogate: str | None = None,
                  surrogate_param: float | None = None) -> Net:
    """An snnkit :class:`~snnkit.models.Net` computing what an snntorch ``nn.Sequential`` computes.

    Args:
        model: an ``nn.Sequential`` (nested Sequentials are opened) of the modules listed in
            :data:`SUPPORTED_MODULES`, called once per time step on a (B, *in_shape) input.
        in_shape: one input frame: ``(features,)``, ``(C, L)`` or ``(C, H, W)``.
        surrogate, surrogate_param: the surrogate of every LIF layer (a name in
            :data:`snnkit.surrogate.SURROGATES`); by default read from each ``Leaky``.

    Returns:
        a Net of a :class:`~snnkit.interop.spec.SequentialSpec`, with the model's weights,
        batch-norm statistics, leaks and thresholds, on its device, in its train/eval mode.
        For ``x`` of shape (T, B, *in_shape), ``net(x)`` equals ``run_snntorch(model, x)``
        and every LIF layer's membranes equal the ``Leaky``'s (to the last bit, in eval
        mode; in training mode batch norm pools its statistics over T x B samples, snntorch
        over B per step).

    Raises:
        ValueError: a module that cannot be imported, named with its position and the reason.
    """
    spec, modules, lif_values = _spec_of(model, tuple(in_shape), surrogate, surrogate_param)
    net = build(spec)
    with torch.no_grad():
        for i, (src, dst) in enumerate(zip(modules, net.body.layers)):
            if i in lif_values:
                dst.beta.copy_(lif_values[i][0])
                dst.threshold.copy_(lif_values[i][1])
            elif dst.state_dict():
                dst.load_state_dict(src.state_dict())
    param = next(model.parameters(), None)
    if param is not None:
        net.to(device=param.device, dtype=param.dtype)
    return net.train(model.training)


def _snntorch_surrogate(s: Surrogate, name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    if isinstance(s, ATan):
        return snn_surrogate.atan(s.alpha)
    if isinstance(s, FastSigmoid):
        return snn_surrogate.fast_sigmoid(s.slope)
    raise ValueError(f"LIF layer {name} uses the surrogate {s}, which snntorch has no counterpart for (ATan and "
                     "FastSigmoid map to snntorch.surrogate.atan and fast_sigmoid); pass spike_grad= to "
                     "to_snntorch to choose one (spikes do not depend on it, only gradients do)")


def _leaky(m: LIF, name: str, shape: tuple[int, ...], last: bool, spike_grad: SpikeGrad | None) -> snn.Leaky:
    per_channel = (-1,) + (1,) * (len(shape) - 1)
    beta, thr = (p.detach().clone() for p in (m.beta, m.threshold))
    beta, thr = (p.reshape(per_channel) if p.dim() else p for p in (beta, thr))
    return snn.Leaky(beta=beta, threshold=thr, init_hidden=True, output=last, reset_mechanism=m.reset,
                     spike_grad=spike_grad if spike_grad is not None else _snntorch_surrogate(m.surrogate, name),
                     learn_beta=m.beta.requires_grad, learn_threshold=m.threshold.requires_grad)


def to_snntorch(net: Net, *, spike_grad: SpikeGrad | None = None) -> SnntorchModel:
    """An snntorch ``nn.Sequential`` computing what a spiking snnkit net computes.

    Pruned weights are zeros and quantized weights their dequantized levels (masks and
    quantizers are baked into plain weights; ``net`` is not modified). Every LIF layer
    becomes a ``snntorch.Leaky`` (``init_hidden=True``; the last one ``output=True``) with the
    same leak, threshold (per layer, or per channel shaped (C, 1, 1) / (C, 1) / (N,)), reset,
    learnable flags and surrogate.

    Args:
        net: a spiking Net whose layers form a chain (a VGG net or an imported
            :class:`~snnkit.interop.spec.SequentialSpec` net; not a ResNet, whose shortcuts an
            ``nn.Sequential`` cannot hold: export those to NIR).
        spike_grad: snntorch surrogate for every neuron (default: the counterpart of each
            LIF layer's surrogate; needed for surrogates snntorch lacks).

    Returns:
        :class:`SnntorchModel`: the Sequential (module names "0", "1", ... match the net's
        ``body.layers`` indices), in ``net``'s train/eval mode, and the quantization records.

    Raises:
        ValueError: ``net`` is not a spiking Net, or holds a layer a Sequential cannot express.
    """
    if not isinstance(net, Net) or not net.spiking:
        raise ValueError(f"expected a spiking snnkit Net, got {type(net).__name__}"
                         f"{'' if not isinstance(net, Net) else ' (an ANN twin)'}")
    plain = copy.deepcopy(net)
    records = remove_quantizers(plain, bake=True)
    remove_masks(plain)
    layers = list(plain.body.layers)
    shape = tuple(net.spec.in_shape)
    out = []
    for i, m in enumerate(layers):
        name = f"body.layers.{i}"
        if isinstance(m, LIF):
            out.append(_leaky(m, name, shape, i == len(layers) - 1, spike_grad))
            continue
        if type(m) not in MODULE_KINDS:
            raise ValueError(f"{type(m).__name__} at {name}: an nn.Sequential holds a chain of {SUPPORTED_MODULES}"
                             " only (a ResNet block's shortcut does not fit; export the net to NIR instead)")
        layer = _torch_layer(m, name)
        module = layer.make(shape, spiking=False)
        module.load_state_dict(m.state_dict())
        out.append(module)
        shape = layer.out_shape(shape)
    param = next(net.parameters())
    seq = nn.Sequential(*out).to(device=param.device, dtype=param.dtype).train(net.training)
    renamed = {str(int(k.rpartition(".")[2])): rec for k, rec in records.items()}
    return SnntorchModel(seq, renamed)


def _reset_states(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, snn.SpikingNeuron) and hasattr(m, "reset_mem"):
            m.reset_mem()


def run_snntorch(model: nn.Module, x: torch.Tensor, *, membranes: bool = False,
                 per_sample: bool = False) -> torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Run a per-step snntorch model over a sequence from rest.

    Every snntorch neuron's state is reset first; the model is called on ``x[t]`` for each
    step and its output (the first element of a ``(spikes, membrane)`` or ``(output, state)``
    pair) is stacked.

    Args:
        model: an snntorch ``nn.Sequential`` (e.g. from :func:`to_snntorch`) or the module
            ``snntorch.import_nir.import_from_nir`` makes.
        x: (T, B, ...) input, or (T, ...) for a model that takes unbatched samples.
        membranes: also return ``{module name: (T, ...) membranes}`` of every ``Leaky``
            (read after each step: snntorch's ``mem``, before the next step's reset).
        per_sample: ``x`` is (T, B, ...) but the model takes one sample without a batch
            dimension (snntorch's reader of NIR graphs: NIR's ``Flatten`` has no batch
            dimension, so it becomes ``torch.nn.Flatten(0)``). Each sequence ``x[:, b]`` is
            then run alone, from rest, and the outputs (and membranes) are stacked on dim 1.

    Returns:
        the outputs (T, ...), and with ``membranes`` the dict of membranes.

    Raises:
        ValueError: ``per_sample`` with an ``x`` of fewer than 2 dimensions.
    """
    if per_sample:
        if x.dim() < 2:
            raise ValueError(f"per_sample=True needs x of shape (T, B, ...); got shape {tuple(x.shape)}")
        runs = [run_snntorch(model, x[:, b], membranes=True) for b in range(x.shape[1])]
        out = torch.stack([r[0] for r in runs], 1)
        if not membranes:
            return out
        return out, {n: torch.stack([r[1][n] for r in runs], 1) for n in runs[0][1]}
    _reset_states(model)
    leaks = [(n, m) for n, m in model.named_modules() if type(m) is snn.Leaky]
    outs, mems = [], {n: [] for n, _ in leaks}
    for t in range(x.shape[0]):
        y = model(x[t])
        outs.append(y[0] if isinstance(y, tuple) else y)
        for n, m in leaks:
            mems[n].append(m.mem.detach().clone())
    out = torch.stack(outs)
    return (out, {n: torch.stack(v) for n, v in mems.items()}) if membranes else out

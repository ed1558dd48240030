"""Counting what a network is and does: parameters, model size, spikes, MACs and SynOps.

Everything here is measured per **sample** (one input of the batch) and per **inference**
(all T time steps of an SNN, one forward pass of an ANN).

Parameter counting (:func:`count_params`, :func:`count_nonzero`, :func:`sparsity`,
:func:`model_size_bits`) looks at ``nn.Parameter`` objects only, never at buffers (so
batch-norm running statistics are not counted). The leak and threshold of every LIF layer
are parameters too (frozen unless learned), so they are counted. A weight pruned with
``torch.nn.utils.prune`` (``weight_orig`` parameter times ``weight_mask`` buffer) is
counted once, by its effective (masked) value.

Operation counting (:func:`measure`) runs one forward pass with hooks on every Conv and
Linear module and probes on every LIF layer, and returns an :class:`OpsReport`:

* **MACs** (multiply-accumulates) for layers whose input is analog, i.e. not all values in
  {0, 1}. Convention: standard dense MACs, ``out elements x kernel size`` with
  ``kernel size = in_channels / groups x kH x kW`` for a conv (zero-padding taps included)
  and ``in_features x out_features`` for a linear layer. In an SNN an analog-input layer
  costs its MACs at **every** step (``macs_per_step x T``): a neuromorphic chip
  re-multiplies the analog input each step, although snnkit computes it only once in
  software for direct input (a stride-0 view along T).
* **SynOps** (synaptic operations, accumulates only) for SNN layers whose input is binary
  spikes: every input spike costs one add per output element it reaches (its *fan-out*):
  ``out_features`` for a linear layer, the exact per-position fan-out map of
  :func:`conv_fanout` for a conv (fewer at the borders). Weights that are zero are still
  counted (dense fan-out).
* In an ANN every Conv/Linear layer costs MACs, once (T = 1), whatever its input.

Note that an average-pooled spike map (values like 0.25) is analog by this rule, so the
layer after an average pool costs MACs; after a max pool the spikes stay binary.
:mod:`snnkit.metrics.energy` prices the counts.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator, Mapping

import torch
from torch import Tensor, nn

from ..models import lif_layers, probe

__all__ = [
    "accuracy",
    "count_params",
    "count_nonzero",
    "sparsity",
    "model_size_bits",
    "model_size_mb",
    "conv_fanout",
    "LayerOps",
    "OpsReport",
    "measure",
    "latency",
]

_CONV = nn.modules.conv._ConvNd
_CONV_T = nn.modules.conv._ConvTransposeNd


# ---------------------------------------------------------------------------------------
# accuracy


def accuracy(logits: Tensor, y: Tensor) -> float:
    """Fraction of correct top-1 predictions, in [0, 1].

    Args:
        logits: class scores (B, K) (for an SNN, e.g. :func:`snnkit.models.readout` of the
            (T, B, K) output).
        y: integer labels (B,).
    """
    if logits.dim() != 2:
        raise ValueError(f"logits of shape {tuple(logits.shape)}: expected (B, K)")
    if y.dim() != 1 or y.shape[0] != logits.shape[0]:
        raise ValueError(f"labels of shape {tuple(y.shape)}: expected ({logits.shape[0]},)")
    if y.shape[0] == 0:
        raise ValueError("accuracy of an empty batch is undefined")
    return (logits.argmax(dim=1) == y.to(logits.device)).double().mean().item()


# ---------------------------------------------------------------------------------------
# parameters and model size


def _parameter_entries(model: nn.Module) -> Iterator[tuple[str, str, nn.Module, nn.Parameter, Tensor]]:
    """Every distinct parameter as (module name, logical name, module, parameter, value).

    ``value`` is the effective tensor: for a ``torch.nn.utils.prune`` reparametrisation
    (``<name>_orig`` parameter and ``<name>_mask`` buffer) it is ``orig * mask`` and the
    logical name is ``<name>``. Shared parameters appear once.
    """
    seen: set[int] = set()
    for mname, module in model.named_modules():
        for pname, p in module.named_parameters(recurse=False):
            if id(p) in seen:
                continue
            seen.add(id(p))
            logical, value = pname, p
            if pname.endswith("_orig"):
                base = pname[: -len("_orig")]
                mask = getattr(module, base + "_mask", None)
                if isinstance(mask, Tensor):
                    logical, value = base, p * mask
            yield mname, logical, module, p, value.detach()


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter entries (buffers excluded; shared parameters counted once).

    With ``trainable_only`` only parameters with ``requires_grad`` are counted (this drops
    e.g. the frozen leak/threshold of LIF layers).
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_nonzero(model: nn.Module) -> int:
    """Number of non-zero parameter entries (effective values for pruned-by-mask weights)."""
    return int(sum(int(torch.count_nonzero(v)) for *_, v in _parameter_entries(model)))


def sparsity(model: nn.Module, weights_only: bool = True) -> float:
    """Fraction of zero entries, in [0, 1] (0.0 if there is nothing to count).

    With ``weights_only`` (default) only the ``weight`` of Conv and Linear modules counts;
    otherwise every parameter (biases, batch-norm affine, LIF leak/threshold ...).
    """
    total = zeros = 0
    for _, logical, module, _, value in _parameter_entries(model):
        if weights_only and not (logical == "weight" and isinstance(module, (_CONV, nn.Linear))):
            continue
        total += value.numel()
        zeros += value.numel() - int(torch.count_nonzero(value))
    return zeros / total if total else 0.0


def model_size_bits(
    model: nn.Module, bits: Mapping[str, int] | None = None, nonzero_only: bool = False
) -> int:
    """Storage of the parameters in bits.

    The ``weight`` of every module named in ``bits`` takes ``bits[name]`` bits per entry;
    every other parameter (its bias included) takes 32 bits. Only parameters count, not
    buffers (batch-norm running statistics, pruning masks).

    Args:
        model: the network.
        bits: ``{module name: weight bit-width}``; default ``model.quant_bits`` as set by
            :func:`snnkit.quant.quantize_model`, or ``{}`` (everything 32 bit).
        nonzero_only: count only the non-zero entries of each parameter (for pruned-by-mask
            models). The index overhead of a sparse format is NOT included.

    Raises:
        ValueError: a name in ``bits`` is not a module with a ``weight``, or a bit-width
            is not a positive integer.
    """
    if bits is None:
        bits = getattr(model, "quant_bits", None) or {}
    modules = dict(model.named_modules())
    for name, b in bits.items():
        m = modules.get(name)
        if m is None or not (hasattr(m, "weight") or hasattr(m, "weight_orig")):
            raise ValueError(f"bits names {name!r}, which is not a module with a weight in this model")
        if isinstance(b, bool) or not isinstance(b, int) or b < 1:
            raise ValueError(f"bits[{name!r}]={b!r}: expected a positive integer")
    total = 0
    for mname, logical, _, _, value in _parameter_entries(model):
        n = int(torch.count_nonzero(value)) if nonzero_only else value.numel()
        width = bits[mname] if (logical == "weight" and mname in bits) else 32
        total += n * width
    return total


def model_size_mb(model: nn.Module, bits: Mapping[str, int] | None = None, nonzero_only: bool = False) -> float:
    """:func:`model_size_bits` in megabytes (bits / 8 / 1e6)."""
    return model_size_bits(model, bits, nonzero_only=nonzero_only) / 8 / 1e6


# ---------------------------------------------------------------------------------------
# fan-out and operation counting


def conv_fanout(conv: nn.Module, in_shape: tuple[int, ...] | torch.Size) -> Tensor:
    """Exact fan-out of every input element of a convolution.

    For input shape ``in_shape = (C_in, *spatial)`` (one sample) returns a float64 tensor of
    that shape whose entry is the number of (output channel, output position) pairs the
    input element contributes to, given the layer's kernel size, stride, padding, dilation,
    groups and padding mode. It equals the transposed convolution of an all-ones
    output-shaped tensor with an all-ones kernel (computed here as the gradient of the sum
    of an all-ones-kernel convolution). A 3x3, padding-1, stride-1 conv with C_out output
    channels gives 4 C_out at the corners, 6 C_out on the edges and 9 C_out inside.
    """
    if not isinstance(conv, _CONV) or isinstance(conv, _CONV_T):
        raise TypeError(f"expected a (non-transposed) convolution module, got {type(conv).__name__}")
    x = torch.zeros((1, *in_shape), dtype=torch.float64, requires_grad=True)
    w = torch.ones(conv.weight.shape, dtype=torch.float64)
    with torch.enable_grad():
        y = conv._conv_forward(x, w, None)
        (g,) = torch.autograd.grad(y.sum(), x)
    return g[0]


@dataclass
class LayerOps:
    """Operation counts of one Conv/Linear layer, per sample per inference.

    Attributes:
        name: module name in ``model.named_modules()``.
        kind: "conv" or "linear".
        macs_per_step: dense MACs for one sample at one step (out elements x kernel size,
            padding included; in x out for linear).
        binary_input: every input value the layer saw was 0 or 1 (spikes).
        input_size: input elements per sample per step.
        input_spikes: input spikes per sample, summed over all T steps (0 if analog input).
        synops: synaptic operations (adds) per sample = sum of each input spike's fan-out
            (0 if analog input or ANN).
        macs: MACs per sample per inference: ``macs_per_step x T`` for an analog-input
            SNN layer, ``macs_per_step`` for an ANN layer, 0 for a spiking-input SNN layer.
    """

    name: str
    kind: str
    macs_per_step: int
    binary_input: bool
    input_size: int
    input_spikes: float
    synops: float
    macs: int


@dataclass
class OpsReport:
    """Activity and operation counts of one forward pass, per sample per inference.

    Attributes:
        layers: one :class:`LayerOps` per Conv/Linear layer, in call order.
        timesteps: T (1 for an ANN); the latency in time steps.
        batch_size: B of the measured batch (counts are averages over it).
        spiking: whether the model was measured as an SNN.
        spikes_per_inference: spikes per sample summed over all LIF layers and T steps.
        macs: total MACs per sample.
        synops: total synaptic operations (adds) per sample.
        spikes_per_layer: ``{LIF name: spikes per sample over T steps}``.
        neurons_per_layer: ``{LIF name: neurons per sample}``.
    """

    layers: list[LayerOps]
    timesteps: int
    batch_size: int
    spiking: bool
    spikes_per_inference: float
    macs: int
    synops: float
    spikes_per_layer: dict[str, float] = field(default_factory=dict)
    neurons_per_layer: dict[str, int] = field(default_factory=dict)

    @property
    def latency(self) -> int:
        """Latency in time steps: T for an SNN, 1 for an ANN."""
        return self.timesteps

    @property
    def firing_rates(self) -> dict[str, float]:
        """``{LIF name: mean spikes per neuron per step}``, in [0, 1]."""
        return {
            n: s / (self.neurons_per_layer[n] * self.timesteps) if self.neurons_per_layer[n] else 0.0
            for n, s in self.spikes_per_layer.items()
        }

    def layer(self, name: str) -> LayerOps:
        """The :class:`LayerOps` of the Conv/Linear module called ``name``."""
        for lo in self.layers:
            if lo.name == name:
                return lo
        raise KeyError(f"no Conv/Linear layer {name!r}; measured {[lo.name for lo in self.layers]}")

    def as_dict(self) -> dict[str, Any]:
        """Plain-dict copy (for JSON / pandas)."""
        return asdict(self)


@dataclass
class _Acc:
    kind: str
    macs_per_step: int
    input_size: int
    rows: int = 0
    binary: bool = True
    spikes: float = 0.0
    weighted: float = 0.0


def measure(model: nn.Module, x: Tensor, *, spiking: bool | None = None, eval_mode: bool = True) -> OpsReport:
    """Count spikes, MACs and SynOps of one forward pass (under ``torch.no_grad()``).

    Args:
        model: a network; Conv (non-transposed) and Linear modules are counted, LIF layers
            probed (through :func:`snnkit.models.probe`, which replaces any probe set on them).
        x: the network input, (T, B, ...) for an SNN, (B, ...) for an ANN. A stride-0 view
            along T (direct input) is fine: the layers before the first LIF then run once on
            (B, ...), which is recognised and counted as T steps.
        spiking: treat the model as an SNN; default ``model.spiking`` if it exists, else
            whether it contains LIF layers.
        eval_mode: run in eval mode (batch-norm running stats, no stat updates); the
            training flags of all modules are restored afterwards.

    Each counted module must see either B rows (once) or T*B rows (all steps, in one or
    several calls) in total; anything else (e.g. a module applied twice) raises
    RuntimeError. Counts are per sample, i.e. divided by B. See the module docstring for
    the MAC/SynOp conventions.
    """
    if spiking is None:
        spiking = getattr(model, "spiking", None)
        if spiking is None:
            spiking = bool(lif_layers(model))
    if spiking:
        if x.dim() < 3:
            raise ValueError(f"input of shape {tuple(x.shape)}: expected (T, B, ...) for an SNN")
        T, B = int(x.shape[0]), int(x.shape[1])
    else:
        if x.dim() < 2:
            raise ValueError(f"input of shape {tuple(x.shape)}: expected (B, ...) for an ANN")
        T, B = 1, int(x.shape[0])
    if B < 1 or T < 1:
        raise ValueError(f"input of shape {tuple(x.shape)}: empty batch or no time steps")

    names = {m: n for n, m in model.named_modules()}
    accs: dict[str, _Acc] = {}
    fanouts: dict[tuple[str, tuple[int, ...]], Tensor] = {}
    lif_spikes: dict[str, float] = {}
    lif_neurons: dict[str, int] = {}
    lif_batch: dict[str, int] = {}

    def hook(module: nn.Module, inputs: tuple, output: Tensor) -> None:
        name = names[module]
        inp = inputs[0] if inputs else None
        if not isinstance(inp, Tensor) or inp.dim() < 2:
            raise RuntimeError(f"layer {name!r}: expected a batched tensor input")
        n = int(inp.shape[0])
        out_per_sample = output.numel() // n
        if isinstance(module, nn.Linear):
            kind, kernel = "linear", module.in_features
        else:
            kind, kernel = "conv", math.prod(module.weight.shape[1:])
        acc = accs.get(name)
        if acc is None:
            acc = accs[name] = _Acc(kind, out_per_sample * kernel, inp.numel() // n)
        acc.rows += n
        acc.binary = acc.binary and bool(((inp == 0) | (inp == 1)).all())
        if not (spiking and acc.binary):
            return
        if kind == "linear":
            count = float(inp.sum(dtype=torch.float64))
            acc.spikes += count
            acc.weighted += count * module.out_features
        else:
            key = (name, tuple(inp.shape[1:]))
            fan = fanouts.get(key)
            if fan is None:
                fan = fanouts[key] = conv_fanout(module, inp.shape[1:]).to(inp.device)
            per_pos = inp.sum(0, dtype=torch.float64)
            acc.spikes += float(per_pos.sum())
            acc.weighted += float((per_pos * fan).sum())

    def lif_probe(name: str, spk: Tensor, mem: Tensor) -> None:
        lif_spikes[name] = lif_spikes.get(name, 0.0) + float(spk.sum(dtype=torch.float64))
        lif_neurons[name] = spk[0, 0].numel()
        lif_batch[name] = int(spk.shape[1])

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, nn.Linear) or (isinstance(m, _CONV) and not isinstance(m, _CONV_T))
    ]
    training = {m: m.training for m in model.modules()}
    try:
        if eval_mode:
            model.eval()
        with torch.no_grad(), probe(model, lif_probe):
            model(x)
    finally:
        for h in handles:
            h.remove()
        for m, flag in training.items():
            m.training = flag

    layers: list[LayerOps] = []
    for name, acc in accs.items():
        if acc.rows == T * B:
            factor = 1
        elif acc.rows == B:
            factor = T  # direct input: computed once, stands for every step
        else:
            raise RuntimeError(
                f"layer {name!r} saw {acc.rows} input rows in total; expected B={B} (once, direct "
                f"input) or T*B={T * B} (every step)"
            )
        if spiking and acc.binary:
            spikes, synops, macs = acc.spikes * factor / B, acc.weighted * factor / B, 0
        else:
            spikes, synops, macs = 0.0, 0.0, acc.macs_per_step * T
        layers.append(LayerOps(name, acc.kind, acc.macs_per_step, acc.binary, acc.input_size, spikes, synops, macs))

    spikes_per_layer = {n: s / lif_batch[n] for n, s in lif_spikes.items()}
    return OpsReport(
        layers=layers,
        timesteps=T,
        batch_size=B,
        spiking=bool(spiking),
        spikes_per_inference=float(sum(spikes_per_layer.values())),
        macs=int(sum(lo.macs for lo in layers)),
        synops=float(sum(lo.synops for lo in layers)),
        spikes_per_layer=spikes_per_layer,
        neurons_per_layer=dict(lif_neurons),
    )


def latency(T: int | OpsReport) -> int:
    """Latency in time steps: T for an SNN (or ``report.timesteps``), 1 for an ANN."""
    if isinstance(T, OpsReport):
        return T.timesteps
    if isinstance(T, bool) or not isinstance(T, int) or T < 1:
        raise ValueError(f"T={T!r}: expected an integer >= 1")
    return T

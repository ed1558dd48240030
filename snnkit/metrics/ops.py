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
Linear module and probes on every LIF layer, and returns an :class:`OpsReport`. A
*synapse* is one (input element, weight, output element) connection that the layer really
computes: zero-padding taps are not synapses (they read no input), biases are not counted.
The weight is read as ``module.weight``, i.e. the effective weight of a
``torch.nn.utils.prune`` mask (``weight_orig * weight_mask``) or of a parametrization
(a quantizer), so a pruned weight is a zero weight whichever way it was zeroed.

* **MACs** (multiply-accumulates) for layers whose input is analog, i.e. not all values in
  {0, 1}: every synapse of the layer, ``sum of the fan-out map`` (:func:`fanout`), which is
  ``out elements x in_channels / groups x kH x kW`` minus the zero-padding taps for a conv
  (``Conv2d(1, 1, 3, padding=1)`` on 4 x 4: 100, not 16 x 9 = 144) and
  ``in_features x out_features`` for a linear layer. Zero weights and zero inputs are
  counted (*dense*). In an SNN an analog-input layer costs its MACs at **every** step
  (``macs_per_step x T``): a neuromorphic chip re-multiplies the analog input each step,
  although snnkit computes it only once in software for direct input (a stride-0 view
  along T).
* **SynOps** (synaptic operations, accumulates only) for SNN layers whose input is binary
  spikes: every input spike costs one add per synapse it reaches (its *fan-out*):
  ``out_features`` for a linear layer, the exact per-position fan-out map of
  :func:`conv_fanout` for a conv (fewer at the borders). Zero weights are counted
  (*dense* weights).
* **Effective** counts skip every synapse whose weight or input is zero, as
  sparsity-aware hardware does: ``effective_macs`` (analog-input layers: non-zero inputs
  x their fan-out over non-zero weights) and ``effective_acs`` (spike-input layers: spikes
  x their fan-out over non-zero weights). Unstructured pruning lowers these, not the
  dense ones.
* **Total synops** (``total_synops``): every synapse of every layer at every step,
  whatever the activity (``macs_per_step x T`` summed over layers): the work of hardware
  that exploits no sparsity at all.
* In an ANN every Conv/Linear layer costs MACs, once (T = 1), whatever its input.

Correspondence with NeuroBench's ``SynapticOperations`` (``Effective_MACs``,
``Effective_ACs``, ``Dense``; see :meth:`OpsReport.neurobench`): ``effective_macs`` =
Effective_MACs, ``effective_acs`` = Effective_ACs, ``total_synops`` = Dense, all per
sample, first layer included, biases excluded, zero-padding taps excluded. With no zero
weight ``synops`` = Effective_ACs. Two differences of rule: NeuroBench calls an input
spiking when its values lie in {-1, 0, 1} (snnkit: {0, 1}), and decides this for ANN
layers too (snnkit prices every ANN layer as MACs).

Note that an average-pooled spike map (values like 0.25) is analog by this rule, so the
layer after an average pool costs MACs; after a max pool the spikes stay binary.
:mod:`snnkit.metrics.energy` prices the counts, dense or effective.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Iterator, Mapping

import torch
from torch import Tensor, nn

from ..models import is_spiking
from ..recording import recording
from ..weights import count_entries, parameter_values, quant_records
from ..weights import count_nonzero as _count_nonzero

__all__ = [
    "accuracy",
    "count_params",
    "count_nonzero",
    "sparsity",
    "model_size_bits",
    "model_size_mb",
    "conv_fanout",
    "fanout",
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


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter entries (buffers excluded; shared parameters counted once).

    With ``trainable_only`` only parameters with ``requires_grad`` are counted (this drops
    e.g. the frozen leak/threshold of LIF layers).
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_nonzero(model: nn.Module, *, weights_only: bool = False) -> int:
    """Number of non-zero parameter entries, by their effective values (masked, quantized).

    :func:`snnkit.weights.count_nonzero`: ``weights_only`` counts only the Conv/Linear weights.
    """
    return _count_nonzero(model, weights_only=weights_only)


def sparsity(model: nn.Module, weights_only: bool = True) -> float:
    """Fraction of zero entries, in [0, 1] (0.0 if there is nothing to count).

    With ``weights_only`` (default) only the ``weight`` of Conv and Linear modules counts;
    otherwise every parameter (biases, batch-norm affine, LIF leak/threshold ...).
    """
    total = count_entries(model, weights_only=weights_only)
    return 1.0 - _count_nonzero(model, weights_only=weights_only) / total if total else 0.0


def model_size_bits(
    model: nn.Module, bits: Mapping[str, int] | None = None, nonzero_only: bool = False, *, scale_bits: int = 0
) -> int:
    """Storage of the parameters in bits.

    The weight of every quantized layer takes its bit width per entry; every other
    parameter (the layer's bias included) takes 32 bits, as in QP-SNN's "quantized
    parameters x bits + full-precision parameters x 32". The quantizers' scales (one number
    per layer, or one per output channel; parameters when learned) are left out unless
    ``scale_bits`` is set. Buffers (batch-norm running statistics, pruning masks) never
    count.

    Args:
        model: the network.
        bits: ``{module name: weight bit-width}``, replacing the model's own quantization;
            default: the bit widths of :func:`snnkit.weights.quant_records` (every
            layer quantized with :mod:`snnkit.compress.quant`), everything else 32 bit.
        nonzero_only: count only the non-zero entries of each parameter, weights as the
            layer uses them (masked and quantized, so a weight on the zero level is not
            counted either). The index overhead of a sparse format is NOT included.
        scale_bits: bits per stored scale value of each quantized layer (0: not counted;
            32 for float32 scales). Scales are counted for the layers in the model's
            quantization records that ``bits`` also names.

    Raises:
        ValueError: a name in ``bits`` is not a module with a weight, a bit-width is not a
            positive integer, or ``scale_bits`` is not an integer >= 0.
    """
    if isinstance(scale_bits, bool) or not isinstance(scale_bits, int) or scale_bits < 0:
        raise ValueError(f"scale_bits={scale_bits!r}: expected an integer >= 0 (0: scales not counted)")
    records = quant_records(model)
    if bits is None:
        bits = {name: rec.bits for name, rec in records.items()}
    modules = dict(model.named_modules())
    for name, b in bits.items():
        m = modules.get(name)
        if m is None or not (hasattr(m, "weight") or hasattr(m, "weight_orig")):
            raise ValueError(f"bits names {name!r}, which is not a module with a weight in this model")
        if isinstance(b, bool) or not isinstance(b, int) or b < 1:
            raise ValueError(f"bits[{name!r}]={b!r}: expected a positive integer")
    total = 0
    for mname, logical, _, value in parameter_values(model):
        n = int(torch.count_nonzero(value)) if nonzero_only else value.numel()
        total += n * (bits[mname] if logical == "weight" and mname in bits else 32)
    total += scale_bits * sum(rec.scale.numel() for name, rec in records.items() if name in bits)
    return total


def model_size_mb(
    model: nn.Module, bits: Mapping[str, int] | None = None, nonzero_only: bool = False, *, scale_bits: int = 0
) -> float:
    """:func:`model_size_bits` in megabytes (bits / 8 / 1e6)."""
    return model_size_bits(model, bits, nonzero_only=nonzero_only, scale_bits=scale_bits) / 8 / 1e6


# ---------------------------------------------------------------------------------------
# fan-out and operation counting


def conv_fanout(conv: nn.Module, in_shape: tuple[int, ...] | torch.Size, *, nonzero_only: bool = False) -> Tensor:
    """Exact fan-out of every input element of a convolution.

    For input shape ``in_shape = (C_in, *spatial)`` (one sample) returns a float64 tensor of
    that shape whose entry is the number of (output channel, output position) pairs the
    input element contributes to, given the layer's kernel size, stride, padding, dilation,
    groups and padding mode. It equals the transposed convolution of an all-ones
    output-shaped tensor with an all-ones kernel (computed here as the gradient of the sum
    of an all-ones-kernel convolution). A 3x3, padding-1, stride-1 conv with C_out output
    channels gives 4 C_out at the corners, 6 C_out on the edges and 9 C_out inside. The sum
    of the map is the number of synapses: zero-padding taps are not among them.

    With ``nonzero_only`` the kernel is ``conv.weight != 0`` instead of all ones: only
    synapses through non-zero weights count (pruned or quantized-to-zero weights are left
    out; ``conv.weight`` is read, so a pruning mask or parametrization applies).
    """
    if not isinstance(conv, _CONV) or isinstance(conv, _CONV_T):
        raise TypeError(f"expected a (non-transposed) convolution module, got {type(conv).__name__}")
    x = torch.zeros((1, *in_shape), dtype=torch.float64, requires_grad=True)
    weight = conv.weight.detach()
    if nonzero_only:
        w = (weight != 0).to(device="cpu", dtype=torch.float64)
    else:
        w = torch.ones(weight.shape, dtype=torch.float64)
    with torch.enable_grad():
        y = conv._conv_forward(x, w, None)
        (g,) = torch.autograd.grad(y.sum(), x)
    return g[0]


def fanout(module: nn.Module, in_shape: tuple[int, ...] | torch.Size, *, nonzero_only: bool = False) -> Tensor:
    """Fan-out of every input element of a Linear or (non-transposed) Conv layer.

    Args:
        module: ``nn.Linear`` or a convolution.
        in_shape: input shape of one sample: ``(..., in_features)`` for a linear layer,
            ``(C_in, *spatial)`` for a conv.
        nonzero_only: count only synapses through non-zero weights (``module.weight != 0``).

    Returns:
        float64 tensor of shape ``in_shape`` on the CPU: how many synapses (weight, output
        element) each input element feeds. Linear: ``out_features`` for every element, or
        with ``nonzero_only`` the number of non-zero weights in the element's column. Conv:
        :func:`conv_fanout`. The sum is the layer's synapse count per sample per step.
    """
    if isinstance(module, nn.Linear):
        in_shape = tuple(in_shape)
        if not in_shape or in_shape[-1] != module.in_features:
            raise ValueError(f"in_shape={in_shape}: expected (..., {module.in_features}) for this linear layer")
        if nonzero_only:
            column = (module.weight.detach() != 0).sum(0).to(device="cpu", dtype=torch.float64)  # (in_features,)
        else:
            column = torch.full((module.in_features,), float(module.out_features), dtype=torch.float64)
        return column.expand(in_shape).clone()
    if isinstance(module, _CONV) and not isinstance(module, _CONV_T):
        return conv_fanout(module, in_shape, nonzero_only=nonzero_only)
    raise TypeError(f"expected nn.Linear or a (non-transposed) convolution module, got {type(module).__name__}")


@dataclass
class LayerOps:
    """Operation counts of one Conv/Linear layer, per sample per inference.

    Attributes:
        name: module name in ``model.named_modules()``.
        kind: "conv" or "linear".
        macs_per_step: synapses of the layer for one sample at one step (the sum of its
            :func:`fanout` map: zero-padding taps excluded; in x out for linear), i.e. its
            dense MACs per step when its input is analog.
        binary_input: every input value the layer saw was 0 or 1 (spikes).
        input_size: input elements per sample per step.
        input_spikes: input spikes per sample, summed over all T steps (0 if analog input).
        synops: dense synaptic operations (adds) per sample = sum of each input spike's
            fan-out, zero weights included (0 if analog input or ANN).
        macs: dense MACs per sample per inference: ``macs_per_step x T`` for an
            analog-input SNN layer, ``macs_per_step`` for an ANN layer, 0 for a
            spiking-input SNN layer.
        effective_macs: MACs per sample per inference over non-zero inputs and non-zero
            weights only (NeuroBench's Effective_MACs; 0 for a spiking-input SNN layer).
        effective_acs: SynOps per sample over non-zero weights only (NeuroBench's
            Effective_ACs; 0 if analog input or ANN).
        total_synops: every synapse at every step, ``macs_per_step x T`` (NeuroBench's
            Dense).
    """

    name: str
    kind: str
    macs_per_step: int
    binary_input: bool
    input_size: int
    input_spikes: float
    synops: float
    macs: int
    effective_macs: float = 0.0
    effective_acs: float = 0.0
    total_synops: int = 0


@dataclass
class OpsReport:
    """Activity and operation counts of one forward pass, per sample per inference.

    Dense counts (``macs``, ``synops``) include zero weights; effective counts
    (``effective_macs``, ``effective_acs``) skip zero weights and zero inputs;
    :meth:`neurobench` names them as NeuroBench does. See the module docstring.

    Attributes:
        layers: one :class:`LayerOps` per Conv/Linear layer, in call order.
        timesteps: T (1 for an ANN); the latency in time steps.
        batch_size: B of the measured batch (counts are averages over it).
        spiking: whether the model was measured as an SNN.
        spikes_per_inference: spikes per sample summed over all LIF layers and T steps.
        macs: total dense MACs per sample.
        synops: total dense synaptic operations (adds) per sample.
        spikes_per_layer: ``{LIF name: spikes per sample over T steps}``.
        neurons_per_layer: ``{LIF name: neurons per sample}``.
        effective_macs: total MACs per sample over non-zero inputs and weights.
        effective_acs: total synaptic operations per sample over non-zero weights.
        total_synops: every synapse of every layer at every step, per sample.
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
    effective_macs: float = 0.0
    effective_acs: float = 0.0
    total_synops: int = 0

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

    def neurobench(self) -> dict[str, float]:
        """The counts under NeuroBench's ``SynapticOperations`` names, per sample:
        ``{"Effective_MACs": effective_macs, "Effective_ACs": effective_acs, "Dense": total_synops}``."""
        return {
            "Effective_MACs": self.effective_macs,
            "Effective_ACs": self.effective_acs,
            "Dense": float(self.total_synops),
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
    active: float = 0.0  # non-zero input values, summed over rows
    reached: float = 0.0  # non-zero inputs x fan-out (all weights)
    effective: float = 0.0  # non-zero inputs x fan-out over non-zero weights


def measure(model: nn.Module, x: Tensor, *, spiking: bool | None = None, eval_mode: bool = True) -> OpsReport:
    """Count spikes, MACs and SynOps, dense and effective, of one forward pass (under ``torch.no_grad()``).

    Args:
        model: a network; Conv (non-transposed) and Linear modules are counted, LIF layers
            probed (through :func:`snnkit.recording.recording`, which replaces any probe set on them).
            Weights are read as ``module.weight`` (pruning masks and parametrizations apply).
        x: the network input, (T, B, ...) for an SNN, (B, ...) for an ANN. A stride-0 view
            along T (direct input) is fine: the layers before the first LIF then run once on
            (B, ...), which is recognised and counted as T steps.
        spiking: treat the model as an SNN; default :func:`snnkit.models.is_spiking`.
        eval_mode: run in eval mode (batch-norm running stats, no stat updates); the
            training flags of all modules are restored afterwards.

    Each counted module must see either B rows (once) or T*B rows (all steps, in one or
    several calls) in total; anything else (e.g. a module applied twice) raises
    RuntimeError. Counts are per sample, i.e. divided by B. See the module docstring for
    the MAC/SynOp conventions.
    """
    if spiking is None:
        spiking = is_spiking(model)
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
    fanouts: dict[tuple[str, tuple[int, ...]], tuple[Tensor, Tensor]] = {}
    lif_spikes: dict[str, float] = {}
    lif_neurons: dict[str, int] = {}
    lif_batch: dict[str, int] = {}

    def hook(module: nn.Module, inputs: tuple, output: Tensor) -> None:
        name = names[module]
        inp = inputs[0] if inputs else None
        if not isinstance(inp, Tensor) or inp.dim() < 2:
            raise RuntimeError(f"layer {name!r}: expected a batched tensor input")
        n = int(inp.shape[0])
        key = (name, tuple(inp.shape[1:]))
        if key not in fanouts:  # the weights do not change during the pass
            fanouts[key] = (
                fanout(module, key[1]).to(inp.device),
                fanout(module, key[1], nonzero_only=True).to(inp.device),
            )
        fan, fan_nonzero = fanouts[key]
        acc = accs.get(name)
        if acc is None:
            kind = "linear" if isinstance(module, nn.Linear) else "conv"
            acc = accs[name] = _Acc(kind, int(round(float(fan.sum()))), inp.numel() // n)
        acc.rows += n
        acc.binary = acc.binary and bool(((inp == 0) | (inp == 1)).all())
        active = (inp != 0).sum(0, dtype=torch.float64)  # (...) per input element, over rows
        acc.active += float(active.sum())
        acc.reached += float((active * fan).sum())
        acc.effective += float((active * fan_nonzero).sum())

    def lif_probe(name: str, spk: Tensor, mem: Tensor) -> None:
        lif_spikes[name] = lif_spikes.get(name, 0.0) + float(spk.sum(dtype=torch.float64))
        lif_neurons[name] = spk[0, 0].numel()
        lif_batch[name] = int(spk.shape[1])

    counted = [m for m in model.modules()
               if isinstance(m, nn.Linear) or (isinstance(m, _CONV) and not isinstance(m, _CONV_T))]
    with recording(model, [(m, hook) for m in counted], probe=lif_probe, eval_mode=eval_mode):
        model(x)

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
        effective = acc.effective * factor / B
        if spiking and acc.binary:
            spikes, synops, acs, macs, eff_macs = acc.active * factor / B, acc.reached * factor / B, effective, 0, 0.0
        else:
            spikes, synops, acs, macs, eff_macs = 0.0, 0.0, 0.0, acc.macs_per_step * T, effective
        layers.append(
            LayerOps(
                name, acc.kind, acc.macs_per_step, acc.binary, acc.input_size, spikes, synops, macs,
                effective_macs=eff_macs, effective_acs=acs, total_synops=acc.macs_per_step * T,
            )
        )

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
        effective_macs=float(sum(lo.effective_macs for lo in layers)),
        effective_acs=float(sum(lo.effective_acs for lo in layers)),
        total_synops=int(sum(lo.total_synops for lo in layers)),
    )


def latency(T: int | OpsReport) -> int:
    """Latency in time steps: T for an SNN (or ``report.timesteps``), 1 for an ANN."""
    if isinstance(T, OpsReport):
        return T.timesteps
    if isinstance(T, bool) or not isinstance(T, int) or T < 1:
        raise ValueError(f"T={T!r}: expected an integer >= 1")
    return T

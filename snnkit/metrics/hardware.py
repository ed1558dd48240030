"""Energy of one SNN inference on an accelerator with a memory hierarchy.

:mod:`snnkit.metrics.energy` prices arithmetic only. On real accelerators moving data
costs more than computing with it, and that is where quantization and pruning differ:
quantization shrinks every weight, pruning removes weights but must store *where* the
remaining ones are. This module counts, per sample and per inference of T steps, the bits
moved at each level of an Eyeriss-like accelerator (DRAM, a global buffer, a scratchpad in
each processing element) and the accumulate operations, and prices them with the
normalized per-access costs of :data:`HARDWARE_TABLE` (Chen, Emer and Sze, ISCA 2016:
DRAM 200, global buffer 6, scratchpad 1, relative to one 16-bit MAC).

Storage formats (:data:`STORAGE_FORMATS`, all counted in bits by :func:`storage_bits`) for a
weight tensor of ``N`` entries, ``nnz`` of them non-zero, ``b`` bits per value:

* ``"dense"``: every entry, zeros included: ``N b`` bits, no index.
* ``"bitmask"``: one presence bit per entry plus the non-zero values: ``N + nnz b``.
* ``"run-length"``: each non-zero value carries the number of zeros before it in
  ``r`` bits (``run_bits``); a run longer than ``2^r - 1`` is cut by a stored zero
  (a filler entry of ``b + r`` bits per ``2^r`` zeros): ``nnz (b + r) + fillers (b + r)``.
  Zeros after the last non-zero value are not stored.
* ``"coordinate"``: each non-zero value with its coordinates, ``ceil(log2 size)`` bits per
  dimension of the weight tensor: ``nnz (b + sum_d ceil(log2 size_d))``.

The traffic model (:func:`layer_traffic`), for a Conv/Linear layer with stored weights of
``S`` bits (values and index), ``N`` entries, ``syn`` synapses per step (the sum of its
fan-out map, :func:`snnkit.metrics.ops.fanout`; zero-padding taps excluded), ``syn_nz`` of
them through non-zero weights, ``n_in`` input and ``n_out`` output neurons, input spike
density ``d`` (events per input neuron per step) and T steps:

* weights, DRAM: ``S`` bits once per inference (``refetch="inference"``: the global
  buffer keeps every layer's weights for all T steps) or ``T S`` (``refetch="step"``);
  each DRAM read is also a global-buffer write;
* weights, global buffer -> scratchpads: ``T S`` (the scratchpads hold only the current
  layer's tile, so every step re-reads the layer from the global buffer), written into the
  scratchpads;
* weights, scratchpad reads: every input spike reads its fan-out's slice of the stored
  tensor, index included: ``d T syn S / N`` bits. A dense layer reads its zeros too;
  a sparse format reads only non-zero values and their index;
* activations are spikes of 1 bit in dense maps: each layer reads ``n_in T`` input bits
  from the global buffer and writes ``n_out T`` output bits to it; the first layer's input
  comes from DRAM (``n_in T`` bits read there, written to the global buffer); membrane
  potentials of ``membrane_bits`` stay in the scratchpads and are read and written once
  per neuron and step (leak, threshold, reset): ``2 membrane_bits n_out T`` bits;
* compute: one accumulate per input spike and non-zero weight it reaches,
  ``d T syn_nz`` (zero weights are skipped in every format, zero inputs are never
  processed), plus one neuron update per neuron and step, ``n_out T``, each at the cost
  of one accumulate.

Spikes are taken as spread evenly over a layer's input positions, so counts are linear in
``d``; :func:`profile` measures ``d`` per layer, both its mean over the samples and its
worst case (the busiest sample). An input value above 1 (an event count in the first
frame of DVS data) counts as that many events but still moves as one bit per position.
"""
from __future__ import annotations

import json
import math
import numbers
from dataclasses import dataclass, field, fields
from importlib import resources
from typing import Any, Callable, Mapping

import torch
from torch import Tensor, nn

from ..recording import recording
from ..registry import Registry
from ..weights import LAYER_TYPES, effective_weight
from .ops import fanout

__all__ = [
    "Accelerator",
    "DENSITIES",
    "HARDWARE_TABLE",
    "HardwareReport",
    "LEVELS",
    "LEVEL_NAMES",
    "LayerLoad",
    "REFETCH",
    "STORAGE_FORMATS",
    "Storage",
    "Traffic",
    "inference_energy",
    "layer_traffic",
    "profile",
    "storage_bits",
    "traffic_energy",
]


def _load_table() -> dict[str, Any]:
    text = resources.files("snnkit.metrics").joinpath("hardware_energy.json").read_text(encoding="utf-8")
    return json.loads(text)


#: Per-access energies (normalized, 1 = one 16-bit MAC) with their source:
#: ``{"source", "units", "word_bits": 16, "levels": {"dram": 200, "global_buffer": 6,
#: "array": 2, "scratchpad": 1}, "compute": {"mac": 1, "accumulate": 0.27}}``.
HARDWARE_TABLE: dict[str, Any] = _load_table()

#: Where energy is spent, in report order: three memory levels and the arithmetic.
LEVELS: tuple[str, ...] = ("dram", "global_buffer", "scratchpad", "compute")

#: How a reader names each of :data:`LEVELS` (legends, table columns).
LEVEL_NAMES: dict[str, str] = {"dram": "DRAM", "global_buffer": "global buffer", "scratchpad": "scratchpad",
                               "compute": "compute"}

#: Accepted ``density`` names: the mean over samples or the busiest sample.
DENSITIES: tuple[str, ...] = ("mean", "worst")

#: Accepted ``Accelerator.refetch``: weights come from DRAM once per inference or every step.
REFETCH: tuple[str, ...] = ("inference", "step")


def _check_int(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name}={value!r}: expected an integer >= {low}")
    return int(value)


def _check_nonneg(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name}={value!r}: expected a finite number >= 0")
    return float(value)


# ---------------------------------------------------------------------------------------
# the hardware


@dataclass(frozen=True)
class Accelerator:
    """The accelerator's costs and its storage assumptions.

    Attributes:
        dram, global_buffer, scratchpad: energy of one ``word_bits``-bit access at that
            level (normalized, 1 = one 16-bit MAC); a ``b``-bit access costs
            ``b / word_bits`` of it.
        accumulate: energy of one accumulate (and of one neuron update).
        word_bits: the word the access costs refer to.
        membrane_bits: width of a membrane potential in the scratchpads.
        run_bits: zero-run field of the ``"run-length"`` format.
        refetch: ``"inference"`` (weights read from DRAM once, kept in the global buffer
            for all T steps) or ``"step"`` (read from DRAM again at every step).
    Defaults come from :data:`HARDWARE_TABLE`.
    """

    dram: float = HARDWARE_TABLE["levels"]["dram"]
    global_buffer: float = HARDWARE_TABLE["levels"]["global_buffer"]
    scratchpad: float = HARDWARE_TABLE["levels"]["scratchpad"]
    accumulate: float = HARDWARE_TABLE["compute"]["accumulate"]
    word_bits: int = HARDWARE_TABLE["word_bits"]
    membrane_bits: int = 16
    run_bits: int = 4
    refetch: str = "inference"

    def __post_init__(self) -> None:
        for name in ("dram", "global_buffer", "scratchpad", "accumulate"):
            _check_nonneg(name, getattr(self, name))
        _check_int("word_bits", self.word_bits, 1)
        _check_int("membrane_bits", self.membrane_bits, 1)
        _check_int("run_bits", self.run_bits, 1)
        if self.refetch not in REFETCH:
            raise ValueError(f"refetch={self.refetch!r}: expected one of {', '.join(map(repr, REFETCH))}")

    def per_bit(self, level: str) -> float:
        """Energy of moving one bit at a memory ``level`` (``dram``, ``global_buffer``, ``scratchpad``)."""
        if level not in LEVELS[:3]:
            raise ValueError(f"level={level!r}: expected one of {', '.join(map(repr, LEVELS[:3]))}")
        return getattr(self, level) / self.word_bits


# ---------------------------------------------------------------------------------------
# storage formats


@dataclass(frozen=True)
class Storage:
    """Bits a weight tensor takes in one format: its values and its index (the overhead)."""

    values: int
    index: int

    @property
    def total(self) -> int:
        return self.values + self.index


StorageFormat = Callable[..., Storage]

#: name -> ``fn(weight, bits, *, run_bits) -> Storage``; see the module docstring.
STORAGE_FORMATS: Registry[StorageFormat] = Registry("storage format")


@STORAGE_FORMATS.register("dense")
def dense_storage(weight: Tensor, bits: int, *, run_bits: int = 4) -> Storage:
    """Every entry at ``bits`` bits, zeros included: ``N bits``, no index."""
    return Storage(weight.numel() * bits, 0)


@STORAGE_FORMATS.register("bitmask")
def bitmask_storage(weight: Tensor, bits: int, *, run_bits: int = 4) -> Storage:
    """A presence bit per entry plus the non-zero values: ``N + nnz bits``."""
    nnz = int(torch.count_nonzero(weight))
    return Storage(nnz * bits, weight.numel())


@STORAGE_FORMATS.register("run-length")
def run_length_storage(weight: Tensor, bits: int, *, run_bits: int = 4) -> Storage:
    """Non-zero values with an ``run_bits`` zero-run each, zeros beyond a run's reach stored.

    The tensor is read in its flattened (row-major) order. A gap of ``g`` zeros before a
    non-zero value needs ``g // 2^run_bits`` filler entries (a zero value whose run field
    is full), each ``bits + run_bits`` bits, counted as index. Trailing zeros are free.
    """
    flat = weight.detach().reshape(-1)
    where = torch.nonzero(flat).reshape(-1).to(torch.int64)
    nnz = int(where.numel())
    if nnz == 0:
        return Storage(0, 0)
    previous = torch.cat([where.new_tensor([-1]), where[:-1]])
    gaps = where - previous - 1  # zeros before each non-zero value
    fillers = int(torch.div(gaps, 2**run_bits, rounding_mode="floor").sum())
    return Storage(nnz * bits, nnz * run_bits + fillers * (bits + run_bits))


@STORAGE_FORMATS.register("coordinate")
def coordinate_storage(weight: Tensor, bits: int, *, run_bits: int = 4) -> Storage:
    """Each non-zero value with its coordinates: ``ceil(log2 size)`` bits per dimension."""
    nnz = int(torch.count_nonzero(weight))
    coord = sum(math.ceil(math.log2(s)) for s in weight.shape if s > 1)
    return Storage(nnz * bits, nnz * coord)


def storage_bits(weight: Tensor, bits: int, storage_format: str = "dense", *, run_bits: int = 4) -> Storage:
    """Bits ``weight`` takes at ``bits`` bits per value in ``storage_format``.

    Args:
        weight: the effective weight (pruned and quantized entries exactly 0), any shape.
        bits: bits per stored value, an integer >= 1.
        storage_format: a name in :data:`STORAGE_FORMATS`.
        run_bits: zero-run width of ``"run-length"``.

    A 10 x 100 layer with 100 non-zero weights at 8 bits takes 1000 + 800 = 1800 bits as a
    bitmask, 8000 dense, 100 x (8 + 4 + 7) = 1900 as coordinates.

    Raises:
        ValueError: unknown format, bits or run_bits below 1.
    """
    fn = STORAGE_FORMATS.get(storage_format)
    bits = _check_int("bits", bits, 1)
    run_bits = _check_int("run_bits", run_bits, 1)
    return fn(weight, bits, run_bits=run_bits)


# ---------------------------------------------------------------------------------------
# what a layer asks of the hardware


@dataclass(frozen=True)
class LayerLoad:
    """One Conv/Linear layer as the hardware model sees it, per sample.

    Attributes:
        name: module name.
        weight: effective weight (masked and quantized), detached, on the CPU.
        bits: bits per stored weight value.
        synapses: synapses per step (sum of the fan-out map; zero-padding taps excluded).
        nonzero_synapses: synapses per step through non-zero weights.
        in_neurons: input elements per step.
        out_neurons: output elements per step.
        timesteps: T.
        density_mean: input events per input element per step, mean over samples.
        density_worst: the same for the busiest sample.
        first: the layer reads the network input (from DRAM).
    """

    name: str
    weight: Tensor
    bits: int
    synapses: float
    nonzero_synapses: float
    in_neurons: int
    out_neurons: int
    timesteps: int
    density_mean: float
    density_worst: float
    first: bool = False

    def __post_init__(self) -> None:
        _check_int("bits", self.bits, 1)
        _check_int("timesteps", self.timesteps, 1)
        _check_int("in_neurons", self.in_neurons, 1)
        _check_int("out_neurons", self.out_neurons, 1)
        for name in ("synapses", "nonzero_synapses", "density_mean", "density_worst"):
            _check_nonneg(name, getattr(self, name))
        if self.nonzero_synapses > self.synapses:
            raise ValueError(f"nonzero_synapses={self.nonzero_synapses} exceeds synapses={self.synapses}")

    @property
    def entries(self) -> int:
        return self.weight.numel()

    @property
    def nonzero(self) -> int:
        return int(torch.count_nonzero(self.weight))

    def density(self, which: str | float) -> float:
        """``"mean"``, ``"worst"``, or a given density (a number >= 0) returned as is."""
        if isinstance(which, str):
            if which not in DENSITIES:
                raise ValueError(f"density={which!r}: expected one of {', '.join(map(repr, DENSITIES))} or a number >= 0")
            return self.density_mean if which == "mean" else self.density_worst
        return _check_nonneg("density", which)


@dataclass(frozen=True)
class Traffic:
    """Bits moved at each level and operations, for one layer, per sample per inference."""

    dram_weights: float = 0.0
    dram_activations: float = 0.0
    global_buffer_weights: float = 0.0
    global_buffer_activations: float = 0.0
    scratchpad_weights: float = 0.0
    scratchpad_activations: float = 0.0
    accumulates: float = 0.0
    neuron_updates: float = 0.0

    def __add__(self, other: "Traffic") -> "Traffic":
        return Traffic(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    def bits(self, level: str) -> float:
        """Weight plus activation bits at a memory level."""
        return getattr(self, f"{level}_weights") + getattr(self, f"{level}_activations")


def layer_traffic(load: LayerLoad, storage_format: str = "dense", density: str | float = "mean",
                  hw: Accelerator | None = None) -> Traffic:
    """Bits moved and operations of one layer for one inference (see the module docstring).

    Args:
        load: the layer.
        storage_format: how its weights are stored (:data:`STORAGE_FORMATS`).
        density: ``"mean"``, ``"worst"`` or an input spike density (events per input
            neuron per step).
        hw: the accelerator (default :class:`Accelerator`).
    """
    hw = hw or Accelerator()
    d = load.density(density)
    T = load.timesteps
    S = storage_bits(load.weight, load.bits, storage_format, run_bits=hw.run_bits).total
    fetches = 1 if hw.refetch == "inference" else T
    spike_reads = d * T * load.synapses * S / load.entries if load.entries else 0.0
    first_in = load.in_neurons * T if load.first else 0
    return Traffic(
        dram_weights=fetches * S,
        global_buffer_weights=fetches * S + T * S,
        scratchpad_weights=T * S + spike_reads,
        dram_activations=first_in,
        global_buffer_activations=first_in + load.in_neurons * T + load.out_neurons * T,
        scratchpad_activations=2 * hw.membrane_bits * load.out_neurons * T,
        accumulates=d * T * load.nonzero_synapses,
        neuron_updates=load.out_neurons * T,
    )


def traffic_energy(traffic: Traffic, hw: Accelerator | None = None) -> dict[str, float]:
    """``{level: energy}`` for :data:`LEVELS` (normalized units, 1 = one 16-bit MAC)."""
    hw = hw or Accelerator()
    out = {level: traffic.bits(level) * hw.per_bit(level) for level in LEVELS[:3]}
    out["compute"] = (traffic.accumulates + traffic.neuron_updates) * hw.accumulate
    return out


@dataclass
class HardwareReport:
    """Energy of one inference, per sample, in normalized units (1 = one 16-bit MAC).

    Attributes:
        storage_format, density: what was priced.
        layers: ``{layer: {level: energy}}`` for :data:`LEVELS`.
        traffic: ``{layer: Traffic}``.
        storage: ``{layer: Storage}``: bits of values and index.
    """

    storage_format: str
    density: str | float
    layers: dict[str, dict[str, float]] = field(default_factory=dict)
    traffic: dict[str, Traffic] = field(default_factory=dict)
    storage: dict[str, Storage] = field(default_factory=dict)
    hw: Accelerator = field(default_factory=Accelerator)

    @property
    def by_level(self) -> dict[str, float]:
        """``{level: energy}`` summed over layers."""
        return {lv: sum(e[lv] for e in self.layers.values()) for lv in LEVELS}

    @property
    def by_kind(self) -> dict[str, float]:
        """``{"weights", "activations", "compute"}``: memory energy of weights and of
        activations (spikes, membranes), and arithmetic."""
        total = sum(self.traffic.values(), Traffic())
        w = sum(getattr(total, f"{lv}_weights") * self.hw.per_bit(lv) for lv in LEVELS[:3])
        a = sum(getattr(total, f"{lv}_activations") * self.hw.per_bit(lv) for lv in LEVELS[:3])
        return {"weights": w, "activations": a, "compute": self.by_level["compute"]}

    @property
    def total(self) -> float:
        return sum(self.by_level.values())

    @property
    def storage_bits(self) -> int:
        """Bits of every layer's stored weights, index included."""
        return sum(s.total for s in self.storage.values())


def inference_energy(loads: list[LayerLoad], storage_format: str = "dense", density: str | float = "mean",
                     hw: Accelerator | None = None) -> HardwareReport:
    """Price every layer of a :func:`profile` (or hand-made loads) for one inference."""
    hw = hw or Accelerator()
    STORAGE_FORMATS.get(storage_format)  # fail early on a bad name
    report = HardwareReport(storage_format, density, hw=hw)
    for load in loads:
        t = layer_traffic(load, storage_format, density, hw)
        report.traffic[load.name] = t
        report.layers[load.name] = traffic_energy(t, hw)
        report.storage[load.name] = storage_bits(load.weight, load.bits, storage_format, run_bits=hw.run_bits)
    return report


# ---------------------------------------------------------------------------------------
# measuring a model




def profile(model: nn.Module, x: Tensor, bits: int | Mapping[str, int]) -> list[LayerLoad]:
    """Measure what each Conv/Linear layer of an SNN asks of the hardware.

    Runs ``model(x)`` once in eval mode under ``torch.no_grad()`` with hooks that record
    each layer's input events per sample, then reads each layer's effective weight
    (``module.weight``: a pruning mask or a quantizer parametrization applies).

    Args:
        model: an SNN whose Conv/Linear layers see (T*B, ...) inputs (snnkit's models do).
        x: its input, (T, B, ...) spikes or event counts (non-negative integers).
        bits: bits per stored weight value: one for all layers, or ``{module name: bits}``
            (layers left out take 32).

    Returns:
        One :class:`LayerLoad` per Conv/Linear layer, in call order; the first one reads the
        network input from DRAM.

    Raises:
        ValueError: ``x`` not (T, B, ...), a layer input that is not a non-negative
            integer count (an analog input would need multiplications), bad ``bits``.
    """
    if x.dim() < 3:
        raise ValueError(f"input of shape {tuple(x.shape)}: expected (T, B, ...) for an SNN")
    T, B = int(x.shape[0]), int(x.shape[1])
    names = {m: n for n, m in model.named_modules() if isinstance(m, LAYER_TYPES)}
    if isinstance(bits, Mapping):
        unknown = set(bits) - set(names.values())
        if unknown:
            raise ValueError(f"bits names {sorted(unknown)}, which are not Conv/Linear layers; "
                             f"expected names among {sorted(names.values())}")
        layer_bits = {n: _check_int(f"bits[{n!r}]", bits.get(n, 32), 1) for n in names.values()}
    else:
        b = _check_int("bits", bits, 1)
        layer_bits = {n: b for n in names.values()}

    seen: dict[str, dict[str, Any]] = {}

    def hook(module: nn.Module, inputs: tuple, output: Tensor) -> None:
        name = names[module]
        inp = inputs[0].detach()
        rows = int(inp.shape[0])
        if rows == T * B:
            per_step = inp.reshape(T, B, -1)
        elif rows == B:  # the same input at every step (a stride-0 view along T)
            per_step = inp.reshape(1, B, -1).expand(T, B, -1)
        else:
            raise ValueError(f"layer {name!r} saw {rows} rows; expected T*B={T * B} or B={B}")
        if bool((inp < 0).any()) or not bool((inp == inp.round()).all()):
            raise ValueError(f"layer {name!r}: its input holds values that are not event counts "
                             "(non-negative integers); the hardware model prices accumulate-only layers")
        n_in = per_step.shape[-1]
        per_sample = per_step.sum(dim=(0, 2), dtype=torch.float64) / (T * n_in)  # (B,)
        seen[name] = {"module": module, "in_shape": tuple(inp.shape[1:]), "in_neurons": n_in,
                      "out_neurons": output[0].numel(), "density": per_sample, "order": len(seen)}

    with recording(model, [(m, hook) for m in names]):
        model(x)

    loads = []
    for name, rec in sorted(seen.items(), key=lambda kv: kv[1]["order"]):
        module = rec["module"]
        with torch.no_grad():
            weight = effective_weight(module).to("cpu").clone()
            syn = float(fanout(module, rec["in_shape"]).sum())
            syn_nz = float(fanout(module, rec["in_shape"], nonzero_only=True).sum())
        loads.append(LayerLoad(
            name=name, weight=weight, bits=layer_bits[name], synapses=syn, nonzero_synapses=syn_nz,
            in_neurons=int(rec["in_neurons"]), out_neurons=int(rec["out_neurons"]), timesteps=T,
            density_mean=float(rec["density"].mean()), density_worst=float(rec["density"].max()),
            first=rec["order"] == 0,
        ))
    return loads

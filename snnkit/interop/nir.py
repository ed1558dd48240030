"""snnkit nets to NIR graphs and back (the Neuromorphic Intermediate Representation).

:func:`to_nir` writes a spiking :class:`~snnkit.models.Net`, compressed or not, as a
``nir.NIRGraph``: convolutions, affine layers, average pooling, flatten and LIF neurons,
with pruned weights as zeros and quantized weights as their levels (``scale * code``;
each quantized node's ``metadata`` keeps the record: ``quant_scheme``, ``quant_bits``,
``quant_scale``, ``quant_codes``, ``quant_per_channel``). :func:`write_nir` and
:func:`read_nir` store it in a ``.nir`` (HDF5) file; :func:`from_nir` builds an snnkit net
from a chain-shaped graph again.

**What the graph means.** NIR describes time-continuous neurons; a LIF node is::

    tau dv/dt = (v_leak - v) + r I,    spike z = 1 when v > v_threshold, then v = v_reset

snnkit's discrete LIF (:mod:`snnkit.neurons`) is ``U[t] = beta U[t-1] + I[t]`` with a
spike when ``U[t] > theta``. Integrating NIR's equation with one forward-Euler step of
length ``dt`` per time step, with ``I`` held over the step, gives::

    v[t] = (1 - dt/tau) v[t-1] + (dt/tau) v_leak + (dt r / tau) I[t]

which is snnkit's update exactly when ``tau = dt / (1 - beta)``, ``r = tau / dt = 1 /
(1 - beta)`` (unit gain on the input), ``v_leak = 0`` and ``v_threshold = theta``. A layer
without leak (``beta = 1``) becomes NIR's ``IF`` node (``dv/dt = r I``, ``r = 1 / dt``).
The default ``dt = 1e-4`` is the step snntorch's reader assumes. Parameters are written
as float64 arrays of the layer's shape (one entry per neuron): ``1 - dt/tau`` then gives
back snnkit's float32 leak exactly. A leak or threshold per channel is written as the
per-neuron array it amounts to.

**The reset.** NIR's LIF resets to ``v_reset`` in the step of the spike. snnkit's
``reset="zero"`` applies the reset at the next step, before the leak:
``U[t] = beta (1 - S[t-1]) U[t-1] + I[t]``. Both give ``U[t] = beta * 0 + I[t]`` after a
spike, so the spike trains are the same; only the membrane reported in the step of a spike
differs (snnkit's is the value that crossed the threshold, NIR's is ``v_reset = 0``).
NIR has no subtractive reset and no neuron without reset: ``reset="subtract"`` (snnkit's
default) and ``reset="none"`` are refused by name. Build nets for export with
``NeuronSpec(reset="zero")``.

**Refused, by name** (rather than a graph that computes something else): max pooling
(NIR's pooling nodes are ``AvgPool2d`` and ``SumPool2d``), 1-D pooling, average pooling with
padding or ``ceil_mode``, batch norm (NIR has no such node), a reset NIR cannot express,
a net with leak 1 in some channels and less in others, ANN twins. Dropout is left out
(the graph is for inference).

**Shapes have no batch dimension**, as NIR defines them: ``Flatten`` is written with
``start_dim=0`` over the (C, H, W) map. Readers that map it to ``torch.nn.Flatten(0)``
(snntorch's and norse's do) must then be fed one unbatched sample at a time.
"""
from __future__ import annotations

import copy
import dataclasses
import os
from pathlib import Path
from typing import Sequence

import nir
import numpy as np
import torch
from torch import nn

from ..compress.masks import remove_masks
from ..compress.quant import QuantRecord, quant_records, remove_quantizers
from ..models import LIF, BasicBlock, Net, NeuronSpec, ResNetSpec, VGGSpec, build
from .spec import Layer, SequentialSpec

__all__ = ["DEFAULT_DT", "to_nir", "write_nir", "read_nir", "graph_table", "from_nir", "lif_parameters",
           "fold_batch_norm"]

#: The time step (seconds) a graph is written for by default: the one snntorch's reader assumes.
DEFAULT_DT = 1e-4


def _check_dt(dt: float) -> float:
    if isinstance(dt, bool) or not isinstance(dt, (int, float)) or not dt > 0 or not np.isfinite(dt):
        raise ValueError(f"dt={dt!r}: expected a positive time step in seconds")
    return float(dt)


def lif_parameters(beta: float | np.ndarray, threshold: float | np.ndarray, dt: float = DEFAULT_DT) -> dict:
    """NIR ``LIF`` parameters of snnkit's discrete LIF (see the module docstring).

    Args:
        beta: leak per step in [0, 1) (scalar or array).
        threshold: firing threshold.
        dt: time step in seconds.

    Returns:
        ``{"tau", "r", "v_leak", "v_threshold", "v_reset"}``, float64 arrays shaped like
        ``np.broadcast(beta, threshold)``: ``tau = dt / (1 - beta)``, ``r = tau / dt``,
        ``v_leak = v_reset = 0``, ``v_threshold = threshold``.

    Raises:
        ValueError: a leak outside [0, 1) (``beta = 1`` is NIR's ``IF`` node) or a bad ``dt``.
    """
    dt = _check_dt(dt)
    beta, threshold = np.broadcast_arrays(np.asarray(beta, dtype=np.float64), np.asarray(threshold, np.float64))
    if not ((beta >= 0) & (beta < 1)).all():
        raise ValueError(f"beta={np.unique(beta)[:5].tolist()}: expected leaks in [0, 1) (beta = 1 is an IF node)")
    tau = dt / (1.0 - beta)
    zeros = np.zeros_like(beta)
    return {"tau": tau, "r": tau / dt, "v_leak": zeros, "v_threshold": threshold.copy(), "v_reset": zeros.copy()}


def _refuse(name: str, module: nn.Module, why: str) -> ValueError:
    return ValueError(f"{type(module).__name__} at {name}: {why}")


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().float().numpy().copy()


def _quant_metadata(record: QuantRecord | None) -> dict:
    if record is None:
        return {}
    return {"quant_scheme": record.scheme, "quant_bits": record.bits, "quant_per_channel": record.per_channel,
            "quant_scale": np.atleast_1d(record.scale.numpy()).astype(np.float32),
            "quant_codes": record.codes.numpy().astype(np.float32)}


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


class _Graph:
    """Nodes and edges under construction; a "port" is (node name, sample shape)."""

    def __init__(self, dt: float, records: dict[str, QuantRecord]) -> None:
        self.dt, self.records = dt, records
        self.nodes: dict[str, nir.NIRNode] = {}
        self.edges: list[tuple[str, str]] = []
        self.counts: dict[str, int] = {}

    def node(self, prefix: str, node: nir.NIRNode, sources: list[tuple[str, tuple]], numbered: str | None = None):
        key = numbered or prefix
        self.counts[key] = self.counts.get(key, 0) + 1
        name = f"{prefix}{self.counts[key]}"
        self.nodes[name] = node
        self.edges += [(src, name) for src, _ in sources]
        return name

    def add(self, m: nn.Module, name: str, port: tuple[str, tuple]) -> tuple[str, tuple]:
        """Append module ``m`` (snnkit name ``name``) after ``port``; returns the new port."""
        src, shape = port
        if isinstance(m, (nn.Dropout, nn.Identity)):
            return port
        if isinstance(m, nn.Sequential):  # a ResNet shortcut: conv (+ identity norm)
            for i, sub in enumerate(m):
                port = self.add(sub, f"{name}.{i}", port)
            return port
        if isinstance(m, BasicBlock):
            return self.block(m, name, port)
        if isinstance(m, LIF):
            return self.lif(m, name, [port])
        out = tuple(_out(m, shape))
        meta = _quant_metadata(self.records.get(name))
        if isinstance(m, (nn.Conv1d, nn.Conv2d)):
            if m.padding_mode != "zeros":
                raise _refuse(name, m, f"padding_mode={m.padding_mode!r}: NIR convolutions pad with zeros")
            bias = _np(m.bias) if m.bias is not None else np.zeros(m.out_channels, np.float32)
            if isinstance(m, nn.Conv1d):
                node = nir.Conv1d(input_shape=shape[1], weight=_np(m.weight), stride=m.stride[0],
                                  padding=m.padding if isinstance(m.padding, str) else m.padding[0],
                                  dilation=m.dilation[0], groups=m.groups, bias=bias, metadata=meta)
            else:
                node = nir.Conv2d(input_shape=tuple(shape[1:]), weight=_np(m.weight), stride=m.stride,
                                  padding=m.padding, dilation=m.dilation, groups=m.groups, bias=bias, metadata=meta)
            return self.node("conv", node, [port], numbered="weighted"), out
        if isinstance(m, nn.Linear):
            node = (nir.Linear(weight=_np(m.weight), metadata=meta) if m.bias is None
                    else nir.Affine(weight=_np(m.weight), bias=_np(m.bias), metadata=meta))
            return self.node("fc", node, [port], numbered="weighted"), out
        if isinstance(m, nn.Flatten):
            node = nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1)
            return self.node("flatten", node, [port]), out
        if isinstance(m, (nn.AvgPool2d, nn.AdaptiveAvgPool2d)):
            kernel, stride = _avg_window(m, name, shape)
            node = nir.AvgPool2d(kernel_size=np.array(kernel), stride=np.array(stride), padding=np.array((0, 0)))
            node.input_type, node.output_type = {"input": np.array(shape)}, {"output": np.array(out)}
            return self.node("pool", node, [port]), out
        if isinstance(m, (nn.MaxPool1d, nn.MaxPool2d)):
            raise _refuse(name, m, "NIR has no max pooling (its pooling nodes are AvgPool2d and SumPool2d); build "
                                   "the net with average pooling, e.g. VGGSpec(pool='avg')")
        if isinstance(m, (nn.AvgPool1d, nn.AdaptiveAvgPool1d)):
            raise _refuse(name, m, "NIR has no 1-D pooling node (only AvgPool2d and SumPool2d)")
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            raise _refuse(name, m, "NIR has no batch-norm node; fold it into the preceding layer first "
                                   "(snnkit.interop.fold_batch_norm)")
        raise _refuse(name, m, "no NIR node for this module")

    def lif(self, m: LIF, name: str, ports: list[tuple[str, tuple]]) -> tuple[str, tuple]:
        shape = ports[0][1]
        if m.reset != "zero":
            raise _refuse(name, m, f"reset={m.reset!r}: NIR's LIF resets to v_reset in the step of the spike, "
                                   "which matches snnkit's reset='zero' only (NIR has no subtractive reset and "
                                   "no neuron without reset); build with NeuronSpec(reset='zero')")
        per_channel = (-1,) + (1,) * (len(shape) - 1)
        beta, thr = (p.detach().cpu().double() for p in (m.beta.clamp(0, 1), m.threshold))
        beta, thr = (np.broadcast_to((p.reshape(per_channel) if p.dim() else p).numpy(), shape).copy()
                     for p in (beta, thr))
        if (beta == 1).all():
            node = nir.IF(r=np.full(shape, 1.0 / self.dt), v_threshold=thr, v_reset=np.zeros(shape))
        elif (beta == 1).any():
            raise _refuse(name, m, "leak 1 (no leak) in some channels and below 1 in others: NIR's LIF needs "
                                   "tau < inf and its IF node has no leak")
        else:
            node = nir.LIF(**lif_parameters(beta, thr, self.dt))
        return self.node("lif", node, ports), shape

    def block(self, m: BasicBlock, name: str, port: tuple[str, tuple]) -> tuple[str, tuple]:
        """conv1 -> act1 -> conv2, and the shortcut, both into act2 (NIR sums a node's inputs)."""
        h = port
        for part in ("conv1", "bn1", "act1", "conv2", "bn2"):
            h = self.add(getattr(m, part), f"{name}.{part}", h)
        s = self.add(m.shortcut, f"{name}.shortcut", port)
        return self.lif(m.act2, f"{name}.act2", [h, s])


@torch.no_grad()
def _out(m: nn.Module, shape: tuple) -> tuple:
    return tuple(m.eval()(torch.zeros((1, *shape))).shape[1:])


def _avg_window(m: nn.Module, name: str, shape: tuple) -> tuple[tuple[int, int], tuple[int, int]]:
    """(kernel, stride) of an average pooling as NIR's AvgPool2d, or refuse."""
    if isinstance(m, nn.AdaptiveAvgPool2d):
        size = _pair(m.output_size)
        if any(s is None or n % s for n, s in zip(shape[1:], size)):
            raise _refuse(name, m, f"output_size={m.output_size} on a {tuple(shape[1:])} map: NIR's AvgPool2d "
                                   "needs the map to divide evenly")
        kernel = tuple(n // s for n, s in zip(shape[1:], size))
        return kernel, kernel
    if _pair(m.padding) != (0, 0) or m.ceil_mode or m.divisor_override is not None:
        raise _refuse(name, m, f"padding={m.padding}, ceil_mode={m.ceil_mode}, divisor_override="
                               f"{m.divisor_override}: NIR's AvgPool2d is defined here without padding")
    return _pair(m.kernel_size), _pair(m.stride)


def to_nir(net: Net, *, dt: float = DEFAULT_DT) -> nir.NIRGraph:
    """The NIR graph of a spiking snnkit net (see the module docstring for the mapping).

    Args:
        net: a spiking Net (VGG, ResNet or :class:`~snnkit.interop.spec.SequentialSpec`),
            pruned and/or quantized or not; it is not modified.
        dt: the time step in seconds that one snnkit step stands for.

    Returns:
        a type-checked ``nir.NIRGraph``: nodes ``input``, ``conv1``/``fc1``..., ``lif1``...,
        ``pool1``..., ``flatten1``, ``output``; metadata ``{"dt", "readout"}``. Conv and
        linear nodes are numbered together in forward order, like
        :func:`snnkit.models.layer_labels`.

    Raises:
        ValueError: a part of the net NIR cannot express, named with its module path.
    """
    dt = _check_dt(dt)
    if not isinstance(net, Net) or not net.spiking:
        raise ValueError(f"expected a spiking snnkit Net, got {type(net).__name__}"
                         f"{' (an ANN twin)' if isinstance(net, Net) else ''}")
    plain = copy.deepcopy(net).cpu().float().eval()
    graph = _Graph(dt, remove_quantizers(plain, bake=True))
    remove_masks(plain)
    shape = tuple(net.spec.in_shape)
    graph.nodes["input"] = nir.Input(input_type={"input": np.array(shape)})
    port = ("input", shape)
    for i, m in enumerate(plain.body.layers):
        port = graph.add(m, f"body.layers.{i}", port)
    graph.nodes["output"] = nir.Output(output_type={"output": np.array(port[1])})
    graph.edges.append((port[0], "output"))
    readout = getattr(net.spec, "readout", "mem")
    return nir.NIRGraph(nodes=graph.nodes, edges=graph.edges, metadata={"dt": dt, "readout": readout})


def write_nir(graph: nir.NIRGraph | Net, path: str | os.PathLike, *, dt: float = DEFAULT_DT) -> Path:
    """Write a graph (or a net, through :func:`to_nir` at ``dt``) to a ``.nir`` file; returns the path.

    The file is written next to its final name and renamed, so an interrupted write never
    leaves a half-written file.
    """
    if isinstance(graph, Net):
        graph = to_nir(graph, dt=dt)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        nir.write(tmp, graph)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def read_nir(path: str | os.PathLike) -> nir.NIRGraph:
    """Read a ``.nir`` file.

    Raises:
        ValueError: the file is missing or is not a NIR file (names the path).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    try:
        return nir.read(path)
    except (OSError, KeyError, ValueError) as err:
        raise ValueError(f"{path}: not a readable NIR file ({type(err).__name__}: {err})") from err


def _span(values: np.ndarray, fmt: str, scale: float = 1.0) -> str:
    """``fmt`` of the one value of ``values`` (times ``scale``), or ``low-high`` when they differ."""
    v = np.asarray(values, dtype=np.float64) * scale
    lo, hi = float(v.min()), float(v.max())
    return format(lo, fmt) if lo == hi else f"{format(lo, fmt)}-{format(hi, fmt)}"


def _dims(shape: Sequence[int]) -> str:
    return "x".join(str(int(n)) for n in shape)


def _weights_text(node: nir.NIRNode) -> str:
    w = np.asarray(node.weight)
    text = f"weight {_dims(w.shape)}, {int(np.count_nonzero(w)):,} of {w.size:,} non-zero"
    meta = getattr(node, "metadata", None) or {}
    if "quant_bits" in meta:
        levels = np.unique(np.asarray(meta["quant_codes"])).size
        text += f", {int(meta['quant_bits'])}-bit {meta['quant_scheme']} codes ({levels} levels used)"
    return text


def _forward_order(graph: nir.NIRGraph) -> list[str]:
    """Node names in an order that follows the edges (inputs before the nodes they feed; ties
    and nodes on a cycle in the graph's own order). A graph read from a file lists its nodes
    alphabetically, which says nothing about the order data flows in."""
    names = list(graph.nodes)
    pending = {n: sum(1 for _, b in graph.edges if b == n) for n in names}
    order: list[str] = []
    while len(order) < len(names):
        ready = [n for n in names if n not in order and pending[n] == 0]
        nxt = ready[0] if ready else next(n for n in names if n not in order)  # a cycle: break it in list order
        order.append(nxt)
        for a, b in graph.edges:
            if a == nxt and b in pending:
                pending[b] -= 1
    return order


def graph_table(graph: nir.NIRGraph) -> list[dict[str, str]]:
    """What a NIR graph holds, one row per node in words, for a reader to check the mapping.

    Args:
        graph: a graph from :func:`to_nir` or :func:`read_nir` (any graph of the node types
            :func:`to_nir` writes; other nodes get their type only).

    Returns:
        rows ``{"node", "type", "shape", "holds"}``, in the order data flows through the
        graph (inputs before the nodes they feed): the node's name, its NIR type, the
        shape of one sample it outputs (no batch dimension, e.g. ``8x12x12``), and what it
        holds: weights (shape, non-zero count, quantization codes from the metadata), pooling
        windows, and a LIF node's tau (ms), r, v_leak, v_threshold and v_reset with the leak
        per step ``1 - dt/tau`` they stand for at the graph's ``dt`` (``metadata["dt"]``,
        else :data:`DEFAULT_DT`). A value that differs between neurons is shown as its range.
    """
    dt = float(graph.metadata.get("dt", DEFAULT_DT)) if graph.metadata else DEFAULT_DT
    rows = []
    for name in _forward_order(graph):
        node = graph.nodes[name]
        out = next(iter(node.output_type.values()), None) if getattr(node, "output_type", None) else None
        if isinstance(node, (nir.Conv1d, nir.Conv2d)):
            holds = (f"{_weights_text(node)}, stride {_dims(np.atleast_1d(node.stride))}, "
                     f"padding {_dims(np.atleast_1d(node.padding))}")
        elif isinstance(node, (nir.Affine, nir.Linear)):
            holds = _weights_text(node) + (", bias" if isinstance(node, nir.Affine) else ", no bias")
        elif isinstance(node, (nir.AvgPool2d, nir.SumPool2d)):
            holds = f"kernel {_dims(np.atleast_1d(node.kernel_size))}, stride {_dims(np.atleast_1d(node.stride))}"
        elif isinstance(node, nir.Flatten):
            holds = f"start_dim {node.start_dim}, end_dim {node.end_dim} (one sample, no batch dimension)"
        elif isinstance(node, nir.LIF):
            holds = (f"tau {_span(node.tau, '.4g', 1e3)} ms, r {_span(node.r, '.4g')}, v_leak {_span(node.v_leak, 'g')}, "
                     f"v_threshold {_span(node.v_threshold, '.4g')}, v_reset {_span(node.v_reset, 'g')}: "
                     f"leak {_span(1.0 - dt / np.asarray(node.tau, dtype=np.float64), '.4g')} per step of "
                     f"{dt * 1e3:g} ms")
        elif isinstance(node, nir.IF):
            holds = (f"r {_span(node.r, '.4g')}, v_threshold {_span(node.v_threshold, '.4g')}, "
                     f"v_reset {_span(node.v_reset, 'g')}: no leak")
        elif isinstance(node, (nir.Input, nir.Output)):
            holds = "one sample, no batch dimension"
        else:
            holds = ""
        rows.append({"node": name, "type": type(node).__name__, "shape": "" if out is None else _dims(out),
                     "holds": holds})
    return rows


# ---------------------------------------------------------------------------------------
# NIR -> snnkit

_READS = "Input, Output, Conv1d, Conv2d, Affine, Linear, AvgPool2d, Flatten, LIF and IF"


def _chain(graph: nir.NIRGraph) -> list[str]:
    """Node names from the Input to the Output, or refuse a graph that is not a chain."""
    ins = {n: [a for a, b in graph.edges if b == n] for n in graph.nodes}
    outs = {n: [b for a, b in graph.edges if a == n] for n in graph.nodes}
    inputs = [n for n, node in graph.nodes.items() if isinstance(node, nir.Input)]
    if len(inputs) != 1:
        raise ValueError(f"graph with {len(inputs)} Input nodes: snnkit reads graphs with one input")
    for name in graph.nodes:
        if len(ins[name]) > 1 or len(outs[name]) > 1:
            raise ValueError(f"node {name!r} has {len(ins[name])} inputs and {len(outs[name])} outputs: snnkit "
                             "reads chains of nodes only (a graph with shortcuts or branches is not a "
                             "SequentialSpec)")
    order, name = [], inputs[0]
    while outs[name]:
        name = outs[name][0]
        if name in order:
            raise ValueError(f"node {name!r} lies on a cycle: snnkit reads feed-forward chains only")
        order.append(name)
    if not order or not isinstance(graph.nodes[order[-1]], nir.Output) or len(order) + 1 != len(graph.nodes):
        raise ValueError("the graph is not one chain from its Input node to its Output node")
    return order[:-1]


def _per_layer_or_channel(name: str, what: str, values: np.ndarray) -> np.ndarray:
    """One value (0-D) or one per channel ((C,)) of a per-neuron parameter array, or refuse."""
    flat = values.reshape(values.shape[0], -1) if values.ndim > 1 else values.reshape(-1, 1)
    if (values == values.flat[0]).all():
        return np.asarray(values.flat[0])
    if values.ndim > 1 and (flat == flat[:, :1]).all():
        return flat[:, 0].copy()
    if values.ndim == 1:
        return values.copy()  # after a linear layer, a channel is a neuron
    raise ValueError(f"node {name!r}: {what} varies within a channel; snnkit holds one value per layer or "
                     "per channel")


def _neuron_of(name: str, node: nir.NIRNode, dt: float, surrogate: str) -> tuple[Layer, np.ndarray, np.ndarray]:
    if isinstance(node, nir.IF):
        gain, beta = np.asarray(node.r, np.float64) * dt, np.ones_like(np.asarray(node.r, np.float64))
    else:
        tau = np.asarray(node.tau, np.float64)
        gain, beta = np.asarray(node.r, np.float64) * dt / tau, 1.0 - dt / tau
        if not np.all(np.asarray(node.v_leak) == 0):
            raise ValueError(f"node {name!r}: v_leak != 0; snnkit's LIF rests at 0")
    if not np.allclose(gain, 1.0, rtol=1e-6, atol=0):
        raise ValueError(f"node {name!r}: input gain r*dt/tau = {np.unique(gain)[:3].tolist()} at dt={dt}; "
                         "snnkit's LIF adds its input with gain 1 (was the graph written for another dt?)")
    if not np.all(np.asarray(node.v_reset) == 0):
        raise ValueError(f"node {name!r}: v_reset != 0; snnkit's reset='zero' resets to 0")
    if not ((beta >= 0) & (beta <= 1)).all():
        raise ValueError(f"node {name!r}: leak 1 - dt/tau outside [0, 1] at dt={dt}")
    beta = _per_layer_or_channel(name, "the leak", beta).astype(np.float32)
    thr = _per_layer_or_channel(name, "v_threshold", np.asarray(node.v_threshold, np.float64)).astype(np.float32)
    per_channel = beta.ndim > 0 or thr.ndim > 0
    if per_channel:
        channels = np.asarray(node.v_threshold).shape[0]
        beta, thr = np.broadcast_to(beta, (channels,)).copy(), np.broadcast_to(thr, (channels,)).copy()
    neuron = NeuronSpec(beta=float(beta.mean()), threshold=float(thr.mean()), reset="zero", surrogate=surrogate,
                        per_channel=per_channel)
    return Layer("lif", neuron=neuron), beta, thr


def _layer_of(name: str, node: nir.NIRNode, shape: tuple) -> tuple[Layer, dict[str, np.ndarray]]:
    if isinstance(node, (nir.Conv1d, nir.Conv2d)):
        if node.groups != 1:
            raise ValueError(f"node {name!r}: groups={node.groups}; snnkit reads dense convolutions only")
        one = isinstance(node, nir.Conv1d)
        kw = {"kernel_size": tuple(int(k) for k in node.weight.shape[2:]),
              "stride": _tuple(node.stride, one), "dilation": _tuple(node.dilation, one),
              "padding": node.padding if isinstance(node.padding, str) else _tuple(node.padding, one)}
        layer = Layer.of("conv1d" if one else "conv2d", int(node.weight.shape[0]), bias=True, **kw)
        return layer, {"weight": node.weight, "bias": node.bias}
    if isinstance(node, nir.Affine):
        return Layer.of("linear", int(node.weight.shape[0]), bias=True), {"weight": node.weight, "bias": node.bias}
    if isinstance(node, nir.Linear):
        return Layer.of("linear", int(node.weight.shape[0]), bias=False), {"weight": node.weight}
    if isinstance(node, nir.AvgPool2d):
        if np.any(np.asarray(node.padding) != 0):
            raise ValueError(f"node {name!r}: AvgPool2d with padding {node.padding} is not read")
        return Layer.of("avgpool2d", kernel_size=_tuple(node.kernel_size, False),
                        stride=_tuple(node.stride, False)), {}
    if isinstance(node, nir.Flatten):
        end = node.end_dim % len(shape)
        if node.start_dim != 0 or end != len(shape) - 1:
            raise ValueError(f"node {name!r}: Flatten(start_dim={node.start_dim}, end_dim={node.end_dim}) of a "
                             f"{shape} sample; snnkit reads a flatten of the whole sample (start_dim=0)")
        return Layer.of("flatten"), {}
    raise ValueError(f"node {name!r} ({type(node).__name__}): snnkit reads {_READS} nodes")


def _tuple(v: object, one: bool) -> int | tuple[int, int]:
    """A NIR size (scalar or array) as torch wants it: an int (1-D) or a pair (2-D)."""
    a = np.asarray(v).reshape(-1)
    return int(a[0]) if one else tuple(int(x) for x in np.broadcast_to(a, (2,)))


def from_nir(graph: nir.NIRGraph | str | os.PathLike, *, dt: float | None = None,
             surrogate: str = "arctan") -> Net:
    """An snnkit net from a chain-shaped NIR graph (the inverse of :func:`to_nir` for chains).

    LIF nodes become LIF layers with ``beta = 1 - dt/tau``, ``threshold = v_threshold`` and
    ``reset="zero"``, per layer or per channel; IF nodes have ``beta = 1``.

    Args:
        graph: a graph, or the path of a ``.nir`` file.
        dt: the time step the graph is read at (default: the graph's ``metadata["dt"]``,
            else :data:`DEFAULT_DT`).
        surrogate: the surrogate of every LIF layer (NIR does not store one).

    Raises:
        ValueError: a graph that is not a chain, a node snnkit cannot read, or neuron
            parameters snnkit's LIF cannot hold (``v_leak`` or ``v_reset`` != 0, an input gain
            ``r dt / tau`` != 1, parameters varying within a channel), named with the node.
    """
    if not isinstance(graph, nir.NIRGraph):
        graph = read_nir(graph)
    meta = graph.metadata if isinstance(graph.metadata, dict) else {}
    dt = _check_dt(float(meta.get("dt", DEFAULT_DT)) if dt is None else dt)
    start = next(n for n in graph.nodes.values() if isinstance(n, nir.Input))
    shape = in_shape = tuple(int(n) for n in np.asarray(start.input_type["input"]).reshape(-1))
    layers, values = [], []
    for name in _chain(graph):
        node = graph.nodes[name]
        if isinstance(node, (nir.LIF, nir.IF)):
            layer, beta, thr = _neuron_of(name, node, dt, surrogate)
            params = {"beta": beta, "threshold": thr}
        else:
            layer, params = _layer_of(name, node, shape)
        layers.append(layer)
        values.append(params)
        shape = layer.out_shape(shape)
    net = build(SequentialSpec(in_shape, tuple(layers)))
    with torch.no_grad():
        for module, params in zip(net.body.layers, values):
            for key, value in params.items():
                getattr(module, key).copy_(torch.as_tensor(np.asarray(value, np.float32)))
    return net.eval()


# ---------------------------------------------------------------------------------------
# batch norm, which NIR has no node for

_WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.Linear)
_BN = (nn.BatchNorm1d, nn.BatchNorm2d)


def _spec_without_bn(spec: VGGSpec | ResNetSpec | SequentialSpec) -> VGGSpec | ResNetSpec | SequentialSpec:
    if isinstance(spec, SequentialSpec):
        layers = []
        for layer in spec.layers:
            if layer.kind.startswith("batchnorm"):
                j = max((i for i, prev in enumerate(layers) if prev.width is not None), default=None)
                if j is None:
                    raise ValueError(f"{layer.kind} layer before any conv or linear layer: nothing to fold it into")
                layers[j] = Layer.of(layers[j].kind, layers[j].width, **{**layers[j].kwargs, "bias": True})
            else:
                layers.append(layer)
        return SequentialSpec(spec.in_shape, tuple(layers))
    return dataclasses.replace(spec, batch_norm=False, bias=True)


def fold_batch_norm(net: Net) -> Net:
    """A copy of ``net`` with every batch norm folded into the conv or linear layer before it.

    Each ``BatchNorm`` in eval mode computes ``y = (x - mean) * s + b`` with ``s = gamma /
    sqrt(var + eps)``; folded, the layer before it gets weight ``W * s`` (per output
    channel) and bias ``(bias - mean) * s + b``. The result is built from the same spec
    with ``batch_norm=False, bias=True`` (or, for a
    :class:`~snnkit.interop.spec.SequentialSpec`, without its batch-norm layers), in eval
    mode. Its outputs equal ``net.eval()``'s up to float rounding (the products are
    rounded in another order). Pruned weights stay zero; the masks themselves are baked in.

    Raises:
        ValueError: ``net`` is quantized (folding moves weights off their grid: fold first,
            then quantize), or a batch norm does not follow a conv or linear layer.
    """
    records = quant_records(net)
    if records:
        raise ValueError(f"fold_batch_norm needs a net without quantizers; this one quantizes {list(records)}: "
                         "fold first, then quantize")
    plain = copy.deepcopy(net).eval()
    remove_masks(plain)
    folded = build(_spec_without_bn(net.spec), spiking=net.spiking)
    param = next(net.parameters())
    folded.to(device=param.device, dtype=param.dtype)
    source = []  # (weight, bias) of every conv/linear, folded; LIF modules as they are
    for name, m in plain.named_modules():
        if isinstance(m, _WEIGHTED):
            source.append([m.weight.detach().clone(),
                           m.bias.detach().clone() if m.bias is not None else torch.zeros(m.weight.shape[0])])
        elif isinstance(m, _BN):
            if not source or not isinstance(source[-1], list):
                raise ValueError(f"{type(m).__name__} at {name} does not follow a conv or linear layer")
            s = m.weight.detach() / torch.sqrt(m.running_var + m.eps) if m.affine else \
                1.0 / torch.sqrt(m.running_var + m.eps)
            shift = m.bias.detach() if m.affine else torch.zeros_like(s)
            w, b = source[-1]
            source[-1] = [w * s.reshape((-1,) + (1,) * (w.dim() - 1)), (b - m.running_mean) * s + shift]
        elif isinstance(m, LIF):
            source.append(m)
    targets = [m for m in folded.modules() if isinstance(m, (*_WEIGHTED, LIF))]
    with torch.no_grad():
        for src, dst in zip(source, targets):
            if isinstance(dst, LIF):
                dst.load_state_dict(src.state_dict())
            else:
                dst.weight.copy_(src[0])
                dst.bias.copy_(src[1])
    return folded.eval()

"""Spiking VGG-style and ResNet-style networks, and their ANN twins, from a spec.

A spec is a small frozen dataclass: the widths of the network plus its options. The same
spec builds the SNN (``spiking=True``, LIF neurons, input (T, B, C, H, W), output
(T, B, classes)) and its ANN twin (``spiking=False``, ReLU, input (B, C, H, W), output
(B, classes)); the two have identical parameter names, so weights move between them with
``load_state_dict(strict=False)``. A pruned width list rebuilds a genuinely smaller model::

    spec = VGGSpec(in_shape=(1, 16, 16), num_classes=10, features=(16, "P", 32, "P"))
    snn = build(spec)                        # SNN
    ann = build(spec, spiking=False)         # ANN twin
    small = build(spec.with_widths([8, 12])) # fewer channels, fewer parameters

The input shape decides the dimension: ``in_shape=(C, H, W)`` builds 2-D convolutions and
pools on images, ``in_shape=(C, L)`` 1-D ones on sequences (input (T, B, C, L) for the SNN,
(B, C, L) for the ANN); everything else is the same.

Conv, linear, batch-norm and pooling layers are stateless: in an SNN they run on all T
steps at once with time folded into the batch. With direct input (a stride-0 view along
T, see :func:`snnkit.encoding.direct`) they run once and the result is viewed T times.
"""
from __future__ import annotations

import contextlib
import math
import numbers
from dataclasses import dataclass, field, replace
from typing import Callable, Iterator, Sequence

import torch
from torch import nn

from .neurons import LIF, check_lif_params
from .surrogate import SURROGATES, get_surrogate

__all__ = [
    "CONV_TYPES",
    "is_chain",
    "NeuronSpec",
    "VGGSpec",
    "ResNetSpec",
    "Net",
    "build",
    "readout",
    "probe",
    "layer_labels",
    "lif_layers",
    "is_spiking",
    "time_apply",
]


@dataclass(frozen=True)
class NeuronSpec:
    """LIF settings shared by the layers of a network.

    Attributes:
        beta: leak per step, in [0, 1].
        threshold: firing threshold (membrane units).
        reset: "subtract" or "zero".
        surrogate: registry name in :data:`snnkit.surrogate.SURROGATES`.
        surrogate_param: its shape parameter (None: the surrogate's default).
        learn_beta, learn_threshold: train leak / threshold.
        per_channel: one leak and threshold per channel instead of per layer.
    """

    beta: float = 0.9
    threshold: float = 1.0
    reset: str = "subtract"
    surrogate: str = "arctan"
    surrogate_param: float | None = None
    learn_beta: bool = False
    learn_threshold: bool = False
    per_channel: bool = False

    def __post_init__(self) -> None:
        check_lif_params(self.beta, self.threshold, self.reset)
        if self.surrogate not in SURROGATES:
            raise ValueError(f"surrogate={self.surrogate!r}: expected one of {', '.join(SURROGATES)}")

    def make(self, channels: int) -> LIF:
        return LIF(
            beta=self.beta,
            threshold=self.threshold,
            reset=self.reset,
            surrogate=get_surrogate(self.surrogate, self.surrogate_param),
            learn_beta=self.learn_beta,
            learn_threshold=self.learn_threshold,
            channels=channels if self.per_channel else None,
        )


_POOLS = ("max", "avg")
_READOUTS = ("mem", "spike")

# per spatial dimension (1: sequences, 2: images): conv, batch norm, max pool, average pool,
# global average pool
_OPS: dict[int, tuple[type[nn.Module], ...]] = {
    1: (nn.Conv1d, nn.BatchNorm1d, nn.MaxPool1d, nn.AvgPool1d, nn.AdaptiveAvgPool1d),
    2: (nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d),
}
#: the convolution types the builder makes (1-D on sequences, 2-D on images); every reader
#: that asks "is this layer a convolution?" asks this tuple
CONV_TYPES: tuple[type[nn.Module], ...] = (nn.Conv1d, nn.Conv2d)


def is_chain(spec: object) -> bool:
    """Whether ``spec`` builds a chain: its layers run one after the other, each conv or
    linear layer feeding the next, so pruning a width touches that layer, what follows it
    up to the next conv or linear layer, and that layer's input.

    True for a :class:`VGGSpec` and for a spec that lists its own layers (one with a
    ``make_layers`` method: :class:`snnkit.interop.SequentialSpec`, what an imported
    snntorch net is built from); False for a :class:`ResNetSpec` (its shortcuts branch) and
    anything else. The widths of a chain (``spec.widths``) are the outputs of its conv and
    linear layers but the last, in forward order.
    """
    return isinstance(spec, VGGSpec) or callable(getattr(spec, "make_layers", None))


def _check_common(spec) -> None:
    shape = spec.in_shape
    if (
        not isinstance(shape, (tuple, list))
        or len(shape) not in (2, 3)
        or not all(isinstance(n, numbers.Integral) and not isinstance(n, bool) and n >= 1 for n in shape)
    ):
        raise ValueError(
            f"in_shape={shape!r}: expected (C, H, W) for images or (C, L) for sequences, with positive int sizes"
        )
    object.__setattr__(spec, "in_shape", tuple(int(n) for n in shape))  # frozen: a list becomes a tuple
    if spec.num_classes < 2:
        raise ValueError(f"num_classes={spec.num_classes}: expected an integer >= 2")
    if spec.pool not in _POOLS:
        raise ValueError(f"pool={spec.pool!r}: expected one of {_POOLS}")
    if spec.readout not in _READOUTS:
        raise ValueError(f"readout={spec.readout!r}: expected one of {_READOUTS}")


@dataclass(frozen=True)
class VGGSpec:
    """A VGG-style net: 3x3 convs (an int is a width, "P" a 2x2 pool), then linear layers.

    Attributes:
        in_shape: (C, H, W) of one input frame, or (C, L) of one sequence (1-D convs and
            pools, kernel 3 and 2 along L).
        num_classes: output size.
        features: conv widths and pools, e.g. ``(64, 64, "P", 128, "P")``.
        hidden: widths of hidden linear layers between the convs and the output.
        batch_norm: batch-norm after each conv / hidden linear layer.
        pool: "max" or "avg".
        bias: biases in conv / linear layers.
        readout: "mem": the output layer only accumulates membrane potential (no spikes,
            no reset; the network's per-step output is the output current, whose mean over
            T is the membrane accumulated at T divided by T); "spike": the output layer is
            a LIF layer and the output is its spikes.
        neuron: LIF settings.
    """

    in_shape: tuple[int, ...]
    num_classes: int
    features: tuple[int | str, ...] = (16, "P", 32, "P")
    hidden: tuple[int, ...] = ()
    batch_norm: bool = False
    pool: str = "max"
    bias: bool = False
    readout: str = "mem"
    neuron: NeuronSpec = field(default_factory=NeuronSpec)

    def __post_init__(self) -> None:
        _check_common(self)
        for f in self.features:
            if f != "P" and not (isinstance(f, int) and f >= 1):
                raise ValueError(f"features entry {f!r}: expected a positive int width or 'P'")
        for h in self.hidden:
            if not (isinstance(h, int) and h >= 1):
                raise ValueError(f"hidden entry {h!r}: expected a positive int width")

    @property
    def widths(self) -> list[int]:
        """Every prunable width: conv widths, then hidden linear widths."""
        return [f for f in self.features if f != "P"] + list(self.hidden)

    def with_widths(self, widths: Sequence[int]) -> "VGGSpec":
        """The same architecture with new widths (same length and order as :attr:`widths`)."""
        widths = [int(w) for w in widths]
        if len(widths) != len(self.widths) or min(widths, default=1) < 1:
            raise ValueError(
                f"widths={widths}: expected {len(self.widths)} positive ints (one per conv/hidden layer)"
            )
        it = iter(widths)
        features = tuple(f if f == "P" else next(it) for f in self.features)
        return replace(self, features=features, hidden=tuple(it))


@dataclass(frozen=True)
class ResNetSpec:
    """A small ResNet: a 3x3 stem, stages of basic blocks, global average pool, linear.

    Attributes:
        stem: stem width.
        stages: width of each stage; each stage after the first halves the resolution.
        blocks: basic blocks per stage (ResNet20 is ``(16, 32, 64)`` x ``(3, 3, 3)``).
        inner: width of the first conv of each block, in order (None: the stage width).
            Pruning a block's inner width keeps the residual additions consistent.
    Other attributes as :class:`VGGSpec` (``in_shape`` (C, H, W) or (C, L); the output
    layer is linear, readout "mem" or "spike"; ``batch_norm`` is on by default, ``pool``
    applies to nothing here but the final global pool, which is always an average).
    """

    in_shape: tuple[int, ...]
    num_classes: int
    stem: int = 16
    stages: tuple[int, ...] = (16, 32, 64)
    blocks: tuple[int, ...] = (1, 1, 1)
    inner: tuple[int, ...] | None = None
    batch_norm: bool = True
    pool: str = "avg"
    bias: bool = False
    readout: str = "mem"
    neuron: NeuronSpec = field(default_factory=NeuronSpec)

    def __post_init__(self) -> None:
        _check_common(self)
        if len(self.stages) != len(self.blocks) or not self.stages:
            raise ValueError(f"stages={self.stages}, blocks={self.blocks}: expected equal, non-zero lengths")
        if self.inner is not None and len(self.inner) != sum(self.blocks):
            raise ValueError(f"inner={self.inner}: expected {sum(self.blocks)} widths (one per block)")

    @property
    def widths(self) -> list[int]:
        """Every prunable width: the inner width of each block."""
        if self.inner is not None:
            return list(self.inner)
        return [w for w, n in zip(self.stages, self.blocks) for _ in range(n)]

    def with_widths(self, widths: Sequence[int]) -> "ResNetSpec":
        widths = tuple(int(w) for w in widths)
        if len(widths) != sum(self.blocks) or min(widths) < 1:
            raise ValueError(f"widths={list(widths)}: expected {sum(self.blocks)} positive ints (one per block)")
        return replace(self, inner=widths)


# ---------------------------------------------------------------------------------------
# running stateless layers over time


def time_apply(module: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Apply a stateless layer (or any per-sample function) to every step of ``x`` (T, B, ...) at once.

    Time is folded into the batch. A stride-0 view along T (the same input at every step)
    is computed once and viewed T times again.
    """
    T = x.shape[0]
    if x.stride(0) == 0 and T > 1:
        y = _layout(module, module(x[0]))
        return y.unsqueeze(0).expand(T, *y.shape)
    y = _layout(module, module(x.reshape(T * x.shape[1], *x.shape[2:])))
    return y.reshape(T, x.shape[1], *y.shape[1:])


def _layout(module: nn.Module, y: torch.Tensor) -> torch.Tensor:
    # conv outputs go channels-last: pooling and convolution run several times faster on
    # that layout on CPUs, and the LIF buffers after them follow it (see neurons._steps_like)
    if isinstance(module, nn.Conv2d) and y.dim() == 4:
        return y.contiguous(memory_format=torch.channels_last)
    return y


class _Step(nn.Module):
    """Runs children in order: LIF and blocks see (T, B, ...), others are time-applied."""

    def __init__(self, *layers: nn.Module) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor, spiking: bool) -> torch.Tensor:
        layers = list(self.layers)
        i = 0
        while i < len(layers):
            layer = layers[i]
            i += 1
            if spiking and isinstance(layer, LIF):
                # a 2-wide pool right after a LIF layer can run inside its kernels (snnkit.engine)
                pool = layers[i] if i < len(layers) and layer.fuses(layers[i], x.dim() - 1) else None
                x = layer(x, pool=pool)
                i += pool is not None
            elif not spiking or isinstance(layer, BasicBlock):
                x = layer(x, spiking) if isinstance(layer, BasicBlock) else layer(x)
            else:
                x = time_apply(layer, x)
        return x

    def stepwise(self, x: torch.Tensor) -> torch.Tensor:
        """SNN forward one time step at a time: (T, B, ...) -> (T, B, ...).

        Gives the same result as the default all-steps-at-once forward; it keeps each
        step's working set small, which is what ``torch.compile`` fuses best (see
        :func:`snnkit.engine.compile_model`). Probes are not called here.
        """
        states: dict[int, object] = {}
        out = []
        first = next(i for i, m in enumerate(self.layers) if isinstance(m, (LIF, BasicBlock)))
        constant = x.stride(0) == 0 and x.shape[0] > 1
        if constant:  # direct input: the layers before the first neuron run once
            pre = x[0]
            for layer in self.layers[:first]:
                pre = layer(pre)
        for t in range(x.shape[0]):
            h = pre if constant else x[t]
            for i, layer in enumerate(self.layers):
                if constant and i < first:
                    continue
                if isinstance(layer, (LIF, BasicBlock)):
                    h, states[i] = layer.step(h, states.get(i))
                else:
                    h = layer(h)
            out.append(h)
        return torch.stack(out)


class BasicBlock(nn.Module):
    """conv-bn-act-conv-bn (+ shortcut) -act, with an optional 1x1 projection shortcut."""

    def __init__(self, c_in: int, inner: int, c_out: int, stride: int, spec: ResNetSpec, spiking: bool):
        super().__init__()
        conv, bn = _OPS[len(spec.in_shape) - 1][:2]
        norm = (lambda c: bn(c)) if spec.batch_norm else (lambda c: nn.Identity())
        act = (lambda c: spec.neuron.make(c)) if spiking else (lambda c: nn.ReLU())
        self.conv1 = conv(c_in, inner, 3, stride, 1, bias=spec.bias)
        self.bn1 = norm(inner)
        self.act1 = act(inner)
        self.conv2 = conv(inner, c_out, 3, 1, 1, bias=spec.bias)
        self.bn2 = norm(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(conv(c_in, c_out, 1, stride, bias=spec.bias), norm(c_out))
        self.act2 = act(c_out)

    def forward(self, x: torch.Tensor, spiking: bool = False) -> torch.Tensor:
        if not spiking:
            y = self.act1(self.bn1(self.conv1(x)))
            return self.act2(self.bn2(self.conv2(y)) + self.shortcut(x))
        y = self.act1(time_apply(lambda z: self.bn1(self.conv1(z)), x))
        y = time_apply(lambda z: self.bn2(self.conv2(z)), y)
        s = time_apply(self.shortcut, x) if len(self.shortcut) else x
        return self.act2(y + s)


    def step(self, x: torch.Tensor, state: tuple | None) -> tuple[torch.Tensor, tuple]:
        """One time step of the spiking block: x (B, C, H, W) or (B, C, L) -> spikes, new state."""
        s1, s2 = state if state is not None else (None, None)
        y, s1 = self.act1.step(self.bn1(self.conv1(x)), s1)
        y, s2 = self.act2.step(self.bn2(self.conv2(y)) + self.shortcut(x), s2)
        return y, (s1, s2)


class Net(nn.Module):
    """A network built by :func:`build`.

    SNN: ``forward(x)`` maps (T, B, C, H, W) -> (T, B, classes), per-step outputs (output
    currents for readout "mem", spikes for readout "spike"). ANN twin: (B, C, H, W) ->
    (B, classes). On sequences (``in_shape`` (C, L)) the input is (T, B, C, L) or (B, C, L).
    :func:`readout` turns either output into logits.
    """

    def __init__(self, spec: VGGSpec | ResNetSpec, spiking: bool) -> None:
        super().__init__()
        self.spec = spec
        self.spiking = spiking
        self.body = _Step(*_layers(spec, spiking))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != len(self.spec.in_shape) + (2 if self.spiking else 1):
            sample = {3: "C, H, W", 2: "C, L", 1: "features"}.get(len(self.spec.in_shape), "...")
            lead = "T, B" if self.spiking else "B"
            raise ValueError(
                f"input of shape {tuple(x.shape)}: expected ({lead}, {sample}) for in_shape {self.spec.in_shape}"
            )
        return self.body(x, self.spiking)


def _layers(spec, spiking: bool) -> list[nn.Module]:
    if not isinstance(spec, (VGGSpec, ResNetSpec)):  # a spec that lists its own layers
        return list(spec.make_layers(spiking))
    act = (lambda c: spec.neuron.make(c)) if spiking else (lambda c: nn.ReLU())
    conv, bn, max_pool, avg_pool, global_pool = _OPS[len(spec.in_shape) - 1]
    pool = max_pool if spec.pool == "max" else avg_pool
    c, *size = spec.in_shape  # size: [H, W] or [L]
    layers: list[nn.Module] = []
    if isinstance(spec, VGGSpec):
        for f in spec.features:
            if f == "P":
                layers.append(pool(2))
                size = [n // 2 for n in size]
                if min(size) < 1:
                    raise ValueError(f"features={spec.features}: too many pools for input {spec.in_shape}")
                continue
            layers.append(conv(c, f, 3, padding=1, bias=spec.bias))
            if spec.batch_norm:
                layers.append(bn(f))
            layers.append(act(f))
            c = f
        layers.append(nn.Flatten())
        n = c * math.prod(size)
        for hdim in spec.hidden:
            layers.append(nn.Linear(n, hdim, bias=spec.bias))
            if spec.batch_norm:
                layers.append(nn.BatchNorm1d(hdim))
            layers.append(act(hdim))
            n = hdim
    else:
        layers += [conv(c, spec.stem, 3, padding=1, bias=spec.bias)]
        if spec.batch_norm:
            layers.append(bn(spec.stem))
        layers.append(act(spec.stem))
        c_in, inner = spec.stem, iter(spec.widths)
        for i, (width, n_blocks) in enumerate(zip(spec.stages, spec.blocks)):
            for b in range(n_blocks):
                stride = 2 if (i > 0 and b == 0) else 1
                layers.append(BasicBlock(c_in, next(inner), width, stride, spec, spiking))
                c_in = width
        layers += [global_pool(1), nn.Flatten()]
        n = c_in
    layers.append(nn.Linear(n, spec.num_classes, bias=spec.bias))
    if spec.readout == "spike" and spiking:
        layers.append(act(spec.num_classes))
    return layers


def build(spec: VGGSpec | ResNetSpec, spiking: bool = True, seed: int | None = None) -> Net:
    """Build the SNN (or with ``spiking=False`` its ANN twin) described by ``spec``.

    ``seed`` makes the initial weights deterministic without touching global RNG state.
    """
    if seed is None:
        return Net(spec, spiking)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Net(spec, spiking)


def readout(out: torch.Tensor, spiking: bool | None = None) -> torch.Tensor:
    """Logits from a network's output: the mean over T for an SNN (T, B, K) -> (B, K)."""
    spiking = out.dim() == 3 if spiking is None else spiking
    return out.mean(0) if spiking else out


def lif_layers(model: nn.Module) -> list[tuple[str, LIF]]:
    """The LIF layers of a model, in forward order, with their module names."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, LIF)]


def is_spiking(model: nn.Module) -> bool:
    """Whether ``model`` is an SNN: its ``spiking`` flag (every snnkit ``Net`` has one), else
    whether it has LIF layers. The one rule every reader of a model uses."""
    flag = getattr(model, "spiking", None)
    return bool(lif_layers(model)) if flag is None else bool(flag)


def layer_labels(model: nn.Module) -> dict[str, str]:
    """Short names of the Conv and Linear layers for figures and menus, keyed by module name.

    Numbered in forward order over both kinds: ``{"body.layers.0": "conv1", ...,
    "body.layers.13": "fc6"}``. The i-th label of a VGG net also names the i-th prunable
    width (``spec.widths``), whose LIF layer follows that conv or linear layer.
    """
    out = {}
    for name, m in model.named_modules():
        if isinstance(m, (*CONV_TYPES, nn.Linear)):
            out[name] = f"{'conv' if isinstance(m, CONV_TYPES) else 'fc'}{len(out) + 1}"
    return out


def lif_labels(model: nn.Module) -> dict[str, str]:
    """Short names of the LIF layers, keyed by module name: each LIF layer takes the label
    (:func:`layer_labels`) of the Conv or Linear layer that feeds it, ``{"body.layers.1":
    "conv1", ...}``, so per-layer spike counts read in the paper's words."""
    labels, out, last = layer_labels(model), {}, None
    for name, m in model.named_modules():
        if name in labels:
            last = labels[name]
        elif isinstance(m, LIF):
            out[name] = last or name
    return out


@contextlib.contextmanager
def probe(model: nn.Module, fn: Callable[[str, torch.Tensor, torch.Tensor], None]) -> Iterator[None]:
    """Call ``fn(name, spikes, membranes)`` for every LIF layer during forward passes.

    Spikes and membranes are (T, B, ...). The probe is removed on exit, also on error.
    """
    layers = lif_layers(model)
    try:
        for name, layer in layers:
            layer.probe = lambda _layer, spk, mem, _name=name: fn(_name, spk, mem)
        yield
    finally:
        for _, layer in layers:
            layer.probe = None

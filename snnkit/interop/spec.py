"""A network spec that lists its layers one by one: what an imported model is built from.

:class:`~snnkit.models.VGGSpec` and :class:`~snnkit.models.ResNetSpec` describe the kit's
own families by their widths. A model made elsewhere (an snntorch ``nn.Sequential``, say)
has its own kernel sizes, strides, pooling order and one LIF setting per layer, so it is
described layer by layer instead::

    spec = SequentialSpec((1, 28, 28), (
        Layer.of("conv2d", 12, kernel_size=5),
        Layer.of("maxpool2d", kernel_size=2),
        Layer.of("lif", neuron=NeuronSpec(beta=0.9)),
        Layer.of("flatten"),
        Layer.of("linear", 10),
        Layer.of("lif", neuron=NeuronSpec(beta=0.9)),
    ))
    snn = build(spec)                    # a Net like any other: (T, B, 1, 28, 28) -> (T, B, 10)
    small = build(spec.with_widths([6])) # the conv keeps 6 channels

The input sizes of every layer are inferred from ``in_shape``. The prunable widths
(:attr:`SequentialSpec.widths`) are the output sizes of every conv and linear layer but
the last (the output layer), in order, as for a VGG spec. ``build(spec, spiking=False)``
gives the ANN twin (ReLU in place of every LIF layer, same parameter names).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Sequence

import torch
from torch import nn

from ..models import NeuronSpec
from ..train import CHECKPOINT_SPECS

__all__ = ["Layer", "SequentialSpec", "LAYER_KINDS", "MODULE_KINDS", "check_in_shape"]

_CONVS = {"conv1d": nn.Conv1d, "conv2d": nn.Conv2d}
_POOLS = {
    "maxpool1d": nn.MaxPool1d, "maxpool2d": nn.MaxPool2d,
    "avgpool1d": nn.AvgPool1d, "avgpool2d": nn.AvgPool2d,
    "adaptiveavgpool1d": nn.AdaptiveAvgPool1d, "adaptiveavgpool2d": nn.AdaptiveAvgPool2d,
}
_NORMS = {"batchnorm1d": nn.BatchNorm1d, "batchnorm2d": nn.BatchNorm2d}

#: Every layer kind a :class:`SequentialSpec` can hold.
LAYER_KINDS: tuple[str, ...] = (*_CONVS, "linear", *_POOLS, "flatten", "dropout", *_NORMS, "lif")

#: The torch module class of every kind but "lif" -> its kind.
MODULE_KINDS: dict[type[nn.Module], str] = {
    cls: kind for kind, cls in {**_CONVS, "linear": nn.Linear, **_POOLS, "flatten": nn.Flatten, "dropout": nn.Dropout,
                                **_NORMS}.items()
}

# the constructor keywords each kind keeps, read back from a module's attributes
_OPTIONS: dict[str, tuple[str, ...]] = {
    "conv1d": ("kernel_size", "stride", "padding", "dilation"),
    "conv2d": ("kernel_size", "stride", "padding", "dilation"),
    "maxpool1d": ("kernel_size", "stride", "padding", "dilation", "ceil_mode"),
    "maxpool2d": ("kernel_size", "stride", "padding", "dilation", "ceil_mode"),
    "avgpool1d": ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"),
    "avgpool2d": ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"),
    "adaptiveavgpool1d": ("output_size",),
    "adaptiveavgpool2d": ("output_size",),
    "dropout": ("p",),
    "batchnorm1d": ("eps", "momentum", "affine", "track_running_stats"),
    "batchnorm2d": ("eps", "momentum", "affine", "track_running_stats"),
}


@dataclass(frozen=True)
class Layer:
    """One layer of a :class:`SequentialSpec`.

    Attributes:
        kind: one of :data:`LAYER_KINDS`.
        width: output channels (conv) or features (linear); None for other kinds.
        options: the torch constructor's other keywords as sorted ``(name, value)`` pairs
            (``kernel_size``, ``stride``, ``padding``, ``bias``, ``p``, ``eps`` ...).
        neuron: the LIF settings of a ``"lif"`` layer (its leak and threshold here are the
            initial values; trained or imported values live in the state dict).
    """

    kind: str
    width: int | None = None
    options: tuple[tuple[str, Any], ...] = ()
    neuron: NeuronSpec | None = None

    def __post_init__(self) -> None:
        if self.kind not in LAYER_KINDS:
            raise ValueError(f"layer kind {self.kind!r}: expected one of {', '.join(LAYER_KINDS)}")
        needs_width = self.kind in _CONVS or self.kind == "linear"
        if needs_width and not (isinstance(self.width, int) and self.width >= 1):
            raise ValueError(f"{self.kind} layer width={self.width!r}: expected a positive int")
        if not needs_width and self.width is not None:
            raise ValueError(f"{self.kind} layer width={self.width!r}: only conv and linear layers have a width")
        if (self.kind == "lif") != (self.neuron is not None):
            raise ValueError(f"{self.kind} layer neuron={self.neuron!r}: a NeuronSpec for 'lif' layers only")

    @classmethod
    def of(cls, kind: str, width: int | None = None, *, neuron: NeuronSpec | None = None, **options: Any) -> "Layer":
        """``Layer.of("conv2d", 16, kernel_size=3, padding=1)``: options as keywords."""
        return cls(kind, width, tuple(sorted(options.items())), neuron)

    @classmethod
    def from_module(cls, module: nn.Module) -> "Layer":
        """The layer a torch module of :data:`MODULE_KINDS` stands for (its widths, options).

        Raises:
            ValueError: another module, or an option a layer list cannot hold (a grouped
                or non-zero-padded conv, a Flatten that is not ``Flatten(1, -1)``, max
                pooling returning indices), with the reason.
        """
        kind = MODULE_KINDS.get(type(module))
        if kind is None:
            raise ValueError(f"no layer kind for {type(module).__name__}; expected one of "
                             f"{', '.join(c.__name__ for c in MODULE_KINDS)}")
        options = {k: getattr(module, k) for k in _OPTIONS.get(kind, ())}
        if kind in _CONVS:
            if module.groups != 1 or module.padding_mode != "zeros":
                raise ValueError(f"groups={module.groups}, padding_mode={module.padding_mode!r}: only groups=1 "
                                 "with zero padding is supported")
            return cls.of(kind, module.out_channels, bias=module.bias is not None, **options)
        if kind == "linear":
            return cls.of(kind, module.out_features, bias=module.bias is not None)
        if kind == "flatten" and (module.start_dim, module.end_dim) != (1, -1):
            raise ValueError(f"start_dim={module.start_dim}, end_dim={module.end_dim}: only Flatten(1, -1) keeps "
                             "the batch dimension")
        if kind.startswith("maxpool") and module.return_indices:
            raise ValueError("return_indices=True is not supported")
        return cls.of(kind, **options)

    @property
    def kwargs(self) -> dict[str, Any]:
        """The options as a dict."""
        return dict(self.options)

    def out_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The sample shape this layer outputs for a sample of ``in_shape``.

        Raises:
            ValueError: the layer does not fit ``in_shape``.
        """
        try:
            return _out_shape(self.make(in_shape, False), self, in_shape)
        except (RuntimeError, ValueError, TypeError) as err:
            raise ValueError(f"{self.kind} layer on input {tuple(in_shape)}: {err}") from err

    def make(self, in_shape: tuple[int, ...], spiking: bool) -> nn.Module:
        """The module of this layer for a (B, *in_shape) input (ReLU for LIF in an ANN)."""
        kw = self.kwargs
        if self.kind in _CONVS:
            return _CONVS[self.kind](in_shape[0], self.width, **kw)
        if self.kind == "linear":
            return nn.Linear(in_shape[-1], self.width, **kw)
        if self.kind in _POOLS:
            return _POOLS[self.kind](**kw)
        if self.kind in _NORMS:
            return _NORMS[self.kind](in_shape[0], **kw)
        if self.kind == "flatten":
            return nn.Flatten()
        if self.kind == "dropout":
            return nn.Dropout(**kw)
        if not spiking:
            return nn.ReLU()
        return self.neuron.make(in_shape[0])


def check_in_shape(in_shape: tuple[int, ...]) -> None:
    """Raise ValueError naming ``in_shape`` unless it is (features,), (C, L) or (C, H, W)."""
    if not (1 <= len(in_shape) <= 3) or not all(isinstance(n, int) and n >= 1 for n in in_shape):
        raise ValueError(f"in_shape={in_shape}: expected (features,), (C, L) or (C, H, W) with positive ints")


@dataclass(frozen=True)
class SequentialSpec:
    """A network given as a sequence of layers (see the module docstring).

    Attributes:
        in_shape: one input frame: ``(features,)``, ``(C, L)`` or ``(C, H, W)``.
        layers: the layers in forward order; at least one conv or linear layer.
    """

    in_shape: tuple[int, ...]
    layers: tuple[Layer, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "in_shape", tuple(self.in_shape))
        object.__setattr__(self, "layers", tuple(self.layers))
        check_in_shape(self.in_shape)
        for i, layer in enumerate(self.layers):
            if not isinstance(layer, Layer):
                raise ValueError(f"layers[{i}]={layer!r}: expected a Layer")
        if not self._weighted():
            raise ValueError("layers: expected at least one conv or linear layer")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SequentialSpec":
        """The inverse of ``dataclasses.asdict(spec)`` (lists may stand for tuples), e.g. for checkpoints.

        Raises:
            ValueError: a key is missing or a value is not accepted.
        """
        def tup(v: Any) -> Any:
            return tuple(tup(x) for x in v) if isinstance(v, (list, tuple)) else v

        try:
            layers = tuple(Layer(layer["kind"], layer.get("width"), tup(layer.get("options", ())),
                                 NeuronSpec(**layer["neuron"]) if layer.get("neuron") else None)
                           for layer in d["layers"])
            return cls(tup(d["in_shape"]), layers)
        except (KeyError, TypeError) as err:
            raise ValueError(f"spec dict {d!r}: {type(err).__name__}: {err}") from err

    def _weighted(self) -> list[int]:
        return [i for i, layer in enumerate(self.layers) if layer.width is not None]

    @property
    def num_classes(self) -> int:
        """The width of the output layer (the last conv or linear layer)."""
        return self.layers[self._weighted()[-1]].width

    @property
    def readout(self) -> str:
        """The readout: "spike" if a LIF layer follows the output layer, else "mem" (output currents)."""
        last = self._weighted()[-1]
        return "spike" if any(layer.kind == "lif" for layer in self.layers[last + 1:]) else "mem"

    @property
    def widths(self) -> list[int]:
        """Every prunable width: the output size of each conv / linear layer but the last."""
        return [self.layers[i].width for i in self._weighted()[:-1]]

    def with_widths(self, widths: Sequence[int]) -> "SequentialSpec":
        """The same layers with new widths (same length and order as :attr:`widths`)."""
        widths = [int(w) for w in widths]
        prunable = self._weighted()[:-1]
        if len(widths) != len(prunable) or min(widths, default=1) < 1:
            raise ValueError(f"widths={widths}: expected {len(prunable)} positive ints (one per hidden conv/linear)")
        layers = list(self.layers)
        for i, w in zip(prunable, widths):
            layers[i] = replace(layers[i], width=w)
        return replace(self, layers=tuple(layers))

    def shapes(self) -> list[tuple[int, ...]]:
        """The sample shape entering each layer, then the output shape (``len(layers) + 1``)."""
        return self._build(False)[1]

    def make_layers(self, spiking: bool) -> list[nn.Module]:
        """The modules, in order (what :func:`snnkit.models.build` calls).

        Raises:
            ValueError: a layer does not fit the shape it receives (names its index and kind).
        """
        return self._build(spiking)[0]

    def _build(self, spiking: bool) -> tuple[list[nn.Module], list[tuple[int, ...]]]:
        shape = self.in_shape
        shapes, modules = [shape], []
        for i, layer in enumerate(self.layers):
            try:
                module = layer.make(shape, spiking)
                shape = _out_shape(module, layer, shape)
            except (RuntimeError, ValueError, TypeError) as err:
                raise ValueError(f"layer {i} ({layer.kind}) on input {shape}: {err}") from err
            modules.append(module)
            shapes.append(shape)
        return modules, shapes


@torch.no_grad()
def _out_shape(module: nn.Module, layer: Layer, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The sample shape ``module`` outputs for a sample of ``shape`` (one zero sample is run)."""
    if layer.kind in ("lif", "dropout"):
        return shape
    was = module.training
    y = module.eval()(torch.zeros((1, *shape)))
    module.train(was)
    return tuple(y.shape[1:])


# checkpoints of imported nets (snnkit.train.save_checkpoint / load_checkpoint)
CHECKPOINT_SPECS.register("SequentialSpec", SequentialSpec.from_dict)

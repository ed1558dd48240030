"""The papers' networks as named presets, and the settings each notebook's ``paper`` profile uses.

A preset is a spec for :func:`snnkit.models.build`, made by the same builder as every other
net in the kit, so every criterion, quantizer, metric and surgery works on it unchanged::

    from snnkit import presets
    from snnkit.models import NeuronSpec, build

    spec = presets.get("vgg9", (3, 32, 32), 10, neuron=NeuronSpec(beta=0.99))
    net = build(spec, seed=0)                       # (T, B, 3, 32, 32) -> (T, B, 10)

:data:`PRESETS` lists them (``vgg9``, ``vgg11``, ``vgg16``, ``resnet20``, ``gesture-c128x5``);
:func:`describe` says where each one comes from and how it differs from the published net.

:data:`PAPER_SETTINGS` holds, per notebook, the data set, preset, time steps, input
encoding and neuron of the paper it reproduces (from ``PAPERS.md`` and the authors' public
code). A notebook copies them into its ``PROFILE_DEFAULTS["paper"]``;
:func:`settings_table` renders them for the README, so both read this one source.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from .models import NeuronSpec, ResNetSpec, VGGSpec
from .registry import Registry

__all__ = [
    "PAPER_SETTINGS",
    "PRESETS",
    "PaperSettings",
    "Preset",
    "describe",
    "get",
    "names",
    "settings_table",
]

Spec = VGGSpec | ResNetSpec


@dataclass(frozen=True)
class Preset:
    """One named network.

    Attributes:
        make: ``make(in_shape, num_classes, neuron) -> spec`` at width multiplier 1.
        source: where the layout comes from.
        differences: what this preset does not reproduce of the published net, in words.
        published_params: the parameter count the source states or implies for its usual
            input (None when no count is published); ``published_for`` says for which input.
        published_for: ``(in_shape, num_classes)`` the published count is for.
    """

    make: Callable[[tuple[int, int, int], int, NeuronSpec], Spec]
    source: str
    differences: str
    published_params: int | None = None
    published_for: tuple[tuple[int, int, int], int] | None = None


#: name -> :class:`Preset`; :func:`get` is the way to build one.
PRESETS: Registry[Preset] = Registry("preset")

# The conv stacks of Rathi et al.'s public code (hybrid-snn-conversion, DIET-SNN), from the
# lab of paper 1: an int is a 3x3 conv width, "P" a 2x2 pool.
_VGG9 = (64, "P", 128, 256, "P", 256, 512, "P", 512, "P", 512)
_VGG11 = (64, "P", 128, 256, "P", 512, 512, "P", 512, "P", 512, 512)
# Simonyan and Zisserman's VGG16 (configuration D) with five pools, as in most CIFAR code.
_VGG16 = (64, 64, "P", 128, 128, "P", 256, 256, 256, "P", 512, 512, 512, "P", 512, 512, 512, "P")


def _vgg(features: tuple[int | str, ...], hidden: tuple[int, ...], *, batch_norm: bool,
         pool: str) -> Callable[[tuple[int, int, int], int, NeuronSpec], VGGSpec]:
    def make(in_shape: tuple[int, int, int], num_classes: int, neuron: NeuronSpec) -> VGGSpec:
        return VGGSpec(in_shape=in_shape, num_classes=num_classes, features=features, hidden=hidden,
                       batch_norm=batch_norm, pool=pool, bias=False, readout="mem", neuron=neuron)
    return make


def _resnet20(in_shape: tuple[int, int, int], num_classes: int, neuron: NeuronSpec) -> ResNetSpec:
    return ResNetSpec(in_shape=in_shape, num_classes=num_classes, stem=16, stages=(16, 32, 64),
                      blocks=(3, 3, 3), batch_norm=True, bias=False, readout="mem", neuron=neuron)


PRESETS.register("vgg9", Preset(
    _vgg(_VGG9, (2048,), batch_norm=False, pool="avg"),
    source="paper 1 (Chowdhury, Garg, Roy 2021): the VGG9 conv stack of its lab's public code "
           "(Rathi et al., hybrid-snn-conversion), no batch norm, no bias, average pooling",
    differences="the classifier is not published; one hidden layer of 2048 gives 11.1 M parameters, "
                "44.3 MB at 32 bits, against the paper's 44.5 MB (the lab's code has 4096-4096, "
                "32 M parameters); no dropout (the builder has none)",
    published_params=11_125_000, published_for=((3, 32, 32), 10),  # 44.5 MB / 4 bytes
))
PRESETS.register("vgg11", Preset(
    _vgg(_VGG11, (2048,), batch_norm=False, pool="avg"),
    source="paper 1 (CIFAR-100 runs): the VGG11 conv stack of the same public code, no batch norm, "
           "no bias, average pooling",
    differences="the classifier is read as for vgg9 (one hidden layer of 2048); no dropout",
))
PRESETS.register("vgg16", Preset(
    _vgg(_VGG16, (), batch_norm=False, pool="avg"),
    source="paper 2 (Kundu et al. 2021): VGG16 for CIFAR, 13 convs and one linear output layer, "
           "no bias, average pooling (the pooling ANN-to-SNN conversion keeps)",
    differences="no batch norm by default, as a converted net has none (pass batch_norm=True to "
                "train the ANN with it); no dropout",
    published_params=14_728_266, published_for=((3, 32, 32), 10),
))
PRESETS.register("resnet20", Preset(
    _resnet20,
    source="paper 4 (Wei et al. 2025, QP-SNN): ResNet20 for CIFAR (He et al. 2016): a 16-wide stem, "
           "3 stages of 3 basic blocks, 16-32-64 wide, global average pooling, linear output",
    differences="shortcuts that change shape are 1x1 conv + BN projections (He et al. pad with zeros); "
                "QP-SNN's reported sizes (6.27 MB at 8 bits) imply a net of about 6 M parameters, "
                "wider than this one; width=k multiplies every width by k",
    published_params=270_000, published_for=((3, 32, 32), 10),
))
PRESETS.register("gesture-c128x5", Preset(
    _vgg((128, "P") * 5, (512,), batch_norm=True, pool="max"),
    source="papers 3 and 5 on DVS128 Gesture: 5 x (conv128-BN-LIF-maxpool), a 512-wide hidden layer "
           "and the output layer (Fang et al. 2021's net; paper 3's code adds two TCJA attention blocks, "
           "paper 5 uses it as is)",
    differences="the output is 11 non-spiking units instead of 110 spiking ones averaged in groups of 10 "
                "(with a membrane readout the vote is the same function class); the hidden layer gets "
                "batch norm too (the builder puts it after every hidden layer); no dropout; paper 3's "
                "TCJA attention blocks are left out (the builder has no attention layer)",
))


def names() -> tuple[str, ...]:
    """Every preset name, in registration order."""
    return PRESETS.names()


def _scaled(spec: Spec, width: float) -> Spec:
    """``spec`` with every width (and a ResNet's stem and stages) times ``width``, at least 1."""
    def w(c: int) -> int:
        return max(1, int(round(c * width)))

    if isinstance(spec, ResNetSpec):
        return replace(spec, stem=w(spec.stem), stages=tuple(w(s) for s in spec.stages), inner=None)
    return spec.with_widths([w(c) for c in spec.widths])


def get(name: str, in_shape: tuple[int, int, int], num_classes: int, *, neuron: NeuronSpec | None = None,
        width: float = 1.0, **overrides: Any) -> Spec:
    """The spec of preset ``name`` for inputs ``in_shape`` and ``num_classes`` outputs.

    Args:
        name: one of :func:`names`.
        in_shape: ``(C, H, W)`` of one input frame: ``(3, 32, 32)`` for CIFAR-10, ``(2, H, W)``
            for event frames (the per-sample ``(T, 2, H, W)`` without T).
        num_classes: output size.
        neuron: LIF settings of every layer (default: :class:`~snnkit.models.NeuronSpec`'s).
        width: multiplies every conv and hidden width (rounded, at least 1); 1 is the paper's net.
        **overrides: other spec fields to change, e.g. ``batch_norm=True``, ``pool="max"``,
            ``readout="spike"``.

    Returns:
        A :class:`~snnkit.models.VGGSpec` or :class:`~snnkit.models.ResNetSpec`.

    Raises:
        ValueError: an unknown name (listing the known ones), a width that is not a
            positive number, an override that is not a field of the spec, or an input too
            small for the preset's pools.
    """
    preset = PRESETS.get(name)
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not math.isfinite(width) or width <= 0:
        raise ValueError(f"width={width!r}: expected a positive number (1 = the paper's widths)")
    spec = preset.make(tuple(in_shape), int(num_classes), neuron if neuron is not None else NeuronSpec())
    if overrides:
        fields = set(type(spec).__dataclass_fields__) - {"in_shape", "num_classes", "neuron"}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise ValueError(f"preset {name!r}: unknown override(s) {', '.join(unknown)}; expected fields of "
                             f"{type(spec).__name__}: {', '.join(sorted(fields))}")
        spec = replace(spec, **overrides)
    if width != 1:
        spec = _scaled(spec, float(width))
    _check_fits(name, spec)
    return spec


def _check_fits(name: str, spec: Spec) -> None:
    """Raise the builder's own error now, naming the preset, if the input is too small."""
    if isinstance(spec, VGGSpec):
        pools = sum(1 for f in spec.features if f == "P")
        _, h, w = spec.in_shape
        if min(h, w) >> pools < 1:
            raise ValueError(f"preset {name!r} pools {pools} times: expected an input of at least "
                             f"{2 ** pools}x{2 ** pools} pixels, got {h}x{w}")


def describe(name: str) -> str:
    """Where preset ``name`` comes from and how it differs from the published net, in one paragraph."""
    preset = PRESETS.get(name)
    return f"{name}: {preset.source}. Differences: {preset.differences}."


# ---------------------------------------------------------------------------- paper settings


@dataclass(frozen=True)
class PaperSettings:
    """What a notebook's ``paper`` profile runs: the paper's data, network and time steps.

    Attributes:
        paper: who and when, as the README names the paper.
        dataset: a name of :data:`snnkit.data.LOADERS` that needs files (see
            :mod:`snnkit.datafiles`).
        data_options: options for :func:`snnkit.data.load_dataset` (event frames, frame size).
        preset: a name of :data:`PRESETS`.
        preset_options: overrides for :func:`get`.
        timesteps: T, or the schedule of T from first to last (temporal pruning).
        encoding: input encoding of static images: ``"direct"`` or ``"rate"``; ``"events"`` for
            event data.
        neuron: LIF settings (leak, threshold, reset, surrogate) as the paper states them.
        training: published training settings (optimizer, learning rate, batch size,
            epochs, loss); only what the paper or its code states.
        notes: choices made here where the paper is silent, and what differs.
    """

    paper: str
    dataset: str
    preset: str
    timesteps: tuple[int, ...]
    encoding: str
    neuron: NeuronSpec
    data_options: dict[str, Any] = field(default_factory=dict)
    preset_options: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    notes: str = ""

    def spec(self, in_shape: tuple[int, int, int], num_classes: int) -> Spec:
        """The preset's spec with this paper's neuron and options."""
        return get(self.preset, in_shape, num_classes, neuron=self.neuron, **self.preset_options)


#: notebook name (the file's stem) -> :class:`PaperSettings` of its ``paper`` profile.
PAPER_SETTINGS: dict[str, PaperSettings] = {
    "01_spatiotemporal_pca": PaperSettings(
        paper="Chowdhury, Garg, Roy (2021)",
        dataset="cifar10", preset="vgg9", timesteps=(100, 50, 25), encoding="rate",
        neuron=NeuronSpec(beta=0.99, threshold=1.0, reset="subtract", surrogate="triangular"),
        notes="converted from a trained ANN (thresholds at the 99.9th percentile), then fine-tuned; "
              "T lowered gradually 100 -> 50 -> 25 while training; Poisson (rate) input; the leak "
              "~0.99 is PAPERS.md's; the surrogate is the lab's piecewise-linear one",
    ),
    "02_attention_guided": PaperSettings(
        paper="Kundu, Datta, Pedram, Beerel (2021)",
        dataset="cifar10", preset="vgg16", timesteps=(5,), encoding="direct",
        neuron=NeuronSpec(beta=0.95, threshold=1.0, reset="subtract", surrogate="triangular",
                          learn_beta=True, learn_threshold=True),
        notes="the compressed ANN initialises the SNN (thresholds from the 99.7th percentile); leak "
              "and threshold are learned per layer (the starting leak 0.95 is a choice made here: a leak "
              "started at 1 is pushed into the clamp at 1 and learns nothing); surrogate "
              "0.3 max(0, 1 - |U/theta - 1|); the output layer accumulates membrane potential",
    ),
    "03_quant_prune_hardware": PaperSettings(
        paper="Schaefer, Taheri, Horeni, Joshi (2023)",
        dataset="dvs-gesture", preset="gesture-c128x5", timesteps=(20,), encoding="events",
        neuron=NeuronSpec(beta=0.5, threshold=1.0, reset="zero", surrogate="arctan"),
        data_options={"timesteps": 20, "size": 128},
        training={"optimizer": "adam", "lr": 1e-3, "batch_size": 16, "epochs": 1024, "loss": "mse",
                  "dropout": 0.5},
        notes="LIF with tau = 2 (leak 0.5), hard reset, arctan surrogate; MSE between the "
              "time-averaged output and the one-hot target (the authors' code: "
              "examples/tcja/configs/default.py); the TCJA attention blocks are not in the preset",
    ),
    "04_qpsnn": PaperSettings(
        paper="Wei et al. (QP-SNN, 2025)",
        dataset="cifar10", preset="resnet20", timesteps=(2,), encoding="direct",
        neuron=NeuronSpec(beta=0.5, threshold=1.0, reset="zero", surrogate="triangular"),
        notes="tau 0.5, threshold 1, hard reset, triangular surrogate (a = 1); first conv and last "
              "linear layer stay full precision; the preset is He et al.'s 0.27 M-parameter ResNet20, "
              "smaller than the paper's (see presets.describe('resnet20'))",
    ),
    "05_dynamic_spatiotemporal": PaperSettings(
        paper="Gou et al. (2025)",
        dataset="dvs-gesture", preset="gesture-c128x5", timesteps=(10,), encoding="events",
        neuron=NeuronSpec(beta=0.5, threshold=1.0, reset="zero", surrogate="arctan"),
        data_options={"timesteps": 10, "size": 128},
        notes="LIF tau = 2 (leak 0.5), hard reset, arctan surrogate; LAMP pruning 25% of the "
              "remaining weights per round with rewinding, 14 rounds for the paper's 98.2 % "
              "(1 - 0.75^14; PAPERS.md says about 15); the KL rule then chooses t <= T = 10; both "
              "the spatial and the temporal study on DVS128 Gesture with this net, as in the paper",
    ),
    "06_comparison": PaperSettings(
        paper="all five",
        dataset="cifar10", preset="vgg9", timesteps=(5,), encoding="direct",
        neuron=NeuronSpec(beta=0.9, threshold=1.0, reset="subtract", surrogate="arctan"),
        preset_options={"pool": "max"},
        notes="no paper defines the side-by-side run; a VGG net is the one every method accepts "
              "(the structured criteria and shrink work on VGG and ResNet specs), at the small T "
              "papers 2 and 4 use; max pooling instead of vgg9's average pooling, and the images "
              "binarised, so that every layer's input is spikes, which the memory-inclusive energy "
              "model (paper 3's) needs",
    ),
}


def _fmt_T(timesteps: tuple[int, ...]) -> str:
    return " -> ".join(str(t) for t in timesteps)


def settings_table() -> str:
    """:data:`PAPER_SETTINGS` as a markdown table, one row per notebook (the README's)."""
    rows = ["| notebook | paper | data set | network | T | input | neuron |",
            "|---|---|---|---|---|---|---|"]
    for nb, s in PAPER_SETTINGS.items():
        n = s.neuron
        neuron = f"leak {n.beta:g}, {n.reset} reset, {n.surrogate}"
        if n.learn_beta or n.learn_threshold:
            neuron += ", learned leak and threshold"
        data = s.dataset + (f" ({s.data_options['size']}x{s.data_options['size']})"
                            if "size" in s.data_options else "")
        rows.append(f"| `{nb}` | {s.paper} | {data} | `{s.preset}` | {_fmt_T(s.timesteps)} | {s.encoding} "
                    f"| {neuron} |")
    return "\n".join(rows)

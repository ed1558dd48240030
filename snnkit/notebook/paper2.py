"""Figures and energy accounting of the attention-guided compression notebook (paper 2).

Kundu et al. price an SNN against an ANN; FLOP-based SNN papers count the ANN's dense
multiply-accumulates, while sparsity-aware hardware skips zero weights and zero inputs.
:func:`energy_table` gives both conventions side by side so that every ratio names the one
it uses; :func:`energy_figure` draws them; :func:`plain_log_axis` keeps log axes of
fractions readable (0.05, 0.1, 0.5 instead of 5x10^-2) and :func:`three_digits` writes
energies without exponents. :func:`one_per_resolution` picks the attention maps a figure
shows (the last layer at each map size), :func:`show_image` draws an input image (grey
digits or colour CIFAR-10) and :func:`sample_title` names its class.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
from torch import Tensor, nn

from snnkit.encoding import model_input
from snnkit.metrics import energy, measure

#: the two ways an ANN or SNN is priced here, as columns of :func:`energy_table`
CONVENTIONS = ("dense MACs", "effective counts")


def three_digits(value: float) -> str:
    """A value to about 3 significant digits without an exponent: ``0.997``, ``17.8``, ``1,138``."""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def one_per_resolution(maps: Mapping[str, Tensor]) -> list[str]:
    """The layers whose maps a figure shows: the last one at each map size, largest size first.

    Args:
        maps: layer -> attention maps (B, H, W) (or (B, L)), in forward order, as
            :func:`snnkit.compress.attention.attention_maps` with ``flatten=False`` gives them.

    Returns:
        Layer names in forward order: conv1 and conv2 of a conv-pool-conv-pool net (28 x 28
        and 14 x 14 on MNIST), conv2, conv4, conv7, conv10 and conv13 of VGG16 on CIFAR-10
        (32 x 32 down to 2 x 2).
    """
    if not maps:
        raise ValueError("maps is empty: expected {layer: (B, H, W)} of at least one layer")
    last: dict[tuple[int, ...], str] = {}
    for name, m in maps.items():
        last[tuple(m.shape[1:])] = name  # a later layer of the same size replaces an earlier one
    return list(last.values())


def show_image(ax: Axes, image: Tensor, title: str = "") -> Axes:
    """Draw one input image without ticks: one channel as grey ink on white, three as colour.

    Args:
        ax: where to draw.
        image: (1, H, W) or (3, H, W), values in [0, 1] (values outside are clipped in colour).
        title: the panel's title.

    Returns:
        ``ax``.
    """
    if image.dim() != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"image of shape {tuple(image.shape)}: expected (1, H, W) or (3, H, W)")
    image = image.detach().cpu()
    if image.shape[0] == 1:
        ax.imshow(image[0], cmap="gray_r")
    else:
        ax.imshow(image.permute(1, 2, 0).clamp(0, 1))
    ax.set_xticks([]), ax.set_yticks([])
    ax.set_title(title, fontsize=8)
    return ax


def sample_title(classes: Sequence[str], label: int) -> str:
    """A test image's class in words: ``"digit 3"`` for digit classes, ``"cat"`` for CIFAR-10.

    Args:
        classes: the data set's class names, indexed by label (may be empty: the label is used).
        label: the image's label.
    """
    name = classes[label] if classes else str(label)
    return f"digit {name}" if name.isdigit() else name


def plain_log_axis(ax: Axes, axis: str = "y") -> Axes:
    """Label a log axis with plain decimals (0.02, 0.1, 1) at 1-2-5 steps, no minor labels.

    Args:
        ax: the axes, already on a log scale along ``axis``.
        axis: ``"x"`` or ``"y"``.

    Returns:
        ``ax``.
    """
    if axis not in ("x", "y"):
        raise ValueError(f"axis={axis!r}: expected 'x' or 'y'")
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    target.set_minor_formatter(NullFormatter())
    return ax


def energy_table(models: Mapping[str, tuple[nn.Module, int | None]], x: Tensor,
                 precision: str = "fp32") -> pd.DataFrame:
    """Compute energy per image (uJ at 45 nm) of each model, in both pricing conventions.

    Args:
        models: name -> (model, T); T is None for an ANN (it sees ``x`` once), else the
            SNN's time steps (direct input: ``x`` repeated T times).
        x: images, (N, C, H, W).
        precision: a key of :data:`snnkit.metrics.energy.ENERGY_TABLE`.

    Returns:
        One row per model, columns :data:`CONVENTIONS`: ``"dense MACs"`` counts every
        weight of every layer (an ANN pays a MAC per weight, an SNN an add per weight
        reached by a spike); ``"effective counts"`` skips zero weights and zero inputs.
    """
    rows = {}
    for name, (model, T) in models.items():
        report = measure(model, model_input(x, T or 1, spiking=T is not None))
        rows[name] = {c: energy(report, precision, k)["total_uj"] for c, k in zip(CONVENTIONS, ("dense", "effective"))}
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(CONVENTIONS))


def energy_figure(table: pd.DataFrame, title: str = "45 nm compute energy per image") -> Figure:
    """Grouped bars of :func:`energy_table` (models along x, one bar per convention), log y
    with plain tick labels and a value label on every bar."""
    fig, ax = plt.subplots(figsize=(1.6 + 1.5 * len(table), 3.6))
    table.plot.bar(ax=ax, rot=0, width=0.75, logy=True)
    for container in ax.containers:
        ax.bar_label(container, fmt=three_digits, fontsize=7, padding=1)
    ax.set(xlabel="", ylabel="energy [uJ per image]", title=title)
    ax.set_xticks(range(len(table)), [n.replace(" ", "\n", 1) for n in table.index])
    plain_log_axis(ax, "y")
    ax.set_ylim(table.min().min() / 2, table.max().max() * 3)
    ax.legend(title="priced by", fontsize=8, title_fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig

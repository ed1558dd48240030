"""Channel surgery: remove the channels a planner did not keep, for real.

::

    sel = select(snn, "svs", "layer", Inputs(x, T=4), keep=0.5)
    small = shrink(snn, sel)          # a new, smaller Net: build(spec.with_widths(sel.widths))
    same = mask_channels(snn, sel)    # the same architecture, removed channels zeroed

:func:`shrink` builds a new :class:`~snnkit.models.Net` from ``spec.with_widths(widths)``
and copies into it every surviving tensor: the kept output channels of each pruned
Conv/Linear layer (rows of the weight, entries of the bias), the matching batch-norm
weight, bias and running statistics, the per-channel leak and threshold of the LIF layer
(:attr:`NeuronSpec.per_channel`), and the matching input columns of the next layer. The
shrunk model is an ordinary ``Net``: it trains, copies, pickles and checkpoints like any
other, and it computes what the masked model computes. Exactly, wherever the conv and
linear sums are exact: the tests check ``torch.equal`` on VGG and ResNet SNNs, on images
and on sequences, with weights on a 1/32 grid. With arbitrary weights a kernel may add a layer's terms in another order
for another channel count, so outputs can differ in the last bit (seen on the ANN twin,
about 2e-9; the SNNs tested here still matched exactly).

Which tensors are cut (:func:`channel_plan`):

* A chain (:func:`snnkit.models.is_chain`: a VGG spec, or the
  :class:`~snnkit.interop.SequentialSpec` of an imported snntorch net): conv or hidden linear
  layer ``i`` loses output channels, its batch norm and LIF the same channels (pooling and
  dropout between them have nothing to cut), layer ``i + 1`` the same input channels. After
  the last conv, the flatten turns channel ``c`` of a map with ``P`` positions per channel
  ((C, H, W): ``P = H*W``; a sequence (C, L): ``P = L``) into the columns ``c*P ... c*P +
  P - 1`` of the first linear layer; those columns are cut. 1-D convolutions are cut like
  2-D ones (their weights are (C_out, C_in, k)).
* ResNet: a prunable width is a block's *inner* width (``ResNetSpec.widths``): the block's
  ``conv1`` loses output channels, ``bn1`` and ``act1`` the same, ``conv2`` the same input
  channels. Nothing else in the network sees those channels.

Why not Torch-Pruning's dependency graph. Traced on the ANN twin (same parameter names),
``torch_pruning.DependencyGraph`` finds, for every channel, the group of layers that must
lose it together. What it buys over hand-written surgery is the *coupled* groups: a ResNet
stage's output width is shared, through the residual additions, by the stem (or the
previous stage's projection), every block's ``conv2``/``bn2``/``act2``, the projection
shortcuts, and the next convs' inputs, and the graph finds all of them. But snnkit's
specs do not let those widths be pruned: ``ResNetSpec.widths`` are the inner widths only,
and each inner width couples exactly three layers of one block, as above (the dependency
graph finds these same groups; ``tests/test_surgery.py`` checks that for every prunable
width of a VGG and a ResNet, layers and indices, including the flatten's column mapping).
We do not extend ``ResNetSpec`` to stage widths here: that changes the residual stream of a
whole stage at once, and the methods in this kit do not need it (QP-SNN's ResNet pruning
is read as pruning the blocks' inner widths, as is usual for basic blocks). Own surgery is
then simpler (:func:`channel_plan` is forty lines; no tracing, no modules changed in place)
and as general as the specs: it covers every width a spec can express. It also handles
what the graph on the ANN twin cannot see: the LIF layers' per-channel leak and threshold
(the twin has ReLUs there), and it returns a ``Net`` whose ``spec`` matches its modules,
which ``build``, checkpoints and the metrics rely on. Should stage widths ever become
prunable, the graph (traced on the ANN twin) is the way to find their groups.

Masking (:func:`mask_channels`). A removed channel of a LIF layer may still spike if only
its incoming weights are zeroed: its input current still holds the bias or the batch-norm
shift. So the masked model zeroes (with :mod:`torch.nn.utils.prune` masks, which survive
fine-tuning) the channel's incoming weights, its bias, *and* its batch-norm weight and
bias. Its current is then exactly 0, its membrane stays 0 below the (positive) threshold,
and it never spikes, so the masked model's spike counts match the shrunk model's. The
channel's outgoing weights (the next layer's input columns) are zeroed too, so that
nothing of it reaches the next layer even if a learned threshold ever dropped to 0.
"""
from __future__ import annotations

import copy
from typing import NamedTuple, Sequence

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..models import CONV_TYPES, LIF, BasicBlock, Net, ResNetSpec, build, is_chain
from ..weights import apply_masks, apply_records, masks_of, quant_records, remove_quantizers
from .activity import prunable_layers
from .planners import Selection

__all__ = ["Cut", "channel_plan", "kept_channels", "shrink", "mask_channels"]


class Cut(NamedTuple):
    """The channels one module keeps: ``out`` along its output (dim 0 of the weight, and
    of the bias, batch-norm and per-channel LIF vectors), ``inp`` along its input (dim 1 of
    a Conv/Linear weight). Ascending int64 indices; None = all."""

    out: Tensor | None
    inp: Tensor | None


def kept_channels(model: Net, selection: Selection | Sequence[Sequence[int]]) -> list[Tensor]:
    """The kept channel indices of every prunable layer, checked against ``model``.

    ``selection`` is a :class:`~snnkit.compress.planners.Selection` (its
    :meth:`~snnkit.compress.planners.Selection.kept`) made on this architecture, or one
    sequence of kept channel indices per width in ``model.spec.widths``.
    """
    spec = getattr(model, "spec", None)
    if not (is_chain(spec) or isinstance(spec, ResNetSpec)):
        raise ValueError(f"model.spec is a {type(spec).__name__}: expected a model built from a VGGSpec, a "
                         "ResNetSpec or a SequentialSpec (snnkit.interop)")
    widths = list(spec.widths)
    layers = prunable_layers(model)  # also checks that every width has its own neuron to cut
    if isinstance(selection, Selection):
        if list(selection.layers) != layers or list(selection.original) != widths:
            raise ValueError(f"selection for layers {selection.layers} of widths {selection.original}: expected "
                             f"one made on this model (layers {layers}, widths {widths})")
        keeps = selection.kept()
    else:
        keeps = [torch.as_tensor(list(k), dtype=torch.long) for k in selection]
        if len(keeps) != len(widths):
            raise ValueError(f"{len(keeps)} lists of kept channels: expected {len(widths)} (one per width {widths})")
    out = []
    for i, (k, c) in enumerate(zip(keeps, widths)):
        k = torch.as_tensor(k, dtype=torch.long).flatten()
        if k.numel() == 0 or int(k.min()) < 0 or int(k.max()) >= c or k.unique().numel() != k.numel():
            raise ValueError(f"kept channels {k.tolist()} of width {i}: expected distinct indices in [0, {c - 1}], "
                             "at least one")
        out.append(k.sort().values)
    return out


def channel_plan(model: Net, selection: Selection | Sequence[Sequence[int]]) -> dict[str, Cut]:
    """``{module name: Cut}`` for every module that loses channels (others keep everything).

    The rules are in the module docstring: VGG layers and those of a
    :class:`~snnkit.interop.SequentialSpec` form a chain (with the flatten's column mapping),
    a ResNet block's inner width touches ``conv1``, ``bn1``, ``act1`` and the input of
    ``conv2``. 1-D and 2-D convolutions alike (:data:`snnkit.models.CONV_TYPES`).
    """
    keeps = kept_channels(model, selection)
    widths = list(model.spec.widths)
    plan: dict[str, Cut] = {}
    layers = list(model.body.layers)
    if isinstance(model.spec, ResNetSpec):
        blocks = [(i, m) for i, m in enumerate(layers) if isinstance(m, BasicBlock)]
        for (i, block), k in zip(blocks, keeps):
            p = f"body.layers.{i}"
            plan[f"{p}.conv1"] = Cut(k, None)
            if isinstance(block.bn1, _BatchNorm):
                plan[f"{p}.bn1"] = Cut(k, None)
            plan[f"{p}.act1"] = Cut(k, None)
            plan[f"{p}.conv2"] = Cut(None, k)
        return plan
    current: Tensor | None = None  # kept channels of the tensor flowing between layers
    channels = model.spec.in_shape[0]  # its original channel count
    flattened_from: int | None = None  # channel count of the map a Flatten turned into columns
    nxt = iter(zip(keeps, widths))
    for i, m in enumerate(layers):
        name = f"body.layers.{i}"
        if isinstance(m, (*CONV_TYPES, nn.Linear)):
            inp = current
            if isinstance(m, nn.Linear) and flattened_from is not None and current is not None:
                hw = m.in_features // flattened_from  # positions per channel of the flattened map
                inp = (current[:, None] * hw + torch.arange(hw)).flatten()
            flattened_from = None
            k, c = next(nxt, (None, None))
            plan[name] = Cut(k, inp)
            current, channels = k, (c if c is not None else channels)
        elif isinstance(m, (_BatchNorm, LIF)):
            if current is not None:
                plan[name] = Cut(current, None)
        elif isinstance(m, nn.Flatten):
            flattened_from = channels
    return {n: cut for n, cut in plan.items() if cut.out is not None or cut.inp is not None}


def _cut(value: Tensor, cut: Cut, is_weight: bool) -> Tensor:
    """Apply a Cut to one tensor of its module: dim 0 by ``out``, a weight's dim 1 by ``inp``."""
    if value.dim() >= 1 and cut.out is not None:
        value = value.index_select(0, cut.out.to(value.device))
    if is_weight and value.dim() >= 2 and cut.inp is not None:
        value = value.index_select(1, cut.inp.to(value.device))
    return value


def shrink(model: Net, selection: Selection | Sequence[Sequence[int]]) -> Net:
    """A new, smaller ``Net`` holding only the kept channels of ``model`` (not modified).

    Built from ``model.spec.with_widths(widths)`` (same ``spiking``, same device and
    dtype, same train/eval mode), with every surviving tensor copied: weights, biases,
    batch-norm parameters and running statistics, LIF leaks and thresholds (per channel or
    per layer). Pruning masks of :mod:`snnkit.compress.masks`, if any, are cut the same way
    and kept. A quantized model keeps its quantizers: each quantized layer of the result
    gets a quantizer of the same scheme, bits and options, fitted to its kept float weights
    (see :func:`snnkit.weights.apply_records`). In eval mode the outputs of an
    unquantized model's shrunk copy equal :func:`mask_channels`'s exactly.

    Args:
        model: a net built by :func:`snnkit.models.build` (SNN or ANN twin).
        selection: a :class:`~snnkit.compress.planners.Selection` for this model (e.g.
            ``select(model, "svs", "layer", inputs, keep=0.5)``), or the kept channel
            indices of every width.
    """
    if quant_records(model):
        plain = copy.deepcopy(model)
        records = remove_quantizers(plain, bake=False)
        return apply_records(shrink(plain, selection), records)
    keeps = kept_channels(model, selection)
    plan = channel_plan(model, keeps)
    state, mask_state = {}, {}
    for key, value in model.state_dict().items():
        mname, _, pname = key.rpartition(".")
        is_mask = pname.endswith("_mask")
        base = pname[: -len("_orig")] if pname.endswith("_orig") else pname[: -len("_mask")] if is_mask else pname
        cut = plan.get(mname)
        if cut is not None:
            value = _cut(value, cut, is_weight=base == "weight")
        (mask_state if is_mask else state)[f"{mname}.{base}"] = value.clone()
    param = next(model.parameters())
    small = build(model.spec.with_widths([len(k) for k in keeps]), spiking=model.spiking)
    small.to(device=param.device, dtype=param.dtype)
    small.load_state_dict(state, strict=True)
    if mask_state:
        apply_masks(small, mask_state)
    return small.train(model.training)


def mask_channels(model: Net, selection: Selection | Sequence[Sequence[int]]) -> Net:
    """A copy of ``model`` whose removed channels are zeroed by pruning masks (not modified).

    For every removed channel: the producing layer's weight rows and bias entry, the
    batch-norm weight and bias, and the next layer's input columns are masked (see the
    module docstring for why all of them). The masks are :mod:`torch.nn.utils.prune`
    masks, combined with any the model already has, so they survive fine-tuning. The
    architecture and parameter count are unchanged; in eval mode its outputs equal
    :func:`shrink`'s exactly.

    Raises:
        ValueError: ``model`` is quantized (masks go under a layer's quantizer: mask first,
            then quantize, see :mod:`snnkit.compress.quant`).
    """
    if quant_records(model):
        raise ValueError(f"mask_channels needs a model without quantizers; this one quantizes "
                         f"{list(quant_records(model))}: mask first, then quantize")
    plan = channel_plan(model, kept_channels(model, selection))
    masked = copy.deepcopy(model)
    modules = dict(masked.named_modules())
    current = masks_of(masked)
    new = {}
    for mname, cut in plan.items():
        module = modules[mname]
        for pname in ("weight", "bias"):
            value = getattr(module, pname, None)
            if not isinstance(value, Tensor) or isinstance(module, LIF):
                continue  # LIF leak/threshold: a zero current never reaches them
            keep = torch.zeros_like(value)
            keep[_index(cut, value, pname == "weight")] = 1.0
            key = f"{mname}.{pname}"
            new[key] = keep * current[key] if key in current else keep
    return apply_masks(masked, new)


def _index(cut: Cut, value: Tensor, is_weight: bool) -> tuple:
    """Index of the kept block of ``value`` (rows ``out``, and columns ``inp`` of a weight)."""
    rows = cut.out if cut.out is not None else torch.arange(value.shape[0])
    if is_weight and value.dim() >= 2 and cut.inp is not None:
        return (rows[:, None], cut.inp[None, :])
    return (rows,)

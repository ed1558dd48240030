"""Weight quantization: the grid, the quantizers, and the record every reader uses.

Chowdhury, Garg and Roy (2021) quantize the trained weights of an SNN uniformly and
symmetrically after training and find about 5 bits nearly lossless; Schaefer et al. (2023)
train with learned per-layer scales down to ternary weights; Wei et al. (QP-SNN, 2025)
rescale each output channel before a uniform grid. All of them are *fake quantization*:
the network keeps computing in floating point, but every weight it uses sits on a grid.

**The grid.** A ``b``-bit quantizer maps each weight to one of a few levels
``scale * code`` (``scale`` is the level unit): the codes are integers (the symmetric grid of :func:`symmetric_codes`:
``-(2^(b-1) - 1) .. 2^(b-1) - 1``, i.e. ``2^b - 1`` levels including 0; ``{-1, +1}`` at
one bit) and ``scale`` is one number for the tensor or one per output channel. Storage is
``b`` bits per weight plus the scales.

**Range setting (post-training).** Scaling the grid by ``max|w|`` wastes it at low bit
widths: at 2 bits the levels ``{-max, 0, +max}`` send every weight below ``max/2`` (about
96% of Gaussian weights) to zero, and the network stops working. :func:`mse_scale`
chooses the rounding unit that minimises the squared error ``||w - Q(w)||^2`` instead,
the MSE-based range setting of Nagel et al. (2021), "A White Paper on Neural Network
Quantization" (arXiv:2106.08295), which their post-training pipeline recommends for
weights: a grid search over clipping ratios ``alpha = k / 100`` of ``max|w|``
(``scale = alpha max|w| / (2^(b-1) - 1)``), followed by least-squares refinement (for fixed
codes ``q`` the best scale is ``<w, q> / <q, q>``; each refinement step is kept only if it
lowers the error). At one bit the codes are the signs and that least-squares scale is
``mean|w|`` (over the non-zero weights), exactly. ``rule="max"`` keeps the max-based unit
for comparison.

**Keeping the gain (what spiking layers need).** Least squares makes the error orthogonal
to the quantized weight, so the quantized weight is a shrunk copy of the float one:
``<w, Q(w)> = g ||w||^2`` with a gain ``g < 1`` (about 0.81 for Gaussian weights at 2
bits, 0.64 at 1 bit, above 0.99 from 5 bits). A neuron with a fixed threshold then gets
``g`` times its input current, fires less, and the next layer gets fewer spikes still: in
notebook 01 (a converted, PCA-pruned VGG SNN on the digits) the 2-bit network fell to
0.42 test accuracy with least-squares levels, and to chance in the smoke profile. So by
default (``keep_gain=True``) the codes stay those of the MSE rounding unit but the levels
are spaced by :func:`gain_scale`, ``c = ||w||^2 / <w, q>``, which makes the error
orthogonal to ``w`` itself (the unit-gain form of Bussgang's decomposition of a quantizer
into gain times input plus uncorrelated distortion): the layer keeps its mean current, and
the same 2-bit network reached 0.91 (test) and 0.92 (validation split). The weight error
grows a little (relative L2 error ``sqrt(1/g - 1)``: 0.48 instead of 0.44 for Gaussian
ternary); ``keep_gain=False`` gives the plain least-squares quantizer. The rounding unit and
the level unit play the roles of Schaefer et al.'s input range ``a`` and output range
``c``, which their quantizer learns.

**Quantizers are modules attached to a layer.** A quantizer is an ``nn.Module``
(:class:`WeightQuantizer`) that maps a float weight to its fake-quantized value with a
straight-through gradient (:func:`round_ste`). :func:`attach_quantizer` attaches one to a
Conv/Linear layer the way :mod:`torch.nn.utils.prune` attaches a mask:

* the float weight becomes the parameter ``weight_fp`` (what the optimizer trains),
  the quantizer the submodule ``weight_quantizer`` (its scales are buffers, or
  parameters when learned), and a forward pre-hook sets ``module.weight =
  weight_quantizer(weight_fp)`` before every forward pass (a forward hook detaches it
  afterwards, so that quantized models deep-copy and pickle);
* on a layer masked by :mod:`snnkit.compress.masks` (``weight_orig`` parameter,
  ``weight_mask`` buffer) the quantizer sees the masked weight and its output is masked
  again: ``weight = Q(weight_orig * mask) * mask``. Masked entries stay exactly zero on any
  grid, the others sit on the grid. Prune first, then quantize: pruning a quantized layer
  again would let the pruning hook overwrite the quantized weight, so the quantizer's hook
  raises instead.

The same object serves post-training quantization (the scale is fixed from the weights
when the quantizer is built) and quantization-aware training: ``fit`` trains the float
weight through the straight-through gradient, and with ``learn_scale=True`` the rounding
unit is a parameter trained alongside it (the level unit follows it), with no change to
the trainer (Esser et al. 2020, "Learned Step Size Quantization").

**The record.** :meth:`WeightQuantizer.record` describes a layer's quantization as a
:class:`QuantRecord` (scheme, bits, scale, codes, per channel or not, options), and
:func:`quant_records` returns ``{module name: record}`` for a model.
:func:`snnkit.metrics.model_size_bits` reads the bit widths from it and
:func:`snnkit.train.save_checkpoint` saves it (the scales themselves travel in the state
dict); :func:`apply_records` rebuilds the quantizers from records.

**Adding a quantizer** takes one class registered by name in :data:`QUANTIZERS`. Its
constructor takes the weight it is fitted to, the bit width, ``per_channel`` and
``axis`` (raise ``ValueError`` for what it does not support) and its own keyword options;
it implements ``forward(w) -> w_q`` (with a straight-through gradient), ``scale(w)`` and
``codes()`` (the grid is ``scale * codes``), and ``options()`` when it has keyword options,
so that a checkpoint can rebuild it. For instance, a learned-scale quantizer in the style
of Schaefer et al.::

    @QUANTIZERS.register("learned-ab")
    class LearnedAB(WeightQuantizer):
        def __init__(self, weight, bits, *, per_channel=False, axis=0):
            super().__init__(bits, per_channel=per_channel, axis=axis)
            init = weight.detach().abs().max()
            self.a = nn.Parameter(init.clone())        # input range
            self.c = nn.Parameter(init.clone())        # output range

        def forward(self, w):
            n1 = 2 ** (self.bits - 1) - 1
            return self.c * round_ste(torch.clamp(w / self.a, -1, 1) * n1) / n1

        def scale(self, w=None):
            return self.c.detach() / (2 ** (self.bits - 1) - 1)

``codes()`` defaults to :func:`symmetric_codes`; override it for another code set (e.g.
``2^b`` odd codes ``-s, -s+2, .., s`` with ``scale = 1/s`` for a grid without zero).
"""

from __future__ import annotations

import copy
import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Union

import torch
from torch import Tensor, nn
from torch.nn.utils import prune

from ..registry import Registry

__all__ = [
    "QUANTIZERS",
    "RANGE_RULES",
    "QuantRecord",
    "WeightQuantizer",
    "UniformQuantizer",
    "apply_records",
    "attach_quantizer",
    "effective_weight",
    "fake_quantize",
    "float_weight",
    "gain_scale",
    "max_scale",
    "mse_scale",
    "quant_records",
    "quantization_levels",
    "quantize_model",
    "quantize_uniform",
    "quantize_uniform_channel",
    "quantizer_of",
    "refresh_weights",
    "relative_error",
    "remove_quantizers",
    "round_ste",
    "symmetric_codes",
]

#: Module types whose ``weight`` :func:`quantize_model` quantizes.
#: ``_ConvNd`` covers Conv1d/2d/3d and their transposed variants.
_QUANTIZABLE = (nn.modules.conv._ConvNd, nn.Linear)

#: Name of the float weight parameter of a quantized (unmasked) layer.
FP_NAME = "weight_fp"
#: Name of the quantizer submodule of a quantized layer.
QUANTIZER_NAME = "weight_quantizer"


# ---------------------------------------------------------------------------------------
# pure grid maths


def _check_bits(bits: object) -> int:
    """Return ``bits`` as an int, or raise ValueError if it is not an integer >= 1."""
    # bool is an Integral subclass but ``True`` bits is surely a mistake.
    if isinstance(bits, bool) or not isinstance(bits, numbers.Integral) or bits < 1:
        raise ValueError(f"bits must be an integer >= 1, got {bits!r}")
    return int(bits)


def _check_float(w: Tensor) -> None:
    if not isinstance(w, Tensor) or not w.is_floating_point():
        got = w.dtype if isinstance(w, Tensor) else type(w).__name__
        raise ValueError(f"w must be a floating-point tensor, got {got}")


def _reduce_dims(w: Tensor, per_channel: bool, axis: int) -> tuple[int, ...]:
    """Dimensions a statistic reduces over: all (per tensor) or all but ``axis`` (per channel)."""
    if not per_channel or w.dim() == 0:
        return tuple(range(w.dim()))
    if not -w.dim() <= axis < w.dim():
        raise ValueError(
            f"axis must index a dimension of the {w.dim()}-D weight "
            f"(in [{-w.dim()}, {w.dim() - 1}]), got {axis}"
        )
    axis = axis % w.dim()
    return tuple(d for d in range(w.dim()) if d != axis)


def _sum(x: Tensor, dims: tuple[int, ...]) -> Tensor:
    """Sum over ``dims`` keeping them as size 1 (a 0-D sum of a 0-D tensor is itself)."""
    return x.sum(dim=dims, keepdim=True) if dims else x.clone()


def symmetric_codes(bits: int, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> Tensor:
    """The integer codes of the symmetric uniform grid, ascending, as a float tensor.

    ``bits >= 2``: ``-(2^(b-1) - 1), ..., 2^(b-1) - 1`` (``2^b - 1`` codes; the most negative
    two's-complement code is left out so that the grid is symmetric and contains 0).
    ``bits == 1``: ``[-1, +1]`` (a symmetric grid with zero would hold nothing else).
    """
    bits = _check_bits(bits)
    if bits == 1:
        return torch.tensor([-1.0, 1.0], dtype=dtype, device=device)
    qmax = 2 ** (bits - 1) - 1
    return torch.arange(-qmax, qmax + 1, dtype=dtype, device=device)


class _RoundSTE(torch.autograd.Function):
    """``round(x)`` forward, identity backward (straight-through estimator)."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # noqa: D102
        return torch.round(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # noqa: D102
        # d round(x) / dx is 0 almost everywhere; the STE passes the gradient through as if
        # round were the identity (Bengio et al. 2013).
        return grad


class _SignSTE(torch.autograd.Function):
    """``+1 if x >= 0 else -1`` forward (0 goes to +1), identity backward."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # noqa: D102
        return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # noqa: D102
        return grad


def round_ste(x: Tensor) -> Tensor:
    """``round(x)`` (half to even) with a straight-through gradient: ``d/dx = 1``.

    Exact in the forward pass (unlike ``x + (round(x) - x).detach()``, which can miss the
    integer by a rounding error), so quantized weights sit exactly on their grid.
    """
    return _RoundSTE.apply(x)


def _to_codes(x: Tensor, bits: int) -> Tensor:
    """Nearest symmetric code of ``x`` (in units of the scale), with the clipped STE gradient.

    The gradient is 1 where ``x`` lies inside the code range and 0 where it is clipped.
    """
    if bits == 1:
        return _SignSTE.apply(torch.clamp(x, -1.0, 1.0))
    qmax = 2 ** (bits - 1) - 1
    return round_ste(torch.clamp(x, -qmax, qmax))


def fake_quantize(w: Tensor, scale: Tensor, bits: int, out: Tensor | None = None) -> Tensor:
    """``out * code(w / scale)`` on the symmetric grid of :func:`symmetric_codes`.

    Args:
        w: weight, any shape (float).
        scale: the rounding unit, broadcastable against ``w`` (0-D, or per channel with
            size 1 on every dimension but the channel one). A zero scale maps to 0.
        bits: bit width >= 1.
        out: the level unit of the output, shaped like ``scale`` (default ``scale``: the
            textbook quantizer; see :func:`gain_scale` for why it may differ).

    Gradients: straight-through for ``w`` inside the grid's range (0 where clipped), and
    the learned-step-size gradient for ``scale`` (``code - w/scale`` inside the range, the
    clipped code outside), as in Esser et al. (2020).
    """
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    return (scale if out is None else out) * _to_codes(w / safe, bits)


def _sign_scale(w: Tensor, dims: tuple[int, ...]) -> Tensor:
    """Mean ``|w|`` over the non-zero entries (0 where all are zero), keeping ``dims``."""
    a = w.detach().abs()
    if not dims:
        return a.clone()
    count = (a != 0).sum(dim=dims, keepdim=True).clamp_min(1)
    return a.sum(dim=dims, keepdim=True) / count


def max_scale(w: Tensor, bits: int, per_channel: bool = False, axis: int = 0) -> Tensor:
    """The max-based scale: ``max|w| / (2^(b-1) - 1)``; at one bit the sign scale.

    The grid then reaches exactly the largest weight. Kept for comparison: at low bit
    widths it leaves most weights in the zero bin (see the module docstring). At one bit
    (codes ``{-1, +1}``) both rules give the least-squares scale of the signs, ``mean|w|``
    taken over the non-zero entries: exact zeros are pruned weights, which a mask keeps at
    zero, so they must not pull the scale down.

    Returns:
        0-D per tensor; per channel ``w``'s shape with size 1 on every dimension but ``axis``.
    """
    bits = _check_bits(bits)
    _check_float(w)
    dims = _reduce_dims(w, per_channel, axis)
    if bits == 1:
        stat = _sign_scale(w, dims)
    else:
        a = w.detach().abs()
        stat = (a.amax(dim=dims, keepdim=True) if dims else a.clone()) / (2 ** (bits - 1) - 1)
    return _scale_shape(stat, w, per_channel)


def _scale_shape(s: Tensor, w: Tensor, per_channel: bool) -> Tensor:
    """0-D per tensor; per channel as it is (size 1 on every dimension but the channel's)."""
    return s if per_channel and w.dim() > 0 else s.reshape(())


def _as_rows(w: Tensor, per_channel: bool, axis: int) -> Tensor:
    """``|w|`` as float64 rows ``(C, M)``: one row per channel along ``axis``, or one row."""
    a = w.detach().abs().double()
    if not per_channel or w.dim() == 0:
        return a.reshape(1, -1)
    _reduce_dims(w, per_channel, axis)  # checks axis
    return a.movedim(axis, 0).reshape(w.shape[axis], -1)


class _SortedRows:
    """Sorted magnitudes and their prefix sums, so that the squared error of the symmetric
    grid at any scale costs O(levels x log M) instead of a pass over the weights.

    With the magnitudes sorted, the weights whose code is ``k`` (``k < qmax``) are those in
    ``[(k - 1/2) s, (k + 1/2) s)`` and code ``qmax`` takes the rest, so per code ``k`` the
    count ``n_k``, the sum ``S1_k`` and the sum of squares ``S2_k`` come from prefix sums,
    and ``||a - s q||^2 = sum S2 - 2 s sum_k k S1_k + s^2 sum_k k^2 n_k``. (A weight exactly
    half-way between two levels is as far from either, so ties do not change the error.)
    """

    def __init__(self, rows: Tensor, bits: int) -> None:
        self.a = rows.sort(dim=1).values.contiguous()  # (C, M)
        zero = torch.zeros_like(self.a[:, :1])
        self.p1 = torch.cat([zero, self.a.cumsum(1)], 1)  # (C, M + 1)
        self.p2 = torch.cat([zero, (self.a * self.a).cumsum(1)], 1)
        self.qmax = 2 ** (bits - 1) - 1
        self.codes = torch.arange(self.qmax + 1, dtype=rows.dtype, device=rows.device)  # (qmax + 1,)

    def stats(self, s: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """For scales ``s`` (C, K): squared error, ``<a, q>`` and ``<q, q>``, each (C, K)."""
        C, K = s.shape
        M = self.a.shape[1]
        bounds = (self.codes[:-1] + 0.5) * s.unsqueeze(-1)  # (C, K, qmax)
        idx = torch.searchsorted(self.a, bounds.reshape(C, -1).contiguous()).reshape(C, K, self.qmax)
        idx = torch.cat([torch.zeros_like(idx[..., :1]), idx, torch.full_like(idx[..., :1], M)], -1)
        flat = idx.reshape(C, -1)
        s1 = self.p1.gather(1, flat).reshape(C, K, -1).diff(dim=-1)  # (C, K, qmax + 1)
        s2 = self.p2.gather(1, flat).reshape(C, K, -1).diff(dim=-1)
        n = idx.diff(dim=-1).to(s.dtype)
        num = (s1 * self.codes).sum(-1)
        den = (n * self.codes**2).sum(-1)
        err = (s2.sum(-1) - 2 * s * num + s * s * den).clamp_min(0.0)
        return err, num, den


class _DirectRows:
    """The same statistics as :class:`_SortedRows` by rounding every weight at every scale:
    cheaper than the prefix sums when the grid has more levels than a row has weights."""

    def __init__(self, rows: Tensor, bits: int) -> None:
        self.a = rows.sort(dim=1).values  # (C, M)
        self.qmax = 2 ** (bits - 1) - 1
        self.sq = (self.a * self.a).sum(1, keepdim=True)  # (C, 1)

    def stats(self, s: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        C, K = s.shape
        M = self.a.shape[1]
        chunk = max(1, (1 << 23) // max(1, C * M))  # at most ~8M elements at a time
        nums, dens = [], []
        for lo in range(0, K, chunk):
            sk = s[:, lo:lo + chunk].unsqueeze(-1)  # (C, k, 1)
            q = torch.round(self.a.unsqueeze(1) / torch.where(sk > 0, sk, torch.ones_like(sk))).clamp_(max=self.qmax)
            nums.append((q * self.a.unsqueeze(1)).sum(-1))
            dens.append((q * q).sum(-1))
        num, den = torch.cat(nums, 1), torch.cat(dens, 1)
        err = (self.sq - 2 * s * num + s * s * den).clamp_min(0.0)
        return err, num, den


def mse_scale(
    w: Tensor, bits: int, per_channel: bool = False, axis: int = 0, *, grid: int = 100, refine: int = 20
) -> Tensor:
    """The scale of the symmetric grid that minimises the squared error ``||w - Q(w)||^2``.

    MSE-based range setting (Nagel et al. 2021, see the module docstring):

    1. grid search over clipping ratios ``alpha = k / grid`` (``k = 1 .. grid``) of
       ``max|w|``, i.e. ``scale = alpha max|w| / (2^(b-1) - 1)``, keeping the lowest error
       (the smallest ``alpha`` on a tie);
    2. up to ``refine`` least-squares steps: with the codes ``q`` of the current scale fixed,
       ``<w, q> / <q, q>`` is the best scale; a step is kept only where it lowers the error
       (so the result is never worse than the grid search).

    At one bit the codes are ``sign(w)`` whatever the scale, so the answer is the
    least-squares scale ``mean|w|`` directly (over the non-zero entries, see
    :func:`max_scale`). Errors are computed exactly in float64 from
    the sorted magnitudes (one sort per tensor or channel, see :class:`_SortedRows`), so a
    layer of a million weights takes a fraction of a second.

    Args:
        w: weight tensor, any shape (float).
        bits: bit width >= 1.
        per_channel: one scale per slice along ``axis`` instead of one for the tensor.
        axis: channel dimension (0: the output channel of Conv/Linear weights).
        grid: number of clipping ratios tried (>= 1).
        refine: maximum number of least-squares steps (>= 0).

    Returns:
        The scale in ``w``'s dtype: 0-D per tensor; per channel ``w``'s shape with size 1
        on every dimension but ``axis``. 0 for an all-zero tensor or channel.
    """
    bits = _check_bits(bits)
    _check_float(w)
    if isinstance(grid, bool) or not isinstance(grid, int) or grid < 1:
        raise ValueError(f"grid={grid!r}: expected an integer >= 1 (clipping ratios tried)")
    if isinstance(refine, bool) or not isinstance(refine, int) or refine < 0:
        raise ValueError(f"refine={refine!r}: expected an integer >= 0 (least-squares steps)")
    if bits == 1 or w.numel() == 0:
        return max_scale(w, bits, per_channel, axis)
    with torch.no_grad():
        a = _as_rows(w, per_channel, axis)
        qmax = 2 ** (bits - 1) - 1
        # per scale and row: prefix sums cost ~ levels x log2(M) searches, rounding ~ 2 M (measured)
        rows = _SortedRows(a, bits) if qmax * math.log2(a.shape[1] + 1) < 2 * a.shape[1] else _DirectRows(a, bits)
        top = rows.a[:, -1:] / rows.qmax  # (C, 1): alpha = 1
        alphas = torch.arange(1, grid + 1, dtype=top.dtype, device=top.device) / grid
        err, num, den = rows.stats(top * alphas)  # (C, grid)
        pick = err.argmin(dim=1, keepdim=True)  # first minimum: the smallest alpha on a tie
        best = (top * alphas).gather(1, pick)  # (C, 1)
        best_err, num, den = err.gather(1, pick), num.gather(1, pick), den.gather(1, pick)
        for _ in range(refine):
            s = torch.where(den > 0, num / den.clamp_min(1.0), best)
            err, n_s, d_s = rows.stats(s)
            better = err < best_err
            if not bool(better.any()):
                break
            best = torch.where(better, s, best)
            best_err = torch.where(better, err, best_err)
            num, den = torch.where(better, n_s, num), torch.where(better, d_s, den)
    shape = [1] * w.dim()
    if per_channel and w.dim() > 0:
        shape[axis % w.dim()] = -1
    return _scale_shape(best.reshape(shape).to(w.dtype), w, per_channel)


#: How a scale is set from the weights: ``rule(w, bits, per_channel, axis) -> scale``.
RANGE_RULES: dict[str, Callable[[Tensor, int, bool, int], Tensor]] = {"mse": mse_scale, "max": max_scale}


def _range_rule(rule: str) -> Callable[[Tensor, int, bool, int], Tensor]:
    if rule not in RANGE_RULES:
        raise ValueError(f"rule={rule!r}: expected one of {', '.join(RANGE_RULES)}")
    return RANGE_RULES[rule]


def gain_scale(w: Tensor, scale: Tensor, bits: int, per_channel: bool = False, axis: int = 0) -> Tensor:
    """The level unit that keeps the layer's gain: ``c = ||w||^2 / <w, q>``.

    ``q`` are the codes of ``w`` at the rounding unit ``scale``. With levels ``c q`` the
    quantization error is orthogonal to ``w`` (``<w, c q - w> = 0``): the quantized weight
    has the same component along ``w`` as ``w`` itself, so a neuron's mean input current
    is kept (see the module docstring). The least-squares unit ``<w, q> / <q, q>`` makes
    the error orthogonal to ``c q`` instead, which shrinks the weight by the gain
    ``g = <w, c q> / ||w||^2 < 1``. Where ``<w, q> = 0`` (an all-zero tensor or channel)
    the result is ``scale``.

    Returns:
        The unit, shaped like ``scale``, in ``w``'s dtype.
    """
    bits = _check_bits(bits)
    _check_float(w)
    dims = _reduce_dims(w, per_channel, axis)
    with torch.no_grad():
        wd = w.detach().double()
        sd = scale.detach().double()
        codes = _to_codes(wd / torch.where(sd > 0, sd, torch.ones_like(sd)), bits)
        num, den = _sum(wd * wd, dims), _sum(wd * codes, dims)
        c = torch.where(den > 0, num / torch.where(den > 0, den, torch.ones_like(den)), sd.reshape(num.shape))
    return c.reshape(scale.shape).to(w.dtype)


def _units(w: Tensor, bits: int, per_channel: bool, axis: int, rule: str, keep_gain: bool) -> tuple[Tensor, Tensor]:
    """(rounding unit, level unit) for :func:`quantize_uniform` and :class:`UniformQuantizer`."""
    if not isinstance(keep_gain, bool):
        raise ValueError(f"keep_gain={keep_gain!r}: expected True or False")
    scale = _range_rule(rule)(w, bits, per_channel, axis)
    return scale, gain_scale(w, scale, bits, per_channel, axis) if keep_gain else scale


def quantize_uniform(
    w: Tensor, bits: int, per_channel: bool = False, axis: int = 0, *, rule: str = "mse", keep_gain: bool = True
) -> Tensor:
    """Symmetric uniform fake quantization of a weight tensor.

    Each value becomes ``c * q`` with the integer code
    ``q = clamp(round(w / scale), -(2^(b-1) - 1), 2^(b-1) - 1)`` (``2^b - 1`` levels,
    0 included), ``scale`` from ``rule``: ``"mse"`` (default, :func:`mse_scale`: the
    scale of least squared error) or ``"max"`` (:func:`max_scale`), for the whole tensor
    or for each slice along ``axis`` (``per_channel=True``; ``axis=0`` is the output channel
    of Conv and Linear weights), and the level unit ``c = gain_scale(w, scale)`` with
    ``keep_gain`` (default), ``c = scale`` without (see the module docstring).

    ``bits == 1`` is sign (binary) quantization to ``{-c, +c}``: the codes are the signs
    (exact zeros go to ``+1``, so that only two values occur; a masked layer masks them
    again); ``c = ||w||^2 / sum|w|`` with ``keep_gain``, ``mean|w|`` over the non-zero
    entries without. An all-zero tensor (or channel) stays zero.

    Returns:
        The dequantized tensor, same shape, dtype and device as ``w``.

    Raises:
        ValueError: ``bits`` is not an integer >= 1, ``axis`` is out of range, ``rule`` is
            unknown or ``w`` is not a float tensor.
    """
    bits = _check_bits(bits)
    _check_float(w)
    if w.numel() == 0:
        return w.clone()
    scale, unit = _units(w, bits, per_channel, axis, rule, keep_gain)
    with torch.no_grad():
        return fake_quantize(w.detach(), scale, bits, unit)


def quantize_uniform_channel(w: Tensor, bits: int) -> Tensor:
    """Per-output-channel (``axis=0``) :func:`quantize_uniform`."""
    return quantize_uniform(w, bits, per_channel=True, axis=0)


def quantization_levels(
    w: Tensor, bits: int, per_channel: bool = False, *, rule: str = "mse", keep_gain: bool = True
) -> Tensor:
    """The values :func:`quantize_uniform` can produce for ``w`` at ``bits`` bits.

    Useful to draw the grid over a weight histogram; the same scale as
    :func:`quantize_uniform` (and as ``quantize_model(model, bits)``).

    Returns:
        Per tensor: a 1-D ascending tensor of ``2^b - 1`` levels (``[-s, +s]`` at one
        bit). Per channel: shape ``(C, L)``, one row of ``L`` ascending levels per channel
        along dim 0. Levels of a zero scale are all 0 (repeated, so the shape stays fixed).
    """
    bits = _check_bits(bits)
    _check_float(w)
    codes = symmetric_codes(bits, w.dtype, w.device)
    _, unit = _units(w, bits, per_channel, 0, rule, keep_gain)
    if per_channel and w.dim() > 0:
        return unit.reshape(-1, 1) * codes.unsqueeze(0)  # (C, L)
    return unit * codes


def relative_error(w_q: Tensor, w: Tensor) -> float:
    """Relative L2 error ``||w_q - w|| / ||w||`` (0.0 when ``w`` is all zero and so is ``w_q``)."""
    ref = torch.linalg.vector_norm(w.detach().double())
    diff = torch.linalg.vector_norm((w_q.detach() - w.detach()).double())
    if ref == 0:
        return 0.0 if diff == 0 else float("inf")
    return float(diff / ref)


# ---------------------------------------------------------------------------------------
# the record


@dataclass(frozen=True, eq=False)
class QuantRecord:
    """How one layer's weight is quantized.

    Attributes:
        scheme: the :data:`QUANTIZERS` name of the quantizer (what rebuilds it).
        bits: bits stored per weight.
        per_channel: one scale per output channel (``True``) or one for the tensor.
        axis: the channel dimension of the weight when ``per_channel``.
        scale: the grid unit, float32 on the CPU: 0-D per tensor, ``(C,)`` per channel.
        codes: the integer codes, ascending (float32, 1-D); the levels are ``scale * codes``.
        options: the quantizer's other constructor keywords (numbers, strings, booleans).
    """

    scheme: str
    bits: int
    per_channel: bool
    axis: int
    scale: Tensor
    codes: Tensor
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def num_levels(self) -> int:
        """Number of levels of the grid (``2^b - 1`` for the symmetric grid, 2 at one bit)."""
        return int(self.codes.numel())

    def levels(self) -> Tensor:
        """The grid: ``(L,)`` per tensor, ``(C, L)`` per channel (one ascending row each)."""
        if self.scale.dim() == 0:
            return self.scale * self.codes
        return self.scale.reshape(-1, 1) * self.codes.unsqueeze(0)

    def as_dict(self) -> dict[str, Any]:
        """Builtins and tensors only (loads with ``torch.load(weights_only=True)``)."""
        return {
            "scheme": self.scheme, "bits": self.bits, "per_channel": self.per_channel, "axis": self.axis,
            "scale": self.scale.clone(), "codes": self.codes.clone(), "options": dict(self.options),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "QuantRecord":
        """The inverse of :meth:`as_dict`.

        Raises:
            ValueError: a key is missing or has the wrong type.
        """
        need = {"scheme": str, "bits": int, "per_channel": bool, "axis": int, "scale": Tensor, "codes": Tensor,
                "options": dict}
        for key, kind in need.items():
            if not isinstance(d.get(key), kind):
                raise ValueError(f"quantization record {dict(d)!r}: {key!r} should be a {kind.__name__}")
        return cls(d["scheme"], d["bits"], d["per_channel"], d["axis"], d["scale"], d["codes"], dict(d["options"]))


# ---------------------------------------------------------------------------------------
# quantizer modules


class WeightQuantizer(nn.Module):
    """Base class of the quantizers in :data:`QUANTIZERS` (see the module docstring).

    Subclasses implement ``forward(w) -> w_q`` (fake-quantized, straight-through gradient)
    and ``scale(w)``; override :meth:`codes` for a grid other than :func:`symmetric_codes`
    and :meth:`options` when the constructor takes keyword options.

    Attributes:
        bits: bits per weight (>= 1).
        per_channel: one scale per slice along ``axis``.
        axis: the channel dimension of the weight.
    """

    def __init__(self, bits: int, *, per_channel: bool = False, axis: int = 0) -> None:
        super().__init__()
        self.bits = _check_bits(bits)
        if not isinstance(per_channel, bool):
            raise ValueError(f"per_channel={per_channel!r}: expected True or False")
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise ValueError(f"axis={axis!r}: expected an integer dimension")
        self.per_channel = per_channel
        self.axis = axis

    def forward(self, w: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def scale(self, w: Tensor | None = None) -> Tensor:  # pragma: no cover - abstract
        """The grid unit for the float weight ``w``: 0-D, or per channel (broadcastable)."""
        raise NotImplementedError

    def codes(self) -> Tensor:
        """The integer codes of the grid, ascending (default :func:`symmetric_codes`)."""
        return symmetric_codes(self.bits)

    def options(self) -> dict[str, Any]:
        """The constructor's keyword options beyond ``per_channel`` and ``axis`` (builtins)."""
        return {}

    def record(self, w: Tensor | None = None) -> QuantRecord:
        """This quantizer's :class:`QuantRecord` for the float weight ``w``."""
        with torch.no_grad():
            scale = self.scale(w).detach().float().cpu()
        scale = scale.reshape(-1) if self.per_channel and scale.dim() > 0 else scale.reshape(())
        return QuantRecord(_scheme_of(self), self.bits, self.per_channel, self.axis, scale,
                           self.codes().detach().float().cpu(), dict(self.options()))

    def levels(self, w: Tensor | None = None) -> Tensor:
        """The grid: ``(L,)`` per tensor, ``(C, L)`` per channel."""
        return self.record(w).levels()

    def extra_repr(self) -> str:
        opts = "".join(f", {k}={v!r}" for k, v in self.options().items())
        return f"bits={self.bits}, per_channel={self.per_channel}, axis={self.axis}{opts}"


#: Name -> quantizer class (or factory) ``cls(weight, bits, *, per_channel=False, axis=0, **options)``.
QUANTIZERS: Registry[Callable[..., WeightQuantizer]] = Registry("quantizer")


def _scheme_of(q: WeightQuantizer) -> str:
    """The :data:`QUANTIZERS` name of ``q``'s class (the first name registered for it)."""
    for name in QUANTIZERS:
        if QUANTIZERS.get(name) is type(q):
            return name
    raise ValueError(
        f"{type(q).__name__} is not registered in QUANTIZERS ({', '.join(QUANTIZERS)}); register the class "
        "with @QUANTIZERS.register(name) so that records and checkpoints can name it"
    )


@QUANTIZERS.register("uniform")
class UniformQuantizer(WeightQuantizer):
    """Symmetric uniform quantizer (:func:`fake_quantize` on :func:`symmetric_codes`).

    Args:
        weight: the weight the scale is fitted to (for a masked layer, the masked weight).
        bits: bit width >= 1 (one bit: sign times ``mean|w|``).
        per_channel: one scale per slice along ``axis``.
        axis: channel dimension (0 for Conv/Linear weights, 1 for transposed convs).
        rule: how the rounding unit is set from ``weight``: ``"mse"`` (:func:`mse_scale`)
            or ``"max"`` (:func:`max_scale`).
        keep_gain: space the levels by :func:`gain_scale` (the layer keeps its gain; the
            default) instead of by the rounding unit (least squares).
        learn_scale: make the rounding unit a parameter (trained with the weights,
            learned step size); otherwise it is a buffer fixed at construction.

    Stored: ``step``, the rounding unit (shape as returned by the rule; its absolute value
    is used, so a learned step cannot flip the grid), and the buffer ``gain``, the fixed
    ratio of the level unit to the rounding unit (1 without ``keep_gain``). The levels are
    ``|step| * gain * codes``.
    """

    def __init__(self, weight: Tensor, bits: int, *, per_channel: bool = False, axis: int = 0,
                 rule: str = "mse", keep_gain: bool = True, learn_scale: bool = False) -> None:
        super().__init__(bits, per_channel=per_channel, axis=axis)
        if not isinstance(learn_scale, bool):
            raise ValueError(f"learn_scale={learn_scale!r}: expected True or False")
        step, unit = _units(weight.detach(), self.bits, per_channel, axis, rule, keep_gain)
        self.rule, self.keep_gain, self.learn_scale = rule, keep_gain, learn_scale
        self.register_buffer("gain", torch.where(step > 0, unit / torch.where(step > 0, step, 1.0), 1.0))
        if learn_scale:
            self.step = nn.Parameter(step.clone())
        else:
            self.register_buffer("step", step.clone())

    def forward(self, w: Tensor) -> Tensor:
        step = self.step.abs()
        return fake_quantize(w, step, self.bits, step * self.gain)

    def scale(self, w: Tensor | None = None) -> Tensor:
        return self.step.abs() * self.gain

    def options(self) -> dict[str, Any]:
        return {"rule": self.rule, "keep_gain": self.keep_gain, "learn_scale": self.learn_scale}


@QUANTIZERS.register("uniform-channel")
def uniform_channel(weight: Tensor, bits: int, *, per_channel: bool = True, axis: int = 0, **options) -> UniformQuantizer:
    """:class:`UniformQuantizer` with one scale per output channel (the default here)."""
    return UniformQuantizer(weight, bits, per_channel=per_channel, axis=axis, **options)


# ---------------------------------------------------------------------------------------
# attaching quantizers to layers


def _prune_hooks(module: nn.Module) -> list[tuple[int, Any]]:
    return [(k, h) for k, h in module._forward_pre_hooks.items()
            if isinstance(h, prune.BasePruningMethod) and h._tensor_name == "weight"]


def _is_masked(module: nn.Module) -> bool:
    """The layer's weight carries a :mod:`torch.nn.utils.prune` mask."""
    return bool(_prune_hooks(module)) and "weight_orig" in module._parameters and "weight_mask" in module._buffers


def quantizer_of(module: nn.Module) -> WeightQuantizer | None:
    """The quantizer attached to ``module``, or None."""
    q = module._modules.get(QUANTIZER_NAME)
    return q if isinstance(q, WeightQuantizer) else None


def float_weight(module: nn.Module) -> nn.Parameter:
    """The float weight parameter the optimizer trains: ``weight_fp`` (quantized layer),
    ``weight_orig`` (masked layer) or ``weight``.

    Raises:
        ValueError: ``module`` has no weight parameter.
    """
    for name in (FP_NAME, "weight_orig", "weight"):
        p = module._parameters.get(name)
        if isinstance(p, nn.Parameter):
            return p
    raise ValueError(f"{type(module).__name__} has no weight parameter (weight, weight_orig or {FP_NAME})")


def _masked_float(module: nn.Module) -> Tensor:
    """The float weight with its pruning mask applied (what a quantizer is fitted to)."""
    if _is_masked(module):
        return module.weight_orig * module.weight_mask
    return float_weight(module)


def _quantized(module: nn.Module) -> Tensor:
    """Quantizer output for ``module``'s current float weight, masked again if masked."""
    q = quantizer_of(module)
    if _is_masked(module):
        mask = module.weight_mask
        return q(module.weight_orig * mask) * mask
    if FP_NAME not in module._parameters:
        # The layer was masked when quantized and its mask has been removed since
        # (torch.nn.utils.prune.remove bakes it into a plain ``weight``): adopt that weight.
        module.register_parameter(FP_NAME, module._parameters.pop("weight"))
    return q(module._parameters[FP_NAME])


class _QuantizeWeight:
    """Forward pre-hook: ``module.weight = quantizer(float weight)`` (masked if masked).

    A class, not a closure, so that quantized models pickle.
    """

    def __call__(self, module: nn.Module, inputs: Any) -> None:
        hooks = list(module._forward_pre_hooks.values())
        mine = next(i for i, h in enumerate(hooks) if h is self)
        if any(isinstance(h, prune.BasePruningMethod) and h._tensor_name == "weight" for h in hooks[mine + 1:]):
            raise RuntimeError(
                f"{type(module).__name__} was pruned after it was quantized: the pruning hook now runs after "
                "the quantizer and would overwrite the quantized weight. Prune first, then quantize "
                "(remove_quantizers, prune, quantize again)"
            )
        module.weight = _quantized(module)


class _DetachQuantized:
    """Forward hook: replace ``module.weight`` by a detached copy after the forward pass.

    The pass has used the attached tensor (the autograd graph keeps it); the attribute left
    behind is only read by ``copy.deepcopy`` and ``pickle``, which refuse non-leaf tensors.
    """

    def __call__(self, module: nn.Module, inputs: Any, output: Any) -> None:
        w = module.__dict__.get("weight")
        if isinstance(w, Tensor) and w.grad_fn is not None:
            module.weight = w.detach()


def attach_quantizer(module: nn.Module, quantizer: WeightQuantizer) -> nn.Module:
    """Quantize ``module.weight`` with ``quantizer`` from now on; returns ``module``.

    See the module docstring for the layout (``weight_fp``, ``weight_quantizer``, hooks)
    and for masked layers. ``module.weight`` holds the quantized weight at once.

    Raises:
        ValueError: ``module`` already has a quantizer, has no weight parameter, or
            ``quantizer`` is not a :class:`WeightQuantizer`.
    """
    if not isinstance(quantizer, WeightQuantizer):
        raise ValueError(f"quantizer: expected a WeightQuantizer, got {type(quantizer).__name__}")
    if quantizer_of(module) is not None:
        raise ValueError(f"{type(module).__name__} already has a quantizer ({quantizer_of(module)!r}); "
                         "remove_quantizers first")
    w = float_weight(module)
    if not _is_masked(module):
        del module._parameters["weight"]
        module.register_parameter(FP_NAME, w)
    module.add_module(QUANTIZER_NAME, quantizer.to(device=w.device))
    module.register_forward_pre_hook(_QuantizeWeight())
    module.register_forward_hook(_DetachQuantized())
    with torch.no_grad():
        module.weight = _quantized(module)
    return module


def _quantized_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in model.named_modules() if quantizer_of(m) is not None]


def quant_records(model: nn.Module) -> dict[str, QuantRecord]:
    """``{module name: QuantRecord}`` for every quantized layer, in module order."""
    out = {}
    for name, m in _quantized_modules(model):
        with torch.no_grad():
            out[name] = quantizer_of(m).record(_masked_float(m))
    return out


@torch.no_grad()
def effective_weight(module: nn.Module) -> Tensor:
    """The weight ``module`` uses in its next forward pass, detached: quantized and masked
    as attached (computed now, so correct after optimizer steps and state-dict loads)."""
    if quantizer_of(module) is not None:
        return _quantized(module).detach()
    if _is_masked(module):
        return (module.weight_orig * module.weight_mask).detach()
    return float_weight(module).detach()


@torch.no_grad()
def refresh_weights(model: nn.Module) -> nn.Module:
    """Recompute ``module.weight`` of every masked or quantized layer from its current
    float weight (e.g. after ``load_state_dict``); a forward pass does the same."""
    for m in model.modules():
        if quantizer_of(m) is not None or _is_masked(m):
            m.weight = effective_weight(m)
    return model


def remove_quantizers(model: nn.Module, bake: bool = True) -> dict[str, QuantRecord]:
    """Detach every quantizer of ``model`` (in place); returns the records they had.

    With ``bake`` (default) each layer keeps its quantized values as its float weight
    (like ``torch.nn.utils.prune.remove``); otherwise it gets its float weight back. A
    masked layer stays masked (its ``weight_orig`` takes the values).
    """
    records = quant_records(model)
    for _, m in _quantized_modules(model):
        with torch.no_grad():
            value = _quantized(m).detach() if bake else None
        for hooks, kind in ((m._forward_pre_hooks, _QuantizeWeight), (m._forward_hooks, _DetachQuantized)):
            for key in [k for k, h in hooks.items() if isinstance(h, kind)]:
                del hooks[key]
        del m._modules[QUANTIZER_NAME]
        if _is_masked(m):
            if value is not None:
                m.weight_orig.data.copy_(value)
            with torch.no_grad():
                m.weight = m.weight_orig * m.weight_mask
        else:
            p = m._parameters.pop(FP_NAME)
            m.__dict__.pop("weight", None)
            if value is not None:
                p.data.copy_(value)
            m.register_parameter("weight", p)
    return records


def _out_axis(module: nn.Module) -> int:
    # Transposed conv weights are (in, out/groups, ...): the output channel is dim 1.
    return 1 if isinstance(module, nn.modules.conv._ConvTransposeNd) else 0


def apply_records(model: nn.Module, records: Mapping[str, QuantRecord | Mapping[str, Any]]) -> nn.Module:
    """Attach the quantizers ``records`` describe to the named layers of ``model``; returns it.

    Each quantizer is built by its scheme from the layer's current (masked) float weight,
    so fixed scales are fitted anew; load a state dict afterwards to restore saved or
    learned scales exactly (as :func:`snnkit.train.load_checkpoint` does). Records may be
    :class:`QuantRecord` objects or their :meth:`~QuantRecord.as_dict` form.

    Raises:
        ValueError: a name is not a module with a weight, or a scheme is unknown.
    """
    modules = dict(model.named_modules())
    for name, rec in records.items():
        rec = rec if isinstance(rec, QuantRecord) else QuantRecord.from_dict(rec)
        m = modules.get(name)
        if m is None or not any(k in m._parameters for k in ("weight", "weight_orig", FP_NAME)):
            raise ValueError(f"quantization record for {name!r}: no layer with a weight of that name in the model")
        factory = QUANTIZERS.get(rec.scheme)
        q = factory(_masked_float(m).detach(), rec.bits, per_channel=rec.per_channel, axis=rec.axis,
                    **dict(rec.options))
        attach_quantizer(m, q)
    return model


# ---------------------------------------------------------------------------------------
# whole models

LayerFilter = Callable[[str, nn.Module], bool]
SkipSpec = Union[Iterable[str], LayerFilter, None]


def _choose_layers(model: nn.Module, layers: LayerFilter | None, skip: SkipSpec) -> list[tuple[str, nn.Module]]:
    candidates = [
        (name, m) for name, m in model.named_modules()
        if isinstance(m, _QUANTIZABLE) and any(k in m._parameters for k in ("weight", "weight_orig", FP_NAME))
    ]
    if layers is not None:
        candidates = [(n, m) for n, m in candidates if layers(n, m)]
    if skip is None:
        return candidates
    if callable(skip):
        return [(n, m) for n, m in candidates if not skip(n, m)]
    tokens = [skip] if isinstance(skip, str) else list(skip)
    names = [n for n, _ in candidates]
    drop: set[str] = set()
    for tok in tokens:
        if tok == "first":
            drop.update(names[:1])
        elif tok == "last":
            drop.update(names[-1:])
        elif tok in names:
            drop.add(tok)
        else:
            raise ValueError(
                f"skip entry {tok!r} is neither 'first', 'last' nor the name of a "
                f"quantizable layer; candidates are {names}"
            )
    return [(n, m) for n, m in candidates if n not in drop]


def quantize_model(
    model: nn.Module,
    bits: int,
    per_channel: bool = False,
    layers: LayerFilter | None = None,
    skip: SkipSpec = None,
    quantizer: str | Callable[..., WeightQuantizer] | None = None,
    options: Mapping[str, Any] | None = None,
) -> tuple[nn.Module, dict[str, float]]:
    """Quantize the Conv/Linear weights of a deep copy of ``model``.

    Each chosen layer gets a quantizer fitted to its (masked) weight and attached with
    :func:`attach_quantizer`; read them back with :func:`quant_records`. Biases,
    batch-norm parameters, neuron parameters (thresholds, leaks) and buffers stay in full
    precision. The input model is not modified.

    Layer selection, in order:

    1. candidates are the Conv/Linear modules in ``model.named_modules()`` order;
    2. ``layers(name, module) -> bool``, if given, keeps only candidates it accepts;
    3. ``skip`` removes layers: either a predicate ``(name, module) -> bool``
       (true = keep full precision) or an iterable of module names, where the
       tokens ``"first"`` and ``"last"`` mean the first/last remaining candidate
       (several methods keep those two layers in full precision).

    Args:
        model: network to quantize (not modified). Masked layers stay masked.
        bits: bit width, an integer >= 1.
        per_channel: one scale per output channel (the channel axis is 1 for transposed
            convs, 0 otherwise).
        layers: optional predicate choosing the layers to quantize.
        skip: layers to keep in full precision (names, ``"first"``/``"last"``, or predicate).
        quantizer: a :data:`QUANTIZERS` name or a factory with the same signature
            (default ``"uniform"``: symmetric, MSE scale).
        options: extra keywords for the quantizer, e.g. ``{"learn_scale": True}``.

    Returns:
        ``(model_q, errors)``: the quantized copy and ``{module name: relative L2 error
        ||w_q - w|| / ||w||}`` of every quantized layer's effective weight, in module order.

    Raises:
        ValueError: bad ``bits``, unknown quantizer name or option, a layer that is
            quantized already, or a ``skip`` name that matches no quantizable layer.
    """
    bits = _check_bits(bits)
    if quantizer is None:
        quantizer = "uniform"
    factory = QUANTIZERS.get(quantizer) if isinstance(quantizer, str) else quantizer
    if not callable(factory):
        raise ValueError(f"quantizer={quantizer!r}: expected one of {', '.join(QUANTIZERS)} or a factory")
    model_q = copy.deepcopy(model)
    errors: dict[str, float] = {}
    for name, m in _choose_layers(model_q, layers, skip):
        w = _masked_float(m).detach()
        kwargs = {"axis": _out_axis(m), **({"per_channel": True} if per_channel else {}), **dict(options or {})}
        try:
            q = factory(w, bits, **kwargs)
        except TypeError as e:  # an option the quantizer does not take
            raise ValueError(f"quantizer {quantizer!r} on layer {name!r}: {e}") from None
        attach_quantizer(m, q)
        errors[name] = relative_error(effective_weight(m), w)
    return model_q, errors


# ---------------------------------------------------------------------------------------
# QP-SNN (Wei et al. 2025): the vanilla uniform quantizer, ReScaW, and bit-width utilisation
#
# Both quantize onto the grid ``W_hat = (2/s) round((s/2)(x + 1)) - 1`` on [-1, 1] with
# ``s = 2^b - 1``: ``2^b`` levels ``2k/s - 1`` (k = 0..s), i.e. the odd codes ``-s, -s+2,
# .., s`` times ``1/s``. There is no zero level. The vanilla quantizer feeds it the weight
# itself (clamped to [-1, 1]); ReScaW feeds it ``W / gamma`` and scales back by ``gamma``,
# one ``gamma`` per output channel, so that the grid spans the weights actually present.
# The gradient is straight-through over clamp and round alike: ``dW_hat / dW = 1``
# (ReScaW: ``gamma * d(W / gamma) / dW = 1``), so weights beyond the clipping range keep
# learning (with ``gamma = mean|W|`` about 40 % of the weights lie beyond it at any time).

#: How ReScaW sets ``gamma`` per output channel: ``"mean"`` |W| (the paper's default),
#: ``"max"`` |W| (no clipping), or a ``"percentile"`` of |W|.
RESCALE_RULES = ("mean", "max", "percentile")


def qpsnn_codes(bits: int, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> Tensor:
    """The ``2^b`` odd codes ``-s, -s+2, .., s`` (``s = 2^b - 1``) of QP-SNN's grid, ascending.

    Times the scale ``1/s`` they give the levels ``2k/s - 1``, k = 0..s: ``{-1, 1}`` at one
    bit, ``{-1, -1/3, 1/3, 1}`` at two.
    """
    s = 2 ** _check_bits(bits) - 1
    return torch.arange(-s, s + 1, 2, dtype=dtype, device=device)


def vanilla_quantize(w: Tensor, bits: int) -> Tensor:
    """QP-SNN's uniform quantizer: ``(2/s) round((s/2)(clamp(w, -1, 1) + 1)) - 1``, ``s = 2^b - 1``.

    Every value lands on one of the ``2^b`` levels ``2k/s - 1`` of [-1, 1] (no gradient;
    :class:`VanillaQuantizer` adds the straight-through one). Round half to even.
    """
    _check_float(w)
    s = 2 ** _check_bits(bits) - 1
    return (2.0 / s) * torch.round((s / 2.0) * (w.clamp(-1.0, 1.0) + 1.0)) - 1.0


def rescale_gamma(w: Tensor, rule: str = "mean", *, per_channel: bool = True, axis: int = 0,
                  percentile: float = 99.0) -> Tensor:
    """ReScaW's ``gamma``: ``mean|w|``, ``max|w|`` or the ``percentile`` of ``|w|`` per output
    channel (along ``axis``) or for the whole tensor; detached, broadcastable against ``w``.

    A channel of zeros gets ``gamma = 1``, so that nothing is divided by zero (its weights
    then sit on a level nearest 0: the grid has no zero level).
    """
    if rule not in RESCALE_RULES:
        raise ValueError(f"rescale rule {rule!r}: expected one of {', '.join(RESCALE_RULES)}")
    if isinstance(percentile, bool) or not isinstance(percentile, numbers.Real) or not 0 < percentile <= 100:
        raise ValueError(f"percentile={percentile!r}: expected a number in (0, 100]")
    _check_float(w)
    a = w.detach().abs()
    dims = _reduce_dims(a, per_channel, axis)
    if rule == "mean":
        g = a.mean(dim=dims, keepdim=True) if dims else a.clone()
    elif rule == "max":
        g = a.amax(dim=dims, keepdim=True) if dims else a.clone()
    else:
        moved = a.movedim(axis % a.dim(), 0).flatten(1) if per_channel and a.dim() > 0 else a.reshape(1, -1)
        q = torch.quantile(moved.double(), float(percentile) / 100.0, dim=1).to(a.dtype)
        shape = [1] * a.dim()
        if per_channel and a.dim() > 0:
            shape[axis % a.dim()] = -1
        g = q.reshape(shape) if a.dim() > 0 else q.reshape(())
    return torch.where(g > 0, g, torch.ones_like(g))


class _StraightThrough(torch.autograd.Function):
    """Forward: ``value`` exactly; backward: the gradient goes to ``w`` unchanged."""

    @staticmethod
    def forward(ctx, w: Tensor, value: Tensor) -> Tensor:  # noqa: D102
        return value

    @staticmethod
    def backward(ctx, grad: Tensor):  # noqa: D102
        return grad, None


@QUANTIZERS.register("vanilla")
class VanillaQuantizer(WeightQuantizer):
    """QP-SNN's vanilla quantizer (:func:`vanilla_quantize`) with a straight-through gradient.

    A fixed grid on [-1, 1] whatever the weights: trained weights, mostly far smaller than
    1, use few of its levels (:func:`bit_utilization`). One grid for the tensor, so
    ``per_channel`` must be False.
    """

    def __init__(self, weight: Tensor, bits: int, *, per_channel: bool = False, axis: int = 0) -> None:
        if per_channel:
            raise ValueError("per_channel=True: the vanilla quantizer has one fixed grid on [-1, 1]; "
                             "expected per_channel=False (use 'rescaw' for per-channel scales)")
        super().__init__(bits, per_channel=False, axis=axis)

    def forward(self, w: Tensor) -> Tensor:
        return _StraightThrough.apply(w, vanilla_quantize(w.detach(), self.bits))

    def scale(self, w: Tensor | None = None) -> Tensor:
        return torch.tensor(1.0 / (2 ** self.bits - 1))

    def codes(self) -> Tensor:
        return qpsnn_codes(self.bits)


@QUANTIZERS.register("rescaw")
class ReScaWQuantizer(WeightQuantizer):
    """ReScaW (Wei et al. 2025): ``W_hat = gamma * Q(clamp(W / gamma, -1, 1))`` with the
    vanilla grid ``Q`` and ``gamma`` per output channel (:func:`rescale_gamma`).

    ``gamma`` is recomputed from the weight at every forward pass (detached: no gradient
    flows into it) and kept in the buffer ``gamma`` for records and figures. The levels of
    channel c are ``gamma_c (2k/s - 1)``: the scale is ``gamma / s``.

    Args:
        weight: the weight ``gamma`` is first computed from.
        bits: bit width >= 1.
        per_channel: one ``gamma`` per output channel (default) or one for the tensor.
        axis: the output-channel dimension.
        rule: ``"mean"`` (default), ``"max"`` or ``"percentile"`` of ``|W|``.
        percentile: the percentile for ``rule="percentile"``, in (0, 100].
    """

    def __init__(self, weight: Tensor, bits: int, *, per_channel: bool = True, axis: int = 0,
                 rule: str = "mean", percentile: float = 99.0) -> None:
        super().__init__(bits, per_channel=per_channel, axis=axis)
        self.rule, self.percentile = rule, float(percentile)
        self.register_buffer("gamma", rescale_gamma(weight, rule, per_channel=per_channel, axis=axis,
                                                    percentile=percentile).clone())

    def forward(self, w: Tensor) -> Tensor:
        with torch.no_grad():
            g = rescale_gamma(w, self.rule, per_channel=self.per_channel, axis=self.axis, percentile=self.percentile)
            if g.shape == self.gamma.shape:
                self.gamma.copy_(g)
            else:  # the layer was rebuilt with another width
                self.gamma = g.clone()
            value = g * vanilla_quantize(w.detach() / g, self.bits)
        return _StraightThrough.apply(w, value)

    def scale(self, w: Tensor | None = None) -> Tensor:
        g = self.gamma if w is None else rescale_gamma(w, self.rule, per_channel=self.per_channel, axis=self.axis,
                                                       percentile=self.percentile)
        return g / (2 ** self.bits - 1)

    def codes(self) -> Tensor:
        return qpsnn_codes(self.bits)

    def options(self) -> dict[str, Any]:
        return {"rule": self.rule, "percentile": self.percentile}


def level_codes(w_q: Tensor, record: QuantRecord) -> Tensor:
    """The integer code of every entry of a quantized weight: ``round(w_q / scale)``, with
    the record's scale per channel along its axis (same shape as ``w_q``)."""
    scale = record.scale.to(w_q.device, w_q.dtype)
    if record.per_channel and scale.dim() > 0:
        shape = [1] * w_q.dim()
        shape[record.axis % w_q.dim()] = -1
        scale = scale.reshape(shape)
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    return torch.round(w_q / safe)


def bit_utilization(w_q: Tensor, record: QuantRecord) -> float:
    """R: the distinct levels a quantized weight uses over the levels its grid has.

    Levels are counted by their codes (:func:`level_codes`), so with one scale per channel
    a level counts as used when any channel uses it. In (0, 1].
    """
    codes = level_codes(w_q.detach(), record)
    return int(torch.unique(codes).numel()) / record.num_levels


def utilization_estimate(x: Tensor, bits: int) -> float:
    """QP-SNN's estimate of R for inputs ``x`` to the [-1, 1] grid: ``(s a + 1) / (s + 1)``
    with ``s = 2^b - 1`` and ``a = max(|P1(x)|, |P99(x)|)`` (capped at 1): the levels inside
    the central 98 % of the values, over all ``2^b``."""
    s = 2 ** _check_bits(bits) - 1
    flat = x.detach().double().flatten()
    if flat.numel() == 0:
        raise ValueError("x is empty: expected the weights (in grid units) of a layer")
    p = torch.quantile(flat, torch.tensor([0.01, 0.99], dtype=torch.float64))
    a = min(1.0, float(p.abs().max()))
    return (s * a + 1) / (s + 1)


def utilization(model: nn.Module) -> dict[str, float]:
    """``{quantized layer: R}`` (:func:`bit_utilization` of its effective weight)."""
    records = quant_records(model)
    modules = dict(model.named_modules())
    return {name: bit_utilization(effective_weight(modules[name]), rec) for name, rec in records.items()}


def grid_input(quantizer: WeightQuantizer, w: Tensor) -> Tensor:
    """What a vanilla or ReScaW quantizer feeds its [-1, 1] grid, before clamping: ``w``
    (vanilla) or ``w / gamma`` (ReScaW), detached. For weight histograms against the grid."""
    w = w.detach()
    if isinstance(quantizer, VanillaQuantizer):
        return w
    if isinstance(quantizer, ReScaWQuantizer):
        return w / rescale_gamma(w, quantizer.rule, per_channel=quantizer.per_channel, axis=quantizer.axis,
                                 percentile=quantizer.percentile)
    raise ValueError(f"quantizer {quantizer!r}: expected a 'vanilla' or 'rescaw' one")


__all__ += [
    "RESCALE_RULES", "ReScaWQuantizer", "VanillaQuantizer", "bit_utilization", "grid_input", "level_codes",
    "qpsnn_codes", "rescale_gamma", "utilization", "utilization_estimate", "vanilla_quantize",
]


# ---------------------------------------------------------------------------------------
# DuQ: learned-scale symmetric quantizer (Schaefer, Taheri, Horeni and Joshi, 2023)


def duq_init(w: Tensor) -> Tensor:
    """``max(|mu - 3 sigma|, |mu + 3 sigma|)`` of a weight tensor: DuQ's initial ``a`` and ``c``.

    ``mu`` and ``sigma`` are the mean and the (population) standard deviation of all entries,
    computed in float64; returned as a 0-D tensor in ``w``'s dtype.
    """
    _check_float(w)
    wd = w.detach().double()
    mu, sigma = wd.mean(), wd.std(unbiased=False) if wd.numel() > 1 else wd.new_zeros(())
    return torch.maximum((mu - 3 * sigma).abs(), (mu + 3 * sigma).abs()).to(w.dtype)


def duq_quantize(w: Tensor, a: Tensor, c: Tensor, bits: int) -> Tensor:
    """``c * round(hardtanh(w / a) * (n - 1)) / (n - 1)`` with ``n = 2^(bits - 1)``.

    The input range ``a`` and the output range ``c`` are used by magnitude (``|a|``,
    ``|c|``), so the grid cannot flip sign. The levels are ``c k / (n - 1)`` for the
    integers ``|k| <= n - 1``: ``2^bits - 1`` of them, ``{-c, 0, +c}`` at 2 bits. Rounding
    has a straight-through gradient (:func:`round_ste`); ``hardtanh`` passes the gradient
    inside ``[-a, a]`` and none outside, and ``a`` and ``c`` get theirs through the formula.

    Args:
        w: weight, any shape (float).
        a, c: 0-D tensors (or broadcastable against ``w``), both non-zero.
        bits: bit width >= 2 (at one bit ``n - 1 = 0`` and the grid is empty).
    """
    bits = _check_bits(bits)
    if bits < 2:
        raise ValueError(f"bits={bits}: DuQ needs bits >= 2 (n - 1 = 2^(bits-1) - 1 levels per side is 0 at one bit)")
    steps = 2 ** (bits - 1) - 1  # n - 1
    return c.abs() * round_ste(torch.nn.functional.hardtanh(w / a.abs()) * steps) / steps


@QUANTIZERS.register("duq")
class DuQQuantizer(WeightQuantizer):
    """Learned-scale symmetric quantizer of Schaefer et al. (2023), one ``a`` and ``c`` per layer.

    ``w_q = c * round(hardtanh(w / a) * (n - 1)) / (n - 1)``, ``n = 2^(bits - 1)``
    (:func:`duq_quantize`). Both ``a`` (the input range: weights beyond ``+-a`` are clipped)
    and ``c`` (the output range: the largest level) start at ``max(|mu - 3 sigma|,
    |mu + 3 sigma|)`` of the weight the quantizer is fitted to (:func:`duq_init`; for a
    masked layer, the masked weight, zeros included) and are trained with the weights.

    Args:
        weight: the weight ``a`` and ``c`` are initialised from.
        bits: bit width >= 2 (2 bits: ternary ``{-c, 0, +c}``).
        per_channel: must be False (one ``a`` and one ``c`` per layer).
        axis: accepted for the common signature; unused.
        learn_scale: ``a`` and ``c`` are parameters (default) or fixed buffers.

    Raises:
        ValueError: bits below 2, ``per_channel=True``, or an all-zero weight (no range).
    """

    def __init__(self, weight: Tensor, bits: int, *, per_channel: bool = False, axis: int = 0,
                 learn_scale: bool = True) -> None:
        super().__init__(bits, per_channel=per_channel, axis=axis)
        if self.bits < 2:
            raise ValueError(f"bits={self.bits}: DuQ needs bits >= 2 (2 bits is ternary)")
        if per_channel:
            raise ValueError("per_channel=True: DuQ learns one a and one c per layer; expected per_channel=False")
        if not isinstance(learn_scale, bool):
            raise ValueError(f"learn_scale={learn_scale!r}: expected True or False")
        init = duq_init(weight)
        if not bool(init > 0):
            raise ValueError("DuQ cannot be fitted to an all-zero weight: its range mu +- 3 sigma is 0")
        self.learn_scale = learn_scale
        for name in ("a", "c"):
            if learn_scale:
                setattr(self, name, nn.Parameter(init.clone()))
            else:
                self.register_buffer(name, init.clone())

    def forward(self, w: Tensor) -> Tensor:
        return duq_quantize(w, self.a, self.c, self.bits)

    def scale(self, w: Tensor | None = None) -> Tensor:
        """The grid unit ``|c| / (n - 1)``."""
        return self.c.abs() / (2 ** (self.bits - 1) - 1)

    def options(self) -> dict[str, Any]:
        return {"learn_scale": self.learn_scale}


__all__ += ["DuQQuantizer", "duq_init", "duq_quantize"]

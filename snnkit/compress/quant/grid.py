"""The grid maths of uniform quantization: pure functions of tensors, no modules.

A ``b``-bit symmetric grid has the integer codes of :func:`~snnkit.weights.symmetric_codes`
(``-(2^(b-1) - 1) .. 2^(b-1) - 1``; ``{-1, +1}`` at one bit) times a unit. This module sets
that unit from a weight tensor (:func:`max_scale`, :func:`mse_scale`), keeps the layer's
gain (:func:`gain_scale`), rounds with straight-through gradients (:func:`round_ste`,
:func:`fake_quantize`) and quantizes a tensor in one call (:func:`quantize_uniform`). See
:mod:`snnkit.compress.quant` for why the scale is set by least squared error and why the
levels keep the gain.

Quantizing twice changes nothing: :func:`quantize_uniform` of a tensor that already lies on
a symmetric grid of at most ``2^b - 1`` levels (per tensor, or per channel) returns it as it
is, since at zero error it is its own best ``b``-bit quantization (:func:`grid_unit` finds
such a grid).
"""
from __future__ import annotations

import math
from fractions import Fraction
from typing import Callable

import torch
from torch import Tensor

from ...weights import check_bits, symmetric_codes

__all__ = [
    "RANGE_RULES", "fake_quantize", "gain_scale", "grid_unit", "max_scale", "mse_scale", "quantization_levels",
    "quantize_uniform", "quantize_uniform_channel", "relative_error", "round_ste", "symmetric_codes",
]


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
    bits = check_bits(bits)
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


def _row_grid(values: Tensor, dtype: torch.dtype, qmax: int) -> float | None:
    """The unit ``u`` with every value of one row equal to ``u k``, ``k`` an integer in
    ``1 .. qmax``, or None. ``values``: the row's distinct non-zero magnitudes, float64, ascending.

    The ratio of the largest to the smallest magnitude is ``k_max / k_min``; its best
    rational approximation with a denominator up to ``qmax`` gives ``k_max`` up to a common
    factor, tried in turn. Of the units that fit, one that reproduces every value exactly in
    ``dtype`` (``value = u * k`` after rounding) is preferred.
    """
    top, low = float(values[-1]), float(values[0])
    step = Fraction(top / low).limit_denominator(qmax).numerator
    sample = values[:: max(1, len(values) // 16)]  # a cheap rejection first
    for k_max in range(step, min(qmax, 64 * step) + 1, step):
        tol = 1e-6 * k_max  # float32 values and unit: relative round-off ~1e-7 of each code
        k = sample * (k_max / top)
        if float((k - k.round()).abs().max()) > tol:
            continue
        k = values * (k_max / top)  # (n,) the codes if the unit is top / k_max
        codes = k.round()
        if float((k - codes).abs().max()) > tol or float(codes.min()) < 1:
            continue
        # the value of code k_i is values[i] itself: prefer a unit that rounds back to all of them
        held = values.to(dtype)
        for u in (held / codes.to(dtype)).unique().tolist():
            if torch.equal((torch.tensor(u, dtype=dtype) * codes.to(dtype)), held):
                return float(torch.tensor(u, dtype=dtype))
        return top / k_max
    return None


def grid_unit(w: Tensor, bits: int, per_channel: bool = False, axis: int = 0) -> tuple[Tensor, Tensor]:
    """Whether ``w`` already lies on a ``bits``-bit symmetric grid, and that grid's unit.

    A tensor (or channel) lies on the grid of unit ``u`` when every entry is ``u k`` with an
    integer code ``|k| <= 2^(b-1) - 1``: what :func:`quantize_uniform` returns, say. Such a
    tensor is its own least-squares ``b``-bit quantization (error 0), so :func:`mse_scale`
    returns ``u`` for it and quantizing it again changes nothing. Only tensors with at most
    ``2^(b-1) - 1`` distinct non-zero magnitudes are examined (floats that were never
    quantized have about as many as entries); codes may share a factor, and any unit that
    fits will do. One bit has no such grid here (its codes are the signs).

    Returns:
        ``(unit, on_grid)``: float64 and bool, 0-D per tensor, per channel ``w``'s shape
        with size 1 on every dimension but ``axis``; ``unit`` is 0 where ``on_grid`` is False.
    """
    bits = check_bits(bits)
    _check_float(w)
    rows = _as_rows(w, per_channel, axis)  # (C, M) |w| in float64
    unit = torch.zeros(rows.shape[0], dtype=torch.float64)
    found = torch.zeros(rows.shape[0], dtype=torch.bool)
    if bits >= 2 and rows.numel():
        qmax = 2 ** (bits - 1) - 1
        a = rows.sort(dim=1).values
        distinct = (a.diff(dim=1) != 0).sum(1) + (a[:, :1] == 0).logical_not().squeeze(1).long()
        for i in torch.nonzero((distinct <= qmax) & (a[:, -1] > 0)).flatten().tolist():
            values = a[i].unique()
            u = _row_grid(values[values > 0], w.dtype, qmax)
            if u is not None:
                unit[i], found[i] = u, True
    shape = [1] * w.dim()
    if per_channel and w.dim() > 0:
        shape[axis % w.dim()] = -1
    return _scale_shape(unit.reshape(shape), w, per_channel), _scale_shape(found.reshape(shape), w, per_channel)


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
    bits = check_bits(bits)
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
        unit, on_grid = grid_unit(w, bits, per_channel, axis)
        best = torch.where(on_grid.reshape(-1, 1), unit.reshape(-1, 1), best)  # error 0: nothing beats it
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
    the result is ``scale``, and so it is where ``w`` already equals ``scale q`` (the error
    is 0, orthogonal to everything; the formula would only add round-off).

    Returns:
        The unit, shaped like ``scale``, in ``w``'s dtype.
    """
    bits = check_bits(bits)
    _check_float(w)
    dims = _reduce_dims(w, per_channel, axis)
    with torch.no_grad():
        wd = w.detach().double()
        sd = scale.detach().double()
        codes = _to_codes(wd / torch.where(sd > 0, sd, torch.ones_like(sd)), bits)
        num, den = _sum(wd * wd, dims), _sum(wd * codes, dims)
        c = torch.where(den > 0, num / torch.where(den > 0, den, torch.ones_like(den)), sd.reshape(num.shape))
        exact = _sum((wd - sd * codes).abs(), dims) == 0  # w on the grid already
        c = torch.where(exact, sd.reshape(num.shape), c)
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

    Idempotent with the ``"mse"`` rule: a tensor (or channel) already on a ``bits``-bit
    symmetric grid (:func:`grid_unit`) comes back unchanged, since it is its own quantization
    of least error.

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
    bits = check_bits(bits)
    _check_float(w)
    if w.numel() == 0:
        return w.clone()
    scale, unit = _units(w, bits, per_channel, axis, rule, keep_gain)
    with torch.no_grad():
        w_q = fake_quantize(w.detach(), scale, bits, unit)
        if rule == "mse":
            _, on_grid = grid_unit(w, bits, per_channel, axis)
            w_q = torch.where(on_grid, w.detach(), w_q)
        return w_q


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
    bits = check_bits(bits)
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

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
straight-through gradient (:func:`round_ste`). :func:`attach_quantizer` (in
:mod:`snnkit.weights`, where every reader of a weight looks) attaches one to a Conv/Linear
layer the way :mod:`torch.nn.utils.prune` attaches a mask:

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
:func:`quant_records` returns ``{module name: record}`` for a model (both in
:mod:`snnkit.weights`).
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

The package, along its seams (every name is importable from ``snnkit.compress.quant``):

* :mod:`~snnkit.compress.quant.grid`: the pure grid maths (codes, range rules, gain,
  :func:`quantize_uniform`);
* :mod:`~snnkit.compress.quant.uniform`: the uniform quantizer module;
* :mod:`~snnkit.compress.quant.model`: :func:`quantize_model`, a quantizer on every chosen layer;
* :mod:`~snnkit.compress.quant.qpsnn`: QP-SNN's vanilla quantizer, ReScaW, utilisation;
* :mod:`~snnkit.compress.quant.duq`: Schaefer et al.'s learned-scale DuQ;
* :mod:`snnkit.weights`: the record, the base class, the registry and attaching (storage).
"""

from __future__ import annotations

from ...weights import (
    FP_NAME, QUANTIZER_NAME, QUANTIZERS, QuantRecord, WeightQuantizer, apply_records, attach_quantizer,
    effective_weight, float_weight, quant_records, quantizer_of, refresh_weights, remove_quantizers,
    symmetric_codes,
)
from .duq import DuQQuantizer, duq_init, duq_quantize
from .grid import (
    RANGE_RULES, fake_quantize, gain_scale, grid_unit, max_scale, mse_scale, quantization_levels, quantize_uniform,
    quantize_uniform_channel, relative_error, round_ste,
)
from .model import quantize_model
from .qpsnn import (
    RESCALE_RULES, ReScaWQuantizer, VanillaQuantizer, bit_utilization, grid_input, level_codes, qpsnn_codes,
    rescale_gamma, utilization, utilization_estimate, vanilla_quantize,
)
from .uniform import UniformQuantizer, uniform_channel

__all__ = [
    "FP_NAME", "QUANTIZER_NAME", "QUANTIZERS", "RANGE_RULES", "RESCALE_RULES",
    "DuQQuantizer", "QuantRecord", "ReScaWQuantizer", "UniformQuantizer", "VanillaQuantizer", "WeightQuantizer",
    "apply_records", "attach_quantizer", "bit_utilization", "duq_init", "duq_quantize", "effective_weight",
    "fake_quantize", "float_weight", "gain_scale", "grid_input", "grid_unit", "level_codes", "max_scale", "mse_scale",
    "qpsnn_codes", "quant_records", "quantization_levels", "quantize_model", "quantize_uniform",
    "quantize_uniform_channel", "quantizer_of", "refresh_weights", "relative_error", "remove_quantizers",
    "rescale_gamma", "round_ste", "symmetric_codes", "uniform_channel", "utilization", "utilization_estimate",
    "vanilla_quantize",
]

"""Compression: one entry point, and the pieces every method is made of.

::

    from snnkit.compress import compress, METHODS
    run = compress(snn, data, "quantize-prune", cfg, bits=2, keep=0.5)   # never modifies snn
    run.model, run.history, run.info, run.T
    METHODS.names()   # every method, the five papers' and the baselines

:func:`compress` (:mod:`~snnkit.compress.core`) runs a method of :data:`METHODS` on a copy
and returns a :class:`Compressed`, the same fields for every method. The methods, by module:

* :mod:`~snnkit.compress.core`: ``"dense"`` (the reference; at a lower T, direct temporal pruning).
* :mod:`~snnkit.compress.structured`: ``"channels"`` (any importance x any planner, cut for
  real), ``"pca"`` (paper 1's widths), ``"random"`` (the structured baseline).
* :mod:`~snnkit.compress.schedules`: ``"duq"`` (paper 3: pruning and learned-scale
  quantization on a compression schedule), ``"prune"`` (one-shot unstructured pruning),
  ``"quantize"`` (post-training or quantization-aware); and the value schedules (:data:`SCHEDULES`).
* :mod:`~snnkit.compress.quant_prune`: ``"quantize-prune"`` (paper 4, QP-SNN, either order).
* :mod:`~snnkit.compress.sparse`: ``"attention"`` (paper 2: attention-guided sparse learning of
  an ANN student) and ``"convert"`` (the spiking stage, :mod:`snnkit.recipes`).
* :mod:`~snnkit.compress.temporal`: ``"gradual"`` (paper 1: T lowered step by step) and
  ``"kl"`` (paper 5: T chosen by the KL rule).
* :mod:`~snnkit.compress.iterative`: ``"iterative"`` (paper 5: LAMP or magnitude rounds with
  rewinding, optionally at a KL-chosen T).

The pieces:

* :mod:`~snnkit.compress.importance`: what matters (:data:`IMPORTANCES`: pca-variance, svs,
  sca, attention, l1, magnitude, lamp, random), per channel or per weight, one signature.
* :mod:`~snnkit.compress.planners`: how many to keep (:data:`PLANNERS`: layer, global,
  variance) and the :class:`Selection` of kept channels.
* :mod:`~snnkit.compress.surgery`: :func:`shrink` cuts channels out for real,
  :func:`mask_channels` zeroes them.
* :mod:`~snnkit.compress.masks`: unstructured masks (global or per layer, by any score),
  rewinding. How masks and quantizers are stored is :mod:`snnkit.weights`.
* :mod:`~snnkit.compress.quant`: the quantizers (:data:`QUANTIZERS`), grid maths, QP-SNN's and
  DuQ's quantizers.
* :mod:`~snnkit.compress.activity`, :mod:`~snnkit.compress.pca`, :mod:`~snnkit.compress.lamp`,
  :mod:`~snnkit.compress.attention`: recorded activity, PCA maths, LAMP scores, attention maps.
* :mod:`~snnkit.compress.comparison`: every paper's method from one base SNN with one budget
  (:func:`compare`), measured the same way (:func:`method_row`).
"""
# the method modules register their METHODS on import, in this order
from . import structured, schedules, quant_prune, sparse, temporal, iterative  # noqa: F401, I001
from .activity import layer_activity, prunable_layers
from .attention import AttentionTransfer, attention_loss, attention_map, attention_maps
from .core import METHODS, Compressed, Step, compress
from .importance import IMPORTANCES, Inputs, Scores, score, score_stability
from .iterative import RULES
from .lamp import lamp_scores
from .masks import (
    apply_masks, global_sparsity, layer_density, layer_sparsity, masks_of, prunable_weights, prune_global,
    prune_layerwise, remove_masks, rewind,
)
from .planners import PLANNERS, Selection, plan, prune, select, variance_widths, widths_from_scores
from .quant import QUANTIZERS, QuantRecord, quant_records, quantize_model
from .quant_prune import ORDERS
from .schedules import COMPRESSION_SCHEDULES, SCHEDULES
from .sparse import VARIANTS, SparseConfig, attention_variants, sparse_fit
from .surgery import channel_plan, mask_channels, shrink

__all__ = [
    "METHODS", "Compressed", "Step", "compress",
    "IMPORTANCES", "Inputs", "Scores", "score", "score_stability",
    "PLANNERS", "Selection", "plan", "prune", "select", "variance_widths", "widths_from_scores",
    "channel_plan", "mask_channels", "shrink",
    "apply_masks", "global_sparsity", "layer_density", "layer_sparsity", "masks_of", "prunable_weights",
    "prune_global", "prune_layerwise", "remove_masks", "rewind",
    "QUANTIZERS", "QuantRecord", "quant_records", "quantize_model",
    "COMPRESSION_SCHEDULES", "SCHEDULES", "ORDERS", "RULES", "VARIANTS",
    "layer_activity", "prunable_layers", "lamp_scores",
    "AttentionTransfer", "attention_loss", "attention_map", "attention_maps",
    "SparseConfig", "attention_variants", "sparse_fit",
]

"""Compression: what to remove (criteria), how to remove it (surgery, masks), how to store
the rest (quantizers), and in what order (schedules, temporal pruning).

* :mod:`~snnkit.compress.activity`: record membranes or spikes of every LIF layer.
* :mod:`~snnkit.compress.attention`: attention maps and the attention-transfer loss.
* :mod:`~snnkit.compress.sparse`: sparse learning at a fixed global density (irregular or
  channel masks, per-layer redistribution by momentum), attention-guided compression, the
  magnitude baseline, and the SNN stage with the mask frozen.
* :mod:`~snnkit.compress.lamp`: layer-adaptive magnitude (LAMP) scores of weights.
* :mod:`~snnkit.compress.iterative`: iterative pruning with weight rewinding, by LAMP or
  global / uniform magnitude (:data:`PRUNING_RULES`).
* :mod:`~snnkit.compress.criteria`: :class:`Selection` and the :data:`CRITERIA` registry.
* :mod:`~snnkit.compress.masks`: unstructured weight masks (global or per-layer, iterative,
  any importance score) that survive training; rewinding with the mask kept.
* :mod:`~snnkit.compress.pca`: the PCA maths behind the ``"pca"`` criterion.
* :mod:`~snnkit.compress.quant`: the :data:`QUANTIZERS` registry, quantizers attached to
  layers (post-training or trained), and their :class:`QuantRecord` (:func:`quant_records`).
* :mod:`~snnkit.compress.quant_prune`: quantize and prune channels in either order, the
  quantizers carried through surgery (:func:`quantize_prune`, QP-SNN).
* :mod:`~snnkit.compress.surgery`: :func:`shrink` removes channels for real (a smaller
  ``Net``), :func:`mask_channels` zeroes them in place of it.
* :mod:`~snnkit.compress.schedules`: the :data:`SCHEDULES` registry; the compression
  schedules (isolated, cumulative, joint: :data:`COMPRESSION_SCHEDULES`) and
  :func:`run_compression`, which fine-tunes a pretrained net through one.
* :mod:`~snnkit.compress.temporal`: lowering T, gradually or directly, or to the t the KL
  rule chooses (:func:`~snnkit.compress.temporal.kl_rule`).
* :mod:`~snnkit.compress.methods`: every paper's method, and the random and uniform
  baselines, run from one pretrained SNN with one training budget (its ``METHODS``
  registry), and ``method_row``, which measures each result the same way.
"""
from .activity import layer_activity, prunable_layers
from .attention import AttentionTransfer, attention_loss, attention_map, attention_maps
from .criteria import CRITERIA, Selection, widths_at, widths_from_scores
from .iterative import PRUNING_RULES, iterative_prune, prune_round, train_with_rewind_point
from .lamp import lamp_importance, lamp_scores
from .masks import (
    apply_masks, global_sparsity, layer_density, layer_sparsity, masks_of, prunable_weights, prune_global,
    prune_layerwise, remove_masks, rewind,
)
from .quant import QUANTIZERS, QuantRecord, quant_records, quantize_model
from .quant_prune import ORDERS, quantize_prune
from .schedules import COMPRESSION_SCHEDULES, SCHEDULES, run_compression
from .sparse import SparseConfig, attention_guided, compressed_variants, magnitude_baseline, sparse_fit, spiking_stage
from .surgery import channel_plan, mask_channels, shrink

__all__ = [
    "COMPRESSION_SCHEDULES", "run_compression",
    "PRUNING_RULES", "iterative_prune", "lamp_importance", "lamp_scores", "prune_round", "train_with_rewind_point",
    "channel_plan", "mask_channels", "shrink",
    "apply_masks", "global_sparsity", "layer_density", "layer_sparsity", "masks_of", "prunable_weights",
    "prune_global", "prune_layerwise", "remove_masks", "rewind",
    "CRITERIA", "QUANTIZERS", "SCHEDULES", "Selection", "layer_activity", "prunable_layers",
    "QuantRecord", "quant_records", "quantize_model", "widths_at", "widths_from_scores",
    "ORDERS", "quantize_prune",
    "AttentionTransfer", "attention_loss", "attention_map", "attention_maps",
    "SparseConfig", "attention_guided", "compressed_variants", "magnitude_baseline", "sparse_fit", "spiking_stage",
]

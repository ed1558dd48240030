"""Metrics for compressed SNNs.

* :mod:`~snnkit.metrics.ops`: accuracy, parameters, model size in bits, spikes, MACs, SynOps
  (dense, and effective: zero weights and zero inputs skipped, as NeuroBench counts them).
* :mod:`~snnkit.metrics.energy`: energy per inference from the dense or effective counts (45 nm table).
* :mod:`~snnkit.metrics.robustness`: accuracy under input noise.
* :mod:`~snnkit.metrics.hardware`: energy on an accelerator with a memory hierarchy (DRAM,
  global buffer, scratchpads) for dense and sparse weight storage formats.
* :mod:`~snnkit.metrics.speed`: measured inference speed of two models, and dense MACs.

The common names are importable from ``snnkit.metrics`` directly.
"""
from .energy import COUNTS, ENERGY_TABLE, PRECISIONS, energy, energy_per_op, energy_ratio, summary
from .ops import (
    LayerOps,
    OpsReport,
    accuracy,
    conv_fanout,
    count_nonzero,
    count_params,
    fanout,
    latency,
    measure,
    model_size_bits,
    model_size_mb,
    sparsity,
)
from .robustness import accuracy_under_noise, add_noise
from .hardware import HARDWARE_TABLE, STORAGE_FORMATS, Accelerator, inference_energy
from .speed import SpeedReport, compare_speed, dense_macs, time_inference

__all__ = [
    "HARDWARE_TABLE", "STORAGE_FORMATS", "Accelerator", "inference_energy",
    "SpeedReport", "compare_speed", "dense_macs", "time_inference",
    "COUNTS", "ENERGY_TABLE", "PRECISIONS", "LayerOps", "OpsReport", "accuracy", "accuracy_under_noise",
    "add_noise", "conv_fanout", "count_nonzero", "count_params", "energy", "energy_per_op",
    "energy_ratio", "fanout", "latency", "measure", "model_size_bits", "model_size_mb", "sparsity", "summary",
]

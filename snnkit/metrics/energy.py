"""Energy per inference from operation counts.

:func:`energy` turns an :class:`~snnkit.metrics.ops.OpsReport` into picojoules with the
45 nm figures of Horowitz (2014) in :data:`ENERGY_TABLE`: ``MACs x E_mac + SynOps x E_add``.
This is compute energy only; memory traffic is left aside.

Two sets of counts can be priced (``counts=``, see :data:`COUNTS`):

* ``"dense"`` (default): ``report.macs`` and ``report.synops``. Every synapse of an
  analog-input layer is multiplied, every synapse an input spike reaches is accumulated,
  zero weights included: event-driven hardware that stores and visits every weight.
  This is the convention of most SNN energy estimates, and pruning a weight to zero
  saves nothing here.
* ``"effective"``: ``report.effective_macs`` and ``report.effective_acs`` (NeuroBench's
  Effective_MACs and Effective_ACs): zero weights and zero inputs are skipped, as on
  sparsity-aware hardware. Unstructured pruning, and the ANN's zero ReLU outputs, save
  energy here.
"""
from __future__ import annotations

import json
from importlib import resources
from typing import Any

from torch import Tensor, nn

from .ops import OpsReport, count_nonzero, count_params, measure, model_size_mb

__all__ = ["COUNTS", "ENERGY_TABLE", "PRECISIONS", "energy", "energy_per_op", "energy_ratio", "summary"]


def _load_energy_table() -> dict[str, Any]:
    text = resources.files("snnkit.metrics").joinpath("energy_45nm.json").read_text(encoding="utf-8")
    return json.loads(text)


#: Horowitz (ISSCC 2014) 45 nm energy per operation in pJ:
#: ``{"source": str, "fp32": {"mac": 4.6, "add": 0.9}, "fp16": {...}, "int8": {...}}``.
ENERGY_TABLE: dict[str, Any] = _load_energy_table()

#: The precisions :func:`energy_per_op` accepts.
PRECISIONS: tuple[str, ...] = tuple(k for k, v in ENERGY_TABLE.items() if isinstance(v, dict))

#: The operation counts :func:`energy` can price: dense (zero weights counted) or
#: effective (zero weights and zero inputs skipped).
COUNTS: tuple[str, ...] = ("dense", "effective")


def energy_per_op(precision: str = "fp32") -> tuple[float, float]:
    """``(mac_pJ, add_pJ)``: energy of one MAC and of one add (accumulate) in picojoules.

    Raises:
        ValueError: unknown ``precision`` (the message lists the accepted ones).
    """
    entry = ENERGY_TABLE.get(precision) if isinstance(precision, str) else None
    if not isinstance(entry, dict):
        raise ValueError(f"unknown precision {precision!r}; expected one of {list(PRECISIONS)}")
    return float(entry["mac"]), float(entry["add"])


def energy(report: OpsReport, precision: str = "fp32", counts: str = "dense") -> dict[str, float]:
    """Energy per sample per inference: ``MACs x E_mac + accumulates x E_add``.

    Spiking-input layers only accumulate (their cost is SynOps x add energy); analog-input
    and ANN layers pay full MACs.

    Args:
        report: counts from :func:`~snnkit.metrics.ops.measure`.
        precision: a key of :data:`ENERGY_TABLE` ("fp32", "fp16", "int8").
        counts: "dense" (default: ``report.macs`` and ``report.synops``, zero weights
            counted) or "effective" (``report.effective_macs`` and ``report.effective_acs``,
            zero weights and zero inputs skipped, for sparsity-aware hardware).

    Returns:
        ``{"mac_pj", "syn_pj", "total_pj"}`` in picojoules and ``"total_uj"`` in
        microjoules.

    Raises:
        ValueError: unknown ``precision`` or ``counts`` (the message lists the accepted ones).
    """
    mac_pj, add_pj = energy_per_op(precision)
    if counts == "dense":
        macs, acs = report.macs, report.synops
    elif counts == "effective":
        macs, acs = report.effective_macs, report.effective_acs
    else:
        raise ValueError(f"counts={counts!r}: expected one of {list(COUNTS)}")
    mac = macs * mac_pj
    syn = acs * add_pj
    total = mac + syn
    return {"mac_pj": mac, "syn_pj": syn, "total_pj": total, "total_uj": total * 1e-6}


def energy_ratio(
    snn_report: OpsReport, ann_report: OpsReport, precision: str = "fp32", counts: str = "dense"
) -> float:
    """Energy of the SNN divided by that of the ANN (below 1: the SNN is cheaper), both
    priced with the same ``counts`` ("dense" by default, or "effective"; see :func:`energy`)."""
    ann = energy(ann_report, precision, counts)["total_pj"]
    if ann <= 0:
        raise ValueError("the ANN report has zero energy; cannot form a ratio")
    return energy(snn_report, precision, counts)["total_pj"] / ann


def summary(model: nn.Module, x: Tensor, precision: str = "fp32") -> dict[str, float | int]:
    """Compact metrics for notebooks, per sample per inference.

    Returns ``params``, ``nonzero`` (non-zero parameter entries), ``size_mb`` (with
    the model's quantization records, see :func:`snnkit.compress.quant.quant_records`), ``spikes_per_inference``, the dense counts ``macs`` and
    ``synops``, the effective counts ``effective_macs`` and ``effective_acs``,
    ``total_synops`` (NeuroBench's Dense), ``energy_uj`` (dense counts) and
    ``energy_uj_effective`` (effective counts), both at ``precision`` (fp32 by default),
    and ``timesteps``.
    """
    report = measure(model, x)
    return {
        "params": count_params(model),
        "nonzero": count_nonzero(model),
        "size_mb": model_size_mb(model),
        "spikes_per_inference": report.spikes_per_inference,
        "macs": report.macs,
        "synops": report.synops,
        "effective_macs": report.effective_macs,
        "effective_acs": report.effective_acs,
        "total_synops": report.total_synops,
        "energy_uj": energy(report, precision, "dense")["total_uj"],
        "energy_uj_effective": energy(report, precision, "effective")["total_uj"],
        "timesteps": report.timesteps,
    }

"""Models in and out of the kit: snntorch ``nn.Sequential`` nets and NIR graphs.

* :mod:`~snnkit.interop.spec`: :class:`SequentialSpec`, a net described layer by layer,
  which is what an imported model is built from.
* :mod:`~snnkit.interop.snntorch`: :func:`from_snntorch` and :func:`to_snntorch`.
* :mod:`~snnkit.interop.nir`: :func:`to_nir`, :func:`from_nir`, ``.nir`` files, the exact
  meaning of the graph it writes, and :func:`graph_table` (a graph's nodes in words).
"""
from .nir import DEFAULT_DT, fold_batch_norm, from_nir, graph_table, lif_parameters, read_nir, to_nir, write_nir
from .snntorch import SUPPORTED_MODULES, SnntorchModel, from_snntorch, run_snntorch, to_snntorch
from .spec import LAYER_KINDS, MODULE_KINDS, Layer, SequentialSpec

__all__ = ["LAYER_KINDS", "MODULE_KINDS", "Layer", "SequentialSpec",
           "SUPPORTED_MODULES", "SnntorchModel", "from_snntorch", "run_snntorch", "to_snntorch",
           "DEFAULT_DT", "fold_batch_norm", "from_nir", "graph_table", "lif_parameters", "read_nir", "to_nir",
           "write_nir"]

"""snnkit: a study kit for compressing spiking neural networks.

Core modules are imported with the package; the notebook pipeline (``snnkit.notebook``,
``snnkit.widgets``, ``snnkit.runner``, ``snnkit.plots``) is imported on demand.
"""
from . import _alloc

_alloc.tune_malloc()

from . import convert, data, encoding, metrics, models, neurons, pca, quant, surrogate, train  # noqa: E402
from .models import NeuronSpec, ResNetSpec, VGGSpec, build  # noqa: E402
from .neurons import LIF  # noqa: E402
from .train import TrainConfig, evaluate, fit  # noqa: E402

__version__ = "0.1.0"

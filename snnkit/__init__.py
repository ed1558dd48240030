"""snnkit: a study kit for compressing spiking neural networks.

The building blocks (``neurons``, ``surrogate``, ``models``, ``encoding``, ``weights``,
``recording``, ``train``, ``convert``, ``recipes``, ``data``), the compression package
(``snnkit.compress``, with its one entry point ``compress``), the metrics
(``snnkit.metrics``) and models in and out (``snnkit.interop``: snntorch and NIR; imported
here so that checkpoints of imported nets load) are imported with the package; the
notebook pipeline (``snnkit.notebook`` and its ``plots``, ``widgets``, ``runner``) on demand.
"""
from . import _alloc

_alloc.tune_malloc()

from . import (  # noqa: E402
    compress, convert, data, encoding, interop, metrics, models, neurons, recipes, recording, surrogate, train,
    weights,
)
from .models import NeuronSpec, ResNetSpec, VGGSpec, build  # noqa: E402
from .neurons import LIF  # noqa: E402
from .registry import Registry  # noqa: E402
from .train import TrainConfig, evaluate, fit  # noqa: E402

__version__ = "0.1.0"

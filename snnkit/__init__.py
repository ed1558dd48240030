"""snnkit: a study kit for compressing spiking neural networks."""
from . import _alloc

_alloc.tune_malloc()

__version__ = "0.1.0"

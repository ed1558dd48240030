"""Test-session settings.

Under pytest-xdist each worker is its own process; torch's default of one thread per core
in every worker (and in every notebook kernel they start) oversubscribes a small machine
and makes everything several times slower. One thread per worker avoids that.
"""
import os

if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # inherited by notebook kernels
    import torch

    torch.set_num_threads(1)

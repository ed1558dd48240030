"""What the kit's default dense nets reach on each embedded data set, and how it was measured.

One protocol for every set, the tour's: the small VGG net ``conv16 - pool - conv32 - pool -
linear`` (:data:`REFERENCE_FEATURES`, 1-D on sequences), trained from scratch with Adam
(learning rate 5e-3, batch 32, cosine schedule) for :data:`REFERENCE_EPOCHS` epochs, seed 0,
one torch thread. The SNN gets static inputs directly at :data:`STATIC_T` steps and event
clips at all their frames; its ANN twin gets the static input, or the event counts summed
over time. Test accuracy is read once, after the last epoch (no model selection).

:data:`MEASURED` holds the numbers ``python -m snnkit.data.reference`` printed (the data
README's table quotes them); rerun it to check them on another machine::

    OMP_NUM_THREADS=1 python -m snnkit.data.reference                # every embedded set
    OMP_NUM_THREADS=1 python -m snnkit.data.reference mnist1d --epochs 2
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from typing import Sequence

import torch

from ..models import VGGSpec, build
from ..train import TrainConfig, evaluate, fit
from .loading import EMBEDDED, load_dataset

__all__ = ["MEASURED", "REFERENCE_EPOCHS", "REFERENCE_FEATURES", "STATIC_T", "Reference", "main", "reference_run"]

REFERENCE_FEATURES: tuple[int | str, ...] = (16, "P", 32, "P")
REFERENCE_EPOCHS = 8
STATIC_T = 4


@dataclass(frozen=True)
class Reference:
    """One data set's reference numbers.

    Attributes:
        ann, snn: test accuracy of the dense ANN twin and SNN (fractions).
        snn_seconds_per_epoch: wall-clock seconds of one SNN training epoch (validation
            included) at one torch thread, on the machine that measured it.
        T: the SNN's time steps.
        snn_shorter: ``((t, accuracy), ...)`` of the same SNN run for only its first
            ``t`` = T/4, T/2 and 3T/4 steps (no retraining): how much of the evidence the
            later steps add.
    """

    ann: float
    snn: float
    snn_seconds_per_epoch: float
    T: int
    snn_shorter: tuple[tuple[int, float], ...] = ()


#: name -> :class:`Reference`, as printed by ``python -m snnkit.data.reference`` (8 epochs,
#: seed 0, one torch thread, on a 2-core machine shared with other jobs: load average 6 to 9,
#: so the seconds are several times what an idle core takes).
MEASURED: dict[str, Reference] = {
    "digits": Reference(ann=0.983, snn=0.978, snn_seconds_per_epoch=4.8, T=4),
    "mnist-5k": Reference(ann=0.977, snn=0.972, snn_seconds_per_epoch=14.5, T=4),
    "mnist1d": Reference(ann=0.806, snn=0.705, snn_seconds_per_epoch=2.7, T=4),
    "event-digits": Reference(ann=0.989, snn=0.975, snn_seconds_per_epoch=5.2, T=10),
    "event-gestures": Reference(ann=1.000, snn=0.992, snn_seconds_per_epoch=16.2, T=20,
                                snn_shorter=((5, 0.273), (10, 0.402), (15, 0.758))),
    "event-gestures-hard": Reference(ann=0.915, snn=0.876, snn_seconds_per_epoch=22.1, T=16,
                                     snn_shorter=((4, 0.689), (8, 0.828), (12, 0.872))),
}


def reference_run(name: str, *, epochs: int = REFERENCE_EPOCHS, seed: int = 0,
                  **options) -> Reference:
    """Train the reference ANN and SNN on data set ``name`` (see the module docstring).

    ``options`` go to :func:`~snnkit.data.load_dataset`. Returns the test accuracies and
    the SNN's seconds per epoch.
    """
    ds = load_dataset(name, **options)
    event = ds.kind == "event"
    T = ds.input_shape[0] if event else STATIC_T
    in_shape = ds.input_shape[1:] if event else ds.input_shape
    spec = VGGSpec(in_shape=in_shape, num_classes=ds.num_classes, features=REFERENCE_FEATURES)
    cfg = TrainConfig(epochs=epochs, T=T, lr=5e-3, batch_size=32, seed=seed, progress=False)
    results, models = {}, {}
    for spiking in (False, True):
        models[spiking] = model = build(spec, spiking=spiking, seed=seed)
        history = fit(model, ds, cfg)
        results[spiking] = (evaluate(model, ds.test, cfg), history.seconds / max(epochs, 1))
    steps = sorted({max(1, T * k // 4) for k in (1, 2, 3)})
    shorter = tuple((t, evaluate(models[True], ds.test, cfg.replace(T=t))) for t in steps)
    return Reference(ann=results[False][0], snn=results[True][0], snn_seconds_per_epoch=results[True][1], T=T,
                     snn_shorter=shorter)


def main(argv: Sequence[str] | None = None) -> int:
    """Print a markdown table of :func:`reference_run` for the named (default: every embedded) set."""
    parser = argparse.ArgumentParser(prog="python -m snnkit.data.reference", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", default=list(EMBEDDED), help="data sets (default: every embedded one)")
    parser.add_argument("--epochs", type=int, default=REFERENCE_EPOCHS)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the protocol's one thread; restored, as a caller may go on
    try:
        print("| set | T | dense ANN | dense SNN | SNN seconds per epoch | SNN at T/4, T/2, 3T/4 |")
        print("|---|---|---|---|---|---|")
        for name in args.names:
            start = time.perf_counter()
            r = reference_run(name, epochs=args.epochs, seed=args.seed)
            shorter = ", ".join(f"{a:.3f} (T={t})" for t, a in r.snn_shorter)
            print(f"| `{name}` | {r.T} | {r.ann:.3f} | {r.snn:.3f} | {r.snn_seconds_per_epoch:.1f} | {shorter} |",
                  flush=True)
            print(f"  ({time.perf_counter() - start:.0f} s in all)", file=sys.stderr, flush=True)
    finally:
        torch.set_num_threads(threads)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

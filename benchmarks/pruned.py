"""Pruned against unpruned: the measured CPU inference speedup of structurally pruned SNNs
against the reduction in dense operations (FLOPs ratio), for a VGG and a ResNet.

Each parent is pruned at several keep fractions by a scored criterion (default: the seeded
``random`` baseline of :data:`snnkit.compress.importance.IMPORTANCES`, which needs no trained
net; ``--criterion l1`` keeps the same fraction of every layer by filter norm), and cut
for real by :func:`snnkit.compress.surgery.shrink` into a genuinely smaller net. Then:

* FLOPs ratio = ``dense_macs(parent) / dense_macs(pruned)``
  (:func:`snnkit.metrics.speed.dense_macs`: every conv/linear MAC at every step);
* speedup = median time of the parent / median time of the pruned net, the two run in
  alternation on the same input (:func:`snnkit.metrics.speed.compare_speed`), eval mode,
  no gradients, the default eager engine;
* efficiency = speedup / FLOPs ratio; the target is at least 0.8.

Widths. A criterion keeps whatever number of channels it likes (the random baseline:
anything, e.g. 15 or 17); CPU convolution kernels work in blocks of 8 or 16 channels, and
odd widths leave part of each block idle. ``--align 8`` rounds every kept width up to a
multiple of 8 (the next best-scored channels; at most the layer's width), and the default
measures both, so the table shows what alignment is worth.

The ANN twin of each pair (same widths, ReLU, T x B samples: dense compute only) is timed
the same way, to separate what the convolutions deliver from the spiking overhead (LIF
updates, whose cost shrinks with the channel count, not with its square).

    python benchmarks/pruned.py [--keep 0.5,0.25] [--align 1,8] [--repeats 7] [--threads 2] [--json out.json]
    python benchmarks/pruned.py --quick
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import asdict, dataclass

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import machine, table, write_json  # noqa: E402

import snnkit  # noqa: E402
from snnkit.compress.importance import score  # noqa: E402
from snnkit.compress.planners import plan  # noqa: E402
from snnkit.compress.surgery import shrink  # noqa: E402
from snnkit.encoding import model_input  # noqa: E402
from snnkit.metrics.speed import compare_speed, dense_macs  # noqa: E402
from snnkit.models import NeuronSpec, ResNetSpec, VGGSpec, build  # noqa: E402

#: speedup / FLOPs ratio that a pruned net should reach
TARGET_EFFICIENCY = 0.8


@dataclass(frozen=True)
class Setup:
    T: int = 16
    batch: int = 64
    keeps: tuple[float, ...] = (0.5, 0.25)
    aligns: tuple[int, ...] = (1, 8)
    criterion: str = "random"
    seed: int = 0


def parents(quick: bool = False) -> dict[str, VGGSpec | ResNetSpec]:
    """The unpruned nets, on 1 x 16 x 16 digits: a VGG (4 convs, a hidden layer) and a ResNet."""
    neuron = NeuronSpec(beta=0.9, threshold=1.0, reset="subtract", surrogate="arctan")
    if quick:
        return {
            "VGG": VGGSpec(in_shape=(1, 16, 16), num_classes=10, features=(8, "P", 8, "P"), hidden=(16,), neuron=neuron),
            "ResNet": ResNetSpec(in_shape=(1, 16, 16), num_classes=10, stem=8, stages=(8, 16), blocks=(1, 1),
                                 neuron=neuron),
        }
    return {
        "VGG": VGGSpec(in_shape=(1, 16, 16), num_classes=10, features=(32, 32, "P", 64, 64, "P"), hidden=(128,),
                       neuron=neuron),
        "ResNet": ResNetSpec(in_shape=(1, 16, 16), num_classes=10, stem=32, stages=(32, 64, 128), blocks=(1, 1, 1),
                             neuron=neuron),
    }


def select(model, x: torch.Tensor, criterion: str, keep: float, T: int, seed: int):
    """A :class:`~snnkit.compress.planners.Selection` keeping about ``keep`` of the channels."""
    if criterion == "random":
        return plan(score(model, "random", seed=seed), "global", keep=keep)
    if criterion == "l1":
        return plan(score(model, "l1"), "layer", keep=keep)
    raise ValueError(f"criterion={criterion!r}: expected 'random' or 'l1' (scored, data-free)")


def aligned(selection, multiple: int) -> list[torch.Tensor]:
    """Kept channels of every layer with the width rounded up to a multiple of ``multiple``
    (at most the layer's channels): the best-scored ones, ascending. ``multiple=1`` gives
    the selection's own choice."""
    if isinstance(multiple, bool) or not isinstance(multiple, int) or multiple < 1:
        raise ValueError(f"multiple={multiple!r}: expected an integer >= 1")
    widths = [min(c, -(-w // multiple) * multiple) for w, c in zip(selection.widths, selection.original)]
    return [s.argsort(descending=True, stable=True)[:w].sort().values for s, w in zip(selection.scores, widths)]


def measure(setup: Setup, specs: dict, x_static: torch.Tensor, repeats: int, warmup: int, threads: int,
            ann: bool = True) -> list[dict]:
    """One row per (net, keep fraction, alignment): widths, FLOPs ratio, measured speedups, efficiency."""
    rows = []
    x = model_input(x_static, setup.T)  # (T, B, 1, 16, 16), direct input
    xa = x_static.repeat(setup.T, 1, 1, 1)  # (T x B, 1, 16, 16) for the ANN twins
    for name, spec in specs.items():
        parent = build(spec, seed=setup.seed).eval()
        for keep, align in [(k, a) for k in setup.keeps for a in setup.aligns]:
            sel = select(parent, x_static, setup.criterion, keep, setup.T, setup.seed)
            kept = aligned(sel, align)
            small = shrink(parent, kept).eval()
            flops = dense_macs(parent, x) / dense_macs(small, x)
            snn = compare_speed(parent, small, x, repeats=repeats, warmup=warmup, threads=threads)
            row = {"net": name, "keep": keep, "align": align, "widths": [len(k) for k in kept],
                   "original": list(sel.original),
                   "flops_ratio": flops, "speedup": snn.speedup, "efficiency": snn.speedup / flops,
                   "parent_ms": 1e3 * snn.median_a, "pruned_ms": 1e3 * snn.median_b,
                   "met": snn.speedup / flops >= TARGET_EFFICIENCY}
            if ann:
                a_parent = build(spec, spiking=False, seed=setup.seed).eval()
                a_small = build(small.spec, spiking=False, seed=setup.seed).eval()
                twin = compare_speed(a_parent, a_small, xa, repeats=repeats, warmup=warmup, threads=threads)
                row["ann_speedup"] = twin.speedup
                row["ann_efficiency"] = twin.speedup / flops
            rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", default="0.5,0.25", help="comma-separated keep fractions in (0, 1]")
    ap.add_argument("--align", default="1,8",
                    help="comma-separated multiples the kept widths are rounded up to (1: as selected)")
    ap.add_argument("--criterion", default="random", choices=("random", "l1"))
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-ann", action="store_true", help="skip the ANN-twin column")
    ap.add_argument("--quick", action="store_true", help="tiny nets, T=2, batch 4, 1 round: code paths only")
    ap.add_argument("--json", help="also write the numbers to this file")
    args = ap.parse_args(argv)
    keeps = tuple(float(k) for k in args.keep.split(","))
    if not all(0.0 < k <= 1.0 for k in keeps):
        raise SystemExit(f"--keep {args.keep!r}: expected fractions in (0, 1]")
    aligns = tuple(int(a) for a in args.align.split(","))
    setup = Setup(T=2, batch=4, keeps=(0.5,), aligns=(1, 4), criterion=args.criterion) if args.quick else \
        Setup(keeps=keeps, aligns=aligns, criterion=args.criterion)
    repeats, warmup = (1, 0) if args.quick else (args.repeats, args.warmup)
    info = machine(args.threads)
    data = snnkit.data.load_dataset("digits", size=16, seed=0)
    rows = measure(setup, parents(args.quick), data.train.x[: setup.batch], repeats, warmup, args.threads,
                   ann=not args.no_ann)
    info["load_average_1min_after"] = round(os.getloadavg()[0], 2)
    print(f"pruned vs unpruned: batch {setup.batch}, T {setup.T}, {args.threads} thread(s), {repeats} alternations, "
          f"criterion {setup.criterion!r}, load {info['load_average_1min']} -> {info['load_average_1min_after']}")
    headers = ["net", "keep", "align", "widths", "FLOPs ratio", "speedup", "speedup/FLOPs", f">= {TARGET_EFFICIENCY}"]
    if not args.no_ann:
        headers += ["ANN twin speedup", "ANN speedup/FLOPs"]
    print(table(headers, [[r["net"], r["keep"], r["align"], "/".join(map(str, r["widths"])), r["flops_ratio"], r["speedup"],
                           r["efficiency"], r["met"]] + ([r["ann_speedup"], r["ann_efficiency"]] if not args.no_ann else [])
                          for r in rows]))
    result = {"setup": asdict(setup), "machine": info, "repeats": repeats, "target_efficiency": TARGET_EFFICIENCY,
              "rows": rows, "all_met": all(r["met"] for r in rows)}
    write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()

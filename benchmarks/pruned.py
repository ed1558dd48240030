"""Pruned against unpruned: the measured CPU inference speedup of structurally pruned SNNs
against the reduction in dense operations (FLOPs ratio), for the kit's nets.

The nets (:func:`parents`): a VGG and a ResNet on 16x16 digits (T = 16); the mnist-5k-sized
net conv32-P-conv64-P-fc128 on 28 x 28 inputs (T = 8); and a wider VGG in the style of
paper 4's (conv64-64-P-128-128-P-256-P, a 256-unit hidden layer, batch norm) on 28 x 28
inputs (T = 4). Inputs are MNIST-5k images when that data set is available, else digits
upsampled to 28 x 28 (the timing depends on the shapes, and on the spike rates only
through the LIF layers).

Each parent is pruned at several keep fractions by a scored criterion (default: the seeded
``random`` baseline of :data:`snnkit.compress.importance.IMPORTANCES`, which needs no trained
net; ``--criterion l1`` keeps the same fraction of every layer by filter norm), and cut
for real by :func:`snnkit.compress.surgery.shrink` into a genuinely smaller net. Then:

* FLOPs ratio = ``dense_macs(parent) / dense_macs(pruned)``
  (:func:`snnkit.metrics.speed.dense_macs`: every conv/linear MAC at every step);
* speedup = median time of the parent / median time of the pruned net, the two run in
  alternation on the same input (:func:`snnkit.metrics.speed.compare_speed`), eval mode,
  no gradients, on each LIF engine of ``--engines`` (``eager``: short runs;
  ``compiled``: the kernels long runs switch to, see :mod:`snnkit.engine`);
* efficiency = speedup / FLOPs ratio; the target is at least 0.8.

Widths. A criterion keeps whatever number of channels it likes (the random baseline:
anything, e.g. 15 or 17); CPU convolution kernels work in blocks of 8 or 16 channels, and
odd widths leave part of each block idle. ``--align 8`` rounds every kept width up to a
multiple of 8 (the next best-scored channels; at most the layer's width), and the default
measures both, so the table shows what alignment is worth.

The ANN twin of each pair (same widths, ReLU, T x B samples: dense compute only) is timed
the same way, to separate what the convolutions deliver from the spiking overhead (LIF
updates, whose cost shrinks with the channel count, not with its square).

``--profile NET`` instead profiles NET and its pruned net (the first keep fraction, widths
aligned to 8) in turns with torch.profiler, ``--repeats`` inference passes each, and prints
the self CPU time by operator class (:data:`OP_CLASSES`: convolutions and matrix products,
whose work falls with the FLOPs, about k^2 for a keep fraction k; LIF elementwise updates,
pooling, batch norm and copies, which fall with the neuron count, k; views and dispatch, a
fixed cost per call), the dense net's top operators, and the speedup the net would reach if
its convolutions and matrix products sped up by the full FLOPs ratio. ``--compile-model``
adds the same pair through :func:`snnkit.engine.compile_model`.

    python benchmarks/pruned.py [--keep 0.5,0.25] [--align 1,8] [--engines eager,compiled] [--nets ...]
                                [--repeats 7] [--threads 2] [--json out.json]
    python benchmarks/pruned.py --profile "VGG 28x28" [--engines eager] [--compile-model] [--json out.json]
    python benchmarks/pruned.py --quick
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
from dataclasses import asdict, dataclass

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import machine, self_times, table, torch_threads, write_json  # noqa: E402

import snnkit  # noqa: E402
from snnkit import engine as snn_engine  # noqa: E402
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
    batch: int = 64
    keeps: tuple[float, ...] = (0.5, 0.25)
    aligns: tuple[int, ...] = (1, 8)
    criterion: str = "random"
    engines: tuple[str, ...] = ("eager", "compiled")
    seed: int = 0


@dataclass(frozen=True)
class Parent:
    """An unpruned net and the number of steps it runs."""

    spec: VGGSpec | ResNetSpec
    T: int


def parents(quick: bool = False) -> dict[str, Parent]:
    """The unpruned nets (see the module docstring), by name."""
    neuron = NeuronSpec(beta=0.9, threshold=1.0, reset="subtract", surrogate="arctan")
    if quick:
        return {
            "VGG": Parent(VGGSpec(in_shape=(1, 16, 16), num_classes=10, features=(8, "P", 8, "P"), hidden=(16,),
                                  neuron=neuron), 2),
            "ResNet": Parent(ResNetSpec(in_shape=(1, 16, 16), num_classes=10, stem=8, stages=(8, 16), blocks=(1, 1),
                                        neuron=neuron), 2),
        }
    return {
        "VGG 16x16": Parent(VGGSpec(in_shape=(1, 16, 16), num_classes=10, features=(32, 32, "P", 64, 64, "P"),
                                    hidden=(128,), neuron=neuron), 16),
        "ResNet 16x16": Parent(ResNetSpec(in_shape=(1, 16, 16), num_classes=10, stem=32, stages=(32, 64, 128),
                                          blocks=(1, 1, 1), neuron=neuron), 16),
        "VGG 28x28": Parent(VGGSpec(in_shape=(1, 28, 28), num_classes=10, features=(32, "P", 64, "P"), hidden=(128,),
                                    neuron=neuron), 8),
        "wide VGG 28x28": Parent(VGGSpec(in_shape=(1, 28, 28), num_classes=10,
                                         features=(64, 64, "P", 128, 128, "P", 256, "P"), hidden=(256,),
                                         batch_norm=True, neuron=neuron), 4),
    }


def images(size: int, n: int) -> torch.Tensor:
    """``n`` training images (n, 1, size, size): MNIST-5k at 28 x 28 where the kit has it, else
    scikit-learn digits resized to ``size``."""
    if size == 28 and "mnist-5k" in snnkit.data.LOADERS.names():
        return snnkit.data.load_dataset("mnist-5k", seed=0).train.x[:n]
    return snnkit.data.load_dataset("digits", size=size, seed=0).train.x[:n]


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


def pairs(setup: Setup, specs: dict[str, Parent], x_static: torch.Tensor | None = None):
    """Every (name, parent, keep, align, pruned net, input) to measure; the input is the net's
    direct-input batch (T, B, ...) (``x_static``: one batch for every net, for tests)."""
    for name, par in specs.items():
        x0 = x_static if x_static is not None else images(par.spec.in_shape[-1], setup.batch)
        parent = build(par.spec, seed=setup.seed).eval()
        for keep, align in [(k, a) for k in setup.keeps for a in setup.aligns]:
            sel = select(parent, x0, setup.criterion, keep, par.T, setup.seed)
            kept = aligned(sel, align)
            yield name, par, keep, align, sel, kept, parent, shrink(parent, kept).eval(), x0


def measure(setup: Setup, specs: dict[str, Parent], repeats: int, warmup: int, threads: int, ann: bool = True,
            x_static: torch.Tensor | None = None) -> list[dict]:
    """One row per (net, keep fraction, alignment, engine): widths, FLOPs ratio, measured
    speedups, efficiency."""
    rows = []
    for name, par, keep, align, sel, kept, parent, small, x0 in pairs(setup, specs, x_static):
        x = model_input(x0, par.T)  # (T, B, C, H, W), direct input
        flops = dense_macs(parent, x) / dense_macs(small, x)
        twin = None
        if ann:
            a_parent = build(par.spec, spiking=False, seed=setup.seed).eval()
            a_small = build(small.spec, spiking=False, seed=setup.seed).eval()
            twin = compare_speed(a_parent, a_small, x0.repeat(par.T, 1, 1, 1), repeats=repeats, warmup=warmup,
                                 threads=threads)
        for eng in setup.engines:
            with snn_engine.using(eng):
                snn = compare_speed(parent, small, x, repeats=repeats, warmup=warmup, threads=threads)
            row = {"net": name, "T": par.T, "engine": eng, "keep": keep, "align": align,
                   "widths": [len(k) for k in kept], "original": list(sel.original),
                   "flops_ratio": flops, "speedup": snn.speedup, "efficiency": snn.speedup / flops,
                   "parent_ms": 1e3 * snn.median_a, "pruned_ms": 1e3 * snn.median_b,
                   "met": snn.speedup / flops >= TARGET_EFFICIENCY}
            if twin is not None:
                row["ann_speedup"] = twin.speedup
                row["ann_efficiency"] = twin.speedup / flops
            rows.append(row)
    return rows


#: operator classes of the profile breakdown, in print order: (class, how its work scales
#: when every layer keeps a fraction k of its channels)
OP_CLASSES: tuple[tuple[str, str], ...] = (
    ("convolutions, matrix products", "k_in x k_out: the FLOPs"),
    ("compiled graphs (LIF, pool fused)", "k: per neuron"),
    ("LIF elementwise", "k: per neuron"),
    ("pooling", "k: per neuron"),
    ("batch norm", "k: per neuron"),
    ("copies, fills, allocation", "k: per neuron"),
    ("views, dispatch, profiler", "none: per call"),
    ("other", "-"),
)
_MACS = {"mm", "addmm", "bmm", "baddbmm", "matmul", "linear"}
_ELEMENTWISE = {"gt", "ge", "lt", "le", "eq", "mul", "mul_", "add", "add_", "sub", "sub_", "rsub", "addcmul",
                "addcmul_", "where", "div", "div_", "clamp", "clamp_", "clamp_min", "neg", "sigmoid", "atan",
                "masked_fill_", "lerp_", "relu", "threshold", "logical_not", "heaviside", "_to_copy", "to"}
_COPIES = {"copy_", "fill_", "zero_", "zeros", "zeros_like", "empty", "empty_like", "empty_strided", "clone",
           "contiguous", "cat", "stack", "resize_", "new_zeros", "new_empty"}
_VIEWS = {"select", "as_strided", "reshape", "view", "_reshape_alias", "slice", "transpose", "expand", "unsqueeze",
          "squeeze", "permute", "flatten", "unbind", "t", "alias", "detach", "_unsafe_view", "narrow", "split",
          "chunk", "unflatten", "lift_fresh", "result_type", "item", "_local_scalar_dense", "is_nonzero",
          "dropout", "identity", "size", "stride", "numel"}


def op_class(name: str) -> str:
    """The :data:`OP_CLASSES` class of a profiler event ``name`` (e.g. ``aten::mkldnn_convolution``)."""
    op = name.split("::", 1)[1] if name.startswith("aten::") else name
    if not name.startswith("aten::"):
        if "Cache Lookup" in name or "Guard" in name:
            return "views, dispatch, profiler"
        if "ompiled" in name or "inductor" in name.lower() or "Torch-Compiled" in name:
            return "compiled graphs (LIF, pool fused)"
        return "views, dispatch, profiler"
    if "conv" in op or op in _MACS:
        return "convolutions, matrix products"
    if "pool" in op:
        return "pooling"
    if "batch_norm" in op:
        return "batch norm"
    if op in _ELEMENTWISE:
        return "LIF elementwise"
    if op in _COPIES:
        return "copies, fills, allocation"
    if op in _VIEWS:
        return "views, dispatch, profiler"
    return "other"


def op_name(name: str) -> str:
    """A profiler event's name with what differs between two compilations of the same code
    (the graph's hash, the frame and recompile numbers) taken out."""
    if "CompiledFxGraph" in name:
        return "## Call CompiledFxGraph ##"
    if name.startswith("Torch-Compiled Region"):
        return "Torch-Compiled Region"
    return name


def _median_by(rounds: list[dict[str, float]], key) -> dict[str, float]:
    """Per group (``key(op)``), the median over rounds of the group's summed ms."""
    groups = sorted({key(op) for r in rounds for op in r})
    return {g: statistics.median(sum(ms for op, ms in r.items() if key(op) == g) for r in rounds) for g in groups}


def breakdown(dense: list[dict[str, float]], pruned: list[dict[str, float]], flops_ratio: float,
              top: int = 10) -> dict:
    """Where the time of a dense net and of its pruned net goes, from per-round profiles
    ``[{operator: ms}, ...]`` (:func:`common.self_times`), medians over rounds.

    Returns ``classes`` (rows: class, scaling, dense ms, pruned ms, speedup, share of the
    pruned net's time), ``ops`` (the ``top`` operators of the dense net: name, class,
    dense ms, pruned ms, speedup), ``speedup`` (of the profiled totals), and
    ``speedup_if_macs_scaled``: the speedup if the convolutions and matrix products sped up
    by exactly ``flops_ratio`` and everything else took what it took.
    """
    d_cls, p_cls = _median_by(dense, op_class), _median_by(pruned, op_class)
    d_tot = statistics.median(sum(r.values()) for r in dense)
    p_tot = statistics.median(sum(r.values()) for r in pruned)
    classes = []
    for cls, scaling in OP_CLASSES:
        d, p = d_cls.get(cls, 0.0), p_cls.get(cls, 0.0)
        if d or p:
            classes.append([cls, scaling, d, p, d / p if p else None, p / p_tot if p_tot else None])
    d_ops, p_ops = _median_by(dense, op_name), _median_by(pruned, op_name)
    ops = [[op, op_class(op), ms, p_ops.get(op, 0.0), ms / p_ops[op] if p_ops.get(op) else None]
           for op, ms in sorted(d_ops.items(), key=lambda kv: -kv[1])[:top]]
    mac = "convolutions, matrix products"
    d_mac, p_mac = d_cls.get(mac, 0.0), p_cls.get(mac, 0.0)
    ideal = d_tot / (p_tot - p_mac + d_mac / flops_ratio) if p_tot else None
    return {"classes": classes, "ops": ops, "dense_ms": d_tot, "pruned_ms": p_tot, "speedup": d_tot / p_tot,
            "mac_speedup": d_mac / p_mac if p_mac else None, "flops_ratio": flops_ratio,
            "speedup_if_macs_scaled": ideal}


def profile_net(setup: Setup, name: str, par: Parent, engine: str, rounds: int = 5,
                compiled_model: bool = False) -> tuple[str, dict]:
    """Profile the parent and its pruned net (the first keep fraction, widths aligned to 8)
    in turns over ``rounds`` inference passes each (:func:`breakdown`); returns the printed
    text and the numbers. ``compiled_model``: both nets through
    :func:`snnkit.engine.compile_model` (the LIF engine then does not matter)."""
    one = Setup(batch=setup.batch, keeps=setup.keeps[:1], aligns=(8,), criterion=setup.criterion, seed=setup.seed)
    lines, result = [], {}
    for _, _, keep, _, sel, kept, parent, small, x0 in pairs(one, {name: par}):
        x = model_input(x0, par.T)
        flops = dense_macs(parent, x) / dense_macs(small, x)
        nets = {"dense": parent, "pruned": small}
        if compiled_model:
            nets = {k: snn_engine.compile_model(m) for k, m in nets.items()}

        def step(m):
            def run() -> None:
                with snn_engine.using(engine), torch.no_grad():
                    m(x)
            return run
        times = self_times({k: step(m) for k, m in nets.items()}, rounds)
        b = breakdown(times["dense"], times["pruned"], flops)
        widths = "/".join(str(len(k)) for k in kept)
        how = "compile_model" if compiled_model else f"{engine} engine"
        lines.append(f"{name} (widths {'/'.join(map(str, sel.original))}) against its pruned net (keep {keep}, "
                     f"widths {widths}), {how}, batch {setup.batch}, T {par.T}: torch.profiler's self CPU time, "
                     f"ms per pass, median of {rounds} passes each, taken in turns")
        lines.append(table(["operators", "work scales with", "dense ms", "pruned ms", "speedup", "share of pruned"],
                           b["classes"]))
        lines.append("")
        lines.append(table(["operator (dense net's top)", "class", "dense ms", "pruned ms", "speedup"], b["ops"]))
        mac = b["mac_speedup"]
        lines.append(
            f"FLOPs ratio {flops:.2f}; profiled speedup {b['speedup']:.2f} ({b['speedup'] / flops:.2f} of the FLOPs "
            f"ratio); the convolutions and matrix products alone "
            + (f"{mac:.2f} ({mac / flops:.2f} of it)" if mac else "-")
            + f"; had they sped up by the full FLOPs ratio, the net would reach {b['speedup_if_macs_scaled']:.2f} "
            f"({b['speedup_if_macs_scaled'] / flops:.2f} of it).")
        lines.append("")
        result = {"net": name, "keep": keep, "widths": [len(k) for k in kept], "engine": how, **b}
    return "\n".join(lines), result


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", default="0.5,0.25", help="comma-separated keep fractions in (0, 1]")
    ap.add_argument("--align", default="1,8",
                    help="comma-separated multiples the kept widths are rounded up to (1: as selected)")
    ap.add_argument("--criterion", default="random", choices=("random", "l1"))
    ap.add_argument("--engines", default="eager,compiled", help="comma-separated LIF engines: eager, compiled")
    ap.add_argument("--nets", default="", help="comma-separated subset of the nets (default: all)")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-ann", action="store_true", help="skip the ANN-twin column")
    ap.add_argument("--profile", metavar="NET",
                    help="instead, print where the time of NET and of its pruned net goes, by operator class "
                         "(--repeats passes each; the first --keep, widths aligned to 8; each of --engines)")
    ap.add_argument("--compile-model", action="store_true",
                    help="with --profile: also profile both nets through snnkit.engine.compile_model")
    ap.add_argument("--quick", action="store_true", help="tiny nets, T=2, batch 4, 1 round: code paths only")
    ap.add_argument("--json", help="also write the numbers to this file")
    args = ap.parse_args(argv)
    keeps = tuple(float(k) for k in args.keep.split(","))
    if not all(0.0 < k <= 1.0 for k in keeps):
        raise SystemExit(f"--keep {args.keep!r}: expected fractions in (0, 1]")
    aligns = tuple(int(a) for a in args.align.split(","))
    engines = tuple(e for e in args.engines.split(",") if e)
    if not engines or any(e not in ("eager", "compiled") for e in engines):
        raise SystemExit(f"--engines {args.engines!r}: expected a comma-separated subset of eager, compiled")
    specs = parents(args.quick)
    if args.nets:
        wanted = [n.strip() for n in args.nets.split(",")]
        unknown = [n for n in wanted if n not in specs]
        if unknown:
            raise SystemExit(f"--nets: {unknown} unknown; expected names among {', '.join(specs)}")
        specs = {n: specs[n] for n in wanted}
    setup = Setup(batch=4, keeps=(0.5,), aligns=(1, 4), criterion=args.criterion, engines=engines) if args.quick \
        else Setup(keeps=keeps, aligns=aligns, criterion=args.criterion, engines=engines)
    repeats, warmup = (1, 0) if args.quick else (args.repeats, args.warmup)
    if args.profile:
        if args.profile not in specs:
            raise SystemExit(f"--profile {args.profile!r}: expected one of {', '.join(specs)}")
        found = []
        with torch_threads(args.threads):
            for eng in engines:
                text, numbers = profile_net(setup, args.profile, specs[args.profile], eng, rounds=repeats)
                print(text)
                found.append(numbers)
            if args.compile_model:
                text, numbers = profile_net(setup, args.profile, specs[args.profile], "eager", rounds=repeats,
                                            compiled_model=True)
                print(text)
                found.append(numbers)
        result = {"profile": args.profile, "machine": machine(args.threads), "breakdowns": found}
        write_json(args.json, result)
        return result
    info = machine(args.threads)
    rows = measure(setup, specs, repeats, warmup, args.threads, ann=not args.no_ann)
    info["load_average_1min_after"] = round(os.getloadavg()[0], 2)
    print(f"pruned vs unpruned ({info['cpu_model']}): batch {setup.batch}, {args.threads} thread(s), {repeats} "
          f"alternations, criterion {setup.criterion!r}, load {info['load_average_1min']} -> "
          f"{info['load_average_1min_after']}")
    headers = ["net", "T", "engine", "keep", "align", "widths", "FLOPs ratio", "speedup", "speedup/FLOPs",
               f">= {TARGET_EFFICIENCY}"]
    if not args.no_ann:
        headers += ["ANN twin speedup", "ANN speedup/FLOPs"]
    print(table(headers, [[r["net"], r["T"], r["engine"], r["keep"], r["align"], "/".join(map(str, r["widths"])),
                           r["flops_ratio"], r["speedup"], r["efficiency"], r["met"]]
                          + ([r["ann_speedup"], r["ann_efficiency"]] if not args.no_ann else []) for r in rows]))
    result = {"setup": asdict(setup), "machine": info, "repeats": repeats, "target_efficiency": TARGET_EFFICIENCY,
              "rows": rows, "all_met": all(r["met"] for r in rows), "engine": snn_engine.status()}
    write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()

"""Growth: the engine's time per sample as the number of steps T and the width grow.

The net is the engine benchmark's (conv-LIF-pool, conv-LIF-pool, fc-LIF on 16x16 digits,
direct input) with its two conv widths scaled by a factor. Two sweeps, each timed
round-robin (every size once per round, medians over rounds), for inference (no
gradients) and a training step (``ce_rate_loss``, Adam) of the default eager engine:

* T in (5, 10, 25, 50, 100) at width x1 (16, 32 channels);
* width x (0.5, 1, 2, 4) at T = 25.

Dense MACs per sample (:func:`snnkit.metrics.speed.dense_macs`) grow linearly in T and
about quadratically in width; the table gives time per sample next to them, and the plot
(two panels, log-log) draws the measured growth against the MAC growth from the smallest
size. The plot goes to ``out/benchmarks/growth.png`` (not committed).

    python benchmarks/growth.py [--repeats 5] [--threads 2] [--plot out/benchmarks/growth.png] [--json out.json]
    python benchmarks/growth.py --quick
"""
from __future__ import annotations

import argparse
import copy
import os
import sys
from dataclasses import asdict, dataclass

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import machine, per_second, round_robin, table, torch_threads, write_json  # noqa: E402

import snnkit  # noqa: E402
from snnkit import encoding  # noqa: E402
from snnkit.metrics.speed import dense_macs  # noqa: E402
from snnkit.models import NeuronSpec, VGGSpec, build, readout  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_PLOT = os.path.join(REPO, "out", "benchmarks", "growth.png")


@dataclass(frozen=True)
class Setup:
    batch: int = 64
    base_T: int = 25
    Ts: tuple[int, ...] = (5, 10, 25, 50, 100)
    widths: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)
    seed: int = 0


def spec_at(scale: float) -> VGGSpec:
    """The engine benchmark's net with conv widths (16, 32) x ``scale``."""
    c1, c2 = max(1, round(16 * scale)), max(1, round(32 * scale))
    return VGGSpec(in_shape=(1, 16, 16), num_classes=10, features=(c1, "P", c2, "P"), readout="spike",
                   neuron=NeuronSpec(beta=0.9, threshold=1.0, reset="subtract", surrogate="arctan"))


def _steps(model, x: torch.Tensor, y: torch.Tensor):
    """(inference step, training step) of ``model`` on (T, B, ...) input ``x``."""
    from snntorch import functional as SF

    loss_fn = SF.ce_rate_loss()
    tr = copy.deepcopy(model)
    opt = torch.optim.Adam(tr.parameters(), lr=1e-3)

    def infer() -> None:
        with torch.no_grad():
            model(x)

    def train() -> None:
        opt.zero_grad(set_to_none=True)
        loss_fn(tr(x), y).backward()
        opt.step()
    return infer, train


def sweep(points: dict[str, tuple[VGGSpec, int]], x_static: torch.Tensor, y: torch.Tensor, repeats: int,
          warmup: int, seed: int) -> dict[str, dict]:
    """Time every point ``{key: (spec, T)}`` round-robin; per point: ms/sample and MACs/sample."""
    steps, macs = {}, {}
    for key, (spec, T) in points.items():
        model = build(spec, seed=seed)
        x = encoding.direct(x_static, T)
        macs[key] = dense_macs(model, x)  # per sample, all T steps
        steps[f"{key}/infer"], steps[f"{key}/train"] = _steps(model, x, y)
    times = round_robin(steps, repeats, warmup)
    B = x_static.shape[0]
    return {key: {"T": T, "widths": list(spec.widths), "macs_per_sample": macs[key],
                  "infer_ms": 1e3 / per_second(times[f"{key}/infer"], B),
                  "train_ms": 1e3 / per_second(times[f"{key}/train"], B)}
            for key, (spec, T) in points.items()}


def growth_table(rows: dict[str, dict]) -> list[list]:
    """Rows of the printed table, each size relative to the first (smallest)."""
    first = next(iter(rows.values()))
    return [[k, r["macs_per_sample"] / first["macs_per_sample"], r["infer_ms"], r["infer_ms"] / first["infer_ms"],
             r["train_ms"], r["train_ms"] / first["train_ms"]] for k, r in rows.items()]


def plot(by_T: dict[str, dict], by_width: dict[str, dict], path: str) -> str:
    """Two log-log panels (time per sample against T, and against width), with MAC growth dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    from snnkit.notebook import set_theme

    set_theme()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, rows, xkey, xlabel in ((axes[0], by_T, "T", "time steps T"),
                                   (axes[1], by_width, "scale", "width (x the 16/32-channel net)")):
        xs = [r["T"] if xkey == "T" else r["scale"] for r in rows.values()]
        first = next(iter(rows.values()))
        for col, label, marker in (("infer_ms", "inference", "o"), ("train_ms", "training step", "s")):
            ys = [r[col] for r in rows.values()]
            ax.plot(xs, ys, marker=marker, label=label)
            ax.plot(xs, [first[col] * r["macs_per_sample"] / first["macs_per_sample"] for r in rows.values()],
                    linestyle="--", color=ax.lines[-1].get_color(), alpha=0.6, label=f"{label}: MAC growth")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(xs, [f"{v:g}" for v in xs])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(xlabel)
        ax.set_ylabel("time per sample [ms]")
    axes[0].legend(fontsize=8)
    fig.suptitle("snnkit engine: time per sample as T and width grow (CPU)")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> dict:
    """Parse the command line, run the benchmark with ``--threads`` threads (restored after)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--plot", default=DEFAULT_PLOT, help="where the PNG goes ('' for none)")
    ap.add_argument("--quick", action="store_true", help="batch 4, T in (2, 4), width x (0.5, 1), 1 round")
    ap.add_argument("--json", help="also write the numbers to this file")
    args = ap.parse_args(argv)
    with torch_threads(args.threads):
        return _run(args)


def _run(args: argparse.Namespace) -> dict:
    setup = Setup(batch=4, base_T=2, Ts=(2, 4), widths=(0.5, 1.0)) if args.quick else Setup()
    repeats, warmup = (1, 0) if args.quick else (args.repeats, args.warmup)
    info = machine(args.threads)
    data = snnkit.data.load_dataset("digits", size=16, seed=0)
    x, y = data.train.x[: setup.batch], data.train.y[: setup.batch]
    by_T = sweep({f"T={T}": (spec_at(1.0), T) for T in setup.Ts}, x, y, repeats, warmup, setup.seed)
    by_width = sweep({f"width x{s:g}": (spec_at(s), setup.base_T) for s in setup.widths}, x, y, repeats, warmup,
                     setup.seed)
    for s, r in zip(setup.widths, by_width.values()):
        r["scale"] = s
    info["load_average_1min_after"] = round(os.getloadavg()[0], 2)
    print(f"growth: batch {setup.batch}, {args.threads} thread(s), {repeats} rounds, "
          f"load {info['load_average_1min']} -> {info['load_average_1min_after']}")
    headers = ["size", "MACs x", "inference ms/sample", "x", "training ms/sample", "x"]
    print(table(headers, growth_table(by_T)))
    print()
    print(f"at T = {setup.base_T}:")
    print(table(headers, growth_table(by_width)))
    path = plot(by_T, by_width, args.plot) if args.plot else None
    if path:
        print(f"plot: {path}")
    result = {"setup": asdict(setup), "machine": info, "repeats": repeats, "by_T": by_T, "by_width": by_width,
              "plot": path}
    write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()

"""Growth: the engine's time per sample and its peak memory as T, the batch and the width grow.

The main net is the engine benchmark's (conv-LIF-pool, conv-LIF-pool, fc-LIF on 16x16
digits, direct input) with its two conv widths scaled by a factor. Sweeps, each timed
round-robin (every size once per round, medians over rounds), for inference (no
gradients) and a training step (``ce_rate_loss``, Adam), on the LIF engine chosen with
``--engine`` (default ``eager``, what short runs use; ``compiled``: the kernels long runs
switch to, see :mod:`snnkit.engine`):

* T in (5, 10, 25, 50, 100) at width x1 (16, 32 channels);
* width x (0.5, 1, 2, 4) at T = 25;
* T in (5, 10, 25, 50) for two more nets of the kit (:func:`extra_nets`): the
  mnist-5k-sized conv32-P-conv64-P-fc128 on 28 x 28 inputs, and a 1-D conv net on
  length-40 sequences (mnist1d's shape: conv32-P-conv64-P-fc128 with 1-D convolutions),
  where the model builder has 1-D convolutions (else the row says it is pending).

Peak memory (``--memory``, on by default): for each net, one training step and one
inference pass at T in (5, 10, 25, 50) (batch 64) and at batch in (16, 32, 64, 128)
(T = 25), each in a fresh process (the operating system's peak resident memory cannot be
reset within a process, and the allocator keeps what it freed): the peak resident memory
above what the process held with the model and the batch built, in MiB.

Dense MACs per sample (:func:`snnkit.metrics.speed.dense_macs`) grow linearly in T and
about quadratically in width; the table gives time per sample next to them, and the plot
(two panels, log-log) draws the measured growth against the MAC growth from the smallest
size. The plot goes to ``out/benchmarks/growth.png`` (not committed).

    python benchmarks/growth.py [--repeats 5] [--threads 2] [--engine eager] [--no-memory]
                                [--plot out/benchmarks/growth.png] [--json out.json]
    python benchmarks/growth.py --quick
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import machine, per_second, round_robin, table, torch_threads, write_json  # noqa: E402

import snnkit  # noqa: E402
from snnkit import encoding  # noqa: E402
from snnkit import engine as snn_engine  # noqa: E402
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
    extra_Ts: tuple[int, ...] = (5, 10, 25, 50)
    memory_Ts: tuple[int, ...] = (5, 10, 25, 50)
    memory_batches: tuple[int, ...] = (16, 32, 64, 128)
    seed: int = 0


def spec_at(scale: float) -> VGGSpec:
    """The engine benchmark's net with conv widths (16, 32) x ``scale``."""
    c1, c2 = max(1, round(16 * scale)), max(1, round(32 * scale))
    return VGGSpec(in_shape=(1, 16, 16), num_classes=10, features=(c1, "P", c2, "P"), readout="spike",
                   neuron=NeuronSpec(beta=0.9, threshold=1.0, reset="subtract", surrogate="arctan"))


def extra_nets() -> dict[str, VGGSpec | str]:
    """The 28 x 28 and 1-D nets by name; a string instead of a spec says why a net is pending."""
    neuron = NeuronSpec(beta=0.9, threshold=1.0, reset="subtract", surrogate="arctan")
    nets: dict[str, VGGSpec | str] = {
        "28x28 conv32-P-conv64-P-fc128": VGGSpec(in_shape=(1, 28, 28), num_classes=10, features=(32, "P", 64, "P"),
                                                 hidden=(128,), neuron=neuron)}
    try:
        nets["1-D (1 x 40) conv32-P-conv64-P-fc128"] = VGGSpec(in_shape=(1, 40), num_classes=10,
                                                               features=(32, "P", 64, "P"), hidden=(128,),
                                                               neuron=neuron)
    except ValueError as err:
        nets["1-D (1 x 40) conv32-P-conv64-P-fc128"] = f"pending: the model builder has no 1-D convolutions ({err})"
    return nets


def inputs_for(spec: VGGSpec, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` inputs of the spec's shape and their labels: digits at 16 x 16 or 28 x 28,
    seeded uniform sequences for 1-D nets (timing depends on shapes and spike rates only)."""
    if len(spec.in_shape) == 3:
        data = snnkit.data.load_dataset("digits", size=spec.in_shape[-1], seed=seed)
        return data.train.x[:n], data.train.y[:n]
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, *spec.in_shape, generator=gen) * 2, torch.randint(0, spec.num_classes, (n,), generator=gen)


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


def _in_engine(mode: str, step):
    def run() -> None:
        with snn_engine.using(mode):
            step()
    return run


def sweep(points: dict[str, tuple[VGGSpec, int]], x_static: torch.Tensor, y: torch.Tensor, repeats: int,
          warmup: int, seed: int, engine: str = "eager") -> dict[str, dict]:
    """Time every point ``{key: (spec, T)}`` round-robin on the LIF engine ``engine``; per
    point: ms/sample and MACs/sample."""
    steps, macs = {}, {}
    for key, (spec, T) in points.items():
        model = build(spec, seed=seed)
        x = encoding.direct(x_static, T)
        macs[key] = dense_macs(model, x)  # per sample, all T steps
        infer, train = _steps(model, x, y)
        steps[f"{key}/infer"], steps[f"{key}/train"] = _in_engine(engine, infer), _in_engine(engine, train)
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


# ---------------------------------------------------------------------------------------
# peak memory, one fresh process per point


def memory_nets() -> dict[str, VGGSpec]:
    """The nets whose peak memory is measured, by name (pending nets left out)."""
    nets = {"16x16 conv16-P-conv32-P (engine benchmark)": spec_at(1.0)}
    nets.update({k: v for k, v in extra_nets().items() if not isinstance(v, str)})
    return nets


def _proc_status_kib(field: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` (VmRSS, VmHWM), None where there is none."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def memory_point(net: str, T: int, batch: int, engine: str = "eager", seed: int = 0) -> dict:
    """In this process: peak resident memory (MiB) of an inference pass, then of a training
    step, above the memory held once the model, optimizer and batch exist and a one-sample,
    one-step pass has run (run it in a fresh process: the peak only grows)."""
    spec = memory_nets()[net]
    x, y = inputs_for(spec, batch, seed)
    model = build(spec, seed=seed)
    with snn_engine.using(engine):  # one-time allocations (thread pools, kernel caches) before the baseline
        for step in _steps(model, encoding.direct(x[:1], 1), y[:1]):
            step()
    infer, train = _steps(model, encoding.direct(x, T), y)
    base = _proc_status_kib("VmRSS")
    out = {"net": net, "T": T, "batch": batch, "engine": engine}
    with snn_engine.using(engine):
        infer()
        hwm = _proc_status_kib("VmHWM")
        out["infer_mib"] = None if base is None or hwm is None else (hwm - base) / 1024
        train()
        hwm = _proc_status_kib("VmHWM")
        out["train_mib"] = None if base is None or hwm is None else (hwm - base) / 1024
    return out


def measure_memory(points: list[tuple[str, int, int]], engine: str, threads: int) -> list[dict]:
    """:func:`memory_point` of every ``(net, T, batch)``, each in a fresh Python process."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (REPO, os.environ.get("PYTHONPATH", "")) if p),
               OMP_NUM_THREADS=str(threads))
    rows = []
    for net, T, batch in points:
        arg = json.dumps({"net": net, "T": T, "batch": batch, "engine": engine, "threads": threads})
        done = subprocess.run([sys.executable, os.path.abspath(__file__), "--memory-point", arg], env=env,
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"memory point {arg} failed:\n{done.stderr[-2000:]}")
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return rows


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
    ap.add_argument("--engine", default="eager", choices=("eager", "compiled"), help="the LIF engine to time")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory sweeps")
    ap.add_argument("--quick", action="store_true", help="batch 4, T in (2, 4), width x (0.5, 1), 1 round")
    ap.add_argument("--json", help="also write the numbers to this file")
    ap.add_argument("--memory-point", help=argparse.SUPPRESS)  # internal: one point, in a fresh process
    args = ap.parse_args(argv)
    if args.memory_point:
        point = json.loads(args.memory_point)
        with torch_threads(point.pop("threads")):
            print(json.dumps(memory_point(**point)))
        return {}
    with torch_threads(args.threads):
        return _run(args)


def _run(args: argparse.Namespace) -> dict:
    setup = Setup(batch=4, base_T=2, Ts=(2, 4), widths=(0.5, 1.0), extra_Ts=(2,), memory_Ts=(2,),
                  memory_batches=(2,)) if args.quick else Setup()
    repeats, warmup = (1, 0) if args.quick else (args.repeats, args.warmup)
    info = machine(args.threads)
    data = snnkit.data.load_dataset("digits", size=16, seed=0)
    x, y = data.train.x[: setup.batch], data.train.y[: setup.batch]
    by_T = sweep({f"T={T}": (spec_at(1.0), T) for T in setup.Ts}, x, y, repeats, warmup, setup.seed, args.engine)
    by_width = sweep({f"width x{s:g}": (spec_at(s), setup.base_T) for s in setup.widths}, x, y, repeats, warmup,
                     setup.seed, args.engine)
    by_net: dict[str, dict | str] = {}
    for name, spec in extra_nets().items():
        if isinstance(spec, str):
            by_net[name] = spec
            continue
        xn, yn = inputs_for(spec, setup.batch, setup.seed)
        by_net[name] = sweep({f"T={T}": (spec, T) for T in setup.extra_Ts}, xn, yn, repeats, warmup, setup.seed,
                             args.engine)
    memory = []
    if not args.no_memory:
        nets = list(memory_nets())
        if args.quick:
            nets = nets[:1]
        points = [(n, T, setup.batch) for n in nets for T in setup.memory_Ts]
        points += [(n, setup.base_T, b) for n in nets for b in setup.memory_batches if b != setup.batch]
        memory = measure_memory(points, args.engine, args.threads)
    for s, r in zip(setup.widths, by_width.values()):
        r["scale"] = s
    info["load_average_1min_after"] = round(os.getloadavg()[0], 2)
    print(f"growth ({info['cpu_model']}): batch {setup.batch}, {args.threads} thread(s), {args.engine} engine, "
          f"{repeats} rounds, load {info['load_average_1min']} -> {info['load_average_1min_after']}")
    headers = ["size", "MACs x", "inference ms/sample", "x", "training ms/sample", "x"]
    print(table(headers, growth_table(by_T)))
    print()
    print(f"at T = {setup.base_T}:")
    print(table(headers, growth_table(by_width)))
    for name, rows in by_net.items():
        print()
        print(f"{name}:" if not isinstance(rows, str) else f"{name}: {rows}")
        if not isinstance(rows, str):
            print(table(headers, growth_table(rows)))
    if memory:
        print()
        print(f"peak memory above the model and batch, MiB ({args.engine} engine; one fresh process per row):")
        print(table(["net", "T", "batch", "inference MiB", "training step MiB"],
                    [[m["net"], m["T"], m["batch"], m["infer_mib"], m["train_mib"]]
                     for m in sorted(memory, key=lambda m: (m["net"], m["batch"], m["T"]))]))
    path = plot(by_T, by_width, args.plot) if args.plot else None
    if path:
        print(f"plot: {path}")
    result = {"setup": asdict(setup), "machine": info, "repeats": repeats, "engine": args.engine, "by_T": by_T,
              "by_width": by_width, "by_net": by_net, "memory": memory, "plot": path}
    write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()

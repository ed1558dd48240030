"""Growth: the engine's time per sample and its peak memory as T, the batch and the width grow.

The main net is the engine benchmark's (conv-LIF-pool, conv-LIF-pool, fc-LIF on 16x16
digits, direct input) with its two conv widths scaled by a factor. Sweeps, each timed
round-robin (every size once per round, medians over rounds), for inference (no
gradients) and a training step (``ce_rate_loss``, Adam), on the LIF engine chosen with
``--engine`` (default ``eager``, what short runs use; ``compiled``: the kernels long runs
switch to, see :mod:`snnkit.engine`):

* T in (5, 10, 25, 50) at width x1 (16, 32 channels);
* width x (0.5, 1, 2, 4) at T = 25;
* T in each of :func:`extra_nets`' own lists for the nets the papers' notebooks train on
  the newer data sets: paper 2's conv32-P-conv64-P-fc128 and paper 4's conv32-P-conv64-P
  (batch norm) on ``mnist-5k`` (28 x 28), paper 5's 1-D conv16-P-64-P-64-P-64-P (batch
  norm) on ``mnist1d`` (1 x 40 sequences), and paper 3's conv16-P-32-P-32-P-fc64 on
  ``event-gestures-hard`` (2 x 32 x 32 event frames; its 16-frame clips are repeated
  cyclically beyond 16 steps). Static inputs go in directly (the same image every step).

Peak memory (``--memory``, on by default): for each net, one inference pass and one
training step at T in the net's list (batch 64) and at batch in (16, 32, 64, 128) (the
net's middle T). The measure is the operating system's peak resident set size
(``VmHWM`` of ``/proc/self/status``, what ``resource.getrusage`` reports as ``ru_maxrss``):
it sees everything torch's CPU allocator takes, which ``tracemalloc`` does not. Each net
runs in a fresh Python process; before each point the process returns freed heap memory
to the system (``malloc_trim``) and resets its peak (``/proc/self/clear_refs``), so a
point's figure is its peak above what the process held with the model and the batch built,
in MiB. Where the reset is not available, every point gets a fresh process.

Dense MACs per sample (:func:`snnkit.metrics.speed.dense_macs`) grow linearly in T and
about quadratically in width; the tables give time per sample next to them, and the plot
(three panels, log-log) draws the measured growth against the MAC growth from the smallest
size, and the training step's peak memory against T for every net. The plot goes to
``out/benchmarks/growth.png`` (not committed).

    python benchmarks/growth.py [--repeats 3] [--threads 2] [--engine eager] [--no-memory]
                                [--plot out/benchmarks/growth.png] [--json out.json]
    python benchmarks/growth.py --quick
"""
from __future__ import annotations

import argparse
import copy
import ctypes
import gc
import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass, field

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import machine, per_second, round_robin, table, torch_threads, write_json  # noqa: E402

import snnkit  # noqa: E402
from snnkit import encoding  # noqa: E402
from snnkit import engine as snn_engine  # noqa: E402
from snnkit.metrics.speed import dense_macs  # noqa: E402
from snnkit.models import NeuronSpec, VGGSpec, build  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_PLOT = os.path.join(REPO, "out", "benchmarks", "growth.png")
#: the name of the engine benchmark's net in the tables and the memory sweep
MAIN_NET = "16x16 conv16-P-conv32-P (engine benchmark, digits)"


@dataclass(frozen=True)
class Setup:
    batch: int = 64
    base_T: int = 25
    Ts: tuple[int, ...] = (5, 10, 25, 50)
    widths: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)
    memory_batches: tuple[int, ...] = (16, 32, 64, 128)
    quick: bool = False
    seed: int = 0


@dataclass(frozen=True)
class Net:
    """A net, the data set its inputs come from, and the T values it is swept over.

    ``data_options`` go to :func:`snnkit.data.load_dataset` (e.g. the image size).
    """

    spec: VGGSpec
    data: str
    Ts: tuple[int, ...]
    data_options: dict = field(default_factory=dict, hash=False)


def spec_at(scale: float) -> VGGSpec:
    """The engine benchmark's net with conv widths (16, 32) x ``scale``."""
    c1, c2 = max(1, round(16 * scale)), max(1, round(32 * scale))
    return VGGSpec(in_shape=(1, 16, 16), num_classes=10, features=(c1, "P", c2, "P"), readout="spike",
                   neuron=NeuronSpec(beta=0.9, threshold=1.0, reset="subtract", surrogate="arctan"))


def extra_nets(quick: bool = False) -> dict[str, Net]:
    """The nets the papers' notebooks train on the newer data sets, by name (see the module
    docstring), each with the T values it is swept over (around the notebook's own T)."""
    static_Ts, event_Ts = ((2,), (2,)) if quick else ((2, 4, 8, 16), (4, 8, 16, 32))
    subtract = NeuronSpec(beta=0.9, threshold=1.0, reset="subtract", surrogate="arctan")
    zero = NeuronSpec(beta=0.5, threshold=1.0, reset="zero", surrogate="arctan")
    return {
        "28x28 conv32-P-conv64-P-fc128 (paper 2, mnist-5k)": Net(
            VGGSpec(in_shape=(1, 28, 28), num_classes=10, features=(32, "P", 64, "P"), hidden=(128,),
                    neuron=subtract), "mnist-5k", static_Ts),
        "28x28 conv32-P-conv64-P, batch norm (paper 4, mnist-5k)": Net(
            VGGSpec(in_shape=(1, 28, 28), num_classes=10, features=(32, "P", 64, "P"), hidden=(), batch_norm=True,
                    neuron=subtract), "mnist-5k", static_Ts),
        "1-D 1x40 conv16-P-64-P-64-P-64-P, batch norm (paper 5, mnist1d)": Net(
            VGGSpec(in_shape=(1, 40), num_classes=10, features=(16, "P", 64, "P", 64, "P", 64, "P"),
                    batch_norm=True, neuron=zero), "mnist1d", static_Ts),
        "2x32x32 events conv16-P-32-P-32-P-fc64 (paper 3, event-gestures-hard)": Net(
            VGGSpec(in_shape=(2, 32, 32), num_classes=12, features=(16, "P", 32, "P", 32, "P"), hidden=(64,),
                    neuron=zero), "event-gestures-hard", event_Ts),
    }


def main_net(setup: Setup) -> Net:
    """The engine benchmark's net (width x1) with the T values of the main sweep."""
    return Net(spec_at(1.0), "digits", setup.Ts, {"size": 16})


def inputs_for(net: Net, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` training samples of the net's data set and their labels: images
    (n, C, H, W), sequences (n, C, L) or event clips (n, T0, 2, H, W)."""
    data = snnkit.data.load_dataset(net.data, seed=seed, **net.data_options)
    if n > len(data.train.y):
        raise ValueError(f"n={n}: the {net.data!r} training split has only {len(data.train.y)} samples")
    return data.train.x[:n], data.train.y[:n]


def net_input(x: torch.Tensor, T: int) -> torch.Tensor:
    """The model input (T, B, ...) at ``T`` steps: static data ``x`` (B, ...) directly at every
    step (a stride-0 view), event clips (B, T0, 2, H, W) frame by frame, repeated cyclically
    where ``T`` exceeds ``T0``."""
    if x.dim() == 5:
        return encoding.events(x[:, torch.arange(T) % x.shape[1]], T)
    return encoding.direct(x, T)


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


def sweep(points: dict[str, tuple[VGGSpec, int]], x_data: torch.Tensor, y: torch.Tensor, repeats: int,
          warmup: int, seed: int, engine: str = "eager") -> dict[str, dict]:
    """Time every point ``{key: (spec, T)}`` round-robin on the LIF engine ``engine``, on the
    data batch ``x_data`` (see :func:`net_input`); per point: ms/sample and MACs/sample."""
    steps, macs = {}, {}
    for key, (spec, T) in points.items():
        model = build(spec, seed=seed)
        x = net_input(x_data, T)
        macs[key] = dense_macs(model, x)  # per sample, all T steps
        infer, train = _steps(model, x, y)
        steps[f"{key}/infer"], steps[f"{key}/train"] = _in_engine(engine, infer), _in_engine(engine, train)
    times = round_robin(steps, repeats, warmup)
    B = x_data.shape[0]
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
# peak memory: the peak resident set size, one fresh process per net


def memory_nets(setup: Setup | None = None) -> dict[str, Net]:
    """The nets whose peak memory is measured, by name: the engine benchmark's and
    :func:`extra_nets`."""
    setup = setup or Setup()
    return {MAIN_NET: main_net(setup), **extra_nets(setup.quick)}


def memory_points(setup: Setup, nets: list[str] | None = None) -> list[tuple[str, int, int]]:
    """Every ``(net, T, batch)`` of the memory sweep: each T of the net's list at the
    setup's batch, then each other batch at the net's middle T."""
    points = []
    for name, net in memory_nets(setup).items():
        if nets is not None and name not in nets:
            continue
        mid = net.Ts[(len(net.Ts) - 1) // 2]
        points += [(name, T, setup.batch) for T in net.Ts]
        points += [(name, mid, b) for b in setup.memory_batches if b != setup.batch]
    return points


def _proc_status_kib(field_: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` (VmRSS, VmHWM), None where there is none."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field_ + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak() -> bool:
    """Return freed heap memory to the system (glibc's ``malloc_trim``) and reset the peak
    resident set size to the current one (Linux: ``5`` to ``/proc/self/clear_refs``).
    False where the reset is not available (then only a fresh process has a fresh peak)."""
    gc.collect()
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return _proc_status_kib("VmHWM") is not None


def memory_run(net: str, points: list[tuple[int, int]], engine: str = "eager", seed: int = 0,
               quick: bool = False) -> list[dict]:
    """In this process, for every ``(T, batch)``: the peak resident memory (MiB) of an
    inference pass, then of a training step, above what the process holds once the model,
    optimizer and batch exist (after :func:`reset_peak`; run it in a fresh process: one-time
    allocations, thread pools and kernel caches, are made by an untimed pass at the smallest
    point first)."""
    spec = memory_nets(Setup(quick=quick))[net]
    x_all, y_all = inputs_for(spec, max(b for _, b in points), seed)
    model = build(spec.spec, seed=seed)
    T0, b0 = min(points, key=lambda p: p[0] * p[1])
    with snn_engine.using(engine):  # one-time allocations, at the smallest point
        for step in _steps(model, net_input(x_all[:b0], T0), y_all[:b0]):
            step()
    rows = []
    for T, batch in points:
        infer, train = _steps(model, net_input(x_all[:batch], T), y_all[:batch])
        fresh = reset_peak()
        base = _proc_status_kib("VmRSS")
        out = {"net": net, "T": T, "batch": batch, "engine": engine}
        with snn_engine.using(engine):
            infer()
            hwm = _proc_status_kib("VmHWM")
            out["infer_mib"] = None if base is None or hwm is None else (hwm - base) / 1024
            train()
            hwm = _proc_status_kib("VmHWM")
            out["train_mib"] = None if base is None or hwm is None else (hwm - base) / 1024
        if not fresh and len(points) > 1:
            raise RuntimeError("the peak resident memory cannot be reset here: measure one point per process")
        del infer, train
        rows.append(out)
    return rows


def measure_memory(points: list[tuple[str, int, int]], engine: str, threads: int, quick: bool = False) -> list[dict]:
    """The peak memory of every ``(net, T, batch)`` (see :func:`memory_run`), one fresh Python
    process per net (per point where the peak cannot be reset), rows in the order given."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (REPO, os.environ.get("PYTHONPATH", "")) if p),
               OMP_NUM_THREADS=str(threads))
    groups: dict[str, list[tuple[int, int]]] = {}
    for net, T, batch in points:
        groups.setdefault(net, []).append((T, batch))
    jobs = list(groups.items()) if reset_peak() else [(net, [p]) for net, p_list in groups.items() for p in p_list]
    found = {}
    for net, pts in jobs:
        arg = json.dumps({"net": net, "points": pts, "engine": engine, "threads": threads, "quick": quick})
        done = subprocess.run([sys.executable, os.path.abspath(__file__), "--memory-point", arg], env=env,
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"memory points {arg} failed:\n{done.stderr[-2000:]}")
        for row in json.loads(done.stdout.strip().splitlines()[-1]):
            found[(row["net"], row["T"], row["batch"])] = row
    return [found[p] for p in points]


def memory_table(memory: list[dict]) -> list[list]:
    """Rows of the printed memory table: net, T, batch, MiB of inference and of a training
    step, and the training step's KiB per sample and step (constant where memory is linear
    in T x batch)."""
    return [[m["net"], m["T"], m["batch"], m["infer_mib"], m["train_mib"],
             None if m["train_mib"] is None else m["train_mib"] * 1024 / (m["T"] * m["batch"])] for m in memory]


def plot(by_T: dict[str, dict], by_width: dict[str, dict], memory: list[dict], batch: int, path: str) -> str:
    """Three log-log panels: time per sample against T and against width (MAC growth dashed),
    and the training step's peak memory against T at batch ``batch`` for every net (if any)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    from snnkit.notebook import set_theme

    set_theme()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
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
    ax = axes[2]
    nets = list(dict.fromkeys(m["net"] for m in memory))
    for net in nets:
        pts = sorted((m["T"], m["train_mib"]) for m in memory
                     if m["net"] == net and m["batch"] == batch and m["train_mib"] and m["train_mib"] > 0)
        if pts:
            ax.plot(*zip(*pts), marker="o", label=net.split(" (")[-1].rstrip(")"))
    if ax.lines:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ts = sorted({m["T"] for m in memory if m["batch"] == batch})
        ax.set_xticks(ts, [str(t) for t in ts])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.legend(fontsize=7)
    ax.set_xlabel("time steps T")
    ax.set_ylabel(f"training step peak memory [MiB], batch {batch}")
    fig.suptitle("snnkit engine: time per sample and memory as T and width grow (CPU)")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> dict:
    """Parse the command line, run the benchmark with ``--threads`` threads (restored after)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--plot", default=DEFAULT_PLOT, help="where the PNG goes ('' for none)")
    ap.add_argument("--engine", default="eager", choices=("eager", "compiled"), help="the LIF engine to time")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory sweeps")
    ap.add_argument("--quick", action="store_true",
                    help="batch 4, T in (2, 4) (extra nets: T = 2), width x (0.5, 1), 1 round, memory of one net")
    ap.add_argument("--json", help="also write the numbers to this file")
    ap.add_argument("--memory-point", help=argparse.SUPPRESS)  # internal: one net's points, in a fresh process
    args = ap.parse_args(argv)
    if args.memory_point:
        job = json.loads(args.memory_point)
        with torch_threads(job.pop("threads")):
            print(json.dumps(memory_run(job["net"], [tuple(p) for p in job["points"]], job["engine"],
                                        quick=job["quick"])))
        return {}
    with torch_threads(args.threads):
        return _run(args)


def _run(args: argparse.Namespace) -> dict:
    setup = Setup(batch=4, base_T=2, Ts=(2, 4), widths=(0.5, 1.0), memory_batches=(2,), quick=True) if args.quick \
        else Setup()
    repeats, warmup = (1, 0) if args.quick else (args.repeats, args.warmup)
    info = machine(args.threads)
    x, y = inputs_for(main_net(setup), setup.batch, setup.seed)
    by_T = sweep({f"T={T}": (spec_at(1.0), T) for T in setup.Ts}, x, y, repeats, warmup, setup.seed, args.engine)
    by_width = sweep({f"width x{s:g}": (spec_at(s), setup.base_T) for s in setup.widths}, x, y, repeats, warmup,
                     setup.seed, args.engine)
    by_net: dict[str, dict] = {}
    for name, net in extra_nets(setup.quick).items():
        xn, yn = inputs_for(net, setup.batch, setup.seed)
        by_net[name] = sweep({f"T={T}": (net.spec, T) for T in net.Ts}, xn, yn, repeats, warmup, setup.seed,
                             args.engine)
    memory = []
    if not args.no_memory:
        memory = measure_memory(memory_points(setup, [MAIN_NET] if args.quick else None), args.engine,
                                args.threads, quick=setup.quick)
    for s, r in zip(setup.widths, by_width.values()):
        r["scale"] = s
    info["load_average_1min_after"] = round(os.getloadavg()[0], 2)
    print(f"growth ({info['cpu_model']}): batch {setup.batch}, {args.threads} thread(s), {args.engine} engine, "
          f"{repeats} rounds, load {info['load_average_1min']} -> {info['load_average_1min_after']}")
    headers = ["size", "MACs x", "inference ms/sample", "x", "training ms/sample", "x"]
    print(f"{MAIN_NET}:")
    print(table(headers, growth_table(by_T)))
    print()
    print(f"{MAIN_NET}, width scaled, at T = {setup.base_T}:")
    print(table(headers, growth_table(by_width)))
    for name, rows in by_net.items():
        print()
        print(f"{name}:")
        print(table(headers, growth_table(rows)))
    if memory:
        print()
        print(f"peak resident memory above the model and batch, MiB ({args.engine} engine; one fresh process per "
              "net, the peak reset before each row):")
        print(table(["net", "T", "batch", "inference MiB", "training step MiB", "training KiB per sample-step"],
                    memory_table(memory)))
    path = plot(by_T, by_width, memory, setup.batch, args.plot) if args.plot else None
    if path:
        print(f"plot: {path}")
    result = {"setup": asdict(setup), "machine": info, "repeats": repeats, "engine": args.engine, "by_T": by_T,
              "by_width": by_width, "by_net": by_net, "memory": memory, "plot": path}
    write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()

"""Engine benchmark: snnkit against every peer on one net, in one run, round-robin, medians.

Net (the same for everyone, the same initial weights copied into each): conv(1->16, 3x3)
-LIF-maxpool, conv(16->32)-LIF-maxpool, fc(512->10)-LIF on 16x16 digits, no biases;
batch 128, T = 25, leak 0.9, threshold 1, subtractive reset, direct input, arctan
surrogate where the library has it, snntorch's ``ce_rate_loss`` on the output spikes
(T, B, 10) and Adam (lr 1e-3) for every spiking variant. Printed: samples/s of inference
and training of each variant (median over round-robin rounds), whether its output spikes
are identical to snntorch's, and the ratios of snnkit's best to each peer.

    python benchmarks/engine.py [--repeats 7] [--threads 2] [--json out.json]
    python benchmarks/engine.py --quick --no-compile     # seconds: the code paths only
    python benchmarks/engine.py --device cuda            # the same ratios on a GPU
    python benchmarks/engine.py --profile snnkit/train   # where a training step's time goes

Variants:
  * ``snnkit``: the default engine of a long run (:mod:`snnkit.engine` "auto" past its
    count, here "compiled" from the start): each LIF layer's forward and backward over all
    T steps is one compiled kernel, with the max pool after it inside; convolutions over
    all steps at once, the first layer computed once for direct input;
  * ``snnkit eager``: the eager engine (whole-sequence LIF autograd function), what short
    runs use and the fallback where ``torch.compile`` fails;
  * ``snnkit compile_model``: :func:`snnkit.engine.compile_model` (inference only; this
    net runs on the compiled LIF kernels, whatever the engine choice);
  * ``snntorch``: its tutorial per-step loop with ``snn.Leaky`` (the reference of every
    ratio "x snntorch");
  * ``snntorch + compile``: the same module through ``torch.compile``;
  * ``SpikingJelly``: 2.x multi-step mode, ``LIFNode(tau=1/(1-beta), decay_input=False,
    v_reset=None, detach_reset=True, ATan())`` behind ``layer.*`` wrappers, the first conv
    computed once and repeated over T (its documented idiom for static images);
  * ``norse``: a per-step loop with ``LIFBoxCell`` (the first conv computed once);
  * ``ANN twin floor``: the same net with ReLUs, run on T x B samples: the dense compute
    of T steps with nothing spiking-specific; samples/s counts B per pass, as for the SNNs.

Neuron models (why "n/a" in the identity column). snntorch and snnkit compute
``U[t] = beta U[t-1] + I[t] - theta S[t-1]``, ``S[t] = U[t] > theta``. SpikingJelly's soft
reset subtracts theta *before* the next leak: ``H[t] = (1 - 1/tau) V[t-1] + I[t]``,
``S[t] = H[t] >= theta``, ``V[t] = H[t] - theta S[t]``, so the reset acts as
``beta * theta`` at the next step (and ties at theta fire). norse's ``LIFBox`` is an Euler
step ``v += dt/tau (I - v)`` (the input scaled by dt/tau = 1 - beta; the threshold here is
scaled the same way, 0.1), with the same reset-before-leak (``reset_subtract``) and its
SuperSpike surrogate. Their work per neuron and step is about the same (a few elementwise
operations), their spikes are not; the output spike rates are printed to show that the
activity is comparable. On a CPU, SpikingJelly 2.x runs its LIF sequence through its own
autograd op (a loop over T with a hand-written backward), as snnkit does.

Targets (CPU, :data:`TARGETS`): training >= 2x snntorch, inference >= 5x snntorch with
compilation, and >= 1.3x the best peer in each column; the ANN twin is a floor, not a
peer. Also printed: the spike rate of every LIF layer of the snnkit net on the benchmark
batch, and the seconds the first calls of the compiled rows took (compiling).
``--profile ROW/KIND`` prints torch.profiler's operator table of one step instead.
"""
from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (INSTALL_HINT, machine, per_second, profile, round_robin, table, torch_threads,  # noqa: E402
                    write_json)

import snnkit  # noqa: E402
from snnkit import encoding  # noqa: E402
from snnkit import engine as snn_engine  # noqa: E402
from snnkit.models import NeuronSpec, VGGSpec, build, layer_labels, lif_layers, probe  # noqa: E402

#: targets of the engine on CPU (ratios of samples/s measured in the same run)
TARGETS = {"train_vs_snntorch": 2.0, "infer_vs_snntorch": 5.0, "vs_best_peer": 1.3}


@dataclass(frozen=True)
class Setup:
    """The benchmark's sizes and neuron settings."""

    T: int = 25
    batch: int = 128
    beta: float = 0.9
    threshold: float = 1.0
    seed: int = 0


def spec_of(setup: Setup) -> VGGSpec:
    """The benchmark net as a snnkit spec (spike readout, as the peers)."""
    return VGGSpec(
        in_shape=(1, 16, 16), num_classes=10, features=(16, "P", 32, "P"), readout="spike",
        neuron=NeuronSpec(beta=setup.beta, threshold=setup.threshold, reset="subtract", surrogate="arctan"),
    )


def _weights(model: nn.Module) -> list[torch.Tensor]:
    """conv1, conv2 and fc weights of any of the benchmark nets, in forward order."""
    return [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def copy_weights(src: nn.Module, dst: nn.Module) -> nn.Module:
    """Copy the three weight tensors of ``src`` into ``dst`` (any benchmark net); returns ``dst``."""
    a, b = _weights(src), _weights(dst)
    if [w.shape for w in a] != [w.shape for w in b]:
        raise ValueError(f"weights {[tuple(w.shape) for w in b]}: expected {[tuple(w.shape) for w in a]}")
    with torch.no_grad():
        for s, d in zip(a, b):
            d.copy_(s)
    return dst


# ---------------------------------------------------------------------------------------
# the peers' nets: each maps a static batch (B, 1, 16, 16) to output spikes (T, B, 10)


class SnntorchNet(nn.Module):
    """The reference: snntorch's tutorial-style per-step loop."""

    def __init__(self, setup: Setup) -> None:
        super().__init__()
        import snntorch as snn

        self.T = setup.T
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1, bias=False)
        self.lif1 = snn.Leaky(beta=setup.beta, threshold=setup.threshold)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1, bias=False)
        self.lif2 = snn.Leaky(beta=setup.beta, threshold=setup.threshold)
        self.fc = nn.Linear(512, 10, bias=False)
        self.lif3 = snn.Leaky(beta=setup.beta, threshold=setup.threshold)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, 1, 16, 16) -> (T, B, 10)
        mem1, mem2, mem3 = self.lif1.init_leaky(), self.lif2.init_leaky(), self.lif3.init_leaky()
        out = []
        for _ in range(self.T):
            spk1, mem1 = self.lif1(self.conv1(x), mem1)
            spk2, mem2 = self.lif2(self.conv2(self.pool(spk1)), mem2)
            spk3, mem3 = self.lif3(self.fc(self.pool(spk2).flatten(1)), mem3)
            out.append(spk3)
        return torch.stack(out)


class SpikingJellyNet(nn.Module):
    """SpikingJelly 2.x in multi-step mode; the static first conv runs once."""

    def __init__(self, setup: Setup) -> None:
        super().__init__()
        from spikingjelly.activation_based import layer, neuron, surrogate

        def lif() -> nn.Module:
            return neuron.LIFNode(tau=1.0 / (1.0 - setup.beta), decay_input=False, v_threshold=setup.threshold,
                                  v_reset=None, surrogate_function=surrogate.ATan(), detach_reset=True,
                                  step_mode="m")

        self.T = setup.T
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1, bias=False)
        self.body = nn.Sequential(
            lif(), layer.MaxPool2d(2, step_mode="m"),
            layer.Conv2d(16, 32, 3, padding=1, bias=False, step_mode="m"), lif(), layer.MaxPool2d(2, step_mode="m"),
            layer.Flatten(step_mode="m"), layer.Linear(512, 10, bias=False, step_mode="m"), lif(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from spikingjelly.activation_based import functional

        functional.reset_net(self)
        h = self.conv1(x).unsqueeze(0).repeat(self.T, 1, 1, 1, 1)  # (T, B, 16, 16, 16)
        return self.body(h)


class NorseNet(nn.Module):
    """norse: a per-step loop of ``LIFBoxCell``s; the static first conv runs once."""

    def __init__(self, setup: Setup) -> None:
        super().__init__()
        import norse.torch as norse
        from norse.torch.functional.reset import reset_subtract

        dt = 1e-3
        leak = 1.0 - setup.beta  # dt / tau
        p = norse.LIFBoxParameters(tau_mem_inv=torch.as_tensor(leak / dt), v_th=torch.as_tensor(leak * setup.threshold),
                                   reset_method=reset_subtract)
        self.T = setup.T
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1, bias=False)
        self.lif1 = norse.LIFBoxCell(p, dt=dt)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1, bias=False)
        self.lif2 = norse.LIFBoxCell(p, dt=dt)
        self.fc = nn.Linear(512, 10, bias=False)
        self.lif3 = norse.LIFBoxCell(p, dt=dt)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s1 = s2 = s3 = None
        cur = self.conv1(x)
        out = []
        for _ in range(self.T):
            z, s1 = self.lif1(cur, s1)
            z, s2 = self.lif2(self.conv2(self.pool(z)), s2)
            z, s3 = self.lif3(self.fc(self.pool(z).flatten(1)), s3)
            out.append(z)
        return torch.stack(out)


# ---------------------------------------------------------------------------------------
# variants: a model, its input, and how its spikes compare


@dataclass
class Variant:
    """One row of the table.

    Attributes:
        label: the row name.
        infer, train: step functions timed for inference and training (None: not measured).
        identical: output spikes equal snntorch's (None: the neuron differs, "n/a").
        spike_rate: mean of its output spikes on the benchmark batch (None for the ANN).
        note: why a row is missing or what differs.
        first_call_s: seconds of the first forward and backward (compiling, for compiled rows).
    """

    label: str
    infer: Callable[[], object] | None = None
    train: Callable[[], object] | None = None
    identical: bool | None = None
    spike_rate: float | None = None
    note: str = ""
    first_call_s: float | None = None
    results: dict = field(default_factory=dict)


def _sync(inp: torch.Tensor) -> Callable[[], None]:
    """Wait for the device to finish (GPU kernels run asynchronously); nothing on a CPU."""
    return torch.cuda.synchronize if inp.is_cuda else (lambda: None)


def _infer_step(model: Callable, inp: torch.Tensor) -> Callable[[], None]:
    sync = _sync(inp)

    def step() -> None:
        with torch.no_grad():
            model(inp)
        sync()
    return step


def _train_step(model: Callable, params, inp: torch.Tensor, loss_fn: Callable) -> Callable[[], None]:
    opt = torch.optim.Adam(params, lr=1e-3)
    sync = _sync(inp)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss_fn(model(inp)).backward()
        opt.step()
        sync()
    return step


def _in_engine(mode: str, step: Callable[[], None]) -> Callable[[], None]:
    """``step`` run with the LIF engine ``mode`` (see :mod:`snnkit.engine`)."""
    def run() -> None:
        with snn_engine.using(mode):
            step()
    return run


def layer_rates(model: nn.Module, x: torch.Tensor) -> dict[str, float]:
    """Mean spike rate (spikes per neuron and step) of every LIF layer of a snnkit net on
    ``x`` (T, B, ...), named after the conv or linear layer that feeds it (conv1, conv2, fc3)."""
    names = [n for n, _ in lif_layers(model)]
    labels = list(layer_labels(model).values())
    rates: dict[str, float] = {}
    with torch.no_grad(), probe(model, lambda n, s, m: rates.__setitem__(n, float(s.float().mean()))):
        model(x)
    return {labels[i] if i < len(labels) else n: rates[n] for i, n in enumerate(names)}


def _missing(label: str, err: Exception) -> Variant:
    return Variant(label, note=f"{INSTALL_HINT} ({type(err).__name__}: {err})")


def variants(setup: Setup, x: torch.Tensor, y: torch.Tensor, *, compile_infer: bool = True,
             compiled_kernels: bool = True, peers: tuple[str, ...] = ("snntorch", "snntorch+compile", "spikingjelly",
                                                                       "norse", "ann")) -> dict[str, Variant]:
    """Build every variant on the batch ``x`` (B, 1, 16, 16) with labels ``y`` (B,).

    Each gets the same initial weights (those of the snnkit net built with ``setup.seed``);
    training steps work on their own copies, so inference is timed on the initial weights.
    Spikes are compared before anything is timed. Everything runs on ``x.device``.
    ``compiled_kernels=False`` leaves out the compiled LIF engine (the "snnkit" row).
    """
    from snntorch import functional as SF

    rate_loss = SF.ce_rate_loss()

    def spike_loss(out: torch.Tensor) -> torch.Tensor:
        return rate_loss(out, y)

    T = setup.T
    spec = spec_of(setup)
    dev = x.device
    ours = build(spec, seed=setup.seed).to(dev)
    xd = encoding.direct(x, T)  # (T, B, 1, 16, 16), a stride-0 view
    with torch.no_grad(), snn_engine.using("eager"):
        s_ours = ours(xd)
    out: dict[str, Variant] = {}
    s_ref = None
    if "snntorch" in peers or "snntorch+compile" in peers:
        ref = copy_weights(ours, SnntorchNet(setup).to(dev))
        with torch.no_grad():
            s_ref = ref(x)
        if "snntorch" in peers:
            tr = copy.deepcopy(ref)
            out["snntorch"] = Variant("snntorch", _infer_step(ref, x), _train_step(tr, tr.parameters(), x, spike_loss),
                                      True, float(s_ref.mean()), "reference")

    def same(s: torch.Tensor) -> bool | None:
        return None if s_ref is None else bool(torch.equal(s, s_ref))

    if compiled_kernels:
        tr = copy.deepcopy(ours)
        t0 = time.perf_counter()
        with snn_engine.using("compiled"):
            with torch.no_grad():
                s_inf = ours(xd)  # compiles the forward kernels
            s = tr(xd)
            spike_loss(s).backward()  # and the backward ones
        tr.zero_grad(set_to_none=True)
        first = time.perf_counter() - t0
        fallback = snn_engine.status()["fallback"]
        both = same(s_inf) and same(s.detach()) if s_ref is not None else None
        out["snnkit"] = Variant(
            "snnkit", _in_engine("compiled", _infer_step(ours, xd)),
            _in_engine("compiled", _train_step(tr, tr.parameters(), xd, spike_loss)), both, float(s_inf.mean()),
            f"fell back to eager: {fallback}" if fallback else "default (long runs): compiled LIF kernels",
            first_call_s=first)
    tr = copy.deepcopy(ours)
    out["snnkit_eager"] = Variant("snnkit eager", _in_engine("eager", _infer_step(ours, xd)),
                                  _in_engine("eager", _train_step(tr, tr.parameters(), xd, spike_loss)),
                                  same(s_ours), float(s_ours.mean()), "short runs, and the fallback")
    if compile_infer:
        fast = snn_engine.compile_model(copy.deepcopy(ours))
        t0 = time.perf_counter()
        with torch.no_grad():
            s = fast(xd)  # compiles
        out["snnkit_compiled"] = Variant("snnkit compile_model", _infer_step(fast, xd), None, same(s), float(s.mean()),
                                         "inference only", first_call_s=time.perf_counter() - t0)
    if "snntorch+compile" in peers:
        label = "snntorch + compile"
        try:
            inf = torch.compile(copy.deepcopy(ref), dynamic=False)
            trm = copy.deepcopy(ref)
            trc = torch.compile(trm, dynamic=False)
            with torch.no_grad():
                s = inf(x)
            out["snntorch_compiled"] = Variant(label, _infer_step(inf, x), _train_step(trc, trm.parameters(), x, spike_loss),
                                               same(s), float(s.mean()), "torch.compile(module)")
        except Exception as err:  # noqa: BLE001 - a compiler failure is a row, not a crash
            out["snntorch_compiled"] = Variant(label, note=f"torch.compile failed: {type(err).__name__}: {err}")
    for key, label, cls, why in (
        ("spikingjelly", "SpikingJelly multi-step", SpikingJellyNet, "reset before leak, fires at >= theta"),
        ("norse", "norse LIFBox", NorseNet, "Euler LIFBox: input x dt/tau, reset before leak"),
    ):
        if key not in peers:
            continue
        try:
            net = copy_weights(ours, cls(setup).to(dev))
        except ImportError as err:
            out[key] = _missing(label, err)
            continue
        with torch.no_grad():
            s = net(x)
        tr = copy.deepcopy(net)
        out[key] = Variant(label, _infer_step(net, x), _train_step(tr, tr.parameters(), x, spike_loss), None,
                           float(s.mean()), f"n/a: {why}")
    if "ann" in peers:
        ann = build(spec, spiking=False, seed=setup.seed).to(dev)
        ann.load_state_dict(ours.state_dict(), strict=False)
        xa, ya = x.repeat(T, 1, 1, 1), y.repeat(T)  # T x B samples: T steps' worth of dense compute
        tr = copy.deepcopy(ann)
        out["ann"] = Variant("ANN twin floor (T x B samples)", _infer_step(ann, xa),
                             _train_step(tr, tr.parameters(), xa, lambda o: F.cross_entropy(o, ya)), None, None,
                             "dense-compute floor, not a peer")
    return out


#: the snnkit rows of the default engine of a long run (compiled kernels; compile_model for inference)
DEFAULT_ROWS = ("snnkit", "snnkit_compiled")
#: the eager engine alone: short runs, and wherever torch.compile fails
EAGER_ROWS = ("snnkit_eager",)


def best(res: dict[str, dict], col: str, keys: tuple[str, ...] = DEFAULT_ROWS) -> str | None:
    """The key of the fastest row among ``keys`` in column ``col`` ("infer" or "train")."""
    have = [k for k in keys if res.get(k, {}).get(col)]
    return max(have, key=lambda k: res[k][col]) if have else None


def ratios(res: dict[str, dict], keys: tuple[str, ...] = DEFAULT_ROWS) -> dict[str, dict[str, float | None]]:
    """The fastest snnkit row among ``keys``, per column, against every non-snnkit row."""
    bi, bt = best(res, "infer", keys), best(res, "train", keys)
    best_infer = res[bi]["infer"] if bi else None
    best_train = res[bt]["train"] if bt else None
    out = {}
    for k, r in res.items():
        if k.startswith("snnkit"):
            continue
        out[k] = {
            "infer": best_infer / r["infer"] if best_infer and r.get("infer") else None,
            "train": best_train / r["train"] if best_train and r.get("train") else None,
        }
    return out


def verdicts(res: dict[str, dict], rat: dict[str, dict]) -> dict[str, dict]:
    """The engine targets, each with the measured ratio and whether it is met."""
    peers = [k for k in rat if k != "ann"]
    out = {}
    if "snntorch" in rat:
        out["training >= 2x snntorch eager"] = (rat["snntorch"]["train"], TARGETS["train_vs_snntorch"])
        out["inference >= 5x snntorch eager (with compile)"] = (rat["snntorch"]["infer"], TARGETS["infer_vs_snntorch"])
    for col in ("infer", "train"):
        vals = [(rat[k][col], k) for k in peers if rat[k][col] is not None]
        if vals:
            worst, who = min(vals)
            name = "inference" if col == "infer" else "training"
            out[f"{name} >= 1.3x best peer ({res[who]['label']})"] = (worst, TARGETS["vs_best_peer"])
    return {k: {"ratio": v, "target": t, "met": v is not None and v >= t} for k, (v, t) in out.items()}


def main(argv: list[str] | None = None) -> dict:
    """Parse the command line, run the benchmark with ``--threads`` threads (restored after)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7, help="round-robin rounds (median over them)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-compile", action="store_true", help="skip every torch.compile variant")
    ap.add_argument("--peers", default="snntorch,snntorch+compile,spikingjelly,norse,ann",
                    help="comma-separated subset of: snntorch, snntorch+compile, spikingjelly, norse, ann")
    ap.add_argument("--profile", metavar="ROW/KIND",
                    help="instead of the benchmark, print torch.profiler's operator table for one step, "
                         "e.g. snnkit/train or snntorch_compiled/train (row keys as in the JSON)")
    ap.add_argument("--device", default="cpu", help="torch device, e.g. cuda (default cpu)")
    ap.add_argument("--quick", action="store_true", help="tiny sizes (T=4, batch 8, 1 round): code paths only")
    ap.add_argument("--json", help="also write the numbers to this file")
    args = ap.parse_args(argv)
    with torch_threads(args.threads):
        return _run(args)


def _run(args: argparse.Namespace) -> dict:
    known = ("snntorch", "snntorch+compile", "spikingjelly", "norse", "ann")
    peers = tuple(p for p in args.peers.split(",") if p)
    if any(p not in known for p in peers):
        raise SystemExit(f"--peers {args.peers!r}: expected a comma-separated subset of {', '.join(known)}")
    if args.no_compile:
        peers = tuple(p for p in peers if p != "snntorch+compile")
    setup = Setup(T=4, batch=8) if args.quick else Setup()
    repeats, warmup = (1, 1) if args.quick else (args.repeats, args.warmup)
    info = machine(args.threads)

    data = snnkit.data.load_dataset("digits", size=16, seed=0)
    x, y = data.train.x[: setup.batch].to(args.device), data.train.y[: setup.batch].to(args.device)
    info["device"] = str(x.device) if not x.is_cuda else torch.cuda.get_device_name(x.device)
    rows = variants(setup, x, y, compile_infer=not args.no_compile, compiled_kernels=not args.no_compile, peers=peers)
    with snn_engine.using("eager"):
        rates = layer_rates(build(spec_of(setup), seed=setup.seed).to(args.device), encoding.direct(x, setup.T))
    if args.profile:
        key, _, kind = args.profile.partition("/")
        step = getattr(rows.get(key), kind, None) if kind in ("infer", "train") else None
        if step is None:
            raise SystemExit(f"--profile {args.profile!r}: expected ROW/infer or ROW/train with ROW one of "
                             f"{', '.join(rows)}")
        print(f"profile of {rows[key].label} {kind}, batch {setup.batch}, T {setup.T}:")
        print(profile(step))
        return {"profile": args.profile}
    steps = {}
    for k, v in rows.items():
        if v.infer is not None:
            steps[f"{k}/infer"] = v.infer
        if v.train is not None:
            steps[f"{k}/train"] = v.train
    times = round_robin(steps, repeats, warmup)
    res: dict[str, dict] = {}
    for k, v in rows.items():
        res[k] = {
            "label": v.label,
            "infer": per_second(times[f"{k}/infer"], setup.batch) if f"{k}/infer" in times else None,
            "train": per_second(times[f"{k}/train"], setup.batch) if f"{k}/train" in times else None,
            "identical_spikes": v.identical,
            "output_spike_rate": v.spike_rate,
            "note": v.note,
            "first_call_s": v.first_call_s,
        }
    rat = ratios(res, DEFAULT_ROWS)
    verdict = verdicts(res, rat)
    rat_eager = ratios(res, EAGER_ROWS)
    verdict_eager = verdicts(res, rat_eager)
    info["load_average_1min_after"] = round(os.getloadavg()[0], 2)

    print(f"engine benchmark on {info['device']} ({info['cpu_model']}): batch {setup.batch}, T {setup.T}, "
          f"{args.threads} thread(s), {repeats} rounds, "
          f"load {info['load_average_1min']} -> {info['load_average_1min_after']}, malloc tuned {info['malloc_tuned']}")
    print(table(["variant", "inference/s", "training/s", "spikes = snntorch", "out rate", "note"],
                [[r["label"], r["infer"], r["train"],
                  "n/a" if r["identical_spikes"] is None else r["identical_spikes"],
                  r["output_spike_rate"], r["note"]] for k, r in res.items()]))
    print()
    print("spike rate of each LIF layer of the snnkit net (spikes per neuron and step): "
          + ", ".join(f"{n} {r:.3f}" for n, r in rates.items()))
    firsts = [(r["label"], r["first_call_s"]) for r in res.values() if r.get("first_call_s") is not None]
    if firsts:
        print("first calls (compiling, s): " + ", ".join(f"{label} {t:.1f}" for label, t in firsts))
    print()
    for name, keys, r, v in (("default engine of a long run", DEFAULT_ROWS, rat, verdict),
                             ("eager engine (short runs, fallback)", EAGER_ROWS, rat_eager, verdict_eager)):
        if best(res, "train", keys) is None:
            continue
        bi = best(res, "infer", keys)
        print(f"snnkit, {name} (inference: {res[bi]['label'] if bi else '-'}, training: "
              f"{res[best(res, 'train', keys)]['label']}), against each row (x):")
        print(table(["against", "inference", "training"], [[res[k]["label"], x["infer"], x["train"]]
                                                            for k, x in r.items()]))
        print()
        print(table(["target", "measured", "target x", "met"], [[k, x["ratio"], x["target"], x["met"]]
                                                                 for k, x in v.items()]))
        print()
    result = {"setup": asdict(setup), "machine": info, "repeats": repeats, "rows": res, "layer_spike_rates": rates,
              "ratios": rat, "targets": verdict, "ratios_eager": rat_eager, "targets_eager": verdict_eager,
              "engine": snn_engine.status()}
    write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()

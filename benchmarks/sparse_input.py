"""Event-driven accumulation against the dense kernels, for the layers of the kit's nets whose
inputs are spikes.

A layer whose input is binary spikes at rate r only needs to add the weights of the inputs
that fired (about r of the dense work). Whether that is faster on a CPU depends on the
kernels: dense convolutions and matrix products run near the CPU's peak, gathers and
scatters far below it. This benchmark measures, for each spike-input layer of two nets (the
engine benchmark's net on 16x16 digits at T = 25, and the mnist-5k-sized net
conv32-P-conv64-P-fc128 on 28x28 inputs at T = 5), the forward time of:

* ``dense``: the layer as the engine runs it (fp32; convolutions channels-last);
* ``bf16``: the same dense kernel with bf16 operands (spikes are exact in bf16, the
  weights are not, so it would change the spikes downstream: timed only to see whether
  lower precision pays on this CPU at all);
* ``sparse``: the spikes as a CSR matrix times the weights (``torch.sparse``; for a
  convolution, its unfolded (im2col) input), the conversion to CSR included;
* ``gathered``: for a linear layer, the columns of the weight matrix picked by each
  sample's spikes and summed (``index_add_``); for a convolution, each spike's 3 x 3 x
  C_out kernel slice added into the output at its 9 positions.

Inputs are the spikes the layer really receives from the net at initialisation (the rate
is printed), and the same layer at fixed rates (1%, 3%, 10%) drawn at random. A path is
worth keeping only where it beats ``dense`` at the rates the nets really have; the
printed table says which is faster and by how much. Outputs are checked against the dense
result (maximum absolute difference, float rounding).

    python benchmarks/sparse_input.py [--repeats 7] [--threads 2] [--json out.json]
    python benchmarks/sparse_input.py --quick
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import machine, per_second, round_robin, table, torch_threads, write_json  # noqa: E402

import snnkit  # noqa: E402
from snnkit import encoding  # noqa: E402
from snnkit import engine as snn_engine  # noqa: E402
from snnkit.models import NeuronSpec, VGGSpec, build, layer_labels  # noqa: E402

warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")

#: fixed spike rates at which every layer is also measured
RATES = (0.01, 0.03, 0.1)


@dataclass(frozen=True)
class Net:
    """A net of the kit, the data it reads, its T and batch."""

    name: str
    spec: VGGSpec
    dataset: str
    size: int
    T: int
    batch: int


def nets(quick: bool = False) -> list[Net]:
    """The engine benchmark's net on digits and the mnist-5k-sized net (28 x 28 inputs)."""
    neuron = NeuronSpec(beta=0.9, threshold=1.0, reset="subtract", surrogate="arctan")
    small = Net("digits 16x16 (engine benchmark)",
                VGGSpec(in_shape=(1, 16, 16), num_classes=10, features=(16, "P", 32, "P"), readout="spike",
                        neuron=neuron), "digits", 16, 25, 128)
    mnist = Net("28x28 conv32-P-conv64-P-fc128",
                VGGSpec(in_shape=(1, 28, 28), num_classes=10, features=(32, "P", 64, "P"), hidden=(128,),
                        neuron=neuron), "digits", 28, 5, 64)
    if quick:
        return [Net(small.name, small.spec, "digits", 16, 2, 4)]
    return [small, mnist]


def spike_inputs(net: Net, x: torch.Tensor) -> dict[str, tuple[nn.Module, torch.Tensor]]:
    """The layers whose input is spikes, by their label (conv2, fc3, ...), each with the input
    it receives on ``x`` (T x B rows), from a forward pass of the net at initialisation."""
    model = build(net.spec, seed=0).eval()
    labels = layer_labels(model)
    seen: dict[str, tuple[nn.Module, torch.Tensor]] = {}

    def hook(module, inputs, _out, name):
        inp = inputs[0]
        if bool(((inp == 0) | (inp == 1)).all()):
            seen[labels[name]] = (module, inp.detach().clone())

    handles = [m.register_forward_hook(lambda mod, i, o, n=n: hook(mod, i, o, n))
               for n, m in model.named_modules() if n in labels]
    try:
        with torch.no_grad(), snn_engine.using("eager"):
            model(encoding.direct(x, net.T))
    finally:
        for h in handles:
            h.remove()
    return seen


def gathered_linear(s: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``s @ weight.T`` for binary ``s`` (N, in): each row sums the weight columns of its spikes."""
    rows, cols = s.nonzero(as_tuple=True)
    out = torch.zeros(s.shape[0], weight.shape[0], dtype=weight.dtype)
    return out.index_add_(0, rows, weight.t()[cols])


def gathered_conv(s: torch.Tensor, weight: torch.Tensor, padding: int) -> torch.Tensor:
    """``conv2d(s, weight, padding)`` (stride 1) for binary ``s`` (N, C, H, W): every spike adds
    its kernel slice ``weight[:, c, i, j]`` to the output at the kernel's positions."""
    N, C, H, W = s.shape
    O, _, K, _ = weight.shape
    Hp, Wp = H + 2 * padding - K + 1, W + 2 * padding - K + 1
    n, c, h, w = s.nonzero(as_tuple=True)
    Hm, Wm = Hp + 2 * K, Wp + 2 * K  # a margin of K on each side for taps off the edge
    out = torch.zeros(N * Hm * Wm, O, dtype=weight.dtype)
    for i in range(K):
        for j in range(K):
            oh, ow = h + padding - i, w + padding - j  # the output the spike reaches through tap (i, j)
            out.index_add_(0, (n * Hm + oh + K) * Wm + ow + K, weight[:, c, i, j].t())
    out = out.reshape(N, Hm, Wm, O)[:, K:K + Hp, K:K + Wp]
    return out.permute(0, 3, 1, 2)


def sparse_mm(s: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``s @ weight.T`` through a CSR matrix (the conversion included)."""
    return torch.sparse.mm(s.to_sparse_csr(), weight.t())


def sparse_conv(s: torch.Tensor, weight: torch.Tensor, padding: int) -> torch.Tensor:
    """A stride-1 convolution as CSR(unfolded input) times the flattened kernels."""
    N, C, H, W = s.shape
    O, _, K, _ = weight.shape
    cols = F.unfold(s, K, padding=padding)  # (N, C K K, L)
    Hp, Wp = H + 2 * padding - K + 1, W + 2 * padding - K + 1
    flat = cols.transpose(1, 2).reshape(-1, C * K * K)
    out = torch.sparse.mm(flat.to_sparse_csr(), weight.reshape(O, -1).t())
    return out.reshape(N, Hp, Wp, O).permute(0, 3, 1, 2)


def variants(module: nn.Module, s: torch.Tensor) -> dict[str, object]:
    """Step functions (no arguments) computing the layer's output on spikes ``s``, by path."""
    w = module.weight.detach()
    if isinstance(module, nn.Linear):
        flat = s.reshape(s.shape[0], -1)
        wb, fb = w.to(torch.bfloat16), flat.to(torch.bfloat16)
        return {"dense": lambda: F.linear(flat, w), "bf16": lambda: F.linear(fb, wb),
                "sparse": lambda: sparse_mm(flat, w), "gathered": lambda: gathered_linear(flat, w)}
    pad = module.padding[0]
    sc = s.contiguous(memory_format=torch.channels_last)
    wb, sb = w.to(torch.bfloat16), sc.to(torch.bfloat16)
    return {"dense": lambda: F.conv2d(sc, w, padding=pad), "bf16": lambda: F.conv2d(sb, wb, padding=pad),
            "sparse": lambda: sparse_conv(s, w, pad), "gathered": lambda: gathered_conv(s, w, pad)}


def measure(net: Net, x: torch.Tensor, repeats: int, warmup: int, rates: tuple[float, ...] = RATES) -> list[dict]:
    """One row per (layer, input rate): the rate, ms per forward of each path, speedups over dense."""
    rows = []
    gen = torch.Generator().manual_seed(0)
    for label, (module, s) in spike_inputs(net, x).items():
        inputs = [("net", s)] + [(f"{r:.0%}", (torch.rand(s.shape, generator=gen) < r).to(s.dtype)) for r in rates]
        for source, inp in inputs:
            steps = variants(module, inp)
            dense = steps["dense"]()
            err = {k: float((f().float() - dense).abs().max()) for k, f in steps.items() if k != "dense"}
            times = round_robin(steps, repeats, warmup)
            ms = {k: 1e3 / per_second(v, 1) for k, v in times.items()}
            rows.append({"net": net.name, "layer": label, "input": source, "rate": float(inp.mean()),
                         "rows": int(inp.shape[0]), "ms": ms,
                         "speedup": {k: ms["dense"] / v for k, v in ms.items() if k != "dense"},
                         "max_abs_diff": err})
    return rows


def main(argv: list[str] | None = None) -> dict:
    """Parse the command line, run with ``--threads`` torch threads (restored after)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="the small net at T=2, batch 4, 1 round: code paths only")
    ap.add_argument("--json", help="also write the numbers to this file")
    args = ap.parse_args(argv)
    with torch_threads(args.threads):
        return _run(args)


def _run(args: argparse.Namespace) -> dict:
    repeats, warmup = (1, 0) if args.quick else (args.repeats, args.warmup)
    info = machine(args.threads)
    rows = []
    for net in nets(args.quick):
        data = snnkit.data.load_dataset(net.dataset, size=net.size, seed=0)
        rows += measure(net, data.train.x[: net.batch], repeats, warmup)
    info["load_average_1min_after"] = round(os.getloadavg()[0], 2)
    print(f"spike-input layers: dense against event-driven paths ({info['cpu_model']}), {args.threads} thread(s), "
          f"{repeats} rounds, load {info['load_average_1min']} -> {info['load_average_1min_after']}")
    paths = ("bf16", "sparse", "gathered")
    print(table(["net", "layer", "input", "rate", "dense ms"] + [f"{p} x" for p in paths] + ["fastest"],
                [[r["net"], r["layer"], r["input"], f"{r['rate']:.3f}", r["ms"]["dense"]]
                 + [r["speedup"][p] for p in paths] + [min(r["ms"], key=r["ms"].get)] for r in rows]))
    print("x: dense time / the path's time (above 1: the path is faster)")
    wins = [r for r in rows if r["input"] == "net" and min(r["ms"], key=r["ms"].get) not in ("dense", "bf16")]
    result = {"machine": info, "repeats": repeats, "rows": rows, "event_driven_wins_at_net_rates": len(wins)}
    write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()

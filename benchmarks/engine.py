"""Engine benchmark: snnkit against the idiomatic snntorch per-step loop, in one run.

Net: conv(1->16, 3x3)-LIF-maxpool, conv(16->32)-LIF-maxpool, fc(512->10)-LIF on 16x16
digits; batch 128, T = 25, beta 0.9, threshold 1, subtractive reset, direct input,
arctan surrogate, snntorch's ``ce_rate_loss`` and Adam for both. Prints samples/s of
inference and training for each engine, the ratios against snntorch, and whether the
spikes are identical.

    python benchmarks/engine.py [--repeats 5] [--threads 2] [--json out.json]

snnkit variants measured:
  * ``eager``: the default engine (whole-sequence LIF autograd function, stateless layers
    over all steps at once, first layer computed once for direct input);
  * ``compiled``: the same model through :func:`snnkit.engine.compile_model` (inference
    only; skipped with ``--no-compile``).
"""
from __future__ import annotations

import argparse
import json
import time

import snntorch as snn
import torch
from snntorch import functional as SF
from torch import nn

import snnkit
from snnkit import encoding
from snnkit.models import NeuronSpec, VGGSpec, build

T, BATCH = 25, 128


class SnntorchNet(nn.Module):
    """The reference: snntorch's tutorial-style per-step loop."""

    def __init__(self, beta: float = 0.9) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1, bias=False)
        self.lif1 = snn.Leaky(beta=beta)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1, bias=False)
        self.lif2 = snn.Leaky(beta=beta)
        self.fc = nn.Linear(512, 10, bias=False)
        self.lif3 = snn.Leaky(beta=beta)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, 1, 16, 16) -> (T, B, 10)
        mem1, mem2, mem3 = self.lif1.init_leaky(), self.lif2.init_leaky(), self.lif3.init_leaky()
        out = []
        for _ in range(T):
            spk1, mem1 = self.lif1(self.conv1(x), mem1)
            spk2, mem2 = self.lif2(self.conv2(self.pool(spk1)), mem2)
            spk3, mem3 = self.lif3(self.fc(self.pool(spk2).flatten(1)), mem3)
            out.append(spk3)
        return torch.stack(out)


def snnkit_net(seed: int = 0):
    spec = VGGSpec(
        in_shape=(1, 16, 16), num_classes=10, features=(16, "P", 32, "P"), readout="spike",
        neuron=NeuronSpec(beta=0.9, threshold=1.0, reset="subtract", surrogate="arctan"),
    )
    return build(spec, seed=seed)


def copy_weights(src: nn.Module, dst: SnntorchNet) -> None:
    convs = [m for m in src.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        for a, b in zip(convs, [dst.conv1, dst.conv2, dst.fc]):
            b.weight.copy_(a.weight)


def throughputs(steps: dict, repeats: int, warmup: int = 2) -> dict[str, float]:
    """Median samples/s of each step function, timed round-robin so that a slow spell of
    the machine hits every variant alike."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    times: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            t0 = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - t0)
    return {k: BATCH / sorted(v)[len(v) // 2] for k, v in times.items()}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile variant")
    ap.add_argument("--json", help="also write the numbers to this file")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    data = snnkit.data.load_dataset("digits", size=16, seed=0)
    x, y = data.train.x[:BATCH], data.train.y[:BATCH]
    loss_fn = SF.ce_rate_loss()

    ours, ref = snnkit_net(), SnntorchNet()
    copy_weights(ours, ref)
    with torch.no_grad():
        s_ours, s_ref = ours(encoding.direct(x, T)), ref(x)
    identical = bool(torch.equal(s_ours, s_ref))
    spike_rate = float(s_ours.mean())

    def infer(model, inp):
        def step():
            with torch.no_grad():
                model(inp)
        return step

    def train(model, inp):
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)

        def step():
            opt.zero_grad(set_to_none=True)
            loss_fn(model(inp), y).backward()
            opt.step()
        return step

    xd = encoding.direct(x, T)
    steps = {
        "snntorch_infer": infer(ref, x),
        "snntorch_train": train(ref, x),
        "snnkit_infer": infer(ours, xd),
        "snnkit_train": train(ours, xd),
    }
    if not args.no_compile:
        from snnkit.engine import compile_model

        fast = compile_model(snnkit_net())
        with torch.no_grad():
            identical = identical and bool(torch.equal(fast(xd), s_ref))  # also compiles
        steps["snnkit_compiled_infer"] = infer(fast, xd)
    res = throughputs(steps, args.repeats)
    res.update(
        identical_spikes=identical,
        output_spike_rate=spike_rate,
        malloc_tuned=snnkit._alloc.applied,
        threads=args.threads,
        torch=torch.__version__,
    )
    print(f"{'engine':<26}{'inference/s':>12}{'training/s':>12}")
    print(f"{'snntorch per-step loop':<26}{res['snntorch_infer']:>12.0f}{res['snntorch_train']:>12.0f}")
    print(f"{'snnkit':<26}{res['snnkit_infer']:>12.0f}{res['snnkit_train']:>12.0f}")
    if "snnkit_compiled_infer" in res:
        print(f"{'snnkit compiled':<26}{res['snnkit_compiled_infer']:>12.0f}{'-':>12}")
    best_inf = max(res.get("snnkit_compiled_infer", 0), res["snnkit_infer"])
    res["ratio_infer"] = best_inf / res["snntorch_infer"]
    res["ratio_train"] = res["snnkit_train"] / res["snntorch_train"]
    print(f"ratio vs snntorch: inference {res['ratio_infer']:.2f}x (target 4x), "
          f"training {res['ratio_train']:.2f}x (target 2x)")
    print(f"identical spikes: {identical}; malloc tuned: {res['malloc_tuned']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
    return res


if __name__ == "__main__":
    main()

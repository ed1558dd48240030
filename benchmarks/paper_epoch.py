"""Paper epochs: the time of one training epoch of each paper's net at its own T, on this machine.

For each notebook's :data:`snnkit.presets.PAPER_SETTINGS` (preset, neuron, the first T of
its schedule, its encoding) a training step (forward over T steps, MSE or cross-entropy on
the mean output, backward, Adam) is timed on synthetic tensors of the paper's input size:
CIFAR-10 images (3, 32, 32) with direct or rate (Bernoulli) input, and DVS128 Gesture event
frames (T, 2, H, W) at the settings' frame size with about 2% of the pixels active per step.
Steps are timed round-robin over the rows (``--repeats`` rounds after one warm-up), medians.

Printed per row: samples/s of training, the seconds of one epoch extrapolated from them
(``--samples`` per epoch: 45,000 CIFAR-10 training images, the 50,000 less the 10%
validation split; about 1,000 DVS128 Gesture training recordings), and the dense MACs per
sample (:func:`snnkit.metrics.speed.dense_macs`, all T steps). A training step costs about
three times the forward MACs; ``epoch TMAC`` is that, over the epoch's samples. These are
counts, not a speed: any GPU figure derived from them is an estimate, not a measurement.

    python benchmarks/paper_epoch.py [--repeats 3] [--threads 2] [--batch 8] [--json out.json]
    python benchmarks/paper_epoch.py --quick          # T and batch cut down: the code paths only
    python benchmarks/paper_epoch.py --device cuda    # the same rows on a GPU
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import machine, per_second, round_robin, table, torch_threads, write_json  # noqa: E402

from snnkit import encoding  # noqa: E402
from snnkit.metrics.speed import dense_macs  # noqa: E402
from snnkit.models import build, readout  # noqa: E402
from snnkit.presets import PAPER_SETTINGS, PaperSettings  # noqa: E402

EPOCH_SAMPLES = {"cifar10": 45_000, "dvs-gesture": 1_000}
"""Training samples per epoch: CIFAR-10's 50,000 less the 10% validation split; DVS128
Gesture's training split is about 1,000 recordings."""

CLASSES = {"cifar10": 10, "dvs-gesture": 11}


@dataclass(frozen=True)
class Row:
    """One timed configuration: a notebook's paper settings at a batch size."""

    notebook: str
    settings: PaperSettings
    T: int
    batch: int

    @property
    def in_shape(self) -> tuple[int, int, int]:
        if self.settings.dataset == "dvs-gesture":
            size = int(self.settings.data_options.get("size", 32))
            return (2, size, size)
        return (3, 32, 32)


def batch_input(row: Row, device: str, seed: int = 0) -> torch.Tensor:
    """A synthetic model input (T, B, C, H, W) of the row's kind, on ``device``."""
    g = torch.Generator().manual_seed(seed)
    if row.settings.encoding == "events":
        frames = (torch.rand(row.batch, row.T, *row.in_shape, generator=g) < 0.02).float()  # (B, T, 2, H, W)
        return encoding.events(frames.to(device), row.T)
    images = torch.rand(row.batch, *row.in_shape, generator=g).to(device)  # (B, 3, 32, 32)
    return encoding.model_input(images, row.T, row.settings.encoding, generator=g)


def train_step(row: Row, device: str):
    """(step, model, input): one Adam step of the row's preset on a fixed synthetic batch."""
    model = build(row.settings.spec(row.in_shape, CLASSES[row.settings.dataset]), seed=0).to(device)
    x = batch_input(row, device)
    y = torch.arange(row.batch, device=device) % CLASSES[row.settings.dataset]
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    mse = row.settings.training.get("loss") == "mse"
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        logits = readout(model(x), True)
        loss = (F.mse_loss(logits, F.one_hot(y, logits.shape[-1]).float()) if mse
                else F.cross_entropy(logits, y))
        loss.backward()
        opt.step()
        sync()
    return step, model, x


def rows(batch: int, quick: bool) -> list[Row]:
    """One row per notebook's paper settings at the first (largest) T of its schedule."""
    out = []
    for nb, s in PAPER_SETTINGS.items():
        T = 2 if quick else s.timesteps[0]
        out.append(Row(nb, s, T, 2 if quick else batch))
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3, help="round-robin rounds (median over them)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8, help="samples per training step")
    ap.add_argument("--device", default="cpu", help="torch device, e.g. cuda (default cpu)")
    ap.add_argument("--only", default=None, help="comma-separated notebook names (default: all)")
    ap.add_argument("--quick", action="store_true", help="T = 2, batch 2, one round: the code paths only")
    ap.add_argument("--json", help="also write the numbers to this file")
    args = ap.parse_args(argv)
    with torch_threads(args.threads):
        return _run(args)


def _run(args: argparse.Namespace) -> dict:
    todo = rows(args.batch, args.quick)
    if args.only:
        wanted = set(args.only.split(","))
        unknown = sorted(wanted - {r.notebook for r in todo})
        if unknown:
            raise SystemExit(f"--only {args.only!r}: unknown {', '.join(unknown)}; expected some of "
                             f"{', '.join(r.notebook for r in todo)}")
        todo = [r for r in todo if r.notebook in wanted]
    repeats, warmup = (1, 1) if args.quick else (args.repeats, 1)
    info = machine(args.threads)
    info["device"] = args.device if args.device == "cpu" else torch.cuda.get_device_name(args.device)
    steps, macs = {}, {}
    for r in todo:
        step, model, x = train_step(r, args.device)
        steps[r.notebook] = step
        macs[r.notebook] = dense_macs(model, x)
    times = round_robin(steps, repeats, warmup)
    result = {"machine": info, "rows": {}}
    table_rows = []
    for r in todo:
        sps = per_second(times[r.notebook], r.batch)
        n = EPOCH_SAMPLES[r.settings.dataset]
        epoch_tmac = 3 * macs[r.notebook] * n / 1e12
        result["rows"][r.notebook] = {
            "preset": r.settings.preset, "T": r.T, "encoding": r.settings.encoding, "in_shape": list(r.in_shape),
            "batch": r.batch, "train_samples_per_s": sps, "epoch_samples": n, "epoch_seconds": n / sps,
            "macs_per_sample": macs[r.notebook], "epoch_tmac": epoch_tmac,
            "step_seconds": sorted(times[r.notebook]),
        }
        table_rows.append((r.notebook, r.settings.preset, r.T, f"{r.in_shape[1]}x{r.in_shape[2]}", r.batch,
                           round(sps, 3), round(n / sps / 3600, 2), round(macs[r.notebook] / 1e9, 2),
                           round(epoch_tmac, 1)))
    print(f"paper epochs on {info['device']} ({info['processor']}, {args.threads} thread(s), load "
          f"{info['load_average_1min']} before), {repeats} round(s):")
    print(table(["notebook", "preset", "T", "input", "batch", "samples/s", "epoch h", "GMAC/sample",
                 "epoch TMAC"], table_rows))
    info["load_average_1min_after"] = round(os.getloadavg()[0], 2)
    write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()

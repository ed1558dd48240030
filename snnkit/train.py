"""One trainer for SNNs (BPTT with surrogate gradients) and their ANN twins.

::

    cfg = TrainConfig(epochs=5, T=8, encoding="direct")
    history = fit(model, data, cfg)           # data: a snnkit.data.Dataset
    acc = evaluate(model, data.test, cfg)

Runs are deterministic on the CPU for a given seed: the data order and any random
encoding come from generators seeded by ``cfg.seed``, never from global RNG state
(initial weights come from :func:`snnkit.models.build` with its own seed).
"""
from __future__ import annotations

import dataclasses
import functools
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from . import encoding as enc
from . import progress
from .models import Net, NeuronSpec, ResNetSpec, VGGSpec, build, is_spiking, readout
from .recording import recording
from .registry import Registry
from .weights import apply_masks, apply_records, masks_of, quant_records, refresh_weights

__all__ = [
    "DATA_VAL",
    "TrainConfig",
    "History",
    "fit",
    "evaluate",
    "predict",
    "save_checkpoint",
    "load_checkpoint",
    "CheckpointError",
    "CHECKPOINT_SPECS",
    "LOSSES",
    "OPTIMIZERS",
]

LOSSES = ("ce", "mse")
OPTIMIZERS = ("adam", "sgd")


@dataclass(frozen=True)
class TrainConfig:
    """Training settings.

    Attributes:
        epochs: passes over the training split (0 only evaluates).
        lr: learning rate.
        batch_size: samples per step.
        T: time steps for an SNN (ignored by an ANN).
        encoding: how a static batch becomes (T, B, ...) input: "direct", "rate" or
            "latency" (event data always uses its own frames); see
            :func:`snnkit.encoding.model_input`.
        optimizer: "adam" or "sgd" (momentum 0.9).
        weight_decay: L2 penalty.
        loss: "ce" (cross-entropy on the time-averaged output) or "mse" (mean squared
            error between the time-averaged output and the one-hot target).
        cosine: cosine-anneal the learning rate to 0 over the run.
        seed: seeds the data order and random encodings.
        device: "cpu" or "cuda".
        progress: show a progress bar (:mod:`snnkit.progress`; never in headless runs).
        grad_clip: clip the gradient norm to this value (None: off).
    """

    epochs: int = 5
    lr: float = 1e-3
    batch_size: int = 64
    T: int = 8
    encoding: str = "direct"
    optimizer: str = "adam"
    weight_decay: float = 0.0
    loss: str = "ce"
    cosine: bool = True
    seed: int = 0
    device: str = "cpu"
    progress: bool = True
    grad_clip: float | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.epochs, int) and self.epochs >= 0):
            raise ValueError(f"epochs={self.epochs!r}: expected an integer >= 0")
        if not (isinstance(self.T, int) and not isinstance(self.T, bool) and self.T >= 1):
            raise ValueError(f"T={self.T!r}: expected an integer >= 1 (time steps)")
        if not (isinstance(self.batch_size, int) and self.batch_size >= 1):
            raise ValueError(f"batch_size={self.batch_size!r}: expected an integer >= 1")
        if not self.lr > 0:
            raise ValueError(f"lr={self.lr!r}: expected a positive number")
        if self.encoding not in enc.ENCODERS:
            raise ValueError(f"encoding={self.encoding!r}: expected one of {', '.join(enc.ENCODERS)}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss={self.loss!r}: expected one of {LOSSES}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer={self.optimizer!r}: expected one of {OPTIMIZERS}")

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)


@dataclass
class History:
    """Per-epoch record of a run (accuracies are fractions in [0, 1])."""

    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def best_val(self) -> float:
        return max(self.val_acc, default=float("nan"))


class _DataVal:
    """The type of :data:`DATA_VAL`."""

    def __repr__(self) -> str:
        return "DATA_VAL"


#: ``fit``'s default ``val``: validate on ``data.val`` when ``data`` has one (``val=None``
#: skips validation).
DATA_VAL = _DataVal()


def _model_input(model: nn.Module, x: torch.Tensor, cfg: TrainConfig,
                generator: torch.Generator | None = None, noise: enc.InputNoise | None = None,
                noise_generator: torch.Generator | None = None) -> torch.Tensor:
    """``x`` as ``model``'s input at ``cfg.T`` and ``cfg.encoding`` (see :func:`snnkit.encoding.model_input`)."""
    return enc.model_input(x, cfg.T, cfg.encoding, spiking=is_spiking(model), generator=generator, noise=noise,
                           noise_generator=noise_generator)


def _loss(logits: torch.Tensor, y: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "ce":
        return F.cross_entropy(logits, y)
    return F.mse_loss(logits, F.one_hot(y, logits.shape[-1]).to(logits.dtype))


def _logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return readout(model(x), is_spiking(model))


@torch.no_grad()
def predict(model: nn.Module, split, cfg: TrainConfig, *,
            noise: enc.InputNoise | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (N, K) and labels (N,) of a whole split, in order (eval mode, modes restored).

    ``noise``: Gaussian noise added to the static inputs as the first step of encoding
    (:class:`snnkit.encoding.InputNoise`: once per sample, or afresh at every time step),
    drawn from its own seed, apart from the rate spikes (seeded by ``cfg.seed``).
    """
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    noise_gen = None if noise is None else noise.generator()
    outs, ys = [], []
    with recording(model):
        for x, y in split.loader(cfg.batch_size * 2, shuffle=False):
            x = _model_input(model, x.to(cfg.device), cfg, gen, noise, noise_gen)
            outs.append(_logits(model, x).float().cpu())
            ys.append(y)
    return torch.cat(outs), torch.cat(ys)


def evaluate(model: nn.Module, split, cfg: TrainConfig, *, noise: enc.InputNoise | None = None) -> float:
    """Accuracy (fraction in [0, 1]) of ``model`` on a split (``noise``: see :func:`predict`)."""
    logits, y = predict(model, split, cfg, noise=noise)
    return float((logits.argmax(1) == y).float().mean())


def _optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)


def fit(
    model: nn.Module,
    data,
    cfg: TrainConfig,
    *,
    val=DATA_VAL,
    after_step: Callable[[nn.Module], None] | None = None,
    extra_loss: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    desc: str = "train",
) -> History:
    """Train ``model`` in place and return its :class:`History`.

    Args:
        model: an SNN or ANN (:class:`snnkit.models.Net`, or any module with the same
            input/output conventions).
        data: a :class:`snnkit.data.Dataset` (its train and val splits are used) or a
            training :class:`snnkit.data.Split` (then pass ``val``).
        cfg: the settings.
        val: the split validated on after every epoch: :data:`DATA_VAL` (default) means
            ``data.val`` when ``data`` has one, ``None`` skips validation.
        after_step: called after every optimizer step (e.g. to re-apply a pruning mask).
        extra_loss: ``extra_loss(model, x, y)`` added to the loss (e.g. attention transfer).
        desc: progress-bar label.
    """
    train_split = getattr(data, "train", data)
    if val is DATA_VAL:
        val = getattr(data, "val", None)
    model.to(cfg.device).train()
    opt = _optimizer(model, cfg)
    n_batches = -(-len(train_split) // cfg.batch_size)
    sched = (
        torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, cfg.epochs * n_batches))
        if cfg.cosine
        else None
    )
    gen = torch.Generator().manual_seed(cfg.seed)
    hist = History()
    t0 = time.perf_counter()
    epochs = progress.epochs(cfg.epochs, n_batches, desc=desc, show=cfg.progress)  # one bar, see snnkit.progress
    for epoch in epochs:
        total, correct, loss_sum = 0, 0, 0.0
        batches = train_split.loader(cfg.batch_size, shuffle=True, seed=cfg.seed + epoch)
        for x, y in epochs.batches(batches):
            x, y = x.to(cfg.device), y.to(cfg.device)
            inp = _model_input(model, x, cfg, gen)
            logits = _logits(model, inp)
            loss = _loss(logits, y, cfg.loss)
            if extra_loss is not None:
                loss = loss + extra_loss(model, inp, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            if sched is not None:
                sched.step()
            if after_step is not None:
                after_step(model)
            total += len(y)
            correct += int((logits.argmax(1) == y).sum())
            loss_sum += float(loss.detach()) * len(y)
        hist.train_loss.append(loss_sum / max(total, 1))
        hist.train_acc.append(correct / max(total, 1))
        if val is not None:
            hist.val_acc.append(evaluate(model, val, cfg))
        epochs.set_postfix(loss=f"{hist.train_loss[-1]:.3f}", acc=f"{hist.train_acc[-1]:.3f}",
                           val=f"{hist.val_acc[-1]:.3f}" if hist.val_acc else "-")
    hist.seconds = time.perf_counter() - t0
    return hist


# ---------------------------------------------------------------------------------------
# checkpoints: plain tensors and builtins only, so that loading works with weights_only=True

def _kit_spec_from_dict(cls: type, d: dict) -> object:
    """A VGGSpec or ResNetSpec from ``dataclasses.asdict(spec)``: its neuron a NeuronSpec, lists as tuples."""
    fields = dict(d)
    fields["neuron"] = NeuronSpec(**fields["neuron"])
    for key, value in fields.items():
        if isinstance(value, list):
            fields[key] = tuple(value)
    return cls(**fields)


#: Spec type name -> ``from_dict(dataclasses.asdict(spec)) -> spec``: the specs a checkpoint
#: can hold. The builder's VGGSpec and ResNetSpec are here; ``snnkit.interop`` registers
#: ``SequentialSpec.from_dict`` (imported nets) when it is imported, as ``import snnkit`` does.
CHECKPOINT_SPECS: Registry[Callable[[dict], object]] = Registry("checkpoint spec type")
CHECKPOINT_SPECS.register("VGGSpec", functools.partial(_kit_spec_from_dict, VGGSpec))
CHECKPOINT_SPECS.register("ResNetSpec", functools.partial(_kit_spec_from_dict, ResNetSpec))

#: Version of the checkpoint layout written by :func:`save_checkpoint`.
CHECKPOINT_FORMAT = 2


class CheckpointError(ValueError):
    """A file that :func:`load_checkpoint` cannot turn into a model; the message names the
    file and says what is wrong (empty, truncated, not a torch file, wrong content)."""


def save_checkpoint(path: str | os.PathLike, model: Net, **extra) -> Path:
    """Save a model built by :func:`snnkit.models.build` atomically.

    The file holds the spec (as builtins), ``spiking``, the state dict (learned and fitted
    quantization scales and pruning masks included), the names of the masked weights
    (:func:`snnkit.weights.masks_of`), the quantization records
    (:func:`snnkit.weights.quant_records`, as dicts) and ``extra`` (numbers,
    strings, lists, dicts). It is written to a temporary file in the same folder and
    renamed, so an interrupted save never leaves a half-written checkpoint over a good one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    spec = model.spec
    payload = {
        "format": CHECKPOINT_FORMAT,
        "spec_type": type(spec).__name__,
        "spec": dataclasses.asdict(spec),
        "spiking": model.spiking,
        "state_dict": model.state_dict(),
        "masked": sorted(masks_of(model)),
        "quant": {name: rec.as_dict() for name, rec in quant_records(model).items()},
        "extra": extra,
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


#: Keys every checkpoint has, with their types.
_PAYLOAD = {"spec_type": str, "spec": dict, "spiking": bool, "state_dict": dict}


def _first_sentence(e: BaseException, limit: int = 160) -> str:
    """The start of an exception's message on one line (torch's can run to a page)."""
    text = " ".join(str(e).split()) or repr(e)
    cut = text.find(". ")
    text = text[: cut + 1] if 0 < cut < limit else text
    return text if len(text) <= limit else text[:limit] + "..."


def load_checkpoint(path: str | os.PathLike, map_location: str = "cpu") -> tuple[Net, dict]:
    """Rebuild a model saved by :func:`save_checkpoint`; returns ``(model, extra)``.

    Loads with ``weights_only=True``: a checkpoint cannot run code. Masks are re-applied
    (:func:`snnkit.weights.apply_masks`) and quantizers re-attached
    (:func:`snnkit.weights.apply_records`) before the state dict is loaded, so
    the scales and masks come back exactly.

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: the file is empty, truncated, not a torch file, or holds
            something other than a checkpoint of a model snnkit can build (the message
            names the file and the problem).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    where = f"checkpoint {str(path)!r}"
    if path.is_dir():
        raise CheckpointError(f"{where} is a directory; expected a file written by save_checkpoint")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{where} is empty (0 bytes); expected a file written by save_checkpoint")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch.load raises many kinds of errors on a damaged file
        raise CheckpointError(
            f"{where} cannot be read as a torch file ({type(e).__name__}: {_first_sentence(e)}); it is truncated, "
            "corrupt or not a checkpoint"
        ) from e
    if not isinstance(payload, dict):
        raise CheckpointError(f"{where} holds a {type(payload).__name__}; expected the dict save_checkpoint writes")
    wrong = [k for k, kind in _PAYLOAD.items() if not isinstance(payload.get(k), kind)]
    if wrong:
        raise CheckpointError(
            f"{where} lacks or has mistyped {wrong}; expected a dict written by save_checkpoint with "
            + ", ".join(f"{k} ({kind.__name__})" for k, kind in _PAYLOAD.items())
        )
    kind = payload["spec_type"]
    if kind not in CHECKPOINT_SPECS:
        raise CheckpointError(f"{where} has spec type {kind!r}; expected one of {sorted(CHECKPOINT_SPECS)}")
    state = payload["state_dict"]
    try:
        model = build(CHECKPOINT_SPECS.get(kind)(dict(payload["spec"])), spiking=payload["spiking"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{where}: its spec does not build a model ({type(e).__name__}: {_first_sentence(e)})") from e
    try:
        masked = list(payload.get("masked", []))
        missing = [n for n in masked if f"{n}_mask" not in state]
        if missing:
            raise ValueError(f"masked weights {missing} have no mask in the state dict")
        apply_masks(model, {n: state[f"{n}_mask"] for n in masked})
        apply_records(model, dict(payload.get("quant", {})))
        model.load_state_dict(state)
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise CheckpointError(
            f"{where}: its weights do not fit the model its spec builds ({type(e).__name__}: {_first_sentence(e)})"
        ) from e
    refresh_weights(model)
    return model, payload.get("extra", {})

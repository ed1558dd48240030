"""Attention maps and the attention-transfer loss.

Attention-guided compression (Kundu, Datta, Pedram and Beerel 2021) trains a compressed
network to look where a dense, trained *meta-model* looks. Where a network looks at a
layer is its attention map (Zagoruyko and Komodakis 2017): for an activation F of shape
(C, H, W),

    A(F) = vec( sum_c F_c^2 ) / || vec( sum_c F_c^2 ) ||_2        (H*W,), unit L2 norm

and the attention-transfer loss between a student s and the meta-model m, summed over the
chosen layers and averaged over the batch, is

    L_AT = (beta / 2) * sum_layers mean_batch || A(F_s) - A(F_m) ||_2 .

Both maps have unit norm, so one layer's term is at most 2 (opposite maps; maps of
non-negative activations are non-negative, so in practice at most sqrt(2)).

::

    maps = attention_maps(ann, x)                      # {layer: (B, H*W)}
    with AttentionTransfer(meta, student, weight=1000) as at:
        fit(student, data, cfg, extra_loss=at)         # cross-entropy + L_AT

The layers are the activations after every convolution (:func:`attention_layers`): the
ReLUs of an ANN, the LIF layers of an SNN, which share their module names, so the maps of
a network and of its spiking twin can be compared layer by layer. For an SNN the
activation is the firing rate, the spikes averaged over the T steps.
"""
from __future__ import annotations

import contextlib
from typing import Iterator, Mapping, Sequence

import torch
from torch import Tensor, nn

from ..encoding import model_input
from ..models import CONV_TYPES, LIF, Net, is_spiking
from ..recording import recording

__all__ = [
    "attention_map",
    "attention_distance",
    "attention_loss",
    "attention_layers",
    "capture",
    "attention_maps",
    "AttentionTransfer",
]

#: Floor of the norm a map is divided by, so that an all-zero activation gives an all-zero map.
EPS = 1e-12


def attention_map(features: Tensor, *, flatten: bool = True) -> Tensor:
    """The attention map of an activation: channel-summed squares, flattened, L2-normalised.

    Args:
        features: (B, C, H, W), (B, C, L) on sequences (or any (B, C, ...) with spatial
            dimensions).
        flatten: return (B, H*W) (the form the loss uses); False keeps (B, H, W) or (B, L), to show.

    Returns:
        (B, H*W) or (B, L): ``a = sum_c F[:, c]^2`` flattened, divided by its L2 norm per
        sample (an all-zero activation gives an all-zero map).
    """
    if features.dim() < 3:
        raise ValueError(f"features of shape {tuple(features.shape)}: expected (B, C, H, W), "
                         "an activation with spatial dimensions")
    squares = features.pow(2).sum(1)  # (B, H, W)
    a = squares.flatten(1)  # (B, H*W)
    a = a / a.norm(dim=1, keepdim=True).clamp_min(EPS)
    return a if flatten else a.reshape(squares.shape)


def attention_distance(student: Tensor, meta: Tensor) -> Tensor:
    """Per-sample L2 distance ``|| A_s - A_m ||_2`` of two batches of maps (B, N) -> (B,)."""
    if student.shape != meta.shape:
        raise ValueError(f"attention maps of shapes {tuple(student.shape)} and {tuple(meta.shape)}: "
                         "expected the same (B, H*W)")
    return (student - meta).norm(dim=1)


def attention_loss(student: Mapping[str, Tensor], meta: Mapping[str, Tensor], weight: float) -> Tensor:
    """``(weight / 2) * sum_layers mean_batch || A_s - A_m ||_2`` over the layers of ``student``.

    Args:
        student, meta: ``{layer: map (B, H*W)}`` (e.g. from :func:`attention_map`); every
            layer of ``student`` must be in ``meta``.
        weight: beta >= 0, the weight of the term.

    Returns:
        A scalar tensor (differentiable through ``student``).
    """
    if weight < 0:
        raise ValueError(f"weight={weight!r}: expected a number >= 0")
    if not student:
        raise ValueError("no attention maps given; expected at least one layer")
    missing = sorted(set(student) - set(meta))
    if missing:
        raise ValueError(f"meta-model maps lack layers {missing}; it has {sorted(meta)}")
    total = sum(attention_distance(student[n], meta[n]).mean() for n in student)
    return (weight / 2) * total


def attention_layers(model: nn.Module) -> list[str]:
    """Names of the activation modules right after every convolution, in forward order.

    The ReLU (ANN) or LIF layer (SNN) that a convolution (1-D or 2-D,
    :data:`snnkit.models.CONV_TYPES`) feeds: the first activation after it, with batch-norm,
    pooling or dropout between them allowed (an imported net may pool before its neuron).
    Names are shared between a network and its spiking twin. Residual nets are not covered
    (their block outputs are not module outputs of the top-level body).
    """
    layers = list(getattr(getattr(model, "body", None), "layers", []))
    if not layers:
        raise ValueError(f"{type(model).__name__} has no body.layers; expected a network from snnkit.models.build")
    names = {m: n for n, m in model.named_modules()}
    out, after_conv = [], False
    for layer in layers:
        if isinstance(layer, CONV_TYPES):
            after_conv = True
        elif isinstance(layer, (nn.Linear, nn.Flatten)):
            after_conv = False  # what follows is no longer the convolution's map
        elif after_conv and isinstance(layer, (nn.ReLU, LIF)):
            out.append(names[layer])
            after_conv = False
    if not out:
        raise ValueError("the model has no convolution followed by an activation; attention maps need one")
    return out


class _Store:
    """Forward hook keeping a module's output under its name (a class: no closures)."""

    def __init__(self, store: dict[str, Tensor], name: str, spiking: bool) -> None:
        self.store, self.name, self.spiking = store, name, spiking

    def __call__(self, module: nn.Module, inputs: tuple, output: Tensor) -> None:
        self.store[self.name] = output.mean(0) if self.spiking else output


@contextlib.contextmanager
def capture(model: nn.Module, layers: Sequence[str], *, measuring: bool = False) -> Iterator[dict[str, Tensor]]:
    """Record the outputs of the named modules during forward passes.

    Yields a dict that every forward pass fills with ``{name: output}``, an ANN's
    (B, C, H, W) as is (with its autograd graph), an SNN's (T, B, C, H, W) averaged over T
    (the firing rate). A later pass overwrites an earlier one. The hooks are removed on
    exit, also on error. ``measuring``: also eval mode and no gradients, modes restored
    (:func:`snnkit.recording.recording`); otherwise the model trains as it was.
    """
    modules = dict(model.named_modules())
    unknown = [n for n in layers if n not in modules]
    if unknown:
        raise ValueError(f"layers {unknown} are not modules of the model; expected e.g. {attention_layers(model)}")
    store: dict[str, Tensor] = {}
    hooks = [(modules[n], _Store(store, n, is_spiking(model))) for n in layers]
    with recording(model, hooks, eval_mode=measuring, grad=not measuring):
        yield store


@torch.no_grad()
def attention_maps(
    model: nn.Module,
    x: Tensor,
    *,
    layers: Sequence[str] | None = None,
    T: int = 1,
    encoding: str = "direct",
    flatten: bool = True,
) -> dict[str, Tensor]:
    """Attention maps of ``model`` on a batch ``x`` (B, C, H, W) or (B, C, L): ``{layer: (B, H*W)}``
    (or (B, L) on sequences).

    An ANN sees ``x``; an SNN sees ``model_input(x, T, encoding)`` and its maps are those of
    the firing rates. Runs in eval mode (the training flag is restored).

    Args:
        layers: module names (default :func:`attention_layers`).
        T, encoding: time steps and input encoding of an SNN (ignored by an ANN).
        flatten: False gives each map as (B, H, W), to show.
    """
    layers = attention_layers(model) if layers is None else list(layers)
    with capture(model, layers, measuring=True) as acts:
        model(model_input(x, T, encoding, spiking=is_spiking(model)))
    return {n: attention_map(acts[n].float(), flatten=flatten) for n in layers}


class AttentionTransfer:
    """The attention-transfer term for :func:`snnkit.train.fit`'s ``extra_loss``.

    Used as a context manager around training: on entry it hooks the student's attention
    layers, so the maps come from the very forward pass that gives the cross-entropy (no
    second pass); each call then runs the frozen meta-model on the same input (no
    gradient) and returns :func:`attention_loss`::

        with AttentionTransfer(meta, student, weight=1000.0) as at:
            fit(student, data, cfg, extra_loss=at)

    Both networks are ANNs of the same architecture (a compressed student keeps the
    meta-model's shapes under its masks), so the maps line up layer by layer.

    Args:
        meta: the dense, trained meta-model (an ANN); it runs in eval mode, it is not trained.
        student: the network being trained (an ANN).
        weight: beta >= 0 (0 turns the term off and skips the meta-model's pass).
        layers: module names (default :func:`attention_layers` of the student).
    """

    def __init__(self, meta: Net, student: Net, weight: float, layers: Sequence[str] | None = None) -> None:
        for role, net in (("meta", meta), ("student", student)):
            if is_spiking(net):
                raise ValueError(f"{role} is an SNN; attention transfer here is between two ANNs "
                                 "(build them with spiking=False)")
        if not weight >= 0:
            raise ValueError(f"weight={weight!r}: expected a number >= 0 (the attention-transfer beta)")
        self.meta, self.student, self.weight = meta, student, float(weight)
        self.layers = attention_layers(student) if layers is None else list(layers)
        self._stack: contextlib.ExitStack | None = None
        self._acts: dict[str, Tensor] | None = None
        self.last: float = float("nan")  # the last value returned, for logging

    def __enter__(self) -> "AttentionTransfer":
        self._stack = contextlib.ExitStack()
        self._acts = self._stack.enter_context(capture(self.student, self.layers))
        return self

    def __exit__(self, *exc) -> None:
        assert self._stack is not None
        self._stack.close()
        self._stack, self._acts = None, None

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor | None = None) -> Tensor:
        """The term for the student's last forward pass on ``x`` (B, C, H, W)."""
        if self._acts is None:
            raise RuntimeError("AttentionTransfer is not active; use it as `with AttentionTransfer(...) as at:`")
        if model is not self.student:
            raise ValueError("called with a model that is not the student it was built for")
        if self.weight == 0:
            return x.new_zeros(())
        missing = [n for n in self.layers if n not in self._acts]
        if missing or any(self._acts[n].shape[0] != x.shape[0] for n in self.layers):
            raise RuntimeError("the student has not run a forward pass on this batch; call the loss right "
                               "after the student's forward pass, as fit(extra_loss=...) does")
        with capture(self.meta, self.layers, measuring=True) as meta_acts:
            self.meta(x)
        student = {n: attention_map(self._acts[n]) for n in self.layers}
        meta = {n: attention_map(meta_acts[n]) for n in self.layers}
        loss = attention_loss(student, meta, self.weight)
        self.last = float(loss.detach())
        return loss

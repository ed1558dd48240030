"""How a layer's weight is stored, and what it is: the one module that knows.

A Conv or Linear layer of an snnkit model keeps its weight in one of four layouts:

==================  ===========================================  ==============================
layout              stored                                       the forward pass uses
==================  ===========================================  ==============================
plain               parameter ``weight``                         ``weight``
masked              parameter ``weight_orig``, buffer             ``weight_orig * weight_mask``
                    ``weight_mask`` (:mod:`torch.nn.utils.prune`)
quantized           parameter ``weight_fp``, submodule           ``Q(weight_fp)``
                    ``weight_quantizer``
masked, quantized   ``weight_orig``, ``weight_mask``,             ``Q(weight_orig * mask) * mask``
                    ``weight_quantizer``
==================  ===========================================  ==============================

A forward pre-hook puts the used value into ``module.weight`` before every pass (a
forward hook detaches it afterwards, so that models deep-copy and pickle). Between an
optimizer step and the next pass that attribute is stale; the readers here compute the
value from what is stored, so they are right at any time:

* :func:`effective_weight`: the weight the next forward pass uses (masked and quantized).
* :func:`float_weight`: the float parameter the optimizer trains.
* :func:`quantizer_of`, :func:`quant_records`: a layer's quantizer and its
  :class:`QuantRecord` (scheme, bits, scale, codes), which sizes and checkpoints read.
* :func:`masks_of`: every pruning mask.
* :func:`parameter_values`, :func:`count_nonzero`, :func:`count_entries`: every parameter by
  its effective value (a masked weight counts by ``orig * mask``, a quantized one by its
  levels, quantizer scales are not weights), the one non-zero counter.

and the writers: :func:`apply_masks`, :func:`remove_masks`, :func:`attach_quantizer`,
:func:`remove_quantizers`, :func:`apply_records`, :func:`refresh_weights`.

What to prune and how to quantize live above, in :mod:`snnkit.compress`: this module only
stores, so that :mod:`snnkit.train` (checkpoints) and :mod:`snnkit.metrics` (counts, sizes)
can read weights without importing the compression package. The quantizer classes register
themselves in :data:`QUANTIZERS` from :mod:`snnkit.compress.quant`; :func:`apply_records`
rebuilds a quantizer by its registered name.

Layers are chosen by one rule everywhere (:func:`choose_layers`): the Conv and Linear
modules in ``model.named_modules()`` order, minus ``skip``: module names, the tokens
``"first"`` and ``"last"``, or a predicate ``(name, module) -> bool``.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping, NamedTuple, Union

import torch
from torch import Tensor, nn
from torch.nn.utils import prune

from .registry import Registry

__all__ = [
    "FP_NAME",
    "LAYER_TYPES",
    "QUANTIZER_NAME",
    "QUANTIZERS",
    "ParamValue",
    "QuantRecord",
    "Skip",
    "WeightQuantizer",
    "apply_masks",
    "apply_records",
    "attach_quantizer",
    "check_bits",
    "choose_layers",
    "count_entries",
    "count_nonzero",
    "effective_weight",
    "finish_masking",
    "float_weight",
    "has_mask",
    "is_masked",
    "layer_of",
    "masked_float_weight",
    "masks_of",
    "out_axis",
    "parameter_values",
    "quant_records",
    "quantizer_of",
    "refresh_weights",
    "remove_masks",
    "remove_quantizers",
    "symmetric_codes",
    "weight_layers",
]

#: The layers whose weights are masked, quantized and counted: convolutions (any
#: dimension, transposed included) and linear layers.
LAYER_TYPES = (nn.modules.conv._ConvNd, nn.Linear)
#: Name of the float weight parameter of a quantized (unmasked) layer.
FP_NAME = "weight_fp"
#: Name of the quantizer submodule of a quantized layer.
QUANTIZER_NAME = "weight_quantizer"

#: Which layers to leave alone: names, ``"first"``/``"last"``, or ``(name, module) -> bool``.
Skip = Union[str, Iterable[str], Callable[[str, nn.Module], bool], None]


# ---------------------------------------------------------------------------------------
# choosing layers


def _has_weight(module: nn.Module) -> bool:
    return any(k in module._parameters for k in ("weight", "weight_orig", FP_NAME))


def weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every Conv/Linear module with a weight, as ``(name, module)`` in module order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, LAYER_TYPES) and _has_weight(m)]


def choose_layers(model: nn.Module, skip: Skip = None,
                  layers: Callable[[str, nn.Module], bool] | None = None) -> list[tuple[str, nn.Module]]:
    """The Conv/Linear layers an operation applies to, as ``(name, module)`` in module order.

    1. candidates are :func:`weight_layers`;
    2. ``layers(name, module) -> bool``, if given, keeps only those it accepts;
    3. ``skip`` removes layers: a predicate ``(name, module) -> bool`` (true = leave alone),
       or names, where ``"first"`` and ``"last"`` mean the first and last remaining
       candidate (many papers keep the layer that sees the analog input and the output
       layer as they are). A weight's name (``"body.layers.0.weight"``) names its layer too.

    Raises:
        ValueError: a ``skip`` name that is no candidate (the message lists them), or a
            choice that leaves no layer.
    """
    candidates = weight_layers(model)
    if layers is not None:
        candidates = [(n, m) for n, m in candidates if layers(n, m)]
    if skip is None:
        chosen = candidates
    elif callable(skip):
        chosen = [(n, m) for n, m in candidates if not skip(n, m)]
    else:
        names = [n for n, _ in candidates]
        drop: set[str] = set()
        for tok in ([skip] if isinstance(skip, str) else list(skip)):
            base = tok[: -len(".weight")] if isinstance(tok, str) and tok.endswith(".weight") else tok
            if tok == "first":
                drop.update(names[:1])
            elif tok == "last":
                drop.update(names[-1:])
            elif base in names:
                drop.add(base)
            else:
                raise ValueError(f"skip entry {tok!r} is neither 'first', 'last' nor the name of a Conv/Linear "
                                 f"layer; the layers are {names}")
        chosen = [(n, m) for n, m in candidates if n not in drop]
    if not chosen:
        raise ValueError(f"skip={skip!r} leaves no Conv/Linear layer of {type(model).__name__}")
    return chosen


def layer_of(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    """The module owning the (possibly masked or quantized) parameter ``name``, and its short name.

    ``"body.layers.0.weight"`` -> (``model.body.layers[0]``, ``"weight"``).

    Raises:
        ValueError: no such parameter (the message gives examples of names that exist).
    """
    mname, _, pname = name.rpartition(".")
    module = dict(model.named_modules()).get(mname)
    stored = module is not None and (pname in module._parameters or hasattr(module, pname + "_orig")
                                     or (pname == "weight" and FP_NAME in module._parameters))
    if not stored:
        examples = [f"{n}.weight" for n, _ in weight_layers(model)][:3]
        raise ValueError(f"parameter {name!r} is not in the model; expected e.g. {examples}")
    return module, pname


def out_axis(module: nn.Module) -> int:
    """The output-channel dimension of a layer's weight: 1 for a transposed conv, else 0."""
    return 1 if isinstance(module, nn.modules.conv._ConvTransposeNd) else 0


# ---------------------------------------------------------------------------------------
# masks (torch.nn.utils.prune's layout)


def _masked(module: nn.Module) -> list[str]:
    """Short names of the parameters of ``module`` that carry a pruning mask."""
    return [h._tensor_name for h in module._forward_pre_hooks.values() if isinstance(h, prune.BasePruningMethod)]


def has_mask(module: nn.Module, name: str = "weight") -> bool:
    """True if the parameter ``name`` of ``module`` carries a pruning mask."""
    return name in _masked(module) and name + "_orig" in module._parameters and name + "_mask" in module._buffers


def is_masked(model: nn.Module) -> bool:
    """True if any parameter of ``model`` carries a pruning mask."""
    return any(_masked(m) for m in model.modules())


class _DetachMasked:
    """Forward hook: replace each masked ``module.<name>`` (``orig * mask``) by a detached copy.

    The forward pass has already used the attached one (the autograd graph keeps it); the
    attribute left on the module is only read by ``deepcopy``, which refuses non-leaf
    tensors. A class, not a closure, so that the model pickles.
    """

    def __call__(self, module: nn.Module, inputs, output) -> None:
        _detach(module)


def _detach(module: nn.Module) -> None:
    for name in _masked(module):
        value = getattr(module, name, None)
        if isinstance(value, Tensor) and not isinstance(value, nn.Parameter) and value.grad_fn is not None:
            setattr(module, name, value.detach())


def finish_masking(module: nn.Module) -> None:
    """Keep a module that :mod:`torch.nn.utils.prune` has just masked copyable.

    ``torch.nn.utils.prune`` leaves ``module.weight`` as a non-leaf tensor (``orig * mask``),
    which ``copy.deepcopy`` refuses. This stores a detached one and adds (once) a forward hook
    that detaches it again after each pass. Every function that masks a weight calls it.
    """
    _detach(module)
    if not any(isinstance(h, _DetachMasked) for h in module._forward_hooks.values()):
        module.register_forward_hook(_DetachMasked())


def masks_of(model: nn.Module) -> dict[str, Tensor]:
    """Every pruning mask of ``model``: ``{name: 0/1 tensor shaped like the weight}`` (copies)."""
    out = {}
    for mname, m in model.named_modules():
        for p in _masked(m):
            out[f"{mname}.{p}" if mname else p] = getattr(m, p + "_mask").detach().clone()
    return out


def apply_masks(model: nn.Module, mask_dict: Mapping[str, Tensor]) -> nn.Module:
    """Set the masks of ``model`` to ``mask_dict`` (``{name: tensor of 0/1 or bools}``); returns it.

    A weight without a mask gets one; a weight that has one gets it replaced (not combined:
    the model's mask becomes exactly the given one). The masked weights' stored values
    (``weight_orig``) are kept, so a mask that re-enables an entry brings back its old
    value. Typical use: the mask of a trained, pruned net on a freshly built one (a lottery
    ticket), or a mask computed elsewhere. Modifies ``model`` in place.
    """
    for name, mask in mask_dict.items():
        module, p = layer_of(model, name)
        current = getattr(module, p)
        if tuple(mask.shape) != tuple(current.shape):
            raise ValueError(f"mask for {name!r} has shape {tuple(mask.shape)}; expected {tuple(current.shape)}")
        flat = mask.detach().float()
        if not bool(((flat == 0) | (flat == 1)).all()):  # an elementwise check: unique() sorts millions of weights
            values = torch.unique(flat)
            raise ValueError(f"mask for {name!r} has values {values.tolist()[:5]}; expected only 0 and 1")
        mask = mask.detach().to(device=current.device, dtype=current.dtype)
        if p in _masked(module):
            getattr(module, p + "_mask").copy_(mask)
            with torch.no_grad():
                setattr(module, p, getattr(module, p + "_orig") * getattr(module, p + "_mask"))
        else:
            prune.custom_from_mask(module, p, mask)
        finish_masking(module)
    return model


def remove_masks(model: nn.Module) -> nn.Module:
    """Bake every mask into its weight and drop the reparametrisation (in place); returns ``model``.

    Afterwards ``weight`` is a plain parameter again, holding ``orig * mask`` (the masked
    entries are zeros that training may change), and the state dict has the unpruned
    model's keys again.
    """
    for m in model.modules():
        for p in _masked(m):
            prune.remove(m, p)
        for key, hook in list(m._forward_hooks.items()):
            if isinstance(hook, _DetachMasked):
                del m._forward_hooks[key]
    return model


# ---------------------------------------------------------------------------------------
# the quantizer interface and its record


def check_bits(bits: object) -> int:
    """Return ``bits`` as an int, or raise ValueError if it is not an integer >= 1."""
    # bool is an Integral subclass but ``True`` bits is surely a mistake.
    if isinstance(bits, bool) or not isinstance(bits, numbers.Integral) or bits < 1:
        raise ValueError(f"bits must be an integer >= 1, got {bits!r}")
    return int(bits)


def symmetric_codes(bits: int, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> Tensor:
    """The integer codes of the symmetric uniform grid, ascending, as a float tensor.

    ``bits >= 2``: ``-(2^(b-1) - 1), ..., 2^(b-1) - 1`` (``2^b - 1`` codes; the most negative
    two's-complement code is left out so that the grid is symmetric and contains 0).
    ``bits == 1``: ``[-1, +1]`` (a symmetric grid with zero would hold nothing else).
    """
    bits = check_bits(bits)
    if bits == 1:
        return torch.tensor([-1.0, 1.0], dtype=dtype, device=device)
    qmax = 2 ** (bits - 1) - 1
    return torch.arange(-qmax, qmax + 1, dtype=dtype, device=device)


@dataclass(frozen=True, eq=False)
class QuantRecord:
    """How one layer's weight is quantized.

    Attributes:
        scheme: the :data:`QUANTIZERS` name of the quantizer (what rebuilds it).
        bits: bits stored per weight.
        per_channel: one scale per output channel (``True``) or one for the tensor.
        axis: the channel dimension of the weight when ``per_channel``.
        scale: the grid unit, float32 on the CPU: 0-D per tensor, ``(C,)`` per channel.
        codes: the integer codes, ascending (float32, 1-D); the levels are ``scale * codes``.
        options: the quantizer's other constructor keywords (numbers, strings, booleans).
    """

    scheme: str
    bits: int
    per_channel: bool
    axis: int
    scale: Tensor
    codes: Tensor
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def num_levels(self) -> int:
        """Number of levels of the grid (``2^b - 1`` for the symmetric grid, 2 at one bit)."""
        return int(self.codes.numel())

    def levels(self) -> Tensor:
        """The grid: ``(L,)`` per tensor, ``(C, L)`` per channel (one ascending row each)."""
        if self.scale.dim() == 0:
            return self.scale * self.codes
        return self.scale.reshape(-1, 1) * self.codes.unsqueeze(0)

    def as_dict(self) -> dict[str, Any]:
        """Builtins and tensors only (loads with ``torch.load(weights_only=True)``)."""
        return {
            "scheme": self.scheme, "bits": self.bits, "per_channel": self.per_channel, "axis": self.axis,
            "scale": self.scale.clone(), "codes": self.codes.clone(), "options": dict(self.options),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "QuantRecord":
        """The inverse of :meth:`as_dict`.

        Raises:
            ValueError: a key is missing or has the wrong type.
        """
        need = {"scheme": str, "bits": int, "per_channel": bool, "axis": int, "scale": Tensor, "codes": Tensor,
                "options": dict}
        for key, kind in need.items():
            if not isinstance(d.get(key), kind):
                raise ValueError(f"quantization record {dict(d)!r}: {key!r} should be a {kind.__name__}")
        return cls(d["scheme"], d["bits"], d["per_channel"], d["axis"], d["scale"], d["codes"], dict(d["options"]))


class WeightQuantizer(nn.Module):
    """Base class of the quantizers in :data:`QUANTIZERS` (see :mod:`snnkit.compress.quant`).

    Subclasses implement ``forward(w) -> w_q`` (fake-quantized, straight-through gradient)
    and ``scale(w)``; override :meth:`codes` for a grid other than :func:`symmetric_codes`
    and :meth:`options` when the constructor takes keyword options.

    Attributes:
        bits: bits per weight (>= 1).
        per_channel: one scale per slice along ``axis``.
        axis: the channel dimension of the weight.
    """

    def __init__(self, bits: int, *, per_channel: bool = False, axis: int = 0) -> None:
        super().__init__()
        self.bits = check_bits(bits)
        if not isinstance(per_channel, bool):
            raise ValueError(f"per_channel={per_channel!r}: expected True or False")
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise ValueError(f"axis={axis!r}: expected an integer dimension")
        self.per_channel = per_channel
        self.axis = axis

    def forward(self, w: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def scale(self, w: Tensor | None = None) -> Tensor:  # pragma: no cover - abstract
        """The grid unit for the float weight ``w``: 0-D, or per channel (broadcastable)."""
        raise NotImplementedError

    def codes(self) -> Tensor:
        """The integer codes of the grid, ascending (default :func:`symmetric_codes`)."""
        return symmetric_codes(self.bits)

    def options(self) -> dict[str, Any]:
        """The constructor's keyword options beyond ``per_channel`` and ``axis`` (builtins)."""
        return {}

    def record(self, w: Tensor | None = None) -> QuantRecord:
        """This quantizer's :class:`QuantRecord` for the float weight ``w``."""
        with torch.no_grad():
            scale = self.scale(w).detach().float().cpu()
        scale = scale.reshape(-1) if self.per_channel and scale.dim() > 0 else scale.reshape(())
        return QuantRecord(_scheme_of(self), self.bits, self.per_channel, self.axis, scale,
                           self.codes().detach().float().cpu(), dict(self.options()))

    def levels(self, w: Tensor | None = None) -> Tensor:
        """The grid: ``(L,)`` per tensor, ``(C, L)`` per channel."""
        return self.record(w).levels()

    def extra_repr(self) -> str:
        opts = "".join(f", {k}={v!r}" for k, v in self.options().items())
        return f"bits={self.bits}, per_channel={self.per_channel}, axis={self.axis}{opts}"


#: Name -> quantizer class (or factory) ``cls(weight, bits, *, per_channel=False, axis=0, **options)``.
#: Filled by :mod:`snnkit.compress.quant` (uniform, uniform-channel, vanilla, rescaw, duq).
QUANTIZERS: Registry[Callable[..., WeightQuantizer]] = Registry("quantizer")


def _scheme_of(q: WeightQuantizer) -> str:
    """The :data:`QUANTIZERS` name of ``q``'s class (the first name registered for it)."""
    for name in QUANTIZERS:
        if QUANTIZERS.get(name) is type(q):
            return name
    raise ValueError(
        f"{type(q).__name__} is not registered in QUANTIZERS ({', '.join(QUANTIZERS)}); register the class "
        "with @QUANTIZERS.register(name) so that records and checkpoints can name it"
    )


# ---------------------------------------------------------------------------------------
# quantizers attached to layers


def quantizer_of(module: nn.Module) -> WeightQuantizer | None:
    """The quantizer attached to ``module``, or None."""
    q = module._modules.get(QUANTIZER_NAME)
    return q if isinstance(q, WeightQuantizer) else None


def float_weight(module: nn.Module) -> nn.Parameter:
    """The float weight parameter the optimizer trains: ``weight_fp`` (quantized layer),
    ``weight_orig`` (masked layer) or ``weight``.

    Raises:
        ValueError: ``module`` has no weight parameter.
    """
    for name in (FP_NAME, "weight_orig", "weight"):
        p = module._parameters.get(name)
        if isinstance(p, nn.Parameter):
            return p
    raise ValueError(f"{type(module).__name__} has no weight parameter (weight, weight_orig or {FP_NAME})")


def masked_float_weight(module: nn.Module) -> Tensor:
    """The float weight with its pruning mask applied: what a quantizer is fitted to."""
    if has_mask(module):
        return module.weight_orig * module.weight_mask
    return float_weight(module)


def _quantized(module: nn.Module) -> Tensor:
    """Quantizer output for ``module``'s current float weight, masked again if masked."""
    q = quantizer_of(module)
    if has_mask(module):
        mask = module.weight_mask
        return q(module.weight_orig * mask) * mask
    if FP_NAME not in module._parameters:
        # The layer was masked when quantized and its mask has been removed since
        # (torch.nn.utils.prune.remove bakes it into a plain ``weight``): adopt that weight.
        module.register_parameter(FP_NAME, module._parameters.pop("weight"))
    return q(module._parameters[FP_NAME])


class _QuantizeWeight:
    """Forward pre-hook: ``module.weight = quantizer(float weight)`` (masked if masked).

    A class, not a closure, so that quantized models pickle.
    """

    def __call__(self, module: nn.Module, inputs: Any) -> None:
        hooks = list(module._forward_pre_hooks.values())
        mine = next(i for i, h in enumerate(hooks) if h is self)
        if any(isinstance(h, prune.BasePruningMethod) and h._tensor_name == "weight" for h in hooks[mine + 1:]):
            raise RuntimeError(
                f"{type(module).__name__} was pruned after it was quantized: the pruning hook now runs after "
                "the quantizer and would overwrite the quantized weight. Prune first, then quantize "
                "(remove_quantizers, prune, quantize again)"
            )
        module.weight = _quantized(module)


class _DetachQuantized:
    """Forward hook: replace ``module.weight`` by a detached copy after the forward pass.

    The pass has used the attached tensor (the autograd graph keeps it); the attribute left
    behind is only read by ``copy.deepcopy`` and ``pickle``, which refuse non-leaf tensors.
    """

    def __call__(self, module: nn.Module, inputs: Any, output: Any) -> None:
        w = module.__dict__.get("weight")
        if isinstance(w, Tensor) and w.grad_fn is not None:
            module.weight = w.detach()


def attach_quantizer(module: nn.Module, quantizer: WeightQuantizer) -> nn.Module:
    """Quantize ``module.weight`` with ``quantizer`` from now on (in place); returns ``module``.

    The float weight becomes ``weight_fp`` (unless the layer is masked: then it stays
    ``weight_orig`` and the quantizer sees the masked weight), the quantizer the submodule
    ``weight_quantizer``, and the hooks described in the module docstring keep
    ``module.weight`` quantized; it holds the quantized weight at once.

    Raises:
        ValueError: ``module`` already has a quantizer, has no weight parameter, or
            ``quantizer`` is not a :class:`WeightQuantizer`.
    """
    if not isinstance(quantizer, WeightQuantizer):
        raise ValueError(f"quantizer: expected a WeightQuantizer, got {type(quantizer).__name__}")
    if quantizer_of(module) is not None:
        raise ValueError(f"{type(module).__name__} already has a quantizer ({quantizer_of(module)!r}); "
                         "remove_quantizers first")
    w = float_weight(module)
    if not has_mask(module):
        del module._parameters["weight"]
        module.register_parameter(FP_NAME, w)
    module.add_module(QUANTIZER_NAME, quantizer.to(device=w.device))
    module.register_forward_pre_hook(_QuantizeWeight())
    module.register_forward_hook(_DetachQuantized())
    with torch.no_grad():
        module.weight = _quantized(module)
    return module


def _quantized_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in model.named_modules() if quantizer_of(m) is not None]


def quant_records(model: nn.Module) -> dict[str, QuantRecord]:
    """``{module name: QuantRecord}`` for every quantized layer, in module order."""
    out = {}
    for name, m in _quantized_modules(model):
        with torch.no_grad():
            out[name] = quantizer_of(m).record(masked_float_weight(m))
    return out


def remove_quantizers(model: nn.Module, bake: bool = True) -> dict[str, QuantRecord]:
    """Detach every quantizer of ``model`` (in place); returns the records they had.

    With ``bake`` (default) each layer keeps its quantized values as its float weight
    (like ``torch.nn.utils.prune.remove``); otherwise it gets its float weight back. A
    masked layer stays masked (its ``weight_orig`` takes the values).
    """
    records = quant_records(model)
    for _, m in _quantized_modules(model):
        with torch.no_grad():
            value = _quantized(m).detach() if bake else None
        for hooks, kind in ((m._forward_pre_hooks, _QuantizeWeight), (m._forward_hooks, _DetachQuantized)):
            for key in [k for k, h in hooks.items() if isinstance(h, kind)]:
                del hooks[key]
        del m._modules[QUANTIZER_NAME]
        if has_mask(m):
            if value is not None:
                m.weight_orig.data.copy_(value)
            with torch.no_grad():
                m.weight = m.weight_orig * m.weight_mask
        else:
            p = m._parameters.pop(FP_NAME)
            m.__dict__.pop("weight", None)
            if value is not None:
                p.data.copy_(value)
            m.register_parameter("weight", p)
    return records


def apply_records(model: nn.Module, records: Mapping[str, QuantRecord | Mapping[str, Any]]) -> nn.Module:
    """Attach the quantizers ``records`` describe to the named layers of ``model`` (in place); returns it.

    Each quantizer is built by its scheme from the layer's current (masked) float weight,
    so fixed scales are fitted anew; load a state dict afterwards to restore saved or
    learned scales exactly (as :func:`snnkit.train.load_checkpoint` does). Records may be
    :class:`QuantRecord` objects or their :meth:`~QuantRecord.as_dict` form.

    Raises:
        ValueError: a name is not a module with a weight, or a scheme is unknown.
    """
    modules = dict(model.named_modules())
    for name, rec in records.items():
        rec = rec if isinstance(rec, QuantRecord) else QuantRecord.from_dict(rec)
        m = modules.get(name)
        if m is None or not _has_weight(m):
            raise ValueError(f"quantization record for {name!r}: no layer with a weight of that name in the model")
        factory = QUANTIZERS.get(rec.scheme)
        q = factory(masked_float_weight(m).detach(), rec.bits, per_channel=rec.per_channel, axis=rec.axis,
                    **dict(rec.options))
        attach_quantizer(m, q)
    return model


# ---------------------------------------------------------------------------------------
# reading weights


@torch.no_grad()
def effective_weight(module: nn.Module, name: str | None = None) -> Tensor:
    """The weight the next forward pass uses, detached: masked and quantized as attached.

    ``effective_weight(layer)`` for a Conv/Linear module, or ``effective_weight(model,
    "body.layers.0.weight")`` for a weight named in a model. Computed from what is stored
    (``weight_fp``/``weight_orig``, mask, quantizer), so it is right after optimizer steps
    and state-dict loads, when ``module.weight`` still holds the previous pass's value.

    Raises:
        ValueError: ``name`` is not a weight of ``module``.
    """
    if name is not None:
        module, pname = layer_of(module, name)
        if pname != "weight":
            value = getattr(module, pname + "_orig") * getattr(module, pname + "_mask") \
                if pname in _masked(module) else getattr(module, pname)
            return value.detach()
    if quantizer_of(module) is not None:
        return _quantized(module).detach()
    if has_mask(module):
        return (module.weight_orig * module.weight_mask).detach()
    return float_weight(module).detach()


@torch.no_grad()
def refresh_weights(model: nn.Module) -> nn.Module:
    """Recompute ``module.weight`` of every masked or quantized layer from what is stored
    (e.g. after ``load_state_dict``), as a forward pass would; returns ``model``."""
    for m in model.modules():
        if quantizer_of(m) is not None or has_mask(m):
            m.weight = effective_weight(m)
    return model


class ParamValue(NamedTuple):
    """One parameter of a model by its effective value (see :func:`parameter_values`)."""

    module_name: str
    name: str  # logical name: "weight" whatever the layout, "bias" for a masked bias_orig
    module: nn.Module
    value: Tensor


def parameter_values(model: nn.Module) -> Iterator[ParamValue]:
    """Every distinct parameter of ``model`` by the value the model computes with.

    A layer's weight is reported once, as ``weight``, with :func:`effective_weight`
    (plain, masked, quantized or both); any other masked parameter (``bias_orig``) as its
    short name times its mask. The scales of quantizers are not reported: they describe
    the weights' grid, they are not weights. Shared parameters appear once. Buffers never.
    """
    seen = {id(p) for m in model.modules() if isinstance(m, WeightQuantizer) for p in m.parameters()}
    for mname, module in model.named_modules():
        if isinstance(module, WeightQuantizer):
            continue
        try:
            weight = float_weight(module)
        except ValueError:
            weight = None
        for pname, p in module.named_parameters(recurse=False):
            if id(p) in seen:
                continue
            seen.add(id(p))
            logical, value = pname, p
            if p is weight:
                logical, value = "weight", effective_weight(module)
            elif pname.endswith("_orig"):
                base = pname[: -len("_orig")]
                mask = getattr(module, base + "_mask", None)
                if isinstance(mask, Tensor):
                    logical, value = base, p * mask
            yield ParamValue(mname, logical, module, value.detach())


def _counted(model: nn.Module, weights_only: bool) -> Iterator[Tensor]:
    for entry in parameter_values(model):
        if not weights_only or (entry.name == "weight" and isinstance(entry.module, LAYER_TYPES)):
            yield entry.value


def count_nonzero(model: nn.Module, *, weights_only: bool = False) -> int:
    """Non-zero entries of the parameters, by their effective values (:func:`parameter_values`).

    A masked weight counts its unmasked non-zero entries, a quantized one its entries off
    the zero level. ``weights_only``: only the Conv/Linear weights (no biases, batch-norm,
    LIF leaks and thresholds).
    """
    return int(sum(int(torch.count_nonzero(v)) for v in _counted(model, weights_only)))


def count_entries(model: nn.Module, *, weights_only: bool = False) -> int:
    """All entries that :func:`count_nonzero` looks at, zero or not (its denominator)."""
    return int(sum(v.numel() for v in _counted(model, weights_only)))

"""Helpers used inside every snnkit notebook: validated config, seeding, recording.

A notebook follows one convention so that a person can explore it in JupyterLab and the
runner (``python -m snnkit run``) can regenerate its numbers and figures headlessly:

1. One code cell tagged ``parameters`` holds literal assignments only. It always sets the
   five common parameters ``profile``, ``seed``, ``device``, ``dataset`` and ``out_dir``,
   plus the notebook's own knobs. A numeric knob defaults to ``None``, meaning "take the
   profile's value"; an explicit value (typed in the cell or passed with ``-p``) wins::

       profile = "smoke"
       seed = 0
       device = "auto"
       dataset = "digits"
       out_dir = None
       epochs = None
       sparsity = None

   ``dataset`` and ``device`` may be None too: then the profile's ``PROFILE_DEFAULTS``
   entry names them (a ``paper`` profile names the paper's data set), and ``device``
   defaults to ``"cpu"`` for smoke and full and ``"auto"`` (a GPU when present) for the
   paper profiles.

2. The next cell turns them into a validated, read-only config and sets up the run::

       from snnkit.notebook import make_config, setup, nonneg_int, fraction
       SPEC = {"epochs": nonneg_int(), "sparsity": fraction()}
       PROFILE_DEFAULTS = {"smoke": {"epochs": 1, "sparsity": 0.5},
                           "full": {"epochs": 30, "sparsity": 0.9}}
       cfg = make_config(globals(), SPEC, PROFILE_DEFAULTS, datasets=("digits",))
       rec = setup(cfg)

   A notebook that runs its paper's own data adds ``"paper"`` (the paper's data set and
   settings, see :data:`snnkit.presets.PAPER_SETTINGS`) and ``"paper-smoke"`` (the few
   values that shrink it for tests) to ``PROFILE_DEFAULTS``, and lists the data set in
   ``datasets``. A data set read from files is checked at this cell: missing files stop
   the run here, with the folder looked in and the layout expected.

3. Key numbers go through ``rec.record(name, value)`` (written to ``results.json``) and
   figures through ``rec.save_figure(fig, name)`` (written to ``figures/NAME.png``).

When the notebook is opened by hand ``out_dir`` is None and results go to
``<repo>/out/interactive/<notebook name>`` (an ignored folder), never into ``notebooks/``.
"""

from __future__ import annotations

import importlib.util
import json
import math
import numbers
import os
import random
import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..claims import Claim, Verdict, decide
from ..datafiles import require

PROFILES: tuple[str, ...] = ("smoke", "full", "paper", "paper-smoke")
"""Run profiles: ``smoke`` is seconds-long for tests, ``full`` reproduces the study on the
kit's own data, ``paper`` runs the paper's data set, network and settings (on a GPU when one
is present), and ``paper-smoke`` is ``paper`` shrunk for tests: the ``paper`` values
overlaid with the notebook's ``PROFILE_DEFAULTS["paper-smoke"]`` (fewer epochs, smaller
subsets), with the same data path and network."""

PAPER_PROFILES: tuple[str, ...] = ("paper", "paper-smoke")
"""The profiles that run a paper's own data: their ``device`` defaults to ``"auto"``."""

PROFILE_COMMON: tuple[str, ...] = ("dataset", "device")
"""Common parameters that ``PROFILE_DEFAULTS`` may set too; they apply where the
``parameters`` cell has None (a paper profile names its data set this way)."""

DEVICES: tuple[str, ...] = ("cpu", "cuda", "auto")
"""Accepted values of the ``device`` parameter; ``auto`` picks cuda when available."""

COMMON_PARAMETERS: tuple[str, ...] = ("profile", "seed", "device", "dataset", "out_dir")
"""Parameters every notebook's ``parameters`` cell must define."""

HEADLESS_ENV = "SNNKIT_HEADLESS"
"""Environment variable the runner sets to ``1`` for the kernels it starts."""

REPO_ROOT = Path(__file__).resolve().parents[2]
"""Root of the checkout this package was imported from."""

INTERACTIVE_OUT = REPO_ROOT / "out" / "interactive"
"""Parent of the default output folder of notebooks opened by hand (``out_dir=None``)."""


class ConfigError(ValueError):
    """A parameter has a value the notebook does not accept; the message says which."""


# --------------------------------------------------------------------------- parameters


def _fmt_bound(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


@dataclass(frozen=True)
class Param:
    """The check one notebook parameter must pass.

    Attributes:
        kind: ``int``, ``float``, ``bool``, ``str`` or ``list`` (each item checked by
            ``item``); None when only ``choices`` matter.
        min, max: inclusive bounds by default; see ``min_inclusive``/``max_inclusive``.
        choices: when non-empty, the value must be one of these.
        item: for ``kind=list``, the check applied to every item.
        min_len: for ``kind=list``, the least number of items.
        nullable: accept None as the final value (after profile defaults are applied).
        help: one line shown by ``python -m snnkit list`` readers and error messages.
    """

    kind: type | None = None
    min: float | None = None
    max: float | None = None
    min_inclusive: bool = True
    max_inclusive: bool = True
    choices: tuple[Any, ...] = ()
    item: Param | None = None
    min_len: int = 1
    nullable: bool = False
    help: str = ""

    def __post_init__(self) -> None:
        if self.kind not in (None, int, float, bool, str, list):
            raise TypeError(f"Param kind={self.kind!r}: expected int, float, bool, str, list or None")
        if self.kind is list and self.item is None:
            raise TypeError("Param kind=list needs item=Param(...) describing each item")
        if self.kind is None and not self.choices:
            raise TypeError("Param needs a kind or non-empty choices")

    def or_none(self) -> Param:
        """The same check, also accepting None."""
        return replace(self, nullable=True)

    # -- description ---------------------------------------------------------------
    def _range_text(self) -> str:
        lo, hi = self.min, self.max
        if lo is not None and hi is not None:
            left = "[" if self.min_inclusive else "("
            right = "]" if self.max_inclusive else ")"
            return f" in {left}{_fmt_bound(lo)}, {_fmt_bound(hi)}{right}"
        if lo is not None:
            return f" {'>=' if self.min_inclusive else '>'} {_fmt_bound(lo)}"
        if hi is not None:
            return f" {'<=' if self.max_inclusive else '<'} {_fmt_bound(hi)}"
        return ""

    def describe(self, plural: bool = False) -> str:
        """What this parameter accepts, in words, e.g. ``an integer >= 1``."""
        if self.choices:
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        elif self.kind is int:
            text = ("integers" if plural else "an integer") + self._range_text()
        elif self.kind is float:
            text = ("numbers" if plural else "a number") + self._range_text()
        elif self.kind is bool:
            text = "True or False"
        elif self.kind is str:
            text = "strings" if plural else "a string"
        else:  # list
            assert self.item is not None
            size = "a non-empty list" if self.min_len == 1 else (
                "a list" if self.min_len == 0 else f"a list of at least {self.min_len} items")
            text = f"{size} of {self.item.describe(plural=True)}"
        return text + (" or None" if self.nullable else "")

    # -- validation ----------------------------------------------------------------
    def _in_range(self, x: float) -> bool:
        if self.min is not None and (x < self.min or (not self.min_inclusive and x == self.min)):
            return False
        if self.max is not None and (x > self.max or (not self.max_inclusive and x == self.max)):
            return False
        return True

    def _check(self, value: Any) -> tuple[bool, Any, str]:
        """(ok, normalised value, extra detail for the error message)."""
        if value is None:
            return self.nullable, None, ""
        if self.choices:
            # True == 1 in python: a bool only matches a bool choice, and vice versa
            ok = any(value == c and isinstance(value, bool) == isinstance(c, bool)
                     for c in self.choices)
            return ok, value, ""
        if self.kind is bool:
            return isinstance(value, bool), value, ""
        if self.kind is str:
            return isinstance(value, str), value, ""
        if self.kind is int:
            ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
            return (ok and self._in_range(int(value))), (int(value) if ok else value), ""
        if self.kind is float:
            ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
            ok = ok and math.isfinite(float(value))
            return (ok and self._in_range(float(value))), (float(value) if ok else value), ""
        # list
        assert self.item is not None
        if not isinstance(value, (list, tuple)) or len(value) < self.min_len:
            return False, value, ""
        out = []
        for i, v in enumerate(value):
            ok, norm, _ = self.item._check(v)
            if not ok:
                return False, value, f" (item {i} is {v!r})"
            out.append(norm)
        return True, tuple(out), ""

    def validate(self, name: str, value: Any) -> Any:
        """Return ``value`` normalised (ints as int, numbers as float, lists as tuples).

        Raises:
            ConfigError: ``NAME=VALUE: expected WHAT`` when the value is not accepted.
        """
        ok, norm, detail = self._check(value)
        if not ok:
            raise ConfigError(f"{name}={value!r}: expected {self.describe()}{detail}")
        return norm


def positive_int(help: str = "") -> Param:
    """An integer >= 1 (timesteps, bits, batch size)."""
    return Param(kind=int, min=1, help=help)


def nonneg_int(help: str = "") -> Param:
    """An integer >= 0 (epochs, warm-up steps)."""
    return Param(kind=int, min=0, help=help)


def int_range(lo: int, hi: int, help: str = "") -> Param:
    """An integer in [lo, hi]."""
    return Param(kind=int, min=lo, max=hi, help=help)


def number(lo: float | None = None, hi: float | None = None, *, lo_inclusive: bool = True,
           hi_inclusive: bool = True, help: str = "") -> Param:
    """A finite number, optionally bounded."""
    return Param(kind=float, min=lo, max=hi, min_inclusive=lo_inclusive,
                 max_inclusive=hi_inclusive, help=help)


def positive_float(help: str = "") -> Param:
    """A number > 0 (learning rate, threshold)."""
    return number(0, None, lo_inclusive=False, help=help)


def fraction(help: str = "") -> Param:
    """A number in [0, 1) (sparsity, pruning ratio: 1 would remove everything)."""
    return number(0, 1, hi_inclusive=False, help=help)


def probability(help: str = "") -> Param:
    """A number in [0, 1]."""
    return number(0, 1, help=help)


def choice(*options: Any, help: str = "") -> Param:
    """One of ``options``."""
    if not options:
        raise TypeError("choice() needs at least one option")
    return Param(choices=tuple(options), help=help)


def boolean(help: str = "") -> Param:
    """True or False."""
    return Param(kind=bool, help=help)


def string(help: str = "") -> Param:
    """Any string."""
    return Param(kind=str, help=help)


def int_list(min: int = 1, max: int | None = None, help: str = "") -> Param:
    """A non-empty list of integers, each >= ``min`` (and <= ``max``), e.g. a T schedule."""
    return Param(kind=list, item=Param(kind=int, min=min, max=max), help=help)


def float_list(lo: float | None = None, hi: float | None = None, *, lo_inclusive: bool = True,
               hi_inclusive: bool = True, help: str = "") -> Param:
    """A non-empty list of numbers, each in the given range (e.g. sparsities to sweep)."""
    return Param(kind=list, item=number(lo, hi, lo_inclusive=lo_inclusive,
                                        hi_inclusive=hi_inclusive), help=help)


def common_spec(datasets: Sequence[str] | None = None) -> dict[str, Param]:
    """The checks of the five common parameters, in order, with their help texts.

    Args:
        datasets: the data sets the notebook accepts; None leaves ``dataset`` out (its
            choices are unknown).
    """
    spec = {
        "profile": Param(choices=PROFILES, help="smoke: seconds, for tests; full: the study's settings; paper: the paper's data set and net (for a GPU); paper-smoke: that path shrunk, for tests"),
        "seed": nonneg_int(help="seeds every generator of the run"),
        "device": Param(choices=DEVICES, help="'auto': cuda when available"),
        "dataset": Param(choices=tuple(datasets or ("",)), help="the data set"),
        "out_dir": string(help="where results.json and figures/ go (None: out/interactive/NOTEBOOK)").or_none(),
    }
    if datasets is None:
        del spec["dataset"]
    return spec


PARAM_HELPERS: tuple[Callable[..., Param], ...] = (
    Param, positive_int, nonneg_int, int_range, number, positive_float, fraction, probability, choice,
    boolean, string, int_list, float_list)
"""Everything that builds a :class:`Param`: the calls a notebook's ``SPEC`` may make, so that
``python -m snnkit list`` can read the spec without running the notebook
(:mod:`snnkit.notebook.spec_reader`)."""


# ------------------------------------------------------------------------------ config


def _show_value(value: Any) -> str:
    """A parameter value as a reader reads it: ``25, 15, 10, 5``, ``0.001``, ``digits``."""
    if isinstance(value, (tuple, list)):
        return ", ".join(_show_value(v) for v in value) if value else "(empty)"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


class Config(Mapping[str, Any]):
    """Read-only parameters of one run: ``cfg.epochs`` or ``cfg["epochs"]``.

    List values are stored as tuples so that nothing can change them in place. Shown in a
    notebook (a cell ending in ``cfg``), a config is a short table of parameter, value and
    meaning (:meth:`table`), in HTML and as aligned text; ``repr`` stays ``Config(...)``.

    Args:
        values: parameter name -> value.
        help: parameter name -> what it means, shown in the table (optional).
    """

    __slots__ = ("_values", "_help")

    def __init__(self, values: Mapping[str, Any], help: Mapping[str, str] | None = None) -> None:
        object.__setattr__(self, "_values", MappingProxyType(dict(values)))
        object.__setattr__(self, "_help", MappingProxyType(dict(help or {})))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_values", "_help"):
            raise AttributeError(name)
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(
                f"config has no parameter {name!r}; it has: {', '.join(self._values)}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(
            f"config is read-only (tried to set {name}={value!r}); change the parameters cell "
            "or pass -p NAME VALUE to the runner")

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self._values.items())
        return f"Config({inner})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Config, (dict(self._values), dict(self._help)))

    def table(self) -> list[tuple[str, str, str]]:
        """One row per parameter: (name, value as text, what it means)."""
        return [(name, _show_value(value), self._help.get(name, "")) for name, value in self._values.items()]

    def _repr_html_(self) -> str:
        import html

        rows = "".join(f"<tr><td style='text-align:left'><code>{html.escape(n)}</code></td>"
                       f"<td style='text-align:left'>{html.escape(v)}</td>"
                       f"<td style='text-align:left'>{html.escape(h)}</td></tr>" for n, v, h in self.table())
        return ("<table><thead><tr><th style='text-align:left'>parameter</th><th style='text-align:left'>"
                "value</th><th style='text-align:left'>meaning</th></tr></thead>"
                f"<tbody>{rows}</tbody></table>")

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.text())

    def text(self) -> str:
        """The table of :meth:`table` as aligned plain text, one parameter per line."""
        rows = [("parameter", "value", "meaning"), *self.table()]
        widths = [max(len(r[i]) for r in rows) for i in range(2)]
        return "\n".join(f"{n:<{widths[0]}}  {v:<{widths[1]}}  {h}".rstrip() for n, v, h in rows)

    def as_dict(self) -> dict[str, Any]:
        """A plain, JSON-friendly copy (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self._values.items()}


def resolve_device(device: str) -> str:
    """Turn the ``device`` parameter into ``"cpu"`` or ``"cuda"``.

    Raises:
        ConfigError: for an unknown value, or ``"cuda"`` on a machine without CUDA.
    """
    if device not in DEVICES:
        raise ConfigError(f"device={device!r}: expected one of {', '.join(map(repr, DEVICES))}")
    if device == "cpu":
        return "cpu"
    cuda = False
    if importlib.util.find_spec("torch") is not None:
        import torch

        cuda = bool(torch.cuda.is_available())
    if device == "cuda" and not cuda:
        raise ConfigError("device='cuda': CUDA is not available on this machine; "
                          "expected 'cpu' or 'auto' (which falls back to cpu)")
    return "cuda" if cuda else "cpu"


def profile_values(profile_defaults: Mapping[str, Mapping[str, Any]], profile: str) -> dict[str, Any]:
    """The defaults ``profile`` applies: its ``PROFILE_DEFAULTS`` entry, and for
    ``paper-smoke`` the ``paper`` entry overlaid with the ``paper-smoke`` one."""
    if profile == "paper-smoke":
        return {**profile_defaults.get("paper", {}), **profile_defaults.get("paper-smoke", {})}
    return dict(profile_defaults.get(profile, {}))


def default_device(profile: str) -> str:
    """The ``device`` a profile uses when neither the parameters cell nor its defaults set
    one: ``"auto"`` (a GPU when present) for the paper profiles, ``"cpu"`` for smoke and full,
    whose recorded numbers the bands in ``tests/`` were measured with."""
    return "auto" if profile in PAPER_PROFILES else "cpu"


def _check_paper_profiles(profile: str, profile_defaults: Mapping[str, Mapping[str, Any]]) -> None:
    if profile in PAPER_PROFILES and "paper" not in profile_defaults:
        declared = ", ".join(map(repr, profile_defaults)) or "none"
        raise ConfigError(f"profile={profile!r}: this notebook declares no paper settings "
                          f"(PROFILE_DEFAULTS has {declared}); expected one of those profiles")
    if profile == "paper-smoke" and "paper-smoke" not in profile_defaults:
        raise ConfigError("profile='paper-smoke': this notebook has no PROFILE_DEFAULTS['paper-smoke']; "
                          "expected the few values that shrink its paper run (epochs, subset sizes), "
                          "which overlay PROFILE_DEFAULTS['paper']")


def make_config(params: Mapping[str, Any], spec: Mapping[str, Param],
                profile_defaults: Mapping[str, Mapping[str, Any]], *,
                datasets: Sequence[str] = ("digits",), check_files: bool = True) -> Config:
    """Validate a notebook's parameters and fill ``None`` knobs from the profile.

    Args:
        params: the notebook's parameters; passing ``globals()`` is fine, only the common
            parameters and the names in ``spec`` are read.
        spec: notebook-specific parameter name -> its check.
        profile_defaults: profile name -> {parameter name -> value}; used for every
            parameter whose value in ``params`` is None. Besides the ``spec`` names an entry
            may set ``dataset`` and ``device`` (:data:`PROFILE_COMMON`). ``paper-smoke``
            overlays ``paper`` (:func:`profile_values`).
        datasets: the dataset names this notebook accepts.
        check_files: check that the data set's files are in place
            (:func:`snnkit.datafiles.require`); a sweep's client, which may not hold the
            data its workers read, passes False.

    Returns:
        A read-only :class:`Config` with the common parameters (``device`` resolved to
        ``"cpu"``/``"cuda"``; a None ``device`` is the profile's, :func:`default_device`)
        followed by the ``spec`` parameters.

    Raises:
        ConfigError: naming the parameter, its value and what is accepted; for a data set
            whose files are missing, the folder looked in, the files and the layout expected.
    """
    clash = set(spec) & set(COMMON_PARAMETERS)
    if clash:
        raise ConfigError(f"spec redefines common parameter(s) {sorted(clash)}; "
                          f"the common ones ({', '.join(COMMON_PARAMETERS)}) are checked already")
    for prof, defaults in profile_defaults.items():
        if prof not in PROFILES:
            raise ConfigError(f"profile_defaults has profile {prof!r}: expected one of "
                              f"{', '.join(map(repr, PROFILES))}")
        unknown = set(defaults) - set(spec) - set(PROFILE_COMMON)
        if unknown:
            raise ConfigError(f"profile_defaults[{prof!r}] names {sorted(unknown)}, which are "
                              f"not in the spec: expected names among {sorted([*spec, *PROFILE_COMMON])}")
    missing = [n for n in (*COMMON_PARAMETERS, *spec) if n not in params]
    if missing:
        raise ConfigError(f"missing parameter(s) {', '.join(missing)}: add them to the "
                          "cell tagged 'parameters' (use None for 'take the profile value')")

    common = common_spec(datasets)
    profile = common["profile"].validate("profile", params["profile"])
    _check_paper_profiles(profile, profile_defaults)
    defaults = profile_values(profile_defaults, profile)
    given = {n: params[n] for n in common}
    if given["device"] is None:
        given["device"] = defaults.get("device", default_device(profile))
    if given["dataset"] is None and "dataset" in defaults:
        given["dataset"] = defaults["dataset"]
    elif given["dataset"] is None:
        raise ConfigError(f"dataset=None: profile {profile!r} has no default for it; "
                          f"expected {common['dataset'].describe()}")
    values: dict[str, Any] = {n: p.validate(n, given[n]) for n, p in common.items()}
    values["device"] = resolve_device(values["device"])
    if check_files:
        try:
            require(values["dataset"])
        except (FileNotFoundError, ImportError) as exc:
            raise ConfigError(str(exc)) from None
    for name, param in spec.items():
        value = params[name]
        if value is None and name in defaults:
            value = defaults[name]
        elif value is None and not param.nullable:
            raise ConfigError(f"{name}=None: profile {profile!r} has no default for it; "
                              f"expected {param.describe()}")
        values[name] = param.validate(name, value)
    helps = {name: param.help for name, param in {**common, **spec}.items() if param.help}
    return Config(values, helps)


# ---------------------------------------------------------------------------- recording


def is_headless() -> bool:
    """True when the notebook runs under the runner (papermill), not in front of a person."""
    return os.environ.get(HEADLESS_ENV, "").strip().lower() in ("1", "true", "yes")


def to_jsonable(value: Any, name: str = "value") -> Any:
    """Convert numbers (python, numpy, torch scalars/tensors), strings and nested
    lists/dicts of them into plain JSON types.

    Raises:
        ValueError: for NaN or infinity (results.json holds finite numbers only).
        TypeError: for anything else, naming the offending value.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        x = float(value)
        if not math.isfinite(x):
            raise ValueError(f"{name}={x!r}: expected a finite number")
        return x
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v, f"{name}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v, f"{name}[{i}]") for i, v in enumerate(value)]
    # numpy / torch scalars and arrays, without importing either here
    if hasattr(value, "tolist") and callable(value.tolist):
        return to_jsonable(value.tolist(), name)
    if hasattr(value, "item") and callable(value.item):
        return to_jsonable(value.item(), name)
    raise TypeError(f"{name}={value!r} ({type(value).__name__}): expected a number, string, "
                    "bool, None, or a list/dict of these")


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and
    ``os.replace``, so that readers see the old or the new content, never a part.

    The file gets the permissions ``open(path, "wb")`` would give it (0666 less the
    umask): the temporary file is created with mode 0666 rather than ``mkstemp``'s 0600.
    """
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(f"could not create a temporary file next to {path}")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _default_notebook_name() -> str:
    # JupyterLab (jupyter_server >= 2) tells the kernel its notebook path in JPY_SESSION_NAME;
    # VS Code sets __vsc_ipynb_file__ in the user namespace.
    session = os.environ.get("JPY_SESSION_NAME", "")
    if session.endswith(".ipynb"):
        return Path(session).stem
    try:
        from IPython import get_ipython

        ip = get_ipython()
        vsc = ip.user_ns.get("__vsc_ipynb_file__") if ip is not None else None
        if vsc:
            return Path(vsc).stem
    except ImportError:
        pass
    return "notebook"


def default_out_dir(notebook: str | None = None) -> Path:
    """``<repo>/out/interactive/<notebook name, or "notebook">``: where a notebook opened by
    hand (``out_dir=None``) writes its results and figures."""
    return INTERACTIVE_OUT / (notebook or _default_notebook_name())


CLAIMS_KEY = "claims"
"""Where :meth:`Recorder.claim` keeps the claims in results.json."""


_SHOWN_ITEMS = 12
"""At most this many items of a recorded list or dict are printed; longer ones are counted."""


def _item(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _recorded_line(name: str, value: Any) -> str:
    """The line :meth:`Recorder.record` prints: ``accuracy = 0.912``, ``widths = 16, 32``,
    ``accuracy_by_bits: 2 = 0.638, 8 = 0.769``; a nested or long value is only counted
    (it is in results.json), never dumped as a Python or JSON literal."""
    if isinstance(value, float):
        return f"{name} = {value:.6g}"
    if not isinstance(value, (list, dict)):
        return f"{name} = {value}"
    items = list(value.values()) if isinstance(value, dict) else value
    if len(items) > _SHOWN_ITEMS or any(isinstance(v, (list, dict)) for v in items):
        kind = "entries" if isinstance(value, dict) else "values"
        return f"{name}: {len(items)} {kind} (in results.json)"
    if isinstance(value, dict):
        return f"{name}: " + (", ".join(f"{k} = {_item(v)}" for k, v in value.items()) or "(none)")
    return f"{name} = " + (", ".join(_item(v) for v in value) or "(none)")


class Recorder:
    """Writes a notebook's key numbers to ``out_dir/results.json`` and figures to
    ``out_dir/figures/NAME.png``, each write atomic (temporary file + ``os.replace``).

    ``results.json`` is rewritten (empty) when the recorder is created, so it always
    describes the current run only.
    """

    def __init__(self, out_dir: str | os.PathLike[str] | None = None,
                 notebook: str | None = None) -> None:
        self.out_dir = Path(out_dir) if out_dir is not None else default_out_dir(notebook)
        self.figures_dir = self.out_dir / "figures"
        self.results_path = self.out_dir / "results.json"
        self._results: dict[str, Any] = {}
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._write()

    @property
    def results(self) -> dict[str, Any]:
        """A copy of everything recorded so far."""
        return json.loads(json.dumps(self._results))

    def _write(self) -> None:
        text = json.dumps(self._results, indent=2, sort_keys=False) + "\n"
        _atomic_write_bytes(self.results_path, text.encode())

    def record(self, name: str, value: Any, *, show: bool = True) -> None:
        """Store ``value`` under ``name``, rewrite results.json and print it for a reader
        (``name = 0.912``; a list or dict as its items, a nested one counted), unless
        ``show=False``: a large table the notebook shows in its own way.

        ``value`` is a number (python, numpy or torch scalar), a string/bool, or a list or
        dict of these. Names may not contain ``.``, which bands use to reach nested values;
        ``claims`` is kept for :meth:`claim`.
        Returns None, so a ``record`` at the end of a cell prints nothing twice.
        """
        if not isinstance(name, str) or not name or "." in name or "/" in name:
            raise ValueError(f"record name {name!r}: expected a non-empty string without '.' or '/'")
        if name == CLAIMS_KEY:
            raise ValueError(f"record name {name!r}: kept for the claims; record a claim with rec.claim(...)")
        stored = to_jsonable(value, name)
        self._results[name] = stored
        self._write()
        if show:
            print(_recorded_line(name, stored))

    def claim(self, claim: Claim, values: Any = None, *, baseline: Any = None, reference: Any = None,
              seeds: Sequence[Any] | None = None, untestable: str | None = None) -> Verdict:
        """Decide ``claim`` from this run's per-seed values (:func:`snnkit.claims.decide`,
        whose arguments these are), store the declaration, the values and the verdict in
        results.json under ``claims`` -> ``claim.key`` (``snnkit report`` pools them across
        runs), and return the :class:`~snnkit.claims.Verdict`. Recording a claim again (a
        cell run twice) replaces it, as :meth:`record` does.

        Raises:
            ValueError: what ``decide`` raises.
        """
        verdict = decide(claim, values, baseline=baseline, reference=reference, seeds=seeds,
                         untestable=untestable)
        recorded = self._results.setdefault(CLAIMS_KEY, {})
        recorded[claim.key] = to_jsonable(verdict.to_dict(), f"{CLAIMS_KEY}.{claim.key}")
        self._write()
        return verdict

    def figure_path(self, name: str) -> Path:
        """Where :meth:`save_figure` writes the figure called ``name``: ``figures/NAME.png``."""
        stem = name[:-4] if name.endswith(".png") else name
        if not stem or any(c in stem for c in "/\\") or stem.startswith("."):
            raise ValueError(f"figure name {name!r}: expected a plain file name such as 'accuracy_vs_bits'")
        return self.figures_dir / f"{stem}.png"

    def save_figure(self, fig: Any, name: str, *, dpi: int = 150, show: bool = True) -> None:
        """Save a matplotlib figure to ``figures/NAME.png`` (dpi 150, tight bbox), show it
        inline once and close it. Returns None, so a cell ending in it prints nothing; the
        file is at :meth:`figure_path`.

        Raises:
            ValueError: the figure draws no data (no line point, marker, bar, image or
                mesh in any axes): a blank plot is a defect, not a result.
        """
        path = self.figure_path(name)
        if not figure_has_data(fig):
            raise ValueError(f"figure {path.stem!r} draws no data (no points, bars, images or meshes "
                             "in any axes); expected a figure that shows something")
        import io

        self.figures_dir.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
        _atomic_write_bytes(path, buf.getvalue())
        if show:
            from IPython.display import display

            display(fig)
        import matplotlib.pyplot as plt

        plt.close(fig)  # displayed once above; the inline backend would show it again


def figure_has_data(fig: Any) -> bool:
    """Whether a matplotlib figure draws any data: a line with points, a scatter or mesh
    collection with entries, a bar or patch of non-zero size, or an image."""
    for ax in fig.axes:
        if any(len(line.get_xdata()) for line in ax.get_lines()):
            return True
        for coll in ax.collections:
            offsets = coll.get_offsets()
            if offsets is not None and len(offsets):
                return True  # scatter points, markers
            if type(coll).__name__ == "PathCollection":
                continue  # a scatter without points: its marker path is no data
            array = coll.get_array()
            if (array is not None and array.size) or coll.get_paths():
                return True  # meshes, filled areas, line collections
        if any(getattr(p, "get_width", lambda: 1)() and getattr(p, "get_height", lambda: 1)() for p in ax.patches):
            return True
        if ax.images:
            return True
    return False


def seed_everything(seed: int) -> None:
    """Seed python's, numpy's and (when installed) torch's generators."""
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:
        pass
    if importlib.util.find_spec("torch") is not None:
        import torch

        torch.manual_seed(seed)  # also seeds every CUDA device


def set_theme() -> None:
    """A print-friendly seaborn theme: white grid, readable fonts, 150 dpi when saved."""
    import seaborn as sns

    sns.set_theme(context="notebook", style="whitegrid", font_scale=1.0,
                  rc={"figure.dpi": 100, "savefig.dpi": 150, "figure.figsize": (6.0, 3.8),
                      "axes.titlesize": 12, "axes.labelsize": 11, "legend.fontsize": 10})


def setup(cfg: Config) -> Recorder:
    """Seed everything from ``cfg.seed``, set the plotting theme and return a
    :class:`Recorder` writing to ``cfg.out_dir`` (or the interactive default)."""
    seed_everything(cfg.seed)
    set_theme()
    return Recorder(cfg.out_dir)

"""Read a notebook's ``SPEC`` and ``PROFILE_DEFAULTS`` without running the notebook.

``python -m snnkit list`` and ``snnkit sweep`` must know what a notebook accepts before
anything runs, so they read the expressions that build its checks instead of executing
its cells. :func:`read_assignments` evaluates such expressions with a small evaluator
that understands only what a parameter spec needs:

* literals: numbers, strings, ``None``/``True``/``False``, tuples, lists, sets and dicts,
  with ``*items`` and ``**mapping`` unpacking, ``-x``, arithmetic on numbers, ``a + b``
  on tuples and lists, and indexing (``COMMON["bits"]``);
* names imported from ``snnkit`` modules (``from snnkit.compress.quant import RESCALE_RULES``,
  ``from snnkit.metrics import hardware``) and attributes of those modules;
* constants assigned earlier at the top level of the same notebook (``SCORING = (...)``,
  ``COMMON = {...}``), themselves read by the same rules;
* calls of the :mod:`snnkit.notebook` parameter helpers (``positive_int(help=...)``,
  ``choice(*SCORING)``, ...; see :data:`~snnkit.notebook.config.PARAM_HELPERS`), of
  ``Param(...).or_none()``, of a registry's ``names()`` and of a few pure builtins
  (``tuple``, ``list``, ``sorted``, ``range``, ``len``, ``min``, ``max``).

Anything else (another call, a comprehension, a lambda, an attribute of a non-snnkit
object, a name bound by a loop or a function) is refused with an error that names the
notebook, the cell, the line and the construct. Importing a ``snnkit`` module runs this
library's code, never the notebook's; no other module is imported.
"""

from __future__ import annotations

import ast
import importlib
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from ..registry import Registry
from .config import PARAM_HELPERS, Param

__all__ = ["Cell", "SpecReadError", "read_assignments", "read_call_argument"]

_PACKAGE = "snnkit"

_BUILTINS: dict[str, Callable[..., Any]] = {
    "tuple": tuple, "list": list, "sorted": sorted, "range": range, "len": len, "min": min, "max": max,
}
"""Builtins a spec may call: pure, and cheap on the small literals a spec holds."""

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
}
_UNARY: dict[type, Callable[[Any], Any]] = {ast.USub: operator.neg, ast.UAdd: operator.pos,
                                            ast.Not: operator.not_}
_MAX_EXPONENT = 64
_MAX_ITEMS = 10_000


class SpecReadError(ValueError):
    """A spec expression uses something the reader does not evaluate; the message names
    the place and the construct."""


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


@dataclass(frozen=True)
class Cell:
    """A code cell to read: its text, and how errors name it (``"04_qpsnn.ipynb, cell 3"``)."""

    source: str
    where: str


@dataclass(frozen=True)
class _Expr:
    """A name bound by ``NAME = expression``, in the cell it was written in."""

    node: ast.expr
    cell: Cell


@dataclass(frozen=True)
class _Import:
    """A name bound by ``import snnkit.x as y`` / ``from snnkit.x import y``."""

    module: str
    attr: str | None  # None: the module itself


@dataclass(frozen=True)
class _Opaque:
    """A name bound by a statement the reader does not evaluate (a loop, a def, ``+=``)."""

    where: str
    line: int


_Binding = _Expr | _Import | _Opaque


def _stored_names(node: ast.AST) -> list[str]:
    names = [n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)]
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        names.append(node.name)
    return names


def _bind(bound: dict[str, _Binding], stmt: ast.stmt, cell: Cell) -> None:
    """Record what the top-level statement ``stmt`` binds, as far as the reader can tell:
    an expression, a snnkit import, or something opaque."""
    opaque = _Opaque(cell.where, stmt.lineno)
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
        bound[stmt.targets[0].id] = _Expr(stmt.value, cell)
    elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
        bound[stmt.target.id] = _Expr(stmt.value, cell)
    elif isinstance(stmt, ast.Import):
        for alias in stmt.names:
            ours = alias.name == _PACKAGE or alias.name.startswith(_PACKAGE + ".")
            if alias.asname is not None:
                bound[alias.asname] = _Import(alias.name, None) if ours else opaque
            else:
                top = alias.name.split(".")[0]
                bound[top] = _Import(top, None) if ours else opaque
    elif isinstance(stmt, ast.ImportFrom):
        module = stmt.module or ""
        ours = stmt.level == 0 and (module == _PACKAGE or module.startswith(_PACKAGE + "."))
        for alias in stmt.names:
            bound[alias.asname or alias.name] = _Import(module, alias.name) if ours else opaque
    else:
        for name in _stored_names(stmt):
            bound[name] = opaque


def _allowed_method(obj: Any, attr: str) -> bool:
    """Methods a spec may call: ``Registry.names``, ``Param.or_none`` and a dict's views."""
    if isinstance(obj, Registry):
        return attr == "names"
    if isinstance(obj, Param):
        return attr == "or_none"
    if isinstance(obj, dict):
        return attr in ("keys", "values", "items")
    return False


class _Evaluator:
    """Evaluates spec expressions by the rules of the module docstring."""

    def __init__(self, bindings: Mapping[str, _Binding], defaults: Mapping[str, Any], cell: Cell,
                 label: str) -> None:
        self.bindings = bindings
        self.defaults = defaults
        self.cell = cell  # where the expression being evaluated was written
        self.label = label  # what is being read, e.g. "SPEC"
        self.values: dict[str, Any] = {}
        self.reading: list[str] = []

    # -- errors -------------------------------------------------------------------------
    def fail(self, node: ast.AST, what: str) -> SpecReadError:
        line = getattr(node, "lineno", None)
        segment = ast.get_source_segment(self.cell.source, node) if line is not None else None
        at = f" (line {line}: {segment})" if segment else ""
        return SpecReadError(f"{self.cell.where}: {self.label} {what}{at}; the runner reads a spec without "
                             "running the notebook, so it may use literals, snnkit.notebook's Param "
                             "helpers, names imported from snnkit, and constants assigned above with the "
                             "same rules")

    # -- names --------------------------------------------------------------------------
    def name(self, node: ast.Name) -> Any:
        key = node.id
        if key in self.values:
            return self.values[key]
        binding = self.bindings.get(key)
        if binding is None:
            if key in self.defaults:
                return self.defaults[key]
            if key in _BUILTINS:
                return _BUILTINS[key]
            raise self.fail(node, f"uses {key!r}, which is neither assigned above, imported from "
                                  "snnkit, nor a name of snnkit.notebook")
        if isinstance(binding, _Opaque):
            place = f"line {binding.line}" if binding.where == self.cell.where else \
                f"{binding.where}, line {binding.line}"
            raise self.fail(node, f"uses {key!r}, which {place} binds in a "
                                  "way the reader does not evaluate (a loop, a def, an augmented "
                                  "assignment, or an import from outside snnkit)")
        if isinstance(binding, _Import):
            value = self.imported(node, binding)
        else:
            if key in self.reading:
                raise self.fail(node, f"{key!r} refers to itself")
            self.reading.append(key)
            outer, self.cell = self.cell, binding.cell
            try:
                value = self.eval(binding.node)
            finally:
                self.reading.pop()
                self.cell = outer
        self.values[key] = value
        return value

    def imported(self, node: ast.AST, binding: _Import) -> Any:
        try:
            module = importlib.import_module(binding.module)
        except ImportError as exc:
            raise self.fail(node, f"imports {binding.module}, which cannot be imported ({exc})") from None
        if binding.attr is None:
            return module
        return self.member(node, module, binding.attr)

    def member(self, node: ast.AST, module: ModuleType, attr: str) -> Any:
        if attr.startswith("_"):
            raise self.fail(node, f"reads the private name {attr!r}")
        if hasattr(module, attr):
            return getattr(module, attr)
        try:  # a submodule not imported by its package: ``from snnkit.metrics import hardware``
            return importlib.import_module(f"{module.__name__}.{attr}")
        except ImportError:
            raise self.fail(node, f"uses {attr!r}, which {module.__name__} does not define") from None

    # -- expressions --------------------------------------------------------------------
    def eval(self, node: ast.expr) -> Any:
        method = getattr(self, f"eval_{type(node).__name__}", None)
        if method is None:
            raise self.fail(node, f"uses a {type(node).__name__} expression")
        return method(node)

    def eval_Constant(self, node: ast.Constant) -> Any:
        return node.value

    def eval_Name(self, node: ast.Name) -> Any:
        return self.name(node)

    def _items(self, nodes: Sequence[ast.expr]) -> list[Any]:
        out: list[Any] = []
        for item in nodes:
            if isinstance(item, ast.Starred):
                value = self.eval(item.value)
                if not isinstance(value, (tuple, list, set, frozenset, range, str, dict)):
                    raise self.fail(item, f"unpacks a {type(value).__name__} with *")
                out.extend(value)
            else:
                out.append(self.eval(item))
            if len(out) > _MAX_ITEMS:
                raise self.fail(item, f"builds a collection of more than {_MAX_ITEMS} items")
        return out

    def eval_Tuple(self, node: ast.Tuple) -> tuple:
        return tuple(self._items(node.elts))

    def eval_List(self, node: ast.List) -> list:
        return self._items(node.elts)

    def eval_Set(self, node: ast.Set) -> set:
        return set(self._items(node.elts))

    def eval_Dict(self, node: ast.Dict) -> dict:
        out: dict[Any, Any] = {}
        for key, value in zip(node.keys, node.values):
            if key is None:
                mapping = self.eval(value)
                if not isinstance(mapping, Mapping):
                    raise self.fail(value, f"unpacks a {type(mapping).__name__} with **")
                out.update(mapping)
            else:
                out[self.eval(key)] = self.eval(value)
        return out

    def eval_UnaryOp(self, node: ast.UnaryOp) -> Any:
        operand = self.eval(node.operand)
        if type(node.op) not in _UNARY or not (_is_number(operand) or isinstance(operand, bool)):
            raise self.fail(node, "applies an operator to something other than a number")
        return _UNARY[type(node.op)](operand)

    def eval_BinOp(self, node: ast.BinOp) -> Any:
        left, right = self.eval(node.left), self.eval(node.right)
        op = type(node.op)
        numbers = _is_number(left) and _is_number(right)
        joins = op is ast.Add and type(left) is type(right) and isinstance(left, (tuple, list, str))
        if op not in _BINARY or not (numbers or joins):
            raise self.fail(node, "uses an operator the reader only applies to numbers (and + to join "
                                  "tuples, lists or strings)")
        if op is ast.Pow and abs(right) > _MAX_EXPONENT:
            raise self.fail(node, f"raises to a power above {_MAX_EXPONENT}")
        try:
            return _BINARY[op](left, right)
        except ArithmeticError as exc:
            raise self.fail(node, f"fails: {exc}") from None

    def eval_Subscript(self, node: ast.Subscript) -> Any:
        value = self.eval(node.value)
        if not isinstance(value, (dict, tuple, list, str)):
            raise self.fail(node, f"indexes a {type(value).__name__}")
        index = self.eval(node.slice)
        try:
            return value[index]
        except (KeyError, IndexError, TypeError) as exc:
            raise self.fail(node, f"indexes with {index!r}, which fails ({type(exc).__name__})") from None

    def eval_Slice(self, node: ast.Slice) -> slice:
        parts = [None if p is None else self.eval(p) for p in (node.lower, node.upper, node.step)]
        return slice(*parts)

    def eval_Attribute(self, node: ast.Attribute) -> Any:
        obj = self.eval(node.value)
        if isinstance(obj, ModuleType):
            if obj.__name__ != _PACKAGE and not obj.__name__.startswith(_PACKAGE + "."):
                raise self.fail(node, f"reads an attribute of {obj.__name__}, which is not part of snnkit")
            return self.member(node, obj, node.attr)
        if _allowed_method(obj, node.attr):
            return getattr(obj, node.attr)
        raise self.fail(node, f"reads .{node.attr} of a {type(obj).__name__}")

    def eval_Call(self, node: ast.Call) -> Any:
        func = self.eval(node.func)
        bound_self = getattr(func, "__self__", None)
        allowed = (any(func is h for h in PARAM_HELPERS) or any(func is b for b in _BUILTINS.values())
                   or (bound_self is not None and _allowed_method(bound_self, getattr(func, "__name__", ""))))
        if not allowed:
            name = getattr(func, "__qualname__", type(func).__name__)
            raise self.fail(node, f"calls {name}, which is not a Param helper, a registry's names(), "
                                  "or one of " + ", ".join(_BUILTINS))
        args = self._items(node.args)
        kwargs: dict[str, Any] = {}
        for kw in node.keywords:
            value = self.eval(kw.value)
            if kw.arg is None:
                if not isinstance(value, Mapping):
                    raise self.fail(kw.value, f"unpacks a {type(value).__name__} with **")
                kwargs.update(value)
            else:
                kwargs[kw.arg] = value
        try:
            return func(*args, **kwargs)
        except (TypeError, ValueError) as exc:
            raise self.fail(node, f"fails: {exc}") from None


def read_assignments(cells: Sequence[Cell], targets: Sequence[str], *,
                     defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The values of the last top-level ``NAME = ...`` of each of ``targets`` in the last cell.

    Args:
        cells: the code cells in notebook order, ending with the one that assigns the
            targets; the names bound by earlier cells and by that cell's statements above
            each target are what its expression may use.
        targets: the names to read (those not assigned in the last cell are left out).
        defaults: names visible when no statement binds them (``snnkit.notebook``'s).

    Returns:
        ``{name: value}`` for every target assigned in the last cell.

    Raises:
        SyntaxError: a cell is not plain Python (an IPython magic).
        SpecReadError: a target's expression uses something the reader refuses; the
            message names the cell, the line and the construct.
    """
    if not cells:
        raise ValueError("cells=[]: expected at least the cell that assigns the targets")
    bound: dict[str, _Binding] = {}
    for cell in cells[:-1]:
        for stmt in ast.parse(cell.source).body:
            _bind(bound, stmt, cell)
    last = cells[-1]
    values: dict[str, Any] = {}
    for stmt in ast.parse(last.source).body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name) \
                and stmt.targets[0].id in targets:
            name = stmt.targets[0].id
            values[name] = _Evaluator(dict(bound), dict(defaults or {}), last, name).eval(stmt.value)
        _bind(bound, stmt, last)
    return values


def read_call_argument(cell: Cell, before: Sequence[Cell], function: str, keyword: str, *,
                       defaults: Mapping[str, Any] | None = None) -> tuple[bool, Any]:
    """The value of ``keyword=`` in the first call of ``function`` in ``cell``.

    Returns:
        ``(False, None)`` when ``cell`` has no such call, ``(True, None)`` when the call
        has no such keyword, ``(True, value)`` otherwise.

    Raises:
        SpecReadError: the argument uses something the reader refuses.
    """
    bound: dict[str, _Binding] = {}
    for earlier in before:
        for stmt in ast.parse(earlier.source).body:
            _bind(bound, stmt, earlier)
    for stmt in ast.parse(cell.source).body:
        for node in ast.walk(stmt):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            if name != function:
                continue
            for kw in node.keywords:
                if kw.arg == keyword:
                    return True, _Evaluator(dict(bound), dict(defaults or {}), cell,
                                            f"{function}({keyword}=...)").eval(kw.value)
            return True, None
        _bind(bound, stmt, cell)
    return False, None

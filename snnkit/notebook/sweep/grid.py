"""The grid of a sweep: parsing ``--grid NAME=V1,V2``, run ids and the points to run."""

from __future__ import annotations

import ast
import hashlib
import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


def split_values(text: str) -> list[str]:
    """Split ``"0.9,[25, 10],'a,b'"`` at the commas that are outside brackets and quotes.

    Raises:
        ValueError: unbalanced brackets or quotes, naming the text.
    """
    parts: list[str] = []
    current: list[str] = []
    depth, quote = 0, ""
    pairs = {")": "(", "]": "[", "}": "{"}
    stack: list[str] = []
    for ch in text:
        if quote:
            current.append(ch)
            if ch == quote:
                quote = ""
            continue
        if ch in "'\"":
            quote = ch
        elif ch in "([{":
            stack.append(ch)
            depth += 1
        elif ch in ")]}":
            if not stack or stack.pop() != pairs[ch]:
                raise ValueError(f"{text!r}: unbalanced {ch!r}")
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    if quote or stack:
        raise ValueError(f"{text!r}: unclosed {quote or stack[-1]!r}")
    parts.append("".join(current))
    return parts


def parse_grid_value(text: str) -> Any:
    """A grid value: a Python literal (``3``, ``0.99``, ``[25, 10, 5]``, ``None``), else the
    bare word as a string (``digits``).

    Raises:
        ValueError: an empty value, or text that looks like a literal but is not one
            (``[1, 2``, ``'a``, ``1..2``).
    """
    stripped = text.strip()
    if not stripped:
        raise ValueError("empty value")
    try:
        return ast.literal_eval(stripped)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        pass
    word = stripped.replace("-", "").replace("_", "").replace("/", "").replace(".", "")
    if word.isalnum() and not stripped[0].isdigit() and not stripped.startswith((".", "-")):
        return stripped
    raise ValueError(f"{stripped!r} is neither a Python literal (3, 0.99, [25, 10], None, "
                     "'text') nor a bare word")


def parse_grid(items: Iterable[str]) -> dict[str, list[Any]]:
    """Read ``["variance_threshold=0.95,0.99", "epochs=1,2"]`` into
    ``{"variance_threshold": [0.95, 0.99], "epochs": [1, 2]}``.

    Values are split at commas outside brackets, so a list value is written
    ``timesteps_schedule=[25,15,10,5],[10,5]``. Parameter names are not checked here
    (:func:`validate` does that against the notebook).

    Raises:
        ValueError: an item without ``=``, a name that is not an identifier, a name given
            twice, an unparsable or repeated value; the message names the item.
    """
    grid: dict[str, list[Any]] = {}
    for item in items:
        name, sep, rest = item.partition("=")
        name = name.strip()
        if not sep:
            raise ValueError(f"--grid {item!r}: expected NAME=VALUE1,VALUE2,... "
                             "e.g. variance_threshold=0.95,0.99")
        if not name.isidentifier():
            raise ValueError(f"--grid {item!r}: {name!r} is not a parameter name")
        if name in grid:
            raise ValueError(f"--grid {item!r}: {name} is given twice; list all its values "
                             f"in one --grid {name}=...")
        try:
            texts = split_values(rest)
        except ValueError as exc:
            raise ValueError(f"--grid {item!r}: cannot read the values: {exc}") from None
        values = []
        for text in texts:
            try:
                value = parse_grid_value(text)
            except ValueError as exc:
                raise ValueError(f"--grid {item!r}: cannot read value {text.strip()!r}: "
                                 f"{exc}") from None
            if value in values:
                raise ValueError(f"--grid {item!r}: value {value!r} is listed twice")
            values.append(value)
        grid[name] = values
    return grid


def _slug(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "-".join(_slug(v) for v in value)
    return str(value)


def run_id(values: Mapping[str, Any], seed: int) -> str:
    """The folder name of one run: ``epochs=1,train_subset=200,seed=0``.

    Values that are not plain numbers or words (lists, strings with odd characters) are
    written simply and a short hash of the exact values is appended, so that two points
    never share a folder.
    """
    text = ",".join([*(f"{k}={_slug(v)}" for k, v in values.items()), f"seed={seed}"])
    plain = all(isinstance(v, (int, float, bool, type(None))) or
                (isinstance(v, str) and v.replace("-", "").replace("_", "").replace(".", "").isalnum())
                for v in values.values())
    safe = "".join(c if c.isalnum() or c in "._=,+-" else "_" for c in text)
    if plain and safe == text and len(text) <= 150:
        return text
    digest = hashlib.sha1(json.dumps([{k: jsonish(v) for k, v in values.items()}, seed],
                                     sort_keys=True).encode()).hexdigest()[:8]
    return f"{safe[:140]}-{digest}"


def jsonish(value: Any) -> Any:
    """A grid value as JSON would hold it: tuples (nested too) become lists."""
    if isinstance(value, (list, tuple)):
        return [jsonish(v) for v in value]
    return value


@dataclass(frozen=True)
class Point:
    """One run of a sweep.

    Attributes:
        run_id: its folder name in the sweep's output folder.
        values: grid parameter -> value, in grid order.
        seed: the ``seed`` parameter.
    """

    run_id: str
    values: dict[str, Any]
    seed: int

    def params(self, fixed: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The parameters injected into the notebook: ``fixed``, the grid values, the seed."""
        return {**(fixed or {}), **self.values, "seed": self.seed}


def expand(grid: Mapping[str, Sequence[Any]], seeds: Sequence[int]) -> list[Point]:
    """Every combination of grid values (first parameter varying slowest) times every seed.

    ``expand({"a": [1, 2]}, [0, 1])`` gives a=1 seed 0, a=1 seed 1, a=2 seed 0, a=2 seed 1.
    """
    names = list(grid)
    points = []
    for combo in itertools.product(*(grid[n] for n in names)):
        values = dict(zip(names, combo))
        points.extend(Point(run_id(values, s), values, s) for s in seeds)
    return points



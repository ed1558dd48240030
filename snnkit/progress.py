"""Progress bars for long loops: one bar per loop, two levels at most, none in headless runs.

In a notebook::

    import itertools
    from snnkit import progress

    for method, seed in progress.over(itertools.product(METHODS, SEEDS), desc="methods x seeds",
                                      names=("method", "seed")):
        rows[method, seed] = run(method, seed)   # fit() inside shows the inner bar

    with progress.bar(total=len(T_VALUES), desc="accuracy against T") as bar:
        for T in T_VALUES:
            accuracy[T] = evaluate(model, data.test, cfg.replace(T=T))
            bar.update()

:func:`snnkit.train.fit` shows one bar per call over its epochs and batches
(``train: epoch 2/4``, with loss, accuracy and an ETA) unless ``TrainConfig(progress=False)``.

The rules:

* In JupyterLab a bar is a widget (``tqdm.auto``); elsewhere a line on stderr.
* Headless runs show nothing: the runner starts its kernels with ``SNNKIT_HEADLESS=1``
  (:func:`snnkit.notebook.is_headless`), and ``SNNKIT_PROGRESS=0`` turns bars off anywhere,
  so an executed copy holds no progress output at all.
* Nesting: the first bar open is the outer level and stays, finished, as a one-line
  record of the loop (count and time); a bar opened inside it is the inner level and
  disappears when its loop ends; a third level shows no bar.
* A bar closes when its loop ends. An exception or an interrupt closes it too, drawn red
  where it stopped, and at the end of every notebook cell any bar still open is closed.
* Interrupting the kernel stops the loop at once. What a cell recorded before the
  interrupt stays in ``results.json`` (each record is written atomically), nothing is half
  written, and running the cell again starts its loop from scratch.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

from tqdm.auto import tqdm

from .notebook.config import is_headless

__all__ = ["PROGRESS_ENV", "MAX_DEPTH", "Bar", "EpochBar", "bar", "enabled", "epochs", "open_bars", "over"]

PROGRESS_ENV = "SNNKIT_PROGRESS"
"""Set to ``0`` to turn every bar off (headless runs have none anyway)."""

MAX_DEPTH = 2
"""Levels of nested bars shown: the outer loop and one loop inside it."""

T = TypeVar("T")

_OPEN: list[Bar] = []
_LOCK = threading.Lock()
_HOOKED: list[Any] = []  # the IPython shell whose post_run_cell closes leftover bars


def enabled() -> bool:
    """Whether bars are shown here: not in a headless run, not with ``SNNKIT_PROGRESS=0``."""
    off = os.environ.get(PROGRESS_ENV, "").strip().lower() in ("0", "false", "no", "off")
    return not off and not is_headless()


def open_bars() -> list[Bar]:
    """The bars shown and open now, outermost first."""
    with _LOCK:
        return list(_OPEN)


def _close_leftovers(*_: Any) -> None:
    for b in reversed(open_bars()):
        b.close()


def _hook_cells() -> None:
    """In an IPython kernel, close bars left open when a cell ends (an abandoned loop)."""
    if _HOOKED:
        return
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return
    shell.events.register("post_run_cell", _close_leftovers)
    _HOOKED.append(shell)


class Bar:
    """One progress bar; use it as a context manager or call :meth:`close`.

    A bar that is not shown (headless, turned off, or nested too deep) accepts the same
    calls and does nothing. Attributes: ``n`` (steps done), ``total``, ``shown``,
    ``depth`` (0: outer level), ``closed``.
    """

    def __init__(self, total: int | None, desc: str, *, unit: str = "it", leave: bool | None = None,
                 show: bool = True) -> None:
        if total is not None and (isinstance(total, bool) or not isinstance(total, int) or total < 0):
            raise ValueError(f"total={total!r}: expected an integer >= 0 or None (unknown)")
        with _LOCK:
            self.depth = len(_OPEN)  # bars shown and still open around this one
        self.total, self.n, self.closed = total, 0, False
        self.leave = (self.depth == 0) if leave is None else leave
        self.shown = show and enabled() and self.depth < MAX_DEPTH
        self._tqdm: Any = None
        if not self.shown:
            return
        self._tqdm = tqdm(total=total, desc=desc, unit=unit, leave=self.leave, dynamic_ncols=True)
        if hasattr(self._tqdm, "container"):
            # a widget: tqdm would close its model when it ends, and a notebook saved with its
            # widget state would then show "model not found" in its place; it is hidden instead
            self._tqdm.leave = True
        _hook_cells()
        with _LOCK:
            _OPEN.append(self)

    def update(self, n: int = 1) -> None:
        """Count ``n`` more steps done."""
        self.n += n
        if self._tqdm is not None:
            self._tqdm.update(n)

    def set_description(self, desc: str) -> None:
        """Say what the loop does now (``train: epoch 2/4``)."""
        if self._tqdm is not None:
            self._tqdm.set_description_str(desc, refresh=False)

    def set_postfix(self, text: str = "", **values: Any) -> None:
        """Show ``text`` or ``name=value`` pairs after the counts (``method=lamp, seed=1``)."""
        if self._tqdm is None:
            return
        if values:
            self._tqdm.set_postfix(values, refresh=False)
        else:
            self._tqdm.set_postfix_str(text, refresh=False)

    def close(self) -> None:
        """End the bar: finished, it stays (outer level) or disappears (inner level);
        stopped early, it stays, red where it stopped. Closing twice does nothing."""
        if self.closed:
            return
        self.closed = True
        with _LOCK:
            if self in _OPEN:
                _OPEN.remove(self)
        if self._tqdm is None:
            return
        finished = self.total is None or self.n >= self.total
        self._tqdm.close()
        container = getattr(self._tqdm, "container", None)
        if container is not None and finished and not self.leave:
            container.layout.display = "none"

    def __enter__(self) -> Bar:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def bar(total: int | None, desc: str, *, unit: str = "it", leave: bool | None = None,
        show: bool = True) -> Bar:
    """A progress bar over ``total`` steps (None: unknown), labelled ``desc``.

    Args:
        total: the number of :meth:`Bar.update` steps the work takes.
        desc: what the loop does, as a reader would say it ("methods x seeds").
        unit: the name of one step ("run", "batch").
        leave: keep the finished bar on screen; default: only at the outer level.
        show: False gives a bar that shows nothing (e.g. ``TrainConfig.progress``).
    """
    return Bar(total, desc, unit=unit, leave=leave, show=show)


def _label(item: Any, names: Sequence[str] | None) -> str:
    if names is None:
        return ", ".join(map(str, item)) if isinstance(item, tuple) else str(item)
    values = item if isinstance(item, tuple) else (item,)
    if len(values) != len(names):
        raise ValueError(f"names={list(names)!r}: expected one name per value of each item, got the item "
                         f"{item!r}")
    return ", ".join(f"{n}={v}" for n, v in zip(names, values))


def over(items: Iterable[T], *, desc: str, names: Sequence[str] | None = None, total: int | None = None,
         unit: str = "run") -> Iterator[T]:
    """Iterate over ``items`` with a bar that names the current item and gives an ETA.

    Args:
        items: what the loop runs over (a list, a range, ``itertools.product(...)``).
        desc: what the loop does ("methods x seeds").
        names: names of the values of each item, shown as ``method=lamp, seed=1``
            (default: the values alone).
        total: the number of items, when ``items`` has no ``len`` and should not be
            read ahead (default: ``len(items)``, reading ``items`` into a list if needed).
        unit: the name of one item ("run").

    Yields:
        The items, in order; the bar counts an item done when the loop asks for the next.
    """
    if total is None and not hasattr(items, "__len__"):
        items = list(items)
    count = total if total is not None else len(items)  # type: ignore[arg-type]
    with bar(count, desc, unit=unit) as b:
        for item in items:
            b.set_postfix(_label(item, names))
            yield item
            b.update()


class EpochBar:
    """The one bar of a training run: epochs x batches, ``DESC: epoch E/N`` and an ETA.

    ``for epoch in bar`` yields the epoch indices; ``for x, y in bar.batches(loader)``
    counts the batches of the current epoch; the bar closes when the epochs end.
    """

    def __init__(self, n_epochs: int, batches_per_epoch: int, *, desc: str = "train", show: bool = True) -> None:
        for name, value in (("n_epochs", n_epochs), ("batches_per_epoch", batches_per_epoch)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name}={value!r}: expected an integer >= 0")
        self.n_epochs, self.batches_per_epoch, self.desc, self.show = n_epochs, batches_per_epoch, desc, show
        self._bar: Bar | None = None

    def __iter__(self) -> Iterator[int]:
        if self.n_epochs == 0:
            return
        with bar(self.n_epochs * self.batches_per_epoch, self.desc, unit="batch", leave=False,
                 show=self.show) as self._bar:
            for epoch in range(self.n_epochs):
                self._bar.set_description(f"{self.desc}: epoch {epoch + 1}/{self.n_epochs}")
                yield epoch

    def batches(self, items: Iterable[T]) -> Iterator[T]:
        """Yield ``items`` (one epoch's batches), counting each on the bar."""
        for item in items:
            yield item
            if self._bar is not None:
                self._bar.update()

    def set_postfix(self, **values: Any) -> None:
        """Show ``name=value`` pairs (loss, accuracy) after the counts."""
        if self._bar is not None:
            self._bar.set_postfix(**values)


def epochs(n_epochs: int, batches_per_epoch: int, *, desc: str = "train", show: bool = True) -> EpochBar:
    """The bar of a training loop (see :class:`EpochBar`); ``show=False`` shows nothing."""
    return EpochBar(n_epochs, batches_per_epoch, desc=desc, show=show)

"""Reusable slider pieces for the notebooks.

A slider sits on a live computation or on a sweep the notebook has just computed, and
moving it redraws a figure, a table or a line of text::

    from snnkit.notebook.widgets import interactive_plot, selection_slider

    def show(bits):
        fig, ax = plt.subplots()
        ax.hist(weights_by_bits[bits].ravel(), bins=50)
        ax.set_title(f"{bits}-bit weights")
        return fig

    explorer = interactive_plot(show, bits=selection_slider("bits", [2, 3, 4, 5, 8], 4))

``update`` is called once right away, so a headless run (papermill, ``SNNKIT_HEADLESS=1``)
exercises the same code and a broken callback fails the cell. Headless runs display a
static snapshot of that first rendering instead of the live widget (nobody can move the
slider, and the snapshot is visible in any notebook viewer).
"""

from __future__ import annotations

import base64
import io
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import ipywidgets

from .config import is_headless

__all__ = ["Explorer", "interactive_plot", "int_slider", "float_slider",
           "selection_slider", "dropdown", "multi_select"]


def _render_outputs(obj: Any, new_figures: Sequence[Any] = ()) -> tuple[list[dict], str]:
    """Turn what ``update`` returned into Jupyter output dicts and a short text form.

    Figures are rendered to PNG here (not through the kernel's formatters) so the result
    is the same in a kernel, in a plain python process and in tests, then closed.
    """
    import matplotlib.pyplot as plt
    from IPython.core.interactiveshell import InteractiveShell
    from matplotlib.figure import Figure

    figures = [obj] if isinstance(obj, Figure) else ([] if obj is not None else list(new_figures))
    if figures:
        outputs, texts = [], []
        for fig in figures:
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
            outputs.append({"output_type": "display_data", "metadata": {},
                            "data": {"image/png": base64.b64encode(buf.getvalue()).decode(),
                                     "text/plain": repr(fig)}})
            titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
            texts.append(f"<Figure {len(fig.axes)} axes{': ' + '; '.join(titles) if titles else ''}>")
            plt.close(fig)
        return outputs, "\n".join(texts)
    if obj is None:
        return [], ""
    if isinstance(obj, str):
        return [{"output_type": "stream", "name": "stdout", "text": obj + "\n"}], obj
    data, metadata = InteractiveShell.instance().display_formatter.format(obj)
    text = obj.to_string() if hasattr(obj, "to_string") else data.get("text/plain", repr(obj))
    return [{"output_type": "display_data", "data": data, "metadata": metadata}], text


class Explorer:
    """Controls plus an output area that ``update(**values)`` redraws on every change.

    Attributes:
        controls: name -> widget; setting ``controls[name].value`` re-renders.
        output: the ``ipywidgets.Output`` holding the current rendering.
        widget: a ``VBox`` of the controls and the output.
        render_count: how many times ``update`` has been called.
        last: the object ``update`` returned last (a closed Figure, a str, a table, None).
        last_text: a text form of the last rendering (a figure's axes titles, the string,
            the table's ``to_string()``).
    """

    def __init__(self, update: Callable[..., Any], controls: Mapping[str, ipywidgets.ValueWidget]) -> None:
        if not callable(update):
            raise TypeError(f"update={update!r}: expected a function taking the control values")
        if not controls:
            raise TypeError("interactive_plot needs at least one control, e.g. bits=selection_slider(...)")
        for name, control in controls.items():
            if not isinstance(control, ipywidgets.ValueWidget):
                raise TypeError(f"control {name}={control!r}: expected an ipywidgets value widget "
                                "(int_slider, float_slider, selection_slider, dropdown, ...)")
            if not control.description:
                control.description = name
        self.update = update
        self.controls: dict[str, ipywidgets.ValueWidget] = dict(controls)
        self.output = ipywidgets.Output()
        self.widget = ipywidgets.VBox([*self.controls.values(), self.output])
        self.render_count = 0
        self.last: Any = None
        self.last_text = ""
        self.refresh()  # exceptions propagate: a broken callback fails the cell
        for control in self.controls.values():
            control.observe(self._on_change, names="value")

    def values(self) -> dict[str, Any]:
        """The current value of every control."""
        return {name: c.value for name, c in self.controls.items()}

    def refresh(self) -> Any:
        """Call ``update`` with the current values and show its result; returns it."""
        import matplotlib.pyplot as plt

        before = set(plt.get_fignums())
        self.render_count += 1
        try:
            result = self.update(**self.values())
            new = [plt.figure(n) for n in sorted(set(plt.get_fignums()) - before)]
            outputs, text = _render_outputs(result, new)
        except Exception:
            self.output.outputs = ({"output_type": "stream", "name": "stderr",
                                    "text": traceback.format_exc()},)
            raise
        finally:
            for num in set(plt.get_fignums()) - before:  # nothing opened here may leak
                plt.close(num)
        self.output.outputs = tuple(outputs)
        self.last, self.last_text = result, text
        return result

    def _on_change(self, change: dict) -> None:
        self.refresh()

    def display(self) -> None:
        """Show the live widget, or a static snapshot of its output when headless."""
        from IPython.display import display

        if is_headless():
            from IPython.display import publish_display_data

            for out in self.output.outputs:
                if out["output_type"] == "stream":
                    print(out["text"], end="")
                else:
                    publish_display_data(out["data"], out.get("metadata", {}))
        else:
            display(self.widget)

    def __repr__(self) -> str:
        values = ", ".join(f"{k}={v!r}" for k, v in self.values().items())
        return f"Explorer({values}; renders={self.render_count})"


def interactive_plot(update: Callable[..., Any], *, show: bool = True,
                     **controls: ipywidgets.ValueWidget) -> Explorer:
    """Build an :class:`Explorer` over ``controls`` and display it.

    Args:
        update: called as ``update(**{name: control.value})``; returns a matplotlib
            Figure (rendered, then closed), a str, an object with a rich repr (a pandas
            DataFrame, ``IPython.display.HTML``), or None (figures it opened are shown).
        show: display the explorer now (turn off in tests).
        **controls: keyword name -> widget; the name is the argument of ``update``.
    """
    explorer = Explorer(update, controls)
    if show:
        explorer.display()
    return explorer


def _check_value(name: str, value: Any, ok: bool, accepted: str) -> None:
    if not ok:
        raise ValueError(f"{name} slider value={value!r}: expected {accepted}")


def int_slider(name: str, values_or_range: range | tuple[int, int], value: int | None = None,
               *, continuous_update: bool = False) -> ipywidgets.IntSlider:
    """An integer slider over ``range(lo, hi + 1, step)`` or an inclusive ``(lo, hi)`` pair.

    ``continuous_update=False`` (default) redraws when the slider is released, which suits
    sliders on a live computation.
    """
    if isinstance(values_or_range, range):
        if len(values_or_range) == 0 or values_or_range.step <= 0:
            raise ValueError(f"{name} slider range={values_or_range!r}: expected a non-empty increasing range")
        lo, step = values_or_range.start, values_or_range.step
        hi = values_or_range[-1]
        allowed = list(values_or_range)
    elif (isinstance(values_or_range, (tuple, list)) and len(values_or_range) == 2
          and all(isinstance(v, int) and not isinstance(v, bool) for v in values_or_range)
          and values_or_range[0] <= values_or_range[1]):
        lo, hi = values_or_range
        step = 1
        allowed = range(lo, hi + 1)
    else:
        raise ValueError(f"{name} slider bounds={values_or_range!r}: expected a range or an "
                         "integer pair (lo, hi) with lo <= hi; for arbitrary values use selection_slider")
    value = lo if value is None else value
    _check_value(name, value, isinstance(value, int) and value in allowed,
                 f"an integer in range({lo}, {hi + 1}, {step})")
    return ipywidgets.IntSlider(value=value, min=lo, max=hi, step=step, description=name,
                                continuous_update=continuous_update)


def float_slider(name: str, bounds: tuple[float, float], value: float | None = None,
                 step: float | None = None, *, continuous_update: bool = False,
                 readout_format: str = ".3g") -> ipywidgets.FloatSlider:
    """A float slider on the closed interval ``bounds = (lo, hi)``; ``step`` defaults to
    1/100 of the span."""
    if (not isinstance(bounds, (tuple, list)) or len(bounds) != 2
            or not all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds)
            or not bounds[0] < bounds[1]):
        raise ValueError(f"{name} slider bounds={bounds!r}: expected a pair of numbers (lo, hi) with lo < hi")
    lo, hi = float(bounds[0]), float(bounds[1])
    value = lo if value is None else value
    _check_value(name, value, isinstance(value, (int, float)) and lo <= value <= hi,
                 f"a number in [{lo:g}, {hi:g}]")
    if step is None:
        step = (hi - lo) / 100
    if not step > 0:
        raise ValueError(f"{name} slider step={step!r}: expected a number > 0")
    return ipywidgets.FloatSlider(value=float(value), min=lo, max=hi, step=step, description=name,
                                  continuous_update=continuous_update, readout_format=readout_format)


def _labelled(name: str, options: Sequence[Any] | Mapping[Any, str], value: Any) -> tuple[list[tuple[str, Any]], Any]:
    """(label, value) pairs: a mapping gives ``{value: label shown}``, a sequence shows its values."""
    named = dict(options) if isinstance(options, Mapping) else None
    options = list(options)
    if not options:
        raise ValueError(f"{name} options={options!r}: expected a non-empty list of values")
    labels = [named[o] for o in options] if named is not None else [str(o) for o in options]
    if len(set(labels)) != len(labels):
        raise ValueError(f"{name} options={options!r}: expected distinct values")
    value = options[0] if value is None else value
    _check_value(name, value, value in options, "one of " + ", ".join(map(repr, options)))
    return list(zip(labels, options)), value


def selection_slider(name: str, options: Sequence[Any], value: Any = None, *,
                     continuous_update: bool = False) -> ipywidgets.SelectionSlider:
    """A slider over given values, e.g. the bit-widths ``[2, 3, 4, 5, 8]`` of a sweep."""
    pairs, value = _labelled(name, options, value)
    return ipywidgets.SelectionSlider(options=pairs, value=value, description=name,
                                      continuous_update=continuous_update)


def dropdown(name: str, options: Sequence[Any] | Mapping[Any, str], value: Any = None) -> ipywidgets.Dropdown:
    """A drop-down over given values, e.g. pruning criteria ``["pca", "svs", "random"]``, or
    over ``{value: label}`` to show readers words, not keys (``{"size_bits": "stored weights
    [bits]"}``: the menu says the label, the callback gets the key)."""
    pairs, value = _labelled(name, options, value)
    return ipywidgets.Dropdown(options=pairs, value=value, description=name)


def multi_select(name: str, options: Sequence[Any], value: Sequence[Any] | None = None, *,
                 rows: int | None = None) -> ipywidgets.SelectMultiple:
    """A list to pick several values from (ctrl/shift-click), e.g. the methods a figure shows.

    The callback receives the chosen values as a tuple in the order of ``options``
    (``value`` defaults to all of them); ``rows`` is the visible height (default: every
    option, up to 10).
    """
    pairs, _ = _labelled(name, options, None)
    options = [o for _, o in pairs]
    chosen = list(options) if value is None else list(value)
    for v in chosen:
        _check_value(name, v, v in options, "values among " + ", ".join(map(repr, options)))
    chosen = [o for o in options if o in chosen]  # the order of the options, no duplicates
    rows = min(len(options), 10) if rows is None else rows
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
        raise ValueError(f"{name} rows={rows!r}: expected an integer >= 1")
    return ipywidgets.SelectMultiple(options=pairs, value=tuple(chosen), rows=rows, description=name)

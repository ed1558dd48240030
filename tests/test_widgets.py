"""Tests of snnkit.widgets: sliders redraw their output, and broken callbacks fail loudly."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from snnkit.notebook import widgets  # noqa: E402
from snnkit.notebook import HEADLESS_ENV  # noqa: E402
from snnkit.notebook.widgets import (  # noqa: E402
    dropdown,
    float_slider,
    int_slider,
    interactive_plot,
    selection_slider,
)

ACCURACY_BY_BITS = {2: 0.41, 3: 0.77, 4: 0.90, 5: 0.93, 8: 0.95}


def accuracy_figure(bits: int):
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.bar(list(map(str, ACCURACY_BY_BITS)), list(ACCURACY_BY_BITS.values()))
    ax.set_title(f"{bits} bits: accuracy {ACCURACY_BY_BITS[bits]:.2f}")
    return fig


def test_setting_a_slider_redraws_the_figure():
    open_before = set(plt.get_fignums())
    ex = interactive_plot(accuracy_figure, show=False,
                          bits=selection_slider("bits", list(ACCURACY_BY_BITS), 4))
    assert ex.render_count == 1
    assert "4 bits: accuracy 0.90" in ex.last_text
    first = ex.output.outputs
    assert first[0]["data"]["image/png"]  # rendered as a PNG

    ex.controls["bits"].value = 3
    assert ex.render_count == 2
    assert "3 bits: accuracy 0.77" in ex.last_text
    assert ex.output.outputs != first and len(ex.output.outputs) == 1
    assert set(plt.get_fignums()) == open_before  # figures are closed after rendering


def test_text_table_and_implicit_figure_outputs():
    ex = interactive_plot(lambda t, beta: f"T={t}, beta={beta:.2f}", show=False,
                          t=int_slider("T", range(5, 30, 5), 25),
                          beta=float_slider("beta", (0.5, 1.0), 0.9))
    assert ex.last == "T=25, beta=0.90"
    assert ex.output.outputs[0]["text"] == "T=25, beta=0.90\n"
    ex.controls["t"].value = 10
    assert ex.last == "T=10, beta=0.90" and ex.render_count == 2

    table = interactive_plot(
        lambda criterion: pd.DataFrame({"criterion": [criterion], "sparsity": [0.5]}),
        show=False, criterion=dropdown("criterion", ["pca", "svs", "random"]))
    assert "pca" in table.last_text and "text/html" in table.output.outputs[0]["data"]
    table.controls["criterion"].value = "svs"
    assert "svs" in table.last_text and table.render_count == 2

    def draws_without_returning(n):
        plt.figure()
        plt.plot(range(n))
        plt.title(f"n={n}")

    implicit = interactive_plot(draws_without_returning, show=False, n=int_slider("n", (1, 9), 3))
    assert "n=3" in implicit.last_text and implicit.last is None
    assert "image/png" in implicit.output.outputs[0]["data"]


def test_dropdown_over_a_mapping_shows_labels_and_passes_keys():
    menu = dropdown("cost", {"size_bits": "stored weights [bits]", "T": "latency [time steps]"}, "T")
    assert [label for label, _ in menu.options] == ["stored weights [bits]", "latency [time steps]"]
    assert menu.value == "T" and menu.label == "latency [time steps]"
    seen = interactive_plot(lambda cost: f"cost={cost}", show=False, cost=menu)
    menu.value = "size_bits"
    assert seen.last == "cost=size_bits"


def test_broken_update_fails_at_once_and_on_change():
    with pytest.raises(KeyError):
        interactive_plot(lambda bits: ACCURACY_BY_BITS[bits + 100], show=False,
                         bits=selection_slider("bits", [2, 4]))

    def fragile(bits):
        if bits == 4:
            raise ValueError("cannot draw 4 bits")
        return f"{bits} bits"

    ex = interactive_plot(fragile, show=False, bits=selection_slider("bits", [2, 4]))
    with pytest.raises(ValueError, match="cannot draw 4 bits"):
        ex.controls["bits"].value = 4
    assert "cannot draw 4 bits" in ex.output.outputs[0]["text"]  # the traceback is shown


def test_headless_display_shows_a_static_snapshot(monkeypatch, capsys):
    monkeypatch.setenv(HEADLESS_ENV, "1")
    ex = interactive_plot(lambda k: f"k squared is {k * k}", k=int_slider("k", (1, 5), 3))
    assert "k squared is 9" in capsys.readouterr().out
    assert ex.render_count == 1


@pytest.mark.parametrize("make, message", [
    (lambda: int_slider("T", (5, 1)), r"T slider bounds=\(5, 1\): expected a range"),
    (lambda: int_slider("T", range(1, 10, 2), 4), r"T slider value=4: expected an integer in range\(1, 10, 2\)"),
    (lambda: float_slider("beta", (0, 1), 2.0), r"beta slider value=2.0: expected a number in \[0, 1\]"),
    (lambda: float_slider("beta", (1, 1)), r"beta slider bounds=\(1, 1\)"),
    (lambda: selection_slider("bits", [2, 4], 3), r"bits slider value=3: expected one of 2, 4"),
    (lambda: selection_slider("bits", []), r"bits options=\[\]: expected a non-empty list"),
    (lambda: dropdown("criterion", ["a", "a"]), r"expected distinct values"),
])
def test_slider_factories_validate(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_controls_must_be_widgets():
    with pytest.raises(TypeError, match=r"control bits=4: expected an ipywidgets value widget"):
        widgets.interactive_plot(lambda bits: "", show=False, bits=4)
    with pytest.raises(TypeError, match="at least one control"):
        widgets.interactive_plot(lambda: "", show=False)


def test_multi_select_passes_the_chosen_values_in_option_order():
    from snnkit.notebook.widgets import multi_select

    control = widgets.multi_select("methods", ["dense", "pca", "lamp-kl"], ["lamp-kl", "dense"])
    assert control.value == ("dense", "lamp-kl") and control.rows == 3
    ex = interactive_plot(lambda methods: f"{len(methods)}: {', '.join(methods)}", show=False, methods=control)
    assert ex.last == "2: dense, lamp-kl"
    control.value = ("pca",)
    assert ex.last == "1: pca" and ex.render_count == 2
    assert multi_select("m", [2, 4, 8]).value == (2, 4, 8)  # default: every option
    with pytest.raises(ValueError, match=r"m slider value=16: expected values among 2, 4, 8"):
        multi_select("m", [2, 4, 8], [16])
    with pytest.raises(ValueError, match="rows=0"):
        multi_select("m", [2, 4, 8], rows=0)

"""The output checks of the browser test, on outputs written by hand (no browser needed)."""
from test_browser import output_problems


def _cell(index, *outputs):
    return {"index": index, "code": True, "outputs": [
        {"text": text, "mime": mime, "cells": cells} for text, mime, cells in outputs]}


def test_output_checks_flag_what_a_reader_should_not_see():
    cells = [
        _cell(2, ("Config(profile='smoke', seed=0)", "text/plain", [])),
        _cell(5, ("speed: SpeedReport(A 1.2 ms, B 0.8 ms)", "text/plain", []),
              ("table = {'dense': {'accuracy': 0.9}}", "application/vnd.jupyter.stdout", [])),
        _cell(7, ("drop 1.2 points (95 % interval +nan .. +nan)", "text/plain", []),
              ("<snnkit.models.Net object at 0x7f00aa>", "text/plain", []),
              ("<Figure size 600x380 with 1 Axes>", "text/plain", [])),
        _cell(9, ("claim result", "text/html", ["claim", "at least 20x compression within 2 ...", "20.6x"])),
        _cell(11, ("Traceback (most recent call last):\nValueError: bad", "application/vnd.jupyter.stderr", []),
              ("Error displaying widget: model not found", "", [])),
    ]
    assert output_problems(cells) == [
        "cell 2: a Python repr: Config(profile='smoke', seed=0)",
        "cell 5: a Python repr: speed: SpeedReport(A 1.2 ms, B 0.8 ms)",
        "cell 5: a dict dump: table = {'dense': {'accuracy': 0.9}}",
        "cell 7: a Python repr: <snnkit.models.Net object at 0x7f00aa>",
        "cell 7: a figure's repr: <Figure size 600x380 with 1 Axes>",
        "cell 7: nan: rop 1.2 points (95 % interval +nan .. +nan)",  # 30 characters of context
        "cell 9: a table cut with '...': 1 cell(s), e.g. 'at least 20x compression within 2 ...'",
        "cell 11: a widget that does not display: Error displaying widget: model not found",
        "cell 11: an error: ValueError: bad",
    ]


def test_output_checks_pass_what_a_reader_should_see():
    cells = [_cell(1, ("parameter value meaning\nepochs 3 training epochs", "text/html", ["epochs", "3"]),
                   ("accuracy = 0.912\nReScaW (mean) keeps 100 % of the levels; ANN(T=1) 0.93", "text/plain", []),
                   ("(95 % interval 0.1 .. 0.2), 5 seeds; nanoseconds", "text/plain", []))]
    assert output_problems(cells) == []


def test_unsaved_widgets_are_found():
    from test_browser import unsaved_widgets

    view = "application/vnd.jupyter.widget-view+json"
    nb = {"metadata": {"widgets": {"application/vnd.jupyter.widget-state+json": {"state": {"a": {}}}}},
          "cells": [{"outputs": []}, {"outputs": [{"data": {view: {"model_id": "a"}}},
                                                  {"data": {view: {"model_id": "b"}, "text/plain": "x"}}]}]}
    assert unsaved_widgets(nb) == ["cell 1: b"]
    assert unsaved_widgets({"metadata": {}, "cells": nb["cells"]}) == ["cell 1: a", "cell 1: b"]

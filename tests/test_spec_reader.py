"""The spec reader evaluates what a parameter spec needs, and refuses everything else."""
from __future__ import annotations

import inspect

import pytest

from snnkit.encoding import ENCODERS
from snnkit.notebook import config
from snnkit.notebook.config import PARAM_HELPERS, Param
from snnkit.notebook.runner import _notebook_namespace
from snnkit.notebook.spec_reader import Cell, SpecReadError, read_assignments, read_call_argument


def _read(*sources: str, targets=("SPEC",)) -> dict:
    cells = [Cell(s, f"nb.ipynb, cell {i}") for i, s in enumerate(sources)]
    return read_assignments(cells, targets, defaults=_notebook_namespace())


def test_reads_constants_imports_registries_and_unpacking():
    values = _read(
        'import snnkit.encoding as encoding\nSCORING = ("svs", "sca")\nLOW = 2 ** 3 - 1',
        "from snnkit.encoding import ENCODERS\n"
        "from snnkit import registry\n"
        'COMMON = {"bits": [8, 4], "lr": -1e-3}\n'
        "SPEC = {\n"
        '    "criterion": choice(*SCORING, "l1", help="score"),\n'
        '    "encoding": choice(*encoding.ENCODERS.names()),\n'
        '    "kinds": choice(*sorted(ENCODERS.names())[:2]),\n'
        '    "bits": int_list(LOW, 16).or_none(),\n'
        '    "first": int_range(COMMON["bits"][1], max(COMMON["bits"]) + 1),\n'
        "}\n"
        'PROFILE_DEFAULTS = {"smoke": {**COMMON, "criterion": SCORING[0]}}',
        targets=("SPEC", "PROFILE_DEFAULTS"))
    spec = values["SPEC"]
    assert spec["criterion"] == Param(choices=("svs", "sca", "l1"), help="score")
    assert spec["encoding"].choices == ENCODERS.names()
    assert spec["kinds"].choices == tuple(sorted(ENCODERS.names())[:2])
    assert (spec["bits"].item.min, spec["bits"].nullable) == (7, True)
    assert (spec["first"].min, spec["first"].max) == (4, 9)
    assert values["PROFILE_DEFAULTS"] == {"smoke": {"bits": [8, 4], "lr": -0.001, "criterion": "svs"}}


def test_the_last_assignment_above_wins_and_nothing_else_runs(tmp_path):
    marker = tmp_path / "ran"
    values = _read(f'open({str(marker)!r}, "w").close()\nN = 1',
                   f'N = 2\nSPEC = {{"n": int_range(0, N)}}\nN = 3\nopen({str(marker)!r}, "w").close()')
    assert values["SPEC"]["n"].max == 2
    assert not marker.exists()


@pytest.mark.parametrize("source, message", [
    ('import os\nSPEC = {"x": os.system("true")}', r"cell 0: SPEC uses 'os', which line 1 binds"),
    ('SPEC = {"x": __import__("os")}', r"SPEC uses '__import__', which is neither assigned above"),
    ('SPEC = {"x": print("hi")}', r"SPEC uses 'print'"),
    ('from snnkit.notebook import setup\nSPEC = {"x": setup(None)}', r"SPEC calls setup, which is not a Param"),
    ('from snnkit import notebook\nSPEC = {"x": notebook.config._fmt_bound(1)}',
     r"SPEC reads the private name '_fmt_bound'"),
    ('SPEC = {"x": choice(*[c for c in "ab"])}', r"SPEC uses a ListComp expression \(line 1: \[c for c in \"ab\"\]\)"),
    ('SPEC = {"x": (lambda: 1)()}', r"SPEC uses a Lambda expression"),
    ('for K in (1, 2):\n    pass\nSPEC = {"x": int_range(0, K)}', r"SPEC uses 'K', which line 1 binds"),
    ('N = 1\nN += 1\nSPEC = {"x": int_range(0, N)}', r"SPEC uses 'N', which line 2 binds"),
    ('SPEC = {"x": positive_int().help}', r"SPEC reads .help of a Param"),
    ('SPEC = {"x": choice()}', r"SPEC fails: choice\(\) needs at least one option"),
    ('SPEC = {"x": 10 ** 1000}', r"SPEC raises to a power above 64"),
    ('SPEC = {"x": "a" * 3}', r"SPEC uses an operator the reader only applies to numbers"),
    ('SPEC = {**3}', r"SPEC unpacks a int with \*\*"),
    ('from snnkit.encoding import NOPE\nSPEC = {"x": NOPE}', r"SPEC uses 'NOPE', which snnkit.encoding does not define"),
])
def test_refusals_name_the_cell_line_and_construct(source, message):
    with pytest.raises(SpecReadError, match=message) as info:
        _read(source)
    assert "the runner reads a spec without running the notebook" in str(info.value)


def test_an_error_in_a_constant_names_the_cell_and_line_that_define_it():
    with pytest.raises(SpecReadError, match=r"nb.ipynb, cell 0: SPEC uses 'np', which line 1 binds "
                                            r".* \(line 2: np\)"):
        _read("import numpy as np\nWIDTH = np.zeros(3)", 'SPEC = {"w": int_range(0, WIDTH)}')


def test_read_call_argument():
    cell = Cell('cfg = make_config(globals(), SPEC, {}, datasets=("digits", *MORE))', "nb.ipynb, cell 2")
    before = [Cell('MORE = ["events"]', "nb.ipynb, cell 1")]
    assert read_call_argument(cell, before, "make_config", "datasets") == (True, ("digits", "events"))
    assert read_call_argument(cell, before, "make_config", "other") == (True, None)
    assert read_call_argument(cell, before, "setup", "datasets") == (False, None)


def test_param_helpers_lists_every_function_that_builds_a_param():
    builders = {name for name, f in inspect.getmembers(config, inspect.isfunction)
                if f.__module__ == config.__name__ and inspect.signature(f).return_annotation in ("Param", Param)}
    assert builders == {f.__name__ for f in PARAM_HELPERS if f is not Param}
    assert len(builders) == 12

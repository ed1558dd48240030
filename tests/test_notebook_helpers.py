"""Tests of snnkit.notebook: config validation, profile defaults, Recorder."""

from __future__ import annotations

import json
import pickle
import random
import re

import numpy as np
import pytest
import torch

from snnkit.notebook import config as nbh
from snnkit.notebook import (
    Config,
    ConfigError,
    Param,
    Recorder,
    choice,
    float_list,
    fraction,
    int_list,
    make_config,
    nonneg_int,
    positive_int,
    probability,
    to_jsonable,
)

SPEC = {
    "epochs": nonneg_int(),
    "timesteps": positive_int(),
    "bits": positive_int(),
    "sparsity": fraction(),
    "dropout": probability(),
    "criterion": choice("pca", "svs", "random"),
    "timesteps_schedule": int_list(min=1),
    "ratios": float_list(0, 1, hi_inclusive=False),
}
DEFAULTS = {
    "smoke": {"epochs": 1, "timesteps": 5, "bits": 4, "sparsity": 0.5, "dropout": 0.0,
              "criterion": "pca", "timesteps_schedule": [5, 3], "ratios": [0.1, 0.5]},
    "full": {"epochs": 30, "timesteps": 25, "bits": 8, "sparsity": 0.9, "dropout": 0.1,
             "criterion": "svs", "timesteps_schedule": [25, 10, 5], "ratios": [0.1, 0.5, 0.9]},
}
DATASETS = ("digits", "event-gestures")


def params(**overrides):
    """Parameters as a notebook's parameters cell would hold them (knobs None)."""
    base = {"profile": "smoke", "seed": 0, "device": "cpu", "dataset": "digits", "out_dir": None}
    base.update({name: None for name in SPEC})
    base.update(overrides)
    return base


def cfg_of(**overrides) -> Config:
    return make_config(params(**overrides), SPEC, DEFAULTS, datasets=DATASETS)


@pytest.mark.parametrize("name, value, message", [
    ("epochs", -1, "epochs=-1: expected an integer >= 0"),
    ("timesteps", 0, "timesteps=0: expected an integer >= 1"),
    ("bits", 0, "bits=0: expected an integer >= 1"),
    ("bits", 2.5, "bits=2.5: expected an integer >= 1"),
    ("bits", True, "bits=True: expected an integer >= 1"),
    ("sparsity", 1.0, "sparsity=1.0: expected a number in [0, 1)"),
    ("sparsity", -0.1, "sparsity=-0.1: expected a number in [0, 1)"),
    ("sparsity", "half", "sparsity='half': expected a number in [0, 1)"),
    ("dropout", 1.5, "dropout=1.5: expected a number in [0, 1]"),
    ("criterion", "lamp", "criterion='lamp': expected one of 'pca', 'svs', 'random'"),
    ("timesteps_schedule", [25, 0], "timesteps_schedule=[25, 0]: expected a non-empty list "
                                    "of integers >= 1 (item 1 is 0)"),
    ("timesteps_schedule", [], "timesteps_schedule=[]: expected a non-empty list of integers >= 1"),
    ("timesteps_schedule", 25, "timesteps_schedule=25: expected a non-empty list of integers >= 1"),
    ("ratios", [0.5, 1.0], "ratios=[0.5, 1.0]: expected a non-empty list of numbers in [0, 1) "
                           "(item 1 is 1.0)"),
])
def test_bad_knob_names_parameter_value_and_accepted(name, value, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        cfg_of(**{name: value})


@pytest.mark.parametrize("name, value, message", [
    ("profile", "quick", "profile='quick': expected one of 'smoke', 'full'"),
    ("seed", -3, "seed=-3: expected an integer >= 0"),
    ("seed", "0", "seed='0': expected an integer >= 0"),
    ("device", "tpu", "device='tpu': expected one of 'cpu', 'cuda', 'auto'"),
    ("dataset", "foo", "dataset='foo': expected one of 'digits', 'event-gestures'"),
    ("out_dir", 3, "out_dir=3: expected a string or None"),
])
def test_bad_common_parameter(name, value, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        cfg_of(**{name: value})


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


def test_profile_defaults_fill_none_and_explicit_value_wins():
    smoke, full = cfg_of(), cfg_of(profile="full")
    assert (smoke.epochs, smoke.timesteps, smoke.sparsity) == (1, 5, 0.5)
    assert (full.epochs, full.timesteps, full.sparsity) == (30, 25, 0.9)
    explicit = cfg_of(profile="full", epochs=3, timesteps_schedule=[7, 2])
    assert explicit.epochs == 3 and explicit.timesteps == 25
    assert explicit.timesteps_schedule == (7, 2)


def test_profile_defaults_are_validated_too():
    with pytest.raises(ConfigError, match=re.escape("epochs=-5: expected an integer >= 0")):
        make_config(params(), SPEC, {"smoke": {**DEFAULTS["smoke"], "epochs": -5}}, datasets=DATASETS)


def test_missing_profile_default_and_missing_parameter_are_named():
    with pytest.raises(ConfigError, match=r"epochs=None: profile 'smoke' has no default"):
        make_config(params(), SPEC, {"smoke": {k: v for k, v in DEFAULTS["smoke"].items()
                                               if k != "epochs"}}, datasets=DATASETS)
    p = params()
    del p["bits"], p["seed"]
    with pytest.raises(ConfigError, match=r"missing parameter\(s\) seed, bits"):
        make_config(p, SPEC, DEFAULTS, datasets=DATASETS)


def test_author_errors_in_spec_or_defaults():
    with pytest.raises(ConfigError, match=r"profile_defaults has profile 'fast'"):
        make_config(params(), SPEC, {"fast": {}}, datasets=DATASETS)
    with pytest.raises(ConfigError, match=r"names \['epoch'\], which are not in the spec"):
        make_config(params(), SPEC, {"smoke": {**DEFAULTS["smoke"], "epoch": 1}}, datasets=DATASETS)
    with pytest.raises(ConfigError, match=r"redefines common parameter"):
        make_config(params(), {**SPEC, "seed": nonneg_int()}, DEFAULTS, datasets=DATASETS)


def test_nullable_knob_keeps_none_and_extra_globals_are_ignored():
    spec = {"max_batches": positive_int().or_none()}
    cfg = make_config({**params(), "max_batches": None, "In": [], "np": np}, spec, {},
                      datasets=DATASETS)
    assert cfg.max_batches is None
    assert set(cfg) == {"profile", "seed", "device", "dataset", "out_dir", "max_batches"}


def test_device_resolution(monkeypatch):
    assert cfg_of(device="cpu").device == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert cfg_of(device="auto").device == "cpu"
    with pytest.raises(ConfigError, match=r"device='cuda': CUDA is not available"):
        cfg_of(device="cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert cfg_of(device="auto").device == "cuda"


def test_config_is_read_only_and_picklable():
    cfg = cfg_of(out_dir="/tmp/x")
    with pytest.raises(AttributeError, match="read-only"):
        cfg.epochs = 5
    with pytest.raises(AttributeError, match="no parameter 'epoch'"):
        cfg.epoch  # noqa: B018
    with pytest.raises(TypeError):
        cfg["epochs"] = 5  # type: ignore[index]
    assert cfg["epochs"] == 1
    d = cfg.as_dict()
    assert d["timesteps_schedule"] == [5, 3] and d["out_dir"] == "/tmp/x"
    json.dumps(d)
    assert pickle.loads(pickle.dumps(cfg)) == cfg
    assert "epochs=1" in repr(cfg)


def test_config_shows_as_a_short_table_not_a_repr():
    from IPython.lib.pretty import pretty

    spec = {"epochs": nonneg_int(help="training epochs"), "schedule": int_list(help="T of each step"),
            "lr": fraction(help="step <size> & 'rate'")}
    cfg = make_config({**params(), "epochs": None, "schedule": [25, 10, 5], "lr": 0.001}, spec,
                      {"smoke": {"epochs": 3}}, datasets=DATASETS)
    assert cfg.table()[-3:] == [("epochs", "3", "training epochs"), ("schedule", "25, 10, 5", "T of each step"),
                                ("lr", "0.001", "step <size> & 'rate'")]
    assert cfg.table()[1] == ("seed", "0", "seeds every generator of the run")
    text = pretty(cfg)  # what a notebook shows as text/plain
    assert "Config(" not in text and text.splitlines()[0].split() == ["parameter", "value", "meaning"]
    assert text.splitlines()[-2] == "schedule   25, 10, 5  T of each step"
    html = cfg._repr_html_()
    assert html.count("<tr>") == 1 + len(cfg) and "Config(" not in html
    assert "<td style='text-align:left'>step &lt;size&gt; &amp; &#x27;rate&#x27;</td>" in html
    again = pickle.loads(pickle.dumps(cfg))
    assert again.table() == cfg.table() and repr(again) == repr(cfg)


def test_param_describe_and_construction_errors():
    assert Param(kind=int, min=1, max=8).describe() == "an integer in [1, 8]"
    assert Param(kind=float, min=0, min_inclusive=False).describe() == "a number > 0"
    assert positive_int().or_none().describe() == "an integer >= 1 or None"
    assert choice(True, False).validate("flag", True) is True
    with pytest.raises(ConfigError, match=r"flag=1: expected one of True, False"):
        choice(True, False).validate("flag", 1)
    with pytest.raises(TypeError, match="needs item"):
        Param(kind=list)
    with pytest.raises(TypeError, match="expected int, float"):
        Param(kind=dict)


def test_setup_seeds_everything_and_returns_recorder(tmp_path):
    cfg = cfg_of(seed=7, out_dir=str(tmp_path))
    rec = nbh.setup(cfg)
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    nbh.setup(cfg)
    b = (random.random(), np.random.rand(), torch.rand(1).item())
    assert a == b
    assert isinstance(rec, Recorder) and rec.out_dir == tmp_path


def test_recorder_converts_numpy_and_torch_scalars(tmp_path, capsys):
    rec = Recorder(tmp_path)
    rec.record("accuracy", np.float32(0.875))
    rec.record("params", np.int64(1234))
    rec.record("loss", torch.tensor(0.25))
    rec.record("spikes", torch.tensor([1, 2, 3]))
    rec.record("by_bits", {2: np.float64(0.5), 8: 0.9})
    rec.record("widths", (np.int32(16), 32))
    rec.record("flag", np.bool_(True))
    expected = {"accuracy": 0.875, "params": 1234, "loss": 0.25, "spikes": [1, 2, 3],
                "by_bits": {"2": 0.5, "8": 0.9}, "widths": [16, 32], "flag": True}
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk == expected == rec.results
    assert type(on_disk["params"]) is int
    out = capsys.readouterr().out
    assert out.splitlines() == ["accuracy = 0.875", "params = 1234", "loss = 0.25", "spikes = 1, 2, 3",
                                "by_bits: 2 = 0.5, 8 = 0.9", "widths = 16, 32", "flag = True"]
    rec.record("table", {"dense": {"accuracy": 0.91234}, "lamp": {"accuracy": 0.9}})
    rec.record("curve", list(range(20)))
    rec.record("best", "lamp")
    rec.record("ratio", 1 / 3)
    rec.record("by_method", {"lamp": 0.912345, "global": 0.5})
    assert capsys.readouterr().out.splitlines() == [
        "table: 2 entries (in results.json)", "curve: 20 values (in results.json)", "best = lamp",
        "ratio = 0.333333", "by_method: lamp = 0.9123, global = 0.5"]


def test_recorder_rejects_what_json_cannot_hold(tmp_path):
    rec = Recorder(tmp_path)
    with pytest.raises(ValueError, match=r"loss=nan: expected a finite number"):
        rec.record("loss", float("nan"))
    with pytest.raises(TypeError, match=r"model=.*expected a number"):
        rec.record("model", object())
    with pytest.raises(ValueError, match=r"record name 'a\.b'"):
        rec.record("a.b", 1)
    assert rec.results == {}


def test_recorder_writes_atomically(tmp_path, monkeypatch):
    rec = Recorder(tmp_path)
    rec.record("a", 1)

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(nbh.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        rec.record("b", 2)
    # the previous complete file is still there and no temporary file is left behind
    assert json.loads((tmp_path / "results.json").read_text()) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_recorder_starts_fresh_and_saves_figures(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    (tmp_path / "results.json").write_text('{"stale": 1}')
    rec = Recorder(tmp_path)
    assert json.loads((tmp_path / "results.json").read_text()) == {}
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    assert rec.save_figure(fig, "curve", show=False) is None  # a cell ending in it prints nothing
    path = rec.figure_path("curve")
    assert path == tmp_path / "figures" / "curve.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not plt.fignum_exists(fig.number)
    assert sorted(p.name for p in path.parent.iterdir()) == ["curve.png"]
    with pytest.raises(ValueError, match=r"figure name '\.\./x'"):
        rec.save_figure(plt.figure(), "../x", show=False)


@pytest.mark.parametrize("draw, has_data", [
    (lambda ax: None, False),                                   # axes only
    (lambda ax: ax.scatter([], []), False),                     # an empty raster
    (lambda ax: ax.plot([], []), False),
    (lambda ax: ax.bar([0, 1], [0, 0]), False),                 # bars of height 0
    (lambda ax: ax.set_title("2093 spikes"), False),            # a title is not data
    (lambda ax: ax.scatter([1], [2]), True),
    (lambda ax: ax.plot([0, 1]), True),
    (lambda ax: ax.bar([0], [3]), True),
    (lambda ax: ax.imshow([[0, 1], [1, 0]]), True),
])
def test_recorder_refuses_a_figure_without_data(tmp_path, draw, has_data):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    draw(ax)
    assert nbh.figure_has_data(fig) is has_data
    rec = Recorder(tmp_path)
    if has_data:
        rec.save_figure(fig, "f", show=False)
        assert rec.figure_path("f").is_file()
    else:
        with pytest.raises(ValueError, match="figure 'f' draws no data"):
            rec.save_figure(fig, "f", show=False)
        plt.close(fig)


def test_default_out_dir_is_outside_notebooks(monkeypatch):
    monkeypatch.setenv("JPY_SESSION_NAME", "/work/repo/notebooks/pruning.ipynb")
    assert nbh.default_out_dir() == nbh.REPO_ROOT / "out" / "interactive" / "pruning"
    monkeypatch.delenv("JPY_SESSION_NAME")
    assert nbh.default_out_dir() == nbh.REPO_ROOT / "out" / "interactive" / "notebook"


def test_is_headless(monkeypatch):
    monkeypatch.delenv(nbh.HEADLESS_ENV, raising=False)
    assert not nbh.is_headless()
    monkeypatch.setenv(nbh.HEADLESS_ENV, "1")
    assert nbh.is_headless()


def test_to_jsonable_plain_values():
    assert to_jsonable(None) is None and to_jsonable("cpu") == "cpu"
    assert to_jsonable(np.array([[1.5, 2]])) == [[1.5, 2.0]]

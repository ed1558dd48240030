"""snnkit.progress: one bar per loop, two levels at most, none headless, closed on interrupt."""
from __future__ import annotations

import itertools
from pathlib import Path

import nbformat
import pytest
import torch
import tqdm.notebook
import tqdm.std

from snnkit import progress
from snnkit.data import load_dataset
from snnkit.models import VGGSpec, build
from snnkit.notebook import runner
from snnkit.train import TrainConfig, fit

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "progress.ipynb"


@pytest.fixture
def shown(monkeypatch):
    """Bars on, as in front of a person (the test session may run headless)."""
    monkeypatch.delenv("SNNKIT_HEADLESS", raising=False)
    monkeypatch.delenv(progress.PROGRESS_ENV, raising=False)
    yield
    assert progress.open_bars() == [], "a test left a bar open"


@pytest.fixture(scope="module")
def tiny_data():
    return load_dataset("digits").subset(train=64, val=32, test=32, seed=0)


def test_over_names_each_item_and_counts_them(shown, capsys):
    seen = []
    for method, seed in progress.over(itertools.product(["lamp", "pca"], [0, 1]), desc="methods x seeds",
                                      names=("method", "seed")):
        (outer,) = progress.open_bars()
        seen.append((method, seed, outer.n, outer.depth))
    assert seen == [("lamp", 0, 0, 0), ("lamp", 1, 1, 0), ("pca", 0, 2, 0), ("pca", 1, 3, 0)]
    err = capsys.readouterr().err
    assert "methods x seeds" in err and "4/4" in err and "method=pca, seed=1" in err


def test_two_levels_at_most_and_only_the_outer_one_stays(shown):
    with progress.bar(2, "outer") as outer:
        with progress.bar(3, "inner") as inner:
            with progress.bar(4, "third") as third:
                assert [b.depth for b in progress.open_bars()] == [0, 1]
                assert (outer.shown, inner.shown, third.shown) == (True, True, False)
                assert (outer.leave, inner.leave) == (True, False)
                third.update(4)  # a bar that is not shown still counts
            assert third.n == 4 and third.closed
    assert outer.closed and inner.closed


def test_headless_or_switched_off_shows_nothing(monkeypatch, capsys):
    monkeypatch.setenv("SNNKIT_HEADLESS", "1")
    assert list(progress.over(range(3), desc="runs")) == [0, 1, 2]
    assert not progress.enabled() and capsys.readouterr().err == ""
    monkeypatch.delenv("SNNKIT_HEADLESS")
    monkeypatch.setenv(progress.PROGRESS_ENV, "0")
    with progress.bar(3, "runs") as b:
        b.update(3)
    assert not b.shown and capsys.readouterr().err == ""
    monkeypatch.setenv(progress.PROGRESS_ENV, "1")
    assert progress.enabled()


def test_an_interrupt_closes_every_bar(shown):
    done = []
    with pytest.raises(KeyboardInterrupt):
        for run in progress.over(range(5), desc="runs"):
            with progress.bar(10, "epochs") as inner:
                inner.update(3)
                if run == 2:
                    raise KeyboardInterrupt
            done.append(run)
    assert done == [0, 1] and progress.open_bars() == []


def test_a_widget_bar_is_hidden_when_done_and_red_where_it_stopped(shown, monkeypatch):
    monkeypatch.setattr(progress, "tqdm", tqdm.notebook.tqdm)  # as in JupyterLab
    with progress.bar(1, "outer") as outer:
        with progress.bar(2, "inner") as inner:
            inner.update(2)
        stopped = progress.bar(5, "inner")
        stopped.update(1)
        stopped.close()
        outer.update(1)

    def look(b):
        box = b._tqdm.container
        return box.layout.display, box.children[1].bar_style, box.children[1].value

    # a finished inner bar is hidden, not closed: a notebook saved with its widget state
    # still finds its model when reopened
    assert look(inner) == ("none", "success", 2)
    assert look(stopped) == ("inline-flex", "danger", 1)
    assert look(outer) == ("inline-flex", "success", 1)


class Spy(tqdm.std.tqdm):
    """A terminal bar that remembers what it was told."""

    made: list[Spy] = []

    def __init__(self, *args, **kwargs) -> None:
        self.descriptions: list[str] = []
        super().__init__(*args, **kwargs)
        Spy.made.append(self)

    def set_description_str(self, desc=None, refresh=True):
        self.descriptions.append(desc)
        super().set_description_str(desc, refresh)


def test_fit_shows_one_bar_over_epochs_and_batches(shown, tiny_data, monkeypatch, capsys):
    monkeypatch.setattr(progress, "tqdm", Spy)
    Spy.made.clear()
    net = build(VGGSpec(in_shape=tiny_data.input_shape, num_classes=10, features=(4, "P")), seed=0)
    fit(net, tiny_data, TrainConfig(epochs=2, T=2, batch_size=16), desc="warm-up")
    (bar,) = Spy.made  # one bar, not one per epoch
    assert (bar.total, bar.n, bar.unit, bar.leave) == (8, 8, "batch", False)  # 2 epochs x 4 batches
    assert bar.descriptions == ["warm-up: epoch 1/2", "warm-up: epoch 2/2"]
    assert "loss=" in bar.postfix and "acc=" in bar.postfix and "val=" in bar.postfix
    fit(net, tiny_data, TrainConfig(epochs=1, T=2, batch_size=16, progress=False))
    assert len(Spy.made) == 1
    capsys.readouterr()


def test_an_interrupted_fit_leaves_no_bar_open(shown, tiny_data):
    net = build(VGGSpec(in_shape=tiny_data.input_shape, num_classes=10, features=(4, "P")), seed=0)
    steps = []

    def stop_at_third_step(model: torch.nn.Module) -> None:
        steps.append(1)
        if len(steps) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        for run in progress.over(range(2), desc="runs"):
            fit(net, tiny_data, TrainConfig(epochs=2, T=2, batch_size=16), after_step=stop_at_third_step)
    assert len(steps) == 3 and progress.open_bars() == []


def test_argument_errors():
    with pytest.raises(ValueError, match=r"total=-1: expected an integer >= 0 or None"):
        progress.bar(-1, "x")
    with pytest.raises(ValueError, match=r"n_epochs=1.5: expected an integer >= 0"):
        progress.epochs(1.5, 3)
    with pytest.raises(ValueError, match=r"names=\['method'\]: expected one name per value"):
        list(progress.over([("a", 1)], desc="x", names=("method",)))
    assert list(progress.epochs(0, 5)) == []


@pytest.mark.notebook
def test_a_headless_run_stores_no_progress_output(tmp_path):
    result = runner.run_notebook(FIXTURE, "smoke", tmp_path)
    assert result.ok, result.error
    assert result.results == {"runs_done": 2}
    cells = nbformat.read(str(result.executed), as_version=4).cells
    (loop,) = [c for c in cells if "progress.over" in c.source]
    # only the record's line: no widget, no stderr progress lines
    assert [(o.output_type, o.get("name")) for o in loop.outputs] == [("stream", "stdout")]
    assert loop.outputs[0].text == "runs_done = 2\n"

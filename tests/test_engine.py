"""compile_model: eager with gradients on, and an eager fallback when compiling fails."""
import warnings

import pytest
import torch

from snnkit import engine
from snnkit.encoding import direct
from snnkit.models import VGGSpec, build


def _failing_compile(fn, **kwargs):
    def run(*args):
        raise RuntimeError("no C++ compiler")
    return run


def test_compile_failure_falls_back_to_eager(monkeypatch):
    monkeypatch.setattr(engine.torch, "compile", _failing_compile)
    model = build(VGGSpec(in_shape=(1, 8, 8), num_classes=3, features=(4, "P")), seed=0)
    fast = engine.compile_model(model)
    x = direct(torch.rand(2, 1, 8, 8) * 3, 4)
    with torch.no_grad(), pytest.warns(UserWarning, match="no C\\+\\+ compiler"):
        out = fast(x)
    assert torch.equal(out, model(x))
    out.sum()  # later calls stay eager without warning again
    with torch.no_grad():
        assert torch.equal(fast(x), out)


def test_gradients_on_use_the_eager_engine(monkeypatch):
    monkeypatch.setattr(engine.torch, "compile", _failing_compile)
    model = build(VGGSpec(in_shape=(1, 8, 8), num_classes=3, features=(4, "P")), seed=0)
    fast = engine.compile_model(model)
    x = direct(torch.rand(2, 1, 8, 8) * 3, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails: the compiled path is not touched
        out = fast(x)
    out.sum().backward()
    assert model.body.layers[0].weight.grad is not None

"""The engine: compile_model (eager with gradients on, an eager fallback when compiling fails), and
the choice of LIF engine (auto, compiled, eager) with its fused pools and its fallback."""
import dataclasses
import warnings

import pytest
import torch

from snnkit import engine
from snnkit.encoding import direct
from snnkit.models import NeuronSpec, VGGSpec, build, probe
from snnkit.neurons import LIF


def _failing_compile(fn, **kwargs):
    def run(*args):
        raise RuntimeError("no C++ compiler")
    return run


@pytest.mark.parametrize("whole_graph", [False, True])
def test_compile_failure_falls_back_to_eager(fresh_engine, monkeypatch, whole_graph):
    monkeypatch.setattr(engine.torch, "compile", _failing_compile)
    monkeypatch.setattr(engine, "_compiled", {})
    model = build(VGGSpec(in_shape=(1, 8, 8), num_classes=3, features=(4, "P")), seed=0)
    fast = engine.compile_model(model, whole_graph=whole_graph)
    assert fast.kernels is not whole_graph
    x = direct(torch.rand(2, 1, 8, 8) * 3, 4)
    with torch.no_grad(), pytest.warns(UserWarning, match="no C\\+\\+ compiler"):
        out = fast(x)
    assert torch.equal(out, model(x))
    out.sum()  # later calls stay eager without warning again
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with torch.no_grad():
            assert torch.equal(fast(x), out)


def test_compile_model_runs_covered_nets_on_the_kernels(fresh_engine, monkeypatch):
    monkeypatch.setattr(engine, "_compile", lambda fn: fn)  # the kernels' code, run eagerly
    calls = []
    run_kernel = engine.run_kernel
    monkeypatch.setattr(engine, "run_kernel", lambda fn, *args: calls.append(fn.__name__) or run_kernel(fn, *args))
    model = _net()
    fast = engine.compile_model(model)
    assert fast.kernels
    x = direct(torch.rand(3, 2, 7, 7), 5)
    engine.set_engine("eager")  # whatever the process's choice
    with torch.no_grad():
        out, ref = fast(x), model(x)
    assert calls and set(calls) <= {"lif_chunk", "lif_pool_chunk"}
    assert ref.abs().sum() > 0 and torch.equal(out, ref)
    assert engine.status()["mode"] == "eager"  # restored after the call
    # learned leaks are not covered: the whole-graph way; so for torch.compile options
    learned = build(VGGSpec(in_shape=(1, 8, 8), num_classes=3, features=(4, "P"),
                            neuron=NeuronSpec(learn_beta=True)), seed=0)
    assert not engine.compile_model(learned).kernels
    assert not engine.compile_model(model, mode="default").kernels
    with pytest.raises(ValueError, match="whole_graph=False"):
        engine.compile_model(model, whole_graph=False, mode="default")
    ann = build(VGGSpec(in_shape=(1, 8, 8), num_classes=3, features=(4, "P")), spiking=False, seed=0)
    assert not engine.compile_model(ann).kernels


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


# ---------------------------------------------------------------------------------------
# the LIF engine: auto / compiled / eager, the pool run inside the kernels, the fallback


@pytest.fixture
def fresh_engine():
    """The engine's choice, count and fallback as a test found them, restored afterwards."""
    saved = dataclasses.replace(engine._state)
    yield engine
    engine._state.__dict__.update(saved.__dict__)


def _net(pool="max", size=7, **neuron):
    neuron.setdefault("threshold", 0.25)  # busy hidden layers at initialisation
    return build(VGGSpec(in_shape=(2, size, size), num_classes=4, features=(6, "P", 8, "P"), hidden=(5,), pool=pool,
                         neuron=NeuronSpec(**neuron)), seed=0)


def _train_step(model, x):
    out = model(x)
    torch.nn.functional.cross_entropy(out.mean(0), torch.arange(out.shape[1]) % 4).backward()
    return out.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]


def test_auto_switches_after_its_count_and_using_restores(fresh_engine):
    engine.set_engine("auto", compile_after=100)
    assert engine.status()["active"] == "eager"
    assert not engine.use_compiled(60) and engine.status()["neuron_steps"] == 60
    assert engine.use_compiled(60) and engine.status()["active"] == "compiled"
    assert engine.use_compiled(1)  # once switched, it stays
    with engine.using("eager"):
        assert not engine.use_compiled(10**12) and engine.status()["mode"] == "eager"
    assert engine.status() == {"mode": "auto", "active": "compiled", "neuron_steps": 120, "compile_after": 100,
                               "fallback": None}
    with pytest.raises(ValueError, match="engine 'fast': expected one of auto, compiled, eager"):
        engine.set_engine("fast")
    with pytest.raises(ValueError, match="compile_after=-1"):
        engine.set_engine("auto", compile_after=-1)


def test_environment_variable_chooses_the_engine(fresh_engine, monkeypatch):
    monkeypatch.setenv("SNNKIT_ENGINE", "compiled")
    engine._from_environment()
    assert engine.status()["mode"] == "compiled"
    monkeypatch.setenv("SNNKIT_ENGINE", "quick")
    with pytest.warns(UserWarning, match="SNNKIT_ENGINE='quick' ignored"):
        engine._from_environment()
    assert engine.status()["mode"] == "compiled"


def test_a_layer_call_counts_its_neuron_updates(fresh_engine):
    engine.set_engine("auto", compile_after=10**9)
    model = _net(size=8)  # 6 x 8 x 8 + 8 x 4 x 4 + 5 = 517 neurons per sample and step
    with torch.no_grad():
        model(direct(torch.rand(3, 2, 8, 8), 4))
    assert engine.status()["neuron_steps"] == 4 * 3 * 517


@pytest.mark.parametrize("pool", ["max", "avg"])
def test_kernels_in_a_model_equal_the_eager_engine_and_pools_run_inside(fresh_engine, monkeypatch, pool):
    """The compiled path with torch.compile swapped for the identity: the kernels' maths, the
    channels-last views and the fused pools, without minutes of compiling."""
    monkeypatch.setattr(engine, "_compile", lambda fn: fn)
    x = direct(torch.rand(5, 2, 7, 7, generator=torch.Generator().manual_seed(0)) * 8, 6)
    with engine.using("eager"):
        ref, ref_grads = _train_step(_net(pool), x)
    pool_type = torch.nn.MaxPool2d if pool == "max" else torch.nn.AvgPool2d

    def no_pool_module(self, inp):
        raise AssertionError("the pool ran as a module; expected it inside the LIF kernels")

    with engine.using("compiled"), monkeypatch.context() as m:
        m.setattr(pool_type, "forward", no_pool_module)
        out, grads = _train_step(_net(pool), x)
    assert ref.abs().sum() > 0 and torch.equal(out, ref)  # the output current needs hidden spikes
    for a, b in zip(ref_grads, grads):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("reset", ["zero", "none"])
def test_every_reset_gives_the_eager_spikes_under_the_compiled_engine(fresh_engine, monkeypatch, reset):
    """The kernels cover subtractive and zero resets; a net with reset "none" (NIR's LIF)
    runs on the eager engine even when the compiled one is chosen, with the same spikes."""
    monkeypatch.setattr(engine, "_compile", lambda fn: fn)
    x = direct(torch.rand(5, 2, 7, 7, generator=torch.Generator().manual_seed(1)) * 8, 6)
    with engine.using("eager"):
        ref, ref_grads = _train_step(_net(reset=reset), x)
    with engine.using("compiled"):
        out, grads = _train_step(_net(reset=reset), x)
    assert ref.abs().sum() > 0 and torch.equal(out, ref)
    for a, b in zip(ref_grads, grads):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-7)


def test_probes_hooks_and_learned_leaks_keep_the_spikes_they_observe(fresh_engine, monkeypatch):
    monkeypatch.setattr(engine, "_compile", lambda fn: fn)
    model = _net(size=8)
    x = direct(torch.rand(3, 2, 8, 8) * 4, 4)
    lif = model.body.layers[1]
    seen = {}
    with torch.no_grad():
        with engine.using("eager"), probe(model, lambda n, s, m: seen.setdefault(("eager", n), (s, m))):
            ref = model(x)
        with engine.using("compiled"), probe(model, lambda n, s, m: seen.setdefault(("compiled", n), (s, m))):
            assert not lif.fuses(model.body.layers[2], 4)  # a probe wants the unpooled spikes
            out = model(x)
    assert torch.equal(out, ref)
    for (mode, name), (s, m) in seen.items():
        if mode == "compiled":
            assert torch.equal(s, seen[("eager", name)][0]) and torch.equal(m, seen[("eager", name)][1])
    handle = model.body.layers[2].register_forward_hook(lambda *a: None)
    assert not lif.fuses(model.body.layers[2], 4)
    handle.remove()
    assert lif.fuses(model.body.layers[2], 4) and not lif.fuses(torch.nn.MaxPool2d(2, stride=1), 4)
    assert not lif.fuses(torch.nn.MaxPool2d(3), 4) and not lif.fuses(torch.nn.AvgPool2d(2, ceil_mode=True), 4)
    learned = _net(size=8, learn_beta=True)
    with engine.using("compiled"):
        assert not learned.body.layers[1]._kernels_apply(torch.rand(2))  # learned leaks stay on the eager engine


def test_compile_failure_falls_back_to_the_eager_engine_once(fresh_engine, monkeypatch):
    monkeypatch.setattr(engine.torch, "compile", _failing_compile)
    monkeypatch.setattr(engine, "_compiled", {})
    x = direct(torch.rand(4, 2, 7, 7, generator=torch.Generator().manual_seed(1)) * 4, 5)
    with engine.using("eager"):
        ref, ref_grads = _train_step(_net(), x)
    with engine.using("compiled"):
        with pytest.warns(UserWarning, match="torch.compile failed.*no C\\+\\+ compiler.*eager engine"):
            out, grads = _train_step(_net(), x)
        assert engine.status()["active"] == "eager" and "no C++ compiler" in engine.status()["fallback"]
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # reported once, then quietly eager
            again, _ = _train_step(_net(), x)
    assert torch.equal(out, ref) and torch.equal(again, ref)
    for a, b in zip(ref_grads, grads):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-7)


def test_the_kernels_really_compile(fresh_engine):
    """One real torch.compile of a pooled layer, forward and backward (T = 2, a few seconds
    to a minute); the other tests run the same kernels eagerly."""
    lif = LIF(0.9, 1.0, channels=3)
    cur = (torch.rand(2, 2, 3, 4, 4, generator=torch.Generator().manual_seed(2)) * 2).requires_grad_()
    pool = torch.nn.MaxPool2d(2)
    with engine.using("eager"):
        ref = lif(cur, pool=pool)
        (ref_grad,) = torch.autograd.grad(ref.sum(), cur)
    with engine.using("compiled"):
        out = lif(cur, pool=pool)
        (grad,) = torch.autograd.grad(out.sum(), cur)
    assert engine.status()["fallback"] is None, engine.status()["fallback"]
    assert ref.sum() > 0 and torch.equal(out, ref)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-5, atol=1e-7)

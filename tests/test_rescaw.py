"""QP-SNN's quantizers (vanilla, ReScaW), bit-width utilisation, and pruning in either order."""
from __future__ import annotations

import copy
import pickle

import pytest
import torch

from snnkit.compress import compress
from snnkit.compress.importance import Inputs
from snnkit.compress.planners import select
from snnkit.compress.quant import (
    QUANTIZERS,
    RESCALE_RULES,
    apply_records,
    bit_utilization,
    effective_weight,
    grid_input,
    qpsnn_codes,
    quant_records,
    quantize_model,
    remove_quantizers,
    rescale_gamma,
    utilization,
    utilization_estimate,
    vanilla_quantize,
)
from snnkit.compress.quant_prune import ORDERS, quantize_prune_grid
from snnkit.compress.surgery import mask_channels, shrink
from snnkit.data import Dataset, Split
from snnkit.encoding import model_input
from snnkit.metrics.ops import model_size_bits
from snnkit.models import NeuronSpec, ResNetSpec, VGGSpec, build
from snnkit.train import TrainConfig, evaluate, fit, load_checkpoint, save_checkpoint

QP_NEURON = NeuronSpec(beta=0.5, threshold=1.0, reset="zero", surrogate="triangular")
VGG = VGGSpec(in_shape=(1, 8, 8), num_classes=4, features=(8, "P", 12, "P"), hidden=(10,), batch_norm=True,
              neuron=QP_NEURON)
RESNET = ResNetSpec(in_shape=(1, 8, 8), num_classes=4, stem=6, stages=(6, 10), blocks=(1, 1), neuron=QP_NEURON)


# ---------------------------------------------------------------------------------------
# the grid and the two quantizers


@pytest.mark.parametrize("bits, levels", [
    (1, [-1.0, 1.0]),
    (2, [-1.0, -1 / 3, 1 / 3, 1.0]),
    (3, [-1.0, -5 / 7, -3 / 7, -1 / 7, 1 / 7, 3 / 7, 5 / 7, 1.0]),
])
def test_vanilla_level_sets(bits, levels):
    w = torch.linspace(-1.5, 1.5, 1001)
    assert vanilla_quantize(w, bits).unique().tolist() == pytest.approx(levels, abs=1e-6)
    s = 2 ** bits - 1
    assert (qpsnn_codes(bits) / s).tolist() == pytest.approx(levels)


def test_vanilla_hand_values_and_straight_through_gradient():
    # b = 2, s = 3: (3/2)(w + 1) = 1.65 -> 2 -> 1/3; 0.75 -> 1 -> -1/3; 2.85 -> 3 -> 1; clamp(5) = 1
    w = torch.tensor([0.1, -0.5, 0.9, 5.0, -3.0])
    assert vanilla_quantize(w, 2).tolist() == pytest.approx([1 / 3, -1 / 3, 1.0, 1.0, -1.0], abs=1e-6)
    q = QUANTIZERS.get("vanilla")(w, 2)
    x = w.clone().requires_grad_()
    out = q(x)
    assert torch.equal(out.detach(), vanilla_quantize(w, 2))
    (out * torch.arange(5.0)).sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]  # straight through, also where clamped
    rec = q.record(w)
    assert rec.scheme == "vanilla" and rec.num_levels == 4 and float(rec.scale) == pytest.approx(1 / 3)
    assert rec.levels().tolist() == pytest.approx([-1.0, -1 / 3, 1 / 3, 1.0])
    with pytest.raises(ValueError, match="per_channel=True: the vanilla quantizer has one fixed grid"):
        QUANTIZERS.get("vanilla")(w, 2, per_channel=True)


def test_rescaw_gamma_options():
    w = torch.tensor([[1.0, -2.0, 3.0, -6.0], [0.5, 0.5, -0.5, 0.5], [0.0, 0.0, 0.0, 0.0]])
    assert rescale_gamma(w, "mean").flatten().tolist() == [3.0, 0.5, 1.0]  # a zero channel gets 1
    assert rescale_gamma(w, "max").flatten().tolist() == [6.0, 0.5, 1.0]
    assert rescale_gamma(w, "percentile", percentile=50).flatten().tolist() == [2.5, 0.5, 1.0]  # median of 1, 2, 3, 6
    assert rescale_gamma(w, "mean").shape == (3, 1)
    assert float(rescale_gamma(w, "max", per_channel=False)) == 6.0
    conv = torch.ones(2, 3, 3, 3)
    conv[1] *= -0.25
    assert rescale_gamma(conv, "mean").flatten().tolist() == [1.0, 0.25] and rescale_gamma(conv).shape == (2, 1, 1, 1)
    assert RESCALE_RULES == ("mean", "max", "percentile")
    with pytest.raises(ValueError, match="rescale rule 'median': expected one of mean, max, percentile"):
        rescale_gamma(w, "median")
    with pytest.raises(ValueError, match="percentile=0: expected a number in \\(0, 100\\]"):
        rescale_gamma(w, "percentile", percentile=0)


def test_rescaw_quantizes_each_channel_on_its_own_grid():
    # channel 0: gamma = mean(1, 2, 3, 6) = 3; w / gamma = 1/3, -2/3, 1, -2 -> clamp -> (3/2)(x + 1) =
    # 2, 0.5, 3, 0 -> round half to even 2, 0, 3, 0 -> 1/3, -1, 1, -1 -> times 3: 1, -3, 3, -3
    # channel 1: gamma = 0.5, every w / gamma = +-1 -> +-0.5
    w = torch.tensor([[1.0, -2.0, 3.0, -6.0], [0.5, 0.5, -0.5, 0.5]])
    q = QUANTIZERS.get("rescaw")(w, 2)
    assert torch.allclose(q(w), torch.tensor([[1.0, -3.0, 3.0, -3.0], [0.5, 0.5, -0.5, 0.5]]))
    assert q.gamma.flatten().tolist() == [3.0, 0.5]
    rec = q.record(w)
    assert rec.options == {"rule": "mean", "percentile": 99.0} and rec.per_channel
    assert torch.allclose(rec.levels(), torch.tensor([[-3.0, -1.0, 1.0, 3.0], [-0.5, -1 / 6, 1 / 6, 0.5]]))
    x = w.clone().requires_grad_()
    q(x).sum().backward()
    assert torch.equal(x.grad, torch.ones_like(w))  # gamma * d(W / gamma)/dW = 1, clipped or not
    qmax = QUANTIZERS.get("rescaw")(w, 2, rule="max")  # gamma 6: 1/6 -> 1.75 -> 2 -> 1/3 * 6 = 2
    assert qmax(w)[0].tolist() == pytest.approx([2.0, -2.0, 2.0, -6.0])


# ---------------------------------------------------------------------------------------
# utilisation


def test_bit_utilization_of_weights_with_known_levels():
    small = torch.tensor([[0.01, -0.2, 0.3], [-0.05, 0.1, 0.0]])  # all inside (-1/3, 1/3)
    q = QUANTIZERS.get("vanilla")(small, 2)
    assert bit_utilization(q(small), q.record(small)) == 0.5  # levels -1/3 and 1/3 of four
    wide = torch.tensor([-1.0, -0.3, 0.3, 0.9])
    q3 = QUANTIZERS.get("vanilla")(wide, 3)  # (7/2)(w + 1) = 0, 2.45, 4.55, 6.65 -> k = 0, 2, 5, 7
    assert bit_utilization(q3(wide), q3.record(wide)) == 4 / 8  # codes 2k - 7 = -7, -3, 3, 7 of eight
    # ReScaW, gamma = 0.17 and 0.05: w / gamma = 0.06, -1.18, 1.76 | -1, 2, 0 -> clamp, (3/2)(x + 1)
    # = 1.59, 0, 3 | 0, 3, 1.5 -> k = 2, 0, 3 | 0, 3, 2 -> codes 1, -3, 3: three of four levels
    r = QUANTIZERS.get("rescaw")(small, 2)
    assert bit_utilization(r(small), r.record(small)) == 0.75


def test_utilization_estimate_matches_the_formula():
    x = torch.linspace(-0.5, 0.5, 101)  # P1 = -0.49, P99 = 0.49
    assert utilization_estimate(x, 2) == pytest.approx((3 * 0.49 + 1) / 4)
    assert utilization_estimate(x, 8) == pytest.approx((255 * 0.49 + 1) / 256)
    assert utilization_estimate(4 * x, 2) == 1.0  # a is capped at 1
    with pytest.raises(ValueError, match="x is empty"):
        utilization_estimate(torch.zeros(0), 2)


def test_quantized_model_keeps_first_and_last_layers_in_full_precision_and_trains():
    model = build(VGG, seed=0)
    q, _ = quantize_model(model, 2, skip=["first", "last"], quantizer="rescaw", options={"rule": "mean"})
    records = quant_records(q)
    assert list(records) == ["body.layers.4", "body.layers.9"]  # conv2 and the hidden linear layer
    assert all(r.scheme == "rescaw" and r.bits == 2 for r in records.values())
    assert set(utilization(q).values()) == {1.0}
    v, _ = quantize_model(model, 8, skip=["first", "last"], quantizer="vanilla")
    assert max(utilization(v).values()) < 0.35  # init weights far inside [-1, 1]
    conv2 = model.body.layers[4].weight
    assert torch.equal(grid_input(QUANTIZERS.get("vanilla")(conv2, 8), conv2), conv2)
    ratio = grid_input(QUANTIZERS.get("rescaw")(conv2, 8), conv2) * conv2.abs().mean((1, 2, 3), keepdim=True)
    assert torch.allclose(ratio, conv2)
    # size: 2-bit weights for the two quantized layers, 32 bits for everything else
    n2 = model.body.layers[4].weight.numel() + model.body.layers[9].weight.numel()
    total = sum(p.numel() for p in model.parameters())
    assert model_size_bits(q) == 2 * n2 + 32 * (total - n2)
    # QAT: the float weights learn through the straight-through gradient
    x = torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    data = Split(x, torch.arange(16) % 4)
    before = records["body.layers.4"]
    fit(q, data, TrainConfig(epochs=2, T=2, lr=1e-2, progress=False), val=None)
    w = effective_weight(dict(q.named_modules())["body.layers.4"])
    after = quant_records(q)["body.layers.4"]
    assert not torch.equal(before.scale, after.scale)
    assert bit_utilization(w, after) == 1.0
    # copies, pickles and records round-trip
    again = pickle.loads(pickle.dumps(copy.deepcopy(q)))
    inp = model_input(x, 2)
    assert torch.equal(again.eval()(inp), q.eval()(inp))
    plain = copy.deepcopy(q)
    recs = remove_quantizers(plain, bake=False)
    apply_records(plain, recs)
    assert torch.equal(plain.eval()(inp), q.eval()(inp))


def test_rescaw_and_vanilla_models_round_trip_through_checkpoints(tmp_path):
    for name, options in (("rescaw", {"rule": "percentile", "percentile": 90.0}), ("vanilla", {})):
        q, _ = quantize_model(build(VGG, seed=2), 3, skip=["first", "last"], quantizer=name, options=options)
        save_checkpoint(tmp_path / f"{name}.pt", q)
        back, _ = load_checkpoint(tmp_path / f"{name}.pt")
        assert {k: (r.scheme, r.bits, dict(r.options)) for k, r in quant_records(back).items()} == \
            {k: (r.scheme, r.bits, dict(r.options)) for k, r in quant_records(q).items()}
        inp = model_input(torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(1)), 2)
        assert torch.equal(back.eval()(inp), q.eval()(inp))


# ---------------------------------------------------------------------------------------
# pruning a quantized model


@pytest.mark.parametrize("spec", [VGG, RESNET], ids=["vgg", "resnet"])
def test_pruned_quantized_model_equals_the_masked_one(spec):
    model = build(spec, seed=1)
    q, _ = quantize_model(model, 4, skip=["first", "last"], quantizer="rescaw")
    x = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    sel = select(q, "svs", "layer", Inputs(x, T=2), keep=0.5)
    small = shrink(q, sel)
    assert small.spec.widths == sel.widths and list(quant_records(small)) == list(quant_records(q))
    # with the quantized weights baked in, the cut model computes what the masked one computes
    baked = copy.deepcopy(q)
    remove_quantizers(baked, bake=True)
    inp = model_input(x, 2)
    cut, masked = shrink(baked, sel).eval(), mask_channels(baked, sel).eval()
    assert torch.allclose(cut(inp), masked(inp), atol=1e-5)
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in q.parameters())


@pytest.mark.parametrize("order", ORDERS)
def test_quantize_prune_in_either_order(order):
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(40, 1, 8, 8, generator=gen), torch.arange(40) % 4
    data = Dataset("toy", Split(x[:32], y[:32]), Split(x[32:], y[32:]), Split(x[32:], y[32:]), 4, "static",
                   (1, 8, 8), ["a", "b", "c", "d"])
    cfg = TrainConfig(epochs=2, T=2, lr=1e-2, batch_size=16, progress=False)
    for importance in ("svs", "random", "pca-variance", "lamp"):  # any importance, with any planner
        run = compress(build(VGG, seed=0), data, "quantize-prune", cfg, order=order, importance=importance,
                       keep=[0.5, 0.25, 1.0], samples=8, bits=2, finetune_epochs=1)
        assert run.model.spec.widths == [4, 3, 10] and run.info["widths"] == [4, 3, 10]
        assert list(quant_records(run.model)) == ["body.layers.4", "body.layers.9"]
        assert bool(quant_records(run.info["unpruned"])) == (order == "quantize-then-prune")
        assert [(s.name, s.epochs) for s in run.history] == [("train", 1), ("fine-tune", 1)]
        assert run.info["selection"].importance == importance
    run = compress(build(VGG, seed=0), data, "quantize-prune", cfg, order=order, importance="l1", planner="global",
                   keep=None, channels=12, bits=2, finetune_epochs=2)
    assert sum(run.model.spec.widths) == 12 and run.history[0].epochs == 0
    with pytest.raises(ValueError, match="order='both': expected one of quantize-then-prune, prune-then-quantize"):
        compress(build(VGG, seed=0), data, "quantize-prune", cfg, order="both")
    with pytest.raises(ValueError, match="finetune_epochs=3: expected an integer in \\[0, cfg.epochs=2\\]"):
        compress(build(VGG, seed=0), data, "quantize-prune", cfg, finetune_epochs=3)


def test_quantize_prune_grid_runs_every_seed_order_and_importance():
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(40, 1, 8, 8, generator=gen), torch.arange(40) % 4
    data = Dataset("toy", Split(x[:32], y[:32]), Split(x[32:], y[32:]), Split(x[32:], y[32:]), 4, "static",
                   (1, 8, 8), ["a", "b", "c", "d"])
    fp = build(VGG, seed=0)
    q = quantize_model(fp, 2, skip=["first", "last"], quantizer="rescaw")[0]
    start = {("quantize-then-prune", 0): q, ("prune-then-quantize", 0): fp}
    rows = quantize_prune_grid(start, data, TrainConfig(epochs=1, T=2, batch_size=16, progress=False),
                               importances={"quantize-then-prune": ("svs", "random"), "prune-then-quantize": ("l1",)},
                               seeds=[0], keep=0.5, bits=2, samples=8)
    assert [(r["order"], r["importance"], r["seed"]) for r in rows] == [
        ("quantize-then-prune", "svs", 0), ("quantize-then-prune", "random", 0), ("prune-then-quantize", "l1", 0)]
    for r in rows:
        assert 0.0 <= r["before fine-tuning"] <= 1.0 and 0.0 <= r["accuracy"] <= 1.0
        assert r["accuracy"] == evaluate(r["run"].model, data.test, TrainConfig(T=2, batch_size=16))

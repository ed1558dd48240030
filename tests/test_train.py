"""Trainer, checkpoints and ANN-to-SNN conversion."""
import time

import pytest
import torch

from snnkit.convert import activation_percentiles, convert
from snnkit.data import load_dataset
from snnkit.models import VGGSpec, build, lif_layers
from snnkit.train import TrainConfig, evaluate, fit, load_checkpoint, save_checkpoint


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0)


def spec_for(ds):
    return VGGSpec(in_shape=ds.input_shape, num_classes=ds.num_classes, features=(16, "P", 32, "P"))


def test_snn_learns_digits_above_90_percent_in_under_a_minute(digits):
    t0 = time.perf_counter()
    model = build(spec_for(digits), seed=0)
    cfg = TrainConfig(epochs=6, timesteps=4, lr=5e-3, batch_size=32, progress=False)
    hist = fit(model, digits, cfg)
    acc = evaluate(model, digits.test, cfg)
    seconds = time.perf_counter() - t0
    assert acc > 0.90, acc
    assert seconds < 60, seconds
    assert len(hist.val_acc) == 6 and hist.train_loss[-1] < hist.train_loss[0]


def test_training_is_deterministic_for_a_seed(digits):
    small = digits.train.subset(200)
    cfg = TrainConfig(epochs=1, timesteps=3, encoding="rate", batch_size=50, progress=False)
    losses = []
    for _ in range(2):
        m = build(spec_for(digits), seed=1)
        losses.append(fit(m, small, cfg, val=None).train_loss[0])
        weights = m.body.layers[0].weight.detach().clone()
    assert losses[0] == losses[1]
    m3 = build(spec_for(digits), seed=1)
    fit(m3, small, cfg.replace(seed=7), val=None)
    assert not torch.equal(m3.body.layers[0].weight, weights)


def test_ann_twin_trains_with_the_same_trainer(digits):
    ann = build(spec_for(digits), spiking=False, seed=0)
    cfg = TrainConfig(epochs=2, lr=3e-3, batch_size=32, progress=False)
    fit(ann, digits, cfg)
    assert evaluate(ann, digits.test, cfg) > 0.85


def test_bad_config_values_are_named():
    with pytest.raises(ValueError, match="epochs=-1"):
        TrainConfig(epochs=-1)
    with pytest.raises(ValueError, match="timesteps=0: expected an integer >= 1"):
        TrainConfig(timesteps=0)
    with pytest.raises(ValueError, match="encoding='poisson'"):
        TrainConfig(encoding="poisson")


def test_checkpoint_roundtrip_is_atomic_and_weights_only(tmp_path, digits):
    model = build(spec_for(digits), seed=0)
    model.quant_bits = {"body.layers.0": 5}
    path = save_checkpoint(tmp_path / "m.ckpt", model, accuracy=0.5)
    assert [p.name for p in tmp_path.iterdir()] == ["m.ckpt"]  # no temporary left behind
    loaded, extra = load_checkpoint(path)
    assert extra == {"accuracy": 0.5} and loaded.quant_bits == {"body.layers.0": 5}
    assert loaded.spec == model.spec
    x = torch.rand(2, 5, *digits.input_shape)
    assert torch.equal(loaded(x), model(x))
    torch.load(path, weights_only=True)  # plain data only
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.ckpt")


def test_conversion_sets_percentile_thresholds(digits):
    ann = build(spec_for(digits), spiking=False, seed=0)
    fit(ann, digits, TrainConfig(epochs=2, lr=3e-3, batch_size=32, progress=False))
    x = digits.train.x[:256]
    pct = activation_percentiles(ann, x, 99.9)
    snn = convert(ann, x, 99.9)
    for name, lif in lif_layers(snn):
        assert lif.threshold.item() == pytest.approx(pct[name])
    # the max is above the 99.9th percentile, which is above the median
    assert activation_percentiles(ann, x, 100.0)["body.layers.1"] >= pct["body.layers.1"]
    assert torch.equal(snn.body.layers[0].weight, ann.body.layers[0].weight)
    acc = evaluate(snn, digits.test, TrainConfig(timesteps=32, batch_size=128, progress=False))
    assert acc > 0.6, acc  # converted without fine-tuning, at a moderate T

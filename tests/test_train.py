"""Trainer, checkpoints and ANN-to-SNN conversion."""

import pytest
import snntorch as snn
import torch

import snnkit.train as trainer
from snnkit.convert import activation_percentiles, convert
from snnkit.data import load_dataset
from snnkit.encoding import direct
from snnkit.models import NeuronSpec, ResNetSpec, VGGSpec, build, lif_layers
from snnkit.compress.masks import masks_of, prune_global
from snnkit.compress.quant import quant_records, quantize_model, quantizer_of
from snnkit.compress.surgery import shrink
from snnkit.interop import Layer, SequentialSpec, from_snntorch
from snnkit.data import Split
from snnkit.train import DATA_VAL, CheckpointError, TrainConfig, evaluate, fit, load_checkpoint, save_checkpoint


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0)


def spec_for(ds):
    return VGGSpec(in_shape=ds.input_shape, num_classes=ds.num_classes, features=(16, "P", 32, "P"))


def test_snn_learns_digits_above_90_percent(digits):
    model = build(spec_for(digits), seed=0)
    cfg = TrainConfig(epochs=6, T=4, lr=5e-3, batch_size=32, progress=False)
    hist = fit(model, digits, cfg)
    acc = evaluate(model, digits.test, cfg)
    assert acc > 0.90, acc  # (its speed is a benchmark matter: benchmarks/engine.py)
    assert len(hist.val_acc) == 6 and hist.train_loss[-1] < hist.train_loss[0]


def test_training_is_deterministic_for_a_seed(digits):
    small = digits.train.subset(200)
    cfg = TrainConfig(epochs=1, T=3, encoding="rate", batch_size=50, progress=False)
    losses = []
    for _ in range(2):
        m = build(spec_for(digits), seed=1)
        losses.append(fit(m, small, cfg, val=None).train_loss[0])
        weights = m.body.layers[0].weight.detach().clone()
    assert losses[0] == losses[1]
    m3 = build(spec_for(digits), seed=1)
    fit(m3, small, cfg.replace(seed=7), val=None)
    assert not torch.equal(m3.body.layers[0].weight, weights)


def test_fit_validates_on_data_val_by_default_and_never_with_val_none(digits, monkeypatch):
    small = digits.subset(train=64, val=20, test=20)
    cfg = TrainConfig(epochs=2, T=2, batch_size=32, progress=False)
    seen = []
    real = trainer.predict

    def spy(model, split, cfg, **kw):
        seen.append(len(split))
        return real(model, split, cfg, **kw)

    monkeypatch.setattr(trainer, "predict", spy)
    model = build(spec_for(digits), seed=0)
    assert len(fit(model, small, cfg).val_acc) == 2 and seen == [20, 20]  # DATA_VAL: small.val
    assert repr(DATA_VAL) == "DATA_VAL"
    seen.clear()
    assert fit(model, small, cfg, val=None).val_acc == [] and seen == []  # None: no validation at all
    other = Split(small.test.x[:7], small.test.y[:7])
    assert len(fit(model, small, cfg, val=other).val_acc) == 2 and seen == [7, 7]
    seen.clear()
    assert fit(model, small.train, cfg).val_acc == [] and seen == []  # a split has no val


def test_ann_twin_trains_with_the_same_trainer(digits):
    ann = build(spec_for(digits), spiking=False, seed=0)
    cfg = TrainConfig(epochs=2, lr=3e-3, batch_size=32, progress=False)
    fit(ann, digits, cfg)
    assert evaluate(ann, digits.test, cfg) > 0.85


def test_bad_config_values_are_named():
    with pytest.raises(ValueError, match="epochs=-1"):
        TrainConfig(epochs=-1)
    with pytest.raises(ValueError, match="T=0: expected an integer >= 1"):
        TrainConfig(T=0)
    with pytest.raises(ValueError, match="encoding='poisson'"):
        TrainConfig(encoding="poisson")


def test_checkpoint_roundtrip_is_atomic_and_weights_only(tmp_path, digits):
    model = build(spec_for(digits), seed=0)
    path = save_checkpoint(tmp_path / "m.ckpt", model, accuracy=0.5)
    assert [p.name for p in tmp_path.iterdir()] == ["m.ckpt"]  # no temporary left behind
    loaded, extra = load_checkpoint(path)
    assert extra == {"accuracy": 0.5} and quant_records(loaded) == {} and masks_of(loaded) == {}
    assert loaded.spec == model.spec
    x = torch.rand(2, 5, *digits.input_shape)
    assert torch.equal(loaded(x), model(x))
    torch.load(path, weights_only=True)  # plain data only
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.ckpt")


def _same_records(a: dict, b: dict) -> bool:
    return list(a) == list(b) and all(
        (a[n].scheme, a[n].bits, a[n].per_channel, a[n].axis, a[n].options)
        == (b[n].scheme, b[n].bits, b[n].per_channel, b[n].axis, b[n].options)
        and torch.equal(a[n].scale, b[n].scale) and torch.equal(a[n].codes, b[n].codes)
        for n in a
    )


def test_checkpoint_roundtrips_quantization_records_and_learned_scales(tmp_path, digits):
    model, _ = quantize_model(build(spec_for(digits), seed=0), 3, skip=["first"], options={"learn_scale": True})
    fit(model, digits.train.subset(64), TrainConfig(epochs=1, T=2, batch_size=32, progress=False), val=None)
    learned = quant_records(model)
    fresh = quant_records(quantize_model(build(spec_for(digits), seed=0), 3, skip=["first"])[0])
    assert not torch.equal(learned["body.layers.3"].scale, fresh["body.layers.3"].scale)  # training moved it
    per_channel, _ = quantize_model(build(spec_for(digits), seed=1), 2, per_channel=True)
    x = torch.rand(2, 3, *digits.input_shape)
    for i, net in enumerate((model, per_channel)):
        loaded, _ = load_checkpoint(save_checkpoint(tmp_path / f"q{i}.ckpt", net))
        assert _same_records(quant_records(loaded), quant_records(net))
        assert torch.equal(loaded(x), net(x))
        for name in quant_records(net):  # the layer uses the saved grid at once, before any forward
            assert torch.equal(loaded.get_submodule(name).weight, net.get_submodule(name).weight)
    assert isinstance(quantizer_of(loaded.get_submodule("body.layers.0")).step, torch.Tensor)
    assert "body.layers.0" not in quant_records(load_checkpoint(tmp_path / "q0.ckpt")[0])  # skipped stays float


def test_checkpoint_roundtrips_masks_alone_and_under_quantization(tmp_path, digits):
    masked = build(spec_for(digits), seed=0)
    prune_global(masked, 0.6)
    both, _ = quantize_model(masked, 2)
    x = torch.rand(2, 3, *digits.input_shape)
    for i, net in enumerate((masked, both)):
        loaded, _ = load_checkpoint(save_checkpoint(tmp_path / f"m{i}.ckpt", net))
        saved = masks_of(net)
        assert list(masks_of(loaded)) == list(saved)
        assert all(torch.equal(masks_of(loaded)[n], saved[n]) for n in saved)
        assert _same_records(quant_records(loaded), quant_records(net))
        assert torch.equal(loaded(x), net(x))
        for name in saved:  # masked entries are zero in the loaded weights
            layer = loaded.get_submodule(name.rsplit(".", 1)[0])
            assert torch.equal(layer.weight[saved[name] == 0], torch.zeros(int((saved[name] == 0).sum())))


def test_checkpoint_of_an_imported_snntorch_net_compressed_here(tmp_path):
    """An imported net (a SequentialSpec with per-layer neurons, learnable per-channel thresholds)
    shrunk, pruned and quantized: saved and loaded, it is the same net."""
    torch.manual_seed(0)
    seq = torch.nn.Sequential(
        torch.nn.Conv1d(1, 6, 5), torch.nn.BatchNorm1d(6), torch.nn.MaxPool1d(2),
        snn.Leaky(beta=0.8, threshold=torch.linspace(0.5, 1.0, 6).reshape(6, 1), learn_threshold=True,
                  init_hidden=True, reset_mechanism="zero"),
        torch.nn.Flatten(), torch.nn.Linear(6 * 18, 12), snn.Leaky(beta=0.9, init_hidden=True),
        torch.nn.Linear(12, 4))
    net = shrink(from_snntorch(seq, (1, 40)), [[0, 2, 3, 5], list(range(0, 12, 2))])
    prune_global(net, 0.5)
    net, _ = quantize_model(net, 4, skip=["first"])
    loaded, extra = load_checkpoint(save_checkpoint(tmp_path / "imported.ckpt", net, source="snntorch"))
    assert type(loaded.spec).__name__ == "SequentialSpec" and loaded.spec == net.spec
    assert loaded.spec.widths == [4, 6] and extra == {"source": "snntorch"}
    assert list(masks_of(loaded)) == list(masks_of(net)) and _same_records(quant_records(loaded), quant_records(net))
    x = torch.randn(3, 2, 1, 40, generator=torch.Generator().manual_seed(1))  # (T, B, C, L)
    net.eval(), loaded.eval()
    with torch.no_grad():
        assert torch.equal(loaded(x), net(x))
    assert list(trainer.CHECKPOINT_SPECS) == ["VGGSpec", "ResNetSpec", "SequentialSpec"]


def test_damaged_checkpoints_raise_one_error_that_names_the_file(tmp_path, digits):
    good = save_checkpoint(tmp_path / "good.ckpt", build(spec_for(digits), seed=0))
    data = good.read_bytes()
    cases = {
        "empty.ckpt": (b"", "empty"),
        "truncated.ckpt": (data[: len(data) // 2], "cannot be read"),
        "random.ckpt": (bytes(torch.randint(0, 256, (4096,), generator=torch.Generator().manual_seed(0),
                                            dtype=torch.uint8).tolist()), "cannot be read"),
    }
    for name, (content, why) in cases.items():
        (tmp_path / name).write_bytes(content)
    torch.save(torch.zeros(3), tmp_path / "tensor.ckpt")
    cases["tensor.ckpt"] = (None, "holds a Tensor")
    torch.save({"state_dict": {}, "spec": [1]}, tmp_path / "dict.ckpt")
    cases["dict.ckpt"] = (None, r"lacks or has mistyped \['spec_type', 'spec', 'spiking'\]")
    payload = torch.load(good, weights_only=True)
    torch.save({**payload, "spec": {**payload["spec"], "features": "wide"}}, tmp_path / "spec.ckpt")
    cases["spec.ckpt"] = (None, "its spec does not build a model")
    torch.save({**payload, "state_dict": {}}, tmp_path / "weights.ckpt")
    cases["weights.ckpt"] = (None, "its weights do not fit")
    torch.save({**payload, "quant": {"body.layers.0": {"scheme": "bogus"}}}, tmp_path / "quant.ckpt")
    cases["quant.ckpt"] = (None, "its weights do not fit")
    for name, (_, why) in cases.items():
        with pytest.raises(CheckpointError, match=why) as exc:
            load_checkpoint(tmp_path / name)
        assert str(tmp_path / name) in str(exc.value), exc.value
        assert isinstance(exc.value, ValueError)
    with pytest.raises(CheckpointError, match="is a directory"):
        load_checkpoint(tmp_path)


def test_conversion_sets_percentile_thresholds_and_rescales_weights(digits):
    ann = build(spec_for(digits), spiking=False, seed=0)
    fit(ann, digits, TrainConfig(epochs=2, lr=3e-3, batch_size=32, progress=False))
    x = digits.train.x[:256]
    pct = activation_percentiles(ann, x, 99.9)
    snn = convert(ann, x, 99.9, mode="thresholds")
    for name, lif in lif_layers(snn):
        assert lif.threshold.item() == pytest.approx(pct[name])
    # the max is above the 99.9th percentile
    assert activation_percentiles(ann, x, 100.0)["body.layers.1"] >= pct["body.layers.1"]
    # the first layer reads analog input; the next ones read spikes standing for lambda * rate
    layers = snn.body.layers
    assert torch.equal(layers[0].weight, ann.body.layers[0].weight)
    torch.testing.assert_close(layers[3].weight, ann.body.layers[3].weight * pct["body.layers.1"])
    torch.testing.assert_close(layers[7].weight, ann.body.layers[7].weight * pct["body.layers.4"])
    with pytest.raises(ValueError, match="takes an ANN"):
        convert(snn, x)


def test_conversion_rescales_1d_convs_and_converts_imported_nets():
    spec = VGGSpec(in_shape=(1, 8), num_classes=3, features=(3, "P", 4), neuron=NeuronSpec(beta=1.0))
    ann = build(spec, spiking=False, seed=0)
    x = torch.rand(32, 1, 8, generator=torch.Generator().manual_seed(0))  # (B, C, L)
    pct = activation_percentiles(ann, x, 99.0)
    snn_net = convert(ann, x, 99.0, mode="thresholds")
    layers, twin = snn_net.body.layers, ann.body.layers  # conv1d, LIF, pool, conv1d, LIF, flatten, linear
    assert torch.equal(layers[0].weight, twin[0].weight)  # reads the analog input
    torch.testing.assert_close(layers[3].weight, twin[3].weight * pct["body.layers.1"])  # reads conv1's spikes
    torch.testing.assert_close(layers[6].weight, twin[6].weight * pct["body.layers.4"])
    assert layers[1].threshold.item() == pytest.approx(pct["body.layers.1"])
    # an imported net's layer list is a chain too; batch norm rules out the weight normalisation
    imported = SequentialSpec((1, 8), (Layer.of("conv1d", 3, kernel_size=3), Layer.of("batchnorm1d"),
                                       Layer.of("lif", neuron=NeuronSpec()), Layer.of("flatten"),
                                       Layer.of("linear", 3)))
    imp_ann = build(imported, spiking=False, seed=0).eval()
    converted = convert(imp_ann, x, 99.0, mode="thresholds")
    assert type(converted.spec) is SequentialSpec and converted.spiking
    torch.testing.assert_close(converted.body.layers[4].weight,
                               imp_ann.body.layers[4].weight * activation_percentiles(imp_ann, x, 99.0)["body.layers.2"])
    with pytest.raises(ValueError, match="mode='weights' needs a net without batch-norm"):
        convert(imp_ann, x)
    res = build(ResNetSpec(in_shape=(1, 8), num_classes=3, stem=2, stages=(2,), blocks=(1,)), spiking=False)
    with pytest.raises(ValueError, match="convert\\(\\) supports chain-shaped nets .* got a ResNetSpec"):
        convert(res, x)


def test_conversion_of_a_deep_net_keeps_the_ann_accuracy(digits):
    """Five weight layers: without the weight rescaling the signal fades with depth."""
    spec = VGGSpec(in_shape=digits.input_shape, num_classes=10, features=(16, 16, "P", 32, 32, "P"), hidden=(64,),
                   neuron=NeuronSpec(beta=1.0))  # integrate-and-fire, as conversion assumes
    ann = build(spec, spiking=False, seed=0)
    cfg = TrainConfig(epochs=4, lr=3e-3, batch_size=32, progress=False)
    fit(ann, digits, cfg)
    ann_acc = evaluate(ann, digits.test, cfg)
    x = digits.train.x[:512]
    by_threshold, by_weight = convert(ann, x, 99.9, mode="thresholds"), convert(ann, x)  # the defaults: 99.9, weights
    eval_cfg = cfg.replace(T=64, batch_size=128)
    assert ann_acc > 0.9
    for snn in (by_threshold, by_weight):
        acc = evaluate(snn, digits.test, eval_cfg)
        assert acc > ann_acc - 0.05, (ann_acc, acc)
    # the two normalisations differ only by a per-layer scale: the same spikes
    xs = direct(digits.test.x[:16], 16)
    out_t, out_w = by_threshold(xs), by_weight(xs)
    assert torch.all(by_weight.body.layers[1].threshold == 1.0)
    torch.testing.assert_close(out_t, out_w, rtol=1e-3, atol=1e-3)

"""Model builder: widths, ANN twins, copying and pickling, the per-step forward."""
import copy
import io
import pickle

import pytest
import torch

from snnkit.encoding import direct, model_input
from snnkit.models import (NeuronSpec, ResNetSpec, VGGSpec, build, layer_labels, lif_labels, lif_layers, probe,
                           readout)
from snnkit.neurons import LIF

SPEC = VGGSpec(in_shape=(1, 16, 16), num_classes=10, features=(16, "P", 32, "P"), hidden=(20,))


def n_params(m):
    return sum(p.numel() for p in m.parameters() if p.requires_grad)


def test_vgg_parameter_count_by_hand_and_pruned_rebuild():
    # conv 1->16: 144, conv 16->32: 4608, fc 512->20: 10240, fc 20->10: 200 (no biases)
    assert n_params(build(SPEC)) == 144 + 4608 + 10240 + 200
    small = build(SPEC.with_widths([4, 8, 5]))
    # conv 1->4: 36, conv 4->8: 288, fc 128->5: 640, fc 5->10: 50
    assert n_params(small) == 36 + 288 + 640 + 50
    assert SPEC.with_widths([4, 8, 5]).features == (4, "P", 8, "P")
    assert small(direct(torch.rand(3, 1, 16, 16), 4)).shape == (4, 3, 10)
    with pytest.raises(ValueError, match=r"widths=\[4, 8\]: expected 3"):
        SPEC.with_widths([4, 8])


def test_options_batch_norm_bias_avg_pool_and_spike_readout():
    spec = VGGSpec(in_shape=(3, 8, 8), num_classes=4, features=(6, "P"), batch_norm=True, bias=True,
                   pool="avg", readout="spike")
    m = build(spec)
    kinds = [type(l).__name__ for l in m.body.layers]
    assert kinds == ["Conv2d", "BatchNorm2d", "LIF", "AvgPool2d", "Flatten", "Linear", "LIF"]
    out = m(direct(torch.rand(2, 3, 8, 8), 5))
    assert set(out.unique().tolist()) <= {0.0, 1.0}  # spiking output layer
    with pytest.raises(ValueError, match="pool='min'"):
        VGGSpec(in_shape=(3, 8, 8), num_classes=4, pool="min")
    with pytest.raises(ValueError, match="readout='x'"):
        VGGSpec(in_shape=(3, 8, 8), num_classes=4, readout="x")


def test_ann_twin_shares_parameter_names():
    snn, ann = build(SPEC, seed=0), build(SPEC, spiking=False, seed=0)
    extra = set(snn.state_dict()) - set(ann.state_dict())
    assert extra and all(k.endswith(("beta", "threshold")) for k in extra)
    assert not set(ann.state_dict()) - set(snn.state_dict())
    torch.testing.assert_close(snn.state_dict()["body.layers.0.weight"], ann.state_dict()["body.layers.0.weight"])
    assert ann(torch.rand(2, 1, 16, 16)).shape == (2, 10)
    with pytest.raises(ValueError, match=r"expected \(T, B, C, H, W\)"):
        snn(torch.rand(2, 1, 16, 16))


def test_seed_makes_weights_deterministic_without_touching_global_rng():
    torch.manual_seed(5)
    before = torch.rand(1)
    torch.manual_seed(5)
    a = build(SPEC, seed=3)
    after = torch.rand(1)
    b = build(SPEC, seed=3)
    assert torch.equal(before, after)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_direct_input_runs_first_layer_once_and_matches_materialised_input():
    m = build(SPEC, seed=1)
    x = torch.rand(4, 1, 16, 16)
    calls = []
    m.body.layers[0].register_forward_hook(lambda mod, i, o: calls.append(i[0].shape[0]))
    out_view = m(direct(x, 6))
    out_copy = m(direct(x, 6).contiguous())
    assert calls == [4, 24]  # once for the view, T*B rows for the copy
    assert torch.equal(out_view, out_copy)


@pytest.mark.parametrize("spec", [SPEC, ResNetSpec(in_shape=(3, 8, 8), num_classes=5, blocks=(1, 1, 1))])
def test_stepwise_forward_equals_default_forward(spec):
    m = build(spec, seed=2).eval()
    x = direct(torch.rand(3, *spec.in_shape) * 3, 5)
    with torch.no_grad():
        assert torch.equal(m.body.stepwise(x), m(x))
        xr = torch.rand(5, 3, *spec.in_shape) * 3
        torch.testing.assert_close(m.body.stepwise(xr), m(xr), rtol=0, atol=1e-6)


def test_resnet_widths_and_twin():
    spec = ResNetSpec(in_shape=(3, 16, 16), num_classes=10, blocks=(2, 1, 1))
    assert spec.widths == [16, 16, 32, 64]
    small = build(spec.with_widths([4, 4, 8, 8]))
    assert n_params(small) < n_params(build(spec))
    assert small(direct(torch.rand(2, 3, 16, 16), 3)).shape == (3, 2, 10)
    assert build(spec, spiking=False)(torch.rand(2, 3, 16, 16)).shape == (2, 10)
    assert len(lif_layers(build(spec))) == 1 + 2 * 4


def test_models_copy_pickle_and_roundtrip_after_forward_with_gradients():
    m = build(VGGSpec(in_shape=(1, 8, 8), num_classes=3, features=(4, "P"),
                      neuron=NeuronSpec(learn_beta=True, learn_threshold=True, per_channel=True)), seed=0)
    x = direct(torch.rand(2, 1, 8, 8), 4)
    readout(m(x)).sum().backward()
    for clone in (copy.deepcopy(m), pickle.loads(pickle.dumps(m))):
        assert torch.equal(clone(x), m(x))
    buf = io.BytesIO()
    torch.save(m.state_dict(), buf)
    buf.seek(0)
    fresh = build(m.spec)
    fresh.load_state_dict(torch.load(buf, weights_only=True))
    assert torch.equal(fresh(x), m(x))


def test_probe_sees_every_lif_layer_and_is_removed():
    m = build(SPEC, seed=0)
    seen = {}
    with probe(m, lambda name, spk, mem: seen.__setitem__(name, (spk.shape, mem.shape))):
        m(direct(torch.rand(2, 1, 16, 16), 3))
    assert list(seen) == [n for n, _ in lif_layers(m)]
    assert seen["body.layers.1"] == ((3, 2, 16, 16, 16), (3, 2, 16, 16, 16))
    assert all(l.probe is None for _, l in lif_layers(m))
    assert isinstance(lif_layers(m)[0][1], LIF)


# --------------------------------------------------------------------------- 1-D sequences

SPEC_1D = VGGSpec(in_shape=(1, 40), num_classes=10, features=(8, "P", 16, "P"), hidden=(12,))


def test_vgg_1d_parameter_count_by_hand_shapes_and_pruned_rebuild():
    # conv1d 1->8 k3: 24, conv1d 8->16: 384, fc 16*10->12: 1920, fc 12->10: 120 (no biases)
    m = build(SPEC_1D, seed=0)
    assert n_params(m) == 24 + 384 + 1920 + 120
    kinds = [type(l).__name__ for l in m.body.layers]
    assert kinds == ["Conv1d", "LIF", "MaxPool1d", "Conv1d", "LIF", "MaxPool1d", "Flatten", "Linear", "LIF", "Linear"]
    assert m(direct(torch.rand(3, 1, 40), 4)).shape == (4, 3, 10)
    small = build(SPEC_1D.with_widths([4, 6, 5]))
    # conv 1->4: 12, conv 4->6: 72, fc 60->5: 300, fc 5->10: 50
    assert n_params(small) == 12 + 72 + 300 + 50
    ann = build(SPEC_1D, spiking=False)
    assert ann(torch.rand(3, 1, 40)).shape == (3, 10)
    assert layer_labels(m) == {"body.layers.0": "conv1", "body.layers.3": "conv2", "body.layers.7": "fc3",
                               "body.layers.9": "fc4"}
    # every LIF layer is named for the layer feeding it; the readout layer has none
    assert lif_labels(m) == {"body.layers.1": "conv1", "body.layers.4": "conv2", "body.layers.8": "fc3"}
    with pytest.raises(ValueError, match=r"expected \(T, B, C, L\) for in_shape \(1, 40\)"):
        m(torch.rand(3, 1, 40))
    with pytest.raises(ValueError, match=r"expected \(B, C, L\)"):
        ann(torch.rand(2, 3, 1, 40))


def test_1d_avg_pool_net_matches_a_hand_computed_pool():
    spec = VGGSpec(in_shape=(2, 8), num_classes=3, features=(4, "P"), pool="avg")
    ann = build(spec, spiking=False, seed=0)
    assert isinstance(ann.body.layers[2], torch.nn.AvgPool1d)
    x = torch.rand(5, 2, 8)
    h = torch.relu(ann.body.layers[0](x))  # (5, 4, 8)
    by_hand = (h[..., 0::2] + h[..., 1::2]) / 2
    torch.testing.assert_close(ann.body.layers[2](h), by_hand)
    assert build(spec)(direct(x, 3)).shape == (3, 5, 3)


@pytest.mark.parametrize("encoding", ["direct", "rate"])
def test_1d_snn_takes_direct_and_rate_input(encoding):
    m = build(SPEC_1D, seed=1).eval()
    x = torch.rand(4, 1, 40)
    inp = model_input(x, 6, encoding, generator=torch.Generator().manual_seed(0))
    assert inp.shape == (6, 4, 1, 40)
    if encoding == "rate":
        assert set(inp.unique().tolist()) <= {0.0, 1.0}
    with torch.no_grad():
        torch.testing.assert_close(m.body.stepwise(inp), m(inp), rtol=0, atol=1e-6)


def test_resnet_1d_widths_and_twin():
    spec = ResNetSpec(in_shape=(1, 40), num_classes=10, stem=8, stages=(8, 16), blocks=(1, 1))
    m = build(spec, seed=0)
    convs = [type(x).__name__ for x in m.modules() if isinstance(x, torch.nn.modules.conv._ConvNd)]
    assert set(convs) == {"Conv1d"} and len(convs) == 1 + 2 + 2 + 1  # stem, 2 blocks, 1 projection
    assert any(isinstance(x, torch.nn.AdaptiveAvgPool1d) for x in m.modules())
    assert m(direct(torch.rand(2, 1, 40), 3)).shape == (3, 2, 10)
    small = build(spec.with_widths([4, 4]))
    assert n_params(small) < n_params(m)
    assert build(spec, spiking=False)(torch.rand(2, 1, 40)).shape == (2, 10)


def test_in_shape_errors_name_the_value():
    with pytest.raises(ValueError, match=r"in_shape=\(1, 2, 3, 4\): expected \(C, H, W\) for images or \(C, L\)"):
        VGGSpec(in_shape=(1, 2, 3, 4), num_classes=3)
    with pytest.raises(ValueError, match=r"in_shape=\(0, 8\)"):
        VGGSpec(in_shape=(0, 8), num_classes=3)
    assert VGGSpec(in_shape=[1, 8], num_classes=3).in_shape == (1, 8)  # a list becomes a tuple
    with pytest.raises(ValueError, match="too many pools"):
        build(VGGSpec(in_shape=(1, 3), num_classes=3, features=(4, "P", 4, "P")))

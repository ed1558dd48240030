"""Model builder: widths, ANN twins, copying and pickling, the per-step forward."""
import copy
import io
import pickle

import pytest
import torch

from snnkit.encoding import direct
from snnkit.models import NeuronSpec, ResNetSpec, VGGSpec, build, lif_layers, probe, readout
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

"""The papers' nets as presets: built by the one builder, sized as published, shrinkable."""
from pathlib import Path

import pytest
import torch

from snnkit import presets
from snnkit.compress.surgery import mask_channels, shrink
from snnkit.data import LOADERS
from snnkit.datafiles import FILE_SETS
from snnkit.encoding import direct
from snnkit.metrics import count_params
from snnkit.models import NeuronSpec, ResNetSpec, VGGSpec, build, layer_labels, lif_layers

CIFAR, GESTURE = ((3, 32, 32), 10), ((2, 128, 128), 11)
SHAPES = {"vgg9": CIFAR, "vgg11": CIFAR, "vgg16": CIFAR, "resnet20": CIFAR, "gesture-c128x5": GESTURE}
README = Path(__file__).resolve().parent.parent / "README.md"


def test_every_preset_is_listed_here():
    assert set(presets.names()) == set(SHAPES)


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_preset_builds_runs_and_shrinks(name):
    in_shape, k = SHAPES[name]
    spec = presets.get(name, in_shape, k, neuron=NeuronSpec(beta=0.5, reset="zero"))
    assert isinstance(spec, (VGGSpec, ResNetSpec)) and spec.neuron.beta == 0.5
    net = build(spec, seed=0)
    x = direct(torch.rand(2, *in_shape, generator=torch.Generator().manual_seed(0)), 2)  # (T=2, B=2, C, H, W)
    with torch.no_grad():
        out = net(x)
    assert out.shape == (2, 2, k) and torch.isfinite(out).all()
    # one LIF per conv / hidden layer; a ResNet has its stem's and two per block
    assert len(lif_layers(net)) == (1 + 2 * len(spec.widths) if isinstance(spec, ResNetSpec) else len(spec.widths))
    # surgery: keep the first half of the channels of the first prunable layer, all of the others
    keep = [list(range(w)) for w in spec.widths]
    keep[0] = keep[0][: spec.widths[0] // 2]
    small = shrink(net, keep)
    assert small.spec.widths[0] == spec.widths[0] // 2 and small.spec.widths[1:] == spec.widths[1:]
    assert count_params(small) < count_params(net)
    with torch.no_grad():
        assert torch.allclose(small(x), mask_channels(net, keep)(x), atol=1e-5)


@pytest.mark.parametrize("name", [n for n in sorted(SHAPES) if presets.PRESETS.get(n).published_params])
def test_parameter_count_matches_the_published_one(name):
    preset = presets.PRESETS.get(name)
    in_shape, k = preset.published_for
    net = build(presets.get(name, in_shape, k), seed=0)
    n = count_params(net, trainable_only=True)  # weights only: leak and threshold are frozen here
    assert n == pytest.approx(preset.published_params, rel=0.02), (name, n)


def test_known_counts_exactly():
    # hand counts: VGG16's 13 convs (3x3, no bias) are 14,710,464 weights, plus 512 x 10;
    # ResNet20 with projection shortcuts: 272,464 (He et al.: 0.27 M)
    counts = {n: count_params(build(presets.get(n, *CIFAR)), trainable_only=True) for n in ("vgg16", "resnet20", "vgg9")}
    assert counts == {"vgg16": 14_710_464 + 5_120, "resnet20": 272_464, "vgg9": 11_073_216}
    assert count_params(build(presets.get("gesture-c128x5", *GESTURE)), trainable_only=True) == 1_648_640


def test_width_multiplier_and_overrides():
    half = presets.get("vgg9", *CIFAR, width=0.5)
    assert half.widths == [32, 64, 128, 128, 256, 256, 256, 1024]
    wide = presets.get("resnet20", *CIFAR, width=2)
    assert (wide.stem, wide.stages) == (32, (32, 64, 128)) and wide.widths == [32] * 3 + [64] * 3 + [128] * 3
    bn = presets.get("vgg16", *CIFAR, batch_norm=True, pool="max", readout="spike")
    assert (bn.batch_norm, bn.pool, bn.readout) == (True, "max", "spike")
    net = build(bn)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules()) == 13
    assert layer_labels(net)["body.layers.0"] == "conv1"


def test_bad_requests_name_the_value():
    with pytest.raises(ValueError, match="unknown preset 'vgg19'; expected one of: vgg9"):
        presets.get("vgg19", *CIFAR)
    with pytest.raises(ValueError, match="width=0: expected a positive number"):
        presets.get("vgg9", *CIFAR, width=0)
    with pytest.raises(ValueError, match="unknown override.*dropout.*expected fields of VGGSpec"):
        presets.get("vgg9", *CIFAR, dropout=0.5)
    with pytest.raises(ValueError, match="pools 5 times: expected an input of at least 32x32 pixels, got 16x16"):
        presets.get("gesture-c128x5", (2, 16, 16), 11)


def test_describe_names_source_and_differences():
    text = presets.describe("resnet20")
    assert text.startswith("resnet20: paper 4") and "Differences:" in text and "6 M" in text


def test_gesture_preset_on_the_kits_32x32_frames():
    # the kit's DVS Gesture frames are pooled to 32x32 by default: five pools leave 1x1x128
    net = build(presets.get("gesture-c128x5", (2, 32, 32), 11), seed=0)
    fc = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in fc] == [(128, 512), (512, 11)]
    x = torch.rand(4, 3, 2, 32, 32, generator=torch.Generator().manual_seed(1)).lt(0.2).float()  # (T, B, 2, H, W)
    with torch.no_grad():
        assert net(x).shape == (4, 3, 11)


# ------------------------------------------------------------------------- paper settings


def test_paper_settings_name_known_data_presets_and_notebooks():
    notebooks = {p.stem for p in (Path(__file__).resolve().parent.parent / "notebooks").glob("0[1-6]_*.ipynb")}
    assert set(presets.PAPER_SETTINGS) == notebooks
    for nb, s in presets.PAPER_SETTINGS.items():
        assert s.dataset in FILE_SETS and s.dataset in LOADERS, nb
        assert s.preset in presets.names(), nb
        assert list(s.timesteps) == sorted(s.timesteps, reverse=True) and min(s.timesteps) >= 1, nb
        assert s.encoding in ("direct", "rate", "events"), nb
        assert (s.encoding == "events") == (s.dataset in ("dvs-gesture", "n-mnist")), nb


def test_paper_settings_match_the_papers():
    s = presets.PAPER_SETTINGS
    assert (s["01_spatiotemporal_pca"].dataset, s["01_spatiotemporal_pca"].preset,
            s["01_spatiotemporal_pca"].timesteps, s["01_spatiotemporal_pca"].encoding) == ("cifar10", "vgg9", (100, 50, 25), "rate")
    assert (s["02_attention_guided"].preset, s["02_attention_guided"].timesteps) == ("vgg16", (5,))
    assert (s["03_quant_prune_hardware"].dataset, s["03_quant_prune_hardware"].data_options["timesteps"]) == ("dvs-gesture", 20)
    assert (s["04_qpsnn"].preset, s["04_qpsnn"].timesteps) == ("resnet20", (2,))
    assert (s["05_dynamic_spatiotemporal"].preset, s["05_dynamic_spatiotemporal"].timesteps) == ("gesture-c128x5", (10,))
    assert s["06_comparison"].dataset == "cifar10"


@pytest.mark.parametrize("nb", sorted(presets.PAPER_SETTINGS))
def test_paper_settings_spec_builds_for_its_data(nb):
    s = presets.PAPER_SETTINGS[nb]
    shape = {"cifar10": CIFAR, "dvs-gesture": ((2, s.data_options.get("size", 32), s.data_options.get("size", 32)), 11)}
    in_shape, k = shape[s.dataset]
    spec = s.spec(in_shape, k)
    assert spec.neuron == s.neuron and spec.in_shape == in_shape


def test_readme_carries_the_settings_table():
    assert presets.settings_table() in README.read_text(encoding="utf-8")

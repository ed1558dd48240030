"""NIR export: the LIF mapping, refusals, the .nir file round trip, and two other readers."""
from __future__ import annotations

import logging
import re

import nir
import numpy as np
import pytest
import torch
from interop_util import dyadic_, dyadic_input, run_with_membranes, spike_rates
from torch import nn

from snnkit.compress.masks import masks_of, prune_global
from snnkit.compress.quant import quant_records, quantize_model
from snnkit.interop import (
    DEFAULT_DT, Layer, SequentialSpec, fold_batch_norm, from_nir, graph_table, lif_parameters, read_nir, run_snntorch,
    to_nir, write_nir,
)
from snnkit.models import NeuronSpec, ResNetSpec, VGGSpec, build

ZERO = NeuronSpec(beta=0.9, threshold=1.0, reset="zero")


def vgg(neuron: NeuronSpec = ZERO, pool: str = "avg", **kw) -> nn.Module:
    spec = VGGSpec(in_shape=(2, 12, 12), num_classes=5, features=(8, "P", 12, "P"), hidden=(16,), pool=pool,
                   bias=True, readout="spike", neuron=neuron, **kw)
    return dyadic_(build(spec, seed=0)).eval()


def resnet(neuron: NeuronSpec = ZERO) -> nn.Module:
    spec = ResNetSpec(in_shape=(2, 8, 8), num_classes=4, stem=8, stages=(8, 12), blocks=(1, 1), batch_norm=False,
                      bias=True, readout="spike", neuron=neuron)
    return dyadic_(build(spec, seed=0), gain=6).eval()


def conv1d() -> nn.Module:
    spec = SequentialSpec((2, 24), (Layer.of("conv1d", 6, kernel_size=5, stride=2), Layer.of("lif", neuron=ZERO),
                                    Layer.of("conv1d", 8, kernel_size=3, padding=1), Layer.of("lif", neuron=ZERO),
                                    Layer.of("flatten"), Layer.of("linear", 4), Layer.of("lif", neuron=ZERO)))
    return dyadic_(build(spec, seed=0)).eval()


def test_lif_parameters_follow_the_euler_step():
    p = lif_parameters(0.9, 1.5, dt=1e-3)
    assert p["tau"] == pytest.approx(1e-2) and p["r"] == pytest.approx(10.0)
    assert p["v_leak"] == 0 and p["v_reset"] == 0 and p["v_threshold"] == 1.5
    # one Euler step of tau dv/dt = (v_leak - v) + r I is snnkit's U = beta U + I
    v, i = 0.7, 0.3
    assert v + 1e-3 / p["tau"] * (p["v_leak"] - v + p["r"] * i) == pytest.approx(0.9 * v + i, abs=1e-12)
    # written as float64, the leak comes back to the float32 value exactly
    betas = torch.rand(1000, generator=torch.Generator().manual_seed(0))
    back = 1 - DEFAULT_DT / lif_parameters(betas.numpy(), 1.0)["tau"]
    assert torch.equal(torch.from_numpy(back).float(), betas)
    with pytest.raises(ValueError, match=r"beta=\[1.0\]: expected leaks in \[0, 1\)"):
        lif_parameters(1.0, 1.0)
    with pytest.raises(ValueError, match="dt=0: expected a positive time step"):
        lif_parameters(0.5, 1.0, dt=0)


def test_vgg_graph_nodes_names_and_parameters():
    net = vgg()
    g = to_nir(net, dt=1e-3)
    assert list(g.nodes) == ["input", "conv1", "lif1", "pool1", "conv2", "lif2", "pool2", "flatten1", "fc3", "lif3",
                             "fc4", "lif4", "output"]
    chain = ["input", *list(g.nodes)[1:]]
    assert g.edges == list(zip(chain[:-1], chain[1:]))
    assert g.metadata == {"dt": 1e-3, "readout": "spike"}
    conv = g.nodes["conv1"]
    assert isinstance(conv, nir.Conv2d) and np.array_equal(conv.weight, net.body.layers[0].weight.detach().numpy())
    lif = g.nodes["lif1"]
    assert lif.tau.shape == (8, 12, 12) and lif.tau.dtype == np.float64
    assert np.allclose(lif.tau, 1e-2) and np.allclose(lif.r, 10) and (lif.v_reset == 0).all()
    assert list(g.nodes["pool1"].kernel_size) == [2, 2]
    assert g.nodes["flatten1"].start_dim == 0 and list(g.nodes["flatten1"].output_type["output"]) == [12 * 3 * 3]
    assert isinstance(g.nodes["fc3"], nir.Affine) and g.nodes["lif3"].tau.shape == (16,)


def test_per_channel_leaks_and_the_if_node():
    net = vgg(NeuronSpec(beta=0.9, threshold=1.0, reset="zero", per_channel=True))
    with torch.no_grad():
        net.body.layers[1].beta.copy_(torch.linspace(0.1, 0.9, 8))
        net.body.layers[1].threshold.copy_(torch.linspace(0.5, 1.2, 8))
    g = to_nir(net)
    beta = 1 - DEFAULT_DT / g.nodes["lif1"].tau
    assert np.allclose(beta[:, 0, 0], np.linspace(0.1, 0.9, 8)) and (beta == beta[:, :1, :1]).all()
    assert np.allclose(g.nodes["lif1"].v_threshold[:, 3, 5], np.linspace(0.5, 1.2, 8))
    net2 = vgg(NeuronSpec(beta=1.0, threshold=1.0, reset="zero"))
    node = to_nir(net2, dt=0.5).nodes["lif1"]
    assert isinstance(node, nir.IF) and np.allclose(node.r, 2.0)
    with torch.no_grad():
        net.body.layers[1].beta[0] = 1.0
    with pytest.raises(ValueError, match="LIF at body.layers.1: leak 1 .* in some channels"):
        to_nir(net)


REFUSED = [
    (lambda: vgg(pool="max"), "MaxPool2d at body.layers.2: NIR has no max pooling"),
    (lambda: vgg(NeuronSpec(reset="subtract")), "LIF at body.layers.1: reset='subtract': NIR's LIF resets"),
    (lambda: vgg(NeuronSpec(reset="none")), "LIF at body.layers.1: reset='none'"),
    (lambda: vgg(batch_norm=True), "BatchNorm2d at body.layers.1: NIR has no batch-norm node"),
    (lambda: build(SequentialSpec((2, 16), (Layer.of("conv1d", 4, kernel_size=3), Layer.of("lif", neuron=ZERO),
                                            Layer.of("avgpool1d", kernel_size=2), Layer.of("flatten"),
                                            Layer.of("linear", 3)))),
     "AvgPool1d at body.layers.2: NIR has no 1-D pooling node"),
    (lambda: build(SequentialSpec((2, 6, 6), (Layer.of("conv2d", 4, kernel_size=3), Layer.of("lif", neuron=ZERO),
                                              Layer.of("avgpool2d", kernel_size=2, padding=1), Layer.of("flatten"),
                                              Layer.of("linear", 3)))),
     "AvgPool2d at body.layers.2: padding=1"),
    (lambda: build(VGGSpec(in_shape=(1, 8, 8), num_classes=3), spiking=False), "(an ANN twin)"),
]


@pytest.mark.parametrize("make,message", REFUSED, ids=[m for _, m in REFUSED])
def test_what_nir_cannot_express_is_refused_by_name(make, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        to_nir(make())


def test_nir_file_round_trip(tmp_path):
    net = vgg()
    g = to_nir(net)
    path = write_nir(g, tmp_path / "vgg.nir")
    assert path.is_file() and not list(tmp_path.glob("*.tmp"))
    back = read_nir(path)
    assert set(back.nodes) == set(g.nodes) and set(back.edges) == set(g.edges)
    for name, node in g.nodes.items():
        for key in ("weight", "bias", "tau", "r", "v_threshold", "v_reset", "v_leak", "kernel_size"):
            if hasattr(node, key):
                assert np.array_equal(getattr(node, key), getattr(back.nodes[name], key)), (name, key)
    x = dyadic_input((10, 4, 2, 12, 12))
    out, mems = run_with_membranes(net, x)
    assert all(0.02 < r < 0.9 for r in spike_rates(net, x).values())
    again = from_nir(path)
    assert again.spec.readout == "spike" and again.spec.widths == [8, 12, 16]
    out2, mems2 = run_with_membranes(again, x)
    assert (out - out2).abs().max().item() == 0.0
    for a, b in zip(mems.values(), mems2.values()):
        assert (a - b).abs().max().item() == 0.0
    net1d = conv1d()
    x1d = dyadic_input((10, 4, 2, 24))
    with torch.no_grad():
        assert torch.equal(from_nir(write_nir(net1d, tmp_path / "c.nir"))(x1d), net1d(x1d))
    assert isinstance(read_nir(tmp_path / "c.nir").nodes["conv1"], nir.Conv1d)
    with pytest.raises(ValueError, match="no such file"):
        read_nir(tmp_path / "missing.nir")
    (tmp_path / "junk.nir").write_text("not hdf5")
    with pytest.raises(ValueError, match="junk.nir: not a readable NIR file"):
        read_nir(tmp_path / "junk.nir")


def test_compressed_export_writes_zeros_levels_and_records(tmp_path):
    net = vgg()
    prune_global(net, 0.7)
    qnet, _ = quantize_model(net, bits=2)
    records = quant_records(qnet)
    back = read_nir(write_nir(qnet, tmp_path / "q.nir"))
    masks = masks_of(qnet)
    for name, key in (("conv1", "body.layers.0"), ("fc4", "body.layers.9")):
        w = back.nodes[name].weight
        levels = records[key].levels().numpy()
        assert set(np.unique(w).tolist()) <= set(levels.tolist()) and len(levels) == 3
        assert (w[masks[f"{key}.weight"].numpy() == 0] == 0).all()
        meta = back.nodes[name].metadata
        assert int(meta["quant_bits"]) == 2 and np.allclose(meta["quant_scale"], records[key].scale.numpy())
    x = dyadic_input((10, 4, 2, 12, 12))
    with torch.no_grad():
        expected = qnet(x)
    assert (from_nir(back)(x) - expected).abs().max().item() == 0.0


def test_graph_table_describes_each_node_with_its_numbers(tmp_path):
    net = vgg()
    prune_global(net, 0.7)
    qnet, _ = quantize_model(net, bits=2)
    graph = to_nir(qnet, dt=1e-3)
    rows = {r["node"]: r for r in graph_table(graph)}
    assert list(rows) == list(graph.nodes)
    # read back from a file, the nodes come in alphabetical order; the table follows the edges
    back = read_nir(write_nir(graph, tmp_path / "q.nir"))
    assert list(back.nodes) != list(graph.nodes) and [r["node"] for r in graph_table(back)] == list(graph.nodes)
    assert graph_table(back) == list(rows.values())
    res = [r["node"] for r in graph_table(to_nir(resnet()))]  # shortcuts: both branches before their sum
    assert res.index("conv5") < res.index("lif5") and res.index("conv6") < res.index("lif5")  # conv6: shortcut conv
    assert res.index("conv3") < res.index("lif3") and res[0] == "input" and res[-1] == "output"
    assert [rows[n]["shape"] for n in ("input", "conv1", "pool1", "flatten1", "fc4")] == ["2x12x12", "8x12x12",
                                                                                        "8x6x6", "108", "5"]
    nonzero = int((qnet.body.layers[0].weight != 0).sum())  # the masked, quantized conv1 as it runs
    w = graph.nodes["conv1"].weight
    assert int(np.count_nonzero(w)) == nonzero < 144 and w.shape == (8, 2, 3, 3)
    assert rows["conv1"]["holds"] == (f"weight 8x2x3x3, {nonzero} of 144 non-zero, 2-bit uniform codes "
                                      "(3 levels used), stride 1x1, padding 1x1")
    assert rows["fc4"]["type"] == "Affine" and rows["fc4"]["holds"].startswith("weight 5x16, ")
    assert rows["pool1"]["holds"] == "kernel 2x2, stride 2x2"
    # beta 0.9 at dt = 1 ms: tau = dt / (1 - beta) = 10 ms, r = tau / dt = 10
    assert rows["lif1"]["holds"] == ("tau 10 ms, r 10, v_leak 0, v_threshold 1, v_reset 0: "
                                     "leak 0.9 per step of 1 ms")
    # per-channel leaks 0.5 and 0.75 at the default dt (0.1 ms): tau 0.2 and 0.4 ms, shown as ranges
    spec = SequentialSpec((2, 4), (Layer.of("conv1d", 2, kernel_size=1),
                                   Layer.of("lif", neuron=NeuronSpec(beta=0.5, reset="zero", per_channel=True))))
    pc = build(spec, seed=0)
    with torch.no_grad():
        pc.body.layers[1].beta.copy_(torch.tensor([0.5, 0.75]))
    lif = graph_table(to_nir(pc))[2]
    assert lif["holds"].startswith("tau 0.2-0.4 ms, r 2-4,") and lif["holds"].endswith("leak 0.5-0.75 per step of 0.1 ms")


def test_from_nir_refuses_what_snnkit_cannot_hold():
    g = to_nir(resnet())
    with pytest.raises(ValueError, match="node 'lif1' has 1 inputs and 2 outputs: snnkit reads chains"):
        from_nir(g)
    g = to_nir(vgg())
    g.nodes["lif1"].v_leak = np.ones_like(g.nodes["lif1"].v_leak)
    with pytest.raises(ValueError, match="node 'lif1': v_leak != 0"):
        from_nir(g)
    with pytest.raises(ValueError, match=r"node 'lif1': input gain r\*dt/tau = \[10.0\] at dt=0.001"):
        from_nir(to_nir(vgg()), dt=1e-3)
    g = to_nir(vgg())
    g.nodes["pool1"] = nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))
    with pytest.raises(ValueError, match=r"node 'pool1' \(SumPool2d\): snnkit reads"):
        from_nir(g)


# --- other readers -------------------------------------------------------------------


@pytest.mark.parametrize("make", [vgg, resnet, conv1d], ids=["vgg", "resnet", "conv1d"])
def test_snntorch_reads_the_graph_and_gives_the_same_spikes(make, capsys):
    from snntorch.import_nir import import_from_nir

    net = make()
    x = dyadic_input((10, 3, *net.spec.in_shape))
    rates = spike_rates(net, x)
    assert all(0.02 < r < 0.9 for r in rates.values()), rates
    with torch.no_grad():
        expected = net(x)
    reader = import_from_nir(to_nir(net))
    leaks = [m for m in reader.modules() if type(m).__name__ == "Leaky"]
    assert len(leaks) == len(rates) and all(m.reset_mechanism == "zero" and not m.reset_delay for m in leaks)
    out = run_snntorch(reader, x, per_sample=True)  # NIR's Flatten has no batch dimension
    assert out.shape == expected.shape and (out - expected).abs().max().item() == 0.0
    # beta = 1 - dt/tau, cast to float32 by nirtorch, is snnkit's leak to the last bit
    assert leaks[0].beta.dtype == torch.float32
    assert torch.equal(leaks[0].beta.flatten()[0], net.body.layers[1].beta.detach())


def test_snntorch_reader_assumes_dt_1e_4():
    from snntorch.import_nir import import_from_nir

    reader = import_from_nir(to_nir(vgg(), dt=1e-3))  # a valid graph for dt = 1 ms ...
    leak = next(m for m in reader.modules() if type(m).__name__ == "Leaky")
    assert leak.beta.flatten()[0].item() == pytest.approx(1 - 1e-4 / 1e-2)  # ... read with dt = 0.1 ms: 0.99


def _per_sample(run, x: torch.Tensor) -> torch.Tensor:
    """Run a reader on one unbatched sample at a time (NIR's Flatten has no batch dimension)."""
    return torch.stack([run(x[:, b]) for b in range(x.shape[1])], 1)


def _norse_run(module, x: torch.Tensor) -> torch.Tensor:
    state, outs = None, []
    for t in range(x.shape[0]):
        y, state = module(x[t], state)
        outs.append(y)
    return torch.stack(outs)


def _chain_net(beta: float) -> nn.Module:
    neuron = NeuronSpec(beta=beta, threshold=1.0, reset="zero")
    spec = SequentialSpec((2, 12, 12), (Layer.of("conv2d", 8, kernel_size=3, stride=2), Layer.of("lif", neuron=neuron),
                                        Layer.of("flatten"), Layer.of("linear", 20), Layer.of("lif", neuron=neuron),
                                        Layer.of("linear", 5), Layer.of("lif", neuron=neuron)))
    return dyadic_(build(spec, seed=0)).eval()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # norse calls nirtorch.load
def test_norse_reads_the_graph_but_ignores_r():
    """norse 1.1's from_nir integrates dv = dt/tau (v_leak - v + I): it drops the node's r.

    With r = 1 (beta = 0) it agrees with snnkit; with beta > 0 its membrane is (1 - beta)
    times NIR's and it fires less; multiplying each LIF cell's input by the node's r makes
    it agree again, which pins the difference on r alone.
    """
    norse = pytest.importorskip("norse.torch")
    logging.disable(logging.WARNING)  # norse logs a warning for every node with r != 1
    try:
        x = dyadic_input((12, 4, 2, 12, 12))
        for beta in (0.0, 0.9):
            net = _chain_net(beta)
            with torch.no_grad():
                expected = net(x)
            assert expected.mean() > 0.02
            graph = to_nir(net)
            reader = norse.from_nir(graph, dt=DEFAULT_DT)
            plain = _per_sample(lambda s: _norse_run(reader, s), x)
            if beta == 0.0:
                assert (plain - expected).abs().max().item() == 0.0
            else:
                assert plain.sum() < 0.5 * expected.sum()
            for name, node in graph.nodes.items():
                if isinstance(node, nir.LIF):
                    cell, r = getattr(reader, name), torch.as_tensor(node.r, dtype=torch.float32)
                    cell.forward = (lambda f, r: lambda inp, s=None: f(inp * r, s))(cell.forward, r)
            scaled = _per_sample(lambda s: _norse_run(reader, s), x)
            assert (scaled != expected).float().mean().item() <= 1e-3
    finally:
        logging.disable(logging.NOTSET)


def test_fold_batch_norm():
    net = vgg(batch_norm=True)
    gen = torch.Generator().manual_seed(1)
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.rand(m.num_features, generator=gen) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
    folded = fold_batch_norm(net)
    assert folded.spec.batch_norm is False and folded.spec.bias is True
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in folded.modules())
    bn, conv = net.body.layers[1], net.body.layers[0]
    s = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    assert torch.allclose(folded.body.layers[0].bias, (conv.bias - bn.running_mean) * s + bn.bias)
    x = dyadic_input((10, 4, 2, 12, 12))
    _, mems = run_with_membranes(net, x)
    _, mems2 = run_with_membranes(folded, x)
    for a, b in zip(mems.values(), mems2.values()):
        assert (a - b).abs().max().item() < 1e-4
    to_nir(folded)  # exportable now
    qnet, _ = quantize_model(net, bits=4)
    with pytest.raises(ValueError, match="fold first, then quantize"):
        fold_batch_norm(qnet)

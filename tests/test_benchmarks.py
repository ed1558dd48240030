"""Smoke tests of the benchmarks in benchmarks/: tiny sizes, the code paths and the numbers
that do not depend on timing (spike identity, MAC counts, ratios of given figures).
No timing is asserted."""
from __future__ import annotations

import importlib.util
import json
import os
import sys

import pytest
import torch

from snnkit import engine as snn_engine
from snnkit.compress.planners import Selection
from snnkit.models import lif_layers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load(name: str):
    """Import benchmarks/<name>.py under the module name bench_<name>."""
    path = os.path.join(ROOT, "benchmarks", f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def common():
    _load("engine")  # puts benchmarks/ on sys.path
    import common as c

    return c


@pytest.fixture(scope="module")
def engine():
    return _load("engine")


@pytest.fixture(scope="module")
def pruned():
    return _load("pruned")


@pytest.fixture(scope="module")
def growth():
    return _load("growth")


# ---------------------------------------------------------------------------------------
# shared helpers


def test_round_robin_runs_every_step_in_turn_and_per_second_uses_the_median(common):
    calls = []
    steps = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    times = common.round_robin(steps, repeats=3, warmup=1)
    assert calls == ["a", "b"] + ["a", "b"] * 3  # warm-up of each, then rounds in turn
    assert {k: len(v) for k, v in times.items()} == {"a": 3, "b": 3}
    assert common.per_second([0.5, 0.1, 0.2], 10) == pytest.approx(50.0)  # 10 / median 0.2
    with pytest.raises(ValueError, match="repeats=0"):
        common.round_robin(steps, repeats=0)


def test_self_times_profiles_each_step_in_turn(common):
    calls = []
    a, b = torch.ones(64, 64), torch.ones(8, 8)
    steps = {"big": lambda: calls.append("big") or a.mm(a), "small": lambda: calls.append("small") or b.add(b)}
    out = common.self_times(steps, rounds=2)
    assert calls == ["big", "small"] * 3  # one untimed call of each, then rounds in turn
    assert [len(v) for v in out.values()] == [2, 2]
    assert all("aten::mm" in r and "aten::add" not in r for r in out["big"])
    assert all("aten::add" in r and r["aten::add"] > 0 for r in out["small"])
    with pytest.raises(ValueError, match="rounds=0"):
        common.self_times(steps, rounds=0)


def test_torch_threads_restores_the_thread_count(common):
    before = torch.get_num_threads()
    with common.torch_threads(before + 1) as n:
        assert n == torch.get_num_threads() == before + 1
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="threads=0"):
        with common.torch_threads(0):
            pass


def test_table_aligns_columns_and_formats_values(common):
    text = common.table(["name", "x", "note"], [["a", 1.234, "left"], ["bb", 1234.0, None], ["c", True, "x"]])
    lines = text.splitlines()
    assert lines[0].split() == ["name", "x", "note"]
    assert "1.23" in lines[2] and "1234" in lines[3] and lines[3].rstrip().endswith("-")
    assert "yes" in lines[4]
    assert len({len(line) for line in lines[:2]}) == 1  # header and rule line up


# ---------------------------------------------------------------------------------------
# engine


def test_engine_peers_share_weights_and_snntorch_spikes_are_identical(engine):
    setup = engine.Setup(T=6, batch=4)
    ours = engine.build(engine.spec_of(setup), seed=0)
    ref = engine.copy_weights(ours, engine.SnntorchNet(setup))
    x = torch.rand(4, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 4
    with torch.no_grad():
        s_ours, s_ref = ours(engine.encoding.direct(x, 6)), ref(x)
    assert s_ref.shape == (6, 4, 10)
    assert s_ours.sum() > 0 and torch.equal(s_ours, s_ref)
    for w_a, w_b in zip(engine._weights(ours), engine._weights(ref)):
        assert torch.equal(w_a, w_b)
    with pytest.raises(ValueError, match="expected"):
        engine.copy_weights(ours, torch.nn.Linear(3, 2))


def test_engine_ratios_and_targets_from_given_figures(engine):
    res = {
        "snntorch": {"label": "snntorch", "infer": 100.0, "train": 50.0},
        "snnkit": {"label": "snnkit", "infer": 300.0, "train": 110.0},
        "snnkit_compiled": {"label": "c", "infer": 600.0, "train": None},
        "spikingjelly": {"label": "SJ", "infer": 400.0, "train": 100.0},
        "ann": {"label": "ANN", "infer": 1200.0, "train": 220.0},
    }
    rat = engine.ratios(res)
    assert rat["snntorch"] == {"infer": 6.0, "train": 2.2}  # best snnkit inference is the compiled one
    assert rat["spikingjelly"] == {"infer": 1.5, "train": 1.1}
    assert rat["ann"] == {"infer": 0.5, "train": 0.5}
    v = engine.verdicts(res, rat)
    assert v["training >= 2x snntorch eager"] == {"ratio": 2.2, "target": 2.0, "met": True}
    assert v["inference >= 5x snntorch eager (with compile)"]["met"]
    assert v["inference >= 1.3x best peer (SJ)"] == {"ratio": 1.5, "target": 1.3, "met": True}
    assert v["training >= 1.3x best peer (SJ)"] == {"ratio": 1.1, "target": 1.3, "met": False}
    assert not any("ANN" in k for k in v)  # the floor is not a peer


def test_engine_quick_run_writes_every_row(engine, tmp_path):
    out = tmp_path / "engine.json"
    threads = torch.get_num_threads()
    res = engine.main(["--quick", "--no-compile", "--threads", "1", "--json", str(out)])
    assert torch.get_num_threads() == threads
    assert json.loads(out.read_text())["setup"] == {"T": 4, "batch": 8, "beta": 0.9, "threshold": 1.0, "seed": 0}
    rows = res["rows"]
    assert rows["snnkit_eager"]["identical_spikes"] is True
    assert rows["snntorch"]["identical_spikes"] is True
    assert not {"snntorch_compiled", "snnkit_compiled", "snnkit"} & set(rows)  # --no-compile
    assert list(res["layer_spike_rates"]) == ["conv1", "conv2", "fc3"]
    assert all(0.0 <= r <= 1.0 for r in res["layer_spike_rates"].values())
    for key in ("spikingjelly", "norse"):
        assert rows[key]["identical_spikes"] is None
        assert rows[key]["note"].startswith(("n/a", "not installed"))
    assert rows["ann"]["infer"] > 0 and rows["ann"]["train"] > 0
    assert rows["snnkit_eager"]["train"] / rows["snntorch"]["train"] == pytest.approx(
        res["ratios_eager"]["snntorch"]["train"])


def test_engine_reports_a_missing_peer_instead_of_crashing(engine, monkeypatch):
    monkeypatch.setitem(sys.modules, "norse", None)  # import norse -> ImportError
    setup = engine.Setup(T=2, batch=2)
    x, y = torch.rand(2, 1, 16, 16), torch.tensor([0, 1])
    rows = engine.variants(setup, x, y, compile_infer=False, compiled_kernels=False, peers=("snntorch", "norse"))
    assert rows["norse"].infer is None and rows["norse"].train is None
    assert "pip install -e .[bench]" in rows["norse"].note
    assert rows["snnkit_eager"].identical is True


def test_engine_layer_rates_name_layers_and_count_spikes(engine):
    setup = engine.Setup(T=3, batch=2)
    model = engine.build(engine.spec_of(setup), seed=0)
    with torch.no_grad():
        model.body.layers[0].weight.fill_(1.0)  # every conv1 neuron sees 9 x the pixel sum's share
    x = torch.ones(2, 1, 16, 16)
    rates = engine.layer_rates(model, engine.encoding.direct(x, 3))
    assert list(rates) == ["conv1", "conv2", "fc3"]
    # conv1 current: 4 (corners), 6 (edges) or 9 (inside) > threshold 1 at every step, and the
    # subtractive reset cannot stop a current above the threshold: all of conv1 fires always
    assert rates["conv1"] == 1.0


def test_cpu_model_is_named(common):
    name = common.cpu_model()
    assert isinstance(name, str) and name.strip() == name and len(name) > 0
    assert common.machine(1)["cpu_model"] == name


# ---------------------------------------------------------------------------------------
# pruned


def test_pruned_quick_run_counts_flops_of_the_shrunk_nets(pruned, tmp_path, monkeypatch):
    monkeypatch.setattr(snn_engine, "_compile", lambda fn: fn)  # the compiled engine's kernels, run eagerly
    res = pruned.main(["--quick", "--threads", "1", "--json", str(tmp_path / "p.json")])
    assert [(r["net"], r["align"], r["engine"]) for r in res["rows"]] == [
        (net, align, eng) for net in ("VGG", "ResNet") for align in (1, 4) for eng in ("eager", "compiled")]
    for r in res["rows"]:
        if r["align"] == 1:
            assert sum(r["widths"]) == round(0.5 * sum(r["original"]))  # the random criterion's total
        else:
            assert all(w % 4 == 0 or w == c for w, c in zip(r["widths"], r["original"]))
        assert r["flops_ratio"] > 1.0
        assert r["efficiency"] == pytest.approx(r["speedup"] / r["flops_ratio"])
        assert r["met"] == (r["efficiency"] >= 0.8)
        assert r["ann_speedup"] > 0
    assert json.loads((tmp_path / "p.json").read_text())["target_efficiency"] == 0.8


def test_pruned_alignment_rounds_widths_up_with_the_next_best_channels(pruned):
    sel = Selection(layers=["a", "b"], widths=[3, 9], original=[10, 12],
                    scores=[torch.arange(10.0), torch.arange(12.0).flip(0)], importance="test")
    assert [k.tolist() for k in pruned.aligned(sel, 1)] == [[7, 8, 9], list(range(9))]
    # 3 -> 4 channels (the 4 best: 6..9); 9 -> 12, all of the layer
    assert [k.tolist() for k in pruned.aligned(sel, 4)] == [[6, 7, 8, 9], list(range(12))]
    assert [len(k) for k in pruned.aligned(sel, 8)] == [8, 12]
    with pytest.raises(ValueError, match="multiple=0"):
        pruned.aligned(sel, 0)


def test_pruned_nets_include_28x28_inputs_and_a_wide_vgg(pruned):
    nets = pruned.parents()
    assert nets["VGG 28x28"].spec.in_shape == (1, 28, 28) and nets["VGG 28x28"].spec.widths == [32, 64, 128]
    wide = nets["wide VGG 28x28"]
    assert wide.spec.widths == [64, 64, 128, 128, 256, 256] and wide.spec.batch_norm and wide.T == 4
    x = pruned.images(28, 3)
    assert x.shape == (3, 1, 28, 28)
    # MACs per sample and step of the 28x28 VGG: conv 1->32 on 28x28 (784*32*9 = 225792), conv
    # 32->64 on 14x14 (196*64*288 = 3612672), fc 3136->128 (401408), fc 128->10 (1280)
    model = pruned.build(nets["VGG 28x28"].spec, seed=0)
    assert pruned.dense_macs(model, pruned.model_input(x, 2)) == 2 * (225792 + 3612672 + 401408 + 1280)
    with pytest.raises(SystemExit, match="--engines 'fast'"):
        pruned.main(["--engines", "fast"])


def test_pruned_selection_rejects_an_unknown_criterion(pruned):
    model = pruned.build(pruned.parents(quick=True)["VGG"].spec, seed=0)
    sel = pruned.select(model, torch.rand(2, 1, 16, 16), "l1", 0.5, 2, 0)
    assert sel.widths == [4, 4, 8]  # half of (8, 8, 16) in every layer
    with pytest.raises(ValueError, match="criterion='svd'"):
        pruned.select(model, torch.rand(2, 1, 16, 16), "svd", 0.5, 2, 0)


def test_pruned_op_classes(pruned):
    classes = {
        "aten::mkldnn_convolution": "convolutions, matrix products", "aten::addmm": "convolutions, matrix products",
        "aten::max_pool2d_with_indices": "pooling", "aten::addcmul_": "LIF elementwise",
        "aten::native_batch_norm": "batch norm", "aten::copy_": "copies, fills, allocation",
        "aten::select": "views, dispatch, profiler", "TorchDynamo Cache Lookup": "views, dispatch, profiler",
        "Torch-Compiled Region: 0/0": "compiled graphs (LIF, pool fused)", "aten::frobnicate": "other"}
    assert {name: pruned.op_class(name) for name in classes} == classes
    names = {"## Call CompiledFxGraph fdmaopa774zb2 ##": "## Call CompiledFxGraph ##",
             "Torch-Compiled Region: 2/0": "Torch-Compiled Region", "aten::mm": "aten::mm"}
    assert {name: pruned.op_name(name) for name in names} == names


def test_pruned_breakdown_of_given_profiles(pruned):
    dense = [{"aten::mkldnn_convolution": 8.0, "aten::gt": 2.0}, {"aten::mkldnn_convolution": 10.0, "aten::gt": 2.0},
             {"aten::mkldnn_convolution": 9.0, "aten::gt": 4.0}]
    small = [{"aten::mkldnn_convolution": 3.0, "aten::gt": 1.0}] * 3
    b = pruned.breakdown(dense, small, flops_ratio=4.0)
    assert b["dense_ms"] == 12.0 and b["pruned_ms"] == 4.0 and b["speedup"] == 3.0  # medians of the totals
    conv, lif = b["classes"]
    assert conv[:5] == ["convolutions, matrix products", "k_in x k_out: the FLOPs", 9.0, 3.0, 3.0]
    assert lif[2:] == [2.0, 1.0, 2.0, 0.25]
    assert b["mac_speedup"] == 3.0
    # the convolutions at 9 / 4 = 2.25 ms and the LIF ops as measured (1 ms): 12 / 3.25
    assert b["speedup_if_macs_scaled"] == pytest.approx(12.0 / 3.25)
    assert b["ops"][0] == ["aten::mkldnn_convolution", "convolutions, matrix products", 9.0, 3.0, 3.0]


def test_pruned_profile_of_a_quick_pair(pruned):
    text, numbers = pruned.profile_net(pruned.Setup(batch=2, keeps=(0.5,)), "VGG",
                                       pruned.parents(quick=True)["VGG"], "eager", rounds=1)
    assert "convolutions, matrix products" in text and "FLOPs ratio" in text
    assert numbers["widths"] == [8, 8, 8] and numbers["flops_ratio"] > 1.0
    assert numbers["dense_ms"] > 0 and numbers["pruned_ms"] > 0


# ---------------------------------------------------------------------------------------
# growth


def test_growth_macs_per_sample_of_the_benchmark_net(growth):
    # per step: conv 1->16 on 16x16: 256*16*9 = 36864; conv 16->32 on 8x8: 64*32*144 = 294912;
    # fc 512->10: 5120. Total 336896 per step and sample.
    model = growth.build(growth.spec_at(1.0), seed=0)
    x = growth.encoding.direct(torch.rand(3, 1, 16, 16), 5)
    assert growth.dense_macs(model, x) == 5 * 336896  # per sample, whatever the batch
    assert growth.spec_at(0.5).widths == [8, 16] and growth.spec_at(4).widths == [64, 128]


def test_growth_quick_run_writes_table_and_plot(growth, tmp_path):
    png = tmp_path / "growth.png"
    res = growth.main(["--quick", "--threads", "1", "--plot", str(png), "--json", str(tmp_path / "g.json"),
                       "--no-memory"])
    assert png.stat().st_size > 1000
    by_T = res["by_T"]
    assert by_T["T=4"]["macs_per_sample"] == 2 * by_T["T=2"]["macs_per_sample"]  # linear in T
    assert [r["widths"] for r in res["by_width"].values()] == [[8, 16], [16, 32]]
    rows = growth.growth_table(by_T)
    assert rows[0][1] == 1.0 and rows[1][1] == 2.0
    assert all(r["infer_ms"] > 0 and r["train_ms"] > 0 for r in by_T.values())
    assert list(res["by_net"]) == list(growth.extra_nets())
    net28 = res["by_net"]["28x28 conv32-P-conv64-P-fc128 (paper 2, mnist-5k)"]
    # per sample and step: 784*32*9 + 196*64*288 + 3136*128 + 128*10 MACs, at T = 2
    assert net28["T=2"]["macs_per_sample"] == 2 * (225792 + 3612672 + 401408 + 1280)
    paper4 = res["by_net"]["28x28 conv32-P-conv64-P, batch norm (paper 4, mnist-5k)"]
    assert paper4["T=2"]["macs_per_sample"] == 2 * (225792 + 3612672 + 3136 * 10)  # no hidden layer
    # 1-D, per step: conv 1->16 on 40 (40*16*3), 16->64 on 20 (20*64*48), 64->64 on 10 and on 5
    # (10*64*192, 5*64*192), fc 2*64 -> 10 (after the last pool: length 2)
    one_d = res["by_net"]["1-D 1x40 conv16-P-64-P-64-P-64-P, batch norm (paper 5, mnist1d)"]
    assert one_d["T=2"]["macs_per_sample"] == 2 * (1920 + 61440 + 122880 + 61440 + 1280)
    # events, per step: conv 2->16 on 32x32 (1024*16*18), 16->32 on 16x16 (256*32*144),
    # 32->32 on 8x8 (64*32*288), fc 512->64, 64->12
    event = res["by_net"]["2x32x32 events conv16-P-32-P-32-P-fc64 (paper 3, event-gestures-hard)"]
    assert event["T=2"]["macs_per_sample"] == 2 * (294912 + 1179648 + 589824 + 32768 + 768)


def test_growth_event_input_repeats_the_clip_beyond_its_frames(growth):
    clips = torch.arange(2 * 3 * 2 * 1 * 1, dtype=torch.float32).reshape(2, 3, 2, 1, 1)  # (B, T0=3, 2, 1, 1)
    x = growth.net_input(clips, 7)
    assert x.shape == (7, 2, 2, 1, 1)
    assert [int(x[t, 1, 0, 0, 0]) for t in range(7)] == [6, 8, 10, 6, 8, 10, 6]  # frames 0, 1, 2, 0, 1, 2, 0
    static = growth.net_input(torch.ones(2, 1, 4), 3)
    assert static.shape == (3, 2, 1, 4) and static.stride(0) == 0  # direct input: one view


def test_growth_memory_points_and_table(growth):
    setup = growth.Setup()
    pts = growth.memory_points(setup, [growth.MAIN_NET])
    # T of the main sweep at batch 64, then the other batches at its middle T (10)
    assert pts == [(growth.MAIN_NET, T, 64) for T in (5, 10, 25, 50)] + [(growth.MAIN_NET, 10, b) for b in (16, 32, 128)]
    rows = growth.memory_table([{"net": "n", "T": 4, "batch": 8, "infer_mib": 1.0, "train_mib": 2.0}])
    assert rows == [["n", 4, 8, 1.0, 2.0, 64.0]]  # 2 MiB = 2048 KiB over 32 sample-steps


def test_growth_peak_memory_grows_with_T(growth):
    net = growth.MAIN_NET
    small, large = growth.measure_memory([(net, 2, 8), (net, 40, 8)], "eager", 1)
    assert small["T"] == 2 and large["T"] == 40 and small["net"] == net
    # a training step keeps (T, B, ...) membranes and spikes for the backward pass: 40 steps
    # of 8 samples of the 16x16 net hold at least 40 * 8 * 6154 * 4 bytes (7.5 MiB) more than 2
    assert large["train_mib"] - small["train_mib"] > 7.5
    assert large["train_mib"] >= large["infer_mib"] > 0


def test_growth_reset_peak_brings_the_peak_down_to_the_resident_memory(growth):
    if not growth.reset_peak():
        pytest.skip("no /proc/self/clear_refs here")
    big = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
    del big
    assert growth.reset_peak()
    hwm, rss = growth._proc_status_kib("VmHWM"), growth._proc_status_kib("VmRSS")
    assert hwm - rss < 32 * 1024  # the 64 MiB peak is gone (within what the reading itself allocates)

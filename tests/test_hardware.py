"""The accelerator energy model: storage formats, traffic and energy on hand-computed cases."""
from __future__ import annotations

import copy
import pickle

import pytest
import torch
from torch import nn

from snnkit.compress.masks import prune_global
from snnkit.metrics.hardware import (
    HARDWARE_TABLE,
    LEVELS,
    STORAGE_FORMATS,
    Accelerator,
    LayerLoad,
    Storage,
    Traffic,
    inference_energy,
    layer_traffic,
    profile,
    storage_bits,
    traffic_energy,
)
from snnkit.models import NeuronSpec, VGGSpec, build


def every_tenth(rows: int = 10, cols: int = 100) -> torch.Tensor:
    """A 90%-sparse (rows, cols) weight: entries 0, 10, 20, ... of the flat tensor are 1..nnz."""
    w = torch.zeros(rows * cols)
    w[::10] = torch.arange(1, rows * cols // 10 + 1, dtype=torch.float32)
    return w.reshape(rows, cols)


# --------------------------------------------------------------------------- the table


def test_table_names_its_source_units_and_eyeriss_costs():
    assert "Eyeriss" in HARDWARE_TABLE["source"] and "Horowitz" in HARDWARE_TABLE["source"]
    assert "16-bit MAC" in HARDWARE_TABLE["units"]
    assert HARDWARE_TABLE["levels"] == {"dram": 200.0, "global_buffer": 6.0, "array": 2.0, "scratchpad": 1.0}
    hw = Accelerator()
    assert (hw.dram, hw.global_buffer, hw.scratchpad, hw.accumulate, hw.word_bits) == (200.0, 6.0, 1.0, 0.27, 16)
    assert hw.per_bit("dram") == 12.5 and hw.per_bit("global_buffer") == 0.375 and hw.per_bit("scratchpad") == 0.0625


def test_accelerator_rejects_bad_settings_by_name():
    with pytest.raises(ValueError, match="refetch='never'.*'inference', 'step'"):
        Accelerator(refetch="never")
    with pytest.raises(ValueError, match="run_bits=0"):
        Accelerator(run_bits=0)
    with pytest.raises(ValueError, match="dram=-1"):
        Accelerator(dram=-1)
    with pytest.raises(ValueError, match="level='register'"):
        Accelerator().per_bit("register")


# --------------------------------------------------------------------------- storage formats


def test_ninety_percent_sparse_layer_in_every_format():
    w = every_tenth()  # 1000 entries, 100 non-zero, gaps of 9 zeros
    assert int(torch.count_nonzero(w)) == 100
    assert storage_bits(w, 8, "dense") == Storage(8000, 0)
    # bitmask: one bit per entry + 100 values of 8 bits
    assert storage_bits(w, 8, "bitmask") == Storage(800, 1000)
    assert storage_bits(w, 8, "bitmask").total == 1800
    # run-length, 4-bit runs: every gap (0 first, then 9) fits, 100 x (8 + 4)
    assert storage_bits(w, 8, "run-length", run_bits=4) == Storage(800, 400)
    # 3-bit runs reach 7 zeros: each gap of 9 needs one filler of 8 + 3 bits (99 gaps of 9)
    assert storage_bits(w, 8, "run-length", run_bits=3) == Storage(800, 300 + 99 * 11)
    # coordinates: ceil(log2 10) + ceil(log2 100) = 4 + 7 bits per value
    assert storage_bits(w, 8, "coordinate") == Storage(800, 1100)


def test_run_length_fillers_and_trailing_zeros_by_hand():
    w = torch.zeros(40)
    w[0], w[20] = 1.0, -2.0  # gaps 0 and 19; zeros after position 20 are not stored
    # 19 // 16 = 1 filler of (8 + 4) bits
    assert storage_bits(w, 8, "run-length") == Storage(16, 2 * 4 + 12)
    w[36] = 3.0  # gap of 15 fits exactly into 4 bits
    assert storage_bits(w, 8, "run-length") == Storage(24, 3 * 4 + 12)
    w[:] = 0
    w[32] = 1.0  # gap of 32: two fillers
    assert storage_bits(w, 2, "run-length") == Storage(2, 4 + 2 * 6)
    assert storage_bits(torch.zeros(5, 5), 8, "run-length") == Storage(0, 0)


def test_dense_ternary_against_pruned_eight_bit_storage():
    # 1000 entries; 80%-pruned 8-bit with a non-zero every 5th entry: run-length stores
    # 200 x (8 + 4) = 2400 bits, the dense ternary net 1000 x 2 = 2000 bits (1.2x)
    w = torch.zeros(1000)
    w[::5] = 1.0
    assert storage_bits(w, 8, "run-length").total == 2400
    assert storage_bits(torch.ones(1000), 2, "dense").total == 2000
    assert storage_bits(w, 8, "bitmask").total == 1000 + 1600


def test_coordinate_format_ignores_unit_dimensions():
    w = torch.zeros(8, 1, 3, 3)
    w[0, 0, 1, 1] = w[7, 0, 2, 2] = 1.0
    assert storage_bits(w, 4, "coordinate") == Storage(8, 2 * (3 + 2 + 2))


def test_storage_bits_rejects_bad_values_by_name():
    with pytest.raises(ValueError, match="unknown storage format 'csr'; expected one of: dense, bitmask, run-length, coordinate"):
        storage_bits(torch.ones(3), 8, "csr")
    with pytest.raises(ValueError, match="bits=0"):
        storage_bits(torch.ones(3), 0)
    assert STORAGE_FORMATS.names() == ("dense", "bitmask", "run-length", "coordinate")


# --------------------------------------------------------------------------- traffic and energy


def small_load(first: bool = True) -> LayerLoad:
    """Linear 4 -> 2, 4 of 8 weights non-zero, 4 bits, T = 10, density 0.5 (worst 0.75)."""
    w = torch.tensor([[1.0, 0.0, 2.0, 0.0], [0.0, 3.0, 0.0, 4.0]])
    return LayerLoad("fc", w, bits=4, synapses=8, nonzero_synapses=4, in_neurons=4, out_neurons=2,
                     timesteps=10, density_mean=0.5, density_worst=0.75, first=first)


def test_layer_traffic_by_hand():
    t = layer_traffic(small_load(), "dense")
    # S = 8 x 4 = 32 bits
    assert t.dram_weights == 32  # once per inference
    assert t.global_buffer_weights == 32 + 10 * 32  # written from DRAM, read every step
    assert t.scratchpad_weights == 10 * 32 + 0.5 * 10 * 8 * 32 / 8  # written, then read per spike
    assert t.dram_activations == 4 * 10  # the network input
    assert t.global_buffer_activations == 40 + 40 + 2 * 10
    assert t.scratchpad_activations == 2 * 16 * 2 * 10  # membranes read + written per step
    assert t.accumulates == 0.5 * 10 * 4
    assert t.neuron_updates == 2 * 10
    e = traffic_energy(t)
    assert e["dram"] == pytest.approx((32 + 40) * 12.5)
    assert e["global_buffer"] == pytest.approx((352 + 100) * 0.375)
    assert e["scratchpad"] == pytest.approx((480 + 640) / 16)
    assert e["compute"] == pytest.approx(40 * 0.27)


def test_layer_traffic_refetch_worst_case_and_later_layers():
    load = small_load(first=False)
    t = layer_traffic(load, "bitmask", "worst", Accelerator(refetch="step"))
    S = 8 + 4 * 4  # mask + 4 values of 4 bits
    assert t.dram_weights == 10 * S
    assert t.global_buffer_weights == 10 * S + 10 * S
    assert t.scratchpad_weights == pytest.approx(10 * S + 0.75 * 10 * 8 * S / 8)
    assert t.dram_activations == 0
    assert t.global_buffer_activations == 40 + 20
    assert t.accumulates == pytest.approx(0.75 * 10 * 4)
    assert layer_traffic(load, "dense", 0.0).accumulates == 0
    with pytest.raises(ValueError, match="density='peak'.*'mean', 'worst'"):
        layer_traffic(load, "dense", "peak")


def test_traffic_adds_up_and_reports_sum():
    a, b = small_load(), small_load(first=False)
    total = layer_traffic(a) + layer_traffic(b)
    assert total.dram_activations == 40 and total.neuron_updates == 40
    report = inference_energy([a, LayerLoad(**{**b.__dict__, "name": "fc2"})], "run-length")
    assert list(report.layers) == ["fc", "fc2"]
    assert report.total == pytest.approx(sum(report.by_level.values()))
    assert report.total == pytest.approx(sum(report.by_kind.values()))
    assert set(report.by_level) == set(LEVELS)
    # run-length of [[1,0,2,0],[0,3,0,4]] with 4-bit runs: 4 values x (4 + 4), no fillers
    assert report.storage["fc"] == Storage(16, 16) and report.storage_bits == 64
    with pytest.raises(ValueError, match="unknown storage format"):
        inference_energy([a], "huffman")


def test_sparse_formats_pay_index_bits_and_skip_zero_reads():
    """A 90%-sparse 8-bit layer: bitmask moves 1800 instead of 8000 bits; compute is the same."""
    w = every_tenth()
    load = LayerLoad("fc", w, bits=8, synapses=1000, nonzero_synapses=100, in_neurons=100,
                     out_neurons=10, timesteps=1, density_mean=1.0, density_worst=1.0)
    dense, bitmask = layer_traffic(load, "dense"), layer_traffic(load, "bitmask")
    assert dense.dram_weights == 8000 and bitmask.dram_weights == 1800
    assert bitmask.scratchpad_weights == 1800 + 1800  # written once, every input reads its column
    assert dense.accumulates == bitmask.accumulates == 100


def test_layer_load_checks():
    with pytest.raises(ValueError, match="nonzero_synapses=9 exceeds synapses=8"):
        LayerLoad("x", torch.ones(8), 8, 8, 9, 1, 1, 1, 0.1, 0.1)
    with pytest.raises(ValueError, match="timesteps=0"):
        LayerLoad("x", torch.ones(8), 8, 8, 8, 1, 1, 0, 0.1, 0.1)
    load = small_load()
    assert (load.entries, load.nonzero) == (8, 4)
    assert load.density(0.3) == 0.3


# --------------------------------------------------------------------------- measuring a model


class TwoLinear(nn.Module):
    """fc1 (4 -> 3) then a threshold at 0 then fc2 (3 -> 2), on (T, B, 4) spikes."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(4, 3, bias=False)
        self.fc2 = nn.Linear(3, 2, bias=False)
        with torch.no_grad():
            self.fc1.weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 0, 0]]))
            self.fc2.weight.fill_(1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B = x.shape[:2]
        spikes = (self.fc1(x.reshape(T * B, -1)) > 0).float()
        return self.fc2(spikes).reshape(T, B, -1)


def test_profile_measures_densities_and_weights_by_hand():
    x = torch.zeros(2, 2, 4)  # (T, B, 4)
    x[:, 0, :2] = 1.0  # sample 0: inputs 0 and 1 at both steps -> 4 of 8 -> 0.5
    x[0, 1, 3] = 1.0  # sample 1: one event in 8 -> 0.125
    x[1, 1, 0] = 2.0  # ... and a count of 2 -> 3 events in 8 -> 0.375
    fc1, fc2 = profile(TwoLinear(), x, {"fc1": 2})
    assert (fc1.name, fc1.first, fc2.first) == ("fc1", True, False)
    assert (fc1.bits, fc2.bits) == (2, 32)
    assert fc1.density_mean == pytest.approx((0.5 + 0.375) / 2) and fc1.density_worst == pytest.approx(0.5)
    # fc1 spikes: sample 0 -> units 0 and 1 at both steps (4 of 6); sample 1 -> unit 0 at step 1 (1 of 6)
    assert fc2.density_mean == pytest.approx((4 / 6 + 1 / 6) / 2) and fc2.density_worst == pytest.approx(4 / 6)
    assert (fc1.synapses, fc1.nonzero_synapses, fc1.in_neurons, fc1.out_neurons, fc1.timesteps) == (12, 2, 4, 3, 2)
    assert fc1.nonzero == 2 and fc2.synapses == 6 == fc2.nonzero_synapses


def test_profile_rejects_analog_input_and_bad_bits():
    x = torch.full((2, 1, 4), 0.5)
    with pytest.raises(ValueError, match="layer 'fc1'.*not event counts"):
        profile(TwoLinear(), x, 8)
    with pytest.raises(ValueError, match=r"bits names \['fc9'\]"):
        profile(TwoLinear(), torch.ones(2, 1, 4), {"fc9": 8})
    with pytest.raises(ValueError, match="bits=0"):
        profile(TwoLinear(), torch.ones(2, 1, 4), 0)
    with pytest.raises(ValueError, match=r"expected \(T, B, ...\)"):
        profile(TwoLinear(), torch.ones(2, 4), 8)


def test_profile_of_a_pruned_conv_snn_reads_effective_weights():
    spec = VGGSpec(in_shape=(2, 4, 4), num_classes=3, features=(4, "P"),
                   neuron=NeuronSpec(beta=0.5, threshold=0.5, reset="zero"))
    net = build(spec, seed=0)
    x = (torch.rand(5, 3, 2, 4, 4, generator=torch.Generator().manual_seed(0)) < 0.3).float()
    dense = profile(net, x, 8)
    pruned_net = copy.deepcopy(net)
    prune_global(pruned_net, 0.5)
    pruned = profile(pruned_net, x, 8)
    assert [lo.name for lo in dense] == ["body.layers.0", "body.layers.4"]
    conv = dense[0]
    # 3x3 padding-1 conv on 4x4 per (in, out) channel pair: 4 corners x 4 + 8 edges x 6 + 4 x 9 = 100 synapses
    assert conv.synapses == 100 * 2 * 4 and conv.in_neurons == 32 and conv.out_neurons == 64
    assert conv.density_mean == pytest.approx(float(x.mean()), rel=1e-6)
    nnz = sum(lo.nonzero for lo in pruned)
    assert nnz == (dense[0].entries + dense[1].entries) // 2
    assert pruned[0].nonzero_synapses < conv.synapses
    e_dense = inference_energy(dense, "dense").total
    e_sparse = inference_energy(pruned, "dense").total
    assert e_sparse < e_dense  # fewer accumulates, same dense storage
    assert pickle.loads(pickle.dumps(pruned))[0].nonzero == pruned[0].nonzero


def test_report_breaks_down_by_level_and_kind():
    load = small_load()
    r = inference_energy([load], "dense", "mean")
    t = r.traffic["fc"]
    assert isinstance(t, Traffic)
    assert r.by_kind["weights"] == pytest.approx(32 * 12.5 + 352 * 0.375 + 480 / 16)
    assert r.by_kind["activations"] == pytest.approx(40 * 12.5 + 100 * 0.375 + 640 / 16)
    assert r.by_kind["compute"] == pytest.approx(40 * 0.27)


def test_profile_of_a_conv1d_snn_by_hand():
    """Conv1d(1, 2, 3, padding=1) on sequences of 5, then LIF, flatten, Linear(10, 2).

    Synapses per (in, out) channel pair: 2 + 3 + 3 + 3 + 2 = 13 (the padding taps are not
    synapses), so 26; zeroing channel 0's centre tap removes its 5 synapses: 21 non-zero."""
    spec = VGGSpec(in_shape=(1, 5), num_classes=2, features=(2,), neuron=NeuronSpec(beta=1.0, threshold=0.2))
    net = build(spec, seed=0)
    with torch.no_grad():
        net.body.layers[0].weight.fill_(0.25)
        net.body.layers[0].weight[0, 0, 1] = 0.0
        net.body.layers[3].weight.fill_(1.0)
    x = torch.zeros(2, 1, 1, 5)  # (T, B, C, L): 3 events in 10 input slots
    x[0, 0, 0, 0] = x[0, 0, 0, 1] = x[1, 0, 0, 4] = 1.0
    conv, fc = profile(net, x, 8)
    assert [conv.name, fc.name] == ["body.layers.0", "body.layers.3"] and conv.first and not fc.first
    assert (conv.synapses, conv.nonzero_synapses, conv.in_neurons, conv.out_neurons) == (26, 21, 5, 10)
    assert conv.density_mean == pytest.approx(3 / 10) and conv.nonzero == 5 and conv.entries == 6
    assert (fc.synapses, fc.in_neurons, fc.out_neurons) == (20, 10, 2)
    # the conv's neurons (threshold 0.2, subtract reset, no leak) fire where their current passes
    # 0.2: step 0 at positions 0-2 of both channels (6); step 1 channel 0 at 3, channel 1 at 0, 1
    # (0.3 left from step 0), 3 and 4 (5): 11 spikes in 2 x 10 slots
    assert fc.density_mean == pytest.approx(11 / 20)

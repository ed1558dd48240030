"""benchmarks/paper_epoch.py at tiny sizes: the code path and the counts (no timing is asserted)."""
import importlib.util
import os
import sys

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load():
    path = os.path.join(ROOT, "benchmarks", "paper_epoch.py")
    spec = importlib.util.spec_from_file_location("bench_paper_epoch", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_quick_rows_count_macs_and_epochs(capsys):
    bench = _load()
    result = bench.main(["--quick", "--threads", "1", "--only", "04_qpsnn,03_quant_prune_hardware"])
    rows = result["rows"]
    assert set(rows) == {"04_qpsnn", "03_quant_prune_hardware"}
    res = rows["04_qpsnn"]
    # ResNet20 on 32x32 at T = 2: the dense MACs of one sample, counted by hand per step:
    # stem 3*16*9*1024; stage 1: 6 convs 16*16*9*1024; stage 2: 16*32*9*256 + 5 * 32*32*9*256
    # + the 1x1 projection 16*32*256; stage 3 likewise at 8x8; the linear layer 64*10
    per_step = (3 * 16 * 9 * 1024 + 6 * 16 * 16 * 9 * 1024
                + 16 * 32 * 9 * 256 + 5 * 32 * 32 * 9 * 256 + 16 * 32 * 256
                + 32 * 64 * 9 * 64 + 5 * 64 * 64 * 9 * 64 + 32 * 64 * 64 + 64 * 10)
    assert res["macs_per_sample"] == 2 * per_step
    assert res["epoch_samples"] == 45_000 and res["T"] == 2 and res["batch"] == 2
    assert res["epoch_tmac"] == 3 * 2 * per_step * 45_000 / 1e12
    assert res["epoch_seconds"] == 45_000 / res["train_samples_per_s"]
    assert rows["03_quant_prune_hardware"]["in_shape"] == [2, 128, 128]
    assert "04_qpsnn" in capsys.readouterr().out


def test_synthetic_inputs_have_the_papers_kinds():
    bench = _load()
    rows = {r.notebook: r for r in bench.rows(batch=3, quick=False)}
    rate = bench.batch_input(rows["01_spatiotemporal_pca"], "cpu")
    assert rate.shape == (100, 3, 3, 32, 32) and set(rate.unique().tolist()) == {0.0, 1.0}
    direct = bench.batch_input(rows["04_qpsnn"], "cpu")
    assert direct.shape == (2, 3, 3, 32, 32) and torch.equal(direct[0], direct[1])
    events = bench.batch_input(rows["05_dynamic_spatiotemporal"], "cpu")
    assert events.shape == (10, 3, 2, 128, 128) and 0.01 < float(events.mean()) < 0.03

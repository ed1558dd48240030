"""Data files checked before anything loads: snnkit.datafiles.require, and the fixtures in the
real formats (tests/data_fixtures.py) read back through the kit's loaders."""
import numpy as np
import pytest
import torch

from data_fixtures import write_fixture
from snnkit.data import load_dataset
from snnkit.datafiles import FILE_SETS, files_needed, require


def test_embedded_sets_need_nothing(tmp_path):
    for name in ("digits", "event-digits", "event-gestures"):
        assert not files_needed(name) and require(name, tmp_path) is None
    assert set(FILE_SETS) == {"mnist", "fashion-mnist", "cifar10", "dvs-gesture", "n-mnist"}


@pytest.mark.parametrize("name,folder,first", [
    ("mnist", "MNIST/raw", "train-images-idx3-ubyte (or .gz)"),
    ("fashion-mnist", "FashionMNIST/raw", "train-images-idx3-ubyte (or .gz)"),
    ("cifar10", "cifar-10-batches-py", "data_batch_1"),
    ("dvs-gesture", "DVSGesture", "ibmGestureTrain.tar.gz"),
    ("n-mnist", "NMNIST", "train.zip"),
])
def test_missing_files_are_named_with_folder_layout_and_source(tmp_path, name, folder, first):
    pytest.importorskip("tonic")
    with pytest.raises(FileNotFoundError) as err:
        require(name, tmp_path)
    msg = str(err.value)
    assert msg.startswith(f"dataset {name!r}: files not found in {tmp_path / folder}")
    assert f"missing {first}" in msg and f"Expected under the data folder {tmp_path}: {folder}/" in msg
    assert FILE_SETS[name].source in msg and "never downloads" in msg
    assert not any(tmp_path.iterdir())  # nothing created


def test_idx_files_found_plain_gzipped_or_in_the_other_folder(tmp_path, monkeypatch):
    write_fixture("mnist", tmp_path, n_train=20, n_test=10)
    assert require("mnist", tmp_path) == tmp_path
    raw = tmp_path / "MNIST/raw"
    (raw / "t10k-labels-idx1-ubyte.gz").rename(tmp_path / "t10k.gz")
    with pytest.raises(FileNotFoundError, match=r"missing t10k-labels-idx1-ubyte \(or .gz\)\. Expected"):
        require("mnist", tmp_path)
    (tmp_path / "mnist").mkdir()
    (tmp_path / "t10k.gz").rename(tmp_path / "mnist/t10k-labels-idx1-ubyte.gz")  # the reader searches both
    monkeypatch.setenv("SNNKIT_DATA", str(tmp_path))
    assert require("mnist") == tmp_path
    assert len(load_dataset("mnist").test) == 10


def test_cifar_one_batch_missing(tmp_path):
    write_fixture("cifar10", tmp_path, per_batch=4)
    (tmp_path / "cifar-10-batches-py/data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match=r"missing data_batch_3\. Expected"):
        require("cifar10", tmp_path)


def test_too_few_gesture_recordings_for_tonic(tmp_path):
    pytest.importorskip("tonic")
    write_fixture("dvs-gesture", tmp_path, users=1, events=10)  # 11 recordings a split; tonic wants 100
    with pytest.raises(FileNotFoundError) as err:
        require("dvs-gesture", tmp_path)
    assert "ibmGestureTrain/ with at least 100 *.npy files (11 found)" in str(err.value)
    assert "ibmGestureTest/ with at least 100 *.npy files (11 found)" in str(err.value)


# ------------------------------------------------------------------ fixtures read back


def test_idx_fixture_round_trip(tmp_path):
    arrays = write_fixture("fashion-mnist", tmp_path, n_train=30, n_test=20, size=28)
    ds = load_dataset("fashion-mnist", root=tmp_path, val_fraction=0.2)
    # 3 images a class: the stratified val split takes round(0.2 * 3) = 1 of each
    assert (ds.input_shape, len(ds.train), len(ds.val), len(ds.test)) == ((1, 28, 28), 20, 10, 20)
    assert np.array_equal(ds.test.x.mul(255).round().to(torch.uint8).squeeze(1).numpy(), arrays["t10k-images-idx3-ubyte"])
    assert ds.test.y.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()


def test_cifar_fixture_round_trip_through_the_restricted_unpickler(tmp_path):
    batches = write_fixture("cifar10", tmp_path, per_batch=6)
    ds = load_dataset("cifar10", root=tmp_path, val_fraction=0.2)
    assert (ds.input_shape, len(ds.train) + len(ds.val), len(ds.test)) == ((3, 32, 32), 30, 6)
    data, labels = batches["test_batch"]
    assert torch.equal(ds.test.x.mul(255).round().to(torch.uint8), torch.from_numpy(data).view(6, 3, 32, 32))
    assert ds.test.y.tolist() == labels


def test_gesture_fixture_through_tonic(tmp_path):
    pytest.importorskip("tonic")
    written = write_fixture("dvs-gesture", tmp_path, users=10, events=50)
    assert written == {"ibmGestureTrain": 110, "ibmGestureTest": 110} and require("dvs-gesture", tmp_path) == tmp_path
    ds = load_dataset("dvs-gesture", root=tmp_path, timesteps=4, size=32, limit=22)
    assert (ds.kind, ds.num_classes, ds.input_shape) == ("event", 11, (4, 2, 32, 32))
    assert [len(ds.train) + len(ds.val), len(ds.test)] == [22, 22]
    assert float(ds.test.x.sum()) == 22 * 50  # every event of every recording counted once


def test_n_mnist_fixture_through_tonic(tmp_path):
    pytest.importorskip("tonic")
    written = write_fixture("n-mnist", tmp_path, events=12)  # 10,000 recordings a split, as tonic checks
    assert written == {"Train": 10_000, "Test": 10_000} and require("n-mnist", tmp_path) == tmp_path
    ds = load_dataset("n-mnist", root=tmp_path, timesteps=5, limit=20)
    assert (ds.input_shape, len(ds.test)) == ((5, 2, 34, 34), 20)
    assert float(ds.test.x.sum()) == 20 * 12

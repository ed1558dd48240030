"""The paper profiles in make_config and the runner: paper-smoke overlays paper, dataset and
device come from the profile, missing data files stop the config cell."""
import pytest

from data_fixtures import write_fixture
from snnkit.notebook import (PROFILES, ConfigError, default_device, make_config, nonneg_int, positive_int,
                             profile_values, runner)

SPEC = {"epochs": nonneg_int(), "subset": positive_int().or_none()}
DEFAULTS = {
    "smoke": {"dataset": "digits", "epochs": 1, "subset": 50},
    "full": {"dataset": "digits", "epochs": 8, "subset": None},
    "paper": {"dataset": "mnist", "epochs": 40, "subset": None},
    "paper-smoke": {"epochs": 1, "subset": 10},
}
DATASETS = ("digits", "mnist", "cifar10")


def params(profile: str, **kw) -> dict:
    return {"profile": profile, "seed": 0, "device": None, "dataset": None, "out_dir": None,
            "epochs": None, "subset": None, **kw}


@pytest.fixture
def mnist_files(tmp_path, monkeypatch):
    write_fixture("mnist", tmp_path, n_train=20, n_test=10)
    monkeypatch.setenv("SNNKIT_DATA", str(tmp_path))
    return tmp_path


def test_profiles_and_overlay():
    assert PROFILES == ("smoke", "full", "paper", "paper-smoke")
    assert profile_values(DEFAULTS, "paper-smoke") == {"dataset": "mnist", "epochs": 1, "subset": 10}
    assert profile_values(DEFAULTS, "full") == DEFAULTS["full"] and profile_values({}, "paper") == {}
    assert [default_device(p) for p in PROFILES] == ["cpu", "cpu", "auto", "auto"]


def test_dataset_and_device_come_from_the_profile(mnist_files):
    smoke = make_config(params("smoke"), SPEC, DEFAULTS, datasets=DATASETS)
    assert (smoke.dataset, smoke.device, smoke.epochs, smoke.subset) == ("digits", "cpu", 1, 50)
    paper = make_config(params("paper"), SPEC, DEFAULTS, datasets=DATASETS)
    assert (paper.dataset, paper.epochs, paper.subset) == ("mnist", 40, None)
    assert paper.device in ("cpu", "cuda")  # "auto": cuda when this machine has it
    tiny = make_config(params("paper-smoke"), SPEC, DEFAULTS, datasets=DATASETS)
    assert (tiny.dataset, tiny.epochs, tiny.subset) == ("mnist", 1, 10)  # same data path, fewer epochs
    # what the cell or -p sets wins over the profile
    mine = make_config(params("paper", epochs=3, device="cpu"), SPEC, DEFAULTS, datasets=DATASETS)
    assert (mine.epochs, mine.device) == (3, "cpu")
    device_default = {**DEFAULTS, "full": {**DEFAULTS["full"], "device": "cpu"}}
    assert make_config(params("full"), SPEC, device_default, datasets=DATASETS).device == "cpu"


def test_missing_files_stop_the_config(tmp_path, monkeypatch):
    monkeypatch.setenv("SNNKIT_DATA", str(tmp_path))
    with pytest.raises(ConfigError) as err:
        make_config(params("paper"), SPEC, DEFAULTS, datasets=DATASETS)
    msg = str(err.value)
    assert msg.startswith(f"dataset 'mnist': files not found in {tmp_path / 'MNIST/raw'} and {tmp_path / 'mnist'}")
    assert "train-images-idx3-ubyte" in msg and "yann.lecun.com" in msg
    with pytest.raises(ConfigError, match=r"dataset 'cifar10': files not found .*data_batch_1"):
        make_config(params("smoke", dataset="cifar10"), SPEC, DEFAULTS, datasets=DATASETS)
    # a sweep's client does not check: its workers may hold the data
    assert make_config(params("paper"), SPEC, DEFAULTS, datasets=DATASETS, check_files=False).dataset == "mnist"


def test_paper_profiles_need_their_declarations(mnist_files):
    plain = {k: DEFAULTS[k] for k in ("smoke", "full")}
    with pytest.raises(ConfigError, match=r"profile='paper': this notebook declares no paper settings "
                                          r"\(PROFILE_DEFAULTS has 'smoke', 'full'\)"):
        make_config(params("paper"), SPEC, plain, datasets=DATASETS)
    no_smoke = {k: DEFAULTS[k] for k in ("smoke", "full", "paper")}
    with pytest.raises(ConfigError, match=r"no PROFILE_DEFAULTS\['paper-smoke'\]"):
        make_config(params("paper-smoke"), SPEC, no_smoke, datasets=DATASETS)
    with pytest.raises(ConfigError, match=r"dataset=None: profile 'smoke' has no default for it; expected one of "
                                          r"'digits', 'mnist', 'cifar10'"):
        make_config(params("smoke"), SPEC, {"smoke": {"epochs": 1, "subset": 2}}, datasets=DATASETS)
    with pytest.raises(ConfigError, match=r"names \['batch'\], which are not in the spec: expected names among "
                                          r"\['dataset', 'device', 'epochs', 'subset'\]"):
        make_config(params("smoke"), SPEC, {"smoke": {"batch": 4}}, datasets=DATASETS)
    with pytest.raises(ConfigError, match=r"dataset='mnist': expected one of 'digits'"):
        make_config(params("paper"), SPEC, DEFAULTS, datasets=("digits",))


def test_runner_reads_profile_datasets_and_lists_the_paper_column():
    nb = runner.notebook_spec("00_tour")
    assert [nb.value("dataset", p) for p in PROFILES] == ["digits", "digits", "mnist", "mnist"]
    assert [nb.value("device", p) for p in PROFILES] == ["cpu", "cpu", "auto", "auto"]
    assert [nb.value("epochs", p) for p in PROFILES] == [3, 8, 5, 1]
    assert nb.profiles() == ("smoke", "full", "paper")
    header = runner.format_parameters("00_tour").splitlines()[0].split()
    assert header == ["name", "smoke", "full", "paper", "help"]
    pca = runner.notebook_spec("01_spatiotemporal_pca")
    if "paper" not in pca.profile_defaults:  # until its paper profile is written
        assert runner.format_parameters("01_spatiotemporal_pca").splitlines()[0].split() == ["name", "smoke", "full", "help"]


def test_error_cell_maps_past_papermills_error_banners(tmp_path):
    # what papermill writes after an error in the config cell of a notebook whose parameters
    # cell comes after a markdown cell: a banner on top, the injected cell, a banner before the error
    import nbformat
    from papermill.exceptions import PapermillExecutionError

    banner = {"tags": ["papermill-error-cell-tag"]}
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("An Exception was encountered", metadata=banner),
        nbformat.v4.new_markdown_cell("# title"),
        nbformat.v4.new_code_cell("x = None", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("x = 2", metadata={"tags": ["injected-parameters"]}),
        nbformat.v4.new_markdown_cell("Execution using papermill encountered an exception here", metadata=banner),
        nbformat.v4.new_code_cell("cfg = make_config()"),
    ])
    path = tmp_path / "copy.ipynb"
    nbformat.write(nb, str(path))
    exc = PapermillExecutionError(3, 2, "cfg = make_config()", "ConfigError", "missing", [])
    assert runner.describe_error(exc, path)[1] == 2  # the source's third cell

"""pyproject.toml and environment.yml must describe the same environment."""
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def _pyproject_requirements() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += extra
    return {str(Requirement(r)) for r in reqs}


def _conda_pip_requirements() -> tuple[set[str], list[str]]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    editable = [p for p in pip if p.startswith("-e")]
    return {str(Requirement(p)) for p in pip if not p.startswith("-e")}, editable


def test_dependency_lists_agree():
    conda, editable = _conda_pip_requirements()
    assert conda == _pyproject_requirements()
    assert editable, "environment.yml must install the package itself (-e .)"


def test_torch_is_pinned_and_installed_first():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert pip[0] == "torch==2.13.0"
    assert "torch==2.13.0" in _pyproject_requirements()
    makefile = (ROOT / "Makefile").read_text()
    assert makefile.index("pip install --quiet torch==2.13.0") < makefile.index('pip install --quiet -e ".[dev,events,browser]"')

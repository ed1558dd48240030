"""Start JupyterLab the way the notebooks need it: ``python -m snnkit lab`` (``make lab``).

Two settings make a notebook survive being saved and reopened:

* **Widget state is saved with the notebook** (:func:`install_lab_settings`): JupyterLab's
  widget manager stores the sliders and their last drawing in the notebook when it saves,
  so a reopened notebook shows them instead of "Error displaying widget: model not
  found". The setting goes to ``overrides.d/snnkit.json`` in JupyterLab's application
  settings folder (``<venv>/share/jupyter/lab/settings``), next to whatever else is there.
* **Outputs stay out of git** (:func:`install_git_filter`): JupyterLab autosaves every
  output into the notebook file; the ``nbstripout`` clean filter (declared for ``*.ipynb``
  in ``.gitattributes``) strips outputs and widget state from what git sees, so an
  executed notebook neither shows as changed in ``git status`` nor can be committed with
  its outputs. Cell ids are kept, so a committed notebook passes through unchanged.

``make env`` runs both (``python -m snnkit lab --setup-only``); ``python -m snnkit lab``
runs them and then JupyterLab at the repository root, with this checkout first on the
kernels' ``PYTHONPATH``.
"""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from .config import HEADLESS_ENV, REPO_ROOT, _atomic_write_bytes

__all__ = ["LAB_SETTINGS", "STRIP_ARGS", "app_settings_dir", "install_lab_settings", "install_git_filter",
           "lab_command", "lab_env"]

LAB_SETTINGS: dict[str, dict[str, object]] = {
    "@jupyter-widgets/jupyterlab-manager:plugin": {"saveState": True},
}
"""JupyterLab settings the notebooks need, by plugin id."""

STRIP_ARGS: tuple[str, ...] = ("--keep-id",)
"""Options of the nbstripout filter: keep cell ids, so committed notebooks pass unchanged."""

OVERRIDES_NAME = "snnkit.json"


def app_settings_dir() -> Path:
    """JupyterLab's application settings folder for this environment (where it reads
    ``overrides.d/*.json``): ``<JUPYTERLAB_DIR or sys.prefix/share/jupyter/lab>/settings``."""
    from jupyterlab.commands import get_app_dir

    return Path(get_app_dir()) / "settings"


def install_lab_settings(settings_dir: str | os.PathLike[str] | None = None) -> Path:
    """Write :data:`LAB_SETTINGS` to ``SETTINGS_DIR/overrides.d/snnkit.json`` (atomically).

    Args:
        settings_dir: JupyterLab's application settings folder (default:
            :func:`app_settings_dir`).

    Returns:
        The file written.
    """
    folder = Path(settings_dir) if settings_dir is not None else app_settings_dir()
    path = folder / "overrides.d" / OVERRIDES_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write_bytes(path, (json.dumps(LAB_SETTINGS, indent=2) + "\n").encode())
    return path


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)


def install_git_filter(repo: str | os.PathLike[str] = REPO_ROOT, python: str = sys.executable) -> bool:
    """Configure the ``nbstripout`` git filter and diff driver in ``repo``'s git config.

    ``.gitattributes`` (committed) says which files use them; this sets what they run:
    ``PYTHON -m nbstripout --keep-id`` to clean, ``cat`` to smudge, and the same with ``-t``
    for diffs.

    Args:
        repo: a git checkout (a worktree's config is its repository's).
        python: the interpreter that has nbstripout installed.

    Returns:
        True when configured; False when ``repo`` is not a git checkout or git is missing.
    """
    repo = Path(repo)
    try:
        if _git(repo, "rev-parse", "--git-dir").returncode != 0:
            return False
    except FileNotFoundError:
        return False
    clean = " ".join([shlex.quote(python), "-m", "nbstripout", *STRIP_ARGS])
    for key, value in (("filter.nbstripout.clean", clean), ("filter.nbstripout.smudge", "cat"),
                       ("diff.ipynb.textconv", f"{clean} -t")):
        done = _git(repo, "config", "--local", key, value)
        if done.returncode != 0:
            raise RuntimeError(f"git config {key} failed in {repo}: {done.stderr.strip()}")
    return True


def lab_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment JupyterLab and its kernels get: this checkout first on
    ``PYTHONPATH``, and never headless (live widgets and progress bars)."""
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env.pop(HEADLESS_ENV, None)
    return env


def lab_command(args: Sequence[str] = (), root: str | os.PathLike[str] = REPO_ROOT) -> list[str]:
    """``python -m jupyter lab --ServerApp.root_dir=ROOT ARGS`` (ROOT: the repository)."""
    return [sys.executable, "-m", "jupyter", "lab", f"--ServerApp.root_dir={root}", *args]


def main(args: Sequence[str], *, setup_only: bool = False, setup: bool = True) -> int:
    """Install the settings and the filter (unless ``setup`` is False), then run JupyterLab
    with ``args`` (unless ``setup_only``); returns its exit code."""
    if setup:
        path = install_lab_settings()
        print(f"JupyterLab saves widget state with notebooks ({path})")
        if install_git_filter():
            print("git strips outputs from notebooks (nbstripout filter, see .gitattributes)")
        else:
            print(f"{REPO_ROOT} is not a git checkout: notebook outputs are not filtered")
    if setup_only:
        return 0
    try:
        return subprocess.call(lab_command(args), cwd=REPO_ROOT, env=lab_env())
    except KeyboardInterrupt:
        return 130

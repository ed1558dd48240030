"""The notebook pipeline: what every snnkit notebook uses, and what runs them headlessly.

* :mod:`~snnkit.notebook.config`: the parameter checks, the validated read-only config,
  seeding and the :class:`Recorder` of numbers and figures. Its names are importable from
  ``snnkit.notebook`` directly (``from snnkit.notebook import make_config, setup``).
* :mod:`~snnkit.notebook.plots`: figures the notebooks share.
* :mod:`~snnkit.notebook.widgets`: sliders over live computations or finished sweeps.
* :mod:`~snnkit.notebook.runner`: the papermill runner behind ``python -m snnkit run``;
  :mod:`~snnkit.notebook.spec_reader` reads a notebook's ``SPEC`` for it without running
  the notebook.
* :mod:`~snnkit.notebook.lab`: ``python -m snnkit lab``, JupyterLab with widget state saved
  in notebooks and notebook outputs kept out of git.

Plots, widgets and the runner import matplotlib, ipywidgets or papermill, so they are
imported on demand, not with this package.
"""
from .config import (
    COMMON_PARAMETERS,
    DEVICES,
    HEADLESS_ENV,
    INTERACTIVE_OUT,
    PAPER_PROFILES,
    PROFILE_COMMON,
    PROFILES,
    REPO_ROOT,
    Config,
    ConfigError,
    Param,
    Recorder,
    boolean,
    choice,
    common_spec,
    default_device,
    default_out_dir,
    float_list,
    fraction,
    int_list,
    int_range,
    is_headless,
    make_config,
    nonneg_int,
    number,
    positive_float,
    positive_int,
    probability,
    profile_values,
    resolve_device,
    seed_everything,
    set_theme,
    setup,
    string,
    to_jsonable,
)

__all__ = [
    "COMMON_PARAMETERS", "DEVICES", "HEADLESS_ENV", "INTERACTIVE_OUT", "PAPER_PROFILES", "PROFILE_COMMON",
    "PROFILES", "REPO_ROOT",
    "Config", "ConfigError", "Param", "Recorder", "boolean", "choice", "common_spec", "default_device", "default_out_dir",
    "float_list", "fraction", "int_list", "int_range", "is_headless", "make_config", "nonneg_int",
    "number", "positive_float", "positive_int", "probability", "profile_values", "resolve_device",
    "seed_everything",
    "set_theme", "setup", "string", "to_jsonable",
]

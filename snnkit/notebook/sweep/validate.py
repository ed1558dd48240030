"""Checking a sweep before anything runs: parameters, seeds and every point's config."""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping, Sequence
from typing import Any

from .. import runner
from ..config import ConfigError, make_config

SWEEP_RESERVED = ("seed",)
"""Parameters a sweep sets itself (``seeds``), besides the runner's own."""



def validate(notebook: str | os.PathLike[str], profile: str, grid: Mapping[str, Sequence[Any]],
             seeds: Sequence[int], fixed: Mapping[str, Any] | None = None) -> runner.NotebookSpec:
    """Check a sweep before anything runs; return the notebook's specification.

    Every grid and fixed parameter must be declared by the notebook's ``parameters`` cell
    and not be set by the runner (``profile``, ``out_dir``) or the sweep (``seed``).
    Every point is then checked the way the notebook's own ``make_config`` would check it
    (its ``SPEC``, ``PROFILE_DEFAULTS`` and data sets; see
    :func:`~snnkit.notebook.runner.notebook_spec`). Checks that a notebook makes later
    than ``make_config`` (e.g. a schedule's order) show up as failed points.

    Raises:
        ValueError: naming the bad parameter or value and what is accepted.
        FileNotFoundError: the notebook does not exist.
    """
    nb_path = runner.resolve_notebook(notebook)
    runner._check_profile(profile)
    fixed = dict(fixed or {})
    nb = runner.notebook_spec(nb_path)
    declared = [n for n in nb.parameters if n not in runner.RESERVED_PARAMETERS]
    for source, names in (("--grid", list(grid)), ("-p", list(fixed))):
        for name in names:
            if name in runner.RESERVED_PARAMETERS:
                raise ValueError(f"{source} {name}: set by the runner (use --profile / --out)")
            if name in SWEEP_RESERVED:
                raise ValueError(f"{source} {name}: a sweep sets the seed itself; use --seeds N "
                                 "(and --seed-start S) for seeds S..S+N-1")
            if name not in nb.parameters:
                raise ValueError(f"{nb_path.stem}: unknown parameter {name!r} in {source}; its "
                                 f"parameters cell declares: {', '.join(declared) or 'nothing'}")
    both = sorted(set(grid) & set(fixed))
    if both:
        raise ValueError(f"{', '.join(both)}: given both with --grid and -p; keep one")
    for name, values in grid.items():
        if not list(values):
            raise ValueError(f"--grid {name}: no values")
    if "seed" not in nb.parameters:
        raise ValueError(f"{nb_path.stem}: its parameters cell has no 'seed', so a sweep cannot "
                         "set one")
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds: expected at least one seed (--seeds N with N >= 1)")
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise ValueError(f"seed={s!r}: expected an integer >= 0")
    if not nb.spec:
        return nb
    names = list(grid)
    for combo in itertools.product(*(grid[n] for n in names)):
        values = dict(zip(names, combo))
        params = {**nb.parameters, **fixed, **values, "seed": seeds[0], "profile": profile,
                  "out_dir": None}
        device = params.get("device")
        if device in runner.DEVICES:  # CUDA may exist on the workers, not here
            params["device"] = "cpu"
        datasets = nb.datasets if nb.datasets is not None else (params.get("dataset"),)
        try:
            # the files are checked where the runs are: a cluster's workers may hold data this client has not
            make_config(params, nb.spec, nb.profile_defaults, datasets=datasets, check_files=False)
        except ConfigError as exc:
            where = ", ".join(f"{k}={v!r}" for k, v in values.items()) or "its fixed parameters"
            raise ValueError(f"{nb_path.stem} would refuse the point {where} "
                             f"(profile {profile!r}): {exc}") from None
    return nb



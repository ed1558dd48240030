"""Run snnkit notebooks headlessly with papermill and collect their numbers and figures.

For ``notebooks/NAME.ipynb`` and an output folder ``DIR`` a successful run leaves::

    DIR/NAME/NAME.ipynb        the executed copy
    DIR/NAME/results.json      flat JSON object of the numbers the notebook recorded
    DIR/NAME/figures/*.png     the figures it saved

Outputs are replaced atomically. The notebook runs into a staging folder
``DIR/.NAME.tmp-XXXX`` (that is the ``out_dir`` parameter the notebook receives); on
success the previous ``DIR/NAME`` is renamed away, the staging folder renamed in, and the
old one deleted, along with any stale ``DIR/NAME.failed``. On failure the previous
``DIR/NAME`` is left untouched and the staging folder becomes ``DIR/NAME.failed/``,
holding the executed notebook (with the traceback) and whatever it wrote, for debugging;
it is replaced by the next failure and removed by the next success.

Kernels are started with ``SNNKIT_HEADLESS=1`` (see :func:`snnkit.notebook.is_headless`),
this checkout first on ``PYTHONPATH`` (so the kernel imports this ``snnkit``), and their
working directory set to the notebook's folder, as in JupyterLab. The kernel is the
``python3`` kernelspec, whose ``python`` jupyter_client replaces by the running
interpreter, so the notebook runs in the same environment as the runner.

Several notebooks run concurrently with ``jobs > 1``: each one is driven by papermill in
its own thread while the work happens in its own kernel process. ``OMP_NUM_THREADS`` is
then set to ``cpu_count // jobs`` for the kernels (unless already set) to avoid
oversubscribing the cores.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import HEADLESS_ENV, PROFILES, REPO_ROOT

NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
"""Where ``python -m snnkit run`` looks for notebooks when none are named."""

DEFAULT_OUT = REPO_ROOT / "out"
"""Default parent output folder; the CLI uses ``DEFAULT_OUT / PROFILE``."""

KERNEL_NAME = "python3"
RESERVED_PARAMETERS = ("profile", "out_dir")
"""Parameters the runner sets itself (``--profile``, ``--out``)."""


@dataclass
class RunResult:
    """What one notebook run produced.

    Attributes:
        name: notebook stem (``NAME`` of ``NAME.ipynb``).
        ok: whether every cell ran.
        out_dir: ``DIR/NAME`` on success, ``DIR/NAME.failed`` on failure.
        results: the recorded numbers (contents of results.json; may be partial on failure).
        error: None on success; otherwise the failing cell (index, first source line) and
            the exception, or the reason the run could not start.
        seconds: wall time of the run.
        notebook: the source notebook.
        executed: the executed copy, when one was written.
        cell_index: 0-based index of the failing cell in the source notebook, when known.
    """

    name: str
    ok: bool
    out_dir: Path
    results: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0
    notebook: Path | None = None
    executed: Path | None = None
    cell_index: int | None = None


# --------------------------------------------------------------------------- discovery


def discover_notebooks(folder: str | os.PathLike[str] = NOTEBOOKS_DIR) -> list[Path]:
    """All ``*.ipynb`` directly in ``folder``, sorted by name (empty if it does not exist)."""
    return sorted(Path(folder).glob("*.ipynb"))


def resolve_notebook(spec: str | os.PathLike[str]) -> Path:
    """A path to an existing notebook, or the name of one in ``notebooks/`` (``NAME`` or
    ``NAME.ipynb``).

    Raises:
        FileNotFoundError: naming the notebooks that exist.
    """
    path = Path(spec)
    if path.is_file():
        return path.resolve()
    candidate = NOTEBOOKS_DIR / (path.name if path.suffix == ".ipynb" else f"{path.name}.ipynb")
    if path.parent == Path(".") and candidate.is_file():
        return candidate.resolve()
    known = ", ".join(p.stem for p in discover_notebooks()) or "none"
    raise FileNotFoundError(f"notebook {str(spec)!r}: no such file; expected a path to an "
                            f".ipynb file or a name in {NOTEBOOKS_DIR} (known: {known})")


def parse_value(text: str) -> Any:
    """Read a ``-p NAME VALUE`` value as a Python literal, else keep the raw string.

    ``"3"`` -> 3, ``"[25, 10, 5]"`` -> [25, 10, 5], ``"None"`` -> None, ``"digits"`` -> "digits".
    """
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def notebook_parameters(path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """The notebook's ``parameters`` cell as ``{name: {name, inferred_type_name, default,
    help}}`` (``default`` is the source text), read with ``papermill.inspect_notebook``."""
    import papermill

    return papermill.inspect_notebook(str(path))


# ----------------------------------------------------------------------------- running


def kernel_env(jobs: int = 1) -> dict[str, str]:
    """Environment variables added to the kernel's (inherited) environment."""
    pythonpath = os.environ.get("PYTHONPATH", "")
    env = {
        HEADLESS_ENV: "1",
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), pythonpath) if p),
        # ipykernel's debugger warns about frozen modules on every start otherwise
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    }
    if jobs > 1 and "OMP_NUM_THREADS" not in os.environ:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // jobs))
    return env


def _kernel_manager_class(env: Mapping[str, str], cwd: Path) -> type:
    """An AsyncKernelManager that starts the kernel with ``env`` added and in ``cwd``.

    papermill's own ``cwd`` option changes the working directory of the whole process,
    which is unsafe with several notebooks running in threads; the kernel's working
    directory is set at launch instead.
    """
    from jupyter_client.manager import AsyncKernelManager

    extra = dict(env)
    # jupyter_client >= 8.7 can encrypt the local TCP link; ipykernel warns when it is not
    encryption = "transport_encryption" in AsyncKernelManager.class_trait_names()

    class SnnkitKernelManager(AsyncKernelManager):
        async def start_kernel(self, **kw: Any) -> None:
            kw["env"] = {**os.environ, **(kw.get("env") or {}), **extra}
            kw.setdefault("cwd", str(cwd))
            if encryption:  # CurveZMQ keys where the kernelspec supports them
                kw.setdefault("transport_encryption", "auto")
            await super().start_kernel(**kw)

    return SnnkitKernelManager


def _first_line(source: str) -> str:
    for line in source.splitlines():
        if line.strip():
            return line.strip()
    return ""


def _source_cell_index(executed: Path, cell_index: int) -> int:
    """Map an index in the executed copy to the source notebook (papermill inserts an
    ``injected-parameters`` cell after the ``parameters`` cell)."""
    try:
        import nbformat

        cells = nbformat.read(str(executed), as_version=4).cells
    except Exception:  # the copy may be missing if the kernel never started
        return cell_index
    injected = sum("injected-parameters" in c.get("metadata", {}).get("tags", [])
                   for c in cells[:cell_index])
    return cell_index - injected


def describe_error(exc: BaseException, executed: Path | None = None) -> tuple[str, int | None]:
    """A readable error text and the source cell index (None when not a cell error)."""
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        index = exc.cell_index
        if executed is not None:
            index = _source_cell_index(executed, exc.cell_index)
        ordinal = _ordinal(index + 1)
        text = (f"cell {index} (the {ordinal} cell, In [{exc.exec_count}] in the executed copy): "
                f"{_first_line(exc.source)}\n{exc.ename}: {exc.evalue}")
        return text, index
    return f"{type(exc).__name__}: {exc}", None


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _read_results(folder: Path) -> dict[str, Any]:
    path = folder / "results.json"
    if not path.is_file():
        return {}
    with path.open(encoding="utf-8") as fh:
        data = json.load(fh)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _check_profile(profile: str) -> None:
    if profile not in PROFILES:
        raise ValueError(f"profile={profile!r}: expected one of {', '.join(map(repr, PROFILES))}")


def _check_params(params: Mapping[str, Any]) -> None:
    reserved = [n for n in params if n in RESERVED_PARAMETERS]
    if reserved:
        raise ValueError(f"parameter(s) {', '.join(reserved)} are set by the runner: "
                         "use profile=/--profile and out=/--out instead")


def run_notebook(path: str | os.PathLike[str], profile: str, out: str | os.PathLike[str],
                 params: Mapping[str, Any] | None = None, *, progress: bool = False,
                 jobs: int = 1, kernel_name: str = KERNEL_NAME,
                 timeout: float | None = None) -> RunResult:
    """Execute one notebook into ``out/NAME`` (see the module docstring for the layout).

    Args:
        path: the notebook (a path, or a name in ``notebooks/``).
        profile: ``"smoke"`` or ``"full"``, injected as the ``profile`` parameter.
        out: parent output folder; the notebook gets ``out_dir`` = its staging folder,
            which becomes ``out/NAME`` on success.
        params: extra parameters; each must be declared in the notebook's parameters cell.
        progress: show papermill's per-cell progress bar.
        jobs: how many notebooks run at once (only used to share cores between kernels).
        kernel_name: the kernelspec to run.
        timeout: per-cell time limit in seconds (None: no limit).

    Returns:
        A :class:`RunResult`; a notebook that fails gives ``ok=False``, it does not raise.

    Raises:
        ValueError: bad profile, a reserved or undeclared parameter name.
        FileNotFoundError: the notebook does not exist.
    """
    nb_path = resolve_notebook(path)
    params = dict(params or {})
    _check_profile(profile)
    _check_params(params)
    declared = notebook_parameters(nb_path)
    unknown = [n for n in params if n not in declared]
    if unknown:
        raise ValueError(f"{nb_path.stem}: unknown parameter(s) {', '.join(unknown)}; its "
                         f"parameters cell declares: {', '.join(declared) or 'nothing'}")
    return _execute(nb_path, profile, Path(out), params, progress=progress, jobs=jobs,
                    kernel_name=kernel_name, timeout=timeout)


def _execute(nb_path: Path, profile: str, out: Path, params: dict[str, Any], *,
             progress: bool, jobs: int, kernel_name: str, timeout: float | None) -> RunResult:
    """Run a validated notebook through papermill and move its outputs into place."""
    import papermill

    start = time.perf_counter()
    name = nb_path.stem
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    final, failed = out / name, out / f"{name}.failed"
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=out))
    executed = staging / f"{name}.ipynb"
    engine_kwargs: dict[str, Any] = {
        "kernel_manager_class": _kernel_manager_class(kernel_env(jobs), nb_path.parent)}
    if timeout is not None:
        engine_kwargs["execution_timeout"] = timeout
    try:
        try:
            papermill.execute_notebook(
                str(nb_path), str(executed),
                parameters={**params, "profile": profile, "out_dir": str(staging)},
                kernel_name=kernel_name, language="python",
                progress_bar={"desc": name, "leave": False} if progress else False,
                **engine_kwargs)
            results = _read_results(staging)
        except Exception as exc:  # noqa: BLE001 - any failure is reported, not raised
            has_copy = executed.exists()
            error, cell = describe_error(exc, executed if has_copy else None)
            try:
                results = _read_results(staging)
            except (ValueError, OSError):
                results = {}
            shutil.rmtree(failed, ignore_errors=True)
            staging.rename(failed)
            return RunResult(name, False, failed, results, error, time.perf_counter() - start,
                             nb_path, failed / executed.name if has_copy else None, cell)

        # success: swap the staging folder in place of the previous output
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{name}.old-", dir=out))
            final.rename(old / name)
            staging.rename(final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            staging.rename(final)
        shutil.rmtree(failed, ignore_errors=True)
        return RunResult(name, True, final, results, None, time.perf_counter() - start,
                         nb_path, final / executed.name)
    finally:
        if staging.exists():  # interrupted (KeyboardInterrupt) or a rename failed
            shutil.rmtree(staging, ignore_errors=True)


def run_notebooks(paths: Iterable[str | os.PathLike[str]] | None, profile: str,
                  out: str | os.PathLike[str], params: Mapping[str, Any] | None = None,
                  jobs: int = 1, progress: bool = True, *, kernel_name: str = KERNEL_NAME,
                  timeout: float | None = None) -> list[RunResult]:
    """Run several notebooks (default: all of ``notebooks/``), ``jobs`` at a time.

    A failing notebook does not stop the others. Each notebook receives only the
    ``params`` its parameters cell declares; a name that no notebook declares is an error.
    Progress: a tqdm bar over notebooks, plus papermill's per-cell bar when ``jobs == 1``.

    Returns:
        One :class:`RunResult` per notebook, in the order given.

    Raises:
        ValueError: bad profile or jobs, duplicate notebook names, or a parameter no
            notebook declares. FileNotFoundError: a notebook does not exist.
    """
    from tqdm import tqdm

    nb_paths = [resolve_notebook(p) for p in paths] if paths is not None else discover_notebooks()
    params = dict(params or {})
    _check_profile(profile)
    _check_params(params)
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs={jobs!r}: expected an integer >= 1")
    names = [p.stem for p in nb_paths]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"notebooks with the same name {dupes} would share an output folder; "
                         "run them into different --out folders")
    declared = {p: notebook_parameters(p) for p in nb_paths}
    unused = [n for n in params if not any(n in d for d in declared.values())]
    if unused:
        accepted = sorted({n for d in declared.values() for n in d} - set(RESERVED_PARAMETERS))
        raise ValueError(f"parameter(s) {', '.join(unused)} are declared by none of the notebooks; "
                         f"accepted: {', '.join(accepted) or 'nothing'}")

    bar = tqdm(total=len(nb_paths), desc="notebooks", unit="nb", disable=not progress,
               file=sys.stderr)

    def one(p: Path) -> RunResult:
        mine = {k: v for k, v in params.items() if k in declared[p]}
        result = _execute(p, profile, Path(out), mine, progress=progress and jobs == 1,
                          jobs=jobs, kernel_name=kernel_name, timeout=timeout)
        bar.set_postfix_str(f"{result.name} {'ok' if result.ok else 'FAILED'}", refresh=False)
        bar.update(1)
        return result

    try:
        if jobs == 1:
            return [one(p) for p in nb_paths]
        with ThreadPoolExecutor(max_workers=min(jobs, max(1, len(nb_paths)))) as pool:
            return list(pool.map(one, nb_paths))
    finally:
        bar.close()


def format_failure(result: RunResult) -> str:
    """A multi-line report of a failed run: notebook, cell, error, executed copy."""
    lines = [f"FAILED {result.notebook or result.name}"]
    lines += [f"  {line}" for line in (result.error or "").splitlines()]
    if result.executed is not None:
        lines.append(f"  executed copy: {result.executed}")
    return "\n".join(lines)


def format_summary(results: Sequence[RunResult]) -> str:
    """One line per run: status, name, seconds, output folder."""
    width = max((len(r.name) for r in results), default=0)
    return "\n".join(f"{'ok' if r.ok else 'FAILED':6}  {r.name:{width}}  {r.seconds:6.1f} s  {r.out_dir}"
                     for r in results)

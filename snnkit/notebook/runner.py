"""Run snnkit notebooks headlessly with papermill and collect their numbers and figures.

For ``notebooks/NAME.ipynb`` and an output folder ``DIR`` a successful run leaves::

    DIR/NAME/NAME.ipynb        the executed copy
    DIR/NAME/results.json      flat JSON object of the numbers the notebook recorded
    DIR/NAME/figures/*.png     the figures it saved
    DIR/NAME/run.json          how it ran: profile, parameters, seconds, error, host

Outputs are replaced atomically. The notebook runs into a staging folder
``DIR/.NAME.tmp-PID@HOST-XXXXXXXX`` (that is the ``out_dir`` parameter the notebook
receives; PID and HOST name the process that owns it); on
success the previous ``DIR/NAME`` is renamed away, the staging folder renamed in, and the
old one deleted, along with any stale ``DIR/NAME.failed``. On failure the previous
``DIR/NAME`` is left untouched and the staging folder becomes ``DIR/NAME.failed/``,
holding the executed notebook (with the traceback) and whatever it wrote, for debugging;
it is replaced by the next failure and removed by the next success. A run killed midway
(``kill -9``, a lost machine) leaves its staging folder behind; every run first removes the
staging folders in ``DIR`` whose owning process on this host is gone
(:func:`clean_stale_staging`). Files and folders get the usual permissions under the user's
umask (0644 and 0755 with the common umask 022), as if written with ``open``.

Kernels are started with ``SNNKIT_HEADLESS=1`` (see :func:`snnkit.notebook.is_headless`),
this checkout first on ``PYTHONPATH`` (so the kernel imports this ``snnkit``), and their
working directory set to the notebook's folder, as in JupyterLab. The kernel is the
``python3`` kernelspec, whose ``python`` jupyter_client replaces by the running
interpreter, so the notebook runs in the same environment as the runner.

Several notebooks run concurrently with ``jobs > 1``: each one is driven by papermill in
its own thread while the work happens in its own kernel process. ``OMP_NUM_THREADS`` is
then set to ``cpu_count // jobs`` for the kernels (unless already set, or given as
``threads``) to avoid oversubscribing the cores.

:func:`notebook_spec` reads a notebook's ``SPEC``, ``PROFILE_DEFAULTS`` and accepted data
sets without running it; ``python -m snnkit list`` and the sweep's validation use it.
"""

from __future__ import annotations

import ast
import json
import os
import re
import secrets
import shutil
import socket
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import (  # noqa: F401 (DEVICES: read by sweep as runner.DEVICES)
    DEVICES, HEADLESS_ENV, PROFILE_COMMON, PROFILES, REPO_ROOT, Param, common_spec, default_device, profile_values,
    to_jsonable)
from .spec_reader import Cell, read_assignments, read_call_argument

NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
"""Where ``python -m snnkit run`` looks for notebooks when none are named."""

DEFAULT_OUT = REPO_ROOT / "out"
"""Default parent output folder; the CLI uses ``DEFAULT_OUT / PROFILE``."""

KERNEL_NAME = "python3"
RESERVED_PARAMETERS = ("profile", "out_dir")
"""Parameters the runner sets itself (``--profile``, ``--out``)."""

RUN_RECORD = "run.json"
"""Name of the file, in every output folder, that says how the run was made."""


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


@dataclass(frozen=True)
class NotebookSpec:
    """What a notebook accepts, read from its source without running it.

    Attributes:
        parameters: every name of the ``parameters`` cell -> its value there (a literal;
            a value that is not a literal is kept as its source text).
        help: name -> the trailing ``# comment`` of its line in the ``parameters`` cell.
        spec: the ``SPEC`` dict of :class:`~snnkit.notebook.Param` checks (empty when the
            notebook has none).
        profile_defaults: the ``PROFILE_DEFAULTS`` dict, profile -> {name: value}.
        datasets: the ``datasets=`` of its ``make_config`` call; None when the call has
            none that is a literal (then ``dataset`` is not checked here).
    """

    parameters: dict[str, Any]
    help: dict[str, str]
    spec: dict[str, Param]
    profile_defaults: dict[str, dict[str, Any]]
    datasets: tuple[str, ...] | None

    def value(self, name: str, profile: str) -> Any:
        """The value ``name`` takes in ``profile`` when nothing is passed with ``-p``: the
        ``parameters`` cell's value, or the profile's default where that is None (as
        :func:`~snnkit.notebook.make_config` fills it, ``paper-smoke`` overlaying ``paper``)."""
        if name == "profile":
            return profile
        value = self.parameters.get(name)
        if value is None and (name in self.spec or name in PROFILE_COMMON):
            value = profile_values(self.profile_defaults, profile).get(name)
            if value is None and name == "device":
                value = default_device(profile)
        return value

    def profiles(self) -> tuple[str, ...]:
        """The profiles ``list`` shows: smoke and full, and paper where the notebook declares
        it (``paper-smoke``, a test mode, is left out)."""
        return tuple(p for p in PROFILES if p in ("smoke", "full") or (p == "paper" and p in self.profile_defaults))

    def check(self, name: str) -> Param | None:
        """The check a value of ``name`` must pass: its ``SPEC`` entry, or the check
        :func:`~snnkit.notebook.make_config` applies to a common parameter; None when
        the notebook declares no check for it."""
        if name in self.spec:
            return self.spec[name]
        return common_spec(self.datasets).get(name)


def _notebook_namespace() -> dict[str, Any]:
    """The names a ``SPEC`` may use without importing them: ``snnkit.notebook``'s exports."""
    from .. import notebook

    return {n: getattr(notebook, n) for n in notebook.__all__}


def _parameter_cell(nb: Any, path: Path) -> tuple[int, dict[str, Any], dict[str, str]]:
    """(index, {name: value}, {name: comment}) of the cell tagged ``parameters``."""
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            values: dict[str, Any] = {}
            helps: dict[str, str] = {}
            source = cell.source
            tree = ast.parse(source, filename=f"{path.name}, parameters cell")
            lines = source.splitlines()
            for node in tree.body:
                if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                        and isinstance(node.targets[0], ast.Name):
                    name = node.targets[0].id
                    try:
                        values[name] = ast.literal_eval(node.value)
                    except (ValueError, TypeError, SyntaxError):
                        values[name] = ast.get_source_segment(source, node.value)
                    line = lines[node.end_lineno - 1] if node.end_lineno else ""
                    if "#" in line[node.end_col_offset or 0:]:
                        helps[name] = line[node.end_col_offset:].split("#", 1)[1].strip()
            return index, values, helps
    return -1, {}, {}


def notebook_spec(path: str | os.PathLike[str]) -> NotebookSpec:
    """Read a notebook's parameters, ``SPEC``, ``PROFILE_DEFAULTS`` and accepted data sets.

    The first code cell after the ``parameters`` cell that assigns ``SPEC`` is read, not
    run: :mod:`~snnkit.notebook.spec_reader` evaluates its ``SPEC`` and
    ``PROFILE_DEFAULTS`` expressions and the ``datasets=`` of its ``make_config`` call,
    which may use literals, ``snnkit.notebook``'s Param helpers, names imported from
    ``snnkit`` (a registry's ``names()`` included) and constants assigned above them.
    No other code of the notebook runs.

    Args:
        path: the notebook (a path, or a name in ``notebooks/``).

    Returns:
        A :class:`NotebookSpec`; its ``spec`` and ``profile_defaults`` are empty for a
        notebook without a ``SPEC``.

    Raises:
        FileNotFoundError: the notebook does not exist.
        ValueError: the ``SPEC``, ``PROFILE_DEFAULTS`` or ``datasets=`` expression uses
            something the reader refuses (the message names the cell, line and construct),
            or does not build what is expected.
    """
    import nbformat

    nb_path = resolve_notebook(path)
    nb = nbformat.read(str(nb_path), as_version=4)
    start, values, helps = _parameter_cell(nb, nb_path)
    namespace = _notebook_namespace()
    before: list[Cell] = []
    for index, cell in enumerate(nb.cells):
        if index <= start or cell.cell_type != "code":
            continue
        here = Cell(cell.source, f"{nb_path.name}, cell {index}")
        try:
            evaluated = read_assignments([*before, here], ("SPEC", "PROFILE_DEFAULTS"), defaults=namespace)
        except SyntaxError:  # IPython magics; a SPEC cell is plain python
            continue
        if "SPEC" not in evaluated:
            before.append(here)
            continue
        spec, defaults = evaluated["SPEC"], evaluated.get("PROFILE_DEFAULTS", {})
        if not isinstance(spec, dict) or not all(isinstance(v, Param) for v in spec.values()):
            raise ValueError(f"{here.where}: SPEC must be a dict of name -> Param, got {spec!r}")
        if not isinstance(defaults, dict) or not all(isinstance(v, dict) for v in defaults.values()):
            raise ValueError(f"{here.where}: PROFILE_DEFAULTS must be a dict of "
                             f"profile -> {{name: value}}, got {defaults!r}")
        found, datasets = read_call_argument(here, before, "make_config", "datasets", defaults=namespace)
        if found and datasets is None:
            datasets = ("digits",)  # make_config's default
        if datasets is not None:
            if isinstance(datasets, str) or not all(isinstance(d, str) for d in datasets):
                raise ValueError(f"{here.where}: make_config(datasets=...) must be a tuple of names, "
                                 f"got {datasets!r}")
            datasets = tuple(datasets)
        return NotebookSpec(values, helps, dict(spec), {k: dict(v) for k, v in defaults.items()}, datasets)
    return NotebookSpec(values, helps, {}, {}, None)


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        value = list(value)
    return repr(value)


def format_parameters(path: str | os.PathLike[str]) -> str:
    """A table of a notebook's parameters: the value each takes in each profile, then its
    help text and what it accepts. Used by ``python -m snnkit list``.

    A value set in the ``parameters`` cell applies to every profile; a ``None`` there
    means the profile's ``PROFILE_DEFAULTS`` entry. ``out_dir`` is set by the runner.
    """
    nb = notebook_spec(path)
    if not nb.parameters:
        return "    (no cell tagged 'parameters')"
    profiles = nb.profiles()
    rows = [("name", *profiles, "help")]
    for name in nb.parameters:
        if name == "out_dir":
            cells = ["(--out)"] * len(profiles)
        else:
            cells = [_show(nb.value(name, prof)) for prof in profiles]
        check = nb.check(name)
        text = (check.help if check is not None else "") or nb.help.get(name, "")
        if name == "profile":
            text = "set by --profile"
        elif name == "out_dir":
            text = "set by the runner to its output folder"
        elif check is not None:
            accepts = check.describe()
            text = f"{text}; {accepts}" if text else accepts
        rows.append((name, *cells, text))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(("    " + "  ".join(c.ljust(w) for c, w in zip(r[:-1], widths)) + "  " + r[-1]).rstrip()
                     for r in rows)


# ----------------------------------------------------------------------------- running


def kernel_env(jobs: int = 1, threads: int | None = None) -> dict[str, str]:
    """Environment variables added to the kernel's (inherited) environment.

    Args:
        jobs: kernels running at once on this machine; with ``jobs > 1`` each gets
            ``cpu_count // jobs`` threads unless ``OMP_NUM_THREADS`` is already set.
        threads: when given, the kernel's torch/OpenMP thread count, whatever the rest.
    """
    pythonpath = os.environ.get("PYTHONPATH", "")
    env = {
        HEADLESS_ENV: "1",
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), pythonpath) if p),
        # ipykernel's debugger warns about frozen modules on every start otherwise
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    }
    if threads is not None:
        if not isinstance(threads, int) or threads < 1:
            raise ValueError(f"threads={threads!r}: expected an integer >= 1")
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    elif jobs > 1 and "OMP_NUM_THREADS" not in os.environ:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // jobs))
    return env


# --------------------------------------------------------------------- staging folders

_STAGING = re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|old)-(?P<pid>\d+)@(?P<host>.+)-[0-9a-f]{8}$")


def _host() -> str:
    """This machine's name as it appears in staging folder names."""
    return re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname()) or "localhost"


def new_staging(out: Path, name: str, kind: str = "tmp") -> Path:
    """Create ``out/.NAME.KIND-PID@HOST-XXXXXXXX``, owned by this process.

    The folder gets the usual permissions under the umask (``tempfile.mkdtemp`` would
    give 0700, which the rename would carry to the final output).
    """
    for _ in range(100):
        path = out / f".{name}.{kind}-{os.getpid()}@{_host()}-{secrets.token_hex(4)}"
        try:
            path.mkdir(mode=0o777)
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a staging folder for {name!r} in {out}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    except OverflowError:
        return False
    return True


def clean_stale_staging(out: str | os.PathLike[str]) -> list[Path]:
    """Remove the staging folders in ``out`` that belong to no live process.

    A folder made by :func:`new_staging` on this host whose process is gone is stale: a
    run was killed midway. Its ``.NAME.tmp-*`` folder (a partial run) is deleted. A
    ``.NAME.old-*`` folder holds the previous output while it is being replaced; if the
    run died before putting the new one in place (``out/NAME`` is missing), the previous
    output is moved back, otherwise the folder is deleted. Folders of other hosts (a
    shared disk; machines sharing a folder are told apart by their host names) and of
    live processes are left alone, and so are staging folders without an owner (made
    before owners were recorded).

    Returns:
        The staging folders that were removed.
    """
    out = Path(out)
    removed: list[Path] = []
    if not out.is_dir():
        return removed
    host = _host()
    for entry in out.iterdir():
        m = _STAGING.match(entry.name)
        if m is None or not entry.is_dir() or m["host"] != host or _pid_alive(int(m["pid"])):
            continue
        name = m["name"]
        previous = entry / name
        if m["kind"] == "old" and previous.is_dir() and not (out / name).exists():
            try:
                previous.rename(out / name)
            except OSError:
                pass
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    return removed


def install(staging: Path, out: Path, name: str, ok: bool) -> Path:
    """Move a finished staging folder into place and return where it went.

    ``ok``: it replaces ``out/NAME`` (the previous one is renamed away, then deleted) and
    any ``out/NAME.failed`` is removed. Not ``ok``: it replaces ``out/NAME.failed`` and
    ``out/NAME`` is left untouched.
    """
    final, failed = out / name, out / f"{name}.failed"
    if not ok:
        shutil.rmtree(failed, ignore_errors=True)
        staging.rename(failed)
        return failed
    if final.exists():
        old = new_staging(out, name, "old")
        final.rename(old / name)
        staging.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staging.rename(final)
    shutil.rmtree(failed, ignore_errors=True)
    return final


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
    ``injected-parameters`` cell after the ``parameters`` cell). ``cell_index`` counts the
    cells as they ran; the copy papermill writes after an error also holds the error banners
    it adds (at the top and before the failing cell), which are left out here."""
    try:
        import nbformat

        cells = nbformat.read(str(executed), as_version=4).cells
    except Exception:  # the copy may be missing if the kernel never started
        return cell_index
    ran = [c for c in cells if "papermill-error-cell-tag" not in c.get("metadata", {}).get("tags", [])]
    injected = sum("injected-parameters" in c.get("metadata", {}).get("tags", [])
                   for c in ran[:cell_index])
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
                 timeout: float | None = None, name: str | None = None,
                 threads: int | None = None) -> RunResult:
    """Execute one notebook into ``out/NAME`` (see the module docstring for the layout).

    Args:
        path: the notebook (a path, or a name in ``notebooks/``).
        profile: one of :data:`~snnkit.notebook.PROFILES`, injected as the ``profile`` parameter.
        out: parent output folder; the notebook gets ``out_dir`` = its staging folder,
            which becomes ``out/NAME`` on success.
        params: extra parameters; each must be declared in the notebook's parameters cell.
        progress: show papermill's per-cell progress bar.
        jobs: how many notebooks run at once (only used to share cores between kernels).
        kernel_name: the kernelspec to run.
        timeout: per-cell time limit in seconds (None: no limit).
        name: the output folder's name (default: the notebook's stem); the executed copy
            inside it is still called after the notebook.
        threads: the kernel's torch/OpenMP threads (default: see :func:`kernel_env`).

    Returns:
        A :class:`RunResult`; a notebook that fails gives ``ok=False``, it does not raise.

    Raises:
        ValueError: bad profile, name or threads, a reserved or undeclared parameter name.
        FileNotFoundError: the notebook does not exist.
    """
    nb_path = resolve_notebook(path)
    params = dict(params or {})
    _check_profile(profile)
    _check_params(params)
    if name is not None and (not name or name.startswith(".") or any(c in name for c in "/\\")
                             or name.endswith(".failed")):
        raise ValueError(f"name={name!r}: expected a plain folder name (no '/', not starting "
                         "with '.', not ending in '.failed')")
    kernel_env(jobs, threads)  # checks threads
    declared = notebook_parameters(nb_path)
    unknown = [n for n in params if n not in declared]
    if unknown:
        raise ValueError(f"{nb_path.stem}: unknown parameter(s) {', '.join(unknown)}; its "
                         f"parameters cell declares: {', '.join(declared) or 'nothing'}")
    return _execute(nb_path, profile, Path(out), params, progress=progress, jobs=jobs,
                    kernel_name=kernel_name, timeout=timeout, name=name, threads=threads)


def _jsonable_or_repr(value: Any) -> Any:
    try:
        return to_jsonable(value)
    except (TypeError, ValueError):
        return repr(value)


def _execute(nb_path: Path, profile: str, out: Path, params: dict[str, Any], *,
             progress: bool, jobs: int, kernel_name: str, timeout: float | None,
             name: str | None = None, threads: int | None = None) -> RunResult:
    """Run a validated notebook through papermill and move its outputs into place."""
    import papermill

    start = time.perf_counter()
    name = name or nb_path.stem
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    clean_stale_staging(out)
    staging = new_staging(out, name)
    executed = staging / f"{nb_path.stem}.ipynb"
    engine_kwargs: dict[str, Any] = {
        "kernel_manager_class": _kernel_manager_class(kernel_env(jobs, threads), nb_path.parent)}
    if timeout is not None:
        engine_kwargs["execution_timeout"] = timeout
    error: str | None = None
    cell: int | None = None
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
            error, cell = describe_error(exc, executed if executed.exists() else None)
            try:
                results = _read_results(staging)
            except (ValueError, OSError):
                results = {}
        ok = error is None
        has_copy = executed.exists()
        seconds = time.perf_counter() - start
        record = {"notebook": str(nb_path), "profile": profile,
                  "parameters": {k: _jsonable_or_repr(v) for k, v in params.items()},
                  "ok": ok, "error": error, "cell_index": cell, "seconds": round(seconds, 3),
                  "host": socket.gethostname(), "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        (staging / RUN_RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        dest = install(staging, out, name, ok)
        return RunResult(name, ok, dest, results, error, seconds, nb_path,
                         dest / executed.name if has_copy else None, cell)
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

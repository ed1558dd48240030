"""Every notebook in a real browser: JupyterLab on localhost, driven by headless Chromium.

For each notebook in ``notebooks/`` (smoke profile: the parameters cell's default), the
test runs every cell, then

* moves every control of every explorer (sliders to an end of their range with the
  keyboard, drop-downs to another option, multi-selects to another choice) and checks
  that the control moved and that its figure or table changed, without an error;
* reads every output as a reader sees it and flags Python reprs (``Config(``,
  ``SpeedReport(...=``, ``{'...': ...}`` dumps, ``<... object at 0x...>``), ``nan``, and
  tables whose cells are cut with "...";
* saves the notebook, closes it (which shuts its kernel down) and reopens it: every widget
  must still display from the state saved with the notebook, with no "Error displaying
  widget".

Failures are collected, not stopped at: the message lists them all, each naming the
notebook, the cell (its index in the notebook) and the control. A separate test runs the
long cell of ``tests/fixtures/progress.ipynb`` and watches its progress bars move before
the cell ends. JupyterLab runs as ``python -m snnkit lab`` would start it (the settings of
:mod:`snnkit.notebook.lab`), on copies of the notebooks in a temporary folder. Screenshots
and each control's figure before and after go to ``$SNNKIT_ARTIFACTS`` (default
``out/browser/``).

Marked ``browser``: ``make test-browser`` runs them (``.ci/run`` too). If JupyterLab or the
browser cannot start, the test fails and says why; it is never skipped silently.
"""
from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import pytest

from snnkit.notebook import REPO_ROOT, lab as lab_setup
from snnkit.notebook.runner import discover_notebooks

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("SNNKIT_CHROMIUM", "/usr/bin/chromium")
SAVE_TIMEOUT_S = 90  # a save of the notebook, widget state included
SAVE_RETRY_S = 20  # Ctrl+S again when nothing was saved after this long
ARTIFACTS = Path(os.environ.get("SNNKIT_ARTIFACTS", REPO_ROOT / "out" / "browser"))
NOTEBOOKS = discover_notebooks(REPO_ROOT / "notebooks")
PROGRESS_FIXTURE = Path(__file__).resolve().parent / "fixtures" / "progress.ipynb"
RUN_TIMEOUT_S = 420  # one notebook's smoke profile, every cell
REDRAW_TIMEOUT_S = 90  # one control's redraw

USER_SETTINGS = {
    # every cell stays in the page, so that every output can be read; closing a notebook
    # shuts its kernel down, so that reopening it shows the saved widget state only
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {
        "windowingMode": "none", "kernelShutdown": True, "autoStartDefaultKernel": True},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                        "checkForUpdates": False},
}

# what a reader must not see in an output, with the name the failure message uses
REPR_PATTERNS = [
    ("a Python repr", re.compile(r"\b[A-Z][A-Za-z0-9_]*\((?:[a-z_][a-z0-9_]*)=")),  # Config(profile=..., SpeedReport(dense=
    ("a Python repr", re.compile(r"\b(?=[A-Za-z0-9]*[a-z])(?=(?:[A-Za-z0-9]*[A-Z]){2})[A-Z][A-Za-z0-9]*\(")),  # SpeedReport(
    ("a Python repr", re.compile(r"<[\w.]+ object at 0x[0-9a-fA-F]+>")),
    ("a figure's repr", re.compile(r"<Figure size [\d.]+x[\d.]+ with \d+ Axes>")),
    ("a dict dump", re.compile(r"\{\s*['\"][^'\"\n]{1,80}['\"]\s*:\s")),
    ("nan", re.compile(r"(?<![\w.])[+-]?nan(?![\w])", re.IGNORECASE)),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on 127.0.0.1, started as ``snnkit lab`` starts it, serving copies
    of the notebooks (and the progress fixture, in its full profile) in a temporary folder;
    yields (url, token, root)."""
    home = tmp_path_factory.mktemp("lab")
    root = home / "root"
    shutil.copytree(REPO_ROOT / "notebooks", root / "notebooks")
    fixture = nbformat.read(str(PROGRESS_FIXTURE), as_version=4)
    params = next(c for c in fixture.cells if "parameters" in c.metadata.get("tags", []))
    params.source = params.source.replace('profile = "smoke"', 'profile = "full"')
    (root / "fixtures").mkdir()
    nbformat.write(fixture, str(root / "fixtures" / "progress.ipynb"))
    lab_setup.install_lab_settings(home / "app-settings")  # what `make env` installs in the venv
    for rel, values in USER_SETTINGS.items():
        (home / "settings" / rel).parent.mkdir(parents=True, exist_ok=True)
        (home / "settings" / rel).write_text(json.dumps(values))
    port, token = _free_port(), secrets.token_hex(16)
    env = lab_setup.lab_env()
    env.update({"JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
                "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(home / "ws"),
                "OMP_NUM_THREADS": "1"})
    command = lab_setup.lab_command(
        ["--no-browser", f"--port={port}", "--ip=127.0.0.1", f"--IdentityProvider.token={token}",
         f"--LabApp.app_settings_dir={home / 'app-settings'}", "--ServerApp.open_browser=False",
         *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else [])], root=root)
    log = open(home / "lab.log", "w")
    proc = subprocess.Popen(command, env=env, cwd=root, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                log.close()
                pytest.fail(f"JupyterLab did not start on {url} within 90 s (exit code {proc.poll()}); "
                            f"its log:\n{(home / 'lab.log').read_text()[-3000:]}")
            time.sleep(0.5)
    yield url, token, root
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as err:
        pytest.fail(f"playwright is not installed ({err}); install the kit with its 'browser' extra")
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"no Chromium at {CHROMIUM}: install Debian's 'chromium' package (apt-get install chromium) "
                    "or set SNNKIT_CHROMIUM to the browser binary")
    with sync_playwright() as pw:
        try:
            b = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        except Exception as err:  # noqa: BLE001 - say why the browser did not start
            pytest.fail(f"Chromium at {CHROMIUM} did not start: {err}")
        yield b
        b.close()


try:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
except ImportError:  # reported by the browser fixture
    PlaywrightTimeout = TimeoutError


# ------------------------------------------------------------------------------- pages


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=False)


def _open(page, url: str, token: str, rel: str) -> None:
    """Open the notebook at ``rel`` (relative to the server root) alone, in a workspace of
    its own (JupyterLab would otherwise reopen every earlier tab and start its kernel), and
    wait until its kernel is idle."""
    workspace = re.sub(r"\W+", "-", rel)
    page.goto(f"{url}/lab/workspaces/{workspace}/tree/{rel}?token={token}&reset")
    page.wait_for_selector(f"{NOTEBOOK} .jp-CodeCell", timeout=120_000)
    select = page.locator(".jp-Dialog").get_by_role("button", name="Select", exact=True)
    try:  # in case JupyterLab asks which kernel to start: the notebook's own, python3
        select.wait_for(timeout=2_000)
        select.click()
    except PlaywrightTimeout:
        pass
    _wait_idle(page, 180, rel)


def _status(page) -> str:
    return page.evaluate("() => (document.querySelector('#jp-main-statusbar') || {}).textContent || ''")


def _wait_idle(page, timeout_s: float, rel: str) -> None:
    deadline = time.monotonic() + timeout_s
    while "Idle" not in _status(page):
        if time.monotonic() > deadline:
            _shot(page, f"{Path(rel).stem}_no_kernel")
            pytest.fail(f"{rel}: the kernel did not become idle within {timeout_s:.0f} s: {_status(page)!r}")
        time.sleep(0.5)


def _shut_down_kernels(url: str, token: str) -> None:
    for session in _api(url, token, "sessions"):
        _api(url, token, f"sessions/{session['id']}", method="DELETE")


NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook"
"""The notebook on show (other tabs stay in the page, hidden)."""

_PROMPTS = (f"() => [...document.querySelectorAll('{NOTEBOOK} .jp-CodeCell .jp-InputPrompt')]"
            ".map(e => e.textContent.trim())")


def _run_all(page, name: str, timeout_s: float) -> None:
    """Run every cell from the Run menu and wait until each shows an execution count."""
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    deadline = time.monotonic() + timeout_s
    while True:
        prompts = page.evaluate(_PROMPTS)
        if prompts and all(re.fullmatch(r"\[\d+\]:", p) for p in prompts) and "Idle" in _status(page):
            return
        failed = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']",
                              has_text="Traceback")
        if failed.count():
            _shot(page, f"{name}_error")
            pytest.fail(f"{name} failed in the browser: {failed.first.inner_text()[-2000:]}")
        if time.monotonic() > deadline:
            _shot(page, f"{name}_timeout")
            pytest.fail(f"{name} did not finish running within {timeout_s:.0f} s; prompts: {prompts}")
        time.sleep(1)


def _api(url: str, token: str, path: str, method: str = "GET") -> Any:
    """Call JupyterLab's REST API; a GET is retried while the server answers 500 (a
    notebook read while it is being written)."""
    request = urllib.request.Request(f"{url}/api/{path}?token={token}", method=method)
    for attempt in range(10):
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                body = response.read()
            return json.loads(body) if body else None
        except urllib.error.HTTPError as err:
            if err.code != 500 or method != "GET" or attempt == 9:
                raise
            time.sleep(0.5)


def _save_close_reopen(page, url: str, token: str, rel: str) -> None:
    """Save the notebook, leave the page, shut its kernel down and open it again: what it
    shows then comes from the file alone, as when a person reopens it another day."""
    before = _api(url, token, f"contents/{rel}")["last_modified"]
    start = time.monotonic()
    pressed = -SAVE_RETRY_S
    while _api(url, token, f"contents/{rel}")["last_modified"] == before:
        elapsed = time.monotonic() - start
        assert elapsed < SAVE_TIMEOUT_S, f"{rel} was not saved within {SAVE_TIMEOUT_S} s"
        if elapsed - pressed >= SAVE_RETRY_S:  # a busy page can drop a key press: press again
            page.locator(f"{NOTEBOOK} .jp-InputPrompt").first.click()
            page.keyboard.press("Control+s")
            pressed = elapsed
        time.sleep(0.5)
    saved = _api(url, token, f"contents/{rel}")["content"]
    missing = unsaved_widgets(saved)
    assert not missing, f"{rel} was saved without the state of the widgets its outputs show: {missing}"
    page.goto("about:blank")
    _shut_down_kernels(url, token)
    assert _api(url, token, "kernels") == [], "a kernel survived its session"
    _open(page, url, token, rel)  # a new kernel, which knows none of the widgets
    _wait_widgets(page)  # they render from the state saved in the file


def reopened_problems(page, url: str, token: str, rel: str, images: int) -> list[str]:
    """What a reopened notebook gets wrong: a widget that does not display, fewer explorer
    figures than before. The widget manager can lose a race between restoring the saved
    state and connecting the new kernel ("model not found" although the state is in the
    file, checked on saving); a reader reloads then, and so does this test, once."""
    name = Path(rel).stem
    for attempt in ("", " after a reload"):
        _shot(page, f"{name}_reopened")
        shown = page.locator(f"{NOTEBOOK} .widget-output img").count()
        problems = [f"reopened{attempt}: {p}" for p in output_problems(page.evaluate(_CELLS_JS)) if "widget" in p]
        if shown < images:
            problems.append(f"reopened{attempt}: {shown} of the {images} explorer figures display")
        if not problems or attempt:
            return problems
        (ARTIFACTS / f"{name}_reload.txt").write_text("\n".join(problems) + "\n")
        page.goto("about:blank")
        _shut_down_kernels(url, token)
        _open(page, url, token, rel)
        _wait_widgets(page)
    return problems


def _wait_widgets(page, timeout_s: float = 90) -> None:
    """Wait until no widget output still reads "Loading widget..."."""
    deadline = time.monotonic() + timeout_s
    loading = page.locator(f"{NOTEBOOK} .jp-OutputArea-output", has_text="Loading widget...")
    while loading.count() and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(1)


# ------------------------------------------------------------------------------ checks


_CELLS_JS = """() => [...document.querySelectorAll('NOTEBOOK .jp-Cell')].map((cell, index) => {
    const outputs = [...cell.querySelectorAll('.jp-OutputArea-output')].map(out => {
        const copy = out.cloneNode(true);
        copy.querySelectorAll('style, script').forEach(e => e.remove());
        return {text: copy.textContent, mime: out.getAttribute('data-mime-type') || '',
                cells: [...out.querySelectorAll('table td, table th')].map(td => td.textContent.trim())};
    });
    return {index, code: cell.classList.contains('jp-CodeCell'), outputs};
})""".replace("NOTEBOOK", NOTEBOOK)


def output_problems(cells: list[dict[str, Any]]) -> list[str]:
    """What a reader should not see in the outputs: one line per cell and kind."""
    problems = []
    for cell in cells:
        seen = set()
        for out in cell["outputs"]:
            text = out["text"]
            if "Error displaying widget" in text:
                seen.add(("a widget that does not display", text.strip()[:80]))
            if out["mime"] == "application/vnd.jupyter.stderr" and ("Traceback" in text or "Error" in text):
                seen.add(("an error", text.strip().splitlines()[-1][:160]))
            for what, pattern in REPR_PATTERNS:
                m = pattern.search(text)
                if m:
                    start = max(0, m.start() - 30)
                    seen.add((what, " ".join(text[start:m.end() + 40].split())))
            cut = [c for c in out["cells"] if c in ("...", "…") or c.endswith("...") or c.endswith("…")]
            if cut:
                seen.add(("a table cut with '...'", f"{len(cut)} cell(s), e.g. {cut[0][-60:]!r}"))
        problems += [f"cell {cell['index']}: {what}: {example}" for what, example in sorted(seen)]
    return problems


def unsaved_widgets(notebook: dict[str, Any]) -> list[str]:
    """The widgets that outputs of a saved notebook show but whose state it does not hold
    (reopened, each would read "Error displaying widget: model not found"), as
    ``cell N: MODEL_ID``."""
    state = notebook["metadata"].get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    saved = set(state.get("state", {}))
    missing = []
    for index, cell in enumerate(notebook["cells"]):
        for out in cell.get("outputs", []):
            view = out.get("data", {}).get("application/vnd.jupyter.widget-view+json")
            if view and view.get("model_id") and view["model_id"] not in saved:
                missing.append(f"cell {index}: {view['model_id']}")
    return missing


@dataclass
class Control:
    cell: int
    explorer: int
    label: str
    kind: str
    locator: Any = field(repr=False)


def _controls(page) -> list[Control]:
    """Every control of every explorer (a widget box with controls over an output area)."""
    found = []
    cells = page.locator(f"{NOTEBOOK} .jp-Cell")
    for index in range(cells.count()):
        explorers = cells.nth(index).locator(".widget-vbox:has(> .widget-output)")
        for e in range(explorers.count()):
            children = explorers.nth(e).locator(":scope > :not(.widget-output)")
            for k in range(children.count()):
                child = children.nth(k)
                classes = child.get_attribute("class") or ""
                kind = ("slider" if "widget-slider" in classes or "widget-hslider" in classes else
                        "multi-select" if "widget-select-multiple" in classes else
                        "dropdown" if "widget-dropdown" in classes else "unknown")
                label = child.locator(".widget-label").first.text_content().strip() if \
                    child.locator(".widget-label").count() else f"control {k}"
                found.append(Control(index, e, label, kind, child))
    return found


def _value(control: Control) -> str:
    if control.kind == "slider":
        return control.locator.locator(".noUi-handle").first.get_attribute("aria-valuenow") or ""
    if control.kind in ("dropdown", "multi-select"):
        return control.locator.locator("select").first.evaluate(
            "s => [...s.selectedOptions].map(o => o.textContent).join('|')")
    return ""


def _move(page, control: Control) -> None:
    """Move a control as a person would: a slider to an end of its range with the keyboard,
    a drop-down to the next option, a multi-select to a different choice."""
    if control.kind == "slider":
        handle = control.locator.locator(".noUi-handle").first
        at_max = handle.get_attribute("aria-valuenow") == handle.get_attribute("aria-valuemax")
        handle.focus()
        page.keyboard.press("Home" if at_max else "End")
    elif control.kind == "dropdown":
        select = control.locator.locator("select").first
        labels = select.locator("option").all_text_contents()
        current = labels.index(select.evaluate("s => s.selectedOptions[0].textContent"))
        select.select_option(label=labels[(current + 1) % len(labels)])
    elif control.kind == "multi-select":
        select = control.locator.locator("select").first
        labels = select.locator("option").all_text_contents()
        chosen = select.evaluate("s => [...s.selectedOptions].map(o => o.textContent)")
        new = chosen[1:] if len(chosen) > 1 else labels[:2]
        select.select_option(label=new)


def _explorer_output(control: Control):
    return control.locator.locator("xpath=..").locator(":scope > .widget-output").first


def _save_figure(html: str, name: str) -> None:
    m = re.search(r'src="data:image/png;base64,([^"]+)"', html)
    if m:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / f"{name}.png").write_bytes(base64.b64decode(m.group(1)))


def control_problems(page, name: str) -> tuple[list[str], int]:
    """Move every control; return what went wrong and how many controls there were."""
    problems = []
    controls = _controls(page)
    for c in controls:
        where = f"cell {c.cell}, control {c.label!r}"
        if c.kind == "unknown":
            problems.append(f"{where}: a control of a kind this test cannot move")
            continue
        output = _explorer_output(c)
        try:
            c.locator.scroll_into_view_if_needed(timeout=10_000)
        except PlaywrightTimeout:
            problems.append(f"{where}: not visible")
            continue
        before, value = output.inner_html(), _value(c)
        tag = re.sub(r"\W+", "_", f"{name}_cell{c.cell}_{c.label}")
        _move(page, c)
        deadline = time.monotonic() + REDRAW_TIMEOUT_S
        after = before
        while after == before and time.monotonic() < deadline:
            time.sleep(0.5)
            after = output.inner_html()
        if _value(c) == value:
            problems.append(f"{where}: did not move (value {value!r})")
        elif after == before:
            problems.append(f"{where}: moved from {value!r} to {_value(c)!r}, but its figure or table did not "
                            f"change within {REDRAW_TIMEOUT_S} s")
        elif "Traceback" in after:
            problems.append(f"{where}: moved to {_value(c)!r}, the explorer raised: "
                            f"{output.inner_text().strip().splitlines()[-1][:200]}")
        _save_figure(before, f"{tag}_before")
        _save_figure(after, f"{tag}_after")
    return problems, len(controls)


# ------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_in_the_browser(lab, browser, path):
    url, token, _ = lab
    name, rel = path.stem, f"notebooks/{path.name}"
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    seconds = {}
    try:
        start = time.monotonic()
        _open(page, url, token, rel)
        seconds["open"] = time.monotonic() - start
        _run_all(page, name, RUN_TIMEOUT_S)
        seconds["run"] = time.monotonic() - start - sum(seconds.values())
        _shot(page, f"{name}_ran")
        problems, n_controls = control_problems(page, name)
        problems += output_problems(page.evaluate(_CELLS_JS))
        seconds["controls"] = time.monotonic() - start - sum(seconds.values())
        images = page.locator(f"{NOTEBOOK} .widget-output img").count()
        _save_close_reopen(page, url, token, rel)
        problems += reopened_problems(page, url, token, rel, images)
        seconds["reopen"] = time.monotonic() - start - sum(seconds.values())
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / f"{name}_problems.txt").write_text(
            "\n".join(problems) + "\n" + ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items()) + "\n")
        assert not problems, (f"{name} ({n_controls} controls), {len(problems)} problem(s):\n  "
                              + "\n  ".join(problems))
    finally:
        page.close()
        _shut_down_kernels(url, token)


_BARS_JS = r"""() => [...document.querySelectorAll('NOTEBOOK .jp-Cell')].flatMap((cell, index) =>
    [...cell.querySelectorAll('.widget-hbox:has(.widget-hprogress)')].map(box => ({
        cell: index, visible: box.offsetParent !== null,
        text: [...box.querySelectorAll('.widget-html-content')].map(e => e.textContent).join(' ')
                  .replace(/\s+/g, ' ').trim()})))""".replace("NOTEBOOK", NOTEBOOK)


def test_progress_moves_before_the_long_cell_ends(lab, browser):
    """The fixture's loop trains three times: the outer bar (runs) and the inner bar (one
    training) advance while the cell runs; when it ends, the outer bar reads 3/3 and the
    inner bars are gone; reopened, the bar still displays."""
    url, token, _ = lab
    rel = "fixtures/progress.ipynb"
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        _open(page, url, token, rel)
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        seen: list[tuple[str, ...]] = []
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while True:
            prompts = page.evaluate(_PROMPTS)
            running = any(p == "[*]:" for p in prompts) or any(p == "[ ]:" for p in prompts)
            bars = tuple(b["text"] for b in page.evaluate(_BARS_JS) if b["visible"])
            if running and bars and (not seen or seen[-1] != bars):
                seen.append(bars)
            if not running and all(re.fullmatch(r"\[\d+\]:", p) for p in prompts):
                break
            assert time.monotonic() < deadline, f"the fixture did not finish within {RUN_TIMEOUT_S} s"
            time.sleep(0.25)
        _shot(page, "progress_done")
        outer = [s[0] for s in seen if s and s[0].startswith("training runs")]
        counts = {re.search(r"(\d+)/3", t).group(1) for t in outer if re.search(r"(\d+)/3", t)}
        inner = [t for s in seen for t in s[1:] if "epoch" in t]
        assert len(counts) >= 2, f"the outer bar did not advance while the cell ran: {outer}"
        assert "3" not in counts or len(counts) >= 3, outer
        assert len(set(inner)) >= 3 and any("run 1: epoch" in t for t in inner), \
            f"the inner bar did not advance while the cell ran: {inner[:10]}"
        assert any("ETA" in t or "<" in t for t in inner), f"no ETA on the inner bar: {inner[:3]}"
        final = [b for b in page.evaluate(_BARS_JS) if b["visible"]]
        assert [b["text"].split(" ")[0:2] for b in final] == [["training", "runs:"]], final
        assert "3/3" in final[0]["text"] and "run=2" in final[0]["text"], final
        _save_close_reopen(page, url, token, rel)
        problems = reopened_problems(page, url, token, rel, 0)
        assert not problems, problems
        again = [b for b in page.evaluate(_BARS_JS) if b["visible"]]
        assert len(again) == 1 and "3/3" in again[0]["text"], again
    finally:
        page.close()
        _shut_down_kernels(url, token)

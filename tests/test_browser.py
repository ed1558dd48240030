"""Sliders in a real browser: JupyterLab on localhost, driven by headless Chromium.

Each test starts JupyterLab with a fresh configuration and token on a free local port,
opens a notebook in Debian's Chromium through Playwright, runs every cell, moves one slider
with the keyboard, and checks that the figure the slider drives was redrawn (the PNG bytes
differ). Screenshots before and after are saved under ``$SNNKIT_ARTIFACTS`` (default
``out/browser/``) for a person to look at.

Marked ``browser``: ``make test-browser`` runs them (``.ci/run`` too). If JupyterLab or the
browser cannot start, the test fails and says why; it is never skipped silently.
"""
from __future__ import annotations

import base64
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from snnkit.notebook import REPO_ROOT

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("SNNKIT_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("SNNKIT_ARTIFACTS", REPO_ROOT / "out" / "browser"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on 127.0.0.1 serving a copy of the notebooks; yields (url, token)."""
    home = tmp_path_factory.mktemp("lab")
    root = home / "root"
    shutil.copytree(REPO_ROOT / "notebooks", root / "notebooks")
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(home / "ws"),
           "PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p),
           "OMP_NUM_THREADS": "1"}
    env.pop("SNNKIT_HEADLESS", None)  # a person's session: live widgets, not snapshots
    log = open(home / "lab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--ServerApp.open_browser=False",
         *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else [])],
        env=env, stdout=log, stderr=subprocess.STDOUT)
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
    yield url, token
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


def _run_all(page, url: str, token: str, notebook: str, timeout_s: float) -> None:
    """Open ``notebook``, run every cell from the Run menu, and wait until all have run."""
    page.goto(f"{url}/lab/tree/notebooks/{notebook}?token={token}")
    page.wait_for_selector(".jp-Notebook .jp-CodeCell", timeout=60_000)
    select = page.locator(".jp-Dialog").get_by_role("button", name="Select", exact=True)
    try:  # a fresh configuration asks which kernel to start: the notebook's own, python3
        select.wait_for(timeout=15_000)
        select.click()
    except PlaywrightTimeout:
        pass
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    deadline = time.monotonic() + timeout_s
    seen_busy, idle_polls = False, 0
    while True:
        # done when every code cell shows an execution count (a short notebook), or when the
        # kernel, busy once, has stayed idle for three polls (a long notebook: JupyterLab
        # does not keep the prompts of cells scrolled far away in the page)
        prompts = page.evaluate("() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]"
                                ".map(e => e.textContent.trim())")
        if prompts and all(p[1:-2].isdigit() for p in prompts):
            break
        status = page.evaluate("() => (document.querySelector('#jp-main-statusbar') || {}).textContent || ''")
        if "Busy" in status:
            seen_busy, idle_polls = True, 0
        elif "Idle" in status and seen_busy:
            idle_polls += 1
            if idle_polls >= 3:
                break
        errors = page.locator(".jp-RenderedText[data-mime-type='application/vnd.jupyter.stderr']", has_text="Error")
        if errors.count():
            page.screenshot(path=str(ARTIFACTS / f"{Path(notebook).stem}_error.png"))
            pytest.fail(f"{notebook} failed in the browser: {errors.first.inner_text()[-2000:]}")
        if time.monotonic() > deadline:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"{Path(notebook).stem}_timeout.png"))
            pytest.fail(f"{notebook} did not finish running within {timeout_s:.0f} s; prompts: {prompts}")
        time.sleep(2)


def _explorer_image(page, slider_label: str):
    """The <img> of the explorer whose slider is labelled ``slider_label``."""
    box = page.locator(".widget-vbox", has=page.locator(".widget-slider", has_text=slider_label)).last
    return box.locator(".widget-slider", has_text=slider_label).first, box.locator("img").first


def _move_and_compare(page, slider_label: str, name: str, value: str) -> tuple[str, str]:
    """Set the slider labelled ``slider_label`` to ``value`` through its readout box, as a
    person types it; return the figure's ``src`` before and after, and save both figures
    and screenshots under ARTIFACTS."""
    slider, img = _explorer_image(page, slider_label)
    img.wait_for(timeout=60_000)
    img.scroll_into_view_if_needed()
    before = img.get_attribute("src")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}_before.png"))
    readout = slider.locator(".widget-readout").first
    readout.click()
    page.keyboard.press("Control+A")
    page.keyboard.type(value)
    page.keyboard.press("Enter")
    deadline = time.monotonic() + 90
    after = before  # the output area replaces its <img> on every redraw: query it afresh
    while after == before and time.monotonic() < deadline:
        time.sleep(1)
        after = img.get_attribute("src") if img.count() else before
    img.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / f"{name}_after.png"))
    for tag, src in (("before", before), ("after", after)):
        if src and src.startswith("data:image/png;base64,"):
            (ARTIFACTS / f"{name}_figure_{tag}.png").write_bytes(base64.b64decode(src.split(",", 1)[1]))
    return before, after


def test_tour_lif_slider_redraws_the_membrane_trace(lab, browser):
    url, token = lab
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        _run_all(page, url, token, "00_tour.ipynb", timeout_s=240)
        before, after = _move_and_compare(page, "threshold", "tour_threshold", "0.5")
        assert before.startswith("data:image/png;base64,") and after.startswith("data:image/png;base64,")
        assert before != after, "moving the threshold slider did not change the LIF figure"
    finally:
        page.close()


def test_paper5_kl_threshold_slider_redraws_the_kl_curve(lab, browser):
    url, token = lab
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        _run_all(page, url, token, "05_dynamic_spatiotemporal.ipynb", timeout_s=420)
        before, after = _move_and_compare(page, "threshold", "paper5_kl_threshold", "0.25")
        assert before != after, "moving the KL threshold slider did not change the KL figure"
    finally:
        page.close()
